"""The real-time world's camera draws one instant: vehicle position, attitude and targets all at the newest
attitude sample's time on the autopilot clock, and writes that instant into the frame. Before, the vehicle was
extrapolated to now while the targets stayed at the last telemetry time and the attitude at its last message
(each 0-50 ms old, of different ages): relative to the vehicle a 25 m/s target sat up to a metre behind, and the
real-time runs missed where lockstep hit.
Real sitl.video_server.RealtimeWorld fed decoded MAVLink telemetry (its sockets on 127.0.0.1)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from autonomy.geometry import euler_to_quat
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
    """The frame is exposed at the newest attitude sample's instant, with exactly that attitude (the one the
    companion looks up for the frame's stamp); a newer position and the targets are brought back to it."""
    vel = np.array([30.0, 0.0, 0.0])
    q0 = euler_to_quat(0.0, -0.3, 0.0)
    t_ap0 = 100.0
    _feed(world, t_ap0, [0.0, 0.0, -100.0], vel, q0, [0.0, 2.0, 0.0])   # pitching at 2 rad/s (terminal homing)
    world._t_start = world.t_world_s
    tgt = world.targets[0]
    tgt.vel_ned_mps = np.array([0.0, 25.0, 0.0])
    tgt_pos0 = tgt.pos_ned_m.copy()
    # a position 20 ms newer than the attitude (the streams come at different rates)
    world._on_ap(dialect.MAVLink_local_position_ned_message(round((t_ap0 + 0.02) * 1000), 0.6, 0.0, -100.0, *vel))
    time.sleep(0.03)
    pos, q, targets, t_s = world._scene_now()
    assert t_s == t_ap0
    np.testing.assert_allclose(q, q0, atol=1e-12)                 # not extrapolated by the body rate
    np.testing.assert_allclose(pos, [0.0, 0.0, -100.0], atol=1e-9)
    tg_now = tgt.pos_ned_m                                        # the world stepped its targets to t_ap0 + 0.02
    np.testing.assert_allclose(targets[0].pos_ned_m, tg_now - tgt.vel_ned_mps * 0.02, atol=1e-9)
    assert np.linalg.norm(tg_now - tgt_pos0) > 0.4


def test_rendered_frame_carries_its_instant(world):
    """The JPEG the companion reads holds the scene instant (autonomy.camera.stamp), so that a render that
    takes 20-40 ms, a JPEG encode and an HTTP hop under load do not decide which attitude the frame is paired with."""
    import cv2

    from autonomy.camera.stamp import read_frame_stamp

    _feed(world, 123.456, [0.0, 0.0, -100.0], [0.0, 0.0, 0.0], euler_to_quat(0.0, 0.1, 0.0), [0.0, 0.0, 0.0])
    world._render()
    img = cv2.imdecode(np.frombuffer(world.stream.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert read_frame_stamp(img) == pytest.approx(123.456, abs=1e-6)
    _feed(world, 123.476, [0.0, 0.0, -100.0], [0.0, 0.0, 0.0], euler_to_quat(0.0, 0.1, 0.0), [0.0, 0.0, 0.0])
    world._render()
    img = cv2.imdecode(np.frombuffer(world.stream.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert read_frame_stamp(img) == pytest.approx(123.476, abs=1e-6)


def test_telemetry_read_late_does_not_move_the_scene_clock(world):
    """Before any attitude, the instant is now on the autopilot clock: a message read late must not make "now"
    earlier (the reader may have been busy for 20-40 ms)."""
    def pos(t_boot_s):
        world._on_ap(dialect.MAVLink_local_position_ned_message(round(t_boot_s * 1000), 0.0, 0.0, -100.0, 0, 0, 0))

    t_ap0 = 50.0
    pos(t_ap0)                                                  # read as it was sent
    wall0 = time.monotonic()
    time.sleep(0.04)
    pos(t_ap0 + 0.01)                                           # sent 30 ms ago
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
