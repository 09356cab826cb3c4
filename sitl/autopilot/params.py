"""Parameter tables of the simulated autopilots, their wire encodings and presets (AUTOPILOT_SPEC.md §7, §8).

PX4 stores INT32 and REAL32 parameters and sends integers *byte-wise* (the int32 bits copied into the float
field). ArduPilot stores INT8/INT16/INT32/REAL32 and sends integers *C-cast* (``(float)value``).
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

# MAV_PARAM_TYPE values
INT8, INT16, INT32, UINT32, REAL32 = 2, 4, 6, 5, 9


class ParamError(ValueError):
    """Unknown parameter, wrong type or bad value in the simulated autopilots' parameter tables."""


@dataclass(frozen=True)
class ParamDef:
    name: str
    type_id: int
    default: float
    read_only: bool = False


def encode_bytewise(value: float, type_id: int) -> float:
    """PX4 PARAM_ENCODE_BYTEWISE: integer bits memcpy'd into the float field (REAL32 passes through)."""
    if type_id == REAL32:
        return float(value)
    fmt = "<I" if type_id == UINT32 else "<i"
    return struct.unpack("<f", struct.pack(fmt, int(value)))[0]


def decode_bytewise(wire_value: float, type_id: int) -> float:
    """Inverse of :func:`encode_bytewise`."""
    if type_id == REAL32:
        return float(wire_value)
    fmt = "<I" if type_id == UINT32 else "<i"
    return float(struct.unpack(fmt, struct.pack("<f", wire_value))[0])


_INT_RANGES = {INT8: (-128, 127), INT16: (-32768, 32767), INT32: (-(2**31), 2**31 - 1)}


def coerce(value: float, type_id: int) -> float:
    """Store ``value`` as the given type: REAL32 rounds to float32, integers are truncated and clamped."""
    if not math.isfinite(value):
        raise ParamError(f"value {value!r} is not finite")
    if type_id == REAL32:
        return struct.unpack("<f", struct.pack("<f", value))[0]
    lo, hi = _INT_RANGES.get(type_id, (0, 2**32 - 1))
    return float(min(max(int(value), lo), hi))


class ParamTable:
    """Ordered, typed parameter store. ``index`` is the position in the table (PARAM_VALUE.param_index)."""

    def __init__(self, defs: list[ParamDef], overrides: dict[str, float] | None = None) -> None:
        self._defs = list(defs)
        self._by_name = {d.name: i for i, d in enumerate(self._defs)}
        self._values = [coerce(d.default, d.type_id) for d in self._defs]
        for name, value in (overrides or {}).items():
            self.set(name, value)

    def __len__(self) -> int:
        return len(self._defs)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> float:
        return self._values[self._by_name[name]]

    def names(self) -> list[str]:
        return [d.name for d in self._defs]

    def index(self, name: str) -> int:
        if name not in self._by_name:
            raise ParamError(f"unknown parameter {name!r}")
        return self._by_name[name]

    def definition(self, name_or_index: str | int) -> ParamDef:
        i = name_or_index if isinstance(name_or_index, int) else self.index(name_or_index)
        return self._defs[i]

    def set(self, name: str, value: float) -> bool:
        """Set by name (value coerced to the parameter's type). Returns True when the stored value changed."""
        i = self.index(name)
        v = coerce(float(value), self._defs[i].type_id)
        changed = v != self._values[i]
        self._values[i] = v
        return changed

    def as_dict(self) -> dict[str, float]:
        return {d.name: self._values[i] for i, d in enumerate(self._defs)}

    def hash32(self) -> int:
        """A CRC32 of all names and values (PX4's ``_HASH_CHECK`` plays the same role)."""
        crc = 0
        for d, v in zip(self._defs, self._values, strict=True):
            crc = zlib.crc32(d.name.encode() + struct.pack("<d", v), crc)
        return crc


def _f(name: str, default: float, read_only: bool = False) -> ParamDef:
    return ParamDef(name, REAL32, default, read_only)


def _i(name: str, default: int, type_id: int = INT32, read_only: bool = False) -> ParamDef:
    return ParamDef(name, type_id, default, read_only)


# PX4 main defaults (spec §6, §7, Appendix A and the flightA README)
PX4_PARAMS: list[ParamDef] = [
    _f("COM_DISARM_LAND", 2.0),
    _f("COM_DISARM_PRFLT", 10.0),
    _i("COM_DL_LOSS_T", 10),
    _f("COM_OBC_LOSS_T", 5.0),
    _i("COM_OBL_RC_ACT", 0),
    _f("COM_OF_LOSS_T", 1.0),
    _i("COM_RC_IN_MODE", 1),
    _f("COM_SPOOLUP_TIME", 1.0),
    _i("GF_ACTION", 2),
    _f("GF_MAX_HOR_DIST", 0.0),
    _f("GF_MAX_VER_DIST", 0.0),
    _i("GF_PREDICT", 0),
    _i("GF_SOURCE", 0),
    _i("MAV_COMP_ID", 1),
    _i("MAV_FWDEXTSP", 1),
    _i("MAV_PROTO_VER", 2),
    _i("MAV_SYS_ID", 1),
    _i("MAV_TYPE", 2),
    _f("MC_YAWRATE_MAX", 200.0),
    _f("MIS_TAKEOFF_ALT", 2.5),
    _f("MPC_ACC_HOR", 3.0),
    _f("MPC_ACC_HOR_MAX", 5.0),
    _f("MPC_LAND_ALT1", 10.0),
    _f("MPC_LAND_ALT2", 5.0),
    _f("MPC_LAND_SPEED", 0.7),
    _f("MPC_THR_HOVER", 0.5),
    _f("MPC_TILTMAX_AIR", 45.0),
    _f("MPC_TILTMAX_LND", 12.0),
    _f("MPC_TKO_RAMP_T", 3.0),
    _f("MPC_TKO_SPEED", 1.5),
    _f("MPC_VEL_MANUAL", 10.0),
    _f("MPC_XY_CRUISE", 5.0),
    _f("MPC_XY_P", 0.95),
    _f("MPC_XY_VEL_MAX", 12.0),
    _f("MPC_XY_VEL_P_ACC", 1.8),
    _f("MPC_Z_P", 1.0),
    _f("MPC_Z_VEL_MAX_DN", 1.5),
    _f("MPC_Z_VEL_MAX_UP", 3.0),
    _f("MPC_Z_VEL_P_ACC", 4.0),
    _i("NAV_DLL_ACT", 0),
    _i("NAV_RCL_ACT", 2),
    _f("RTL_RETURN_ALT", 30.0),
    _i("SYS_AUTOSTART", 10040),
]

