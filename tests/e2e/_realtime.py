"""The real-time, multi-process simulation stack as a user runs it, for the slow e2e tests:

    autonomy sitl serve --autopilot px4 --preset interceptor   (the vehicle, its own process, UDP)
    python -m sitl.video_server ...                            (targets, camera over MJPEG/HTTP, ground station,
                                                                 MAVLink router between the two)
    autonomy fly --config autonomy/runtime/configs/sitl.toml   (the companion service)

Only the ports are chosen here (free ones on 127.0.0.1); every process is killed on the way out."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sitl.engagement_demo import SITL_CONFIG
from tests.conftest import free_udp_port
from tests.integration.test_bridge_px4 import SitlProcess

ROOT = Path(__file__).resolve().parents[2]


def _free_tcp() -> int:
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


@dataclass
class FlyRun:
    returncode: int
    stdout: str
    stderr: str


def run_realtime(world_args: list[str], fly_args: list[str], world_timeout_s: float | None,
                 fly_timeout_s: float) -> FlyRun:
    """Start the autopilot, the world (``world_args`` after the ports) and ``autonomy fly`` (``fly_args`` after
    the config, link and camera). With ``world_timeout_s`` the world's end stops fly (SIGTERM, a clean stop);
    without it fly runs to its own ``--duration-s``."""
    ap_local, router, companion, http = free_udp_port(), free_udp_port(), free_udp_port(), _free_tcp()
    sitl = SitlProcess("--autopilot", "px4", "--preset", "interceptor", "--local-port", str(ap_local),
                       "--remote-port", str(router), "--param", "GF_MAX_VER_DIST=1600",
                       "--param", "GF_MAX_HOR_DIST=9600")
    vs = subprocess.Popen([sys.executable, "-m", "sitl.video_server", "--autopilot-port", str(router),
                           "--companion-port", str(companion), "--http-port", str(http), *world_args],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fly = None
    try:
        _wait_ready(vs, 30)
        exe = ROOT / ".venv" / "bin" / "autonomy"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "autonomy.cli"]
        fly = subprocess.Popen([*cmd, "fly", "--config", str(SITL_CONFIG), "--link-url",
                                f"udpin:127.0.0.1:{companion}", "--camera-source",
                                f"http://127.0.0.1:{http}/camera.mjpg", *fly_args],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if world_timeout_s is not None:
            vs.wait(timeout=world_timeout_s)   # the world ends 1 s after the intercept (or at the scenario's end)
            fly.terminate()                    # SIGTERM: the service stops cleanly and writes its summary
        out, err = fly.communicate(timeout=fly_timeout_s)
    finally:
        for p in (vs, fly):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=10)
        sitl.stop()
    return FlyRun(fly.returncode, out, err)
