"""The pose the pipeline pairs with a frame is the vehicle's pose when the frame was taken.

In the lockstep world a frame is rendered from the simulated autopilot's true state at ``world.t_s``, and the
pipeline asks the bridge for ``state_at(t_capture)``. The bridge maps autopilot time to its own clock from
TIMESYNC; the simulated PX4 answers TIMESYNC at its next 10 ms tick, so the round trip was lopsided and every
state was mapped 5 ms late: ``state_at`` gave the attitude of 5 ms earlier, 0.2-1.5 deg of line-of-sight error at
terminal body rates, which PN turned into command chatter (ClockMapper causality fixed it). Real sitl.World,
simulated PX4 over UDP on 127.0.0.1, the bridge's own clock mapping; the vehicle is thrown around by alternating
acceleration setpoints so that the body rates are large."""

from __future__ import annotations

import math

import numpy as np

from autonomy.geometry import quat_conjugate, quat_multiply
from autonomy.types import Setpoint
from sitl.scenarios import make_scenario
from sitl.world import World, WorldConfig


def _angle_deg(q0: np.ndarray, q1: np.ndarray) -> float:
    dq = quat_multiply(quat_conjugate(q0), q1)
    return 2.0 * math.degrees(math.acos(min(1.0, abs(float(dq[0])))))


def test_bridge_pose_at_capture_time_is_the_true_pose():
    with World(make_scenario("shahed_crossing", 0), WorldConfig(render_noise=False)) as world:
        world.start()
        for _ in range(50):                                 # climb off the ground for 2 s
            world.bridge.set_setpoint(Setpoint(t_s=world.t_s, vel_ned_mps=np.array([0.0, 0.0, -5.0])))
            world.advance_to(world.t_s + 0.04)
        errs_deg, rates_dps, pos_errs_m = [], [], []
        for k in range(60):                                 # 2.4 s of 25 Hz frames, commands flipping at 5 Hz
            a = 12.0 if (k // 5) % 2 == 0 else -12.0
            world.bridge.set_setpoint(Setpoint(t_s=world.t_s, vel_ned_mps=None,
                                               acc_ned_mps2=np.array([a, 0.5 * a, -3.0])))
            world.advance_to(world.t_s + 0.04)
            truth = world.ap.state                          # what the camera renders now
            st = world.bridge.state_at(world.t_s)           # what the pipeline pairs with it
            assert st is not None
            errs_deg.append(_angle_deg(truth.q_body_to_ned, st.q_body_to_ned))
            rates_dps.append(math.degrees(float(np.linalg.norm(truth.rate_body_radps))))
            pos_errs_m.append(float(np.linalg.norm(truth.pos_ned_m - st.pos_ned_m)))
        assert np.percentile(rates_dps, 90) > 60.0          # the vehicle is really rotating
        # exact up to the telemetry's float32 and 1 ms time stamps (5 ms late: p90 of about 1 deg here)
        assert max(errs_deg) < 0.1, (np.percentile(errs_deg, [50, 90, 100]), np.percentile(rates_dps, [50, 90]))
        assert max(pos_errs_m) < 0.05
