"""A flight `autonomy fly` recorded (real time, separate processes, UDP on 127.0.0.1) replays: the recorded
folder holds the link's .tlog (vehicle states, the ground station's cues and the operator's authorization as
the companion received them), the processed camera frames with their capture times, and the decisions; and
`autonomy replay FOLDER` re-runs the same pipeline over it and goes through the same engagement states."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from autonomy.config import load_config
from autonomy.replay.cli import main as replay_main
from autonomy.replay.record import read_frame_times
from autonomy.runtime.recorder import read_records
from sitl.engagement_demo import SITL_CONFIG
from tests.e2e._realtime import run_realtime


@pytest.mark.slow
def test_fly_records_a_flight_that_replays(tmp_path):
    model = Path(load_config(SITL_CONFIG).detector.model_path)
    if not model.is_file():
        pytest.skip(f"shipped detector {model} not in this checkout yet")
    rec_root = tmp_path / "flights"
    fly = run_realtime(["--scenario", "quick", "--max-wall-s", "100"],
                       ["--duration-s", "40", "--record-dir", str(rec_root), "--summary", str(tmp_path / "fly.json")],
                       world_timeout_s=None, fly_timeout_s=120)
    out, err = fly.stdout, fly.stderr
    assert fly.returncode == 0, out + err
    live = json.loads((tmp_path / "fly.json").read_text())
    folders = list(rec_root.iterdir())
    assert len(folders) == 1
    d = folders[0]
    assert {p.name for p in d.iterdir()} >= {"flight.tlog", "flight.jsonl", "camera.mp4", "frames.csv"}
    times = read_frame_times(d / "frames.csv")
    assert len(times) == live["frames"] > 100
    live_states = [x[2] for x in live["decisions"]]
    assert "midcourse" in live_states, live            # the cue arrived and was recorded

    t0 = time.perf_counter()
    assert replay_main([str(d), "--no-video-out", "--out", str(tmp_path / "replay")]) == 0
    s = json.loads((tmp_path / "replay" / "summary.json").read_text())
    # every recorded frame lies inside the recorded log (the camera and the link stop together)
    assert s["frames"] + s["frames_outside_log"] == len(times) and s["frames"] >= len(times) - 3, s["notes"]
    assert s["log"]["cues"] > 0
    # the replay goes through the states the live flight went through, in the same order, as far as the
    # live flight got (the replay may differ in timing by the live processing latency)
    visited = s["states_visited"]
    live_path = ["idle"] + [x for i, x in enumerate(live_states) if i == 0 or x != live_states[i - 1]]
    first = [x for x in dict.fromkeys(live_path) if x in ("idle", "midcourse", "acquire", "track",
                                                          "await_authorization", "terminal")]
    assert [x for x in visited if x in first][:len(first)] == first, (visited, live_path)
    # the recorded frame times are the exposure instants (the simulator's frames carry them): the replay's
    # capture-offset report (autonomy.camera.time_offset) finds them right to a few ms, as the live flight did
    print(f"capture offset: live {live.get('capture_offset_ms')} ms, replay {s['capture_offset_ms']} ms")
    assert s["capture_offset_ms"] is not None and abs(s["capture_offset_ms"]) <= 10.0, s["notes"]
    recs = list(read_records(d / "flight.jsonl", {"decision"}))
    assert recs, "the live decisions are in the flight record"
    print(f"replayed {s['frames']} frames in {time.perf_counter() - t0:.1f} s; live {live_path}; replay {visited}")
