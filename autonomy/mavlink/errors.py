"""Exceptions of the MAVLink room: one base, one type per concern (DESIGN.md section 4)."""

from __future__ import annotations


class MavlinkError(Exception):
    """Base of every error raised by ``autonomy.mavlink``."""


class LinkError(MavlinkError):
    """The transport cannot be opened or has gone away (port unreachable, device missing, timeout)."""


class CommandError(MavlinkError):
    """A COMMAND_LONG/COMMAND_INT was refused or never acknowledged.

    ``result`` is the MAV_RESULT code (None when no ACK arrived before the timeout), ``result_name`` its name.
    """

    def __init__(self, message: str, *, command: int, result: int | None, result_name: str) -> None:
        super().__init__(message)
        self.command = command
        self.result = result
        self.result_name = result_name


class SetpointError(MavlinkError):
    """A setpoint the target autopilot would reject (AUTOPILOT_SPEC.md sections 5 and 12) or non-finite."""


class ParamError(MavlinkError):
    """A parameter could not be read or written (unknown name, type mismatch, timeout, no echo)."""
