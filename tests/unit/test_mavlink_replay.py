"""Replay of a real PX4 SITL offboard flight (shared/data/logs/px4_sih/flightA.tlog) through the bridge.

The timeline asserted here is the one in that folder's README (modes, EVENT texts, byte-wise params,
altitude, failsafe RTL and its recovery).
"""

from __future__ import annotations

import numpy as np
import pytest

from autonomy.mavlink.bridge import Bridge, BridgeConfig
from autonomy.mavlink.clock import ManualClock
from autonomy.mavlink.link import LinkConfig
from autonomy.types import Autopilot


@pytest.fixture(scope="module")
def replay(shared_data):
    path = shared_data / "logs" / "px4_sih" / "flightA.tlog"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    b = Bridge(BridgeConfig(LinkConfig(f"file:{path}")), clock=ManualClock())
    modes, armed, texts, states = [], [], [], []
    while True:
        n = b.step()
        if not n:
            break
        s = b.cache
        if s.flavour is not None and (not modes or modes[-1] != s.mode):
            modes.append(s.mode)
        if not armed or armed[-1] != s.armed:
            armed.append(s.armed)
        texts += b.poll_texts()
        st = b.state
        if st is not None:
            states.append(st)
    return b, modes, armed, texts, states


@pytest.mark.realdata
def test_replay_decodes_flavour_modes_and_arming(replay):
    b, modes, armed, _, _ = replay
    assert b.flavour.autopilot is Autopilot.PX4 and b.cache.vehicle == (1, 1)
    assert modes[:2] == ["AUTO.LOITER", "OFFBOARD"]
    assert "AUTO.RTL" in modes and "AUTO.LAND" in modes
    assert modes.index("AUTO.RTL") < modes.index("AUTO.LAND")
    assert modes[-1] == "OFFBOARD"  # after disarm PX4 reports the last user mode again (README 81.666)
    assert armed == [False, True, False]
    assert b.link.stats.bad_data == 0 and b.link.stats.received > 30000


@pytest.mark.realdata
def test_replay_decodes_px4_events(replay):
    _, _, _, texts, _ = replay
    events = [t.text for t in texts if t.event is not None]
    assert len(events) == 61
    for want in ("Armed by external command", "Takeoff detected", "Failsafe activated: switching to RTL",
                 "RTL: start return at 499 m (9 m above destination)", "Landing at current position",
                 "Landing detected", "Disarmed by landing"):
        assert want in events, want
    assert events.index("Takeoff detected") < events.index("Failsafe activated: switching to RTL")
    fs = next(t for t in texts if t.text.startswith("Failsafe"))
    assert fs.severity == 2  # critical
    assert not [t for t in texts if t.event is None]  # no STATUSTEXT on the onboard link


@pytest.mark.realdata
def test_replay_params_are_bytewise(replay):
    b, *_ = replay
    p = b.params.values
    assert p["MAV_SYS_ID"].value == 1 and isinstance(p["MAV_SYS_ID"].value, int)
    assert p["COM_OBL_RC_ACT"].value == 0 and p["COM_OF_LOSS_T"].value == pytest.approx(1.0)
    assert p["MPC_XY_VEL_MAX"].value == pytest.approx(12.0) and p["MPC_VEL_MANUAL"].value == pytest.approx(8.0)
    assert p["MPC_XY_VEL_MAX"].count == 885


@pytest.mark.realdata
def test_replay_state_history_and_origin(replay):
    b, _, _, _, states = replay
    z = np.array([s.pos_ned_m[2] for s in states])
    assert -10.3 < z.min() < -9.3                       # climbed to ~10 m
    xy = np.array([s.pos_ned_m[:2] for s in states])
    assert 14 < xy[:, 0].max() < 17 and 19 < xy[:, 1].max() < 22   # the square (README extents)
    lat, lon, _alt = b.cache.origin
    assert lat == pytest.approx(47.397742, abs=1e-3) and lon == pytest.approx(8.545594, abs=1e-3)
    # interpolation between two stored samples (the history keeps the newest 2048 kinematic samples)
    hist = b.cache.history
    t_mid = min(hist.kin.t_last_s, hist.att.t_last_s) - 1.0
    s = b.state_at(t_mid)
    assert s is not None and s.t_s == t_mid and np.isclose(np.linalg.norm(s.q_body_to_ned), 1.0)
    assert b.cache.dropped_nan == 0


@pytest.mark.realdata
def test_replay_duplicate_acks_and_autopilot_commands_tolerated(replay):
    b, *_ = replay
    # PX4's gimbal COMMAND_LONGs to 1/0 are broadcasts: ignored. The recorder's own three commands to the
    # autopilot (DO_SET_MODE, ARM, NAV_LAND; 1/191 -> 1/1) are addressed to another component: counted.
    assert b.counters.wrong_target == 3
    assert b.step_errors == 0
