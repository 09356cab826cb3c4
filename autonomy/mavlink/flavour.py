"""Autopilot flavours: what differs between PX4 and ArduCopter on the wire (AUTOPILOT_SPEC.md section 12).

Pure tables and functions, no I/O: mode names <-> custom_mode, the setpoint mode and the hand-back mode,
setpoint encoding with per-flavour validation (section 5), parameter value encoding (section 8).

PX4 custom_mode = main_mode << 16 | sub_mode << 24 (``px4_custom_mode.h``). pymavlink's own PX4 mapping
(``mavutil.mode_mapping_px4``) stores OFFBOARD as the *sub* mode (6 << 24 = 100663296) and so mis-decodes
what current PX4 sends (393216 = 6 << 16); we never use it.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from autonomy.mavlink.errors import SetpointError
from autonomy.types import Autopilot, Setpoint, SetpointFrame

MAV_AUTOPILOT_ARDUPILOTMEGA = 3
MAV_AUTOPILOT_PX4 = 12

# --- PX4 modes (AUTOPILOT_SPEC section 2) -------------------------------------------------------------
PX4_MODES: dict[str, tuple[int, int]] = {
    "MANUAL": (1, 0),
    "ALTCTL": (2, 0),
    "POSCTL": (3, 0),
    "POSCTL.SLOW": (3, 2),
    "AUTO.READY": (4, 1),
    "AUTO.TAKEOFF": (4, 2),
    "AUTO.LOITER": (4, 3),
    "AUTO.MISSION": (4, 4),
    "AUTO.RTL": (4, 5),
    "AUTO.LAND": (4, 6),
    "AUTO.PRECLAND": (4, 9),
    **{f"AUTO.EXTERNAL{i}": (4, 10 + i) for i in range(1, 9)},
    "ACRO": (5, 0),
    "OFFBOARD": (6, 0),
    "STABILIZED": (7, 0),
    "TERMINATION": (10, 0),
    "ALTITUDE_CRUISE": (11, 0),
}


def px4_custom_mode(main_mode: int, sub_mode: int) -> int:
    """HEARTBEAT.custom_mode of a PX4 (main, sub) mode pair."""
    return (main_mode << 16) | (sub_mode << 24)


_PX4_BY_CUSTOM = {px4_custom_mode(*ms): name for name, ms in PX4_MODES.items()}

# --- ArduCopter modes (ArduCopter/mode.h) -------------------------------------------------------------
COPTER_MODES: dict[str, int] = {
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "CIRCLE": 7,
    "LAND": 9, "DRIFT": 11, "SPORT": 13, "FLIP": 14, "AUTOTUNE": 15, "POSHOLD": 16, "BRAKE": 17,
    "THROW": 18, "AVOID_ADSB": 19, "GUIDED_NOGPS": 20, "SMART_RTL": 21, "FLOWHOLD": 22, "FOLLOW": 23,
    "ZIGZAG": 24, "SYSTEMID": 25, "AUTOROTATE": 26, "AUTO_RTL": 27, "TURTLE": 28,
}
_COPTER_BY_NUMBER = {v: k for k, v in COPTER_MODES.items()}

# POSITION_TARGET_TYPEMASK bits: a set bit means "ignore" (section 5)
_POS_BITS, _VEL_BITS, _ACC_BITS = 0b111, 0b111 << 3, 0b111 << 6
FORCE_BIT, YAW_BIT, YAW_RATE_BIT = 512, 1024, 2048
MAV_FRAME_LOCAL_NED, MAV_FRAME_BODY_NED = 1, 8
_FRAME_IDS = {SetpointFrame.LOCAL_NED: MAV_FRAME_LOCAL_NED, SetpointFrame.BODY_NED: MAV_FRAME_BODY_NED}

MAV_PARAM_TYPE_UINT8, MAV_PARAM_TYPE_INT8, MAV_PARAM_TYPE_UINT16, MAV_PARAM_TYPE_INT16 = 1, 2, 3, 4
MAV_PARAM_TYPE_UINT32, MAV_PARAM_TYPE_INT32, MAV_PARAM_TYPE_REAL32 = 5, 6, 9
_INT_TYPES = {1: "<B", 2: "<b", 3: "<H", 4: "<h", 5: "<I", 6: "<i"}


@dataclass(frozen=True)
class EncodedSetpoint:
    """SET_POSITION_TARGET_LOCAL_NED fields in SI units (m, m/s, m/s^2, rad, rad/s); ignored fields are 0."""

    coordinate_frame: int
    type_mask: int
    pos_m: tuple[float, float, float]
    vel_mps: tuple[float, float, float]
    acc_mps2: tuple[float, float, float]
    yaw_rad: float
    yaw_rate_radps: float


def _vec(name: str, v: np.ndarray | None) -> tuple[float, float, float] | None:
    if v is None:
        return None
    a = np.asarray(v, dtype=float)
    if a.shape != (3,):
        raise SetpointError(f"{name} must have shape (3,), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise SetpointError(f"{name} has a non-finite value: {a.tolist()}")
    return (float(a[0]), float(a[1]), float(a[2]))


def _scalar(name: str, v: float | None) -> float | None:
    if v is None:
        return None
    if not math.isfinite(float(v)):
        raise SetpointError(f"{name} is not finite: {v}")
    return float(v)


class Flavour:
    """Behaviour shared by both flavours; subclasses fill the tables and the setpoint rules."""

    autopilot: Autopilot = Autopilot.UNKNOWN
    setpoint_mode: str = ""
    hand_back_mode: str = ""
    land_mode: str = ""
    rtl_mode: str = ""
    mode_names: tuple[str, ...] = ()

    def mode_name(self, custom_mode: int) -> str:
        raise NotImplementedError

    def set_mode_params(self, name: str) -> tuple[float, float, float]:
        """DO_SET_MODE (176) param1..3 for a mode name; ValueError for an unknown name."""
        raise NotImplementedError

    def encode_setpoint(self, sp: Setpoint) -> EncodedSetpoint:
        """Validate ``sp`` for this autopilot and encode it, or raise SetpointError before anything is sent."""
        pos = _vec("pos_ned_m", sp.pos_ned_m)
        vel = _vec("vel_ned_mps", sp.vel_ned_mps)
        acc = _vec("acc_ned_mps2", sp.acc_ned_mps2)
        yaw = _scalar("yaw_rad", sp.yaw_rad)
        yaw_rate = _scalar("yaw_rate_radps", sp.yaw_rate_radps)
        if yaw is not None and yaw_rate is not None:
            raise SetpointError("give yaw_rad or yaw_rate_radps, not both")
        if pos is None and vel is None and acc is None:
            raise SetpointError("a setpoint needs position, velocity or acceleration (yaw alone is not "
                                "proof of life on PX4 and stops ArduPilot's Guided mode)")
        self._check(sp.frame, pos, vel, acc)
        mask = 0
        mask |= _POS_BITS if pos is None else 0
        mask |= _VEL_BITS if vel is None else 0
        mask |= _ACC_BITS if acc is None else 0
        mask |= YAW_BIT if yaw is None else 0
        mask |= YAW_RATE_BIT if yaw_rate is None else 0
        zero = (0.0, 0.0, 0.0)
        return EncodedSetpoint(_FRAME_IDS[sp.frame], mask, pos or zero, vel or zero, acc or zero,
                               yaw or 0.0, yaw_rate or 0.0)

    def _check(self, frame: SetpointFrame, pos, vel, acc) -> None:
        raise NotImplementedError

    def encode_param(self, value: float, param_type: int) -> float:
        raise NotImplementedError

    def decode_param(self, wire_value: float, param_type: int) -> float | int:
        raise NotImplementedError


class Px4Flavour(Flavour):
    """PX4: OFFBOARD, per-axis type_mask in LOCAL_NED, BODY_NED without position, byte-wise int params."""

    autopilot = Autopilot.PX4
    setpoint_mode = "OFFBOARD"
    hand_back_mode = "AUTO.LOITER"
    land_mode = "AUTO.LAND"
    rtl_mode = "AUTO.RTL"
    mode_names = tuple(PX4_MODES)

    def mode_name(self, custom_mode: int) -> str:
        name = _PX4_BY_CUSTOM.get(int(custom_mode))
        if name is not None:
            return name
        main, sub = (custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF
        if main == 4 and sub == 0:
            return "AUTO"
        return f"PX4_UNKNOWN(main={main},sub={sub})"

    def set_mode_params(self, name: str) -> tuple[float, float, float]:
        if name not in PX4_MODES:
            raise ValueError(f"unknown PX4 mode {name!r}; known: {', '.join(PX4_MODES)}")
        main, sub = PX4_MODES[name]
        return 1.0, float(main), float(sub)  # base_mode CUSTOM flag, main, sub (section 4)

    def _check(self, frame, pos, vel, acc) -> None:
        if frame is SetpointFrame.BODY_NED and pos is not None:
            raise SetpointError("PX4 drops position in BODY_NED (frame 8): send position in LOCAL_NED")

    def encode_param(self, value: float, param_type: int) -> float:
        """Byte-wise: integer bits memcpy'd into the float field (PARAM_ENCODE_BYTEWISE)."""
        if param_type in _INT_TYPES:
            fmt = _INT_TYPES[param_type]
            iv = int(value)
            if iv != value:
                raise ValueError(f"integer parameter given a fractional value {value}")
            raw = struct.pack("<i" if fmt in ("<b", "<h", "<i") else "<I", iv)
            wire = struct.unpack("<f", raw)[0]
            if struct.pack("<f", wire) != raw:
                # float32 -> Python float -> float32 quiets signalling-NaN bit patterns, so pymavlink cannot
                # carry these few integers (0x7F800001..0x7FBFFFFF and the negative twins) byte-exact
                raise ValueError(f"integer {iv} is a signalling-NaN bit pattern: not representable byte-wise")
            return wire
        return float(value)

    def decode_param(self, wire_value: float, param_type: int) -> float | int:
        if param_type in _INT_TYPES:
            raw = struct.pack("<f", wire_value)
            return struct.unpack("<I" if param_type in (1, 3, 5) else "<i", raw)[0]
        return float(wire_value)


