"""Commands with ACK, retry and timeout (COMMAND_LONG), pure bookkeeping: the bridge does the I/O.

Each command waits for a COMMAND_ACK from the vehicle with the same command id. No ACK within ``timeout_s``:
re-sent with confirmation + 1, up to ``retries`` times, then fails with ``CommandError(result=None)``.
IN_PROGRESS extends the wait. Duplicate ACKs (PX4 acks DO_SET_MODE twice, AUTOPILOT_SPEC Appendix A) are
counted and ignored. Every other result maps to a ``CommandError`` carrying the ``MavResult``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from autonomy.mavlink.errors import CommandError


class MavResult(enum.IntEnum):
    ACCEPTED = 0
    TEMPORARILY_REJECTED = 1
    DENIED = 2
    UNSUPPORTED = 3
    FAILED = 4
    IN_PROGRESS = 5
    CANCELLED = 6
    COMMAND_LONG_ONLY = 7
    COMMAND_INT_ONLY = 8
    UNSUPPORTED_MAV_FRAME = 9


def result_name(result: int | None) -> str:
    if result is None:
        return "NO_ACK"
    try:
        return MavResult(result).name
    except ValueError:
        return f"UNKNOWN_RESULT_{result}"


@dataclass
class PendingCommand:
    command: int
    params: tuple[float, ...]
    timeout_s: float
    retries: int
    t_sent_s: float
    confirmation: int = 0
    result: int | None = None
    done: bool = False
    error: CommandError | None = field(default=None, repr=False)

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


class Commander:
    def __init__(self) -> None:
        self._pending: dict[int, PendingCommand] = {}
        self.duplicate_acks = 0
        self.unexpected_acks = 0
        self._done_recent: dict[int, float] = {}

    def begin(self, command: int, params: tuple[float, ...], now_s: float, timeout_s: float = 1.0,
              retries: int = 3) -> PendingCommand:
        if len(params) != 7 or not all(isinstance(p, (int, float)) for p in params):
            raise ValueError(f"a COMMAND_LONG needs 7 numeric params, got {params!r}")
        if command in self._pending and not self._pending[command].done:
            old = self._pending[command]
            old.done = True
            old.error = CommandError(f"command {command} superseded by a new one", command=command,
                                     result=None, result_name="SUPERSEDED")
        pc = PendingCommand(command, tuple(float(p) for p in params), timeout_s, retries, now_s)
        self._pending[command] = pc
        return pc

    def on_ack(self, command: int, result: int, now_s: float) -> PendingCommand | None:
        pc = self._pending.get(command)
        if pc is None or pc.done:
            if now_s - self._done_recent.get(command, -math.inf) < 5.0:
                self.duplicate_acks += 1
            else:
                self.unexpected_acks += 1
            return None
        if result == MavResult.IN_PROGRESS:
            pc.t_sent_s = now_s  # still working: wait another timeout
            return None
        pc.result, pc.done = result, True
        self._done_recent[command] = now_s
        if result != MavResult.ACCEPTED:
            pc.error = CommandError(f"command {command} refused: {result_name(result)} ({result})",
                                    command=command, result=result, result_name=result_name(result))
        return pc

    def due_resends(self, now_s: float) -> list[PendingCommand]:
        """Commands whose ACK is overdue: returned for re-sending, or failed once out of retries."""
        out = []
        for pc in self._pending.values():
            if pc.done or now_s - pc.t_sent_s < pc.timeout_s:
                continue
            if pc.confirmation >= pc.retries:
                pc.done = True
                pc.error = CommandError(
                    f"command {pc.command}: no COMMAND_ACK after {pc.retries + 1} tries of {pc.timeout_s} s",
                    command=pc.command, result=None, result_name="NO_ACK")
                continue
            pc.confirmation += 1
            pc.t_sent_s = now_s
            out.append(pc)
        return out
