"""Turn a guidance acceleration into the set-point each autopilot flavour accepts (AUTOPILOT_SPEC.md).

- PX4 OFFBOARD: SET_POSITION_TARGET_LOCAL_NED with acceleration only (velocity/position ignored) is the
  direct path for homing; we also send the velocity the command leads to as feed-forward when asked.
- ArduPilot GUIDED: acceleration alone is accepted from 4.1 but velocity + acceleration is the robust
  combination (position + acceleration without velocity is refused), so we send
  ``vel = v_now + a * lead_s`` with ``acc = a`` as feed-forward.
"""

from __future__ import annotations

import numpy as np

from autonomy.guidance.laws import GuidanceError, limit_speed
from autonomy.types import Autopilot, Setpoint, SetpointFrame


def to_setpoint(
    t_s: float,
    acc_ned_mps2: np.ndarray,
    own_vel_ned_mps: np.ndarray,
    autopilot: Autopilot,
    max_speed_mps: float,
    yaw_rad: float | None = None,
    lead_s: float = 0.5,
    with_velocity: bool | None = None,
) -> Setpoint:
    """Acceleration command (NED m/s^2) -> flavour-appropriate :class:`Setpoint` in LOCAL_NED.

    ``with_velocity`` None picks the flavour default (PX4: acceleration only; ArduPilot/unknown: velocity
    plus acceleration feed-forward). The velocity is limited to ``max_speed_mps``.
    """
    acc = np.asarray(acc_ned_mps2, dtype=np.float64)
    vel = np.asarray(own_vel_ned_mps, dtype=np.float64)
    if acc.shape != (3,) or vel.shape != (3,) or not (np.all(np.isfinite(acc)) and np.all(np.isfinite(vel))):
        raise GuidanceError("acceleration and velocity must be finite 3-vectors")
    if with_velocity is None:
        with_velocity = autopilot is not Autopilot.PX4
    vel_sp = limit_speed(vel + acc * lead_s, max_speed_mps) if with_velocity else None
    return Setpoint(t_s=t_s, vel_ned_mps=vel_sp, acc_ned_mps2=acc.copy(), yaw_rad=yaw_rad,
                    frame=SetpointFrame.LOCAL_NED)


def brake_setpoint(t_s: float, yaw_rad: float | None = None) -> Setpoint:
    """Stop and hold: zero velocity (both flavours accept a velocity-only set-point)."""
    return Setpoint(t_s=t_s, vel_ned_mps=np.zeros(3), yaw_rad=yaw_rad, frame=SetpointFrame.LOCAL_NED)
