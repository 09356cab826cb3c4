"""Synthetic multi-target scenes seen from a rotating camera: ground-truth boxes and NED lines of sight.

No rendering: targets are points with a physical size flying constant-velocity (optionally weaving) paths
in NED around a camera at the origin whose attitude oscillates (yaw/pitch/roll sinusoids, tens of deg/s), as
an interceptor's does. Boxes come from :class:`autonomy.camera.model.Camera` projection, so the scene
exercises exactly the rotation that an image-space tracker mistakes for target motion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autonomy.camera.model import Camera
from autonomy.geometry import euler_to_quat


@dataclass(frozen=True)
class SceneConfig:
    n_targets: int = 5
    n_frames: int = 300
    fps: float = 30.0
    range_min_m: float = 40.0
    range_max_m: float = 150.0
    speed_max_mps: float = 10.0
    size_min_m: float = 0.5
    size_max_m: float = 2.0
    yaw_amp_deg: float = 15.0       # camera yaw oscillation amplitude
    yaw_freq_hz: float = 0.4
    pitch_amp_deg: float = 6.0
    pitch_freq_hz: float = 0.7
    roll_amp_deg: float = 10.0
    roll_freq_hz: float = 0.3
    weave_accel_mps2: float = 5.0   # lateral sinusoidal acceleration amplitude of the targets
    frame_drop_prob: float = 0.0    # frames dropped (irregular intervals)


@dataclass(frozen=True)
class SceneFrame:
    t_s: float
    q_body_to_ned: np.ndarray      # (4,)
    ids: np.ndarray                # (n,) visible ground-truth ids
    boxes_xyxy_px: np.ndarray      # (n, 4)
    los_ned: np.ndarray            # (n, 3) true unit LOS
    class_ids: np.ndarray          # (n,) 0 drone, 1 bird


def camera_attitude(cfg: SceneConfig, t_s: float, phase: np.ndarray) -> np.ndarray:
    yaw = math.radians(cfg.yaw_amp_deg) * math.sin(2 * math.pi * cfg.yaw_freq_hz * t_s + phase[0])
    pitch = math.radians(cfg.pitch_amp_deg) * math.sin(2 * math.pi * cfg.pitch_freq_hz * t_s + phase[1])
    roll = math.radians(cfg.roll_amp_deg) * math.sin(2 * math.pi * cfg.roll_freq_hz * t_s + phase[2])
    # body pitched down by the mount tilt so the camera looks at the horizon on average
    return euler_to_quat(roll, pitch - math.radians(20.0), yaw)


def make_scene(cfg: SceneConfig, camera: Camera, rng: np.random.Generator) -> list[SceneFrame]:
    """Targets start inside the field of view at random ranges; returns one SceneFrame per kept frame."""
    n = cfg.n_targets
    phase = rng.uniform(0, 2 * math.pi, 3)
    q0 = camera_attitude(cfg, 0.0, phase)
    w, h = camera.intrinsics.width_px, camera.intrinsics.height_px
    uv0 = np.column_stack([rng.uniform(0.15 * w, 0.85 * w, n), rng.uniform(0.2 * h, 0.8 * h, n)])
    los0 = camera.pixels_to_los_ned(uv0, q0)
    rng_m = rng.uniform(cfg.range_min_m, cfg.range_max_m, n)
    pos0 = los0 * rng_m[:, None]
    vel = rng.normal(0, cfg.speed_max_mps / 2, (n, 3))
    vel[:, 2] *= 0.3
    spd = np.linalg.norm(vel, axis=1, keepdims=True)
    vel = np.where(spd > cfg.speed_max_mps, vel / spd * cfg.speed_max_mps, vel)
    size_m = rng.uniform(cfg.size_min_m, cfg.size_max_m, n)
    aspect = rng.uniform(1.0, 2.0, n)   # width / height
    weave_f = rng.uniform(0.2, 0.6, n)
    weave_dir = rng.normal(0, 1, (n, 3))
    weave_dir /= np.linalg.norm(weave_dir, axis=1, keepdims=True)
    classes = (rng.uniform(size=n) < 0.2).astype(np.int64)   # some birds
    frames: list[SceneFrame] = []
    for f in range(cfg.n_frames):
        t = f / cfg.fps
        if f > 0 and rng.uniform() < cfg.frame_drop_prob:
            continue
        q = camera_attitude(cfg, t, phase)
        om = 2 * math.pi * weave_f
        # position of a weave with acceleration amplitude A: x = -A/om^2 sin(om t) (+ matching velocity)
        weave = (cfg.weave_accel_mps2 / om**2)[:, None] * (om * t - np.sin(om * t))[:, None] * weave_dir
        pos = pos0 + vel * t + weave
        rng_now = np.linalg.norm(pos, axis=1)
        los = pos / rng_now[:, None]
        uv, front = camera.los_ned_to_pixels(los, q)
        diag_px = 2 * np.tan(size_m / (2 * rng_now)) * camera.intrinsics.fx_px
        hh = diag_px / np.sqrt(1 + aspect**2)
        ww = aspect * hh
        boxes = np.column_stack([uv[:, 0] - ww / 2, uv[:, 1] - hh / 2, uv[:, 0] + ww / 2, uv[:, 1] + hh / 2])
        vis = front & camera.in_image(uv, margin_px=2.0)
        frames.append(SceneFrame(t, q, np.flatnonzero(vis).astype(np.int64), boxes[vis], los[vis], classes[vis]))
    return frames
