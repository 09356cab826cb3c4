"""How wrong the capture times are: the camera-to-attitude time offset, estimated from a flight's detections.

A target's line of sight in the world frame moves smoothly; a frame paired with the attitude of the wrong instant
adds the airframe's rotation over the error to it, and in an engagement the airframe turns fast and back. So the
capture-time shift that makes the target's NED line of sight smoothest (least squared second derivative) is the
camera's time offset: the same idea as camera-IMU time-offset calibration (Kalibr's temporal calibration,
VINS-Mono's online ``td``), here as a grid search over shifts with a parabolic refinement. In lockstep, quick
seed 0 with capture times told 20 ms late: the smoothest line of sight is at -20 ms, sharply (roughness 0.4 vs
2-3 at +-5 ms, 24 at 0), from the 39 detections of its first 16 s.

``autonomy fly`` reports it at the end of a flight, and ``autonomy replay`` for a recorded one
(``capture_offset_ms``), from the detections of the engaged target: a few ms says the capture times are right; tens
of ms say ``[camera] latency_s`` (or the camera's timestamps) are off by that much. Only a report: nothing in flight
uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from autonomy.camera.model import Camera, pixels_to_bearings_cam

DEFAULT_GRID_S = tuple(np.round(np.arange(-0.06, 0.0601, 0.005), 4))
MIN_TRIPLETS = 20          # consecutive-frame triplets needed for an estimate
MAX_TRIPLET_SPAN_S = 0.2   # frames further apart are not consecutive (a detection gap)


@dataclass(frozen=True)
class CaptureOffsetEstimate:
    """``offset_s``: add this to the capture times used (None: too few detections, or no clear minimum).
    ``grid_s`` / ``roughness``: the mean squared second derivative of the line of sight (rad^2/s^4) per shift;
    ``triplets_n``: consecutive-frame triplets it was measured on; ``contrast``: roughness at the grid's ends
    over roughness at the minimum (a sharp minimum is >> 1)."""

    offset_s: float | None
    grid_s: tuple[float, ...]
    roughness: tuple[float, ...]
    triplets_n: int
    contrast: float


def los_roughness(t_s: np.ndarray, los_ned: np.ndarray) -> tuple[float, int]:
    """Mean squared second divided difference of unit vectors ``los_ned`` (n, 3) at times ``t_s`` (n,) over
    consecutive triplets spanning at most :data:`MAX_TRIPLET_SPAN_S`; returns (mean, triplets used)."""
    t = np.asarray(t_s, dtype=np.float64)
    x = np.asarray(los_ned, dtype=np.float64)
    if len(t) < 3:
        return float("nan"), 0
    h1, h2 = t[1:-1] - t[:-2], t[2:] - t[1:-1]
    ok = (h1 > 0) & (h2 > 0) & (h1 + h2 <= MAX_TRIPLET_SPAN_S) & np.all(np.isfinite(x[:-2] + x[1:-1] + x[2:]), 1)
    if not np.any(ok):
        return float("nan"), 0
    with np.errstate(invalid="ignore", divide="ignore"):
        dd = 2.0 * ((x[2:] - x[1:-1]) / h2[:, None] - (x[1:-1] - x[:-2]) / h1[:, None]) / (h1 + h2)[:, None]
    dd = dd[ok]
    return float(np.mean(np.sum(dd * dd, axis=1))), int(ok.sum())


def estimate_capture_offset(t_capture_s: np.ndarray, uv_px: np.ndarray,
                            attitude_at: Callable[[float], np.ndarray | None], camera: Camera,
                            grid_s: tuple[float, ...] = DEFAULT_GRID_S) -> CaptureOffsetEstimate:
    """The shift of the capture times ``t_capture_s`` (n,) that makes the line of sight through the target's pixel
    ``uv_px`` (n, 2) smoothest in NED. ``attitude_at(t)`` gives the body-to-NED quaternion at ``t`` (None outside
    the recorded attitude); the samples are one target's detections in time order."""
    t = np.asarray(t_capture_s, dtype=np.float64)
    uv = np.asarray(uv_px, dtype=np.float64).reshape(-1, 2)
    if len(t) != len(uv):
        raise ValueError(f"capture offset: {len(t)} times but {len(uv)} pixels")
    order = np.argsort(t, kind="stable")
    t, uv = t[order], uv[order]
    # the pixels' bearings in the camera frame do not depend on the shift: undistorted once, rotated per shift
    # (Camera.pixels_to_los_ned's two steps)
    b_cam = pixels_to_bearings_cam(camera.intrinsics, uv)
    rough, used = [], 0
    for d in grid_s:
        los = np.full((len(t), 3), np.nan)
        for i, ti in enumerate(t):
            q = attitude_at(float(ti + d))
            if q is not None:
                los[i] = b_cam[i] @ camera.r_ned_from_cam(np.asarray(q, dtype=np.float64)).T
        r, n = los_roughness(t + d, los)
        rough.append(r)
        used = max(used, n)
    rv = np.asarray(rough, dtype=np.float64)
    if used < MIN_TRIPLETS or not np.all(np.isfinite(rv)):
        return CaptureOffsetEstimate(None, tuple(grid_s), tuple(rough), used, float("nan"))
    k = int(np.argmin(rv))
    contrast = float(min(rv[0], rv[-1]) / max(rv[k], 1e-12))
    if k in (0, len(rv) - 1) or contrast < 2.0:        # at the grid's edge, or no clear minimum
        return CaptureOffsetEstimate(None, tuple(grid_s), tuple(rough), used, contrast)
    # parabola through the minimum and its neighbours (uniform grid)
    y0, y1, y2 = rv[k - 1], rv[k], rv[k + 1]
    step = float(grid_s[k + 1] - grid_s[k])
    den = y0 - 2.0 * y1 + y2
    frac = 0.5 * (y0 - y2) / den if den > 0 else 0.0
    return CaptureOffsetEstimate(float(grid_s[k] + np.clip(frac, -0.5, 0.5) * step), tuple(grid_s), tuple(rough),
                                 used, contrast)


