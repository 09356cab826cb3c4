"""Seeded engagement scenarios: one :class:`Scenario` per Monte Carlo run, drawn per family.

Families (DESIGN.md section 6):

=================  ============================================================================================
shahed_crossing    fixed wing 45-55 m/s, straight, 100-1000 m AGL, crossing the line of sight (aspect 60-120 deg)
shahed_headon      the same flying at the launch site (aspect < 20 deg), 3-5 km out
recon_loiter       quad circling (r 100-250 m, 8-15 m/s, 100-400 m AGL) 0.8-1.5 km away
fpv_weave          FPV quad 25 m/s inbound, weaving with 1 g lateral (period 3-5 s), 50-200 m AGL
evasive            fixed wing / fast quad 30-50 m/s that turns at 1.5 g away when we are 150-300 m from it
degraded           crossing or weaving target with wind 8-12 m/s (gusts 2 m/s), 100-150 ms latency, 30 % drops
bird_clutter       a drone target (crossing, loiter or weave) with 3-6 birds around its path
bird_cue           the ground cue is a bird: nothing may be engaged (counts for confusers, not intercepts)
=================  ============================================================================================

Every family also draws light wind (0-5 m/s), latency (30-80 ms) and drops (0-10 %). The interceptor starts
on the ground at the NED origin; the ground radar cues the target from t = 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from sitl.targets import TargetSpec
from sitl.vehicle import WindParams

FAMILIES = ("shahed_crossing", "shahed_headon", "recon_loiter", "fpv_weave", "evasive", "degraded",
            "bird_clutter", "bird_cue")
G = 9.80665


@dataclass(frozen=True)
class PerceptionParams:
    """Truth perception: what a camera + tracker would deliver, from the simulator's truth."""

    latency_s: float = 0.05
    drop_prob: float = 0.05
    los_noise_rad: float = 0.0015
    los_rate_noise_radps: float = 0.003
    range_noise_frac: float = 0.05
    min_detect_px: float = 4.0          # smallest apparent size (px) the detector finds
    confirm_frames: int = 3
    max_coast_frames: int = 10
    check_fov: bool = True


@dataclass(frozen=True)
class CueParams:
    period_s: float = 1.0
    latency_s: float = 0.3
    pos_std_m: float = 10.0
    vel_std_mps: float = 2.0


@dataclass(frozen=True)
class Scenario:
    family: str
    seed: int
    target: TargetSpec
    clutter: tuple[TargetSpec, ...] = ()
    wind: WindParams = field(default_factory=WindParams)
    perception: PerceptionParams = field(default_factory=PerceptionParams)
    cue: CueParams = field(default_factory=CueParams)
    operator_delay_s: float = 1.0
    t_max_s: float = 75.0
    law: str | None = None               # override of the engagement law (pure-pursuit comparison)
    fence_polygon_ne_m: tuple[tuple[float, float], ...] = (
        (-8000.0, -8000.0), (8000.0, -8000.0), (8000.0, 8000.0), (-8000.0, 8000.0))
    fence_max_altitude_m: float = 1500.0
    no_engage_zones: tuple[tuple[str, tuple[tuple[float, float], ...]], ...] = ()

    @property
    def engageable(self) -> bool:
        return self.target.class_name != "bird"

    @property
    def target_speed_mps(self) -> float:
        return float(np.linalg.norm(self.target.vel0_ned_mps))

    @property
    def aspect_deg(self) -> float:
        """Angle between the target's initial velocity and the line from it to the launch site (0 = head-on)."""
        p = -np.asarray(self.target.pos0_ned_m)[:2]
        v = np.asarray(self.target.vel0_ned_mps)[:2]
        if np.linalg.norm(v) < 1e-6:
            return float("nan")
        c = float(p @ v / (np.linalg.norm(p) * np.linalg.norm(v)))
        return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _unit_bearing(b: float) -> np.ndarray:
    return np.array([math.cos(b), math.sin(b), 0.0])


def _crossing(rng, speed=None, alt=None) -> TargetSpec:
    bearing = rng.uniform(0, 2 * math.pi)
    d_c = rng.uniform(1000, 2500)
    alt = rng.uniform(100, 1000) if alt is None else alt
    speed = rng.uniform(45, 55) if speed is None else speed
    c = d_c * _unit_bearing(bearing)
    course = bearing + rng.choice([-1, 1]) * rng.uniform(math.radians(60), math.radians(120))
    v = speed * _unit_bearing(course)
    t_c = rng.uniform(20, 40)
    p0 = c - v * t_c
    p0[2] = -alt
    return TargetSpec("straight", tuple(p0), tuple(v), "drone", 2.5)


def _headon(rng) -> TargetSpec:
    bearing = rng.uniform(0, 2 * math.pi)
    r0 = rng.uniform(3000, 5000)
    alt = rng.uniform(100, 1000)
    speed = rng.uniform(45, 55)
    offset = rng.uniform(-300, 300)
    p0 = r0 * _unit_bearing(bearing) + offset * _unit_bearing(bearing + math.pi / 2)
    p0[2] = -alt
    v = -speed * _unit_bearing(bearing)
    return TargetSpec("straight", tuple(p0), tuple(v), "drone", 2.5)