# ArduCopter 4.7 defaults (spec §6, §7, Appendix B); integer widths as in ArduPilot
AP_PARAMS: list[ParamDef] = [
    _i("ANGLE_MAX", 3000, INT16),
    _i("ARMING_CHECK", 1, INT32),
    _i("DISARM_DELAY", 10, INT8),
    _i("FENCE_ACTION", 1, INT8),
    _f("FENCE_ALT_MAX", 100.0),
    _f("FENCE_ALT_MIN", -10.0),
    _i("FENCE_ENABLE", 0, INT8),
    _f("FENCE_MARGIN", 2.0),
    _f("FENCE_RADIUS", 300.0),
    _i("FENCE_TYPE", 7, INT8),
    _i("FORMAT_VERSION", 120, INT16, read_only=True),
    _i("FRAME_CLASS", 1, INT8),
    _i("FRAME_TYPE", 1, INT8),
    _i("FS_GCS_ENABLE", 0, INT8),
    _f("FS_GCS_TIMEOUT", 5.0),
    _i("GUID_OPTIONS", 0, INT32),
    _f("GUID_TIMEOUT", 3.0),
    _i("LAND_ALT_LOW", 1000, INT16),
    _i("LAND_SPEED", 50, INT16),
    _i("LAND_SPEED_HIGH", 0, INT16),
    _i("MAV_GCS_SYSID", 255, INT16),
    _i("MAV_SYSID", 1, INT16),
    _f("PSC_ANGLE_MAX", 0.0),
    _f("PSC_POSXY_P", 1.0),
    _f("PSC_POSZ_P", 1.0),
    _f("PSC_VELXY_P", 2.0),
    _f("PSC_VELZ_P", 5.0),
    _i("RTL_ALT", 1500, INT32),
    _i("RTL_SPEED", 0, INT16),
    _f("WPNAV_ACCEL", 250.0),
    _f("WPNAV_ACCEL_Z", 100.0),
    _f("WPNAV_SPEED", 1000.0),
    _f("WPNAV_SPEED_DN", 150.0),
    _f("WPNAV_SPEED_UP", 250.0),
    _i("WP_YAW_BEHAVIOR", 2, INT8),
]

# DESIGN.md interceptor airframe (70 m/s, 30 m/s^2) + companion link: see firmware_params/ for the files.
PX4_INTERCEPTOR: dict[str, float] = {
    "MPC_XY_VEL_MAX": 70.0,
    "MPC_XY_CRUISE": 20.0,
    "MPC_VEL_MANUAL": 20.0,
    "MPC_Z_VEL_MAX_UP": 20.0,
    "MPC_Z_VEL_MAX_DN": 10.0,
    "MPC_ACC_HOR_MAX": 30.0,
    "MPC_ACC_HOR": 15.0,
    "MPC_TILTMAX_AIR": 72.0,
    "MPC_XY_VEL_P_ACC": 3.0,
    "MPC_Z_VEL_P_ACC": 6.0,
    "COM_OF_LOSS_T": 0.5,
    "COM_OBC_LOSS_T": 2.0,
    "COM_OBL_RC_ACT": 3,
    "NAV_RCL_ACT": 2,
    "NAV_DLL_ACT": 2,
    "COM_DL_LOSS_T": 5,
    "GF_ACTION": 3,
    "GF_MAX_HOR_DIST": 3000.0,
    "GF_MAX_VER_DIST": 500.0,
    "RTL_RETURN_ALT": 50.0,
}

AP_INTERCEPTOR: dict[str, float] = {
    "WPNAV_SPEED": 7000.0,
    "WPNAV_SPEED_UP": 2000.0,
    "WPNAV_SPEED_DN": 1000.0,
    "WPNAV_ACCEL": 3000.0,
    "WPNAV_ACCEL_Z": 1000.0,
    "ANGLE_MAX": 7000,
    "GUID_TIMEOUT": 0.5,
    "FS_GCS_ENABLE": 1,
    "FENCE_ENABLE": 1,
    "FENCE_TYPE": 3,
    "FENCE_ALT_MAX": 500.0,
    "FENCE_RADIUS": 3000.0,
    "FENCE_ACTION": 1,
    "RTL_ALT": 5000,
}

PRESETS: dict[str, dict[str, dict[str, float]]] = {
    "default": {"px4": {}, "ardupilot": {}},
    "interceptor": {"px4": PX4_INTERCEPTOR, "ardupilot": AP_INTERCEPTOR},
}
