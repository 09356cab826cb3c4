"""The lockstep world's miss distance is the closest approach, not the kill-radius crossing: after a target
comes inside the kill radius the physics runs on until the relative distance grows again (as the truth campaign
does), then stops. Real sitl.World (simulated PX4 over UDP on 127.0.0.1), a target flown past the vehicle."""

from __future__ import annotations

import numpy as np
import pytest

from sitl.scenarios import make_scenario
from sitl.world import World, WorldConfig
from tests.conftest import free_udp_port


@pytest.mark.parametrize("offset_m", [0.3, 0.9, 1.4])
def test_reported_miss_is_the_closest_approach(offset_m):
    sc = make_scenario("shahed_crossing", 0)
    with World(sc, WorldConfig()) as world:
        world.tick()
        own = world.ap.pos_ned_m.copy()
        tgt = world.targets[0]
        assert tgt.spec.kind == "straight"
        speed_mps = 45.0
        # 20 m ahead, passing the vehicle at offset_m to its east, level: a straight pass with a known miss
        tgt.pos_ned_m = own + np.array([20.0, offset_m, 0.0])
        tgt.vel_ned_mps = np.array([-speed_mps, 0.0, 0.0])
        t0 = world.t_s
        world.advance_to(t0 + 2.0)
        own_drift_m = float(np.linalg.norm(world.ap.pos_ned_m - own))
        assert own_drift_m < 0.05, "the vehicle on the ground should not move"
        assert world.killed == 0
        assert world.kill_final
        # the radius crossing is ~1.5 m; the closest approach is the offset (to the step's linear interpolation)
        assert world.min_dist_m[0] == pytest.approx(offset_m, abs=0.02)
        assert world.t_closest_s - t0 == pytest.approx(20.0 / speed_mps, abs=0.03)
        # it stopped at the closest approach, not 2 s later
        assert world.t_s - world.t_closest_s < 0.15
        assert world.t_kill_s < world.t_closest_s or offset_m > 1.3


def test_realtime_world_reports_the_closest_approach_too():
    """The real-time world (sitl.video_server, fed by the autopilot's telemetry) uses the same rule."""
    from sitl.video_server import RealtimeWorld

    sc = make_scenario("shahed_crossing", 0)
    world = RealtimeWorld(sc, free_udp_port(), free_udp_port(), 0, start_on_arm=False)
    try:
        world.pos_ned_m = np.array([0.0, 0.0, -100.0])   # the vehicle, as its telemetry reports it, at rest
        world._advance(0.0)
        world._t_start = 0.0
        tgt = world.targets[0]
        tgt.pos_ned_m = world.pos_ned_m + np.array([20.0, 0.4, 0.0])
        tgt.vel_ned_mps = np.array([-40.0, 0.0, 0.0])
        for k in range(1, 101):            # telemetry every 20 ms for 2 s
            world._advance(0.02 * k)
        assert world.killed and world.t_kill_s == pytest.approx(0.48, abs=0.03)
        assert world.min_dist_m == pytest.approx(0.4, abs=0.02)
    finally:
        world.http.server_close()
        world.s_ap.close()
        world.s_comp.close()


def test_simulated_operator_sees_what_a_track_is_on():
    """The operator's eyes (sitl.World.truth_class_of_track): the object on the track's line of sight, or
    "clutter" when no object is within WorldConfig.operator_match_rad (a box on trees or ground: refused)."""
    sc = make_scenario("bird_clutter", 1)
    with World(sc, WorldConfig()) as world:
        world.tick()
        own = world.ap.pos_ned_m
        to = {i: (o.pos_ned_m - own) / np.linalg.norm(o.pos_ned_m - own) for i, o in enumerate(world.targets)}
        bird = next(i for i, o in enumerate(world.targets) if o.class_name == "bird")
        e1 = np.cross(to[0], [0.0, 0.0, 1.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(to[0], e1)

        def off(deg: float, phi: float) -> np.ndarray:
            side = np.cos(phi) * e1 + np.sin(phi) * e2
            return np.cos(np.radians(deg)) * to[0] + np.sin(np.radians(deg)) * side

        def nearest(u: np.ndarray) -> tuple[int, float]:
            ang = {i: float(np.degrees(np.arccos(np.clip(u @ d, -1, 1)))) for i, d in to.items()}
            i = min(ang, key=ang.get)
            return i, ang[i]

        # a side of the target with no other object near (the birds fly around its path)
        phi = next(p for p in np.linspace(0, 2 * np.pi, 16, endpoint=False)
                   if nearest(off(2.0, p))[0] == 0 and nearest(off(40.0, p))[1] > 10.0)
        los = {1: to[0], 2: off(2.0, phi), 3: to[bird], 4: off(40.0, phi)}
        world.track_los = los.get
        assert world.truth_class_of_track(1) == world.targets[0].class_name == "drone"
        assert world.truth_class_of_track(2) == "drone"          # 2 deg off: the box is still on it
        assert world.truth_class_of_track(3) == "bird"
        assert world.truth_class_of_track(4) == "clutter"      # nothing within 10 deg: ground, trees
