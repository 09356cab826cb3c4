"""MUST-SHOW: real time, separate processes, exactly as on a laptop with SITL:

    autonomy sitl serve --autopilot px4 --preset interceptor   (the vehicle, its own process, UDP)
    python -m sitl.video_server ...                            (targets, camera over MJPEG/HTTP, ground station,
                                                                 MAVLink router between the two)
    autonomy fly --config autonomy/runtime/configs/sitl.toml   (the companion service, same file as `autonomy sim`)

and the engagement intercepts. Only the ports are overridden on the command line (free ports for CI)."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autonomy.config import load_config
from autonomy.fly import config_identity
from sitl.engagement_demo import SITL_CONFIG
from tests.conftest import free_udp_port
from tests.integration.test_bridge_px4 import SitlProcess

ROOT = Path(__file__).resolve().parents[2]


def _py() -> list[str]:
    return [sys.executable]


def _free_tcp() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(proc: subprocess.Popen, timeout_s: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode}: {proc.stderr.read()}")
        if sel.select(timeout=0.2):
            line = proc.stdout.readline()
            if line.startswith("READY"):
                return line
    raise RuntimeError("no READY line")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_realtime_multiprocess_engagement_intercepts(tmp_path, seed):
    model = Path(load_config(SITL_CONFIG).detector.model_path)
    if not model.is_file():
        pytest.skip(f"shipped detector {model} not in this checkout yet")
    ap_local, router, companion, http = free_udp_port(), free_udp_port(), free_udp_port(), _free_tcp()
    result = tmp_path / "result.json"
    summary = tmp_path / "fly.json"
    sitl = SitlProcess("--autopilot", "px4", "--preset", "interceptor", "--local-port", str(ap_local),
                       "--remote-port", str(router), "--param", "GF_MAX_VER_DIST=1600",
                       "--param", "GF_MAX_HOR_DIST=9600")
    vs = subprocess.Popen([*_py(), "-m", "sitl.video_server", "--autopilot-port", str(router), "--companion-port",
                           str(companion), "--http-port", str(http), "--scenario", "quick", "--seed", str(seed), "--max-wall-s", "150",
                           "--result", str(result)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    fly = None
    try:
        _wait_ready(vs, 30)
        exe = ROOT / ".venv" / "bin" / "autonomy"
        cmd = [str(exe)] if exe.exists() else [*_py(), "-m", "autonomy.cli"]
        fly = subprocess.Popen([*cmd, "fly", "--config", str(SITL_CONFIG), "--link-url",
                                f"udpin:127.0.0.1:{companion}", "--camera-source",
                                f"http://127.0.0.1:{http}/camera.mjpg", "--duration-s", "140", "--summary",
                                str(summary)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        vs.wait(timeout=170)          # the world ends 1 s after the intercept (or at the scenario's end)
        fly.terminate()               # SIGTERM: the service stops cleanly and writes its summary
        out, err = fly.communicate(timeout=30)
    finally:
        for p in (vs, fly):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        sitl.stop()
    assert fly.returncode == 0, out + err
    res = json.loads(result.read_text())
    fs = json.loads(summary.read_text())
    print(f"REALTIME seed {seed}: {res} latency p50 {fs['latency_p50_ms']} ms p99 {fs['latency_p99_ms']} ms, "
          f"{fs['frames']} frames, dropped {fs['dropped_frames']}")
    # one file drives both: the lockstep runner reads the same bytes by default (test_pipeline.py checks its side)
    assert fs["config"] == config_identity(SITL_CONFIG)
    assert res["authorized"], (res, fs)
    assert res["intercept"], (res, fs, out[-3000:])
