"""Guidance laws: pure functions on NumPy arrays (NED world frame, SI units), no I/O, no state.

References:
- Zarchan, *Tactical and Strategic Missile Guidance*, 6th ed., ch. 2 (PN, ``a = N' Vc lambda_dot``), ch. 8
  (augmented PN, ``+ N'/2 a_T`` normal to the line of sight).
- Shneydor, *Missile Guidance and Pursuit*, ch. 2 (pure pursuit) and ch. 5 (pure vs true PN).
- Predicted intercept point: the smallest positive root of ``|p + v t| = s t`` (constant target velocity).

Vector conventions: ``los_ned`` is the unit vector from us to the target; ``los_rate_ned_radps`` is its time
derivative (perpendicular to ``los_ned``, rad/s); accelerations are kinematic accelerations in NED (m/s^2,
gravity compensated by the autopilot, as PX4 OFFBOARD and ArduPilot GUIDED expect).
"""

from __future__ import annotations

import math

import numpy as np

from autonomy.geometry import GRAVITY_MPS2

_G_NED = np.array([0.0, 0.0, GRAVITY_MPS2])


class GuidanceError(ValueError):
    """Invalid input to a guidance law (non-finite vector, non-positive limit)."""


def _vec3(name: str, v) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    # sum of the components is non-finite iff one is (inf - inf = nan): cheaper than np.isfinite().all()
    if a.shape != (3,) or not math.isfinite(float(a[0] + a[1] + a[2])):
        raise GuidanceError(f"{name} must be a finite 3-vector, got {v!r}")
    return a


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else np.zeros(3)


# ---------------------------------------------------------------------------------------------- intercept
def solve_intercept(
    rel_pos_ned_m, tgt_vel_ned_mps, speed_mps: float
) -> tuple[float, np.ndarray] | None:
    """Earliest time ``t`` at which a vehicle flying straight at ``speed_mps`` can meet a target at
    ``rel_pos_ned_m`` (target minus us) moving at constant ``tgt_vel_ned_mps``.

    Returns ``(t_s, intercept_rel_ned_m)`` (intercept point relative to us) or None when the target outruns us.
    Solves ``|p + v t|^2 = (s t)^2``: ``(v.v - s^2) t^2 + 2 (p.v) t + p.p = 0``.
    """
    p = _vec3("rel_pos_ned_m", rel_pos_ned_m)
    v = _vec3("tgt_vel_ned_mps", tgt_vel_ned_mps)
    if not speed_mps > 0.0:
        raise GuidanceError(f"speed_mps must be positive, got {speed_mps}")
    a = float(v @ v) - speed_mps * speed_mps
    b = 2.0 * float(p @ v)
    c = float(p @ p)
    if c < 1e-12:
        return 0.0, np.zeros(3)
    if abs(a) < 1e-9:  # equal speeds: linear
        if b >= 0.0:
            return None
        t = -c / b
    else:
        disc = b * b - 4.0 * a * c
        if disc < 0.0:
            return None
        sq = math.sqrt(disc)
        roots = [r for r in ((-b - sq) / (2 * a), (-b + sq) / (2 * a)) if r > 0.0]
        if not roots:
            return None
        t = min(roots)
    return t, p + v * t


def predicted_intercept_point(
    own_pos_ned_m, tgt_pos_ned_m, tgt_vel_ned_mps, speed_mps: float, max_lead_s: float = 120.0
) -> tuple[np.ndarray, float]:
    """Absolute predicted intercept point (NED m) and time-to-go (s).

    When no intercept exists (target faster and receding) the aim point is the target's position
    ``max_lead_s`` ahead, i.e. a tail chase toward where it is going (time-to-go then ``inf``).
    """
    own = _vec3("own_pos_ned_m", own_pos_ned_m)
    tp = _vec3("tgt_pos_ned_m", tgt_pos_ned_m)
    tv = _vec3("tgt_vel_ned_mps", tgt_vel_ned_mps)
    sol = solve_intercept(tp - own, tv, speed_mps)
    if sol is None:
        return tp + tv * max_lead_s, math.inf
    t, _ = sol
    t = min(t, max_lead_s)
    return tp + tv * t, t


