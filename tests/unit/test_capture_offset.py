"""The camera-to-attitude time offset from detections (autonomy.camera.time_offset): recovered from a swinging
airframe looking at a slowly moving target, with the capture times told late, early, or right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.camera.model import Camera
from autonomy.camera.time_offset import estimate_capture_offset, los_roughness
from autonomy.geometry import euler_to_quat


def _attitude(t_s: float) -> np.ndarray:
    """An airframe swinging as in terminal homing: pitch +-11 deg at 2 Hz, roll +-9 deg at 1.3 Hz (~2.5 rad/s)."""
    return euler_to_quat(0.15 * math.sin(2 * math.pi * 1.3 * t_s), -0.2 + 0.2 * math.sin(2 * math.pi * 2.0 * t_s),
                         0.1 * t_s)


def _detections(told_late_s: float, n: int = 120, noise_px: float = 0.3, seed: int = 0):
    cam = Camera.default()
    rng = np.random.default_rng(seed)
    t_true = np.arange(n) / 30.0
    ts, uvs = [], []
    for t in t_true:
        los = np.array([1.0, 0.12 * t, -0.15 - 0.02 * t])
        uv, ok = cam.los_ned_to_pixels((los / np.linalg.norm(los))[None, :], _attitude(t))
        uv = np.asarray(uv).reshape(-1, 2)[0]
        if bool(np.asarray(ok).reshape(-1)[0]) and 0 <= uv[0] < 1280 and 0 <= uv[1] < 720:
            ts.append(t + told_late_s)
            uvs.append(uv + rng.normal(0.0, noise_px, 2))
    return cam, np.array(ts), np.array(uvs)


@pytest.mark.parametrize("told_late_s", [0.02, -0.015, 0.0, 0.035])
def test_offset_is_recovered(told_late_s):
    cam, ts, uvs = _detections(told_late_s)
    assert len(ts) >= 110, "the synthetic target must stay in view"
    est = estimate_capture_offset(ts, uvs, _attitude, cam)
    assert est.offset_s is not None, est
    assert est.offset_s == pytest.approx(-told_late_s, abs=0.002), est
    assert est.contrast > 5.0


def test_too_few_detections_or_no_attitude_give_no_estimate():
    cam, ts, uvs = _detections(0.02, n=15)
    assert estimate_capture_offset(ts, uvs, _attitude, cam).offset_s is None
    cam, ts, uvs = _detections(0.02)
    assert estimate_capture_offset(ts, uvs, lambda t: None, cam).offset_s is None
    with pytest.raises(ValueError, match="times but"):
        estimate_capture_offset(ts, uvs[:-1], _attitude, cam)


def test_roughness_skips_gaps_and_measures_curvature():
    t = np.array([0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2])
    straight = np.stack([np.ones_like(t), t, np.zeros_like(t)], 1)
    r, n = los_roughness(t, straight)
    assert n == 3 and r == pytest.approx(0.0, abs=1e-18)      # the triplets across the 0.7 s gap are skipped
    curved = straight.copy()
    curved[:, 2] = t ** 2                                     # second derivative 2 -> squared 4
    r, n = los_roughness(t, curved)
    assert r == pytest.approx(4.0, rel=1e-9)


def test_the_target_pixel_is_the_detection_on_the_track():
    from autonomy.camera.time_offset import target_pixel

    box = np.array([100.0, 100.0, 120.0, 110.0])                       # centre (110, 105), larger side 20
    dets = np.array([[400.0, 300.0, 420.0, 310.0], [104.0, 101.0, 124.0, 111.0]])
    np.testing.assert_allclose(target_pixel(box, dets), [114.0, 106.0])
    assert target_pixel(box, dets[:1]) is None                          # nothing on the track
    assert target_pixel(None, dets) is None
    assert target_pixel(box, np.zeros((0, 4))) is None
