"""`autonomy calibrate` recovers a known camera from synthetic chessboard views (OpenCV for real)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from autonomy.camera.calibrate import CalibrationError, calibrate_views
from autonomy.camera.model import load_camera_toml


def _views(rng: np.random.Generator, k: np.ndarray, dist: np.ndarray, n: int = 12) -> list[np.ndarray]:
    cols, rows, sq = 9, 6, 0.03
    # a board image: (cols+1) x (rows+1) squares, 40 px each, white margin
    s = 40
    board = np.full(((rows + 3) * s, (cols + 3) * s), 255, np.uint8)
    for r in range(rows + 1):
        for c in range(cols + 1):
            if (r + c) % 2 == 0:
                board[(r + 1) * s:(r + 2) * s, (c + 1) * s:(c + 2) * s] = 0
    # board pixel -> board metres (inner corner (0,0) at pixel (2s, 2s))
    out = []
    for _ in range(n):
        rvec = rng.uniform(-0.45, 0.45, 3)
        tvec = np.array([rng.uniform(-0.1, 0.05), rng.uniform(-0.08, 0.02), rng.uniform(0.45, 0.7)])
        src = np.array([[0, 0], [board.shape[1], 0], [board.shape[1], board.shape[0]], [0, board.shape[0]]],
                       np.float32)
        obj = np.array([[(x - 2 * s) / s * sq, (y - 2 * s) / s * sq, 0.0] for x, y in src], np.float64)
        dst, _ = cv2.projectPoints(obj, rvec, tvec, k, np.zeros(5))
        h = cv2.getPerspectiveTransform(src, dst.reshape(-1, 2).astype(np.float32))
        img = cv2.warpPerspective(board, h, (640, 480), borderValue=128)
        # apply the lens distortion by remapping through the undistortion of each output pixel
        mapx, mapy = cv2.initUndistortRectifyMap(k, dist, None, k, (640, 480), cv2.CV_32FC1)
        out.append(cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR))
    return out


def test_calibration_recovers_focal_length_and_centre():
    k = np.array([[520.0, 0, 322.0], [0, 520.0, 236.0], [0, 0, 1]])
    dist = np.zeros(5)
    res = calibrate_views(_views(np.random.default_rng(1), k, dist), 9, 6, 0.03)
    assert res.views_used >= 8 and res.rms_px < 0.5
    assert math.isclose(res.k[0, 0], 520.0, rel_tol=0.02) and math.isclose(res.k[1, 1], 520.0, rel_tol=0.02)
    assert abs(res.k[0, 2] - 322.0) < 8 and abs(res.k[1, 2] - 236.0) < 8


def test_calibration_toml_round_trips(tmp_path):
    k = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])
    res = calibrate_views(_views(np.random.default_rng(2), k, np.zeros(5)), 9, 6, 0.03)
    p = tmp_path / "camera.toml"
    p.write_text(res.to_toml(tilt_up_deg=30.0))
    cam = load_camera_toml(p)
    assert cam.intrinsics.width_px == 640 and math.isclose(cam.intrinsics.fx_px, res.k[0, 0])
    assert math.isclose(math.degrees(cam.mount.tilt_up_rad), 30.0)


def test_too_few_views_is_a_clear_error():
    blank = [np.full((480, 640), 200, np.uint8)] * 5
    try:
        calibrate_views(blank, 9, 6, 0.03)
    except CalibrationError as exc:
        assert "found in 0 of 5 views" in str(exc)
    else:
        raise AssertionError("no error")