# ---------------------------------------------------------------------------------------------- laws
def true_pn(los_ned, los_rate_ned_radps, closing_speed_mps: float, nav_gain: float = 4.0) -> np.ndarray:
    """True proportional navigation ``a = N * Vc * d(los)/dt`` (m/s^2), perpendicular to the line of sight.

    ``d(los)/dt = omega x los`` with ``omega = los x d(los)/dt``, so this equals Zarchan's ``N' Vc lambda_dot``
    applied normal to the LOS. Zero when the LOS does not rotate.
    """
    los = _unit(_vec3("los_ned", los_ned))
    rate = _vec3("los_rate_ned_radps", los_rate_ned_radps)
    rate = rate - (rate @ los) * los  # only the rotation part counts
    return nav_gain * max(closing_speed_mps, 0.0) * rate


def pure_pn(los_ned, los_rate_ned_radps, own_vel_ned_mps, nav_gain: float = 4.0) -> np.ndarray:
    """Pure PN ``a = N * |V_m| * (omega x v_hat_m)``: perpendicular to our own velocity (Shneydor ch. 5)."""
    los = _unit(_vec3("los_ned", los_ned))
    rate = _vec3("los_rate_ned_radps", los_rate_ned_radps)
    vel = _vec3("own_vel_ned_mps", own_vel_ned_mps)
    omega = np.cross(los, rate)
    speed = float(np.linalg.norm(vel))
    if speed < 1e-6:
        return np.zeros(3)
    return nav_gain * speed * np.cross(omega, vel / speed)


def augmented_pn(
    los_ned, los_rate_ned_radps, closing_speed_mps: float, tgt_acc_ned_mps2, nav_gain: float = 4.0
) -> np.ndarray:
    """Augmented PN: true PN plus ``N/2`` times the target acceleration normal to the LOS (Zarchan ch. 8)."""
    los = _unit(_vec3("los_ned", los_ned))
    at = _vec3("tgt_acc_ned_mps2", tgt_acc_ned_mps2)
    at_perp = at - (at @ los) * los
    return true_pn(los, los_rate_ned_radps, closing_speed_mps, nav_gain) + 0.5 * nav_gain * at_perp


def lag_optimal_gain(t_go_s: float, lag_s: float) -> float:
    """Zarchan's optimal-guidance gain for a first-order control lag ``lag_s`` (ch. 8, "optimal guidance"):

    ``N'(x) = 6 x^2 (e^-x - 1 + x) / (2 x^3 + 3 + 6 x - 6 x^2 - 12 x e^-x - 3 e^-2x)``, ``x = t_go / lag``.

    3 far out (x -> inf, where it is augmented PN with N' = 3), rising as time-to-go falls to a few lags (5.8
    at x = 3, 12 at x = 1). ``inf`` time-to-go gives 3; non-positive time-to-go or lag raise GuidanceError."""
    if not (t_go_s > 0.0 and lag_s > 0.0):
        raise GuidanceError(f"t_go_s and lag_s must be positive, got {t_go_s}, {lag_s}")
    # below 0.05 lags the ratio (-> 3 x^4 / x^4 ...) loses its digits to cancellation; nothing flies that close.
    # From there up the denominator is positive (smallest, ~1e-7, at 0.05)
    x = max(t_go_s / lag_s, 0.05)
    if x > 1e4:
        return 3.0
    e = math.exp(-x)
    den = 2.0 * x ** 3 + 3.0 + 6.0 * x - 6.0 * x * x - 12.0 * x * e - 3.0 * e * e
    return 6.0 * x * x * (e - 1.0 + x) / den


