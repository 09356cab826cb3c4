"""Safety gates: pure predicates on positions and times. Each returns True when the gate is *clear*.

Outcome of each gate in the state machine (:mod:`autonomy.engagement.machine`):

=====================  =========================================================================
gate                   outcome when it trips
=====================  =========================================================================
geofence               ABORT (reason GEOFENCE) -> HOLD -> RTL; checked on the stopping point
                       ``p + v|v|/(2 a_brake)``, so the brake happens before the fence is crossed
no-engage zone         TERMINAL is not entered (or is left for AWAIT_AUTHORIZATION, shadowing)
                       while the vehicle or the predicted intercept point lies in a zone
min altitude           guidance floor (cannot be overridden, :func:`autonomy.guidance.altitude_floor`);
                       a target below ``min_target_altitude_m`` is "not aerial": never engaged
max engagement time    ABORT (MAX_ENGAGEMENT_TIME)
track loss             handover back to the cue (MIDCOURSE) when a cue is fresh, else ABORT
link loss              ABORT (LINK_LOST): brake, hold, RTL (the autopilot's own failsafe agrees)
pipeline stall         ABORT (PIPELINE_STALL) in any camera-dependent state
confuser class         the track is never selected; an engaged track reclassified -> back to ACQUIRE
unsigned command       refused and logged when signing is required
=====================  =========================================================================
"""

from __future__ import annotations

import math

import numpy as np

from autonomy.engagement.config import GeofenceConfig, Zone


def point_in_polygon(north_m: float, east_m: float, polygon_ne_m) -> bool:
    """Even-odd ray casting. Points exactly on an edge may go either way."""
    inside = False
    n = len(polygon_ne_m)
    j = n - 1
    for i in range(n):
        ni, ei = polygon_ne_m[i]
        nj, ej = polygon_ne_m[j]
        if (ei > east_m) != (ej > east_m):
            n_cross = ni + (east_m - ei) * (nj - ni) / (ej - ei)
            if north_m < n_cross:
                inside = not inside
        j = i
    return inside


def inside_geofence(pos_ned_m: np.ndarray, fence: GeofenceConfig) -> bool:
    alt = -float(pos_ned_m[2])
    if not fence.min_altitude_m <= alt <= fence.max_altitude_m:
        return False
    return not fence.polygon_ne_m or point_in_polygon(float(pos_ned_m[0]), float(pos_ned_m[1]), fence.polygon_ne_m)


def stopping_point(pos_ned_m: np.ndarray, vel_ned_mps: np.ndarray, brake_accel_mps2: float) -> np.ndarray:
    """Where a vehicle braking at ``brake_accel_mps2`` along its velocity comes to rest (NED m)."""
    v = np.asarray(vel_ned_mps, dtype=np.float64)
    return np.asarray(pos_ned_m, dtype=np.float64) + v * (float(np.linalg.norm(v)) / (2.0 * brake_accel_mps2))


def geofence_clear(pos_ned_m, vel_ned_mps, fence: GeofenceConfig, brake_accel_mps2: float) -> bool:
    """Both the vehicle and its stopping point are inside the fence."""
    return inside_geofence(np.asarray(pos_ned_m), fence) and inside_geofence(
        stopping_point(pos_ned_m, vel_ned_mps, brake_accel_mps2), fence
    )


def zone_containing(pos_ned_m, zones: tuple[Zone, ...]) -> Zone | None:
    for z in zones:
        if point_in_polygon(float(pos_ned_m[0]), float(pos_ned_m[1]), z.polygon_ne_m):
            return z
    return None


def no_engage_clear(own_pos_ned_m, intercept_ned_m, zones: tuple[Zone, ...]) -> tuple[bool, str]:
    """Clear when neither the vehicle nor the predicted intercept point is in a no-engage zone."""
    for label, p in (("vehicle", own_pos_ned_m), ("intercept point", intercept_ned_m)):
        if p is None:
            continue
        z = zone_containing(p, zones)
        if z is not None:
            return False, f"{label} in no-engage zone {z.name!r}"
    return True, ""


def watchdog_clear(t_s: float, last_seen_t_s: float | None, timeout_s: float) -> bool:
    """A watchdog is clear when its input was seen within ``timeout_s`` (never seen = tripped)."""
    return last_seen_t_s is not None and math.isfinite(last_seen_t_s) and (t_s - last_seen_t_s) <= timeout_s
