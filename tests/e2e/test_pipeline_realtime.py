"""MUST-SHOW: real time, separate processes, exactly as on a laptop with SITL:

    autonomy sitl serve --autopilot px4 --preset interceptor   (the vehicle, its own process, UDP)
    python -m sitl.video_server ...                            (targets, camera over MJPEG/HTTP, ground station,
                                                                 MAVLink router between the two)
    autonomy fly --config autonomy/runtime/configs/sitl.toml   (the companion service, same file as `autonomy sim`)

and the engagement intercepts. Only the ports are overridden on the command line (free ports for CI)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autonomy.fly import config_identity
from sitl.engagement_demo import SITL_CONFIG
from tests.e2e._model import E2E_MODEL, model_or_skip
from tests.e2e._realtime import run_realtime


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realtime_multiprocess_engagement_intercepts(tmp_path, seed):
    model = model_or_skip()   # E2E_MODEL=PATH: `autonomy fly --model PATH`, another detector, the same config
    result = tmp_path / "result.json"
    summary = tmp_path / "fly.json"
    fly = run_realtime(["--scenario", "quick", "--seed", str(seed), "--max-wall-s", "150", "--result", str(result)],
                       ["--duration-s", "140", "--summary", str(summary), *(["--model", E2E_MODEL] if E2E_MODEL else [])],
                       world_timeout_s=170, fly_timeout_s=30)
    out, err = fly.stdout, fly.stderr
    assert fly.returncode == 0, out + err
    res = json.loads(result.read_text())
    fs = json.loads(summary.read_text())
    assert Path(fs["model"]).resolve() == model.resolve(), fs["model"]
    print(f"REALTIME seed {seed} ({model.name}): {res} latency p50 {fs['latency_p50_ms']} ms p99 {fs['latency_p99_ms']} ms, "
          f"{fs['frames']} frames, dropped {fs['dropped_frames']}, capture offset {fs.get('capture_offset_ms')} ms, "
          f"grab - stamp p1/p50/p99 {fs.get('grab_minus_stamp_ms_p1_p50_p99')} ms")
    # the engagement's decisions, one line, so that a miss in a -s log can be told apart (track lost, dropped, passed)
    print("  decisions: " + "; ".join(f"{t}s {a}->{b} ({why})" for t, a, b, why in fs["decisions"]))
    # one file drives both: the lockstep runner reads the same bytes by default (test_pipeline.py checks its side)
    assert fs["config"] == config_identity(SITL_CONFIG)
    assert res["authorized"], (res, fs)
    # the frames carry their exposure instant: the capture-time offset the flight's detections show is ~0
    # (autonomy.camera.time_offset; without the stamp it shows what grab time - latency_s was off by)
    assert fs["stamped_frames"] > 0 and fs["unstamped_frames"] == 0, fs
    assert fs.get("capture_offset_ms") is not None and abs(fs["capture_offset_ms"]) <= 10.0, fs
    assert res["intercept"], (res, fs, out[-3000:])
