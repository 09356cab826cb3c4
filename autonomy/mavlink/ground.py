"""Ground-station traffic the engagement logic needs: target cues and operator commands.

Target cues -> ``autonomy.types.TargetCue`` in the vehicle's local NED (needs the EKF origin from
GPS_GLOBAL_ORIGIN or HOME_POSITION; cues that arrive before it are dropped and counted by the bridge):

- FOLLOW_TARGET (144): lat/lon degE7, alt m AMSL, vel[3] m/s NED, position_cov[3] m^2 (lat, lon, alt
  variances; 1-sigma isotropic std = sqrt(mean) when finite and positive, else 10 m), ``custom_state`` is the
  ground system's track id. ``t_s`` = arrival time on our clock (the report's own ``timestamp`` is on the
  sender's clock, which we cannot map).
- ADSB_VEHICLE (246): ICAO_address is the track id; lat/lon degE7, altitude mm (AMSL), heading cdeg,
  hor_velocity cm/s, ver_velocity cm/s positive up -> vel NED = (v cos hdg, v sin hdg, -ver_vel).

Operator commands: COMMAND_LONG or COMMAND_INT addressed to OUR sysid/compid (exactly; broadcasts are
ignored) with command MAV_CMD_USER_1 (31010):

- param1 = kind: 1 AUTHORIZE, 2 DENY, 3 ABORT, 4 RETURN
- param2 = track id (integer >= 0; negative or NaN = none, allowed for DENY/ABORT/RETURN only)
- param3 = authorization validity in seconds (0 or NaN -> 30 s; must be finite and >= 0)

Each is answered with COMMAND_ACK: ACCEPTED, or DENIED when malformed, or (signing configured) unsigned or
badly signed. COMMAND_INT carries the same values in param1..param4 (x/y/z unused).
"""

from __future__ import annotations

import math

import numpy as np

from autonomy.geometry import geodetic_to_ned
from autonomy.types import OperatorCommand, OperatorCommandKind, TargetCue

MAV_CMD_USER_1 = 31010
DEFAULT_VALIDITY_S = 30.0
_KINDS = {1: OperatorCommandKind.AUTHORIZE, 2: OperatorCommandKind.DENY, 3: OperatorCommandKind.ABORT,
          4: OperatorCommandKind.RETURN}


class MalformedCommand(ValueError):
    """An operator command whose parameters do not make sense (answered DENIED)."""


def decode_operator_command(p1: float, p2: float, p3: float, t_s: float, signed: bool, sysid: int,
                            compid: int) -> OperatorCommand:
    if not math.isfinite(p1) or int(p1) != p1 or int(p1) not in _KINDS:
        raise MalformedCommand(f"param1 (kind) must be 1..4, got {p1}")
    kind = _KINDS[int(p1)]
    track: int | None
    if math.isfinite(p2) and p2 >= 0:
        if int(p2) != p2:
            raise MalformedCommand(f"param2 (track id) must be an integer, got {p2}")
        track = int(p2)
    else:
        track = None
    if kind is OperatorCommandKind.AUTHORIZE and track is None:
        raise MalformedCommand("AUTHORIZE needs a track id in param2")
    if math.isnan(p3) or p3 == 0:
        valid = DEFAULT_VALIDITY_S
    elif math.isfinite(p3) and p3 > 0:
        valid = float(p3)
    else:
        raise MalformedCommand(f"param3 (validity s) must be >= 0, got {p3}")
    return OperatorCommand(kind=kind, t_s=t_s, track_id=track, valid_for_s=valid, signed=signed,
                           source_sysid=sysid, source_compid=compid)


def decode_follow_target(msg, origin: tuple[float, float, float], t_s: float) -> TargetCue | None:
    lat, lon, alt = msg.lat * 1e-7, msg.lon * 1e-7, float(msg.alt)
    vel = np.array(msg.vel, dtype=float)
    if not (math.isfinite(alt) and np.all(np.isfinite(vel))):
        return None
    cov = np.array(msg.position_cov, dtype=float)
    std = float(np.sqrt(cov.mean())) if np.all(np.isfinite(cov)) and cov.mean() > 0 else 10.0
    return TargetCue(t_s=t_s, target_id=int(msg.custom_state), pos_ned_m=geodetic_to_ned(lat, lon, alt, *origin),
                     vel_ned_mps=vel, pos_std_m=std, source="follow_target")


def decode_adsb(msg, origin: tuple[float, float, float], t_s: float) -> TargetCue:
    lat, lon, alt = msg.lat * 1e-7, msg.lon * 1e-7, msg.altitude * 1e-3
    hdg = math.radians(msg.heading * 0.01)
    v = msg.hor_velocity * 0.01
    vel = np.array([v * math.cos(hdg), v * math.sin(hdg), -msg.ver_velocity * 0.01])
    return TargetCue(t_s=t_s, target_id=int(msg.ICAO_address), pos_ned_m=geodetic_to_ned(lat, lon, alt, *origin),
                     vel_ned_mps=vel, pos_std_m=30.0, vel_std_mps=5.0, source="adsb")
