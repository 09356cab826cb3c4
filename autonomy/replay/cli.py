"""autonomy replay: what would the stack have done on a recorded flight?

  autonomy replay LOG --video VIDEO [--video-start-s S | --frame-times CSV] [--config FILE] [--hfov-deg H]
                  [--cues CSV] [--authorize log|what-if] [--max-frames N] [--no-video-out] [--out DIR]
  autonomy replay RECORD_DIR [...]      # a folder `autonomy fly` recorded: *.tlog, camera.mp4, frames.csv

LOG is the autopilot's log of the flight (.tlog from QGroundControl / MAVProxy / Mission Planner, PX4 or
ArduPilot; .ulg from PX4 with the 'ulog' extra). VIDEO is what the vehicle's camera recorded; frame i is taken
as captured at (log start + S + i / fps), or at the times in a `frame,t_capture_s` CSV on the log's clock
(as the flight recorder writes them). The pipeline (detector, tracker, engagement machine and guidance,
built from the same TOML as `autonomy fly`; default: the simulator's config) runs on the log clock and the
setpoints it would have sent are recorded, never sent. The engagement starts only on a ground cue: from
the log (FOLLOW_TARGET / ADSB_VEHICLE as relayed to the vehicle) or from --cues. Writes DIR/summary.json, DIR/decisions.jsonl,
DIR/replay.mp4 and plots (with matplotlib). Exit 0 on a finished replay, 2 on bad input (one line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from autonomy.replay.logs import ReplayError, read_cues_csv, read_vehicle_log

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "runtime" / "configs" / "sitl.toml"


def _fail(msg: str) -> int:
    print(f"autonomy replay: {msg}", file=sys.stderr)
    return 2


def _record_dir(d: Path, video: str | None, frame_times: str | None) -> tuple[str, str, str | None]:
    """The log, video and frame times of a folder written by the flight recorder."""
    logs = sorted(d.glob("*.tlog")) + sorted(d.glob("*.ulg"))
    if len(logs) != 1:
        raise ReplayError(f"{d}: want exactly one .tlog or .ulg in a recorded flight folder, found {len(logs)}")
    v = Path(video) if video else d / "camera.mp4"
    ft = Path(frame_times) if frame_times else d / "frames.csv"
    return str(logs[0]), str(v), str(ft) if ft.is_file() else None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="autonomy replay", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("log", help=".tlog or .ulg of the flight, or a recorded flight folder")
    ap.add_argument("--video", default=None, help="the camera recording of the same flight")
    ap.add_argument("--frame-times", default=None, help="frame,t_capture_s CSV (log clock), one row per frame")
    ap.add_argument("--video-start-s", type=float, default=0.0,
                    help="log time of the first frame, seconds after the log's first state (default 0)")
    ap.add_argument("--fps", type=float, default=None, help="video frame rate (default: the file's)")
    ap.add_argument("--config", default=str(DEFAULT_CONFIG), help="companion TOML (as for autonomy fly)")
    ap.add_argument("--hfov-deg", type=float, default=None,
                    help="horizontal FOV of the recording camera when the config is not calibrated for it")
    ap.add_argument("--cues", default=None,
                    help="ground cues as CSV (t_s,n_m,e_m,d_m,vn_mps,ve_mps,vd_mps,pos_std_m; t_s after log start), "
                         "added to those in the log")
    ap.add_argument("--authorize", choices=("log", "what-if"), default="log",
                    help="operator commands from the log only, or a simulated operator who authorizes when asked")
    ap.add_argument("--no-detector", action="store_true", help="replay without perception (cue-only)")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--no-video-out", action="store_true", help="skip the annotated replay.mp4")
    ap.add_argument("--out", default="out/replay", help="report folder (default out/replay)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from autonomy.camera.model import CameraError
    from autonomy.camera.sources import VideoFileSource
    from autonomy.config import ConfigError, load_config
    from autonomy.replay.record import read_frame_times
    from autonomy.replay.report import AnnotatedVideo, write_report
    from autonomy.replay.run import ReplayOptions, run_replay
    from autonomy.runtime.recorder import FlightRecorder

    try:
        cfg = load_config(args.config)
    except (ConfigError, OSError) as exc:
        return _fail(f"config: {exc}")
    try:
        if Path(args.log).is_dir():
            args.log, args.video, args.frame_times = _record_dir(Path(args.log), args.video, args.frame_times)
        if args.video is None:
            raise ReplayError("--video is required with a log file (or give a recorded flight folder)")
        log = read_vehicle_log(args.log)
        times = None if args.frame_times is None else tuple(float(t) for t in read_frame_times(args.frame_times))
        if args.cues:
            log.cues = sorted(log.cues + read_cues_csv(args.cues, log.t_first_s), key=lambda c: c.t_s)
        opts = ReplayOptions(args.video_start_s, args.fps, args.hfov_deg, args.max_frames, args.authorize, times)
        source = VideoFileSource(args.video, t0_s=log.t_first_s + opts.video_start_s, fps=opts.fps)
    except (ReplayError, CameraError) as exc:
        return _fail(str(exc))
    print(f"log: {log.kind} {log.autopilot.value}, {len(log.states)} states over "
          f"{log.t_last_s - log.t_first_s:.1f} s, {len(log.cues)} cues, {len(log.commands)} operator commands"
          + (f" ({'; '.join(log.notes)})" if log.notes else ""))
    detector = None
    if not args.no_detector and cfg.detector is not None:
        from autonomy.perception import Detector
        from autonomy.perception.errors import PerceptionError

        try:
            detector = Detector(cfg.detector)
        except PerceptionError as exc:
            source.close()
            return _fail(f"model: {exc}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    video = None if args.no_video_out else AnnotatedVideo(out / "replay.mp4", source.fps)
    t_wall = time.perf_counter()

    def on_frame(i, t_rel, img, step):
        if video is not None:
            video.frame(i, t_rel, img, step)
        if i % 30 == 0:
            print(f"\rframe {i:5d}  log t={t_rel:7.2f} s  {'' if step is None else step.state.value:20s}",
                  end="", file=sys.stderr, flush=True)

    try:
        with FlightRecorder(out / "decisions.jsonl") as rec:
            res = run_replay(log, source, cfg, detector, opts, on_frame=on_frame, recorder=rec)
    except ReplayError as exc:
        print(file=sys.stderr)
        return _fail(str(exc))
    finally:
        source.close()
        if video is not None:
            video.close()
    print(file=sys.stderr)
    files = write_report(res, out)
    s = res.summary()
    print(f"replayed {s['frames']} frames in {time.perf_counter() - t_wall:.1f} s: {s['detections']} detections in "
          f"{s['frames_with_detections']} frames, confirmed tracks {s['confirmed_tracks']}, final state "
          f"{s['final_state']}, {s['setpoints_that_would_have_been_sent']} setpoints it would have sent")
    for d in s["decisions"]:
        print(f"  t={d[0]:7.2f} s  {d[1]} -> {d[2]}  ({d[3]}{': ' + d[4] if d[4] else ''})")
    for n in res.notes:
        print(f"note: {n}")
    print("wrote " + ", ".join(str(p) for p in files + ([video.path] if video else []) + [out / "decisions.jsonl"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
