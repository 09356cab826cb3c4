"""PX4 EVENT (MAVLink id 410) messages, hand-encoded: the stock pymavlink dialects lack them.

Event ids, argument layouts and log levels are the ones the real PX4 (main 02e73e3b6f) sent in
``data/logs/px4_sih/flightA.tlog`` (names from its README timeline). CRC extra 160 was checked against
those frames. Only the notices the simulator can produce are listed; PX4's arming-check reports and the
"arming denied" event are not reproduced (their ids are not in the recording).
"""

from __future__ import annotations

import struct

EVENT_MSG_ID = 410
EVENT_CRC_EXTRA = 160
FIRST_SEQUENCE = 65526  # PX4 starts here and wraps to 0 within seconds of boot

ARMED_BY = 0x190CAF3                 # "Armed by {1}"          args: uint8 arm_disarm_reason
DISARMED_BY = 0x1F46777              # "Disarmed by {1}"       args: uint8 arm_disarm_reason
TAKEOFF_DETECTED = 0x1414569         # "Takeoff detected"
LANDING_DETECTED = 0x19638AC         # "Landing detected"
LAND_AT_CURRENT_POSITION = 0x132B2DE  # "Landing at current position"
FAILSAFE_ENTER_GENERIC = 0x1DEDBD0   # commander_failsafe_enter_generic "Failsafe activated: switching to ..."
RTL_START_RETURN = 0x1522694         # "RTL: start return at {1} m ({2} m above destination)"

# arm_disarm_reason_t
REASON_COMMAND_EXTERNAL = 4
REASON_AUTO_DISARM_LAND = 6
REASON_AUTO_DISARM_PREFLIGHT = 7
REASON_FAILSAFE = 14

# failsafe action codes as they appear in FAILSAFE_ENTER_GENERIC (6 = RTL observed)
FAILSAFE_ACTION = {"AUTO.LOITER": 5, "AUTO.RTL": 6, "AUTO.LAND": 7, "DISARM": 9, "TERMINATE": 10}


def event_payload(event_id: int, time_boot_ms: int, sequence: int, args: bytes = b"",
                  log_levels: int = 0x66) -> bytes:
    """Wire-order EVENT payload (53 bytes before MAVLink 2 truncation)."""
    if len(args) > 40:
        raise ValueError("EVENT arguments are at most 40 bytes")
    return struct.pack("<IIHBBB", event_id, time_boot_ms & 0xFFFFFFFF, sequence & 0xFFFF, 0, 0,
                       log_levels) + args.ljust(40, b"\x00")


def decode_event_payload(payload: bytes) -> tuple[int, int, int, int, bytes]:
    """(id, time_boot_ms, sequence, log_levels, arguments) of a (possibly truncated) EVENT payload."""
    p = payload.ljust(53, b"\x00")
    eid, t_ms, seq, _dc, _ds, lv = struct.unpack("<IIHBBB", p[:13])
    return eid, t_ms, seq, lv, p[13:53]
