"""`autonomy sitl serve` as its own process (the contract the bridge's integration tests rely on).

The server runs at --speedup 4 against the wall clock; a raw pymavlink client flies it over 127.0.0.1.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time

import pytest

from autonomy.mavlink.wire import dialect as D
from autonomy.mavlink.wire import mavutil
from tests.conftest import free_tcp_port, free_udp_port

SPEEDUP = 4.0


def _start(*args: str) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "autonomy.cli", "sitl", "serve", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    if not sel.select(timeout=30.0):
        p.kill()
        p.wait(5)
        pytest.fail("no READY line within 30 s")
    line = p.stdout.readline().strip()
    return p, line


def _stop(p: subprocess.Popen) -> tuple[int, str, str]:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        pytest.fail("server did not exit within 10 s of SIGTERM")
    return p.returncode, out, err


def _recv_until(c, pred, timeout_s: float):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        m = c.recv_match(blocking=True, timeout=0.1)
        if m is not None and pred(m):
            return m
    return None


def test_px4_serve_ready_fly_failsafe_and_sigterm():
    lp, rp = free_udp_port(), free_udp_port()
    c = mavutil.mavlink_connection(f"udpin:127.0.0.1:{rp}", source_system=1, source_component=191)
    p, line = _start("--autopilot", "px4", "--local-port", str(lp), "--remote-port", str(rp),
                     "--speedup", str(SPEEDUP), "--seed", "3", "--wind-mps", "1,0,0")
    try:
        assert line == f"READY px4 udp 127.0.0.1:{lp} -> 127.0.0.1:{rp}"
        hb = _recv_until(c, lambda m: m.get_type() == "HEARTBEAT", 5.0)
        assert hb is not None and hb.autopilot == D.MAV_AUTOPILOT_PX4 and hb.custom_mode == 50593792
        _recv_until(c, lambda m: m.get_type() == "HEARTBEAT" and m.system_status == D.MAV_STATE_STANDBY, 5.0)

        def sp(vz: float) -> None:
            c.mav.set_position_target_local_ned_send(0, 1, 1, 1, 3527, 0, 0, 0, 0, 0, vz, 0, 0, 0, 0, 0)

        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:
            sp(0.0)
            time.sleep(0.05)
        c.mav.command_long_send(1, 1, D.MAV_CMD_DO_SET_MODE, 0, 1, 6, 0, 0, 0, 0, 0)
        acks = []
        t_end = time.monotonic() + 3.0  # generous: CI machines may be loaded
        while time.monotonic() < t_end and len(acks) < 2:
            sp(0.0)
            m = c.recv_match(type="COMMAND_ACK", blocking=True, timeout=0.05)
            if m is not None:
                acks.append(m.result)
        assert acks == [0, 0]
        c.mav.command_long_send(1, 1, D.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 0, 0, 0, 0, 0, 0)
        t_end = time.monotonic() + 20.0  # generous: a loaded CI machine may run the server below x4
        z = 0.0
        while time.monotonic() < t_end and z > -6.0:
            sp(-3.0)
            m = c.recv_match(type="LOCAL_POSITION_NED", blocking=True, timeout=0.05)
            if m is not None:
                z = m.z
        assert z < -6.0  # climbing at up to 3 m/s after spool-up
        # setpoints stop: offboard-loss failsafe -> AUTO.RTL (CRITICAL)
        hb = _recv_until(c, lambda m: m.get_type() == "HEARTBEAT" and m.custom_mode == 84148224, 10.0)
        assert hb is not None and hb.system_status == D.MAV_STATE_CRITICAL
    finally:
        rc, out, err = _stop(p)
        c.close()
    assert rc == 0, err
    assert out.count("READY") == 0  # the READY line was read above; nothing else on stdout
    assert "stopped after" in err


def test_ardupilot_serve_tcp_takeoff_and_sigint():
    port = free_tcp_port()
    p, line = _start("--autopilot", "ardupilot", "--tcp-port", str(port), "--speedup", str(SPEEDUP))
    c = None
    try:
        assert line == f"READY ardupilot tcp 127.0.0.1:{port}"
        c = mavutil.mavlink_connection(f"tcp:127.0.0.1:{port}", source_system=255, source_component=190)
        hb = _recv_until(c, lambda m: m.get_type() == "HEARTBEAT", 5.0)
        assert hb is not None and hb.autopilot == D.MAV_AUTOPILOT_ARDUPILOTMEGA
        c.mav.request_data_stream_send(1, 1, D.MAV_DATA_STREAM_POSITION, 10, 1)
        _recv_until(c, lambda m: m.get_type() == "GLOBAL_POSITION_INT", 3.0)
        _recv_until(c, lambda m: m.get_type() == "GLOBAL_POSITION_INT" and m.time_boot_ms > 3300, 10.0)
        for cmd, params in ((D.MAV_CMD_DO_SET_MODE, (1, 4)), (D.MAV_CMD_COMPONENT_ARM_DISARM, (1,)),
                            (D.MAV_CMD_NAV_TAKEOFF, (0, 0, 0, 0, 0, 0, 6.0))):
            pp = list(params) + [0] * (7 - len(params))
            c.mav.command_long_send(1, 1, cmd, 0, *pp)
            ack = _recv_until(c, lambda m, cmd=cmd: m.get_type() == "COMMAND_ACK" and m.command == cmd, 2.0)
            assert ack is not None and ack.result == 0, cmd
        m = _recv_until(c, lambda m: m.get_type() == "GLOBAL_POSITION_INT" and m.relative_alt > 5500, 20.0)
        assert m is not None
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        rc, _out, err = _stop(p)
        if c is not None:
            c.close()
    assert rc == 0, err


def test_serve_bad_options_exit_2():
    r = subprocess.run([sys.executable, "-m", "autonomy.cli", "sitl", "serve", "--autopilot", "px4",
                        "--param", "NO_SUCH=1", "--local-port", str(free_udp_port())],
                       check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "unknown parameter 'NO_SUCH'" in r.stderr and "READY" not in r.stdout
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        busy = s.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "autonomy.cli", "sitl", "serve", "--autopilot", "ardupilot",
                            "--tcp-port", str(busy)], check=False, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot listen" in r.stderr
