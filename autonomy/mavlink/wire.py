"""The single import point of pymavlink for the whole project (DESIGN.md: one package imports pymavlink).

Other code in ``autonomy.mavlink`` and the simulated autopilots in ``sitl/`` take the dialect and the
connection helpers from here, so that the dialect choice (MAVLink 2, ``common`` plus ArduPilot and PX4
extensions) is made once.
"""

from __future__ import annotations

import os

os.environ.setdefault("MAVLINK20", "1")  # MAVLink 2 framing for every connection we open

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as dialect

__all__ = ["dialect", "mavutil"]
