"""Clocks: the only place where wall time enters the stack. Logic takes ``t_s`` or a ``Clock``.

- :class:`MonotonicClock` — the companion's real clock (``time.monotonic``), seconds.
- :class:`SimClock` — lockstep simulation: time moves only when the simulator advances it.
- The log clock of a replay is a :class:`SimClock` driven by the log's timestamps.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_s(self) -> float: ...


class MonotonicClock:
    """Real time, seconds since an arbitrary start (monotonic, immune to wall-clock jumps)."""

    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def sleep_until(self, t_s: float) -> None:
        dt = t_s - self.now_s()
        if dt > 0:
            time.sleep(dt)


class SimClock:
    """Manually advanced clock for lockstep simulation and log replay."""

    def __init__(self, t0_s: float = 0.0) -> None:
        self._t_s = float(t0_s)

    def now_s(self) -> float:
        return self._t_s

    def advance(self, dt_s: float) -> float:
        if dt_s < 0:
            raise ValueError("a clock never runs backwards")
        self._t_s += dt_s
        return self._t_s

    def set(self, t_s: float) -> None:
        if t_s < self._t_s:
            raise ValueError(f"a clock never runs backwards ({t_s} < {self._t_s})")
        self._t_s = float(t_s)

    def sleep_until(self, t_s: float) -> None:
        """In lockstep, waiting means the simulator has already advanced time: just jump."""
        if t_s > self._t_s:
            self._t_s = float(t_s)
