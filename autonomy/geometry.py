"""Frames, rotations and geodesy: pure functions on NumPy arrays.

Conventions (DESIGN.md section 4):
- World frame NED (north, east, down), metres. Body frame FRD (forward, right, down).
- Quaternions are Hamilton, scalar first ``q = [w, x, y, z]``, and rotate body FRD vectors into NED:
  ``v_ned = R(q) @ v_body`` (the same convention as MAVLink ATTITUDE_QUATERNION, PX4 and ArduPilot).
- Euler angles are the aerospace ZYX sequence (yaw, then pitch, then roll), radians.

Every function accepts a single vector/quaternion or a stack of them along the first axis where noted.
"""

from __future__ import annotations

import math

import numpy as np

EARTH_RADIUS_M = 6_378_137.0  # WGS-84 equatorial radius
GRAVITY_MPS2 = 9.80665


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion(s) with non-negative scalar part. Shape (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n == 0.0) or not np.all(np.isfinite(n)):
        raise ValueError("quaternion must be finite and non-zero")
    q = q / n
    return np.where(q[..., :1] < 0.0, -q, q)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b (apply b first, then a). Shapes broadcast over (..., 4)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrix R (body -> NED) from unit quaternion(s). Shape (..., 4) -> (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    r = np.empty(q.shape[:-1] + (3, 3))
    r[..., 0, 0] = 1 - 2 * (y * y + z * z)
    r[..., 0, 1] = 2 * (x * y - w * z)
    r[..., 0, 2] = 2 * (x * z + w * y)
    r[..., 1, 0] = 2 * (x * y + w * z)
    r[..., 1, 1] = 1 - 2 * (x * x + z * z)
    r[..., 1, 2] = 2 * (y * z - w * x)
    r[..., 2, 0] = 2 * (x * z - w * y)
    r[..., 2, 1] = 2 * (y * z + w * x)
    r[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def rotmat_to_quat(r: np.ndarray) -> np.ndarray:
    """Unit quaternion from a rotation matrix (Shepperd's method, numerically safe). (3, 3) -> (4,)."""
    r = np.asarray(r, dtype=np.float64)
    tr = np.trace(r)
    if tr > 0.0:
        s = np.sqrt(tr + 1.0) * 2.0
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2.0
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2.0
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2.0
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    return quat_normalize(np.array(q))


def euler_to_quat(roll_rad: float, pitch_rad: float, yaw_rad: float) -> np.ndarray:
    """Quaternion from ZYX Euler angles (yaw, pitch, roll applied in that order), body -> NED."""
    cr, sr = np.cos(roll_rad / 2), np.sin(roll_rad / 2)
    cp, sp = np.cos(pitch_rad / 2), np.sin(pitch_rad / 2)
    cy, sy = np.cos(yaw_rad / 2), np.sin(yaw_rad / 2)
    return quat_normalize(
        np.array(
            [
                cr * cp * cy + sr * sp * sy,
                sr * cp * cy - cr * sp * sy,
                cr * sp * cy + sr * cp * sy,
                cr * cp * sy - sr * sp * cy,
            ]
        )
    )


def quat_to_euler(q: np.ndarray) -> tuple[float, float, float]:
    """(roll_rad, pitch_rad, yaw_rad) from a body -> NED quaternion, ZYX sequence."""
    w, x, y, z = np.asarray(q, dtype=np.float64)
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return float(roll), float(pitch), float(yaw)


def quat_from_axis_angle(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    n = np.linalg.norm(axis)
    if n == 0.0:
        return np.array([1.0, 0.0, 0.0, 0.0])
    half = 0.5 * angle_rad
    return np.concatenate([[np.cos(half)], np.sin(half) * axis / n])


def quat_integrate(q: np.ndarray, rate_body_radps: np.ndarray, dt_s: float) -> np.ndarray:
    """Propagate attitude by a constant body rate over dt_s (exact for constant rate)."""
    rate = np.asarray(rate_body_radps, dtype=np.float64)
    angle = float(np.linalg.norm(rate)) * dt_s
    dq = quat_from_axis_angle(rate, angle)
    return quat_normalize(quat_multiply(q, dq))


def quat_slerp(q0: np.ndarray, q1: np.ndarray, frac: float) -> np.ndarray:
    """Spherical interpolation between unit quaternions, frac in [0, 1], shortest path."""
    q0 = np.asarray(q0, dtype=np.float64)
    q1 = np.asarray(q1, dtype=np.float64)
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        return quat_normalize(q0 + frac * (q1 - q0))
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    s0 = np.sin((1.0 - frac) * theta) / np.sin(theta)
    s1 = np.sin(frac * theta) / np.sin(theta)
    return quat_normalize(s0 * q0 + s1 * q1)


def rotate_body_to_ned(q: np.ndarray, v_body: np.ndarray) -> np.ndarray:
    return quat_to_rotmat(q) @ np.asarray(v_body, dtype=np.float64)


def rotate_ned_to_body(q: np.ndarray, v_ned: np.ndarray) -> np.ndarray:
    return quat_to_rotmat(q).T @ np.asarray(v_ned, dtype=np.float64)


def wrap_pi(angle_rad: np.ndarray | float) -> np.ndarray | float:
    """Wrap to [-pi, pi)."""
    return (np.asarray(angle_rad) + np.pi) % (2.0 * np.pi) - np.pi


def geodetic_to_ned(
    lat_deg: float, lon_deg: float, alt_m: float, lat0_deg: float, lon0_deg: float, alt0_m: float
) -> np.ndarray:
    """Local tangent-plane NED (m) of a point relative to an origin (equirectangular, fine for <~20 km)."""
    d_lat = np.radians(lat_deg - lat0_deg)
    d_lon = np.radians(lon_deg - lon0_deg)
    north = d_lat * EARTH_RADIUS_M
    east = d_lon * EARTH_RADIUS_M * np.cos(np.radians(lat0_deg))
    return np.array([north, east, -(alt_m - alt0_m)])


def ned_to_geodetic(
    pos_ned_m: np.ndarray, lat0_deg: float, lon0_deg: float, alt0_m: float
) -> tuple[float, float, float]:
    """Inverse of :func:`geodetic_to_ned`: (lat_deg, lon_deg, alt_m AMSL)."""
    n, e, d = np.asarray(pos_ned_m, dtype=np.float64)
    lat = lat0_deg + np.degrees(n / EARTH_RADIUS_M)
    lon = lon0_deg + np.degrees(e / (EARTH_RADIUS_M * np.cos(np.radians(lat0_deg))))
    return float(lat), float(lon), float(alt0_m - d)


def unit(v: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Unit vector(s) along the last axis; zero vectors stay zero."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > eps, v / np.maximum(n, eps), 0.0)


def los_angle_rad(los_ned, rel_ned_m) -> float:
    """Angle (rad) between a unit line of sight and the direction to a point ``rel_ned_m`` away (the cosine
    clamped to [-1, 1]; a point at the origin counts as 90 deg off)."""
    cos = float(np.asarray(los_ned) @ rel_ned_m) / max(float(np.linalg.norm(rel_ned_m)), 1e-9)
    return math.acos(max(-1.0, min(1.0, cos)))


def los_to_az_el_deg(los_ned: np.ndarray) -> tuple[float, float]:
    """Azimuth (deg from north, clockwise) and elevation (deg, up positive) of a NED line of sight."""
    u = np.asarray(los_ned, dtype=np.float64) / float(np.linalg.norm(los_ned))
    return math.degrees(math.atan2(u[1], u[0])), math.degrees(math.asin(max(-1.0, min(1.0, -u[2]))))


def az_el_deg_to_los(az_deg: float, el_deg: float) -> np.ndarray:
    """Inverse of :func:`los_to_az_el_deg`: the unit NED line of sight."""
    az, el = math.radians(az_deg), math.radians(el_deg)
    return np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), -math.sin(el)])
