"""Engagement state machine: every transition, every gate, operator commands and the decision log."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from autonomy.engagement import (
    EngagementConfig,
    EngagementError,
    EngagementInput,
    EngagementMachine,
    GeofenceConfig,
    Reason,
    State,
    Zone,
    gates,
    load_engagement_toml,
)
from autonomy.types import (
    OperatorCommand,
    OperatorCommandKind,
    TargetCue,
    TargetTrack,
    TrackStatus,
    VehicleState,
)

K = OperatorCommandKind
CUE_ID = 77
FENCE = GeofenceConfig(((-5000, -5000), (5000, -5000), (5000, 5000), (-5000, 5000)), -5.0, 1500.0)


def cfg(**kw) -> EngagementConfig:
    return replace(EngagementConfig(geofence=FENCE), **kw)


class World:
    """A hand-driven engagement: vehicle at ``pos``, target at ``tgt`` (NED m), time in ``t``."""

    def __init__(self, config: EngagementConfig | None = None, tgt=(600.0, 0.0, -200.0)):
        self.m = EngagementMachine(config or cfg())
        self.t = 0.0
        self.pos = np.array([0.0, 0.0, -100.0])
        self.vel = np.zeros(3)
        self.tgt = np.array(tgt, dtype=float)
        self.tgt_vel = np.array([0.0, 10.0, 0.0])

    def cue(self) -> TargetCue:
        return TargetCue(self.t, CUE_ID, self.tgt.copy(), self.tgt_vel.copy())

    def track(self, tid=5, status=TrackStatus.CONFIRMED, cls="drone", direction=None) -> TargetTrack:
        rel = (self.tgt if direction is None else self.pos + np.asarray(direction, float)) - self.pos
        r = float(np.linalg.norm(rel))
        return TargetTrack(tid, self.t, status, rel / r, np.zeros(3), np.eye(3) * 1e-6, 2.5 / r,
                           class_name=cls, range_m=r)

    def step(self, cue=True, tracks=(), cmds=(), link=True, frame=True, impact=False, dt=0.1):
        self.t += dt
        veh = VehicleState(self.t, self.pos.copy(), self.vel.copy(), np.array([1.0, 0, 0, 0]))
        return self.m.step(EngagementInput(
            self.t, veh, self.cue() if cue else None, tuple(tracks), tuple(cmds),
            last_link_rx_t_s=self.t if link else self.t - 100.0, last_frame_t_s=self.t if frame else self.t - 100.0,
            impact=impact))

    def auth(self, tid, signed=True, valid=30.0):
        return OperatorCommand(K.AUTHORIZE, self.t, tid, valid, signed=signed)

    def to_track(self) -> None:
        self.step()
        assert self.m.state is State.ACQUIRE  # 600 m < acquire range
        self.step(tracks=[self.track()])
        assert self.m.state is State.AWAIT_AUTHORIZATION

    def to_terminal(self) -> None:
        self.to_track()
        self.step(tracks=[self.track()], cmds=[self.auth(5)])
        assert self.m.state is State.TERMINAL


def reasons(m: EngagementMachine) -> list[Reason]:
    return [d.reason for d in m.decisions]


def test_idle_until_a_cue_then_midcourse_and_acquire():
    w = World(tgt=(3000.0, 0.0, -200.0))
    out = w.step(cue=False)
    assert out.state is State.IDLE and out.setpoint is None
    out = w.step()
    assert out.state is State.MIDCOURSE and Reason.CUE_RECEIVED in out.reasons
    assert out.setpoint is not None and np.linalg.norm(out.acc_cmd_ned_mps2) <= 30.0 + 1e-9
    w.tgt = np.array([700.0, 0.0, -200.0])
    assert w.step().state is State.ACQUIRE
    w.tgt = np.array([1300.0, 0.0, -200.0])
    out = w.step()
    assert out.state is State.MIDCOURSE and Reason.CUE_OUT_OF_SENSOR_RANGE in out.reasons


def test_acquire_needs_a_confirmed_engageable_track_that_agrees_with_the_cue():
    w = World()
    w.step()
    w.step(tracks=[w.track(status=TrackStatus.TENTATIVE)])
    assert w.m.state is State.ACQUIRE
    w.step(tracks=[w.track(direction=(0.0, 600.0, 0.0))])  # 90 deg away from the cue
    assert w.m.state is State.ACQUIRE
    w.step(tracks=[w.track(cls="bird")])
    assert w.m.state is State.ACQUIRE and Reason.CONFUSER_CLASS in reasons(w.m)
    for cls in ("airplane", "helicopter"):
        w.step(tracks=[w.track(cls=cls, tid=9)])
        assert w.m.state is State.ACQUIRE
    out = w.step(tracks=[w.track(cls="bird", tid=8), w.track(tid=5)])
    assert out.state is State.AWAIT_AUTHORIZATION and out.engaged_track_id == 5
    assert reasons(w.m)[-2:] == [Reason.TRACK_CONFIRMED, Reason.AUTHORIZATION_REQUIRED]


def test_authorization_is_bound_to_one_track_and_expires():
    w = World()
    w.to_track()
    w.step(tracks=[w.track()], cmds=[w.auth(6)])  # another track
    assert w.m.state is State.AWAIT_AUTHORIZATION
    w.step(tracks=[w.track()], cmds=[w.auth(5, valid=1.0)])
    assert w.m.state is State.TERMINAL
    for _ in range(12):
        w.step(tracks=[w.track()])
    assert w.m.state is State.AWAIT_AUTHORIZATION and Reason.AUTHORIZATION_EXPIRED in reasons(w.m)


def test_authorizing_the_ground_track_carries_over_to_the_associated_camera_track():
    w = World()
    w.step(cmds=[w.auth(CUE_ID)])
    w.step()
    out = w.step(tracks=[w.track()])
    assert out.state is State.TERMINAL
    assert reasons(w.m)[-2:] == [Reason.TRACK_CONFIRMED, Reason.AUTHORIZED]


def test_max_authorization_validity_is_capped():
    w = World(cfg(max_authorization_s=2.0))
    w.to_track()
    w.step(tracks=[w.track()], cmds=[w.auth(5, valid=1000.0)])
    assert w.m.state is State.TERMINAL
    for _ in range(25):
        w.step(tracks=[w.track()])
    assert w.m.state is State.AWAIT_AUTHORIZATION


def test_deny_withdraws_authorization():
    w = World()
    w.to_terminal()
    out = w.step(tracks=[w.track()], cmds=[OperatorCommand(K.DENY, w.t, 5, signed=True)])
    assert out.state is State.AWAIT_AUTHORIZATION and Reason.DENIED in out.reasons


def test_unsigned_commands_are_refused_when_signing_is_required():
    w = World(cfg(require_signed_commands=True))
    w.to_track()
    out = w.step(tracks=[w.track()], cmds=[w.auth(5, signed=False)])
    assert out.state is State.AWAIT_AUTHORIZATION and Reason.UNSIGNED_COMMAND_REFUSED in out.reasons
    out = w.step(tracks=[w.track()], cmds=[OperatorCommand(K.ABORT, w.t, signed=False)])
    assert out.state is State.AWAIT_AUTHORIZATION  # an unsigned abort is refused too
    assert w.step(tracks=[w.track()], cmds=[w.auth(5, signed=True)]).state is State.TERMINAL
    w2 = World(cfg(require_signed_commands=False))
    w2.to_track()
    assert w2.step(tracks=[w2.track()], cmds=[w2.auth(5, signed=False)]).state is State.TERMINAL


def test_abort_always_wins_then_hold_then_rtl():
    w = World(cfg(hold_before_rtl_s=0.5))
    w.to_track()
    out = w.step(tracks=[w.track()], cmds=[w.auth(5), OperatorCommand(K.ABORT, w.t, signed=True), w.auth(5)])
    assert out.state is State.HOLD and out.brake and np.allclose(out.setpoint.vel_ned_mps, 0.0)
    assert reasons(w.m)[-2:] == [Reason.OPERATOR_ABORT, Reason.BRAKING]
    for _ in range(6):
        out = w.step(tracks=[w.track()], cmds=[w.auth(5)])
    assert out.state is State.RTL and out.rtl and Reason.HOLD_TIMEOUT in reasons(w.m)
    assert all(d.reason is not Reason.AUTHORIZED for d in w.m.decisions)


def test_return_goes_to_rtl():
    w = World()
    w.step()
    out = w.step(cmds=[OperatorCommand(K.RETURN, w.t, signed=True)])
    assert out.state is State.RTL and out.rtl and Reason.OPERATOR_RETURN in out.reasons


def test_impact_ends_in_done():
    w = World()
    w.to_terminal()
    out = w.step(tracks=[w.track()], impact=True)
    assert out.state is State.DONE and Reason.IMPACT in out.reasons


def test_miss_reattack_and_reattack_limit():
    w = World(cfg(max_reattacks=1))
    w.to_terminal()
    # we flew past: target 10 m behind us, we move away from it
    w.tgt = np.array([-10.0, 0.0, -100.0])
    w.vel = np.array([50.0, 0.0, 0.0])
    w.tgt_vel = np.zeros(3)
    out = w.step(tracks=[w.track()])
    assert out.state is State.REATTACK and reasons(w.m)[-2:] == [Reason.PASSED_TARGET, Reason.REATTACK_STARTED]
    # turned around, closing from 200 m
    w.tgt = np.array([200.0, 0.0, -100.0])
    out = w.step(tracks=[w.track()])
    assert out.state is State.TERMINAL and Reason.REATTACK_READY in out.reasons
    w.tgt = np.array([-10.0, 0.0, -100.0])
    out = w.step(tracks=[w.track()])
    assert out.state is State.ABORT and Reason.REATTACK_LIMIT in reasons(w.m)


def test_reattack_goes_terminal_as_soon_as_a_closing_track_is_back():
    """A small target is first seen at ~90 m: the re-attack must home on it from there, not fly the pass on
    the midcourse law (the old rule waited for 2 x miss_range = 50 m, i.e. < 0.5 s at 60 m/s closure)."""
    w = World(cfg(max_reattacks=2))
    w.to_terminal()
    w.tgt = np.array([-10.0, 0.0, -100.0])
    w.vel = np.array([50.0, 0.0, 0.0])
    w.tgt_vel = np.zeros(3)
    assert w.step(tracks=[w.track()]).state is State.REATTACK
    # right after the pass a noisy estimate says "closing" at 20 m: not ready (we have not opened up yet)
    w.tgt, w.tgt_vel = np.array([-20.0, 0.0, -100.0]), np.array([60.0, 0.0, 0.0])
    assert w.step(tracks=[w.track()]).state is State.REATTACK
    w.tgt_vel = np.zeros(3)
    # opened to 80 m, then turning: the target is behind at 40 m but we still fly away from it: not ready
    w.tgt = np.array([-80.0, 0.0, -100.0])
    assert w.step(tracks=[w.track()]).state is State.REATTACK
    w.tgt = np.array([-40.0, 0.0, -100.0])
    assert w.step(tracks=[w.track()]).state is State.REATTACK
    # no camera track yet: not ready either (the cue alone is not enough to home)
    w.vel = np.array([-50.0, 0.0, 0.0])
    assert w.step(tracks=[]).state is State.REATTACK
    # closing on a camera track at 40 m (inside the old 50 m bar): terminal again
    out = w.step(tracks=[w.track()])
    assert out.state is State.TERMINAL and Reason.REATTACK_READY in out.reasons
    # and not when the target is within the minimum range (no time left to home)
    w2 = World(cfg(max_reattacks=2))
    w2.to_terminal()
    w2.tgt, w2.vel, w2.tgt_vel = np.array([-10.0, 0.0, -100.0]), np.array([50.0, 0.0, 0.0]), np.zeros(3)
    assert w2.step(tracks=[w2.track()]).state is State.REATTACK
    w2.tgt = np.array([-80.0, 0.0, -100.0])
    assert w2.step(tracks=[w2.track()]).state is State.REATTACK
    w2.tgt, w2.vel = np.array([3.0, 0.0, -100.0]), np.array([20.0, 0.0, 0.0])
    assert w2.step(tracks=[w2.track()]).state is State.REATTACK


# World.track's target is 2.5 m across (angular size x range)
@pytest.mark.parametrize("max_size_m,from_standoff", [(math.inf, True), (3.0, True), (2.0, False), (0.0, False)])
def test_reattack_from_standoff_backs_out_and_homes_again_from_there(max_size_m, from_standoff):
    """reattack_standoff_max_size_m: after a pass the vehicle backs out to the stand-off, where the camera sees a
    target up to that size as it did while shadowing, and homes again from there, closing or not. Larger targets
    (size when homing began), or 0: it flies straight back at it and homes only on a closing track."""
    w = World(cfg(max_reattacks=2, reattack_standoff_max_size_m=max_size_m))
    w.to_terminal()
    w.tgt, w.vel, w.tgt_vel = np.array([-10.0, 0.0, -100.0]), np.array([50.0, 0.0, 0.0]), np.zeros(3)
    assert w.step(tracks=[w.track()]).state is State.REATTACK
    # hovering 20 m short of the target, no camera track: back out (away from it), or fly at it
    w.vel, w.tgt = np.zeros(3), np.array([20.0, 0.0, -100.0])
    out = w.step(tracks=[])
    assert out.state is State.REATTACK
    along_los_mps2 = float(out.acc_cmd_ned_mps2[0])
    assert along_los_mps2 < -5.0 if from_standoff else along_los_mps2 > 5.0
    # at 100 m: approach, but no faster than lets us brake onto the stand-off
    w.tgt = np.array([100.0, 0.0, -100.0])
    w.vel = np.array([60.0, 0.0, 0.0])
    out = w.step(tracks=[])
    assert out.state is State.REATTACK
    assert (float(out.acc_cmd_ned_mps2[0]) < -5.0) is from_standoff
    # hovering at the stand-off with a fresh camera track: home again (from the stand-off only)
    w.vel, w.tgt = np.zeros(3), np.array([60.0, 0.0, -100.0])
    out = w.step(tracks=[w.track()])
    if from_standoff:
        assert out.state is State.TERMINAL and Reason.REATTACK_READY in out.reasons
    else:
        assert out.state is State.REATTACK
    # a coasting track (the camera lost it this frame) is not enough
    w2 = World(cfg(max_reattacks=2, reattack_standoff_max_size_m=max_size_m))
    w2.to_terminal()
    w2.tgt, w2.vel, w2.tgt_vel = np.array([-10.0, 0.0, -100.0]), np.array([50.0, 0.0, 0.0]), np.zeros(3)
    assert w2.step(tracks=[w2.track()]).state is State.REATTACK
    w2.vel, w2.tgt = np.zeros(3), np.array([60.0, 0.0, -100.0])
    assert w2.step(tracks=[replace(w2.track(status=TrackStatus.COASTING), misses=2)]).state is State.REATTACK


def test_link_loss_aborts():
    w = World()
    w.step()
    out = w.step(link=False)
    assert out.state is State.ABORT and out.brake and Reason.LINK_LOST in out.reasons
    assert w.step(link=False).state is State.HOLD


def test_pipeline_stall_aborts_only_where_the_camera_is_needed():
    w = World(tgt=(3000.0, 0.0, -200.0))
    w.step(frame=False)
    assert w.step(frame=False).state is State.MIDCOURSE  # midcourse flies on the cue
    w2 = World()
    w2.to_track()
    out = w2.step(tracks=[w2.track()], frame=False)
    assert out.state is State.ABORT and Reason.PIPELINE_STALL in out.reasons


def test_max_engagement_time_aborts():
    w = World(cfg(max_engagement_s=1.0), tgt=(3000.0, 0.0, -200.0))
    for _ in range(15):
        out = w.step()
    assert out.state in (State.HOLD, State.RTL) and Reason.MAX_ENGAGEMENT_TIME in reasons(w.m)


def test_geofence_checks_the_stopping_point():
    w = World(tgt=(3000.0, 0.0, -200.0))
    w.step()
    w.pos = np.array([4900.0, 0.0, -100.0])
    w.vel = np.array([60.0, 0.0, 0.0])  # stops ~120 m further at 15 m/s^2: outside
    out = w.step()
    assert out.state is State.ABORT and out.brake and Reason.GEOFENCE in out.reasons
    w2 = World(tgt=(3000.0, 0.0, -200.0))
    w2.step()
    w2.pos = np.array([0.0, 0.0, -1600.0])  # above the altitude band
    assert w2.step().state is State.ABORT


def test_no_engage_zone_blocks_terminal_for_vehicle_and_intercept_point():
    zone = Zone("village", ((400.0, -200.0), (800.0, -200.0), (800.0, 200.0), (400.0, 200.0)))
    w = World(cfg(no_engage_zones=(zone,)))
    w.to_track()  # the target (and so the intercept point) is inside the zone
    out = w.step(tracks=[w.track()], cmds=[w.auth(5)])
    assert out.state is State.AWAIT_AUTHORIZATION and Reason.NO_ENGAGE_ZONE in reasons(w.m)
    # leaving the zone: engagement allowed
    w.tgt = np.array([300.0, 500.0, -200.0])
    w.tgt_vel = np.zeros(3)
    assert w.step(tracks=[w.track()]).state is State.TERMINAL
    # the target flies into the zone while we home: break off
    w.tgt = np.array([600.0, 0.0, -200.0])
    out = w.step(tracks=[w.track()])
    assert out.state is State.AWAIT_AUTHORIZATION and Reason.NO_ENGAGE_ZONE in out.reasons
    # the vehicle itself inside a zone
    ok, why = gates.no_engage_clear(np.array([500.0, 0, 0]), None, (zone,))
    assert not ok and "vehicle" in why


def test_targets_near_the_ground_are_not_engaged():
    w = World(tgt=(600.0, 0.0, -3.0))
    w.to_track()
    out = w.step(tracks=[w.track()], cmds=[w.auth(5)])
    assert out.state is State.AWAIT_AUTHORIZATION and Reason.TARGET_NOT_AERIAL in reasons(w.m)


def test_track_loss_hands_back_to_the_cue_or_aborts():
    w = World()
    w.to_terminal()
    for _ in range(12):
        out = w.step()
    assert Reason.TRACK_LOST in reasons(w.m) and w.m.state in (State.MIDCOURSE, State.ACQUIRE)
    w2 = World()
    w2.to_terminal()
    for _ in range(12):
        out = w2.step(cue=False, tracks=[])
        w2.m._cue_hist = []  # the ground track is gone too
    assert out.state in (State.HOLD, State.RTL) and Reason.TRACK_LOST in reasons(w2.m)


def test_cue_loss_in_midcourse_aborts():
    w = World(cfg(cue_timeout_s=0.5), tgt=(3000.0, 0.0, -200.0))
    w.step()
    for _ in range(8):
        out = w.step(cue=False)
    assert out.state in (State.ABORT, State.HOLD) and Reason.CUE_LOST in reasons(w.m)


def test_engaged_track_reclassified_as_confuser_is_dropped():
    w = World()
    w.to_terminal()
    out = w.step(tracks=[w.track(cls="bird")])
    assert out.state is State.ACQUIRE and Reason.CONFUSER_CLASS in out.reasons and out.engaged_track_id is None


def test_engaged_track_that_leaves_the_cue_gate_for_cue_disagree_s_is_dropped_for_good():
    off = (600.0, 300.0, -100.0)  # 26 deg off the cue direction; the gate at 608 m is 6 deg + 3 x 10 m / 608 m
    w = World(cfg(cue_disagree_s=0.95))  # steps of 0.1 s: the 11th step outside the gate is 1.0 s after the first
    w.to_terminal()
    for _ in range(5):  # half a second outside the gate, then back: the clock starts again
        assert w.step(tracks=[w.track(direction=off)]).state is State.TERMINAL
    w.step(tracks=[w.track()])
    for _ in range(10):
        assert w.step(tracks=[w.track(direction=off)]).state is State.TERMINAL
    out = w.step(tracks=[w.track(direction=off)])
    assert out.state is State.ACQUIRE and out.engaged_track_id is None
    assert Reason.TRACK_DISAGREES_WITH_CUE in out.reasons
    assert "26 deg off the cue" in w.m.decisions[-1].details
    # that track is never taken again, even back on the cue; another one is
    assert w.step(tracks=[w.track()]).state is State.ACQUIRE
    out = w.step(tracks=[w.track(), w.track(tid=6)])
    # ... and it needs an authorization of its own (the operator authorized camera track 5)
    assert out.engaged_track_id == 6 and out.state is State.AWAIT_AUTHORIZATION
    # off by default, and not checked with the cue nearer than cue_disagree_min_range_m: the drift is flown on
    for c in (cfg(), cfg(cue_disagree_s=0.95, cue_disagree_min_range_m=700.0)):
        w0 = World(c)
        w0.to_terminal()
        for _ in range(30):
            assert w0.step(tracks=[w0.track(direction=off)]).state is State.TERMINAL


def test_renumbered_track_is_reassociated():
    w = World()
    w.to_terminal()
    out = w.step(tracks=[w.track(tid=12)])
    # the new id is followed at once, but the authorization named track 5: the operator must confirm 12
    assert out.engaged_track_id == 12 and Reason.TRACK_REASSOCIATED in out.reasons
    assert out.state is State.AWAIT_AUTHORIZATION
    w2 = World()
    w2.step(cmds=[w2.auth(CUE_ID)])  # authorization of the ground track covers any camera track bound to it
    w2.step()
    w2.step(tracks=[w2.track()])
    out = w2.step(tracks=[w2.track(tid=12)])
    assert out.state is State.TERMINAL and out.engaged_track_id == 12


def test_decision_log_records_every_transition():
    w = World()
    w.to_terminal()
    log = w.m.decisions
    assert [d.to_state for d in log if d.from_state != d.to_state] == [
        State.MIDCOURSE, State.ACQUIRE, State.TRACK, State.AWAIT_AUTHORIZATION, State.TERMINAL]
    assert all(isinstance(d.reason, Reason) and d.t_s > 0 for d in log)
    assert all(log[i].t_s <= log[i + 1].t_s for i in range(len(log) - 1))


def test_terminal_output_respects_limits_and_the_altitude_floor():
    w = World(cfg(min_altitude_m=150.0))
    w.to_terminal()
    out = w.step(tracks=[w.track()])  # we are at 100 m, below the 150 m floor
    assert np.linalg.norm(out.acc_cmd_ned_mps2) <= 30.0 + 1e-9
    assert out.acc_cmd_ned_mps2[2] < 0.0 and out.setpoint.acc_ned_mps2 is not None
    assert out.setpoint.yaw_rad == pytest.approx(0.0, abs=0.5)


def test_pure_pursuit_law_points_at_the_target():
    w = World(cfg(law="pure_pursuit"))
    w.to_terminal()
    out = w.step(tracks=[w.track()])
    los = (w.tgt - w.pos) / np.linalg.norm(w.tgt - w.pos)
    assert float(out.acc_cmd_ned_mps2 @ los) > 0.0


def test_config_toml_and_errors(tmp_path):
    p = tmp_path / "eng.toml"
    p.write_text(
        '[engagement]\nlaw = "augmented_pn"\nnav_gain = 5.0\nmin_altitude_m = 30.0\n'
        'require_signed_commands = true\n'
        '[engagement.geofence]\npolygon_ne_m = [[-1000, -1000], [1000, -1000], [1000, 1000]]\n'
        'max_altitude_m = 500.0\n'
        '[[engagement.no_engage_zones]]\nname = "school"\npolygon_ne_m = [[0, 0], [10, 0], [10, 10]]\n')
    c = load_engagement_toml(p)
    assert c.law == "augmented_pn" and c.nav_gain == 5.0 and c.require_signed_commands
    assert c.geofence.max_altitude_m == 500.0 and c.no_engage_zones[0].name == "school"
    p.write_text('[engagement]\nlaw = "magic"\n')
    with pytest.raises(EngagementError, match="law"):
        load_engagement_toml(p)
    p.write_text('[engagement]\nspeed = 3\n')
    with pytest.raises(EngagementError, match="unknown"):
        load_engagement_toml(p)
    p.write_text('[engagement\n')
    with pytest.raises(EngagementError, match="malformed"):
        load_engagement_toml(p)
    with pytest.raises(EngagementError):
        Zone("bad", ((0.0, 0.0), (1.0, 1.0)))
    with pytest.raises(EngagementError):
        EngagementConfig(engageable_classes=("bird",))
    for bad in ({"reattack_standoff_max_size_m": -1.0}, {"reattack_standoff_max_size_m": math.nan},
                {"reattack_ready_frac": 0.0}, {"reattack_ready_frac": 1.5}):
        with pytest.raises(EngagementError, match="reattack"):
            EngagementConfig(**bad)


def test_point_in_polygon_and_watchdog():
    sq = ((0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0))
    assert gates.point_in_polygon(5, 5, sq) and not gates.point_in_polygon(15, 5, sq)
    assert gates.watchdog_clear(10.0, 9.5, 1.0) and not gates.watchdog_clear(10.0, 8.0, 1.0)
    assert not gates.watchdog_clear(10.0, None, 1.0) and not gates.watchdog_clear(10.0, math.nan, 1.0)


def test_fov_keep_takes_the_drag_feed_forward_out():
    """The machine's command carries the drag feed-forward (the autopilot does not know the drag); the
    attitude follows ``acc_cmd - g``. The FOV clamp must bound THAT pitch, and leave a command alone whose
    pitch already keeps the target in view (it used to count the drag twice and cut the forward command)."""
    from autonomy.geometry import GRAVITY_MPS2

    m = EngagementMachine(cfg(fov_clamp_accel=True))
    tilt, vfov, margin = m.camera.mount.tilt_up_rad, m.camera.intrinsics.vfov_rad, m.cfg.fov_margin_rad
    vel, los = np.array([60.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0])
    lo, hi = tilt - (0.5 * vfov - margin), tilt + (0.5 * vfov - margin)   # level target: eps = 0

    def pitch(acc):
        f = acc - np.array([0.0, 0.0, GRAVITY_MPS2])
        return math.atan2(f[0], max(-f[2], 0.15 * GRAVITY_MPS2))

    ok = np.array([GRAVITY_MPS2 * math.tan(0.5 * (lo + hi)), 0.0, 0.0])    # mid-band pitch: untouched
    assert np.allclose(m._fov_keep(ok, vel, los), ok)
    for fwd in (0.0, 10.0, 25.0, 40.0):
        out = m._fov_keep(np.array([fwd, 0.0, -3.0]), vel, los)
        assert lo - 1e-6 <= pitch(out) <= hi + 1e-6
        assert out[1] == 0.0 and out[2] == -3.0


def test_standoff_braking_wins_over_the_fov_clamp():
    """Shadowing a target we may not engage, the braking to the stand-off must not be undone by the FOV clamp
    (it bounds the nose-up pitch, i.e. the braking): with the clamp on, the truth campaign flew into 13 of 125
    cued birds (unauthorized collisions) before this rule."""
    w = World(cfg(fov_keep=True, fov_clamp_accel=True))
    w.to_track()                                    # AWAIT_AUTHORIZATION, nothing authorized
    w.tgt = np.array([90.0, 0.0, -100.0])           # 90 m ahead, level; stand-off 60 m
    w.vel, w.tgt_vel = np.array([50.0, 0.0, 0.0]), np.zeros(3)
    out = w.step(tracks=[w.track()])
    los = np.array([1.0, 0.0, 0.0])
    assert out.state is State.AWAIT_AUTHORIZATION
    assert float(out.acc_cmd_ned_mps2 @ los) < -5.0                     # it brakes
    clamped = w.m._fov_keep(out.acc_cmd_ned_mps2, w.vel, los)
    assert float(clamped @ los) > float(out.acc_cmd_ned_mps2 @ los) + 5.0  # the clamp alone would not have


def test_fov_keeping_is_scheduled_by_range_and_target_size():
    """FOV keeping in TERMINAL only within fov_keep_range_m and for targets at most fov_keep_max_size_m across
    (size from the camera track: angular size x range)."""
    def terminal_acc(size_m: float, range_m: float, **kw) -> np.ndarray:
        w = World(cfg(fov_keep=True, fov_clamp_accel=True, **kw))
        w.to_terminal()
        w.tgt, w.vel, w.tgt_vel = np.array([range_m, 0.0, -100.0]), np.array([70.0, 0.0, 0.0]), np.zeros(3)
        out = w.step(tracks=[replace(w.track(), angular_size_rad=size_m / range_m)])
        assert out.state is State.TERMINAL
        return out.acc_cmd_ned_mps2

    free = terminal_acc(0.4, 80.0, fov_keep_terminal=False)
    assert not np.allclose(terminal_acc(0.4, 80.0), free)        # kept in view: slower than 70 m/s
    assert not np.allclose(terminal_acc(0.4, 80.0, fov_keep_max_size_m=1.0, fov_keep_range_m=300.0), free)
    assert np.allclose(terminal_acc(2.5, 80.0, fov_keep_max_size_m=1.0), terminal_acc(2.5, 80.0, fov_keep_terminal=False))
    assert np.allclose(terminal_acc(0.4, 400.0, fov_keep_range_m=300.0),
                       terminal_acc(0.4, 400.0, fov_keep_terminal=False))


def test_reassociation_refuses_a_track_of_implausible_size():
    """Issue 6, quick seed 0: the engaged 30 px target was deleted for one frame and the engagement took over a
    300 px ground-clutter "drone" track 0.2 rad away (angle gate only). The candidate must also have a plausible
    span at the estimated range and an angular size comparable with the lost track's."""
    w = World()
    w2 = World()
    for world in (w, w2):
        world.step(cmds=[world.auth(CUE_ID)])   # the ground track is authorized: a re-associated id stays terminal
        world.step()
        world.step(tracks=[world.track()])
        world.step(tracks=[world.track()])
        assert world.m.state is State.TERMINAL
    r = float(np.linalg.norm(w.tgt - w.pos))
    rel = (w.tgt - w.pos) / r
    side = np.cross(rel, [0.0, 0.0, 1.0])
    near = rel + 0.05 * side / np.linalg.norm(side)        # 0.05 rad off: inside the re-association gate
    clutter = replace(w.track(tid=28, direction=near * r), angular_size_rad=0.45)   # ~270 m across at 600 m
    out = w.step(tracks=[clutter])
    assert out.engaged_track_id != 28 and Reason.TRACK_REASSOCIATED not in out.reasons, w.m.decisions
    # twice the lost track's size (closing in) and 2.5 m across: taken over
    out = w2.step(tracks=[replace(w2.track(tid=12, direction=near * r), angular_size_rad=2 * 2.5 / r)])
    assert out.engaged_track_id == 12 and Reason.TRACK_REASSOCIATED in out.reasons and out.state is State.TERMINAL
    # a 4x jump in angular size is not the same object even when it could be a small target at that range
    w3 = World()
    w3.to_terminal()
    out = w3.step(tracks=[replace(w3.track(tid=13, direction=near * r), angular_size_rad=4 * 2.5 / r)])
    assert out.engaged_track_id == 5, w3.m.decisions