def target_pixel(box_xyxy_px: np.ndarray | None, dets_xyxy_px: np.ndarray) -> np.ndarray | None:
    """The centre of the detection (``dets_xyxy_px`` (m, 4)) that is the tracked target's this frame: the one
    nearest the track's box centre, within half the box's larger side plus 3 px; None without one. Raw detections,
    not the track's box: the tracker's box is filtered and re-projected with the attitude being tested."""
    if box_xyxy_px is None or len(dets_xyxy_px) == 0:
        return None
    b = np.asarray(box_xyxy_px, dtype=np.float64)
    d = np.asarray(dets_xyxy_px, dtype=np.float64).reshape(-1, 4)
    c = 0.5 * (d[:, :2] + d[:, 2:])
    dist = np.linalg.norm(c - 0.5 * (b[:2] + b[2:]), axis=1)
    j = int(np.argmin(dist))
    return c[j] if dist[j] <= 0.5 * max(b[2] - b[0], b[3] - b[1]) + 3.0 else None


MIN_SAMPLES = 30           # engaged-target detections needed before an estimate is tried


def engaged_target_sample(step) -> tuple[float, np.ndarray] | None:
    """(capture time, pixel) of the engaged target's detection in one pipeline step
    (:class:`autonomy.runtime.pipeline.StepResult`), or None when nothing is engaged or it was not detected."""
    eid = step.output.engaged_track_id
    if eid is None or step.detections is None or step.t_capture_s is None:
        return None
    for tr in step.tracks:
        if tr.track_id == eid:
            uv = target_pixel(tr.box_xyxy_px, step.detections.xyxy_px)
            return None if uv is None else (float(step.t_capture_s), uv)
    return None


def estimate_from_samples(samples, attitude_at: Callable[[float], np.ndarray | None],
                          camera: Camera) -> CaptureOffsetEstimate | None:
    """:func:`estimate_capture_offset` over (capture time, pixel) samples; None below :data:`MIN_SAMPLES`."""
    samples = list(samples)
    if len(samples) < MIN_SAMPLES:
        return None
    return estimate_capture_offset(np.array([t for t, _ in samples]), np.array([uv for _, uv in samples]),
                                   attitude_at, camera)


def describe(est: CaptureOffsetEstimate | None) -> str:
    """One line for people."""
    if est is None:
        return f"camera timing: fewer than {MIN_SAMPLES} detections of an engaged target, no estimate"
    if est.offset_s is None:
        return f"camera timing: no clear capture-time offset from {est.triplets_n} detection triplets"
    ms = est.offset_s * 1e3
    return (f"camera timing: the attitude fits the detections best with capture times {abs(ms):.1f} ms "
            f"{'earlier' if ms < 0 else 'later'} than used ({est.triplets_n} triplets, contrast {est.contrast:.0f}); "
            f"tens of ms mean [camera] latency_s or the camera's timestamps are off")


def capture_offset_report(samples, state_at: Callable[[float], object | None],
                          camera: Camera) -> tuple[float | None, str]:
    """What ``autonomy fly`` and ``autonomy replay`` say at the end: (offset in ms rounded to 0.1, or None; one
    line). ``state_at(t)`` is the vehicle's state (``.q_body_to_ned``) at ``t``, None outside its record."""
    def attitude_at(t_s: float) -> np.ndarray | None:
        st = state_at(t_s)
        return None if st is None else st.q_body_to_ned

    try:
        est = estimate_from_samples(samples, attitude_at, camera)
    except (ValueError, FloatingPointError) as exc:   # a report only: it must not cost the flight's summary
        return None, f"camera timing: no estimate ({exc})"
    ms = None if est is None or est.offset_s is None else round(est.offset_s * 1e3, 1)
    return ms, describe(est)
