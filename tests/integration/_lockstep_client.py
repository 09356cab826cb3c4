"""A raw pymavlink client driving a simulated autopilot in lockstep (shared by the PX4 and ArduPilot tests).

The test advances simulated time in 10 ms physics ticks, drains the client socket after every tick so that
nothing is lost in the kernel buffers, and remembers what arrived together with the simulated time.
"""

from __future__ import annotations

VEL_ONLY = 3527
POS_ONLY = 3576


class LockstepClient:
    def __init__(self, ap, link, conn) -> None:
        self.ap, self.link, self.c = ap, link, conn
        self.msgs: list = []          # (t_s, msg)
        self.sp: dict | None = None   # periodic set-point (kwargs of send_sp) sent at 20 Hz
        self._next_sp = 0.0
        self.step(0.05)

    def close(self) -> None:
        self.c.close()
        self.link.close()

    def drain(self) -> None:
        while True:
            m = self.c.recv_match(blocking=False)
            if m is None:
                return
            if m.get_type() != "BAD_DATA":
                self.msgs.append((self.ap.t_s, m))

    def send_sp(self, frame: int = 1, mask: int = VEL_ONLY, pos=(0, 0, 0), vel=(0, 0, 0), acc=(0, 0, 0),
                yaw: float = 0.0, yaw_rate: float = 0.0, target=(1, 1)) -> None:
        self.c.mav.set_position_target_local_ned_send(0, target[0], target[1], frame, mask, *pos, *vel, *acc, yaw,
                                                      yaw_rate)

    def before_tick(self) -> None:
        """Hook for what the client sends on its own schedule (e.g. a GCS heartbeat)."""

    def step(self, t_s: float) -> None:
        end = self.ap.t_s + t_s
        while self.ap.t_s < end - 1e-9:
            if self.sp is not None and self.ap.t_s >= self._next_sp - 1e-9:
                self.send_sp(**self.sp)
                self._next_sp = self.ap.t_s + 0.05
            self.before_tick()
            self.ap.step(0.01)
            self.drain()

    def stream(self, **sp) -> None:
        self.sp = sp
        self._next_sp = self.ap.t_s

    def stop_stream(self) -> None:
        self.sp = None

    def command(self, cmd: int, *p: float, target=(1, 1), wait_s: float = 0.1) -> list:
        n0 = len(self.msgs)
        self.c.mav.command_long_send(target[0], target[1], cmd, 0, *(list(p) + [0.0] * (7 - len(p))))
        self.step(wait_s)
        return [m for _, m in self.msgs[n0:] if m.get_type() == "COMMAND_ACK" and m.command == cmd]

    def since(self, t0: float, mtype: str) -> list:
        return [m for t, m in self.msgs if t >= t0 and m.get_type() == mtype]

    def last(self, mtype: str):
        for _, m in reversed(self.msgs):
            if m.get_type() == mtype:
                return m
        return None
