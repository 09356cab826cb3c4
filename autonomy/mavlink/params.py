"""Parameter cache for both encodings (AUTOPILOT_SPEC section 8); pure bookkeeping, the bridge does I/O.

PX4 sends integers byte-wise (int32 bits in the float field) and starts a list with ``_HASH_CHECK``
(index -1 / 65535, a hash of all values, kept apart in ``hash_check``); ArduPilot casts integers to float
and answers a read by name with index 65535. Values leave here as Python int (integer types) or float.
"""

from __future__ import annotations

from dataclasses import dataclass

from autonomy.mavlink.flavour import Flavour

HASH_CHECK = "_HASH_CHECK"


@dataclass(frozen=True)
class ParamValue:
    name: str
    value: float | int
    param_type: int
    index: int
    count: int


def _name(raw) -> str:
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("ascii", "replace")
    return raw.rstrip("\x00")


class ParamCache:
    def __init__(self) -> None:
        self.values: dict[str, ParamValue] = {}
        self.by_index: dict[int, str] = {}
        self.count: int | None = None
        self.hash_check: int | None = None
        self.updates = 0  # increments on every PARAM_VALUE (waiters compare against it)

    def on_param_value(self, msg, flavour: Flavour) -> ParamValue | None:
        name = _name(msg.param_id)
        self.updates += 1
        if name == HASH_CHECK:
            self.hash_check = int(flavour.decode_param(msg.param_value, 5))  # UINT32, byte-wise
            return None
        pv = ParamValue(name, flavour.decode_param(msg.param_value, msg.param_type), msg.param_type,
                        msg.param_index, msg.param_count)
        self.values[name] = pv
        if 0 <= msg.param_index < 65535:
            self.by_index[msg.param_index] = name
        if msg.param_count > 0:
            self.count = msg.param_count
        return pv

    def missing_indices(self) -> list[int]:
        if self.count is None:
            return []
        return [i for i in range(self.count) if i not in self.by_index]