def test_acquisition_prefers_a_track_of_plausible_size_for_the_cued_range():
    """A confirmed "drone" track in the cue's direction whose span at the cued range is tens of metres (ground
    texture) loses to a real-size one even when it is closer to the cue direction; alone, it is taken (the cue's
    range may be wrong: a replayed real video with a synthetic cue)."""
    w = World()
    w.step()
    r = float(np.linalg.norm(w.tgt - w.pos))
    rel = (w.tgt - w.pos) / r
    side = np.cross(rel, [0.0, 0.0, 1.0])
    off = rel + 0.03 * side / np.linalg.norm(side)
    big = replace(w.track(tid=9), angular_size_rad=0.1, range_m=None)     # 60 m across at 600 m, on the cue
    real = w.track(tid=5, direction=off * r)                               # 2.5 m across, 0.03 rad off the cue
    out = w.step(tracks=[big, real])
    assert out.state is State.AWAIT_AUTHORIZATION and out.engaged_track_id == 5
    w = World()
    w.step()
    assert w.step(tracks=[big]).engaged_track_id == 9
    # without the span preference (infinite limit) the closer one to the cue direction wins
    w = World(cfg(max_target_span_m=math.inf))
    w.step()
    assert w.step(tracks=[big, real]).engaged_track_id == 9


