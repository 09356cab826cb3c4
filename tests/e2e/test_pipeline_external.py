"""Optional: `autonomy fly`'s self-check (link, flavour, EKF origin, parameter sanity) against a REAL autopilot
SITL that the user built. Skipped unless the binary is named in the environment:

    PX4_SITL_BIN=~/PX4-Autopilot/build/px4_sitl_default/bin/px4 pytest -m px4_sitl tests/e2e/test_pipeline_external.py
    ARDUPILOT_SITL_BIN=~/ardupilot/build/sitl/bin/arducopter pytest -m ardupilot_sitl tests/e2e/test_pipeline_external.py

PX4 runs as SIH (`PX4_SIM_MODEL=sihsim_quadx`, no simulator process), onboard link 14540; ArduCopter runs its
built-in physics (`--model quad`) on TCP 5760. The full engagement against them is mode 3 of
autonomy/runtime/deploy/INSTALL.md (python -m sitl.video_server between the autopilot and autonomy fly)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _video(path: Path) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for k in range(900):
        vw.write(np.full((48, 64, 3), k % 255, np.uint8))
    vw.release()
    return path


def _check(tmp: Path, url: str, params_min: str) -> subprocess.CompletedProcess:
    cfg = tmp / "c.toml"
    cfg.write_text(f"""
[link]
url = "{url}"
connect_timeout_s = 60.0
[camera]
source = "{_video(tmp / 'v.avi')}"
width_px = 64
height_px = 48
[detector]
enabled = false
[checks]
params_min = {{ {params_min} }}
""")
    exe = ROOT / ".venv" / "bin" / "autonomy"
    return subprocess.run(check=False, args=[str(exe), "fly", "--config", str(cfg), "--check-only"], cwd=ROOT, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.px4_sitl
def test_fly_self_check_against_px4_sih(tmp_path):
    binary = os.environ.get("PX4_SITL_BIN")
    if not binary:
        pytest.skip("PX4_SITL_BIN is not set (path to a built px4_sitl_default/bin/px4)")
    build = Path(binary).resolve().parents[1]
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    env = dict(os.environ, PX4_SIM_MODEL="sihsim_quadx", PX4_SYS_AUTOSTART="10040", HEADLESS="1")
    px4 = subprocess.Popen([binary, "-d", str(build / "etc"), "-s", "etc/init.d-posix/rcS", "-w", str(rootfs)],
                           cwd=rootfs, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(5)
        r = _check(tmp_path, "udpin:127.0.0.1:14540", "COM_OF_LOSS_T = 0.0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "-> px4" in r.stdout
    finally:
        px4.terminate()
        px4.wait(timeout=20)


@pytest.mark.ardupilot_sitl
def test_fly_self_check_against_arducopter_sitl(tmp_path):
    binary = os.environ.get("ARDUPILOT_SITL_BIN")
    if not binary:
        pytest.skip("ARDUPILOT_SITL_BIN is not set (path to a built build/sitl/bin/arducopter)")
    ap = subprocess.Popen([binary, "--model", "quad", "--speedup", "1", "-I0", "--defaults",
                           str(Path(binary).resolve().parents[3] / "Tools/autotest/default_params/copter.parm")],
                          cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(3)
        r = _check(tmp_path, "tcp:127.0.0.1:5760", "WPNAV_SPEED = 100.0")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "-> ardupilot" in r.stdout
    finally:
        ap.terminate()
        ap.wait(timeout=20)
