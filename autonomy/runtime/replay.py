"""The pipeline on a LOG clock: recorded frames and recorded vehicle states, no link (DESIGN.md section 2).

:class:`LogVehicle` is the vehicle side of a replay: ``state`` / ``state_at`` come from recorded
:class:`~autonomy.types.VehicleState` samples (position/velocity linear, attitude slerp), cues and operator
commands come back when the log clock passes their time, and setpoints are collected instead of sent.
:func:`replay_video` steps a :class:`~autonomy.clock.SimClock` to each frame's recorded capture time and runs
the ordinary :class:`~autonomy.runtime.pipeline.Pipeline` on it: the same code as in flight and in lockstep
simulation, so a flight (or a real video with a known camera pose) can be re-run offline, deterministically.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import replace

from autonomy.clock import SimClock
from autonomy.geometry import quat_slerp
from autonomy.types import OperatorCommand, Setpoint, TargetCue, VehicleState


class LogVehicle:
    """Recorded vehicle states (sorted by ``t_s``) behind the pipeline's VehicleLink interface."""

    def __init__(self, states: list[VehicleState], clock, cues: Iterable[TargetCue] = (),
                 commands: Iterable[OperatorCommand] = ()) -> None:
        if not states:
            raise ValueError("a replay needs at least one vehicle state")
        self._states = sorted(states, key=lambda s: s.t_s)
        self._t = [s.t_s for s in self._states]
        self.clock = clock
        self._cues = sorted(cues, key=lambda c: c.t_s)
        self._cmds = sorted(commands, key=lambda c: c.t_s)
        self.setpoints: list[Setpoint] = []

    @property
    def state(self) -> VehicleState | None:
        s = self.state_at(self.clock.now_s())
        return s if s is not None else self._states[0]

    def state_at(self, t_s: float) -> VehicleState | None:
        t = self._t
        if t_s <= t[0]:
            return replace(self._states[0], t_s=t_s) if len(t) == 1 or t_s == t[0] else None
        if t_s >= t[-1]:
            return replace(self._states[-1], t_s=t_s) if t_s - t[-1] < 0.5 else None
        i = bisect.bisect_right(t, t_s)
        a, b = self._states[i - 1], self._states[i]
        f = (t_s - a.t_s) / (b.t_s - a.t_s)
        return replace(a, t_s=t_s, pos_ned_m=a.pos_ned_m + f * (b.pos_ned_m - a.pos_ned_m),
                       vel_ned_mps=a.vel_ned_mps + f * (b.vel_ned_mps - a.vel_ned_mps),
                       q_body_to_ned=quat_slerp(a.q_body_to_ned, b.q_body_to_ned, f))

    def poll_cues(self) -> list[TargetCue]:
        now = self.clock.now_s()
        out = [c for c in self._cues if c.t_s <= now]
        self._cues = self._cues[len(out):]
        return out

    def poll_operator_commands(self) -> list[OperatorCommand]:
        now = self.clock.now_s()
        out = [c for c in self._cmds if c.t_s <= now]
        self._cmds = self._cmds[len(out):]
        return out

    def set_setpoint(self, sp: Setpoint) -> None:
        self.setpoints.append(sp)


def replay_video(make_pipeline: Callable, source, clock: SimClock, max_frames: int | None = None) -> list:
    """Run ``make_pipeline(clock)`` over every frame of ``source`` (``read()`` -> Frame with the recorded
    ``t_capture_s``), advancing ``clock`` to each capture time. Returns the StepResults."""
    pipe = make_pipeline(clock)
    out = []
    while max_frames is None or len(out) < max_frames:
        fr = source.read()
        if fr is None:
            break
        clock.set(max(clock.now_s(), fr.t_capture_s))
        out.append(pipe.process_frame(fr.image, fr.t_capture_s))
    return out


__all__ = ["LogVehicle", "replay_video"]
