"""MUST-SHOW: the bridge against the simulated PX4 endpoint in its own process (UDP on 127.0.0.1).

`autonomy sitl serve --autopilot px4 --speedup K` runs K times faster than real time, so every duration the
vehicle must experience is divided by K on our (wall) clock, and the bridge's timing limits are scaled so
that they keep their meaning in autopilot time (dead-man 0.2 s wall = 0.2 K s autopilot time).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autonomy.mavlink import Bridge, BridgeConfig, CommandError, Control, LinkConfig, StreamerConfig
from autonomy.mavlink.flavour import PX4_MODES
from autonomy.types import Setpoint
from tests.conftest import free_udp_port

ROOT = Path(__file__).resolve().parents[2]
K = 4.0  # simulator speed-up


class SitlProcess:
    """`autonomy sitl serve ...` as a child process; waits for its READY line (with a timeout), kills it."""

    def __init__(self, *args: str, timeout_s: float = 20.0) -> None:
        exe = ROOT / ".venv" / "bin" / "autonomy"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "autonomy.cli"]
        self.proc = subprocess.Popen([*cmd, "sitl", "serve", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + timeout_s
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sitl exited {self.proc.returncode}: {self.proc.stderr.read()}")
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    self.ready_line = line.strip()
                    return
        self.stop()
        raise RuntimeError(f"no READY line from sitl within {timeout_s} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


def scaled_config(link: LinkConfig, k: float) -> BridgeConfig:
    """Bridge limits that mean the same in autopilot time at speed-up k.

    The stream-gap limit (a stalled bridge thread) is 1.6 s of autopilot time: the PX4 endpoint runs with
    COM_OF_LOSS_T = 2 s so that a busy 2-core CI machine does not trip the offboard-loss failsafe by accident.
    """
    return BridgeConfig(link, streamer=StreamerConfig(rate_hz=50.0, max_age_s=0.2, hand_back_after_s=6.0 / k),
                        stream_gap_limit_s=1.6 / k, prestream_s=1.0 / k, command_timeout_s=0.5,
                        link_lost_s=3.0 / k)


def fly(b: Bridge, sp_of_t, sim_s: float, k: float = K) -> None:
    """Our pipeline: a fresh setpoint every 20 ms wall for ``sim_s`` autopilot seconds."""
    t0 = time.monotonic()
    while (t := time.monotonic() - t0) < sim_s / k:
        b.set_setpoint(sp_of_t(t * k))
        time.sleep(0.02)


def vel(v) -> Setpoint:
    return Setpoint(t_s=0.0, vel_ned_mps=np.asarray(v, float))


def max_hold_error_m(b: Bridge, sp: Setpoint, sim_s: float = 3.0, k: float = K) -> float:
    """Keep sending the position set-point ``sp`` for ``sim_s`` autopilot seconds; the largest distance (m)
    between the vehicle and ``sp.pos_ned_m`` seen meanwhile."""
    errs = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < sim_s / k:
        b.set_setpoint(sp)
        errs.append(float(np.linalg.norm(b.state.pos_ned_m - sp.pos_ned_m)))
        time.sleep(0.02)
    return max(errs)


def assert_dead_man_brakes_then_hands_back(b: Bridge, setpoint_mode: str, hand_back_mode: str,
                                           brake_within_s: float, k: float = K) -> None:
    """The pipeline stalls while flying 5 m/s north: the bridge brakes to a stop in ``setpoint_mode``, hands
    control back (``hand_back_mode``) after hand_back_after_s, and takes it again only by ``reengage``."""
    fly(b, lambda t: vel([5, 0, 0]), 3.0, k)
    assert b.state.vel_ned_mps[0] > 3.0
    assert b.wait_for(lambda: b.control is Control.BRAKING, 0.5)
    assert b.wait_for(lambda: np.linalg.norm(b.state.vel_ned_mps) < 0.5, brake_within_s / k)
    assert b.mode == setpoint_mode
    assert b.wait_for(lambda: b.control is Control.HANDED_BACK, 8.0 / k)
    assert b.wait_for(lambda: b.mode == hand_back_mode, 3.0 / k + 1)
    b.reengage("test: after hand-back", initial=vel([0, 0, 0]))
    assert b.mode == setpoint_mode


@pytest.fixture(scope="module")
def px4():
    local, remote = free_udp_port(), free_udp_port()
    sitl = SitlProcess("--autopilot", "px4", "--speedup", str(K), "--local-port", str(local),
                       "--remote-port", str(remote), "--seed", "1", "--param", "COM_OF_LOSS_T=2.0")
    b = Bridge(scaled_config(LinkConfig(f"udpin:127.0.0.1:{remote}"), K))
    try:
        b.start()
        b.connect(timeout_s=10)
        assert b.wait_for(lambda: b.state is not None and b.cache.origin is not None, 10)
        yield b
    finally:
        b.close()
        sitl.stop()


def test_px4_params_round_trip_bytewise(px4):
    b = px4
    assert b.param_get("MAV_SYS_ID") == 1 and isinstance(b.param_get("MAV_SYS_ID"), int)
    assert b.params.values["MAV_SYS_ID"].param_type == 6
    old = b.param_get("COM_OBL_RC_ACT")
    assert b.param_set("COM_OBL_RC_ACT", 5) == 5 and b.param_get("COM_OBL_RC_ACT") == 5
    assert b.param_set("COM_OBL_RC_ACT", old) == old
    assert b.param_set("MPC_XY_VEL_MAX", 11.5) == pytest.approx(11.5)
    assert b.param_get("MPC_XY_VEL_MAX") == pytest.approx(11.5)
    assert b.param_set("MPC_XY_VEL_MAX", 12.0) == pytest.approx(12.0)
    allp = b.param_list(timeout_s=10)
    assert "COM_OF_LOSS_T" in allp and b.params.hash_check is not None and "_HASH_CHECK" not in allp


def test_px4_every_spec_mode_decodes(px4):
    b = px4
    assert not b.armed
    for name in PX4_MODES:
        if name.startswith("AUTO.EXTERNAL") or name in ("POSCTL.SLOW", "TERMINATION", "ALTITUDE_CRUISE"):
            continue  # not in the spec's table (the simulator does not know them)
        b.set_mode(name, wait_s=5.0 / K + 1)  # disarmed: always accepted (spec section 4)
        assert b.mode == name and b.state.mode == name
    b.set_mode("AUTO.LOITER", wait_s=2)


def test_px4_flight_square_hold_deadman_offboard_loss_land(px4):
    b = px4
    b.engage(vel([0, 0, 0]))                     # stream first, then OFFBOARD (spec section 12.1)
    assert b.mode == "OFFBOARD" and b.control is Control.ENGAGED
    b.arm(wait_s=3)
    z0 = b.state.pos_ned_m[2]
    b.takeoff(5.0, wait_s=30 / K + 5)
    s = b.state
    assert s.pos_ned_m[2] == pytest.approx(z0 - 5.0, abs=0.6) and s.armed and not s.landed

    # velocity square: 4 m/s for 5 s on each side, altitude held by a position z with velocity feed-forward
    z_hold = z0 - 5.0
    start = b.state.pos_ned_m.copy()
    for v in ([4, 0, 0], [0, 4, 0], [-4, 0, 0], [0, -4, 0]):
        p0 = b.state.pos_ned_m.copy()
        fly(b, lambda t, v=v: vel(v), 5.0)
        d = b.state.pos_ned_m - p0
        along = float(np.dot(d[:2], np.array(v[:2]) / 4.0))
        assert 12.0 < along < 22.0, (v, d)       # 20 m commanded, lag allowed
        fly(b, lambda t: vel([0, 0, 0]), 2.0)
    end = b.state.pos_ned_m
    assert np.linalg.norm((end - start)[:2]) < 4.0   # the square closes within a few metres

    # position hold: fly to a point 10 m north-east and stay there
    target = np.array([start[0] + 10.0, start[1] + 10.0, z_hold])
    fly(b, lambda t: Setpoint(t_s=0.0, pos_ned_m=target), 10.0)
    err = max_hold_error_m(b, Setpoint(t_s=0.0, pos_ned_m=target))
    assert err < 1.0, err

    # dead-man: the pipeline stalls while flying 5 m/s; the bridge brakes (zero velocity), stays OFFBOARD,
    # and after hand_back_after_s (6 s autopilot time) hands control back to AUTO.LOITER
    assert_dead_man_brakes_then_hands_back(b, "OFFBOARD", "AUTO.LOITER", brake_within_s=4.0)

    # offboard loss: our stream stops; PX4 fails safe to RTL after COM_OF_LOSS_T, and resuming setpoints
    # must not silently re-take control
    fly(b, lambda t: vel([0, 0, 0]), 1.0)
    b.suspend_stream()
    b.poll_texts()
    assert b.wait_for(lambda: b.mode == "AUTO.RTL", 4.0 / K + 1.5)
    assert b.control is Control.AUTOPILOT_FAILSAFE
    texts = [t.text for t in b.poll_texts() if t.event is not None]
    assert "Failsafe activated: switching to RTL" in texts, texts   # PX4 EVENT, decoded from the raw frame
    fly(b, lambda t: vel([0, 0, 0]), 4.0)        # the pipeline resumes: nothing is sent
    assert b.mode == "AUTO.RTL"
    b.reengage("test: operator re-engaged after offboard loss", initial=vel([0, 0, 0]))
    assert b.mode == "OFFBOARD" and b.control is Control.ENGAGED
    fly(b, lambda t: vel([0, 0, 0]), 1.0)

    b.land()
    assert b.wait_for(lambda: b.mode == "AUTO.LAND", 2.0)
    assert b.wait_for(lambda: not b.armed, 40.0 / K + 2)
    assert b.state.landed is True
    with pytest.raises(CommandError):  # arming in AUTO.LAND is refused (TEMPORARILY_REJECTED)
        b.arm()