@pytest.mark.parametrize("coast_s", [2.0, 0.0])
def test_coasting_track_is_flown_closed_loop_from_its_last_measurement(coast_s):
    """Issue 6: the target is not detected in the last ~1 s of a pass (it fills the image); the tracker coasts it
    with its last LOS rate, which held the PN command open loop and cost 1.2-1.5 m. From the last measurement
    (range x rate = relative velocity across the LOS) and our own velocity change since, the rate the law sees
    follows our manoeuvre: here we match the target's crossing velocity, so the true LOS rate is 0."""
    w = World(cfg(coast_propagate_max_s=coast_s), tgt=(150.0, 0.0, -100.0))
    w.tgt_vel = np.array([0.0, 10.0, 0.0])
    w.to_terminal()
    w.vel = np.array([50.0, 0.0, 0.0])

    def track(status):
        rel = w.tgt - w.pos
        r = float(np.linalg.norm(rel))
        vrel = w.tgt_vel - w.vel
        rate = (vrel - (vrel @ rel) / r * rel / r) / r
        return TargetTrack(5, w.t + 0.1, status, rel / r, rate, np.eye(3) * 1e-6, 2.5 / r, range_m=r, hits=20)

    def advance(dt=0.1):
        w.pos = w.pos + w.vel * dt
        w.tgt = w.tgt + w.tgt_vel * dt

    out = w.step(tracks=[track(TrackStatus.CONFIRMED)])
    assert out.state is State.TERMINAL and out.acc_cmd_ned_mps2[1] > 10.0   # PN turns after the crossing target
    frozen = track(TrackStatus.CONFIRMED)
    for _ in range(5):                      # coasting: we now fly the target's crossing speed (true rate 0)
        w.vel = np.array([50.0, 10.0, 0.0])
        advance()
        t_next = w.t + 0.1
        los = frozen.los_ned + frozen.los_rate_ned_radps * (t_next - frozen.t_s)
        coast = replace(frozen, t_s=t_next, status=TrackStatus.COASTING, los_ned=los / np.linalg.norm(los), misses=1)
        out = w.step(tracks=[coast])
    assert out.state is State.TERMINAL
    if coast_s > 0:
        assert abs(out.acc_cmd_ned_mps2[1]) < 2.0, out.acc_cmd_ned_mps2
    else:   # the tracker's frozen rate: the command stays (the behaviour before)
        assert out.acc_cmd_ned_mps2[1] > 10.0, out.acc_cmd_ned_mps2


