"""Pure parts of the bridge on a manual clock: streamer + dead-man watchdog, commander, history, clock map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.geometry import euler_to_quat, quat_to_euler
from autonomy.mavlink.clock import ClockMapper, ManualClock
from autonomy.mavlink.commander import Commander, MavResult
from autonomy.mavlink.errors import CommandError, SetpointError
from autonomy.mavlink.flavour import ArduPilotFlavour, Px4Flavour
from autonomy.mavlink.history import StateHistory
from autonomy.mavlink.streamer import SetpointStreamer, StreamAction, StreamerConfig
from autonomy.types import Setpoint


def run_streamer(st_: SetpointStreamer, clock: ManualClock, until_s: float, dt_s: float = 0.001):
    out = []
    while clock.now_s() < until_s:
        a, enc = st_.tick(clock.now_s())
        if a is not StreamAction.IDLE:
            out.append((clock.now_s(), a, enc))
        clock.advance(dt_s)
    return out


def test_streamer_keeps_rate_and_never_resends_a_stale_setpoint():
    clock = ManualClock()
    st_ = SetpointStreamer(Px4Flavour(), StreamerConfig(rate_hz=50, max_age_s=0.2, hand_back_after_s=1.0))
    st_.start()
    st_.set(Setpoint(t_s=0.0, vel_ned_mps=np.array([3.0, 0, 0])), clock.now_s())
    ev = run_streamer(st_, clock, 2.0)
    sends = [t for t, a, _ in ev if a is StreamAction.SEND]
    brakes = [(t, e) for t, a, e in ev if a is StreamAction.BRAKE]
    hand = [t for t, a, _ in ev if a is StreamAction.HAND_BACK]
    assert sends and max(sends) <= 0.2 + 1e-9                     # never sent once older than 0.2 s
    assert np.all(np.diff(sends) <= 0.021)                         # >= 50 Hz
    assert brakes[0][0] == pytest.approx(0.2, abs=0.021)
    assert all(e.vel_mps == (0.0, 0.0, 0.0) and e.type_mask == 3527 for _, e in brakes)
    assert np.all(np.diff([t for t, _ in brakes]) <= 0.021)        # braking keeps the rate
    assert hand == [pytest.approx(1.0, abs=0.021)] and not st_.active
    assert len(ev) == len(sends) + len(brakes) + 1                # nothing after the hand-back


def test_streamer_fresh_setpoint_ends_braking_and_invalid_is_refused():
    clock = ManualClock()
    st_ = SetpointStreamer(ArduPilotFlavour())
    st_.start()
    st_.set(Setpoint(t_s=0.0, vel_ned_mps=np.ones(3)), 0.0)
    run_streamer(st_, clock, 0.5)
    assert st_.braking
    st_.set(Setpoint(t_s=0.5, vel_ned_mps=np.zeros(3)), clock.now_s())
    ev = run_streamer(st_, clock, clock.now_s() + 0.021)        # sent at the next slot of the 50 Hz grid
    assert ev and all(a is StreamAction.SEND for _, a, _ in ev) and not st_.braking
    with pytest.raises(SetpointError):
        st_.set(Setpoint(t_s=0.5, vel_ned_mps=np.array([np.nan, 0, 0])), clock.now_s())
    with pytest.raises(ValueError):
        StreamerConfig(rate_hz=10)


def test_commander_ack_retry_timeout_and_duplicates():
    c = Commander()
    pc = c.begin(176, (1, 6, 0, 0, 0, 0, 0), now_s=0.0, timeout_s=0.5, retries=2)
    assert c.due_resends(0.4) == []
    assert c.due_resends(0.5) == [pc] and pc.confirmation == 1
    c.on_ack(176, 0, 0.6)
    c.on_ack(176, 0, 0.604)                      # PX4 acks DO_SET_MODE twice
    assert pc.done and pc.error is None and c.duplicate_acks == 1
    pc2 = c.begin(400, (1, 0, 0, 0, 0, 0, 0), now_s=1.0, timeout_s=0.5, retries=1)
    assert c.due_resends(1.5) == [pc2]
    assert c.due_resends(2.0) == [] and pc2.done
    with pytest.raises(CommandError) as ei:
        pc2.raise_if_failed()
    assert ei.value.result is None and ei.value.result_name == "NO_ACK"
    with pytest.raises(ValueError):
        c.begin(400, (1, 0), now_s=0.0)


@pytest.mark.parametrize("result", [r for r in MavResult if r not in (MavResult.ACCEPTED, MavResult.IN_PROGRESS)])
def test_every_refusal_is_a_typed_command_error(result):
    c = Commander()
    pc = c.begin(400, (1, 0, 0, 0, 0, 0, 0), now_s=0.0)
    c.on_ack(400, int(result), 0.01)
    with pytest.raises(CommandError) as ei:
        pc.raise_if_failed()
    assert ei.value.result == result and ei.value.result_name == result.name and ei.value.command == 400


def test_in_progress_extends_the_wait():
    c = Commander()
    pc = c.begin(22, (0,) * 7, now_s=0.0, timeout_s=0.5, retries=0)
    c.on_ack(22, int(MavResult.IN_PROGRESS), 0.4)
    assert c.due_resends(0.8) == [] and not pc.done
    c.on_ack(22, 0, 0.85)
    assert pc.done and pc.error is None


def test_history_interpolates_linear_and_slerp():
    h = StateHistory(capacity=8, max_extrapolation_s=0.1)
    q0, q1 = euler_to_quat(0, 0, 0.0), euler_to_quat(0, 0, 1.0)
    for i in range(30):  # wraps the ring several times
        t = i * 0.1
        h.add_kinematics(t, np.array([t, 2 * t, -t]), np.array([1.0, 2.0, -1.0]))
    h.add_attitude(2.0, q0, np.zeros(3))
    h.add_attitude(3.0, q1, np.zeros(3))
    pos, vel = h.kinematics_at(2.55)
    assert np.allclose(pos, [2.55, 5.1, -2.55]) and np.allclose(vel, [1, 2, -1])
    q, _ = h.attitude_at(2.25)
    assert quat_to_euler(q)[2] == pytest.approx(0.25, abs=1e-9)
    pos_ex, _ = h.kinematics_at(2.95)          # 0.05 s past the newest sample: constant velocity
    assert np.allclose(pos_ex, [2.95, 5.9, -2.95])
    assert h.kinematics_at(3.2) is None        # beyond the extrapolation limit
    assert h.kinematics_at(0.5) is None        # older than the ring keeps
    assert not h.add_kinematics(1.0, np.zeros(3), np.zeros(3))   # out of order: ignored


def test_history_extrapolates_attitude_with_body_rate():
    h = StateHistory(max_extrapolation_s=0.2)
    h.add_attitude(0.0, euler_to_quat(0, 0, 0), np.array([0, 0, 1.0]))
    q, _ = h.attitude_at(0.1)
    assert quat_to_euler(q)[2] == pytest.approx(0.1, abs=1e-9)


@settings(deadline=None)
@given(rate=st.floats(0.2, 20.0), offset=st.floats(-1e4, 1e4), rtt=st.floats(0.0, 0.02))
def test_clock_mapper_recovers_rate_and_offset(rate, offset, rtt):
    m = ClockMapper()
    for i in range(40):
        t_ap = 10.0 + i * 0.5
        t_mid = offset + t_ap / rate
        m.add_sync(t_mid - rtt / 2, t_mid + rtt / 2, t_ap)
    assert m.rate == pytest.approx(1.0 / rate, rel=1e-6)
    assert m.to_ours(100.0) == pytest.approx(offset + 100.0 / rate, abs=1e-6)
    assert m.to_autopilot(m.to_ours(55.0)) == pytest.approx(55.0, abs=1e-6)


def test_clock_mapper_keeps_messages_causal_when_the_timesync_reply_waits():
    """An autopilot that answers TIMESYNC at its next tick (stamp = the tick's start) and sends at the tick's end:
    the midpoint fit maps every message dt/2 late. Arrivals of state messages (which cannot arrive before they
    were stamped) pull the mapping back to the truth; a fit that is already causal is not moved."""
    dt = 0.01
    offset = 3.0   # truth: t_ours = t_autopilot + 3.0
    m = ClockMapper()
    for k in range(200):
        t_tick = 1.0 + k * dt                       # autopilot tick start
        if k % 50 == 0:                             # our request at the tick start, the reply one tick later
            m.add_sync(t_tick + offset, t_tick + dt + offset, t_tick)
        m.add_arrival(t_tick + dt + offset, t_tick + dt)   # telemetry stamped at the tick's end, no delay
    assert m.synced
    assert m.causal_shift_s == pytest.approx(-dt / 2, abs=1e-9)
    assert m.to_ours(2.0) == pytest.approx(2.0 + offset, abs=1e-9)
    assert m.to_autopilot(5.0) == pytest.approx(2.0, abs=1e-9)

    honest = ClockMapper()
    for k in range(200):
        t = 1.0 + k * dt
        if k % 50 == 0:
            honest.add_sync(t + offset - 0.001, t + offset + 0.001, t)
        honest.add_arrival(t + offset + 0.004, t)   # transport delay: later than the stamp, as it must be
    assert honest.causal_shift_s == 0.0
    assert honest.to_ours(2.0) == pytest.approx(2.0 + offset, abs=1e-9)


def test_clock_mapper_rejects_slow_round_trips_and_uses_arrivals_first():
    m = ClockMapper(max_rtt_s=0.05)
    m.add_arrival(10.3, 0.2)
    m.add_arrival(10.25, 0.2)  # a faster arrival lowers the offset estimate
    assert m.to_ours(1.0) == pytest.approx(11.05)
    assert not m.add_sync(0.0, 0.5, 1.0) and not m.synced
