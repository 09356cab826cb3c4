"""Campaign simulator parts: the numba airframe twin against sitl.vehicle.step, metrics, truth perception."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sitl import campaign as C
from sitl.scenarios import FAMILIES, make_scenario
from sitl.vehicle import MultirotorParams, MultirotorState, limit_accel_command, step


def test_fast_vehicle_matches_sitl_vehicle_step(rng):
    p = MultirotorParams()
    prm = C.params_array(p)
    s = MultirotorState()
    a = C.state_to_array(s)
    dt = 1.0 / 60.0
    for k in range(900):
        acc = rng.normal(0.0, 20.0, 3) if k % 60 else np.array([25.0, -10.0, -8.0])
        yaw = math.nan if k % 7 == 0 else float(rng.uniform(-math.pi, math.pi))
        wind = np.array([4.0, -2.0, 0.5])
        s = step(s, p, acc, None if math.isnan(yaw) else yaw, dt, wind)
        a = C.vehicle_step_kernel(a, prm, acc, yaw, dt, wind, True)
        ref = C.state_to_array(s)
        assert np.allclose(a, ref, rtol=1e-9, atol=1e-7), f"diverged at step {k}"
    b = C.array_to_state(a, s.t_s)
    assert np.allclose(b.pos_ned_m, s.pos_ned_m) and b.on_ground == s.on_ground


def test_fast_accel_limit_matches(rng):
    p = MultirotorParams()
    prm = C.params_array(p)
    for _ in range(300):
        acc = rng.normal(0.0, 30.0, 3)
        assert np.allclose(C.limit_accel_kernel(acc, prm), limit_accel_command(acc, p), atol=1e-12)


def test_fast_vehicle_disarmed_and_on_ground():
    p = MultirotorParams()
    a = C.state_to_array(MultirotorState())
    out = C.vehicle_step_kernel(a, C.params_array(p), np.array([0.0, 0, 5.0]), math.nan, 0.01, np.zeros(3), False)
    ref = C.state_to_array(step(MultirotorState(), p, np.array([0.0, 0, 5.0]), None, 0.01, armed=False))
    assert np.allclose(out, ref) and out[17] == 1.0


def test_closest_approach_interpolates_within_a_step():
    # passes 0.3 m from the origin half-way through a 10 m step
    d, s = C.closest_approach_segment(np.array([-5.0, 0.3, 0.0]), np.array([5.0, 0.3, 0.0]))
    assert d == pytest.approx(0.3) and s == pytest.approx(0.5)
    d, s = C.closest_approach_segment(np.array([3.0, 0, 0]), np.array([5.0, 0, 0]))
    assert d == pytest.approx(3.0) and s == 0.0


def test_speed_limited_lower_bound():
    t = np.linspace(0.0, 100.0, 1001)
    path = np.stack([1000.0 + 0 * t, 50.0 * t, 0 * t], axis=1)  # crossing at 50 m/s, 1 km out
    lb = C.speed_limited_lower_bound(t, path, np.zeros(3), 70.0)
    assert lb == pytest.approx(1000.0 / math.sqrt(70.0**2 - 50.0**2), rel=1e-3)
    assert math.isinf(C.speed_limited_lower_bound(t[:5], path[:5], np.zeros(3), 70.0))


def test_truth_perception_sees_only_what_is_in_the_image(rng):
    cam = C.campaign_camera(45.0)
    perc = C.TruthPerception(cam, make_scenario("shahed_crossing", 0).perception.__class__(
        latency_s=0.05, drop_prob=0.0), rng)
    q_level = np.array([1.0, 0.0, 0.0, 0.0])
    own = np.zeros(3)
    ahead_up = np.array([200.0, 0.0, -200.0 * math.tan(math.radians(45))])   # on the optical axis
    behind = np.array([-200.0, 0.0, 0.0])
    far = np.array([5000.0, 0.0, -5000.0])                                    # too small to detect
    for k in range(4):
        perc.capture(k / 30, own, np.zeros(3), q_level,
                     [(0, ahead_up, np.zeros(3), 2.5, "drone"), (1, behind, np.zeros(3), 2.5, "drone"),
                      (2, far, np.zeros(3), 0.5, "drone")])
    perc.poll(0.06)
    assert [t.status.value for t in perc.current] == ["tentative"]  # latency: frame 0 only (1 hit)
    perc.poll(1.0)
    tr = perc.current
    assert len(tr) == 1 and perc.object_of[tr[0].track_id] == 0 and tr[0].status.value == "confirmed"
    los_true = ahead_up / np.linalg.norm(ahead_up)
    assert float(tr[0].los_ned @ los_true) > math.cos(0.01)
    assert tr[0].range_m == pytest.approx(np.linalg.norm(ahead_up), rel=0.3)


def test_full_perception_mode_is_reported_clearly():  # full runs go through run_campaign -> run_engagement
    with pytest.raises(C.CampaignError, match="run_engagement"):
        C.make_perception("full", C.campaign_camera(45.0), None, np.random.default_rng(0))
    with pytest.raises(C.CampaignError, match="unknown perception"):
        C.make_perception("magic", C.campaign_camera(45.0), None, np.random.default_rng(0))


def test_scenarios_are_seeded_and_cover_the_families():
    for f in FAMILIES:
        a, b = make_scenario(f, 11), make_scenario(f, 11)
        assert a == b
        assert make_scenario(f, 12) != a
    assert make_scenario("bird_cue", 1).engageable is False
    assert make_scenario("shahed_headon", 3).aspect_deg < 20.0
    fpv = make_scenario("fpv_weave", 2)
    assert fpv.target.lateral_accel_mps2 == pytest.approx(9.80665) and fpv.target_speed_mps == pytest.approx(25.0)
    with pytest.raises(ValueError):
        make_scenario("ufo", 1)


def test_one_engagement_intercepts_and_is_deterministic():
    sc = make_scenario("shahed_headon", 1)
    r1 = C.run_scenario(sc)
    r2 = C.run_scenario(sc)
    assert r1 == r2
    assert r1["intercept"] and r1["miss_distance_m"] < 1.5 and r1["unauthorized_engagements"] == 0
    assert r1["time_ratio"] is not None and 1.0 <= r1["time_ratio"] < 2.0
    states = [d[2] for d in r1["decisions"]]
    assert states[:3] == ["midcourse", "acquire", "track"] and "terminal" in states


def test_small_weaving_target_is_kept_in_view_and_hit():
    """FPV weave seeds 19 and 23 missed (3.6 m, 2.0 m) when the campaign flew without field-of-view keeping:
    at 70 m/s the 0.4 m quad, level with us, sat above the image until it was below us (~80 m), the homing
    then asked for a downward correction the airframe cannot make and lost the target from the image."""
    for seed in (19, 23):
        r = C.run_scenario(make_scenario("fpv_weave", seed))
        assert r["intercept"] and r["miss_distance_m"] < 1.5, (seed, r["miss_distance_m"])


def test_cued_bird_is_shadowed_not_hit():
    """bird_cue seed 9: with the FOV clamp on and no stand-off precedence the interceptor could not brake
    (the clamp bounds the nose-up pitch) and flew into the cued bird: an unauthorized collision."""
    r = C.run_scenario(make_scenario("bird_cue", 9))
    assert r["unauthorized_engagements"] == 0 and r["confusers_engaged"] == 0 and not r["intercept"]
    assert r["miss_distance_m"] > 1.5


def test_homing_times_count_terminal_time_on_the_wrong_or_no_track():
    from sitl.engagement_demo import OFF_TARGET_DEG, _homing_times

    def row(t, state, rng, err):
        return {"t": t, "state": state, "range": rng, "engaged_err_deg": err}
    log = [row(0.0, "acquire", 300.0, math.nan),         # not homing: not counted
           row(1.0, "terminal", 200.0, 0.5),             # on target: 1 s
           row(2.0, "terminal", 150.0, OFF_TARGET_DEG + 1.0),   # a wrong track: 0.5 s off
           row(2.5, "terminal", 100.0, math.nan),        # no engaged track (coasting gap): 0.5 s off
           row(3.0, "terminal", 8.0, 40.0),              # inside 10 m: the LOS swings, not counted
           row(3.2, "done", 5.0, math.nan)]
    got = _homing_times(log)
    assert got["terminal_s"] == pytest.approx(2.0) and got["terminal_off_target_s"] == pytest.approx(1.0)