def test_shadowing_before_authorization_holds_below_the_target():
    """Issue 6: waiting for authorization near a target, the stand-off braking pitches the nose up and the 45 deg
    up-tilted camera loses a target level with us (lockstep evasive-0 and bird_clutter-0: it left the bottom of the
    image from ~290 m and ~67 m on, so the track was confirmed late or coasted into TERMINAL). With
    ``shadow_below_rad`` the approach aims that far below the target within ``shadow_below_range_m`` until it is
    authorized, where a slow, level vehicle's camera sees it; the altitude floor still wins."""
    def aim_z(tgt, **kw) -> float:
        w = World(cfg(**kw))
        w.to_track()                                    # AWAIT_AUTHORIZATION, nothing authorized
        w.tgt, w.tgt_vel = np.array(tgt, dtype=float), np.zeros(3)
        out = w.step(tracks=[w.track()])
        assert out.state is State.AWAIT_AUTHORIZATION
        return float(out.aim_ned_m[2])

    below = math.radians(30.0)
    assert aim_z((150.0, 0.0, -200.0)) == pytest.approx(-200.0)                        # off: at its altitude
    assert aim_z((150.0, 0.0, -200.0), shadow_below_rad=below) == pytest.approx(-200.0 + 150.0 * math.tan(below))
    assert aim_z((600.0, 0.0, -200.0), shadow_below_rad=below) == pytest.approx(-200.0)  # beyond 250 m: off
    assert aim_z((150.0, 0.0, -40.0), shadow_below_rad=below) == pytest.approx(-20.0)    # floor (min_altitude_m)
    # authorized: homing as before (no aim point in TERMINAL)
    w = World(cfg(shadow_below_rad=below))
    w.to_terminal()
    w.tgt = np.array([150.0, 0.0, -200.0])
    out = w.step(tracks=[w.track()])
    assert out.state is State.TERMINAL and out.aim_ned_m is None


