"""Multirotor point-mass model with attitude lag, thrust and tilt limits, quadratic drag, wind and ground.

Good enough for guidance work, not for control design: the inner attitude loop is a first-order lag of the
thrust direction (``attitude_tau_s``) and of the thrust magnitude (``thrust_tau_s``); the outer loops
(position -> velocity -> acceleration) follow PX4's ``MulticopterPositionControl`` structure (P on position,
P on velocity plus feed-forward, then tilt and thrust limits).

All functions are pure: a :class:`MultirotorState` goes in, a new one comes out. Frames: NED world, FRD body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from autonomy.geometry import GRAVITY_MPS2, quat_multiply, quat_normalize, quat_slerp, quat_to_rotmat

_G_NED = np.array([0.0, 0.0, GRAVITY_MPS2])


@dataclass(frozen=True)
class MultirotorParams:
    """Airframe. Defaults: DESIGN.md interceptor (70 m/s max speed, 30 m/s^2 max acceleration)."""

    max_speed_mps: float = 70.0
    max_accel_mps2: float = 30.0          # largest commanded acceleration magnitude (any direction)
    max_tilt_rad: float = math.radians(75.0)
    max_thrust_to_weight: float = 3.4     # sqrt(30^2 + g^2) / g ~ 3.2 plus margin
    attitude_tau_s: float = 0.06          # thrust-direction lag (first order)
    thrust_tau_s: float = 0.03
    drag_per_m: float = 0.0045            # quadratic drag a = -k |v_air| v_air (terminal ~80 m/s at 30 m/s^2)
    yaw_rate_max_radps: float = math.radians(200.0)
    ground_z_ned_m: float = 0.0           # flat ground at this NED down coordinate


@dataclass(frozen=True)
class MultirotorState:
    t_s: float = 0.0
    pos_ned_m: np.ndarray = field(default_factory=lambda: np.zeros(3))
    vel_ned_mps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acc_ned_mps2: np.ndarray = field(default_factory=lambda: np.zeros(3))
    q_body_to_ned: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    rate_body_radps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    thrust_mps2: float = 0.0              # specific thrust along body -z
    on_ground: bool = True


@dataclass(frozen=True)
class ControlGains:
    """PX4-like defaults (MPC_XY_P 0.95, MPC_Z_P 1.0, velocity P ~ 1.8 / 4.0)."""

    pos_xy_p: float = 0.95
    pos_z_p: float = 1.0
    vel_xy_p: float = 1.8
    vel_z_p: float = 4.0


def _yaw_of(q: np.ndarray) -> float:
    w, x, y, z = q
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def _heading_of(q: np.ndarray) -> float:
    """Heading of the horizontal reference axis x_c used by :func:`attitude_for_thrust` (PX4 convention):
    x_c is horizontal and perpendicular to body y, so it is consistent with the commanded yaw even when the
    thrust is tilted sideways (ZYX Euler yaw is not: slewing from it drifts the heading under lateral tilt)."""
    w, x, y, z = q
    yb_n, yb_e = 2 * (x * y - w * z), 1 - 2 * (x * x + z * z)  # body y axis in NED, north/east parts
    if math.hypot(yb_n, yb_e) < 1e-6:
        return _yaw_of(q)
    return math.atan2(-yb_n, yb_e)


def attitude_for_thrust(thrust_dir_ned: np.ndarray, yaw_rad: float) -> np.ndarray:
    """Quaternion whose body -z axis points along ``thrust_dir_ned`` (unit) with the given heading."""
    z_b = -thrust_dir_ned / np.linalg.norm(thrust_dir_ned)
    x_c = np.array([math.cos(yaw_rad), math.sin(yaw_rad), 0.0])
    y_b = np.cross(z_b, x_c)
    n = np.linalg.norm(y_b)
    if n < 1e-6:  # thrust horizontal along the heading: keep previous convention
        y_b = np.array([-math.sin(yaw_rad), math.cos(yaw_rad), 0.0])
    else:
        y_b /= n
    x_b = np.cross(y_b, z_b)
    r = np.column_stack([x_b, y_b, z_b])
    from autonomy.geometry import rotmat_to_quat

    return rotmat_to_quat(r)


def limit_accel_command(acc_cmd_ned_mps2: np.ndarray, p: MultirotorParams) -> np.ndarray:
    """Saturate a commanded acceleration: magnitude, then tilt and thrust limits. Returns achievable acc."""
    acc = np.asarray(acc_cmd_ned_mps2, dtype=np.float64)
    n = float(np.linalg.norm(acc))
    if n > p.max_accel_mps2:
        acc = acc * (p.max_accel_mps2 / n)
    thrust_vec = acc - _G_NED                      # specific force the rotors must produce
    up = -thrust_vec[2]
    horiz = math.hypot(thrust_vec[0], thrust_vec[1])
    up = max(up, 0.15 * GRAVITY_MPS2)              # rotors cannot pull down; keep some thrust
    max_horiz = up * math.tan(p.max_tilt_rad)
    scale = min(1.0, max_horiz / horiz) if horiz > 1e-9 else 1.0
    thrust_vec = np.array([thrust_vec[0] * scale, thrust_vec[1] * scale, -up])
    t_max = p.max_thrust_to_weight * GRAVITY_MPS2
    tn = float(np.linalg.norm(thrust_vec))
    if tn > t_max:  # keep the vertical component first (altitude safety), shrink horizontal
        up = min(up, t_max)
        hmax = math.sqrt(max(t_max * t_max - up * up, 0.0))
        h = math.hypot(thrust_vec[0], thrust_vec[1])
        s = min(1.0, hmax / h) if h > 1e-9 else 1.0
        thrust_vec = np.array([thrust_vec[0] * s, thrust_vec[1] * s, -up])
    return thrust_vec + _G_NED


def velocity_control(
    vel_sp_ned_mps: np.ndarray,
    acc_ff_ned_mps2: np.ndarray,
    vel_ned_mps: np.ndarray,
    gains: ControlGains,
) -> np.ndarray:
    """P velocity loop plus feed-forward -> commanded acceleration (NaN axes of the set-point give 0)."""
    err = np.nan_to_num(np.asarray(vel_sp_ned_mps, dtype=np.float64) - vel_ned_mps)
    ff = np.nan_to_num(np.asarray(acc_ff_ned_mps2, dtype=np.float64))
    k = np.array([gains.vel_xy_p, gains.vel_xy_p, gains.vel_z_p])
    return k * err + ff


def position_control(
    pos_sp_ned_m: np.ndarray,
    vel_ff_ned_mps: np.ndarray,
    pos_ned_m: np.ndarray,
    gains: ControlGains,
    max_speed_xy_mps: float,
    max_speed_up_mps: float,
    max_speed_down_mps: float,
) -> np.ndarray:
    """P position loop plus velocity feed-forward -> velocity set-point, clipped like PX4 (per axis group).

    Axes whose position set-point is NaN take the feed-forward velocity alone (NaN if that is NaN too).
    """
    pos_sp = np.asarray(pos_sp_ned_m, dtype=np.float64)
    ff = np.asarray(vel_ff_ned_mps, dtype=np.float64)
    k = np.array([gains.pos_xy_p, gains.pos_xy_p, gains.pos_z_p])
    p_term = k * (pos_sp - pos_ned_m)
    vel = np.where(np.isnan(pos_sp), ff, p_term + np.nan_to_num(ff))
    h = math.hypot(np.nan_to_num(vel[0]), np.nan_to_num(vel[1]))
    if h > max_speed_xy_mps:
        vel[:2] *= max_speed_xy_mps / h
    if not np.isnan(vel[2]):
        vel[2] = min(max(vel[2], -max_speed_up_mps), max_speed_down_mps)
    return vel


def step(
    s: MultirotorState,
    p: MultirotorParams,
    acc_cmd_ned_mps2: np.ndarray,
    yaw_cmd_rad: float | None,
    dt_s: float,
    wind_ned_mps: np.ndarray | None = None,
    armed: bool = True,
) -> MultirotorState:
    """Advance the airframe by dt_s under a commanded acceleration (already from the outer loops).

    ``yaw_cmd_rad`` None keeps the current heading. Disarmed or idle on the ground: nothing moves.
    """
    if dt_s <= 0.0:
        raise ValueError("dt_s must be positive")
    wind = np.zeros(3) if wind_ned_mps is None else np.asarray(wind_ned_mps, dtype=np.float64)
    q = s.q_body_to_ned
    yaw_now = _heading_of(q)
    if not armed:
        acc_ach = np.zeros(3) if s.on_ground else _G_NED.copy()
        thrust_target = 0.0
        q_des = q
    else:
        acc_ach = limit_accel_command(acc_cmd_ned_mps2, p)
        thrust_vec = acc_ach - _G_NED
        thrust_target = float(np.linalg.norm(thrust_vec))
        yaw_t = yaw_now if yaw_cmd_rad is None or not math.isfinite(yaw_cmd_rad) else yaw_cmd_rad
        dyaw = (yaw_t - yaw_now + math.pi) % (2 * math.pi) - math.pi
        max_dyaw = p.yaw_rate_max_radps * dt_s
        yaw_t = yaw_now + max(-max_dyaw, min(max_dyaw, dyaw))
        q_des = attitude_for_thrust(thrust_vec, yaw_t) if thrust_target > 1e-6 else q
    # first-order lags
    a_att = 1.0 - math.exp(-dt_s / p.attitude_tau_s)
    q_new = quat_slerp(q, q_des, a_att)
    a_thr = 1.0 - math.exp(-dt_s / p.thrust_tau_s)
    thrust = s.thrust_mps2 + a_thr * (thrust_target - s.thrust_mps2)
    # body rates from the attitude change (small-angle): dq = q^-1 * q_new ~ [1, w*dt/2]
    dq = quat_multiply(q * np.array([1.0, -1, -1, -1]), q_new)
    rate = 2.0 * dq[1:] / dt_s * (1.0 if dq[0] >= 0 else -1.0)
    r = quat_to_rotmat(q_new)
    v_air = s.vel_ned_mps - wind
    drag = -p.drag_per_m * float(np.linalg.norm(v_air)) * v_air
    acc = r @ np.array([0.0, 0.0, -thrust]) + _G_NED + drag
    vel = s.vel_ned_mps + acc * dt_s
    pos = s.pos_ned_m + 0.5 * (s.vel_ned_mps + vel) * dt_s
    on_ground = False
    if pos[2] >= p.ground_z_ned_m:  # ground contact: no penetration, friction stops sliding
        pos = np.array([pos[0], pos[1], p.ground_z_ned_m])
        if vel[2] >= 0.0:
            vel = np.zeros(3)
            acc = np.zeros(3)
            on_ground = True
            # on the ground the airframe sits level at its heading
            q_new = quat_normalize(np.array([math.cos(_yaw_of(q_new) / 2), 0.0, 0.0, math.sin(_yaw_of(q_new) / 2)]))
            rate = np.zeros(3)
    return replace(
        s, t_s=s.t_s + dt_s, pos_ned_m=pos, vel_ned_mps=vel, acc_ned_mps2=acc, q_body_to_ned=q_new,
        rate_body_radps=rate, thrust_mps2=thrust, on_ground=on_ground,
    )


@dataclass(frozen=True)
class WindParams:
    mean_ned_mps: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gust_std_mps: float = 0.0
    gust_tau_s: float = 2.0


def wind_step(gust_ned_mps: np.ndarray, w: WindParams, dt_s: float, rng: np.random.Generator) -> np.ndarray:
    """Ornstein-Uhlenbeck gust update (exact discretisation). Returns the new gust; wind = mean + gust."""
    a = math.exp(-dt_s / w.gust_tau_s)
    return a * gust_ned_mps + w.gust_std_mps * math.sqrt(1.0 - a * a) * rng.standard_normal(3)
