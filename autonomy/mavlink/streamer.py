"""Setpoint streamer with a dead-man watchdog (pure logic: time in, decision out; no I/O).

The autopilots need a continuous stream (PX4 OFFBOARD fails safe 1 s after the last setpoint, ArduPilot
GUIDED keeps the last velocity for GUID_TIMEOUT = 3 s; AUTOPILOT_SPEC section 6). The streamer re-sends the
newest setpoint at ``rate_hz`` (>= 20 Hz) but only while it is fresh:

- age <= ``max_age_s`` (default 0.2 s): send it.
- ``max_age_s`` < age <= ``hand_back_after_s``: our pipeline has stalled. The stale setpoint is NEVER re-sent;
  a zero-velocity LOCAL_NED setpoint is sent instead (brake and hold).
- age > ``hand_back_after_s``: hand control back to the autopilot (PX4 AUTO.LOITER, ArduPilot LOITER) and
  stop streaming.

Age is measured on the bridge clock from the ``set()`` call that delivered the setpoint.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from autonomy.mavlink.flavour import EncodedSetpoint, Flavour
from autonomy.types import Setpoint


class StreamAction(enum.Enum):
    IDLE = "idle"            # not streaming, or not due yet
    SEND = "send"            # send the fresh setpoint
    BRAKE = "brake"          # send the zero-velocity hold
    HAND_BACK = "hand_back"  # switch to the hand-back mode; streaming stops


@dataclass(frozen=True)
class StreamerConfig:
    rate_hz: float = 50.0
    max_age_s: float = 0.2
    hand_back_after_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.rate_hz >= 20.0:
            raise ValueError(f"setpoint rate must be >= 20 Hz, got {self.rate_hz}")
        if not 0.0 < self.max_age_s < self.hand_back_after_s:
            raise ValueError("need 0 < max_age_s < hand_back_after_s")


class SetpointStreamer:
    def __init__(self, flavour: Flavour, config: StreamerConfig = StreamerConfig()) -> None:
        self.flavour = flavour
        self.config = config
        self.active = False
        self._encoded: EncodedSetpoint | None = None
        self._t_set_s = -np.inf
        self._t_sent_s = -np.inf
        self._t_due_s = -np.inf
        self.brake = flavour.encode_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.zeros(3)))
        self.braking = False
        self.sent = 0
        self.brakes_sent = 0

    def set(self, sp: Setpoint, now_s: float) -> EncodedSetpoint:
        """Validate and store the newest setpoint (raises SetpointError before anything is sent)."""
        enc = self.flavour.encode_setpoint(sp)
        self._encoded, self._t_set_s = enc, now_s
        self.braking = False
        return enc

    def start(self) -> None:
        self.active = True
        self._t_sent_s = -np.inf
        self._t_due_s = -np.inf

    def stop(self) -> None:
        self.active = False

    def age_s(self, now_s: float) -> float:
        return now_s - self._t_set_s

    def tick(self, now_s: float) -> tuple[StreamAction, EncodedSetpoint | None]:
        """What to do at ``now_s``: (action, message fields to send or None)."""
        if not self.active or now_s < self._t_due_s:
            return StreamAction.IDLE, None
        # next slot on a fixed grid (no drift from loop jitter), but never a burst after a pause
        period = 1.0 / self.config.rate_hz
        grid = self._t_due_s + period if np.isfinite(self._t_due_s) else now_s + period
        self._t_due_s = max(grid, now_s + 0.5 * period)
        age = self.age_s(now_s)
        if self._encoded is not None and age <= self.config.max_age_s:
            self._t_sent_s = now_s
            self.sent += 1
            return StreamAction.SEND, self._encoded
        if self._encoded is None or age <= self.config.hand_back_after_s:
            # no setpoint yet (pre-stream before the mode switch) or a stalled pipeline: hold still
            self._t_sent_s = now_s
            self.braking = self._encoded is not None
            self.brakes_sent += 1
            return StreamAction.BRAKE, self.brake
        self.active = False
        return StreamAction.HAND_BACK, None
