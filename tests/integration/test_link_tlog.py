"""The link records what it receives and sends as a .tlog, and `autonomy replay`'s reader gets the same
vehicle states back from it: a flight of the simulated PX4 (its own process, UDP on 127.0.0.1)."""

from __future__ import annotations

import time

import numpy as np

from autonomy.mavlink import Bridge, LinkConfig
from autonomy.mavlink.wire import mavutil
from autonomy.replay import read_vehicle_log
from autonomy.types import Autopilot
from tests.conftest import free_udp_port
from tests.integration.test_bridge_px4 import K, SitlProcess, fly, scaled_config, vel


def test_recorded_tlog_replays_the_states_the_bridge_saw(tmp_path):
    local, remote = free_udp_port(), free_udp_port()
    tlog = tmp_path / "flight.tlog"
    offset_s = 1_700_000_000.0 - 123.0          # explicit clock offset: stamps = link clock + offset
    sitl = SitlProcess("--autopilot", "px4", "--speedup", str(K), "--local-port", str(local),
                       "--remote-port", str(remote), "--seed", "3")
    b = Bridge(scaled_config(LinkConfig(f"udpin:127.0.0.1:{remote}", tlog_path=str(tlog),
                                        tlog_clock_offset_s=offset_s), K))
    live = []
    try:
        b.start()
        b.connect(timeout_s=10)
        assert b.wait_for(lambda: b.state is not None and b.cache.origin is not None, 10)
        b.engage(vel([0, 0, 0]), timeout_s=5.0)
        b.arm(wait_s=3.0)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6.0 / K:
            fly(b, lambda t: vel([3.0, 1.0, -1.0]), 0.5, K)
            live.append(b.state)
        stats = b.link.stats
    finally:
        b.close()
        sitl.stop()
    assert stats.tlog_errors == 0 and stats.tlog_written > 200

    log = read_vehicle_log(tlog)
    assert log.autopilot is Autopilot.PX4 and len(log.states) > 50
    t_log = np.array([s.t_s for s in log.states])
    for s in live[2:]:
        t = s.t_s + offset_s
        assert t_log[0] <= t <= t_log[-1] + 0.1
        k = int(np.argmin(np.abs(t_log - t)))
        assert abs(t_log[k] - t) < 0.1
        # the same LOCAL_POSITION_NED samples: positions agree to what ~0.1 s of flight moves
        assert np.linalg.norm(log.states[k].pos_ned_m - s.pos_ned_m) < 0.6
    assert np.linalg.norm(log.states[-1].pos_ned_m[:2]) > 1.0          # it did fly

    # our own frames are in it too: the setpoint stream and the arm command, from sysid 1 / compid 191
    mlog = mavutil.mavlink_connection(str(tlog))
    ours = {}
    while (m := mlog.recv_msg()) is not None:
        if m.get_srcSystem() == 1 and m.get_srcComponent() == 191:
            ours[m.get_type()] = ours.get(m.get_type(), 0) + 1
    assert ours.get("SET_POSITION_TARGET_LOCAL_NED", 0) > 50 and ours.get("COMMAND_LONG", 0) >= 1
