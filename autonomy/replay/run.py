"""Run the onboard pipeline over a recorded video on the log clock (what would the stack have done?).

The same :class:`~autonomy.runtime.pipeline.Pipeline`, detector, tracker and engagement machine as in flight,
built from the same TOML configuration as ``autonomy fly``; only the clock (the log's), the frame source (the
video, frame ``i`` captured at ``log start + video_start_s + i / fps``) and the vehicle link
(:class:`~autonomy.runtime.replay.LogVehicle`: recorded states, cues and operator commands; setpoints are
collected, never sent) differ. Deterministic: the same inputs give the same decisions.

``authorize="log"`` uses only the operator commands in the log (a faithful replay). ``"what-if"`` adds a
simulated operator that authorizes the track the machine asks about, as soon as it asks: the answer to "what
would it have done had the operator said yes". Nothing is ever sent to a vehicle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from autonomy.camera.model import Camera, CameraIntrinsics
from autonomy.camera.time_offset import capture_offset_report, engaged_target_sample
from autonomy.clock import SimClock
from autonomy.engagement import EngagementMachine, State
from autonomy.replay.logs import LogData, ReplayError
from autonomy.runtime.pipeline import Pipeline, StepResult
from autonomy.runtime.replay import LogVehicle
from autonomy.types import OperatorCommand, OperatorCommandKind


@dataclass(frozen=True)
class ReplayOptions:
    video_start_s: float = 0.0          # log time of the first video frame, s after the log's first state
    fps: float | None = None            # None: the video file's own rate
    hfov_deg: float | None = None       # the recording camera's horizontal FOV when it is not the config's
    max_frames: int | None = None
    authorize: str = "log"              # "log" | "what-if"
    frame_times_s: tuple[float, ...] | None = None   # capture time of each frame on the log clock (recorded)

    def __post_init__(self) -> None:
        if self.authorize not in ("log", "what-if"):
            raise ReplayError(f"authorize must be 'log' or 'what-if', not {self.authorize!r}")
        if not math.isfinite(self.video_start_s):
            raise ReplayError("video_start_s must be finite")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ReplayError(f"fps must be > 0, got {self.fps}")


@dataclass
class ReplayResult:
    log: LogData
    camera: Camera
    steps: list[StepResult] = field(default_factory=list)
    decisions: list = field(default_factory=list)
    setpoints: list = field(default_factory=list)
    frames_outside_log: int = 0
    notes: list[str] = field(default_factory=list)
    latency: dict = field(default_factory=dict)
    capture_offset_ms: float | None = None      # autonomy.camera.time_offset (None: too few detections / unclear)

    def summary(self) -> dict:
        dets = [0 if r.detections is None else len(r.detections) for r in self.steps]
        confirmed = sorted({t.track_id for r in self.steps for t in r.tracks if t.status.value == "confirmed"})
        classes: dict[str, int] = {}
        for r in self.steps:
            for t in r.tracks:
                if t.status.value == "confirmed":
                    classes[t.class_name] = classes.get(t.class_name, 0) + 1
        states = [r.state.value for r in self.steps]
        trans = [d for d in self.decisions if d.from_state is not d.to_state]
        visited = [trans[0].from_state.value] + [d.to_state.value for d in trans] if trans else states[:1]
        return {
            "log": self.log.summary(),
            "camera": {"width_px": self.camera.intrinsics.width_px, "height_px": self.camera.intrinsics.height_px,
                       "hfov_deg": round(math.degrees(self.camera.intrinsics.hfov_rad), 2),
                       "tilt_up_deg": round(math.degrees(self.camera.mount.tilt_up_rad), 2)},
            "frames": len(self.steps), "frames_outside_log": self.frames_outside_log,
            "frames_with_detections": int(sum(d > 0 for d in dets)), "detections": int(sum(dets)),
            "confirmed_tracks": confirmed, "confirmed_track_frames_by_class": classes,
            "final_state": states[-1] if states else None,
            "states_visited": list(dict.fromkeys(visited)),
            "decisions": [[round(d.t_s - self.log.t_first_s, 3), d.from_state.value, d.to_state.value,
                           d.reason.value, d.details] for d in self.decisions],
            "setpoints_that_would_have_been_sent": len(self.setpoints),
            "latency_ms": self.latency, "capture_offset_ms": self.capture_offset_ms, "notes": list(self.notes),
        }


def replay_camera(base: Camera, width_px: int, height_px: int, hfov_deg: float | None, notes: list[str]) -> Camera:
    """The recording camera: ``base`` (from the config) when the video matches it; with ``hfov_deg`` a
    pinhole of that FOV on the video's size (base mount); otherwise ``base`` scaled to the video's size."""
    bi = base.intrinsics
    if hfov_deg is not None:
        if not 1.0 < hfov_deg < 179.0:
            raise ReplayError(f"hfov_deg must be in (1, 179), got {hfov_deg}")
        return replace(base, intrinsics=CameraIntrinsics.from_hfov(width_px, height_px, hfov_deg))
    if (bi.width_px, bi.height_px) == (width_px, height_px):
        return base
    notes.append(f"calibration {bi.width_px}x{bi.height_px} scaled to the video's {width_px}x{height_px}; "
                 "pass --hfov-deg or a config calibrated for the recording camera if it is another camera")
    return replace(base, intrinsics=bi.scaled(width_px, height_px))


class _WhatIfOperator:
    """A simulated operator: authorizes the track the machine is waiting on, once per track."""

    def __init__(self, machine: EngagementMachine, valid_for_s: float = 30.0) -> None:
        self.machine = machine
        self.valid_for_s = valid_for_s
        self._asked: set[int] = set()

    def commands(self, t_s: float) -> list[OperatorCommand]:
        m = self.machine
        tid = getattr(m, "_track_id", None)
        if m.state is State.AWAIT_AUTHORIZATION and tid is not None and tid not in self._asked:
            self._asked.add(tid)
            return [OperatorCommand(OperatorCommandKind.AUTHORIZE, t_s, tid, self.valid_for_s, signed=True)]
        return []


class _ReplayVehicle(LogVehicle):
    def __init__(self, log: LogData, clock: SimClock) -> None:
        super().__init__(log.states, clock, log.cues, log.commands)
        self.extra: Callable[[float], list[OperatorCommand]] | None = None

    def poll_operator_commands(self) -> list[OperatorCommand]:
        out = super().poll_operator_commands()
        if self.extra is not None:
            out += self.extra(self.clock.now_s())
        return out


def run_replay(log: LogData, frames, cfg, detector, opts: ReplayOptions,
               on_frame: Callable[[int, float, object, StepResult | None], None] | None = None,
               recorder=None) -> ReplayResult:
    """Replay ``frames`` (:class:`~autonomy.camera.sources.Frame` in order, stamped on the log clock, e.g. a
    :class:`~autonomy.camera.sources.VideoFileSource`; ``opts.frame_times_s`` overrides the stamps) against ``log`` with the parts built from ``cfg``
    (a :class:`~autonomy.config.CompanionConfig`; the tracker is built here for the recording camera).
    ``detector`` None replays without perception. ``on_frame(i, t_rel_s, image, step)`` is called for every
    frame (``step`` None for a frame outside the log) for progress and the annotated video."""
    from autonomy.tracking import Tracker

    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ReplayError("the video has no frames")
    h, w = first.image.shape[:2]
    notes: list[str] = []
    cam = replay_camera(cfg.camera.camera, w, h, opts.hfov_deg, notes)
    tracker = Tracker(cfg.tracker, cam)
    clock = SimClock(log.t_first_s)
    vehicle = _ReplayVehicle(log, clock)
    machine = EngagementMachine(cfg.engagement, cam, log.autopilot)
    if opts.authorize == "what-if":
        vehicle.extra = _WhatIfOperator(machine).commands
    pipe = Pipeline(cfg.pipeline, cam, vehicle, machine, tracker, detector, clock, recorder=recorder)
    res = ReplayResult(log, cam, notes=notes)
    fr = first
    times = opts.frame_times_s
    while fr is not None and (opts.max_frames is None or fr.index < opts.max_frames):
        if times is not None and fr.index >= len(times):
            notes.append(f"the video has more frames than the frame-times file ({len(times)}); the rest skipped")
            break
        t_cap = times[fr.index] if times is not None else fr.t_capture_s
        step = None
        if t_cap < log.t_first_s or t_cap > log.t_last_s:
            res.frames_outside_log += 1
        else:
            clock.set(max(clock.now_s(), t_cap))
            step = pipe.process_frame(fr.image, t_cap)
            res.steps.append(step)
        if on_frame is not None:
            on_frame(fr.index, t_cap - log.t_first_s, fr.image, step)
        fr = next(it, None)
    if not res.steps:
        raise ReplayError(f"no video frame falls inside the log ({log.t_last_s - log.t_first_s:.1f} s long) with "
                          f"video_start_s={opts.video_start_s} (check --video-start-s, --fps or --frame-times)")
    if res.frames_outside_log:
        notes.append(f"{res.frames_outside_log} frames outside the log's time span were skipped")
    res.decisions = list(machine.decisions)
    res.setpoints = list(vehicle.setpoints)
    if "latency" in pipe.timer.stages():
        res.latency = {k: round(v, 2) for k, v in pipe.timer.summary("processing").as_dict().items()}
    # the capture-time offset the engaged target's detections show (autonomy.camera.time_offset): tens of ms mean
    # the recorded frame times (or the video start) are off against the log's attitude
    res.capture_offset_ms, line = capture_offset_report(
        [smp for smp in map(engaged_target_sample, res.steps) if smp is not None], vehicle.state_at, cam)
    notes.append(line)
    return res
