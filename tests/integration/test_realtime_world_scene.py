"""The real-time world's camera draws one instant: vehicle position, attitude and targets all extrapolated to
"now" on the autopilot clock. Before, the vehicle was extrapolated to now while the targets stayed at the last
telemetry time and the attitude at its last message (each 0-50 ms old, of different ages): relative to the
vehicle a 25 m/s target sat up to a metre behind, and the real-time runs missed where lockstep hit.
Real sitl.video_server.RealtimeWorld fed decoded MAVLink telemetry (its sockets on 127.0.0.1)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from autonomy.geometry import euler_to_quat, quat_to_euler
from autonomy.mavlink.wire import dialect
from sitl.scenarios import make_scenario
from tests.conftest import free_udp_port


def _feed(world, t_boot_s: float, pos, vel, q, rate) -> None:
    ms = round(t_boot_s * 1000)
    world._on_ap(dialect.MAVLink_local_position_ned_message(ms, *pos, *vel))
    world._on_ap(dialect.MAVLink_attitude_quaternion_message(ms, *q, *rate, [0.0] * 4))


@pytest.fixture
def world():
    from sitl.video_server import RealtimeWorld

    w = RealtimeWorld(make_scenario("shahed_crossing", 0), free_udp_port(), free_udp_port(), 0, start_on_arm=False)
    yield w
    w.http.server_close()
    w.s_ap.close()
    w.s_comp.close()


def test_scene_is_one_instant_on_the_autopilot_clock(world):
    vel = np.array([30.0, 0.0, 0.0])
    q0 = euler_to_quat(0.0, -0.3, 0.0)
    pitch_rate = 2.0                                  # rad/s, terminal homing
    wall0 = time.monotonic()
    t_ap0 = 100.0                                     # autopilot boot time of the first message, sent now
    _feed(world, t_ap0, [0.0, 0.0, -100.0], vel, q0, [0.0, pitch_rate, 0.0])
    world._t_start = world.t_world_s
    tgt = world.targets[0]
    tgt.vel_ned_mps = np.array([0.0, 25.0, 0.0])
    tgt_pos0 = tgt.pos_ned_m.copy()
    time.sleep(0.03)
    pos, q, targets, t_s = world._scene_now()
    dt = t_s - t_ap0
    assert 0.025 <= dt <= time.monotonic() - wall0 + 1e-3   # now, on the autopilot clock
    np.testing.assert_allclose(pos, [30.0 * dt, 0.0, -100.0], atol=1e-9)
    assert quat_to_euler(q)[1] == pytest.approx(-0.3 + pitch_rate * dt, abs=1e-6)
    np.testing.assert_allclose(targets[0].pos_ned_m, tgt_pos0 + tgt.vel_ned_mps * dt, atol=1e-9)


def test_telemetry_read_late_does_not_move_the_scene_clock(world):
    """This loop renders for 20-40 ms at a time; a message read late must not make "now" earlier."""
    q0 = euler_to_quat(0.0, 0.0, 0.0)
    t_ap0 = 50.0
    _feed(world, t_ap0, [0.0, 0.0, -100.0], [0.0, 0.0, 0.0], q0, [0.0, 0.0, 0.0])   # read as it was sent
    wall0 = time.monotonic()
    time.sleep(0.04)
    _feed(world, t_ap0 + 0.01, [0.0, 0.0, -100.0], [0.0, 0.0, 0.0], q0, [0.0, 0.0, 0.0])  # sent 30 ms ago
    _, _, _, t_s = world._scene_now()
    assert t_s - t_ap0 == pytest.approx(time.monotonic() - wall0, abs=0.006)


def test_realtime_operator_refuses_a_box_on_nothing(world):
    """``AUTH? track N cue M az A el E``: the operator looks along the track's bearing (as in the lockstep world):
    the target there is authorized after the scenario's reaction delay; a bearing 40 deg off it is not."""
    from autonomy.geometry import los_to_az_el_deg

    world.origin = (47.0, 8.0, 400.0)
    _feed(world, 10.0, [0.0, 0.0, -150.0], [0.0, 0.0, 0.0], euler_to_quat(0.0, 0.0, 0.0), [0.0, 0.0, 0.0])
    world._t_start = world.t_world_s
    world._next_cue = 1e9                                   # no cues needed here
    to_target = world.targets[0].pos_ned_m - world.pos_ned_m
    az, el = los_to_az_el_deg(to_target)
    world.texts = [f"AUTH? track 5 cue 1000 az {az:.1f} el {el:.1f}", f"AUTH? track 6 cue 1001 az {az + 40:.1f} el {el:.1f}"]
    world._ground(0.0)
    t_ap = 10.0
    for _ in range(40):                                     # 0.8 s of telemetry: past the 0.5 s reaction delay
        t_ap += 0.02
        _feed(world, t_ap, [0.0, 0.0, -150.0], [0.0, 0.0, 0.0], euler_to_quat(0.0, 0.0, 0.0), [0.0, 0.0, 0.0])
        world._ground(0.0)
    assert world.authorized == [1000]