def _loiter(rng) -> TargetSpec:
    bearing = rng.uniform(0, 2 * math.pi)
    d = rng.uniform(800, 1500)
    r = rng.uniform(100, 250)
    speed = rng.uniform(8, 15)
    alt = rng.uniform(100, 400)
    c = d * _unit_bearing(bearing)
    phase = rng.uniform(0, 2 * math.pi)
    p0 = c + r * _unit_bearing(phase)
    p0[2] = -alt
    v = speed * _unit_bearing(phase + rng.choice([-1, 1]) * math.pi / 2)
    return TargetSpec("loiter", tuple(p0), tuple(v), "drone", 0.6, loiter_center_ne_m=(c[0], c[1]))


def _weave(rng) -> TargetSpec:
    bearing = rng.uniform(0, 2 * math.pi)
    r0 = rng.uniform(1500, 2500)
    alt = rng.uniform(50, 200)
    aim = rng.uniform(-300, 300) * _unit_bearing(bearing + math.pi / 2)
    p0 = r0 * _unit_bearing(bearing)
    p0[2] = -alt
    d = aim - p0
    d[2] = 0.0
    v = 25.0 * d / np.linalg.norm(d)
    return TargetSpec("weave", tuple(p0), tuple(v), "drone", 0.4, lateral_accel_mps2=G,
                      weave_period_s=rng.uniform(3, 5), weave_phase_rad=rng.uniform(0, 2 * math.pi))


def _evasive(rng) -> TargetSpec:
    base = _crossing(rng, speed=rng.uniform(30, 50), alt=rng.uniform(100, 500)) if rng.random() < 0.5 else _headon(rng)
    v = np.asarray(base.vel0_ned_mps)
    v = v / np.linalg.norm(v) * rng.uniform(30, 50)
    return replace(base, kind="evasive", vel0_ned_mps=tuple(v), lateral_accel_mps2=1.5 * G,
                   evade_range_m=rng.uniform(150, 300), size_m=1.5)


def _birds(rng, around: TargetSpec, n: int) -> tuple[TargetSpec, ...]:
    out = []
    p = np.asarray(around.pos0_ned_m)
    v = np.asarray(around.vel0_ned_mps)
    for _ in range(n):
        t_along = rng.uniform(5, 30)
        q = p + v * t_along + rng.normal(0, 1, 3) * np.array([120, 120, 40])
        q[2] = min(q[2], -40.0)
        heading = rng.uniform(0, 2 * math.pi)
        vb = rng.uniform(8, 15) * _unit_bearing(heading)
        out.append(TargetSpec("bird", tuple(q), tuple(vb), "bird", 0.5, wander_std_mps2=1.0))
    return tuple(out)


def _zone_behind(rng, target: TargetSpec) -> tuple[tuple[str, tuple[tuple[float, float], ...]], ...]:
    """A 600 m no-engage square (a village) 1.5 km on the far side of the launch site from the target."""
    p = np.asarray(target.pos0_ned_m)[:2]
    c = -1500.0 * p / max(np.linalg.norm(p), 1.0)
    h = 300.0
    return (("village", ((c[0] - h, c[1] - h), (c[0] + h, c[1] - h), (c[0] + h, c[1] + h), (c[0] - h, c[1] + h))),)


def make_scenario(family: str, seed: int) -> Scenario:
    """Draw one scenario of ``family`` from ``seed`` (the same pair always gives the same scenario)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {FAMILIES}")
    rng = np.random.default_rng([seed, FAMILIES.index(family)])
    wind_dir = rng.uniform(0, 2 * math.pi)
    wind = WindParams(tuple(rng.uniform(0, 5) * _unit_bearing(wind_dir)), 0.5, 2.0)
    perc = PerceptionParams(latency_s=rng.uniform(0.03, 0.08), drop_prob=rng.uniform(0.0, 0.1))
    clutter: tuple[TargetSpec, ...] = ()
    if family == "shahed_crossing":
        tgt = _crossing(rng)
    elif family == "shahed_headon":
        tgt = _headon(rng)
    elif family == "recon_loiter":
        tgt = _loiter(rng)
    elif family == "fpv_weave":
        tgt = _weave(rng)
    elif family == "evasive":
        tgt = _evasive(rng)
    elif family == "degraded":
        tgt = _crossing(rng) if rng.random() < 0.5 else _weave(rng)
        wind = WindParams(tuple(rng.uniform(8, 12) * _unit_bearing(wind_dir)), 2.0, 2.0)
        perc = PerceptionParams(latency_s=rng.uniform(0.10, 0.15), drop_prob=0.3)
    elif family == "bird_clutter":
        k = rng.integers(3)
        tgt = (_crossing, _loiter, _weave)[k](rng)
        clutter = _birds(rng, tgt, int(rng.integers(3, 7)))
    else:  # bird_cue
        b = _loiter(rng)
        tgt = replace(b, kind="bird", class_name="bird", size_m=0.5, wander_std_mps2=1.0)
        clutter = _birds(rng, tgt, 2)
    return Scenario(family, seed, tgt, clutter, wind, perc, operator_delay_s=rng.uniform(0.5, 2.0),
                    no_engage_zones=_zone_behind(rng, tgt), t_max_s=45.0 if family == "bird_cue" else 75.0)