class ArduPilotFlavour(Flavour):
    """ArduCopter: GUIDED, per-group type_mask, C-cast params (value sent as (float)int).

    In BODY_NED (frame 8) ArduPilot treats a position as an offset from the current position and yaw as
    relative to the current heading (spec section 5); PX4 refuses position there.
    """

    autopilot = Autopilot.ARDUPILOT
    setpoint_mode = "GUIDED"
    hand_back_mode = "LOITER"
    land_mode = "LAND"
    rtl_mode = "RTL"
    mode_names = tuple(COPTER_MODES)

    def mode_name(self, custom_mode: int) -> str:
        return _COPTER_BY_NUMBER.get(int(custom_mode), f"COPTER_UNKNOWN({int(custom_mode)})")

    def set_mode_params(self, name: str) -> tuple[float, float, float]:
        if name not in COPTER_MODES:
            raise ValueError(f"unknown ArduCopter mode {name!r}; known: {', '.join(COPTER_MODES)}")
        return 1.0, float(COPTER_MODES[name]), 0.0

    def _check(self, frame, pos, vel, acc) -> None:
        if pos is not None and acc is not None and vel is None:
            raise SetpointError("ArduPilot stops Guided on position + acceleration without velocity; "
                                "add a velocity feed-forward")
        for name, v in (("vel_ned_mps", vel), ("acc_ned_mps2", acc)):
            if v is not None and max(abs(c) for c in v) > 1000.0:
                raise SetpointError(f"ArduPilot stops Guided on |{name}| > 1000: {v}")

    def encode_param(self, value: float, param_type: int) -> float:
        return float(value)

    def decode_param(self, wire_value: float, param_type: int) -> float | int:
        if param_type in _INT_TYPES:
            return round(wire_value)
        return float(wire_value)


def flavour_for(autopilot_id: int) -> Flavour | None:
    """The flavour for HEARTBEAT.autopilot (12 PX4, 3 ArduPilot), None for anything else."""
    if autopilot_id == MAV_AUTOPILOT_PX4:
        return Px4Flavour()
    if autopilot_id == MAV_AUTOPILOT_ARDUPILOTMEGA:
        return ArduPilotFlavour()
    return None
