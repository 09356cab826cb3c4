"""Replay a recorded flight: what would the stack have done? (DESIGN.md section 3, ``replay/``).

:mod:`autonomy.replay.logs` reads the vehicle's states, ground cues and operator commands from an autopilot
log (.tlog through the MAVLink bridge, .ulg through pyulog); :mod:`autonomy.replay.run` runs the ordinary
pipeline on the log clock over the recorded video; :mod:`autonomy.replay.report` writes what it did
(summary, decisions, plots, annotated video). ``autonomy replay`` is :mod:`autonomy.replay.cli`.
"""

from autonomy.replay.logs import LogData, ReplayError, read_vehicle_log

__all__ = ["LogData", "ReplayError", "read_vehicle_log"]
