"""Clocks (injected, never read from the OS inside logic) and the autopilot-to-our clock mapping.

``Clock`` is the protocol every time-dependent part of the bridge takes (``autonomy.clock``):
``MonotonicClock`` reads the OS monotonic clock (companion, real flight); ``ManualClock`` (= ``SimClock``) is
advanced by its owner (sim lockstep, tests).
``ClockMapper`` fits ``t_ours_s = offset_s + rate * t_autopilot_s`` from TIMESYNC round trips, because the
autopilot's boot clock can run at a different rate from ours (real PX4 SIH ran 0.8 % slow, AUTOPILOT_SPEC
Appendix A; a sped-up simulator runs K times fast).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from autonomy.clock import Clock, MonotonicClock, SimClock

__all__ = ["Clock", "ClockMapper", "ManualClock", "MonotonicClock", "SimClock"]


# The stack's clocks live in autonomy/clock.py; the bridge re-exports them (ManualClock = SimClock).
ManualClock = SimClock


class ClockMapper:
    """Maps autopilot boot time (s) to our clock (s) by a linear fit over recent samples.

    Samples come from TIMESYNC (``add_sync``: our send/receive times and the autopilot's reply time, the
    midpoint of the round trip is paired with the autopilot time; round trips slower than ``max_rtt_s`` are
    discarded) or, before any TIMESYNC, from message arrivals (``add_arrival``: the lower envelope of
    ``t_recv - t_autopilot`` is the best offset guess because transport only ever adds delay).

    Causality bounds the TIMESYNC fit: a state message stamped at autopilot time ``t`` cannot arrive before
    ``to_ours(t)``. The midpoint assumes the request and the reply travel equally long; when the reply waits
    longer (an autopilot that answers at its next scheduler tick and sends at the tick's end, a router that
    holds datagrams while it is busy), the fit maps every message late, and ``state_at(t)`` returns the
    attitude of a few ms earlier: at the 100-300 deg/s body rates of terminal homing, a few tenths of a degree
    of line-of-sight error per frame, which PN turns into command chatter (the lockstep world's 10 ms tick
    gave exactly +5 ms). The mapping is therefore shifted back by the most negative ``t_recv - to_ours(t)``
    over the last ``causal_window_n`` arrivals; it never moves forward, so a fit that is already causal is kept.
    """

    def __init__(self, max_samples: int = 64, max_rtt_s: float = 0.05, min_span_s: float = 1.0,
                 causal_window_n: int = 256) -> None:
        self._sync: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._max_rtt_s = max_rtt_s
        self._min_span_s = min_span_s
        self._arrival_offset_s: float | None = None
        self._offset_s = 0.0
        self._rate = 1.0
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=causal_window_n)
        self._causal_s = 0.0   # <= 0: the shift that makes every recent arrival causal under the fit
        self.synced = False

    def add_sync(self, t_sent_ours_s: float, t_recv_ours_s: float, t_autopilot_s: float) -> bool:
        rtt = t_recv_ours_s - t_sent_ours_s
        if not (0.0 <= rtt <= self._max_rtt_s) or not np.isfinite(t_autopilot_s):
            return False
        self._sync.append((t_autopilot_s, 0.5 * (t_sent_ours_s + t_recv_ours_s)))
        self._refit()
        return True

    def add_arrival(self, t_recv_ours_s: float, t_autopilot_s: float) -> None:
        if not (np.isfinite(t_autopilot_s) and np.isfinite(t_recv_ours_s)):
            return
        if self.synced:
            self._arrivals.append((t_autopilot_s, t_recv_ours_s))
            early = t_recv_ours_s - (self._offset_s + self._rate * t_autopilot_s)
            self._causal_s = min(self._causal_s, early)
            return
        off = t_recv_ours_s - t_autopilot_s
        if self._arrival_offset_s is None or off < self._arrival_offset_s:
            self._arrival_offset_s = off
            self._offset_s, self._rate = off, 1.0

    def _refit(self) -> None:
        ap = np.array([s[0] for s in self._sync])
        ours = np.array([s[1] for s in self._sync])
        if len(ap) >= 3 and ap.max() - ap.min() >= self._min_span_s:
            rate, offset = np.polyfit(ap - ap[0], ours, 1)
            self._rate, self._offset_s = float(rate), float(offset - rate * ap[0])
        else:
            self._offset_s = float(np.median(ours - self._rate * ap))
        self.synced = True
        self._causal_s = min([0.0] + [t_recv - (self._offset_s + self._rate * t_ap) for t_ap, t_recv in self._arrivals])

    @property
    def rate(self) -> float:
        """d(t_ours)/d(t_autopilot): 1.0 for equal rates, 1/K for a K-times sped-up simulator."""
        return self._rate

    @property
    def causal_shift_s(self) -> float:
        """How far (<= 0 s) causality moved the TIMESYNC fit back (see the class docs)."""
        return self._causal_s

    def to_ours(self, t_autopilot_s: float) -> float:
        return self._offset_s + self._causal_s + self._rate * t_autopilot_s

    def to_autopilot(self, t_ours_s: float) -> float:
        return (t_ours_s - self._offset_s - self._causal_s) / self._rate