def lag_compensated_apn(
    los_ned, los_rate_ned_radps, closing_speed_mps: float, tgt_acc_ned_mps2, own_acc_ned_mps2, t_go_s: float,
    lag_s: float, nav_gain: float = 4.0, max_gain: float = 12.0,
) -> np.ndarray:
    """Augmented PN for a vehicle whose achieved acceleration follows the command with a first-order lag
    ``lag_s`` (attitude response plus uplink delay), after Zarchan's optimal guidance law (ch. 8):

    ``a = N'(x) / t_go^2 * ZEM``, ``ZEM = Vc t_go^2 lambda_dot + a_T t_go^2 / 2 - a_M lag^2 (e^-x + x - 1)``
    (all across the LOS). The last term is the displacement the acceleration we already have (``a_M``, the
    lagged past commands) still makes after the command changes: plain PN ignores it and overshoots once
    time-to-go is a few lags. The gain ``N'(x)`` (:func:`lag_optimal_gain`) is scaled so that far out it is
    ``nav_gain`` (this law is then :func:`augmented_pn`), and capped at ``max_gain``. ``t_go_s`` ``inf`` (no
    range) gives augmented PN.
    """
    los = _unit(_vec3("los_ned", los_ned))
    at = _vec3("tgt_acc_ned_mps2", tgt_acc_ned_mps2)
    am = _vec3("own_acc_ned_mps2", own_acc_ned_mps2)
    if not (lag_s > 0.0 and max_gain > 0.0):
        raise GuidanceError(f"lag_s and max_gain must be positive, got {lag_s}, {max_gain}")
    if not math.isfinite(t_go_s):
        return augmented_pn(los, los_rate_ned_radps, closing_speed_mps, at, nav_gain)
    gain = min(nav_gain / 3.0 * lag_optimal_gain(t_go_s, lag_s), max_gain)
    x = t_go_s / lag_s
    am_perp = am - (am @ los) * los
    at_perp = at - (at @ los) * los
    spent = (math.exp(-x) + x - 1.0) / (x * x)  # lag^2 (e^-x + x - 1) / t_go^2
    return true_pn(los, los_rate_ned_radps, closing_speed_mps, gain) + gain * (0.5 * at_perp - spent * am_perp)


def pure_pursuit(los_ned, own_vel_ned_mps, speed_mps: float, vel_gain_per_s: float = 2.0) -> np.ndarray:
    """Pure pursuit baseline: drive our velocity toward ``speed_mps`` along the current LOS (m/s^2)."""
    los = _unit(_vec3("los_ned", los_ned))
    vel = _vec3("own_vel_ned_mps", own_vel_ned_mps)
    return vel_gain_per_s * (speed_mps * los - vel)


