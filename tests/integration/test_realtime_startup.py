"""`autonomy fly` start-up: bad input gives ONE clear line on stderr and a non-zero exit, never a traceback or a
hang (malformed config, bad model, no camera, wrong port); a good set-up passes the self-check against the
simulated PX4 endpoint over UDP."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import free_udp_port

ROOT = Path(__file__).resolve().parents[2]


def _fly(*args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    exe = ROOT / ".venv" / "bin" / "autonomy"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "autonomy.cli"]
    return subprocess.run(check=False, args=[*cmd, "fly", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)


def _one_line(p: subprocess.CompletedProcess) -> str:
    ours = [ln for ln in p.stderr.splitlines() if ln.startswith("autonomy fly:")]
    assert len(ours) == 1, p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    return ours[0]


def _video(path: Path, w: int = 64, h: int = 48, n: int = 60) -> Path:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    for k in range(n):
        vw.write(np.full((h, w, 3), k * 3 % 255, np.uint8))
    vw.release()
    return path


def _cfg(tmp: Path, link: str, source: str, detector: str = "enabled = false", extra: str = "",
         connect_timeout_s: float = 1.0, camera_extra: str = "") -> Path:
    p = tmp / "c.toml"
    p.write_text(f"""
[link]
url = "{link}"
connect_timeout_s = {connect_timeout_s}
[camera]
source = "{source}"
width_px = 64
height_px = 48
hfov_deg = 70.0
first_frame_timeout_s = 3.0
{camera_extra}
[detector]
{detector}
{extra}
""")
    return p


def test_malformed_config(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[link\nurl = 'udpin:127.0.0.1:1'\n")
    r = _fly("--config", str(p))
    assert r.returncode == 2 and "malformed TOML" in _one_line(r)


def test_config_missing_section_and_unknown_key(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[link]\nurl = 'udpin:127.0.0.1:14540'\n")
    r = _fly("--config", str(p))
    assert r.returncode == 2 and "missing [camera]" in _one_line(r)
    p.write_text("[link]\nurl = 'udpin:127.0.0.1:14540'\nspeed = 3\n[camera]\nsource = '0'\n")
    r = _fly("--config", str(p))
    assert r.returncode == 2 and "unknown key [link] speed" in _one_line(r)
    p.write_text("[link]\nurl = 'udpin:127.0.0.1:14540'\n[camera]\nsource = '0'\nframe_stamp = 'exif'\n")
    r = _fly("--config", str(p))
    assert r.returncode == 2 and "frame_stamp must be one of none, v4l2, autopilot_time" in _one_line(r)


def test_config_file_missing(tmp_path):
    r = _fly("--config", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "not found" in _one_line(r)


def test_bad_model(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not an onnx graph" * 10)
    r = _fly("--config", str(_cfg(tmp_path, "udpin:127.0.0.1:1", "0", f'model_path = "{bad}"')))
    line = _one_line(r)
    assert r.returncode == 1 and "self-check failed: model:" in line and "model.onnx" in line


def test_missing_model(tmp_path):
    r = _fly("--config", str(_cfg(tmp_path, "udpin:127.0.0.1:1", "0", f'model_path = "{tmp_path}/none.onnx"')))
    assert r.returncode == 1 and "model file not found" in _one_line(r)


def test_model_override_on_the_command_line(tmp_path):
    # --model replaces [detector] model_path: the config's good model is not used, the bad one is named
    good = ROOT / "models" / "detector.onnx"
    r = _fly("--config", str(_cfg(tmp_path, "udpin:127.0.0.1:1", "0", f'model_path = "{good}"')),
             "--model", str(tmp_path / "other.onnx"))
    line = _one_line(r)
    assert r.returncode == 1 and "model file not found" in line and "other.onnx" in line


def test_no_camera(tmp_path):
    r = _fly("--config", str(_cfg(tmp_path, "udpin:127.0.0.1:1", "/dev/video97")))
    assert r.returncode == 1 and "self-check failed: camera:" in _one_line(r)


def test_camera_size_differs_from_calibration(tmp_path):
    vid = _video(tmp_path / "v.avi", 80, 48)
    r = _fly("--config", str(_cfg(tmp_path, "udpin:127.0.0.1:1", str(vid))))
    assert r.returncode == 1 and "80x48 but the calibration is 64x48" in _one_line(r)


def test_expected_frame_stamp_missing_is_said(tmp_path):
    """frame_stamp = "autopilot_time" on a camera whose frames carry none: one warning at the camera check (the
    capture times then fall back to grab time - latency_s), and the self-check goes on (here to the link)."""
    vid = _video(tmp_path / "v.avi")
    r = _fly("--config", str(_cfg(tmp_path, f"udpin:127.0.0.1:{free_udp_port()}", str(vid),
                                  camera_extra='frame_stamp = "autopilot_time"\nlatency_s = 0.02')))
    assert "WARNING frame_stamp" in r.stdout and "grab time - latency_s (20 ms)" in r.stdout, r.stdout
    assert r.returncode == 1 and "self-check failed: link:" in _one_line(r)


def test_wrong_port_no_autopilot(tmp_path):
    vid = _video(tmp_path / "v.avi")
    r = _fly("--config", str(_cfg(tmp_path, f"udpin:127.0.0.1:{free_udp_port()}", str(vid))))
    line = _one_line(r)
    assert r.returncode == 1 and "self-check failed: link:" in line and "HEARTBEAT" in line


def test_self_check_passes_against_simulated_px4(tmp_path):
    """Link + params checks against `autonomy sitl serve` in its own process (real UDP)."""
    from tests.integration.test_bridge_px4 import SitlProcess

    local, remote = free_udp_port(), free_udp_port()
    try:
        sitl = SitlProcess("--autopilot", "px4", "--preset", "interceptor", "--local-port", str(local),
                           "--remote-port", str(remote))
    except RuntimeError as exc:
        pytest.fail(f"simulated PX4 did not start: {exc}")
    try:
        vid = _video(tmp_path / "v.avi", n=300)
        extra = "[checks]\nparams_min = { MPC_XY_VEL_MAX = 20.0 }\nparams_max = { COM_OF_LOSS_T = 2.0 }\n"
        r = _fly("--config", str(_cfg(tmp_path, f"udpin:127.0.0.1:{remote}", str(vid), extra=extra, connect_timeout_s=10.0)), "--check-only")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "self-check link:" in r.stdout and "px4" in r.stdout and "self-check passed" in r.stdout
        extra_bad = "[checks]\nparams_min = { MPC_XY_VEL_MAX = 100.0 }\n"
        r = _fly("--config", str(_cfg(tmp_path, f"udpin:127.0.0.1:{remote}", str(vid), extra=extra_bad,
                                      connect_timeout_s=10.0)),
                 "--check-only")
        assert r.returncode == 1 and "MPC_XY_VEL_MAX=70 < 100" in _one_line(r)
    finally:
        sitl.stop()
