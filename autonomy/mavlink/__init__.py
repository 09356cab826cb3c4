"""autonomy.mavlink: the bridge to PX4 / ArduPilot (the only room that imports pymavlink, via ``wire``).

Typical use (companion on PX4 SITL's onboard link)::

    from autonomy.mavlink import Bridge, BridgeConfig, LinkConfig
    with Bridge(BridgeConfig(LinkConfig("udpin:127.0.0.1:14540"))) as b:
        b.start(); b.connect(timeout_s=10)
        b.engage(); b.arm(); b.takeoff(5.0, wait_s=20)
        b.set_setpoint(Setpoint(t_s=..., vel_ned_mps=np.array([2.0, 0, 0])))  # keep calling at >= 5 Hz
        b.land()
"""

from autonomy.mavlink.bridge import AutopilotText, Bridge, BridgeConfig, Control
from autonomy.mavlink.clock import Clock, ClockMapper, ManualClock, MonotonicClock
from autonomy.mavlink.commander import MavResult
from autonomy.mavlink.errors import CommandError, LinkError, MavlinkError, ParamError, SetpointError
from autonomy.mavlink.flavour import ArduPilotFlavour, Flavour, Px4Flavour, flavour_for
from autonomy.mavlink.link import Link, LinkConfig, load_signing_key
from autonomy.mavlink.streamer import StreamerConfig

__all__ = [
    "ArduPilotFlavour", "AutopilotText", "Bridge", "BridgeConfig", "Clock", "ClockMapper", "CommandError",
    "Control", "Flavour", "Link", "LinkConfig", "LinkError", "ManualClock", "MavResult", "MavlinkError",
    "MonotonicClock", "ParamError", "Px4Flavour", "SetpointError", "StreamerConfig", "flavour_for",
    "load_signing_key",
]
