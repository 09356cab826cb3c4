"""Aerial target models for engagement campaigns (NED, metres, seconds).

Each :class:`Target` holds its kinematic state and advances with :meth:`Target.step`; the behaviour is a
frozen :class:`TargetSpec`. Kinds:

- ``straight``: constant velocity (Shahed-class one-way attack drone, ~50 m/s, 100-1000 m AGL).
- ``loiter``: circles a centre point at constant speed (recon quad).
- ``weave``: flies a base course with a sinusoidal lateral acceleration (FPV quad, 25 m/s, 1 g lateral).
- ``evasive``: straight until the interceptor comes within ``evade_range_m``, then turns hard away.
- ``bird``: slow wandering flight (clutter; ``class_name = "bird"``).

Randomness enters through the ``np.random.Generator`` passed to :meth:`Target.step` (birds' wander only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autonomy.geometry import GRAVITY_MPS2

KINDS = ("straight", "loiter", "weave", "evasive", "bird")


@dataclass(frozen=True)
class TargetSpec:
    kind: str
    pos0_ned_m: tuple[float, float, float]
    vel0_ned_mps: tuple[float, float, float]
    class_name: str = "drone"
    size_m: float = 0.5                   # characteristic size (wingspan / diagonal) for the camera
    lateral_accel_mps2: float = 0.0       # weave amplitude / evasive turn acceleration
    weave_period_s: float = 4.0
    weave_phase_rad: float = 0.0
    loiter_center_ne_m: tuple[float, float] = (0.0, 0.0)
    evade_range_m: float = 250.0
    wander_std_mps2: float = 0.0          # birds

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"target kind must be one of {KINDS}, got {self.kind!r}")
        if self.size_m <= 0.0:
            raise ValueError("size_m must be positive")


class Target:
    """Mutable kinematic state of one target driven by its :class:`TargetSpec`."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.pos_ned_m = np.array(spec.pos0_ned_m, dtype=np.float64)
        self.vel_ned_mps = np.array(spec.vel0_ned_mps, dtype=np.float64)
        self.acc_ned_mps2 = np.zeros(3)
        self.speed_mps = float(np.linalg.norm(self.vel_ned_mps))
        self.evading = False
        self._evade_sign = 1.0

    @property
    def class_name(self) -> str:
        return self.spec.class_name

    def step(self, t_s: float, dt_s: float, interceptor_pos_ned_m: np.ndarray, rng: np.random.Generator) -> None:
        """Advance by ``dt_s`` from time ``t_s`` (horizontal turns at constant speed; altitude held)."""
        s = self.spec
        v = self.vel_ned_mps
        vh = math.hypot(v[0], v[1])
        left = np.array([-v[1] / vh, v[0] / vh, 0.0]) if vh > 1e-6 else np.zeros(3)  # 90 deg left of course
        a = np.zeros(3)
        if s.kind == "loiter":
            cn, ce = s.loiter_center_ne_m
            rn, re = self.pos_ned_m[0] - cn, self.pos_ned_m[1] - ce
            r = math.hypot(rn, re)
            if r > 1e-6:
                a = -(vh * vh / r) * np.array([rn / r, re / r, 0.0])  # centripetal: keep circling
        elif s.kind == "weave":
            a = s.lateral_accel_mps2 * math.sin(2 * math.pi * t_s / s.weave_period_s + s.weave_phase_rad) * left
        elif s.kind == "evasive":
            rel = self.pos_ned_m - np.asarray(interceptor_pos_ned_m)
            if not self.evading and float(np.linalg.norm(rel)) < s.evade_range_m:
                self.evading = True
                # turn away from the side the interceptor is on
                self._evade_sign = -1.0 if float(rel @ left) < 0.0 else 1.0
            if self.evading:
                a = s.lateral_accel_mps2 * self._evade_sign * left
        elif s.kind == "bird":
            a = s.wander_std_mps2 * np.array([rng.standard_normal(), rng.standard_normal(), 0.0])
        self.acc_ned_mps2 = a
        v_new = v + a * dt_s
        if s.kind in ("loiter", "weave", "evasive"):  # turns at constant speed
            n = float(np.linalg.norm(v_new))
            if n > 1e-9:
                v_new *= self.speed_mps / n
        self.pos_ned_m = self.pos_ned_m + 0.5 * (v + v_new) * dt_s
        self.vel_ned_mps = v_new


def lateral_accel_g(lateral_accel_mps2: float) -> float:
    return lateral_accel_mps2 / GRAVITY_MPS2
