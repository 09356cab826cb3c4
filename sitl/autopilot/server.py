"""Run a simulated autopilot against the wall clock (real time, or ``speedup`` times faster).

The simulated clock advances in whole physics ticks; when the host cannot keep up (a loaded machine, a large
``speedup``) the schedule re-anchors instead of bursting, so the simulation runs slower than asked rather than
jumping. Clock and sleep are injected for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sitl.autopilot.base import Autopilot


@dataclass
class RunStats:
    wall_s: float = 0.0
    sim_s: float = 0.0
    ticks: int = 0
    reanchors: int = 0

    @property
    def achieved_speedup(self) -> float:
        return self.sim_s / self.wall_s if self.wall_s > 0 else 0.0


def run_realtime(
    ap: Autopilot,
    speedup: float = 1.0,
    duration_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_catchup_ticks: int = 50,
) -> RunStats:
    """Step ``ap`` so that its simulated time follows ``speedup`` x the wall clock until stopped.

    ``duration_s`` is simulated seconds (None: until ``should_stop()``). Returns wall/sim time and re-anchors.
    """
    if not speedup > 0:
        raise ValueError(f"speedup must be > 0, got {speedup!r}")
    dt = ap.config.physics_dt_s
    stats = RunStats()
    w0 = clock()
    t_wall0, t_sim0 = w0, ap.t_s
    start_sim = ap.t_s
    while not should_stop():
        target = t_sim0 + (clock() - t_wall0) * speedup
        n = 0
        while ap.t_s + dt <= target + 1e-9 and n < max_catchup_ticks:
            ap.tick()
            n += 1
            stats.ticks += 1
        if n >= max_catchup_ticks:
            t_wall0, t_sim0 = clock(), ap.t_s  # behind schedule: slow down instead of bursting
            stats.reanchors += 1
        if duration_s is not None and ap.t_s - start_sim >= duration_s - 1e-9:
            break
        wait = (ap.t_s + dt - (t_sim0 + (clock() - t_wall0) * speedup)) / speedup
        if wait > 0:
            sleep(min(wait, 0.05))
    stats.wall_s = clock() - w0
    stats.sim_s = ap.t_s - start_sim
    return stats
