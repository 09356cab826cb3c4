"""MUST-SHOW: the bridge against the simulated ArduCopter endpoint in its own process (TCP on 127.0.0.1)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from autonomy.mavlink import Bridge, CommandError, Control, LinkConfig
from autonomy.mavlink.flavour import COPTER_MODES
from autonomy.types import Setpoint
from tests.conftest import free_tcp_port
from tests.integration.test_bridge_px4 import (
    K,
    SitlProcess,
    assert_dead_man_brakes_then_hands_back,
    fly,
    max_hold_error_m,
    scaled_config,
    vel,
)


@pytest.fixture(scope="module")
def apm():
    port = free_tcp_port()
    sitl = SitlProcess("--autopilot", "ardupilot", "--speedup", str(K), "--tcp-port", str(port), "--seed", "2")
    b = Bridge(scaled_config(LinkConfig(f"tcp:127.0.0.1:{port}"), K))
    try:
        b.start()
        b.connect(timeout_s=10)
        rates = b.request_streams()          # ArduCopter sends nothing but HEARTBEAT until asked
        assert rates and all(r == "ACCEPTED" for r in rates.values()), rates
        assert b.wait_for(lambda: b.state is not None and len(b.cache.history.att) > 0, 20)
        yield b
    finally:
        b.close()
        sitl.stop()


def test_ardupilot_text_banner_is_a_counted_drop(apm):
    # ArduPilot SITL's first bytes on a TCP connect are a plain-text banner (spec Appendix B)
    assert apm.link.stats.bad_data >= 1 and apm.step_errors == 0 and apm.link_alive


def test_ardupilot_params_round_trip_float_cast(apm):
    b = apm
    assert b.param_get("MAV_SYSID") == 1 and b.params.values["MAV_SYSID"].param_type == 4   # INT16
    v0 = b.param_get("FS_GCS_ENABLE")
    assert b.param_set("FS_GCS_ENABLE", 0) == 0 and b.param_get("FS_GCS_ENABLE") == 0
    assert b.param_set("FS_GCS_ENABLE", v0) == v0
    assert b.param_set("GUID_TIMEOUT", 3.0) == pytest.approx(3.0)
    assert b.param_get("GUID_TIMEOUT") == pytest.approx(3.0)
    allp = b.param_list(timeout_s=10)
    assert allp["MAV_SYSID"].value == 1 and allp["GUID_TIMEOUT"].value == pytest.approx(3.0)
    assert b.params.hash_check is None                                   # no _HASH_CHECK on ArduPilot


def test_ardupilot_every_mode_decodes(apm):
    b = apm
    assert not b.armed
    for name in COPTER_MODES:
        b.set_mode(name, wait_s=3.0 / K + 1)  # disarmed: always accepted (spec section 4)
        assert b.mode == name and b.state.mode == name
    b.set_mode("STABILIZE", wait_s=2)


def _arm_when_ready(b: Bridge, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while True:
        try:
            b.arm(wait_s=2)
            return
        except CommandError as exc:       # FAILED until the EKF is ready (Appendix B)
            if time.monotonic() > end:
                raise
            assert exc.result_name == "FAILED"
            time.sleep(0.2)


def test_ardupilot_flight_square_hold_deadman_guid_timeout_land(apm):
    b = apm
    b.set_mode("GUIDED", wait_s=2)
    _arm_when_ready(b, 20.0 / K + 2)
    z0 = b.state.pos_ned_m[2]
    b.takeoff(5.0, wait_s=30.0 / K + 5)         # NAV_TAKEOFF, p7 above home; no setpoints during it
    assert b.state.pos_ned_m[2] == pytest.approx(z0 - 5.0, abs=0.7)
    b.engage()
    z_hold = z0 - 5.0
    fly(b, lambda t: Setpoint(t_s=0.0, pos_ned_m=np.array([*b.state.pos_ned_m[:2], z_hold])), 2.0)
    assert b.control is Control.ENGAGED and b.mode == "GUIDED"

    start = b.state.pos_ned_m.copy()
    for v in ([4, 0, 0], [0, 4, 0], [-4, 0, 0], [0, -4, 0]):
        p0 = b.state.pos_ned_m.copy()
        fly(b, lambda t, v=v: vel(v), 5.0)
        d = b.state.pos_ned_m - p0
        along = float(np.dot(d[:2], np.array(v[:2]) / 4.0))
        assert 12.0 < along < 22.0, (v, d)
        fly(b, lambda t: vel([0, 0, 0]), 2.0)
    assert np.linalg.norm((b.state.pos_ned_m - start)[:2]) < 4.0

    target = np.array([start[0] + 10.0, start[1] - 10.0, z_hold])
    fly(b, lambda t: Setpoint(t_s=0.0, pos_ned_m=target, vel_ned_mps=np.zeros(3)), 10.0)
    err = max_hold_error_m(b, Setpoint(t_s=0.0, pos_ned_m=target, vel_ned_mps=np.zeros(3)))
    assert err < 1.0, err

    # dead-man: pipeline stalls at 5 m/s -> brake (zero velocity) in GUIDED, then hand back to LOITER
    assert_dead_man_brakes_then_hands_back(b, "GUIDED", "LOITER", brake_within_s=5.0)

    # GUID_TIMEOUT: our stream stops at 3 m/s; ArduCopter keeps the velocity for 3 s, then stops, in GUIDED
    fly(b, lambda t: vel([3, 0, 0]), 3.0)
    b.suspend_stream()
    time.sleep(1.5 / K)
    assert b.state.vel_ned_mps[0] > 2.0                    # still flying the last velocity
    assert b.wait_for(lambda: np.linalg.norm(b.state.vel_ned_mps) < 0.3, 6.0 / K)
    assert b.mode == "GUIDED" and b.armed
    b.reengage("test: after GUID_TIMEOUT", initial=vel([0, 0, 0]))
    fly(b, lambda t: vel([0, 0, 0]), 1.0)

    b.land()
    assert b.wait_for(lambda: b.mode == "LAND", 3.0 / K + 1)
    assert b.wait_for(lambda: not b.armed, 40.0 / K + 3)
    assert b.state.pos_ned_m[2] == pytest.approx(z0, abs=0.5)
