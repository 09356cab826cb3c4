"""``autonomy fly --config FILE``: the companion service.

Start-up self-check, each step one line; the first failure prints ONE clear line and exits non-zero:

1. config   the TOML parses and validates (exit 2 when not)
2. model    the detector loads, runs a warm-up frame; the tracker's numba kernels are compiled/loaded
3. camera   the source opens and delivers a first frame of the calibrated size within the timeout
4. link     the autopilot's HEARTBEAT arrives (flavour), then its position and EKF origin
5. params   the autopilot parameters in ``[checks]`` are inside their limits

Then the loop (newest frame wins): each new frame goes through the pipeline; between frames the engagement
logic ticks at ``service.tick_hz`` so that its watchdogs run (a camera that stops makes the engagement abort:
the vehicle brakes and holds, then returns on the autopilot's RTL). The bridge's dead-man watchdog brakes the
vehicle if this process itself stalls. SIGINT/SIGTERM stop it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

EXIT_CONFIG, EXIT_SELFCHECK, EXIT_RUNTIME = 2, 1, 3


class SelfCheckError(RuntimeError):
    """One failed start-up check: ``str()`` is the one line printed to the user."""


def config_identity(path: str | Path) -> dict:
    """Which companion TOML drove a run: resolved path and SHA-256 of its bytes (the lockstep runner reports
    the same, so a test can check that one file drives both the simulation and the real-time service)."""
    import hashlib

    p = Path(path).resolve()
    return {"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}


def _say(msg: str) -> None:
    print(f"autonomy fly: {msg}", flush=True)


def check_model(cfg):
    """Detector loaded and warmed up (None when disabled) + tracker kernels ready. Returns (detector, tracker)."""
    from autonomy.tracking import Tracker
    from autonomy.types import Detections

    det = None
    t0 = time.perf_counter()
    if cfg.detector is not None:
        from autonomy.perception.detector import Detector
        from autonomy.perception.errors import FrameError, ModelError

        try:
            det = Detector(cfg.detector)
            w, h = cfg.camera.camera.intrinsics.width_px, cfg.camera.camera.intrinsics.height_px
            det.detect(np.zeros((h, w, 3), np.uint8), 0.0)
        except (ModelError, FrameError) as exc:
            raise SelfCheckError(f"model: {exc}") from exc
        except Exception as exc:
            raise SelfCheckError(f"model: cannot run {cfg.detector.model_path}: {type(exc).__name__}: {exc}") from exc
    t1 = time.perf_counter()
    tracker = Tracker(cfg.tracker, cfg.camera.camera)
    tracker.step(Detections.empty(0.0), np.array([1.0, 0, 0, 0]), 0.0)   # numba compile / cache load
    tracker = Tracker(cfg.tracker, cfg.camera.camera)
    t2 = time.perf_counter()
    what = "disabled (cue-only)" if det is None else f"{Path(cfg.detector.model_path).name} on {det.providers[0]}"
    _say(f"self-check model: {what}, warm-up {1e3 * (t1 - t0):.0f} ms; tracker ready in {1e3 * (t2 - t1):.0f} ms")
    return det, tracker


def check_camera(cfg, clock):
    from autonomy.camera.model import CameraError
    from autonomy.camera.sources import LiveCaptureSource

    cs = cfg.camera
    try:
        src = LiveCaptureSource(cs.source, clock, latency_s=cs.latency_s, frame_stamp=cs.frame_stamp)
    except CameraError as exc:
        raise SelfCheckError(f"camera: {exc}") from exc
    except Exception as exc:
        raise SelfCheckError(f"camera: cannot open {cs.source!r}: {type(exc).__name__}: {exc}") from exc
    fr = src.read(timeout_s=cs.first_frame_timeout_s)
    if fr is None:
        src.close()
        why = src.error or f"no frame within {cs.first_frame_timeout_s} s"
        raise SelfCheckError(f"camera: {cs.source!r} opened but {why}")
    h, w = fr.image.shape[:2]
    intr = cs.camera.intrinsics
    if (w, h) != (intr.width_px, intr.height_px):
        src.close()
        raise SelfCheckError(f"camera: frames are {w}x{h} but the calibration is {intr.width_px}x{intr.height_px}")
    if (cs.frame_stamp == "autopilot_time" and fr.t_capture_autopilot_s is None) or \
            (cs.frame_stamp == "v4l2" and src.unstamped_frames > 0):
        _say(f"self-check camera: WARNING frame_stamp = \"{cs.frame_stamp}\" but the first frame carries no usable "
             f"stamp; capture times fall back to grab time - latency_s ({cs.latency_s * 1e3:.0f} ms)")
    _say(f"self-check camera: {cs.source} {w}x{h}")
    return src


def check_link(cfg, clock):
    from autonomy.mavlink import Bridge, LinkError

    try:
        bridge = Bridge(cfg.bridge_config(), clock)
    except LinkError as exc:
        raise SelfCheckError(f"link: {exc}") from exc
    bridge.start()
    try:
        fl = bridge.connect(timeout_s=cfg.link.connect_timeout_s)
        bridge.request_streams()
        if not bridge.wait_for(lambda: bridge.state is not None and bridge.cache.origin is not None,
                               cfg.link.connect_timeout_s):
            raise LinkError(f"connected to {fl.autopilot.value} but no position / EKF origin within "
                            f"{cfg.link.connect_timeout_s} s (GPS lock? estimator?)")
    except LinkError as exc:
        bridge.close()
        raise SelfCheckError(f"link: {exc}") from exc
    _say(f"self-check link: {cfg.link.url} -> {fl.autopilot.value}, mode {bridge.mode}")
    return bridge


def check_params(cfg, bridge) -> None:
    from autonomy.mavlink import MavlinkError

    bad = []
    for name, lo in cfg.params_min:
        try:
            v = float(bridge.param_get(name))
        except MavlinkError as exc:
            raise SelfCheckError(f"params: cannot read {name}: {exc}") from exc
        if v < lo:
            bad.append(f"{name}={v:g} < {lo:g}")
    for name, hi in cfg.params_max:
        try:
            v = float(bridge.param_get(name))
        except MavlinkError as exc:
            raise SelfCheckError(f"params: cannot read {name}: {exc}") from exc
        if v > hi:
            bad.append(f"{name}={v:g} > {hi:g}")
    if bad:
        raise SelfCheckError("params: autopilot parameters out of limits: " + ", ".join(bad))
    _say(f"self-check params: {len(cfg.params_min) + len(cfg.params_max)} checks ok")


def run_service(cfg, bridge, source, detector, tracker, clock, stop) -> dict:
    """The flight loop (see the module docstring). Returns a summary dict."""
    from autonomy.camera.time_offset import capture_offset_report, engaged_target_sample
    from autonomy.engagement import EngagementMachine, State
    from autonomy.engagement.machine import FINAL_STATES
    from autonomy.mavlink import Control, LinkError
    from autonomy.runtime.pipeline import Pipeline
    from autonomy.runtime.recorder import FlightRecorder
    from autonomy.types import Setpoint

    rec = cam_rec = None
    if cfg.service.record_dir:
        # one folder per flight: the link's flight.tlog (see main), flight.jsonl (every pipeline step and
        # decision), camera.mp4 + frames.csv (the frames processed, stamped on the tlog's clock); together they
        # are what `autonomy replay FOLDER` re-runs
        from autonomy.replay.record import CameraRecorder

        d = Path(cfg.link.tlog_path).parent if cfg.link.tlog_path else Path(cfg.service.record_dir)
        d.mkdir(parents=True, exist_ok=True)
        rec = FlightRecorder(d / "flight.jsonl")
        off = bridge.link.tlog_clock_offset_s
        cam_rec = CameraRecorder(d, cfg.camera.camera.fps, off if off is not None else time.time() - clock.now_s())
    machine = EngagementMachine(cfg.engagement, cfg.camera.camera, bridge.flavour.autopilot)
    pipe = Pipeline(cfg.pipeline, cfg.camera.camera, bridge, machine, tracker, detector, clock, recorder=rec,
                    on_status=bridge.send_statustext)
    period = 1.0 / cfg.service.tick_hz
    t_end = None if cfg.service.duration_s is None else clock.now_s() + cfg.service.duration_s
    engaged = False
    camera_lost_said = False
    last_state = None
    # how wrong "grab time - latency_s" was, for frames that carry a stamp (the last ~5 min; a service runs for hours)
    grab_minus_stamp_s: deque = deque(maxlen=10_000)
    stamped_n = 0
    target_px: deque = deque(maxlen=int(30.0 * cfg.camera.camera.fps))  # (t_capture, uv) of the engaged target
    if cfg.service.auto_arm:
        # simulation / test ranges: OFFBOARD + armed on the ground before the cue; a zero-velocity hold is
        # streamed until the engagement commands something (never on a real vehicle: auto_arm = false)
        bridge.engage(Setpoint(t_s=clock.now_s(), vel_ned_mps=np.zeros(3)), timeout_s=5.0)
        if not bridge.armed:
            # the bridge keeps the hold fresh while the armed HEARTBEAT comes (else the dead-man brakes)
            with contextlib.suppress(LinkError):   # not armed in time: said below, the loop goes on as before
                bridge.arm(wait_s=3.0, hold=Setpoint(t_s=clock.now_s(), vel_ned_mps=np.zeros(3)))
        engaged = True
        _say(f"auto_arm: {bridge.mode}, armed={bridge.armed}")
    try:
        while not stop():
            if t_end is not None and clock.now_s() >= t_end:
                break
            fr = source.read(timeout_s=period) if source is not None else None
            if fr is not None:
                t_cap = fr.t_capture_s
                if fr.t_capture_autopilot_s is not None:
                    t_cap = bridge.autopilot_time_to_ours(fr.t_capture_autopilot_s)
                    grab_minus_stamp_s.append(fr.t_capture_s - t_cap)
                    stamped_n += 1
                res = pipe.process_frame(fr.image, t_cap)
                if (smp := engaged_target_sample(res)) is not None:
                    target_px.append(smp)
                if cam_rec is not None:
                    cam_rec.write(fr.image, t_cap)
            else:
                if source is not None and source.error and not camera_lost_said:
                    camera_lost_said = True
                    _say(f"camera: {source.error}; the engagement's pipeline watchdog takes over")
                    bridge.send_statustext(f"CAMERA LOST: {source.error}"[:100], severity=2)
                res = pipe.tick()
            if res.state is not last_state:
                last_state = res.state
                why = ",".join(r.value for r in res.output.reasons)
                _say(f"t={clock.now_s():7.2f} s state {res.state.value} ({why})")
            if cfg.service.auto_arm and res.state is State.IDLE and res.setpoint is None:
                bridge.set_setpoint(Setpoint(t_s=clock.now_s(), vel_ned_mps=np.zeros(3)))
            elif not engaged and res.state is not State.IDLE and res.state not in FINAL_STATES and \
                    bridge.armed and bridge.control is Control.IDLE and res.setpoint is not None:
                # a person armed and launched the vehicle; we take control once there is a cue
                engaged = True
                bridge.engage(res.setpoint, timeout_s=5.0)
                _say(f"engaged: {bridge.mode}")
    finally:
        if rec is not None:
            rec.close()
        if cam_rec is not None:
            cam_rec.close()
    lat = pipe.timer.summary("latency") if "latency" in pipe.timer.stages() else None
    out = {"final_state": machine.state.value, "frames": pipe.frames_processed,
           "dropped_frames": getattr(source, "dropped_frames", 0),
           "latency_p50_ms": None if lat is None else round(lat.p50_ms, 2),
           "latency_p99_ms": None if lat is None else round(lat.p99_ms, 2),
           "stamped_frames": stamped_n,
           "unstamped_frames": getattr(source, "unstamped_frames", 0),
           "decisions": [[round(d.t_s, 2), d.from_state.value, d.to_state.value, d.reason.value]
                         for d in machine.decisions if d.from_state is not d.to_state]}
    off, line = capture_offset_report(target_px, bridge.state_at, cfg.camera.camera)
    _say(line)
    if off is not None:
        out["capture_offset_ms"] = off
    if grab_minus_stamp_s:
        # what the capture time would have been off by without the stamp (grab time - latency_s - stamp)
        p = np.percentile(np.asarray(grab_minus_stamp_s) * 1e3, [1, 50, 99])
        out["grab_minus_stamp_ms_p1_p50_p99"] = [round(float(x), 2) for x in p]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="autonomy fly", description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="companion TOML (see autonomy/runtime/configs/)")
    ap.add_argument("--check-only", action="store_true", help="run the self-check and exit")
    ap.add_argument("--duration-s", type=float, default=None, help="stop after this long (wall seconds)")
    ap.add_argument("--summary", default=None, help="write the flight summary JSON here")
    ap.add_argument("--link-url", default=None, help="override [link] url (e.g. another simulator port)")
    ap.add_argument("--camera-source", default=None, help="override [camera] source")
    ap.add_argument("--model", default=None, help="override [detector] model_path (e.g. another ONNX detector)")
    ap.add_argument("--record-dir", default=None, help="override [service] record_dir (a folder per flight: "
                    "flight.tlog, flight.jsonl, camera.mp4, frames.csv; replay with `autonomy replay FOLDER`)")
    args = ap.parse_args(argv)
    import os

    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")      # our one line, not OpenCV's backend chatter
    os.environ.setdefault("OPENCV_FFMPEG_READ_ATTEMPTS", "4096")

    from autonomy.clock import MonotonicClock
    from autonomy.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"autonomy fly: config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    from dataclasses import replace

    if args.duration_s is not None:
        cfg = replace(cfg, service=replace(cfg.service, duration_s=args.duration_s))
    if args.link_url:
        cfg = replace(cfg, link=replace(cfg.link, url=args.link_url))
    if args.camera_source:
        cfg = replace(cfg, camera=replace(cfg.camera, source=args.camera_source))
    if args.model:
        cfg = replace(cfg, detector=replace(cfg.detector, model_path=args.model))
    if args.record_dir:
        cfg = replace(cfg, service=replace(cfg.service, record_dir=args.record_dir))
    if cfg.service.record_dir and not args.check_only:
        flight_dir = Path(cfg.service.record_dir) / time.strftime("flight-%Y%m%d-%H%M%S")
        cfg = replace(cfg, link=replace(cfg.link, tlog_path=str(flight_dir / "flight.tlog")))
    clock = MonotonicClock()
    source = bridge = None
    stopping = {"flag": False}

    def _stop(*_a) -> None:
        stopping["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        detector, tracker = check_model(cfg)
        source = check_camera(cfg, clock)
        bridge = check_link(cfg, clock)
        check_params(cfg, bridge)
        if args.check_only:
            _say("self-check passed")
            return 0
        _say("running (waiting for a cue)")
        summary = run_service(cfg, bridge, source, detector, tracker, clock, lambda: stopping["flag"])
        summary["config"] = config_identity(args.config)
        summary["model"] = cfg.detector.model_path
        _say(f"stopped: {summary['final_state']}, {summary['frames']} frames, dropped {summary['dropped_frames']}, "
             f"latency p50 {summary['latency_p50_ms']} ms p99 {summary['latency_p99_ms']} ms")
        if args.summary:
            import json

            Path(args.summary).write_text(json.dumps(summary, indent=2))
        return 0
    except SelfCheckError as exc:
        print(f"autonomy fly: self-check failed: {exc}", file=sys.stderr)
        return EXIT_SELFCHECK
    except Exception as exc:  # noqa: BLE001 - one line for the operator; the bridge's watchdog holds the vehicle
        print(f"autonomy fly: stopped on error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        if source is not None:
            source.close()
        if bridge is not None:
            bridge.close()


if __name__ == "__main__":
    sys.exit(main())
