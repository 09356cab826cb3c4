"""The lockstep runs' independent safety account (sitl.engagement_demo._SafetyAccount) attributes the engaged
track to the object its line of sight was on when it was last *measured*: a coasting track is the tracker's
prediction, and its LOS sweeping across a bird far behind the target is not an engagement of that bird (lockstep
bird_clutter-6 counted one that way). A track measured on a bird still counts. Real sitl.World (simulated PX4
over UDP on 127.0.0.1) and the real engagement configuration."""

from __future__ import annotations

import numpy as np

from autonomy.config import load_config
from autonomy.engagement.machine import EngagementOutput, State
from autonomy.runtime.pipeline import StepResult
from autonomy.types import TargetTrack, TrackStatus
from sitl.engagement_demo import SITL_CONFIG, _SafetyAccount, scenario_engagement
from sitl.scenarios import make_scenario
from sitl.world import World, WorldConfig


def _track(los_ned: np.ndarray, misses: int) -> TargetTrack:
    los = los_ned / np.linalg.norm(los_ned)
    return TargetTrack(track_id=7, t_s=0.0, status=TrackStatus.COASTING if misses else TrackStatus.CONFIRMED,
                       los_ned=los, los_rate_ned_radps=np.zeros(3), los_cov=np.eye(3) * 1e-6,
                       angular_size_rad=0.02, misses=misses)


def _step(world: World, tr: TargetTrack) -> StepResult:
    out = EngagementOutput(world.t_s, State.TERMINAL, None, engaged_track_id=tr.track_id)
    world.track_los = lambda tid: np.asarray(tr.los_ned) if tid == tr.track_id else None
    return StepResult(world.t_s, world.t_s, State.TERMINAL, out, tracks=(tr,))


def test_a_coasting_track_stays_on_what_it_last_saw_and_a_measured_bird_track_counts():
    sc = make_scenario("bird_clutter", 0)
    with World(sc, WorldConfig()) as world:
        world.start()
        world.authorized_tracks.add(7)
        own = world.ap.pos_ned_m.copy()
        drone = world.targets[0]
        bird = next(o for o in world.targets if o.class_name == "bird")
        drone.pos_ned_m = own + np.array([25.0, 0.0, -5.0])
        bird.pos_ned_m = own + np.array([500.0, 60.0, -100.0])   # ~7 deg off the drone's line of sight
        eng_cfg = scenario_engagement(load_config(SITL_CONFIG), sc)
        acct = _SafetyAccount()
        to_drone, to_bird = drone.pos_ned_m - own, bird.pos_ned_m - own
        acct.frame(_step(world, _track(to_drone, 0)), world, eng_cfg)
        # the prediction drifts onto the bird while the track coasts: still the drone's track
        acct.frame(_step(world, _track(to_bird, 6)), world, eng_cfg)
        assert acct.confuser == 0 and not acct.notes
        # measured on the bird: an engaged confuser, with the note that says where each object was
        acct.frame(_step(world, _track(to_bird, 0)), world, eng_cfg)
        assert acct.confuser == 1
        (note,) = acct.notes
        assert note["track_id"] == 7
        angles = {c: a for c, a, _r in note["objects_class_angle_deg_range_m"] if c == "drone"}
        assert angles["drone"] > 5.0