def velocity_to_point(
    own_pos_ned_m, own_vel_ned_mps, aim_ned_m, speed_mps: float, vel_gain_per_s: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Midcourse: velocity set-point (NED m/s) at ``speed_mps`` toward ``aim_ned_m`` and the P-loop
    acceleration that gets there (NED m/s^2)."""
    own = _vec3("own_pos_ned_m", own_pos_ned_m)
    vel = _vec3("own_vel_ned_mps", own_vel_ned_mps)
    aim = _vec3("aim_ned_m", aim_ned_m)
    v_sp = speed_mps * _unit(aim - own)
    return v_sp, vel_gain_per_s * (v_sp - vel)


def closing_speed(los_ned, own_vel_ned_mps, tgt_vel_ned_mps) -> float:
    """``Vc = -(v_t - v_m) . los`` (m/s), positive when closing."""
    los = _unit(_vec3("los_ned", los_ned))
    return float((_vec3("own_vel_ned_mps", own_vel_ned_mps) - _vec3("tgt_vel_ned_mps", tgt_vel_ned_mps)) @ los)


def range_from_angular_size(size_m: float, angular_size_rad: float) -> float | None:
    """Range (m) of an object of known size ``size_m`` subtending ``angular_size_rad``; None if not usable
    (an angle of pi or more has no range: the object surrounds the camera)."""
    if not (size_m > 0.0 and 1e-6 < angular_size_rad < math.pi):
        return None
    return size_m / (2.0 * math.tan(0.5 * angular_size_rad))


def time_to_go(range_m: float | None, closing_speed_mps: float, min_closing_mps: float = 1.0) -> float:
    """``t_go = R / Vc`` (s); ``inf`` when the range is unknown or we are not closing."""
    if range_m is None or not math.isfinite(range_m) or closing_speed_mps < min_closing_mps:
        return math.inf
    return max(range_m, 0.0) / closing_speed_mps


# ---------------------------------------------------------------------------------------------- limits
def saturate(acc_ned_mps2, max_accel_mps2: float, priority_dir_ned=None) -> np.ndarray:
    """Limit the magnitude of an acceleration command to ``max_accel_mps2``.

    With ``priority_dir_ned`` (e.g. the LOS), the part perpendicular to it (the homing part) is kept first and
    the part along it gets what is left, so that speed control never eats the PN correction.
    """
    acc = _vec3("acc_ned_mps2", acc_ned_mps2)
    if not max_accel_mps2 > 0.0:
        raise GuidanceError(f"max_accel_mps2 must be positive, got {max_accel_mps2}")
    n = float(np.linalg.norm(acc))
    if n <= max_accel_mps2:
        return acc
    if priority_dir_ned is None:
        return acc * (max_accel_mps2 / n)
    d = _unit(_vec3("priority_dir_ned", priority_dir_ned))
    along = float(acc @ d)
    perp = acc - along * d
    pn = float(np.linalg.norm(perp))
    if pn >= max_accel_mps2:
        return perp * (max_accel_mps2 / pn)
    rest = math.sqrt(max_accel_mps2 * max_accel_mps2 - pn * pn)
    return perp + math.copysign(min(abs(along), rest), along) * d


def limit_speed(vel_ned_mps, max_speed_mps: float) -> np.ndarray:
    v = _vec3("vel_ned_mps", vel_ned_mps)
    n = float(np.linalg.norm(v))
    return v * (max_speed_mps / n) if n > max_speed_mps else v


def altitude_floor(
    acc_ned_mps2, pos_ned_m, vel_ned_mps, floor_down_m: float, max_accel_mps2: float, margin_m: float = 5.0,
    blend_m: float = 20.0,
) -> np.ndarray:
    """Enforce a minimum altitude that no guidance law can override.

    ``floor_down_m`` is the NED down coordinate of the floor (e.g. -30 for 30 m above the origin). The
    downward velocity allowed at height ``h`` above the floor is ``sqrt(2 a (h - margin))`` (we can still stop
    with ``a = max_accel/2``); when the vehicle descends faster, or is below the floor, the vertical command is
    replaced by a climb/brake. Horizontal components pass through unchanged.

    The climb demand is continuous in height: below the floor it is ``a_stop = max_accel/2`` upward, and it
    fades linearly to nothing over ``blend_m`` above the floor (``a_z <= -a_stop (1 - h / blend_m)``). A step
    from "climb at a_stop" to "free" as the floor is crossed would tilt the thrust vector (the attitude) by
    tens of degrees in one control step and throw a body-fixed camera off its target (a vehicle launched from
    the ground crosses the floor while homing). ``blend_m = 0`` gives the old step.
    """
    acc = _vec3("acc_ned_mps2", acc_ned_mps2).copy()
    pos = _vec3("pos_ned_m", pos_ned_m)
    vel = _vec3("vel_ned_mps", vel_ned_mps)
    height = floor_down_m - pos[2]  # > 0 above the floor
    a_stop = 0.5 * max_accel_mps2
    allowed_down = math.sqrt(2.0 * a_stop * max(height - margin_m, 0.0))
    if height <= 0.0:
        acc[2] = min(acc[2], -a_stop)  # below the floor: climb
        return acc
    if height < blend_m:
        acc[2] = min(acc[2], -a_stop * (1.0 - height / blend_m))
    if vel[2] > allowed_down:
        acc[2] = min(acc[2], -min(a_stop, 4.0 * (vel[2] - allowed_down)))
    elif vel[2] >= 0.0:
        # do not command more downward acceleration than keeps us within the stopping envelope next second
        room = allowed_down - vel[2]
        acc[2] = min(acc[2], room)
    return acc


def fov_speed_band(
    los_ned,
    drag_per_m: float,
    tilt_up_rad: float,
    vfov_rad: float,
    margin_rad: float = math.radians(4.0),
    max_pitch_rad: float = math.radians(75.0),
) -> tuple[float, float]:
    """Speeds (m/s) at which a multirotor flying nose-on toward ``los_ned`` keeps the target inside the
    vertical field of view of a forward camera tilted up by ``tilt_up_rad``.

    In steady flight the nose drops by ``theta`` with ``tan(theta) = k v^2 / g`` (thrust tilted to balance
    quadratic drag ``k v^2``). The camera axis sits at elevation ``tilt_up - theta``; a target at elevation
    ``eps`` stays in view while ``|eps - (tilt_up - theta)| <= vfov/2 - margin``. Returns ``(v_min, v_max)``
    (``v_min`` 0 when hovering already sees it). Field-of-view keeping is done through the speed, not by
    bending the homing acceleration, so proportional navigation is left intact.
    """
    los = _unit(_vec3("los_ned", los_ned))
    if not (drag_per_m > 0.0 and vfov_rad > 0.0):
        raise GuidanceError("drag_per_m and vfov_rad must be positive")
    eps = math.asin(max(-1.0, min(1.0, -los[2])))
    half = 0.5 * vfov_rad - margin_rad
    th_hi = min(tilt_up_rad - eps + half, max_pitch_rad)
    th_lo = tilt_up_rad - eps - half

    def v_of(th: float) -> float:
        return math.sqrt(GRAVITY_MPS2 * math.tan(th) / drag_per_m) if th > 0.0 else 0.0

    if th_hi <= 0.0:
        return 0.0, 0.0
    return v_of(min(max(th_lo, 0.0), th_hi)), v_of(th_hi)


def fov_keep(
    acc_ned_mps2,
    own_vel_ned_mps,
    los_ned,
    drag_per_m: float,
    tilt_up_rad: float,
    vfov_rad: float,
    margin_rad: float = math.radians(4.0),
) -> np.ndarray:
    """Keep a target on ``los_ned`` inside the vertical field of view of a forward camera tilted up by
    ``tilt_up_rad`` on a multirotor whose heading is the LOS azimuth, by bounding the command's forward part.

    The pitch follows the specific force the rotors make, ``f = a - g - drag`` (``drag = -k |v| v``): the
    nose drops by ``theta = atan2(f_forward, f_up)`` where forward is the horizontal LOS direction. The camera
    axis sits at elevation ``tilt_up - theta``; a target at elevation ``eps`` stays in view while
    ``|eps - (tilt_up - theta)| <= vfov/2 - margin``. Only the forward-horizontal component of the command
    changes (by at most what is needed); lateral and vertical parts pass through. Returns NED m/s^2.
    """
    acc = _vec3("acc_ned_mps2", acc_ned_mps2)
    vel = _vec3("own_vel_ned_mps", own_vel_ned_mps)
    los = _unit(_vec3("los_ned", los_ned))
    h = math.hypot(los[0], los[1])
    if h < 1e-3:  # target straight above/below: heading undefined, nothing to keep
        return acc
    fwd = np.array([los[0] / h, los[1] / h, 0.0])
    eps = math.asin(max(-1.0, min(1.0, -los[2])))
    drag_acc = -drag_per_m * float(np.linalg.norm(vel)) * vel
    f = acc - _G_NED - drag_acc
    f_up = max(-f[2], 0.15 * GRAVITY_MPS2)
    f_fwd = float(f @ fwd)
    half = 0.5 * vfov_rad - margin_rad
    theta_max = min(tilt_up_rad - eps + half, math.radians(80.0))   # nose-down limit (target leaves the top)
    theta_min = max(tilt_up_rad - eps - half, -math.radians(80.0))  # nose-up limit (target leaves the bottom)
    if theta_min > theta_max:
        return acc
    f_fwd_new = min(max(f_fwd, f_up * math.tan(theta_min)), f_up * math.tan(theta_max))
    return acc + (f_fwd_new - f_fwd) * fwd


def heading_to(los_ned) -> float:
    """Yaw (rad, NED) that points the nose along the horizontal projection of ``los_ned``."""
    los = _vec3("los_ned", los_ned)
    return math.atan2(los[1], los[0])
