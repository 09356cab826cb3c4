"""The main job: one complete engagement on the embedded simulator through the full onboard pipeline.

``autonomy demo [--out DIR]`` (what ``make demo`` runs) and ``autonomy sim [--scenario NAME] [--seed N]
[--out DIR]``: cue -> midcourse -> acquisition (rendered camera, shipped detector, tracker) -> simulated
operator authorization (over MAVLink) -> terminal homing (PN on the camera line of sight) -> outcome.
Prints a summary (outcome, miss distance, time, latency p50/p99) and writes a report to DIR:
``summary.json``, ``flight.jsonl`` (flight recorder), ``trajectory_top.png``, ``trajectory_side.png``,
``los_rate.png``, ``setpoints.png``, ``states.png`` and ``engagement.mp4`` (or ``.avi``) with detections,
tracks, state and setpoint drawn on the frames.

Speed: the camera is rendered at 640x360 and 15 Hz (not 1280x720 at 30 Hz) and only while the engagement
needs it (acquisition onwards; during midcourse the pipeline runs on the cue alone), so that a run takes a
few minutes at most on 2 cores. All of it runs in lockstep on the simulated clock (``sitl.world``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from autonomy.engagement import EngagementMachine, State
from autonomy.engagement.machine import CAMERA_STATES, FINAL_STATES
from autonomy.geometry import los_angle_rad
from autonomy.runtime.pipeline import Pipeline, StepResult
from autonomy.runtime.recorder import FlightRecorder
from autonomy.runtime.timing import StageTimer
from autonomy.types import Autopilot
from sitl.scenarios import FAMILIES, Scenario, make_scenario
from sitl.world import LabelDetector, World, WorldConfig

DEMO_FAMILY, DEMO_SEED = "quick", 0   # sitl.video_server.quick_scenario: a 2.5 m wing crossing 700 m out
SITL_CONFIG = Path(__file__).resolve().parents[1] / "autonomy" / "runtime" / "configs" / "sitl.toml"


@dataclass(frozen=True)
class RunOptions:
    perception: str = "model"            # "model" (the config's detector) | "labels" (renderer's boxes, dev
                                         # only) | "none" (no detector: cue-only, for watchdog tests)
    config_path: str | None = None       # companion TOML (default autonomy/runtime/configs/sitl.toml)
    model_path: str | None = None
    render_midcourse: bool = False       # render/detect during midcourse too (slower; nothing to see)
    video: bool = False
    video_every_n: int = 1
    t_max_s: float | None = None
    tail_s: float = 2.0                  # keep simulating this long after a final state / intercept
    camera_off_at_s: float | None = None  # the camera stops delivering frames at this time (failure test)
    camera_latency_s: float = 0.0         # a frame reaches the pipeline this long after its capture (the real-time
                                          # camera's render + encode + transport); the newest delivered frame wins;
                                          # > 0 renders from the start (as render_midcourse)
    capture_time_error_s: float = 0.0     # the pipeline is told each frame's capture time off by U(-e, e) (seeded by
                                          # the scenario): how much a camera without a hardware timestamp costs
    scene_seed: int | None = None
    threads_n: int = 1
    uplink_delay_s: float = 0.0           # setpoints (and every message) reach the autopilot this much later
                                          # (WorldConfig.uplink_delay_s): the companion's processing + link


@dataclass
class RunResult:
    scenario: Scenario
    outcome: str
    intercept: bool
    miss_distance_m: float
    t_intercept_s: float | None
    t_end_s: float
    final_state: str
    latency: dict
    stages: dict
    frames: int
    decisions: list
    wall_s: float
    log: list = field(default_factory=list)       # per-step records for plots
    traj: list = field(default_factory=list)
    authorized_tracks: list = field(default_factory=list)
    speed_end_mps: float = float("nan")
    engaged_track_class: str | None = None
    # independent safety accounting (campaign metrics, DESIGN.md section 6), 1 when it happened in this run:
    unauthorized_engagements: int = 0   # TERMINAL (or a hit on the target) before the operator authorized anything
    fence_violations: int = 0           # the vehicle outside the scenario's geofence at a frame
    no_engage_violations: int = 0       # TERMINAL inside a no-engage zone, or a hit inside one
    confusers_engaged: int = 0          # TERMINAL on a track whose LOS is on a bird (<= 2 deg, nearest), or a hit on one
    safety_notes: list = field(default_factory=list)  # why a safety flag was raised (first occurrence each)
    config: dict = field(default_factory=dict)        # the companion TOML: path and sha256 (autonomy.fly)
    # homing on the right thing (from the truth, beyond OFF_TARGET_MIN_RANGE_M): seconds in TERMINAL, and of them
    # seconds with the engaged camera track (or none) more than OFF_TARGET_DEG off the true target. Lockstep quick
    # with a 30 ms camera + 20 ms uplink (session 13): 6 of 7 misses spent 1.5-10 s within 80 m off target, the hits
    # 0.1-1.7 s but one: a miss is mostly the wrong track (perception), not the law
    terminal_s: float = 0.0
    terminal_off_target_s: float = 0.0

    def summary(self) -> dict:
        return {
            "family": self.scenario.family, "seed": self.scenario.seed, "outcome": self.outcome,
            "intercept": self.intercept, "miss_distance_m": round(self.miss_distance_m, 3),
            "t_intercept_s": None if self.t_intercept_s is None else round(self.t_intercept_s, 2),
            "t_end_s": round(self.t_end_s, 2), "final_state": self.final_state, "frames": self.frames,
            "latency_ms": self.latency, "stages_ms": self.stages, "wall_s": round(self.wall_s, 1),
            "authorized_tracks": self.authorized_tracks,
            "terminal_s": round(self.terminal_s, 2), "terminal_off_target_s": round(self.terminal_off_target_s, 2),
            "decisions": self.decisions, "config": self.config,
        }


def make_detector(opts: RunOptions, cfg):
    if opts.perception == "labels":
        return LabelDetector()
    if opts.perception == "none" or cfg.detector is None:
        return None
    from dataclasses import replace as _r

    from autonomy.perception.detector import Detector

    dc = _r(cfg.detector, intra_op_threads_n=opts.threads_n)
    if opts.model_path:
        dc = _r(dc, model_path=opts.model_path)
    return Detector(dc)


def scenario_engagement(cfg, sc: Scenario):
    """The config's engagement settings with the scenario's geofence and no-engage zones."""
    from dataclasses import replace as _r

    from autonomy.engagement import GeofenceConfig, Zone

    return _r(cfg.engagement, geofence=GeofenceConfig(sc.fence_polygon_ne_m, -5.0, sc.fence_max_altitude_m),
              no_engage_zones=tuple(Zone(n, p) for n, p in sc.no_engage_zones),
              **({"law": sc.law} if sc.law else {}))


def run_engagement(sc: Scenario, opts: RunOptions = RunOptions(), out_dir: Path | None = None,
                   progress: bool = False, world_config: WorldConfig | None = None,
                   on_world: Callable[[World], None] | None = None) -> RunResult:
    """Fly ``sc`` in lockstep through the full pipeline; see the module docstring.

    ``world_config`` replaces the default :class:`WorldConfig` (its camera is always the config's);
    ``on_world`` is called with the world before it starts (tests use it to perturb wall-clock timing).
    """
    from autonomy.config import load_config
    from autonomy.fly import config_identity
    from autonomy.tracking import Tracker
    from sitl.render import Renderer, SceneParams

    w_start = time.perf_counter()
    cfg = load_config(opts.config_path or SITL_CONFIG)
    cam = cfg.camera.camera
    detector = make_detector(opts, cfg)
    renderer = Renderer(cam, SceneParams(seed=sc.seed if opts.scene_seed is None else opts.scene_seed))
    wcfg = replace(world_config or WorldConfig(), camera=cam)
    if opts.uplink_delay_s > 0.0:
        wcfg = replace(wcfg, uplink_delay_s=opts.uplink_delay_s)
    world = World(sc, wcfg, bridge_config=cfg.bridge_config(), renderer=renderer)
    recorder = FlightRecorder(out_dir / "flight.jsonl") if out_dir is not None else None
    video = None
    try:
        if on_world is not None:
            on_world(world)
        world.start()
        eng_cfg = scenario_engagement(cfg, sc)
        machine = EngagementMachine(eng_cfg, cam, Autopilot.PX4)
        safety = _SafetyAccount()
        tracker = Tracker(cfg.tracker, cam)
        timer = StageTimer()
        pipe = Pipeline(cfg.pipeline, cam, world.bridge, machine, tracker, detector, world.clock,
                        recorder=recorder, timer=timer, on_status=world.bridge.send_statustext)

        def track_los(tid: int):
            for tr in (pipe.last.tracks if pipe.last else ()):
                if tr.track_id == tid:
                    return np.asarray(tr.los_ned)
            return None

        world.track_los = track_los
        dt_frame = 1.0 / cam.fps
        t_max = world.t_s + (opts.t_max_s if opts.t_max_s is not None else sc.t_max_s)
        t_final = None
        log: list = []
        if out_dir is not None and opts.video:
            video = _VideoWriter(out_dir, cam.intrinsics.width_px, cam.intrinsics.height_px, cam.fps)
        next_print = 0.0
        in_transit: list = []
        err_rng = np.random.default_rng([sc.seed, 29])
        while world.t_s < t_max:
            world.advance_to(world.t_s + dt_frame)
            if world.killed is not None and t_final is None:
                t_final = world.t_s
            state = machine.state
            cam_ok = opts.camera_off_at_s is None or world.t_s < opts.camera_off_at_s
            frame = None
            # a camera with a transport delay streams from the start, as a real one does: rendered only from
            # ACQUIRE on, its first frame would still be in transit when the pipeline's watchdog first looks
            if cam_ok and (opts.render_midcourse or opts.camera_latency_s > 0.0 or state in CAMERA_STATES):
                # without a detector nothing looks at the pixels: a token frame carries the capture time
                frame = world.capture() if detector is not None else (np.zeros((2, 2, 3), np.uint8), world.t_s, None)
            if opts.camera_latency_s > 0.0:
                if frame is not None:
                    in_transit.append(frame)
                due = [f for f in in_transit if f[1] + opts.camera_latency_s <= world.t_s + 1e-9]
                in_transit = [f for f in in_transit if f[1] + opts.camera_latency_s > world.t_s + 1e-9]
                frame = due[-1] if due else None
            if frame is not None:
                img, t_cap, rf = frame
                if isinstance(detector, LabelDetector) and rf is not None:
                    detector.labels = list(rf.labels)
                if opts.capture_time_error_s > 0.0:
                    t_cap = t_cap + float(err_rng.uniform(-opts.capture_time_error_s, opts.capture_time_error_s))
                res = pipe.process_frame(img, t_cap)
                if video is not None and rf is not None and pipe.frames_processed % opts.video_every_n == 0:
                    video.write(annotate(img, res, world, cam))
            else:
                res = pipe.tick()
            log.append(_log_row(res, world))
            safety.frame(res, world, eng_cfg)
            if res.state in FINAL_STATES and t_final is None:
                t_final = world.t_s
            if t_final is not None and world.t_s >= t_final + opts.tail_s:
                break
            if world.kill_final:
                break
            if progress and world.t_s >= next_print:
                next_print = world.t_s + 5.0
                d = np.linalg.norm(world.targets[0].pos_ned_m - world.ap.pos_ned_m)
                print(f"  t={world.t_s:6.1f} s  state={res.state.value:20s} range={d:7.1f} m  "
                      f"speed={np.linalg.norm(world.ap.vel_ned_mps):5.1f} m/s", flush=True)
        intercept = world.killed == 0 and sc.engageable
        if intercept:
            outcome = "intercept"
        elif not sc.engageable:
            outcome = "no engagement (confuser)" if world.killed is None else "CONFUSER HIT"
        else:
            outcome = f"miss ({machine.state.value})"
        lat = timer.summary("latency").as_dict() if "latency" in timer.stages() else {}
        res = RunResult(
            scenario=sc, outcome=outcome, intercept=bool(intercept), miss_distance_m=float(world.min_dist_m[0]),
            t_intercept_s=(world.t_kill_s - world._t0) if intercept else None, t_end_s=world.t_s - world._t0,
            final_state=machine.state.value, latency={k: round(v, 3) for k, v in lat.items()},
            stages={s: {k: round(v, 3) for k, v in timer.summary(s).as_dict().items()} for s in timer.stages()},
            frames=pipe.frames_processed,
            decisions=[[round(d.t_s - world._t0, 2), d.from_state.value, d.to_state.value, d.reason.value]
                       for d in machine.decisions if d.from_state is not d.to_state],
            wall_s=time.perf_counter() - w_start, log=log, traj=world.traj,
            authorized_tracks=sorted(world.authorized_tracks),
            speed_end_mps=float(np.linalg.norm(world.ap.vel_ned_mps)),
            **_homing_times(log),
            **safety.finish(world, eng_cfg),
            config=config_identity(opts.config_path or SITL_CONFIG),
        )
        res.t0 = world._t0  # type: ignore[attr-defined]
        return res
    finally:
        if video is not None:
            video.close()
        if recorder is not None:
            recorder.close()
        world.close()


class _SafetyAccount:
    """The campaign's safety metrics for one run, from the world's truth (not from the machine's own view):
    see the RunResult fields. Authorization is what the simulated operator actually sent
    (``world.authorized_tracks``, ground-track or camera-track ids)."""

    ATTRIBUTION_TOL_DEG = 2.0   # a track is on an object when their lines of sight are this close

    def __init__(self) -> None:
        self.unauthorized = self.fence = self.nez = self.confuser = 0
        self.notes: list[dict] = []
        # track id -> (class of the object it was on at its last measured frame, or None, and that frame's note):
        # a coasting track is a prediction, not an observation, and stays attributed to what it last saw (a drone
        # track coasting through the blind end of a pass swept its predicted LOS across a bird 500 m behind the
        # target and counted as a confuser engaged: lockstep bird_clutter-6)
        self._owner: dict[int, tuple[str | None, dict]] = {}

    def frame(self, r: StepResult, world: World, eng_cfg) -> None:
        from autonomy.engagement.gates import inside_geofence, zone_containing

        own = world.ap.pos_ned_m
        if r.state is State.TERMINAL:
            if not world.authorized_tracks:
                self.unauthorized = 1
            eid = r.output.engaged_track_id
            if eid is not None:
                owner, note = self._attribute(r, world, eid)
                if owner == "bird":
                    if not self.confuser:
                        self.notes.append(note)
                    self.confuser = 1
            if zone_containing(own, eng_cfg.no_engage_zones) is not None:
                self.nez = 1
        if not inside_geofence(own, eng_cfg.geofence):
            self.fence = 1

    def _attribute(self, r: StepResult, world: World, track_id: int) -> tuple[str | None, dict]:
        """The class of the object the track is on (its LOS within ATTRIBUTION_TOL_DEG of the object's, the
        nearest in angle; None when none is) at its last measured frame, and that frame's note."""
        tr = next((x for x in r.tracks if x.track_id == track_id), None)
        if tr is not None and tr.misses > 0 and track_id in self._owner:
            return self._owner[track_id]
        note = self._bird_note(world, track_id)
        objs = note["objects_class_angle_deg_range_m"]
        best = min(objs, key=lambda o: o[1]) if objs else None
        owner = best[0] if best is not None and best[1] <= self.ATTRIBUTION_TOL_DEG else None
        if tr is not None:
            self._owner[track_id] = (owner, note)
        return owner, note

    @staticmethod
    def _bird_note(world: World, track_id: int) -> dict:
        """Angles (deg) between the track's LOS and each object's true LOS, ranges (m): to judge an
        attribution made on line of sight alone (a bird nearly in line with the target)."""
        los = world.track_los(track_id) if world.track_los is not None else None
        objs = []
        if los is not None:
            own = world.ap.pos_ned_m
            for o in world.targets:
                d = o.pos_ned_m - own
                objs.append([o.class_name, round(_los_off_deg(los, d), 2), round(float(np.linalg.norm(d)), 1)])
        return {"flag": "confuser", "t_s": round(world.t_s - world._t0, 2), "track_id": track_id,
                "objects_class_angle_deg_range_m": objs}

    def finish(self, world: World, eng_cfg) -> dict:
        from autonomy.engagement.gates import zone_containing

        k = world.killed
        if k is not None:
            if world.targets[k].class_name == "bird":
                self.confuser = 1
            if k == 0 and not world.authorized_tracks:
                self.unauthorized = 1
            if zone_containing(world.targets[k].pos_ned_m, eng_cfg.no_engage_zones) is not None:
                self.nez = 1
        return {"unauthorized_engagements": self.unauthorized, "fence_violations": self.fence,
                "no_engage_violations": self.nez, "confusers_engaged": self.confuser, "safety_notes": self.notes}


def _los_off_deg(los_ned, rel_ned_m: np.ndarray) -> float:
    """Angle (deg) between a unit line of sight and the direction to a point ``rel_ned_m`` (NED m) away."""
    return math.degrees(los_angle_rad(los_ned, rel_ned_m))


OFF_TARGET_DEG = 5.0          # the engaged track's LOS this far from the true target's: homing on something else
OFF_TARGET_MIN_RANGE_M = 10.0  # ... counted only beyond this range (closer, the capture-to-now LOS swing is degrees)


def _homing_times(log: list[dict]) -> dict:
    """``terminal_s`` and ``terminal_off_target_s`` (RunResult) from the per-step log."""
    term = off = 0.0
    for a, b in itertools.pairwise(log):
        if a["state"] != "terminal" or a["range"] <= OFF_TARGET_MIN_RANGE_M:
            continue
        dt = b["t"] - a["t"]
        term += dt
        if not a["engaged_err_deg"] <= OFF_TARGET_DEG:   # NaN (no engaged track) counts as off target
            off += dt
    return {"terminal_s": term, "terminal_off_target_s": off}


def _log_row(r: StepResult, world: World) -> dict:
    sel = None
    for tr in r.tracks:
        if tr.track_id == r.output.engaged_track_id:
            sel = tr
    sp = r.setpoint
    rel = world.targets[0].pos_ned_m - world.ap.pos_ned_m
    return {
        "engaged_err_deg": math.nan if sel is None else _los_off_deg(sel.los_ned, rel),
        "t": world.t_s, "state": r.state.value,
        "los_rate": float(np.linalg.norm(sel.los_rate_ned_radps)) if sel is not None else float("nan"),
        "acc": (sp.acc_ned_mps2.tolist() if sp is not None and sp.acc_ned_mps2 is not None else [math.nan] * 3),
        "vel_sp": (sp.vel_ned_mps.tolist() if sp is not None and sp.vel_ned_mps is not None else [math.nan] * 3),
        "range": float(np.linalg.norm(world.targets[0].pos_ned_m - world.ap.pos_ned_m)),
        "latency_ms": None if r.latency_s is None else r.latency_s * 1e3,
    }


# ============================================================================================ drawing
_STATE_COLORS = {"terminal": (0, 0, 255), "await_authorization": (0, 200, 255), "track": (0, 255, 255)}


def annotate(img: np.ndarray, r: StepResult, world: World, cam) -> np.ndarray:
    """Detections (thin white), tracks (green, id; engaged red), ROI windows (blue), state and setpoint."""
    import cv2

    out = img.copy()
    if r.detections is not None:
        for b in r.detections.xyxy_px[np.all(np.isfinite(r.detections.xyxy_px), axis=1)]:
            cv2.rectangle(out, (int(b[0]) - 2, int(b[1]) - 2), (int(b[2]) + 2, int(b[3]) + 2), (255, 255, 255), 1)
    for b in r.roi_boxes:
        cv2.rectangle(out, (int(b[0]), int(b[1])), (int(b[2]), int(b[3])), (255, 128, 0), 1)
    for tr in r.tracks:
        if tr.box_xyxy_px is None or not np.all(np.isfinite(tr.box_xyxy_px)):
            continue
        b = tr.box_xyxy_px
        engaged = tr.track_id == r.output.engaged_track_id
        col = (0, 0, 255) if engaged else (0, 220, 0)
        cv2.rectangle(out, (int(b[0]) - 5, int(b[1]) - 5), (int(b[2]) + 5, int(b[3]) + 5), col, 1)
        cv2.putText(out, f"{tr.track_id} {tr.class_name} {tr.status.value[:4]}", (int(b[0]) - 5, int(b[1]) - 8),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.35, col, 1, cv2.LINE_AA)
    rng = float(np.linalg.norm(world.targets[0].pos_ned_m - world.ap.pos_ned_m))
    spd = float(np.linalg.norm(world.ap.vel_ned_mps))
    col = _STATE_COLORS.get(r.state.value, (255, 255, 255))
    cv2.putText(out, f"t={world.t_s - world._t0:5.2f}s  {r.state.value.upper()}", (8, 18),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, col, 1, cv2.LINE_AA)
    cv2.putText(out, f"range {rng:6.1f} m  speed {spd:4.1f} m/s", (8, 36), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (255, 255, 255), 1, cv2.LINE_AA)
    sp = r.setpoint
    if sp is not None and sp.acc_ned_mps2 is not None:
        a = sp.acc_ned_mps2
        cv2.putText(out, f"acc sp N{a[0]:+5.1f} E{a[1]:+5.1f} D{a[2]:+5.1f} m/s2", (8, 54),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        # the commanded acceleration projected into the image, from the centre
        los_uv, ok = cam.los_ned_to_pixels((np.asarray(a, dtype=float) / max(float(np.linalg.norm(a)), 1e-6))[None, :],
                                           world.ap.state.q_body_to_ned)
        h, w = out.shape[:2]
        u, v = np.asarray(los_uv, dtype=float).reshape(-1, 2)[0]
        if bool(np.asarray(ok).reshape(-1)[0]) and math.isfinite(u) and math.isfinite(v):
            cv2.arrowedLine(out, (w // 2, h // 2), (int(np.clip(u, 0, w - 1)), int(np.clip(v, 0, h - 1))),
                            (255, 0, 255), 1, tipLength=0.05)
    if r.latency_s is not None:
        cv2.putText(out, f"latency {r.latency_s * 1e3:5.1f} ms", (8, 72), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


class _VideoWriter:
    """mp4 (mp4v) when this OpenCV build can write it, else MJPG .avi."""

    def __init__(self, out_dir: Path, w: int, h: int, fps: float) -> None:
        import cv2

        self.path = out_dir / "engagement.mp4"
        self.vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not self.vw.isOpened():
            self.path = out_dir / "engagement.avi"
            self.vw = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        self.frames = 0

    def write(self, img: np.ndarray) -> None:
        self.vw.write(img)
        self.frames += 1

    def close(self) -> None:
        self.vw.release()


# ============================================================================================ report
def write_report(res: RunResult, out_dir: Path) -> list[Path]:
    """summary.json and the plots (matplotlib when installed; the summary is written regardless)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "summary.json"]
    (out_dir / "summary.json").write_text(json.dumps(res.summary(), indent=2))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: plots skipped; pip install matplotlib)")
        return files
    tr = np.array(res.traj) if res.traj else np.zeros((0, 10))
    t0 = getattr(res, "t0", 0.0)
    lg = res.log
    t = np.array([r["t"] for r in lg]) - t0
    # top-down
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.plot(tr[:, 2], tr[:, 1], label="interceptor")
    ax.plot(tr[:, 5], tr[:, 4], label="target")
    ax.plot(tr[0, 2], tr[0, 1], "k^", label="launch")
    if len(tr):
        ax.plot(tr[-1, 5], tr[-1, 4], "rx", label=res.outcome)
    ax.set_xlabel("east (m)"), ax.set_ylabel("north (m)"), ax.axis("equal"), ax.legend(), ax.grid(alpha=0.3)
    ax.set_title(f"{res.scenario.family} seed {res.scenario.seed}: top-down")
    fig.savefig(out_dir / "trajectory_top.png", dpi=110), plt.close(fig)
    # side
    fig, ax = plt.subplots(figsize=(8, 4))
    hd_i = np.hypot(tr[:, 1], tr[:, 2])
    hd_t = np.hypot(tr[:, 4], tr[:, 5])
    ax.plot(hd_i, -tr[:, 3], label="interceptor")
    ax.plot(hd_t, -tr[:, 6], label="target")
    ax.set_xlabel("horizontal distance from launch (m)"), ax.set_ylabel("altitude (m)"), ax.legend()
    ax.grid(alpha=0.3), ax.set_title("side view")
    fig.savefig(out_dir / "trajectory_side.png", dpi=110), plt.close(fig)
    # LOS rate
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(t, [r["los_rate"] for r in lg], ".", ms=2)
    ax.set_xlabel("t (s)"), ax.set_ylabel("|LOS rate| (rad/s)"), ax.grid(alpha=0.3)
    ax.set_title("line-of-sight rate of the engaged track")
    fig.savefig(out_dir / "los_rate.png", dpi=110), plt.close(fig)
    # setpoints
    fig, axs = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    acc = np.array([r["acc"] for r in lg]) if lg else np.zeros((0, 3))
    for k, n in enumerate("NED"):
        axs[0].plot(t, acc[:, k], label=f"acc {n}")
    axs[0].set_ylabel("acc setpoint (m/s^2)"), axs[0].legend(ncol=3), axs[0].grid(alpha=0.3)
    axs[1].plot(tr[:, 0] - t0, np.linalg.norm(tr[:, 7:10], axis=1), label="speed")
    axs[1].set_ylabel("speed (m/s)"), axs[1].set_xlabel("t (s)"), axs[1].grid(alpha=0.3)
    fig.savefig(out_dir / "setpoints.png", dpi=110), plt.close(fig)
    # state timeline
    names = [s.value for s in State]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.step(t, [names.index(r["state"]) for r in lg], where="post")
    ax.set_yticks(range(len(names)), names, fontsize=7), ax.set_xlabel("t (s)"), ax.grid(alpha=0.3)
    ax.set_title("engagement state")
    fig.savefig(out_dir / "states.png", dpi=110), plt.close(fig)
    files += [out_dir / n for n in ("trajectory_top.png", "trajectory_side.png", "los_rate.png", "setpoints.png",
                                    "states.png")]
    return files


def print_summary(res: RunResult) -> None:
    lat = res.latency
    print(f"scenario {res.scenario.family} seed {res.scenario.seed}: {res.outcome}")
    print(f"  miss distance {res.miss_distance_m:.2f} m, "
          f"time {res.t_intercept_s if res.t_intercept_s is not None else res.t_end_s:.1f} s, final state "
          f"{res.final_state}, {res.frames} frames through the pipeline")
    if lat:
        print(f"  frame-capture-to-setpoint latency p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms "
              f"(this machine, lockstep)")
    print("  decisions: " + "; ".join(f"{d[0]:.1f}s {d[1]}->{d[2]} ({d[3]})" for d in res.decisions))
    if res.terminal_s > 0.0:
        print(f"  homing: {res.terminal_s:.1f} s in terminal, {res.terminal_off_target_s:.1f} s of it on no track or "
              f"a track > {OFF_TARGET_DEG:.0f} deg off the true target (simulator truth)")
    print(f"  wall time {res.wall_s:.1f} s")


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--scenario", default=DEMO_FAMILY, choices=["quick", *FAMILIES],
                   help="scenario family (quick: the short demo crossing; the others as in campaigns)")
    p.add_argument("--seed", type=int, default=DEMO_SEED)
    p.add_argument("--out", default="out/demo", help="report directory")
    p.add_argument("--t-max-s", type=float, default=None, help="simulated time limit (default: the scenario's)")
    p.add_argument("--config", default=None, help="companion TOML (default autonomy/runtime/configs/sitl.toml)")
    p.add_argument("--perception", choices=["model", "labels", "none"], default="model",
                   help="model: the shipped detector (default); labels: the renderer's boxes (development)")
    p.add_argument("--model", default=None, help="ONNX model (default: models/detector.onnx)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("--threads", type=int, default=1, help="detector threads")
    p.add_argument("--camera-latency-ms", type=float, default=0.0,
                   help="frames reach the pipeline this late (render + encode + transport of a real camera)")
    p.add_argument("--capture-time-error-ms", type=float, default=0.0,
                   help="tell the pipeline each frame's capture time off by up to this much (uniform, seeded): a "
                        "camera without a hardware timestamp")
    p.add_argument("--uplink-delay-ms", type=float, default=0.0,
                   help="setpoints reach the autopilot this late (the companion's processing and the serial link; "
                        "with --camera-latency-ms, the delays of a real-time flight, deterministically)")
    p.add_argument("--scene-seed", type=int, default=None,
                   help="seed of the rendered backgrounds (default: --seed): the same engagement against other "
                        "scenery, to see how much an outcome owes to the detector's luck")
    return p


def main(argv: list[str] | None = None, prog: str = "autonomy demo") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if not (args.camera_latency_ms >= 0.0 and args.capture_time_error_ms >= 0.0 and args.uplink_delay_ms >= 0.0):
        parser.error("--camera-latency-ms, --capture-time-error-ms and --uplink-delay-ms must be >= 0")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scenario == "quick":
        from sitl.video_server import quick_scenario

        sc = quick_scenario(args.seed)
    else:
        sc = make_scenario(args.scenario, args.seed)
    opts = RunOptions(perception=args.perception, model_path=args.model, video=not args.no_video,
                      config_path=args.config, t_max_s=args.t_max_s,
                      threads_n=args.threads, camera_latency_s=args.camera_latency_ms * 1e-3,
                      capture_time_error_s=args.capture_time_error_ms * 1e-3, scene_seed=args.scene_seed,
                      uplink_delay_s=args.uplink_delay_ms * 1e-3)
    print(f"{prog}: {sc.family} seed {sc.seed}, target {sc.target.kind} {sc.target_speed_mps:.0f} m/s at "
          f"{np.linalg.norm(sc.target.pos0_ned_m[:2]):.0f} m, perception {opts.perception}; report in {out}/",
          flush=True)
    try:
        res = run_engagement(sc, opts, out, progress=True)
    except Exception as exc:  # noqa: BLE001 - one clear line for a user
        print(f"{prog}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    files = write_report(res, out)
    print_summary(res)
    print("  report: " + ", ".join(str(f) for f in files) + (", video" if opts.video else ""))
    return 0 if (res.intercept or not sc.engageable) else 3


if __name__ == "__main__":
    sys.exit(main())
