"""Simulated PX4 and ArduPilot autopilots that speak MAVLink like the real ones (AUTOPILOT_SPEC.md).

In-process, lockstep::

    ap = Px4Autopilot(links=[UdpLink(14580, 14540)])
    ap.step(0.5)            # or ap.run_until(10.0)

As a process: ``autonomy sitl serve --autopilot px4|ardupilot [--speedup K]`` (see ``sitl/cli.py``).
"""

from sitl.autopilot.ardupilot import AP_MODES, ArduPilotAutopilot, ardupilot_config
from sitl.autopilot.base import Autopilot, SimConfig
from sitl.autopilot.links import SitlLinkError, TcpServerLink, UdpLink
from sitl.autopilot.params import PRESETS, ParamError
from sitl.autopilot.px4 import PX4_MODES, Px4Autopilot, px4_custom_mode, px4_mode_name
from sitl.autopilot.server import run_realtime

__all__ = [
    "AP_MODES", "PRESETS", "PX4_MODES", "ArduPilotAutopilot", "Autopilot", "ParamError", "Px4Autopilot",
    "SimConfig", "SitlLinkError", "TcpServerLink", "UdpLink", "ardupilot_config", "px4_custom_mode",
    "px4_mode_name", "run_realtime",
]
