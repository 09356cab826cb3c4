"""Monte Carlo engagement campaigns: closed-loop runs of the engagement machine against target models.

One run (:func:`run_scenario`) couples, at 60 Hz physics / 30 Hz camera:
the airframe (:func:`vehicle_step_kernel`, a numba twin of :func:`sitl.vehicle.step`, tested against it),
the targets and birds (:mod:`sitl.targets`), ground cues with noise and latency, a perception source (truth
LOS with noise, latency, dropped frames and the camera's field of view; or the full pipeline), a simulated
operator (authorizes the confirmed drone track after a delay, never a bird), and
:class:`autonomy.engagement.EngagementMachine` whose acceleration set-point is flown as PX4 OFFBOARD would.

Metrics (DESIGN.md section 6): miss distance = closest approach, interpolated within each physics step;
intercept when it is below the kill radius (1.5 m); time ratio = time of intercept / the speed-limited lower
bound (straight flight at max speed from the launch point to the earliest reachable point of the target's
true path); unauthorized engagements (TERMINAL outside the operator's authorization or on any object but the
authorized target, or a collision without authorization), fence violations, no-engage violations (terminal inside a zone or an intercept in
one), confusers engaged (terminal on a bird track, or a collision with a bird while homing), and apart from
those incidental bird strikes (a collision with a bird outside terminal homing, e.g. crossing a flock in
midcourse: a hazard to report, not an engagement decision).

``perception="full"`` runs the same seeded families (plus ``quick``, the demo crossing) through the whole
onboard pipeline instead (:func:`sitl.engagement_demo.run_engagement`: simulated PX4 over MAVLink, rendered
camera, ONNX detector, tracker); :func:`full_run_record` turns each RunResult into the same record, so
:func:`summarize` and the plots are shared. The safety flags there come from the world's truth and what the
simulated operator actually sent (see ``sitl.engagement_demo._SafetyAccount``).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numba
import numpy as np

from autonomy.camera.model import Camera
from autonomy.engagement import (
    EngagementConfig,
    EngagementInput,
    EngagementMachine,
    GeofenceConfig,
    State,
    Zone,
)
from autonomy.engagement.gates import inside_geofence, zone_containing
from autonomy.geometry import GRAVITY_MPS2
from autonomy.types import (
    Autopilot,
    OperatorCommand,
    OperatorCommandKind,
    TargetCue,
    TargetTrack,
    TrackStatus,
    VehicleState,
)
from sitl.scenarios import FAMILIES, Scenario, make_scenario
from sitl.targets import Target
from sitl.vehicle import ControlGains, MultirotorParams, MultirotorState, wind_step


class CampaignError(RuntimeError):
    """A campaign cannot run (bad arguments, perception mode not available)."""


# ============================================================================================ fast vehicle
# A numba port of sitl.vehicle.step for campaigns (the NumPy model costs ~400 us/step). State is a flat
# float64 array (see _S_*), parameters another; tests/unit/test_engagement_campaign*.py compares both paths.
_S_POS, _S_VEL, _S_ACC, _S_Q, _S_RATE, _S_THR, _S_GND, _S_LEN = 0, 3, 6, 9, 13, 16, 17, 18
_G = GRAVITY_MPS2


def params_array(p: MultirotorParams) -> np.ndarray:
    return np.array([p.max_accel_mps2, p.max_tilt_rad, p.max_thrust_to_weight, p.attitude_tau_s, p.thrust_tau_s,
                     p.drag_per_m, p.yaw_rate_max_radps, p.ground_z_ned_m], dtype=np.float64)


def state_to_array(s: MultirotorState) -> np.ndarray:
    a = np.zeros(_S_LEN)
    a[0:3], a[3:6], a[6:9] = s.pos_ned_m, s.vel_ned_mps, s.acc_ned_mps2
    a[9:13], a[13:16] = s.q_body_to_ned, s.rate_body_radps
    a[16], a[17] = s.thrust_mps2, 1.0 if s.on_ground else 0.0
    return a


def array_to_state(a: np.ndarray, t_s: float) -> MultirotorState:
    return MultirotorState(t_s, a[0:3].copy(), a[3:6].copy(), a[6:9].copy(), a[9:13].copy(), a[13:16].copy(),
                           float(a[16]), bool(a[17] > 0.5))


@numba.njit(cache=True)
def _qnorm(q):
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    out = q / n
    if out[0] < 0.0:
        out = -out
    return out


@numba.njit(cache=True)
def _yaw(q):
    w, x, y, z = q[0], q[1], q[2], q[3]
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


@numba.njit(cache=True)
def _heading(q):
    w, x, y, z = q[0], q[1], q[2], q[3]
    yb_n, yb_e = 2 * (x * y - w * z), 1 - 2 * (x * x + z * z)
    if math.hypot(yb_n, yb_e) < 1e-6:
        return _yaw(q)
    return math.atan2(-yb_n, yb_e)


@numba.njit(cache=True)
def _rotmat(q):
    w, x, y, z = q[0], q[1], q[2], q[3]
    r = np.empty((3, 3))
    r[0, 0] = 1 - 2 * (y * y + z * z)
    r[0, 1] = 2 * (x * y - w * z)
    r[0, 2] = 2 * (x * z + w * y)
    r[1, 0] = 2 * (x * y + w * z)
    r[1, 1] = 1 - 2 * (x * x + z * z)
    r[1, 2] = 2 * (y * z - w * x)
    r[2, 0] = 2 * (x * z - w * y)
    r[2, 1] = 2 * (y * z + w * x)
    r[2, 2] = 1 - 2 * (x * x + y * y)
    return r


@numba.njit(cache=True)
def _rot_to_quat(r):
    q = np.empty(4)
    tr = r[0, 0] + r[1, 1] + r[2, 2]
    if tr > 0.0:
        s = math.sqrt(tr + 1.0) * 2.0
        q[0], q[1], q[2], q[3] = 0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2.0
        q[0], q[1], q[2], q[3] = (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2.0
        q[0], q[1], q[2], q[3] = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2.0
        q[0], q[1], q[2], q[3] = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s
    return _qnorm(q)


@numba.njit(cache=True)
def _cross(a, b):
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


@numba.njit(cache=True)
def _slerp(q0, q1, frac):
    dot = q0[0] * q1[0] + q0[1] * q1[1] + q0[2] * q1[2] + q0[3] * q1[3]
    if dot < 0.0:
        q1 = -q1
        dot = -dot
    if dot > 0.9995:
        return _qnorm(q0 + frac * (q1 - q0))
    theta = math.acos(min(max(dot, -1.0), 1.0))
    s0 = math.sin((1.0 - frac) * theta) / math.sin(theta)
    s1 = math.sin(frac * theta) / math.sin(theta)
    return _qnorm(s0 * q0 + s1 * q1)


@numba.njit(cache=True)
def limit_accel_kernel(acc_in, prm):
    """Numba twin of sitl.vehicle.limit_accel_command."""
    acc = acc_in.copy()
    n = math.sqrt(acc[0] ** 2 + acc[1] ** 2 + acc[2] ** 2)
    if n > prm[0]:
        acc = acc * (prm[0] / n)
    tx, ty, tz = acc[0], acc[1], acc[2] - _G
    up = max(-tz, 0.15 * _G)
    horiz = math.hypot(tx, ty)
    max_h = up * math.tan(prm[1])
    scale = min(1.0, max_h / horiz) if horiz > 1e-9 else 1.0
    tx, ty = tx * scale, ty * scale
    t_max = prm[2] * _G
    tn = math.sqrt(tx * tx + ty * ty + up * up)
    if tn > t_max:
        up = min(up, t_max)
        hmax = math.sqrt(max(t_max * t_max - up * up, 0.0))
        h = math.hypot(tx, ty)
        s = min(1.0, hmax / h) if h > 1e-9 else 1.0
        tx, ty = tx * s, ty * s
    return np.array([tx, ty, -up + _G])


@numba.njit(cache=True)
def vehicle_step_kernel(s, prm, acc_cmd, yaw_cmd, dt, wind, armed):
    """Numba twin of :func:`sitl.vehicle.step` on the flat state array ``s`` (returns a new array).
    ``yaw_cmd`` NaN keeps the heading."""
    q = s[9:13].copy()
    yaw_now = _heading(q)
    on_ground_in = s[17] > 0.5
    if not armed:
        if on_ground_in:
            acc_ach = np.zeros(3)
        else:
            acc_ach = np.array([0.0, 0.0, _G])
        thrust_target = 0.0
        q_des = q
    else:
        acc_ach = limit_accel_kernel(acc_cmd, prm)
        tv = np.array([acc_ach[0], acc_ach[1], acc_ach[2] - _G])
        thrust_target = math.sqrt(tv[0] ** 2 + tv[1] ** 2 + tv[2] ** 2)
        yaw_t = yaw_now if not math.isfinite(yaw_cmd) else yaw_cmd
        dyaw = (yaw_t - yaw_now + math.pi) % (2 * math.pi) - math.pi
        max_dyaw = prm[6] * dt
        yaw_t = yaw_now + max(-max_dyaw, min(max_dyaw, dyaw))
        if thrust_target > 1e-6:
            z_b = -tv / thrust_target
            x_c = np.array([math.cos(yaw_t), math.sin(yaw_t), 0.0])
            y_b = _cross(z_b, x_c)
            nn = math.sqrt(y_b[0] ** 2 + y_b[1] ** 2 + y_b[2] ** 2)
            if nn < 1e-6:
                y_b = np.array([-math.sin(yaw_t), math.cos(yaw_t), 0.0])
            else:
                y_b = y_b / nn
            x_b = _cross(y_b, z_b)
            r = np.empty((3, 3))
            for i in range(3):
                r[i, 0], r[i, 1], r[i, 2] = x_b[i], y_b[i], z_b[i]
            q_des = _rot_to_quat(r)
        else:
            q_des = q
    a_att = 1.0 - math.exp(-dt / prm[3])
    q_new = _slerp(q, q_des, a_att)
    a_thr = 1.0 - math.exp(-dt / prm[4])
    thrust = s[16] + a_thr * (thrust_target - s[16])
    qc = np.array([q[0], -q[1], -q[2], -q[3]])
    b = q_new
    dq = np.array([
        qc[0] * b[0] - qc[1] * b[1] - qc[2] * b[2] - qc[3] * b[3],
        qc[0] * b[1] + qc[1] * b[0] + qc[2] * b[3] - qc[3] * b[2],
        qc[0] * b[2] - qc[1] * b[3] + qc[2] * b[0] + qc[3] * b[1],
        qc[0] * b[3] + qc[1] * b[2] - qc[2] * b[1] + qc[3] * b[0],
    ])
    sgn = 1.0 if dq[0] >= 0 else -1.0
    rate = 2.0 * dq[1:] / dt * sgn
    r = _rotmat(q_new)
    v = s[3:6]
    v_air = v - wind
    sp = math.sqrt(v_air[0] ** 2 + v_air[1] ** 2 + v_air[2] ** 2)
    acc = np.empty(3)
    for i in range(3):
        acc[i] = -r[i, 2] * thrust - prm[5] * sp * v_air[i]
    acc[2] += _G
    vel = v + acc * dt
    pos = s[0:3] + 0.5 * (v + vel) * dt
    on_ground = 0.0
    if pos[2] >= prm[7]:
        pos[2] = prm[7]
        if vel[2] >= 0.0:
            vel = np.zeros(3)
            acc = np.zeros(3)
            on_ground = 1.0
            yw = _yaw(q_new)
            q_new = _qnorm(np.array([math.cos(yw / 2), 0.0, 0.0, math.sin(yw / 2)]))
            rate = np.zeros(3)
    out = np.empty(18)
    out[0:3], out[3:6], out[6:9], out[9:13], out[13:16] = pos, vel, acc, q_new, rate
    out[16], out[17] = thrust, on_ground
    return out


# ============================================================================================ perception
@dataclass
class _ObjTrack:
    track_id: int
    hits: int = 0
    misses: int = 0
    last: TargetTrack | None = None


class TruthPerception:
    """LOS tracks from the simulator's truth, as a camera + detector + tracker would deliver them.

    A frame captured at ``t_c`` is delivered at ``t_c + latency_s``; a dropped frame delivers nothing. An
    object is seen when it is in front of the camera, inside the image (attitude from the airframe at
    capture) and large enough (``size_m * fx / range >= min_detect_px``). Tracks confirm after
    ``confirm_frames`` hits, coast ``max_coast_frames`` misses, then are deleted (a new id on reappearance).
    ``object_of`` maps track ids back to simulator objects (for the metrics only).
    """

    def __init__(self, camera: Camera, params, rng: np.random.Generator) -> None:
        self.cam, self.p, self.rng = camera, params, rng
        self._next_id = 1
        self._obj: dict[int, _ObjTrack] = {}
        self._queue: list[tuple[float, float, tuple[TargetTrack, ...]]] = []
        self.object_of: dict[int, int] = {}
        self.current: tuple[TargetTrack, ...] = ()
        self.last_frame_t_s: float | None = None

    def capture(self, t_c: float, own_pos, own_vel, q_body_to_ned, objects) -> None:
        """``objects``: list of (index, pos_ned_m, vel_ned_mps, size_m, class_name)."""
        p = self.p
        if self.rng.random() < p.drop_prob:
            return
        r_cam = self.cam.r_ned_from_cam(q_body_to_ned)  # columns: cam x, y, z in NED
        intr = self.cam.intrinsics
        out = []
        for idx, pos, vel, size, cls in objects:
            rel = pos - own_pos
            rng_m = float(np.linalg.norm(rel))
            los = rel / rng_m
            seen = size * intr.fx_px / rng_m >= p.min_detect_px
            if seen and p.check_fov:
                b = r_cam.T @ los
                seen = b[2] > 1e-3 and abs(b[0] / b[2]) * intr.fx_px <= intr.width_px / 2 \
                    and abs(b[1] / b[2]) * intr.fy_px <= intr.height_px / 2
            st = self._obj.get(idx)
            if seen:
                if st is None:
                    st = self._obj[idx] = _ObjTrack(self._next_id)
                    self.object_of[self._next_id] = idx
                    self._next_id += 1
                st.hits += 1
                st.misses = 0
                vrel = vel - own_vel
                rate = (vrel - (vrel @ los) * los) / rng_m
                los_n = los + self.rng.normal(0.0, p.los_noise_rad, 3)
                los_n /= np.linalg.norm(los_n)
                rate_n = rate + self.rng.normal(0.0, p.los_rate_noise_radps, 3)
                rate_n -= (rate_n @ los_n) * los_n
                status = TrackStatus.CONFIRMED if st.hits >= p.confirm_frames else TrackStatus.TENTATIVE
                st.last = TargetTrack(
                    st.track_id, t_c, status, los_n, rate_n, np.eye(3) * p.los_noise_rad ** 2, size / rng_m,
                    class_name=cls, hits=st.hits,
                    range_m=rng_m * (1.0 + p.range_noise_frac * float(self.rng.standard_normal())))
                out.append(st.last)
            elif st is not None:
                st.misses += 1
                if st.misses > p.max_coast_frames or st.last is None:
                    del self._obj[idx]
                    continue
                if st.last.status is not TrackStatus.TENTATIVE:
                    st.last = replace(st.last, status=TrackStatus.COASTING, misses=st.misses)
                    out.append(st.last)
        self._queue.append((t_c + p.latency_s, t_c, tuple(out)))

    def poll(self, t_s: float) -> None:
        while self._queue and self._queue[0][0] <= t_s + 1e-9:
            t_d, _, tracks = self._queue.pop(0)
            self.current = tracks
            self.last_frame_t_s = t_d


def make_perception(mode: str, camera: Camera, params, rng: np.random.Generator):
    """``truth`` -> :class:`TruthPerception`; ``full`` -> renderer + detector + tracker (when they exist)."""
    if mode == "truth":
        return TruthPerception(camera, params, rng)
    if mode == "full":
        raise CampaignError("full perception runs whole engagements through sitl.engagement_demo.run_engagement "
                            "(run_campaign does that), not through run_scenario")
    raise CampaignError(f"unknown perception mode {mode!r} (truth | full)")


# ============================================================================================ metrics
def closest_approach_segment(r0: np.ndarray, r1: np.ndarray) -> tuple[float, float]:
    """Minimum of ``|r0 + s (r1 - r0)|`` over s in [0, 1] (relative position linear within a step).
    Returns (distance_m, s)."""
    d = r1 - r0
    dd = float(d @ d)
    s = 0.0 if dd < 1e-18 else min(1.0, max(0.0, -float(r0 @ d) / dd))
    return float(np.linalg.norm(r0 + s * d)), s


def speed_limited_lower_bound(t_s: np.ndarray, tgt_pos_ned_m: np.ndarray, start_ned_m: np.ndarray,
                              speed_mps: float) -> float:
    """Earliest t with ``|p_T(t) - start| <= speed * t`` on the sampled true path (linear interpolation);
    ``inf`` if never within the samples."""
    f = np.linalg.norm(tgt_pos_ned_m - start_ned_m, axis=1) - speed_mps * t_s
    idx = np.flatnonzero(f <= 0.0)
    if len(idx) == 0:
        return math.inf
    i = int(idx[0])
    if i == 0:
        return float(t_s[0])
    f0, f1 = f[i - 1], f[i]
    return float(t_s[i - 1] + (t_s[i] - t_s[i - 1]) * f0 / (f0 - f1))


# ============================================================================================ one run
@dataclass(frozen=True)
class RunConfig:
    kill_radius_m: float = 1.5
    physics_hz: float = 60.0
    camera_hz: float = 30.0
    perception: str = "truth"
    keep_trajectory: bool = False
    trajectory_every: int = 3                # frames between trajectory samples
    require_signed_commands: bool = True
    engagement_overrides: tuple[tuple[str, object], ...] = ()  # EngagementConfig field overrides
    camera_tilt_up_deg: float = 45.0         # DESIGN default is 20; see campaign_camera() for why campaigns use 45
    operator_authorizes_cue: bool = True     # operator may authorize the ground track before the camera has it
    min_detect_px: float | None = None       # truth perception's smallest apparent size found (None: the scenario's)


def engagement_config_for(sc: Scenario, signed: bool = True) -> EngagementConfig:
    """The engagement configuration a campaign run flies, with the scenario's law override, fence and zones.

    Field-of-view keeping is on, as in the onboard pipeline (``autonomy/runtime/configs/sitl.toml``), but
    scheduled: only within 300 m of the target (farther out the camera cannot see it and the speed matters)
    and only for small targets (<= 1 m across, from the camera track; a 0.4 m quad is first seen at ~90 m and,
    once out of the image, not seen again before the pass; a 1.5-2.5 m target is seen from 300+ m and re-found).

    Without it the campaign flew no FOV keeping at all: at 70 m/s the nose is ~66 deg down and a target level
    with us sits at the top edge of the 45 deg up-tilted camera, so a small target was first seen only once it
    was below us, and homing then needed a downward correction the airframe cannot make (at most ~0.85 g down)
    and tipped the camera off it (FPV weave seeds 0-124: 107 -> 123 intercepts with FOV keeping)."""
    return EngagementConfig(
        law=sc.law or "true_pn",
        fov_keep=True,
        fov_clamp_accel=True,
        fov_keep_range_m=300.0,
        fov_keep_max_size_m=1.0,
        require_signed_commands=signed,
        geofence=GeofenceConfig(sc.fence_polygon_ne_m, -5.0, sc.fence_max_altitude_m),
        no_engage_zones=tuple(Zone(n, p) for n, p in sc.no_engage_zones),
    )


def campaign_camera(tilt_up_deg: float) -> Camera:
    """The DESIGN camera (1280x720, 70 deg HFOV, 30 fps) with the given up-tilt.

    Why not the default 20 deg: a multirotor's nose drops with speed (drag ``k v^2`` is balanced by tilting
    the thrust): at 60 m/s in level flight it pitches ~56 deg down, so a 20 deg up-tilted camera with a
    +-21 deg vertical FOV looks ~36 deg below the flight path and loses a target ahead above ~40 m/s; a
    50 m/s crossing target then has no collision course the camera can keep in view. 45 deg keeps targets
    ahead in view from ~30 to ~66 m/s (:func:`autonomy.guidance.laws.fov_keep` enforces it).
    """
    base = Camera.default()
    return Camera(base.intrinsics, replace(base.mount, tilt_up_rad=math.radians(tilt_up_deg)), base.fps)


def run_scenario(sc: Scenario, rc: RunConfig = RunConfig(), camera: Camera | None = None) -> dict:
    """Fly one seeded engagement; returns a JSON-able result record."""
    cam = camera or campaign_camera(rc.camera_tilt_up_deg)
    rng = np.random.default_rng([sc.seed, 7, FAMILIES.index(sc.family) if sc.family in FAMILIES else 99])
    cfg = replace(engagement_config_for(sc, rc.require_signed_commands), **dict(rc.engagement_overrides))
    mach = EngagementMachine(cfg, cam, Autopilot.PX4)
    vp = MultirotorParams()
    prm = params_array(vp)
    gains = ControlGains()
    vs = state_to_array(MultirotorState())
    perc_params = sc.perception if rc.min_detect_px is None else replace(sc.perception, min_detect_px=rc.min_detect_px)
    perc = make_perception(rc.perception, cam, perc_params, rng)
    objs = [Target(sc.target)] + [Target(c) for c in sc.clutter]
    dt = 1.0 / rc.physics_hz
    sub = round(rc.physics_hz / rc.camera_hz)
    gust = np.zeros(3)
    wind_mean = np.asarray(sc.wind.mean_ned_mps, dtype=np.float64)
    cue_id = 1000 + sc.seed % 1000
    cue_queue: list[TargetCue] = []
    next_cue_t = 0.0
    cue_latest: TargetCue | None = None
    op_pending: list[OperatorCommand] = []
    op_asked: set[int] = set()
    op_auth_cue = (math.inf, -math.inf)  # validity window of the operator's ground-track authorization
    acc_cmd = np.zeros(3)
    yaw_cmd = math.nan
    min_dist = [math.inf] * len(objs)
    t_closest = math.inf
    unauthorized = fence_viol = nez_viol = 0
    confuser = False
    bird_strike = False
    killed_obj = None
    cpa_reached = False
    state = State.IDLE
    traj = []
    tgt_t, tgt_p = [0.0], [objs[0].pos_ned_m.copy()]
    t = 0.0
    n_frames = int(sc.t_max_s * rc.camera_hz)
    for frame in range(n_frames):
        own_pos, own_vel, q = vs[0:3].copy(), vs[3:6].copy(), vs[9:13].copy()
        # --- ground cue (period, latency, noise)
        if t >= next_cue_t:
            tg = objs[0]
            cue_queue.append(TargetCue(
                t, cue_id, tg.pos_ned_m + rng.normal(0, sc.cue.pos_std_m, 3),
                tg.vel_ned_mps + rng.normal(0, sc.cue.vel_std_mps, 3), sc.cue.pos_std_m, sc.cue.vel_std_mps))
            next_cue_t += sc.cue.period_s
        while cue_queue and cue_queue[0].t_s + sc.cue.latency_s <= t + 1e-9:
            cue_latest = cue_queue.pop(0)
        # --- camera frame captured now, delivered later
        perc.capture(t, own_pos, own_vel, q,
                     [(i, o.pos_ned_m, o.vel_ned_mps, o.spec.size_m, o.class_name) for i, o in enumerate(objs)])
        perc.poll(t)
        cmds = tuple(c for c in op_pending if c.t_s <= t + 1e-9)
        op_pending = [c for c in op_pending if c.t_s > t + 1e-9]
        veh = VehicleState(t, own_pos, own_vel, q, armed=True, mode="OFFBOARD", autopilot=Autopilot.PX4)
        out = mach.step(EngagementInput(t, veh, cue_latest, perc.current, cmds, last_link_rx_t_s=t,
                                        last_frame_t_s=perc.last_frame_t_s))
        state = out.state
        # --- simulated operator: authorizes the confirmed drone track after a delay, never a bird.
        # The ground track (cue id) once the radar track has been watched for operator_delay_s (operator "cue"),
        # or operator_delay_s after the interceptor asks about a camera track on it (operator "camera-track").
        eid = out.engaged_track_id
        if rc.operator_authorizes_cue and cue_id not in op_asked and cue_latest is not None and sc.engageable:
            op_asked.add(cue_id)
            ta = cue_latest.t_s + sc.cue.latency_s + sc.operator_delay_s
            op_pending.append(OperatorCommand(OperatorCommandKind.AUTHORIZE, ta, cue_id, 120.0, signed=True))
            op_auth_cue = (ta, ta + 120.0)
        if state is State.AWAIT_AUTHORIZATION and eid is not None and eid not in op_asked:
            op_asked.add(eid)
            obj = perc.object_of.get(eid)
            if obj is not None and objs[obj].class_name != "bird" and not math.isfinite(op_auth_cue[0]):
                # as the lockstep world's operator (sitl.world, "AUTH? track N cue M"): having checked camera
                # track N, authorize the ground track M it was handed over from, which then covers the same
                # target's later camera tracks (re-acquisitions); the accounting below counts TERMINAL on any
                # other object as unauthorized
                ta = t + sc.operator_delay_s
                op_pending.append(OperatorCommand(OperatorCommandKind.AUTHORIZE, ta, cue_id, 60.0, signed=True))
                op_auth_cue = (ta, ta + 60.0)
        # --- independent safety accounting
        if state is State.TERMINAL:
            obj = perc.object_of.get(eid)
            if not (op_auth_cue[0] <= t <= op_auth_cue[1] and obj == 0):
                unauthorized += 1
            if obj is not None and objs[obj].class_name == "bird":
                confuser = True
            if zone_containing(own_pos, cfg.no_engage_zones) is not None:
                nez_viol += 1
        if not inside_geofence(own_pos, cfg.geofence):
            fence_viol += 1
        if state in (State.ABORT, State.HOLD, State.RTL, State.DONE):
            break
        if out.acc_cmd_ned_mps2 is not None:
            acc_cmd = out.acc_cmd_ned_mps2
        elif out.brake or out.setpoint is None:
            acc_cmd = np.array([gains.vel_xy_p, gains.vel_xy_p, gains.vel_z_p]) * -own_vel
        yaw_cmd = out.setpoint.yaw_rad if out.setpoint is not None and out.setpoint.yaw_rad is not None else math.nan
        if rc.keep_trajectory and frame % rc.trajectory_every == 0:
            traj.append([round(t, 3), *np.round(own_pos, 1).tolist(), *np.round(objs[0].pos_ned_m, 1).tolist(),
                         state.value, *np.round(q, 4).tolist(), *np.round(own_vel, 1).tolist(),
                         *np.round(acc_cmd, 1).tolist(), eid, [x.track_id for x in perc.current]])
        # --- physics
        for _ in range(sub):
            gust = wind_step(gust, sc.wind, dt, rng) if sc.wind.gust_std_mps > 0 else gust
            p_own0 = vs[0:3].copy()
            p_obj0 = [o.pos_ned_m.copy() for o in objs]
            vs = vehicle_step_kernel(vs, prm, acc_cmd, yaw_cmd, dt, wind_mean + gust, True)
            for o in objs:
                o.step(t, dt, vs[0:3], rng)
            for i, o in enumerate(objs):
                d, s = closest_approach_segment(p_obj0[i] - p_own0, o.pos_ned_m - vs[0:3])
                if d < min_dist[i]:
                    min_dist[i] = d
                    if i == 0:
                        t_closest = t + s * dt
                if d < rc.kill_radius_m and killed_obj is None:
                    killed_obj = i
                if i == killed_obj and s < 1.0:
                    cpa_reached = True  # the closest approach lies within this step: the miss distance is final
            t += dt
            if killed_obj is not None and (cpa_reached or t - t_closest > 0.1):
                break
        if killed_obj is not None and not (cpa_reached or t - t_closest > 0.1):
            continue_after_kill = True
        else:
            continue_after_kill = False
        tgt_t.append(t)
        tgt_p.append(objs[0].pos_ned_m.copy())
        if continue_after_kill:
            continue
        if killed_obj is not None:
            if objs[killed_obj].class_name == "bird":
                # homing (TERMINAL) into a bird is an engaged confuser; flying through a flock on the way to the
                # cue is a collision hazard, not an engagement decision: counted apart, never hidden
                if state is State.TERMINAL:
                    confuser = True
                else:
                    bird_strike = True
            if killed_obj == 0 and state is not State.TERMINAL and not math.isfinite(op_auth_cue[0]):
                unauthorized += 1
            if zone_containing(objs[killed_obj].pos_ned_m, cfg.no_engage_zones) is not None:
                nez_viol += 1
            break
    intercept = killed_obj == 0 and sc.engageable
    t_lb = speed_limited_lower_bound(np.array(tgt_t), np.array(tgt_p), np.zeros(3), vp.max_speed_mps)
    res = result_record(
        sc, cfg.law, intercept=bool(intercept), miss_distance_m=min_dist[0], t_intercept_s=t_closest,
        t_lower_bound_s=t_lb, unauthorized=unauthorized, fence=fence_viol, no_engage=nez_viol, confuser=confuser,
        bird_strike=bird_strike, final_state=state.value, sim_time_s=t,
        decisions=[[round(d.t_s, 2), d.from_state.value, d.to_state.value, d.reason.value]
                   for d in mach.decisions])
    if rc.keep_trajectory:
        res["trajectory"] = traj
    return res


def result_record(sc: Scenario, law: str, *, intercept: bool, miss_distance_m: float, t_intercept_s: float,
                  t_lower_bound_s: float, unauthorized: int, fence: int, no_engage: int, confuser: bool,
                  final_state: str, sim_time_s: float, decisions: list, bird_strike: bool = False) -> dict:
    """One run's JSON record, the same for both perception modes (what :func:`summarize` reads).

    Times in seconds from launch; ``time_ratio`` = t_intercept / t_lower_bound for an intercept with a finite
    bound, else None; the safety counts become 0/1 flags (did it happen in this run)."""
    ok_lb = math.isfinite(t_lower_bound_s)
    return {
        "family": sc.family, "seed": sc.seed, "law": law, "engageable": sc.engageable,
        "target_kind": sc.target.kind, "target_speed_mps": round(sc.target_speed_mps, 2),
        "aspect_deg": round(sc.aspect_deg, 1), "intercept": bool(intercept),
        "miss_distance_m": round(float(miss_distance_m), 3),
        "t_intercept_s": round(t_intercept_s, 3) if intercept else None,
        "t_lower_bound_s": round(t_lower_bound_s, 3) if ok_lb else None,
        "time_ratio": (round(t_intercept_s / t_lower_bound_s, 4)
                       if intercept and ok_lb and t_lower_bound_s > 0 else None),
        "unauthorized_engagements": int(unauthorized > 0), "fence_violations": int(fence > 0),
        "no_engage_violations": int(no_engage > 0), "confusers_engaged": int(bool(confuser)),
        "incidental_bird_strikes": int(bool(bird_strike)),
        "final_state": final_state, "sim_time_s": round(sim_time_s, 2),
        "decisions": decisions[:40],
    }


# ============================================================================================ full pipeline
FULL_EXTRA_FAMILIES = ("quick",)   # sitl.video_server.quick_scenario: the short demo crossing (full mode only)


def full_scenario(family: str, seed: int) -> Scenario:
    """The scenario a full-pipeline run flies: a campaign family, or ``quick`` (the demo crossing)."""
    if family == "quick":
        from sitl.video_server import quick_scenario

        return quick_scenario(seed)
    return make_scenario(family, seed)


def full_run_record(res, law: str, keep_trajectory: bool = False) -> dict:
    """The campaign record of a :class:`sitl.engagement_demo.RunResult` (the full pipeline), with the metrics
    computed as for truth runs: the speed-limited lower bound from launch (the vehicle's position when the run
    started, after boot and arming) over the target's true path sampled by the world (10 Hz), at the airframe's
    speed limit (:class:`MultirotorParams`, the interceptor preset's MPC_XY_VEL_MAX is the same 70 m/s).
    ``t_intercept_s`` is the time the target entered the kill radius (the world stops there)."""
    t0 = float(getattr(res, "t0", 0.0))
    tr = np.asarray(res.traj, dtype=float).reshape(-1, 10)
    tr = tr[tr[:, 0] >= t0 - 1e-9]
    t_lb = math.inf
    if len(tr):
        t_lb = speed_limited_lower_bound(tr[:, 0] - t0, tr[:, 4:7], tr[0, 1:4], MultirotorParams().max_speed_mps)
    t_int = res.t_intercept_s if res.t_intercept_s is not None else math.inf
    out = result_record(
        res.scenario, law, intercept=res.intercept, miss_distance_m=res.miss_distance_m, t_intercept_s=t_int,
        t_lower_bound_s=t_lb, unauthorized=res.unauthorized_engagements, fence=res.fence_violations,
        no_engage=res.no_engage_violations, confuser=bool(res.confusers_engaged), final_state=res.final_state,
        sim_time_s=res.t_end_s, decisions=res.decisions)
    out.update({"outcome": res.outcome, "frames": res.frames, "latency_ms": res.latency,
                "wall_s": round(res.wall_s, 1), "safety_notes": res.safety_notes})
    if keep_trajectory and len(tr):
        # the truth campaign's row layout (t, own pos, target pos, ...) at the same ~10 Hz
        out["trajectory"] = [[round(r[0] - t0, 3), *np.round(r[1:7], 1).tolist()] for r in tr]
    return out


# ============================================================================================ campaigns
COMPARISON_FAMILY = "shahed_crossing"
SUMMARY_KEYS = ("intercept_rate", "unauthorized_engagements", "fence_violations", "no_engage_violations",
                "confusers_engaged", "median_time_ratio")


@dataclass(frozen=True)
class CampaignConfig:
    runs: int = 1000
    seed: int = 0
    families: tuple[str, ...] = FAMILIES
    perception: str = "truth"
    workers: int = 2
    compare_pure_pursuit: bool = True
    trajectories_per_family: int = 2
    run: RunConfig = RunConfig()
    full_t_max_s: float | None = None        # full mode: cap on simulated time per run (None: the scenario's)
    full_config_path: str | None = None      # full mode: companion TOML (None: autonomy/runtime/configs/sitl.toml)
    law: str | None = None                   # guidance law of every run but the pure-pursuit twins (None: the
                                             # scenario's; truth: true_pn, full: autonomy/runtime/configs/sitl.toml)


def plan(cc: CampaignConfig) -> list[tuple[str, int, str | None, bool]]:
    """(family, seed, law override, keep trajectory) for every run, round-robin over families; plus a
    pure-pursuit twin of every crossing run when ``compare_pure_pursuit``."""
    known = FAMILIES + (FULL_EXTRA_FAMILIES if cc.perception == "full" else ())
    if cc.perception not in ("truth", "full"):
        raise CampaignError(f"unknown perception mode {cc.perception!r} (truth | full)")
    for f in cc.families:
        if f not in known:
            raise CampaignError(f"unknown family {f!r}; choose from {', '.join(known)}")
    if cc.runs < 1:
        raise CampaignError("--runs must be at least 1")
    jobs = []
    for i in range(cc.runs):
        fam = cc.families[i % len(cc.families)]
        k = i // len(cc.families)
        jobs.append((fam, cc.seed * 1_000_003 + k, cc.law, k < cc.trajectories_per_family))
    if cc.compare_pure_pursuit:
        jobs += [(f, s, "pure_pursuit", False) for f, s, _, _ in list(jobs) if f == COMPARISON_FAMILY]
    return jobs


def _run_job(args) -> dict:
    fam, seed, law, keep, rc = args
    sc = make_scenario(fam, seed)
    if law is not None:
        sc = replace(sc, law=law)
    return run_scenario(sc, replace(rc, keep_trajectory=keep))


def _run_full_job(args) -> dict:
    """One full-pipeline run (simulated PX4 over MAVLink on 127.0.0.1, rendered camera, ONNX detector,
    tracker, engagement machine, simulated operator; no video) -> its campaign record."""
    fam, seed, law, keep, t_max_s, config_path = args
    from autonomy.config import load_config
    from sitl.engagement_demo import SITL_CONFIG, RunOptions, run_engagement

    sc = full_scenario(fam, seed)
    if law is not None:
        sc = replace(sc, law=law)
    try:
        res = run_engagement(sc, RunOptions(video=False, t_max_s=t_max_s, config_path=config_path))
        law_used = sc.law or load_config(config_path or SITL_CONFIG).engagement.law
    except Exception as exc:  # one clear line naming the run
        raise CampaignError(f"full-pipeline run {fam} seed {seed} failed: {type(exc).__name__}: {exc}") from exc
    rec = full_run_record(res, law_used, keep)
    rec["family"] = fam   # the campaign's family name ("quick" flies the "quick_crossing" scenario)
    return rec


def _progress(done: int, total: int, t0: float, stream) -> None:
    width = 30
    frac = done / total
    el = time.perf_counter() - t0
    eta = el / done * (total - done) if done else 0.0
    stream.write(f"\r[{'#' * int(width * frac):<{width}}] {done}/{total} runs  {el:5.0f} s  eta {eta:4.0f} s")
    if done == total:
        stream.write("\n")
    stream.flush()


def run_campaign(cc: CampaignConfig, progress=sys.stderr) -> list[dict]:
    """Run every planned job over ``cc.workers`` processes (seeded: the same config gives the same results).

    ``perception="truth"``: :func:`run_scenario`. ``perception="full"``: each run is a whole lockstep
    engagement through :func:`sitl.engagement_demo.run_engagement` (~30-100 s of CPU each), its record built
    by :func:`full_run_record` so that :func:`summarize` computes the same metrics."""
    planned = plan(cc)
    if cc.perception == "full":
        fn = _run_full_job
        jobs = [(f, s, law, keep, cc.full_t_max_s, cc.full_config_path) for f, s, law, keep in planned]
    else:
        fn = _run_job
        run_cfg = replace(cc.run, perception=cc.perception)
        jobs = [(f, s, law, keep, run_cfg) for f, s, law, keep in planned]
    t0 = time.perf_counter()
    results: list[dict] = []
    if cc.workers <= 1:
        for j in jobs:
            results.append(fn(j))
            if progress is not None:
                _progress(len(results), len(jobs), t0, progress)
    else:
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(cc.workers) as pool:
            for r in pool.imap_unordered(fn, jobs, chunksize=1 if cc.perception == "full" else 2):
                results.append(r)
                if progress is not None:
                    _progress(len(results), len(jobs), t0, progress)
    results.sort(key=lambda r: (r["law"], r["family"], r["seed"]))
    return results


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a binomial rate ``k / n`` (95 % for z = 1.96; Wilson 1927, as recommended by
    Brown, Cai & DasGupta 2001 over the normal approximation for small n or rates near 0 or 1). None for n = 0.

    Full-pipeline outcomes are close to coin flips around the kill radius (the same engagement against other
    rendered scenery changes ~40 % of them), so a rate from tens of runs is only known to about +-0.12."""
    if n <= 0:
        return None
    p = k / n
    zz = z * z / n
    centre = (p + zz / 2.0) / (1.0 + zz)
    half = z / (1.0 + zz) * math.sqrt(p * (1.0 - p) / n + zz / (4.0 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _stats(rs: list[dict]) -> dict:
    eng = [r for r in rs if r["engageable"]]
    n_int = sum(r["intercept"] for r in eng)
    ci = wilson_interval(n_int, len(eng))
    tr = [r["time_ratio"] for r in eng if r["time_ratio"] is not None]
    md = [r["miss_distance_m"] for r in eng]
    return {
        "runs": len(rs),
        "engageable_runs": len(eng),
        "intercepts": n_int,
        "intercept_rate": (n_int / len(eng)) if eng else None,
        "intercept_rate_ci95": [round(ci[0], 3), round(ci[1], 3)] if ci is not None else None,
        "unauthorized_engagements": sum(r["unauthorized_engagements"] for r in rs),
        "fence_violations": sum(r["fence_violations"] for r in rs),
        "no_engage_violations": sum(r["no_engage_violations"] for r in rs),
        "confusers_engaged": sum(r["confusers_engaged"] for r in rs),
        "incidental_bird_strikes": sum(r.get("incidental_bird_strikes", 0) for r in rs),
        "median_time_ratio": float(np.median(tr)) if tr else None,
        "p90_time_ratio": float(np.percentile(tr, 90)) if tr else None,
        "median_miss_distance_m": float(np.median(md)) if md else None,
        "p90_miss_distance_m": float(np.percentile(md, 90)) if md else None,
    }


def summarize(results: list[dict], cc: CampaignConfig, wall_s: float) -> dict:
    main = [r for r in results if r["law"] != "pure_pursuit"]
    pp = [r for r in results if r["law"] == "pure_pursuit"]
    out = {"config": {"runs": cc.runs, "seed": cc.seed, "families": list(cc.families), "perception": cc.perception,
                      "workers": cc.workers, "kill_radius_m": cc.run.kill_radius_m,
                      "camera_tilt_up_deg": cc.run.camera_tilt_up_deg if cc.perception == "truth" else None,
                      "operator_authorizes_cue": cc.run.operator_authorizes_cue if cc.perception == "truth" else None,
                      "min_detect_px": cc.run.min_detect_px if cc.perception == "truth" else None, "law": cc.law,
                      "full_t_max_s": cc.full_t_max_s, "full_config_path": cc.full_config_path,
                      "engagement_overrides": dict(cc.run.engagement_overrides)},
           "wall_s": round(wall_s, 1)}
    out.update(_stats(main))
    out["per_family"] = {f: _stats([r for r in main if r["family"] == f]) for f in cc.families}
    if pp:
        pn_x = [r for r in main if r["family"] == COMPARISON_FAMILY]
        out["crossing_comparison"] = {"pn": _stats(pn_x), "pure_pursuit": _stats(pp)}
    return out


def write_outputs(results: list[dict], summary: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    slim = [{k: v for k, v in r.items() if k != "trajectory"} for r in results]
    (out_dir / "runs.json").write_text(json.dumps(slim))
    written = [out_dir / "summary.json", out_dir / "runs.json"]
    return written + write_plots(results, out_dir)


def write_plots(results: list[dict], out_dir: Path) -> list[Path]:
    """Miss-distance histogram, intercept rate vs target speed and aspect, example trajectories (matplotlib
    is optional: without it no plots are written and the summary says so)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        (out_dir / "PLOTS_SKIPPED.txt").write_text("matplotlib is not installed: pip install .[plots]\n")
        return []
    main = [r for r in results if r["law"] != "pure_pursuit" and r["engageable"]]
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4))
    md = np.array([min(r["miss_distance_m"], 10.0) for r in main])
    ax.hist(md, bins=np.linspace(0, 10, 41), color="tab:blue")
    ax.axvline(1.5, color="r", ls="--", label="kill radius")
    ax.set_xlabel("miss distance (m, clipped at 10)")
    ax.set_ylabel("runs")
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / "miss_distance_hist.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, bins, label in ((axs[0], "target_speed_mps", np.arange(0, 65, 5), "target speed (m/s)"),
                                 (axs[1], "aspect_deg", np.arange(0, 190, 15), "aspect (deg, 0 = head-on)")):
        x = np.array([r[key] for r in main], dtype=float)
        y = np.array([r["intercept"] for r in main], dtype=float)
        idx = np.digitize(x, bins)
        cx, cy = [], []
        for b in range(1, len(bins)):
            m = idx == b
            if m.any():
                cx.append(0.5 * (bins[b - 1] + bins[b]))
                cy.append(y[m].mean())
        ax.plot(cx, cy, "o-")
        ax.set_ylim(0, 1.05)
        ax.set_xlabel(label)
        ax.set_ylabel("intercept rate")
    fig.tight_layout()
    paths.append(out_dir / "intercept_rate_vs_speed_aspect.png")
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    ex = [r for r in results if r.get("trajectory")]
    if ex:
        fig, ax = plt.subplots(figsize=(7, 7))
        for r in ex[:16]:
            tr = np.array([row[1:7] for row in r["trajectory"]], dtype=float)
            line, = ax.plot(tr[:, 1], tr[:, 0], lw=1, label=f"{r['family']} {r['seed']}")
            ax.plot(tr[:, 4], tr[:, 3], ls=":", lw=1, color=line.get_color())
        ax.plot([0], [0], "k^")
        ax.set_xlabel("east (m)")
        ax.set_ylabel("north (m)")
        ax.set_aspect("equal", "datalim")
        ax.legend(fontsize=6)
        ax.set_title("interceptor (solid) and target (dotted)")
        fig.tight_layout()
        paths.append(out_dir / "example_trajectories.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
