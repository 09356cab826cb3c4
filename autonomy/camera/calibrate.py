"""``autonomy calibrate``: camera intrinsics and distortion from chessboard views -> a camera TOML.

    autonomy calibrate --images DIR | --video FILE [--board 9x6] [--square-mm 25] [--out camera.toml]
                       [--tilt-up-deg 20] [--every N]

``--board`` counts INNER corners (columns x rows). Show the board at many angles and distances, filling the
corners of the image too. The output is the ``[camera]`` table :func:`autonomy.camera.model.load_camera_toml`
reads (fx/fy/cx/cy in pixels, OpenCV's 5 distortion coefficients k1 k2 p1 p2 k3) plus the mount tilt you
give, and the RMS reprojection error (px) as a comment: below ~0.5 px is good.
Method: ``cv2.findChessboardCorners`` + ``cornerSubPix`` per view, ``cv2.calibrateCamera`` (Zhang 2000).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class CalibrationError(RuntimeError):
    """Not enough usable views, unreadable input, inconsistent image sizes."""


@dataclass(frozen=True)
class CalibrationResult:
    width_px: int
    height_px: int
    k: np.ndarray          # 3x3
    dist: np.ndarray       # (5,)
    rms_px: float
    views_used: int
    views_total: int

    def to_toml(self, tilt_up_deg: float = 20.0, pan_right_deg: float = 0.0, fps: float = 30.0) -> str:
        d = ", ".join(f"{v:.8g}" for v in self.dist)
        return (f"# autonomy calibrate: RMS reprojection error {self.rms_px:.3f} px over {self.views_used} views\n"
                f"[camera]\nwidth_px = {self.width_px}\nheight_px = {self.height_px}\n"
                f"fx_px = {self.k[0, 0]:.6f}\nfy_px = {self.k[1, 1]:.6f}\ncx_px = {self.k[0, 2]:.6f}\n"
                f"cy_px = {self.k[1, 2]:.6f}\ndist_coeffs = [{d}]\nfps = {fps}\n"
                f"[camera.mount]\ntilt_up_deg = {tilt_up_deg}\npan_right_deg = {pan_right_deg}\n")


def calibrate_views(images, board_cols: int, board_rows: int, square_m: float,
                    min_views: int = 6) -> CalibrationResult:
    """Calibrate from an iterable of images (BGR or grey uint8). ``CalibrationError`` if < ``min_views`` usable."""
    import cv2

    if board_cols < 2 or board_rows < 2 or not square_m > 0:
        raise CalibrationError("the board needs >= 2x2 inner corners and a positive square size")
    obj = np.zeros((board_cols * board_rows, 3), np.float32)
    obj[:, :2] = np.mgrid[0:board_cols, 0:board_rows].T.reshape(-1, 2) * square_m
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 1e-3)
    objs, imgs_pts, size, total = [], [], None, 0
    for img in images:
        total += 1
        if img is None or img.size == 0:
            continue
        grey = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        if size is None:
            size = grey.shape[::-1]
        elif grey.shape[::-1] != size:
            raise CalibrationError(f"image sizes differ: {grey.shape[::-1]} vs {size}")
        ok, corners = cv2.findChessboardCorners(grey, (board_cols, board_rows),
                                                cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE)
        if not ok:
            continue
        corners = cv2.cornerSubPix(grey, corners, (11, 11), (-1, -1), crit)
        objs.append(obj)
        imgs_pts.append(corners)
    if len(objs) < min_views:
        raise CalibrationError(f"chessboard {board_cols}x{board_rows} (inner corners) found in {len(objs)} of "
                               f"{total} views; need at least {min_views} (check --board, lighting, focus)")
    rms, k, dist, _, _ = cv2.calibrateCamera(objs, imgs_pts, size, None, None)
    return CalibrationResult(int(size[0]), int(size[1]), k, dist.reshape(-1)[:5], float(rms), len(objs), total)


def _read_images(args):
    import cv2

    if args.images:
        d = Path(args.images)
        if not d.is_dir():
            raise CalibrationError(f"image folder not found: {d}")
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".tif"))
        if not files:
            raise CalibrationError(f"no images (.png/.jpg/.bmp/.tif) in {d}")
        for p in files:
            yield cv2.imread(str(p))
    else:
        if not Path(args.video).is_file():
            raise CalibrationError(f"video not found: {args.video}")
        cap = cv2.VideoCapture(args.video)
        if not cap.isOpened():
            raise CalibrationError(f"cannot open video {args.video}")
        k = 0
        try:
            while True:
                ok, img = cap.read()
                if not ok:
                    break
                if k % args.every == 0:
                    yield img
                k += 1
        finally:
            cap.release()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="autonomy calibrate", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of chessboard photos")
    src.add_argument("--video", help="video of the chessboard (every --every-th frame is used)")
    ap.add_argument("--board", default="9x6", help="inner corners COLSxROWS (default 9x6)")
    ap.add_argument("--square-mm", type=float, default=25.0)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--tilt-up-deg", type=float, default=20.0, help="camera mount up-tilt to write")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--out", default="camera.toml")
    a = ap.parse_args(argv)
    try:
        cols, rows = (int(x) for x in a.board.lower().split("x"))
    except ValueError:
        print(f"autonomy calibrate: --board must look like 9x6, got {a.board!r}", file=sys.stderr)
        return 2
    try:
        res = calibrate_views(_read_images(a), cols, rows, a.square_mm / 1000.0)
    except CalibrationError as exc:
        print(f"autonomy calibrate: {exc}", file=sys.stderr)
        return 1
    Path(a.out).write_text(res.to_toml(a.tilt_up_deg, fps=a.fps))
    print(f"autonomy calibrate: {res.views_used}/{res.views_total} views, RMS {res.rms_px:.3f} px, "
          f"fx {res.k[0, 0]:.1f} fy {res.k[1, 1]:.1f} px -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
