"""Latency accounting: per-stage durations and frame-capture-to-setpoint latency, with percentiles.

Values are recorded in seconds on the stack's clock; reports are in milliseconds. Bounded memory: a ring of
the last ``capacity`` samples per stage (the p99 of a long flight is the p99 of its recent window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "max_ms": self.max_ms, "mean_ms": self.mean_ms}


class StageTimer:
    """Ring buffers of durations keyed by stage name."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._capacity = capacity
        self._buf: dict[str, np.ndarray] = {}
        self._n: dict[str, int] = {}

    def record(self, stage: str, duration_s: float) -> None:
        buf = self._buf.get(stage)
        if buf is None:
            buf = self._buf[stage] = np.empty(self._capacity)
            self._n[stage] = 0
        buf[self._n[stage] % self._capacity] = duration_s
        self._n[stage] += 1

    def stages(self) -> list[str]:
        return list(self._buf)

    def summary(self, stage: str) -> LatencySummary:
        n = self._n.get(stage, 0)
        if n == 0:
            return LatencySummary(0, float("nan"), float("nan"), float("nan"), float("nan"))
        x = self._buf[stage][: min(n, self._capacity)] * 1e3
        return LatencySummary(n, float(np.percentile(x, 50)), float(np.percentile(x, 99)), float(x.max()),
                              float(x.mean()))

    def report(self) -> dict[str, dict[str, float]]:
        return {s: self.summary(s).as_dict() for s in self._buf}
