"""PX4 EVENT (MAVLink id 410) decoding from the raw frame.

The stock pymavlink dialects lack EVENT: ``MAVLink.decode`` returns a ``MAVLink_unknown`` whose ``data`` is
the whole frame (header + payload + CRC, no CRC check). We check the CRC ourselves (CRC_EXTRA 160 of
common.xml's EVENT) and unpack the payload (MAVLink 2 truncates trailing zero bytes, so pad back to 53):

    uint32 id, uint32 event_time_boot_ms, uint16 sequence, uint8 destination_component,
    uint8 destination_system, uint8 log_levels, uint8 arguments[40]

PX4 event ids are ``component << 24 | fnv1a_32(name) & 0xFFFFFF`` with component 1 for PX4's own events
(``src/lib/events``). Texts of the events an interceptor needs are listed here; any other id is rendered as
"px4 event <name or hex>". ``log_levels``: low nibble = external level (0 emergency .. 7 debug, like
MAV_SEVERITY), high nibble = internal level.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from autonomy.mavlink.wire import dialect

MSG_ID_EVENT = 410
EVENT_CRC_EXTRA = 160
_PAYLOAD = struct.Struct("<IIHBBB40s")


def fnv1a_32(text: str) -> int:
    h = 0x811C9DC5
    for b in text.encode():
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def px4_event_id(name: str, component: int = 1) -> int:
    """The 32-bit EVENT id PX4 assigns to ``events::ID(name)``."""
    return (component << 24) | (fnv1a_32(name) & 0xFFFFFF)


# PX4 enums carried as the first argument of some events (src/lib/events/enums.json, best effort)
_FAILSAFE_ACTIONS = {0: "none", 1: "warn", 2: "Position mode", 3: "Altitude mode", 4: "Stabilized mode",
                     5: "Hold", 6: "RTL", 7: "Land", 8: "Descend", 9: "Disarm", 10: "Terminate"}
_ARM_REASONS = {0: "transition to standby", 1: "RC stick", 2: "RC switch", 3: "internal command",
                4: "external command", 5: "mission start", 6: "landing", 7: "auto disarm preflight",
                8: "kill switch", 9: "lockdown", 10: "failure detector", 11: "shutdown", 12: "unit test",
                13: "RC button", 14: "failsafe"}

# name -> (text, enum table for the argument byte at _ARG_OFFSET[name] (default 0), or None).
# commander_failsafe_enter_generic carries (uint32 user-intended custom_mode, uint8 action): checked on the
# real PX4 flight in shared/data/logs/px4_sih (action 6 = RTL after offboard loss).
_ARG_OFFSET = {"commander_failsafe_enter_generic": 4}
_KNOWN: dict[str, tuple[str, dict[int, str] | None]] = {
    "commander_failsafe_enter_generic": ("Failsafe activated: switching to {}", _FAILSAFE_ACTIONS),
    "commander_armed_by": ("Armed by {}", _ARM_REASONS),
    "commander_disarmed_by": ("Disarmed by {}", _ARM_REASONS),
    "commander_takeoff_detected": ("Takeoff detected", None),
    "commander_landing_detected": ("Landing detected", None),
    "commander_arming_check_summary": ("Arming check report", None),
    "commander_arm_denied": ("Arming denied", None),
    "commander_arming_denied": ("Arming denied", None),
    "commander_offboard_loss": ("No offboard signal", None),
    "logger_open_file_time": ("logging: opening log file", None),
    "mc_pos_ctrl_man_vel_set": ("Manual speed has been constrained by maximum speed", None),
    "navigator_rtl_start": ("RTL: start return", None),
    "navigator_land_current": ("Landing at current position", None),
}
KNOWN_EVENTS: dict[int, tuple[str, str, dict[int, str] | None, int]] = {
    px4_event_id(n): (n, t, e, _ARG_OFFSET.get(n, 0)) for n, (t, e) in _KNOWN.items()
}
# Ids observed on the real PX4 flight (shared/data/logs/px4_sih README timeline) whose source names we do
# not have: decoded by id. "RTL: start return" carries (int32 altitude AMSL m, int16 m above destination).
_LAND_HERE_ID, _RTL_START_ID = 0x0132B2DE, 0x01522694
KNOWN_EVENTS[_LAND_HERE_ID] = ("land_at_current_position", "Landing at current position", None, 0)
KNOWN_EVENTS[_RTL_START_ID] = ("rtl_start_return", "RTL: start return", None, 0)


def _format_rtl_start(args: bytes) -> str:
    alt_m, above_m = struct.unpack_from("<ih", args)
    return f"RTL: start return at {alt_m} m ({above_m} m above destination)"


@dataclass(frozen=True)
class Px4Event:
    """One decoded EVENT. ``t_boot_s`` is the autopilot's boot time; ``severity`` 0 emergency .. 7 debug."""

    event_id: int
    name: str
    text: str
    severity: int
    t_boot_s: float
    sequence: int
    arguments: bytes
    src_system: int
    src_component: int


def _crc_ok(frame: bytes, crc_extra: int) -> bool:
    plen = frame[1]
    signed = frame[2] & 0x01
    end = 10 + plen
    if len(frame) != end + 2 + (13 if signed else 0):
        return False
    crc = dialect.x25crc(frame[1:end])
    crc.accumulate(bytes([crc_extra]))
    return crc.crc == struct.unpack_from("<H", frame, end)[0]


def decode_event_frame(frame: bytes | bytearray) -> Px4Event | None:
    """Decode a raw MAVLink 2 EVENT frame; None for anything else, a bad CRC or a short frame."""
    frame = bytes(frame)
    if len(frame) < 12 or frame[0] != 0xFD:
        return None
    msgid = frame[7] | frame[8] << 8 | frame[9] << 16
    if msgid != MSG_ID_EVENT or not _crc_ok(frame, EVENT_CRC_EXTRA):
        return None
    payload = frame[10:10 + frame[1]].ljust(_PAYLOAD.size, b"\0")
    eid, t_ms, seq, _dc, _ds, levels, args = _PAYLOAD.unpack(payload[:_PAYLOAD.size])
    known = KNOWN_EVENTS.get(eid)
    if known is None:
        name, text = f"0x{eid:08x}", f"px4 event 0x{eid:08x}"
    else:
        name, template, enum, off = known
        text = template
        if "{}" in template:
            text = template.format(enum.get(args[off], f"#{args[off]}") if enum else args[off])
        elif eid == _RTL_START_ID:
            text = _format_rtl_start(args)
    return Px4Event(eid, name, text, levels & 0x0F, t_ms / 1000.0, seq, args, frame[5], frame[6])