def test_control_lag_compensation_is_augmented_pn_far_out_and_steers_harder_close_in():
    """control_lag_s > 0 flies laws.lag_compensated_apn: far out (time-to-go ~ a minute) it is augmented PN; at
    ~1 s to go, with the 80 ms lag, its gain is ~1.2 x higher (Zarchan's optimal-guidance gain for that lag)."""
    def lateral(lag_s, tgt, own_vel):
        w = World(cfg(law="augmented_pn", control_lag_s=lag_s), tgt=tgt)
        w.vel = np.asarray(own_vel, dtype=float)
        w.tgt_vel = np.array([0.0, 2.0, 0.0])   # crossing slowly: the command stays under max_accel
        w.to_terminal()
        tr = w.track()
        r = np.linalg.norm(w.tgt - w.pos)
        u = (w.tgt - w.pos) / r
        v_rel = w.tgt_vel - w.vel
        tr = replace(tr, los_rate_ned_radps=(v_rel - (v_rel @ u) * u) / r)
        out = w.step(tracks=[tr])
        assert out.state is State.TERMINAL
        return float(out.acc_cmd_ned_mps2[1])
    far_apn, far_lag = lateral(0.0, (600.0, 0.0, -200.0), (0.0, 0.0, 0.0)), lateral(0.08, (600.0, 0.0, -200.0), (0, 0, 0))
    assert far_apn > 0.0 and abs(far_lag - far_apn) < 0.05 * far_apn
    near_apn, near_lag = lateral(0.0, (40.0, 0.0, -100.0), (40.0, 0, 0)), lateral(0.08, (40.0, 0.0, -100.0), (40.0, 0, 0))
    assert near_apn > 0.0 and near_lag > 1.1 * near_apn, (near_apn, near_lag)
    with pytest.raises(EngagementError):
        cfg(control_lag_s=-0.1)
