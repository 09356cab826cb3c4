"""Interim `make demo` (`autonomy demo --out out/demo`): fly the simulated PX4 through a short offboard pattern.

The simulated PX4 runs in-process on free 127.0.0.1 UDP ports, in its own thread against the wall clock
(``--speedup``, default 5x) or, with ``--lockstep``, stepped by this script. A small raw pymavlink client
(sysid 1 / compid 191, the companion's identity) streams set-points, switches to OFFBOARD, arms, climbs to
10 m, flies a 5 m/s velocity square, holds a position, lands and waits for the auto-disarm. It prints what
happened and writes ``summary.json``. Exit 0 when every phase succeeded.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import threading
import time
from pathlib import Path

from autonomy.mavlink.wire import dialect as D
from autonomy.mavlink.wire import mavutil
from sitl.autopilot import Px4Autopilot, SimConfig, UdpLink, px4_mode_name, run_realtime

VEL_ONLY, POS_ONLY = 3527, 3576


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoError(RuntimeError):
    """A demo phase did not complete."""


class Demo:
    def __init__(self, speedup: float, lockstep: bool, seed: int) -> None:
        self.lp, self.rp = _free_udp_port(), _free_udp_port()
        self.client = mavutil.mavlink_connection(f"udpin:127.0.0.1:{self.rp}", source_system=1,
                                                 source_component=191)
        self.link = UdpLink(self.lp, self.rp)
        self.ap = Px4Autopilot(SimConfig(seed=seed), {}, [self.link])
        self.lockstep, self.speedup = lockstep, speedup
        self._stop = False
        self._thread: threading.Thread | None = None
        self.sp: dict | None = None
        self._next_sp_wall = 0.0
        self._next_sp_sim = 0.0
        self.modes: list[dict] = []
        self.acks: list[dict] = []
        self.pos_ned_m = (math.nan, math.nan, math.nan)
        self.vel_ned_mps = (0.0, 0.0, 0.0)
        self.hb = None
        self.max_speed_mps = 0.0
        self.n_msgs = 0

    # ------------------------------------------------------------------ plumbing
    def start(self) -> None:
        if not self.lockstep:
            self._thread = threading.Thread(
                target=run_realtime, args=(self.ap, self.speedup, None, lambda: self._stop), daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.client.close()
        self.link.close()

    @property
    def t_s(self) -> float:
        return self.ap.t_s

    def _drain(self) -> None:
        while True:
            m = self.client.recv_match(blocking=False)
            if m is None:
                return
            self.n_msgs += 1
            mt = m.get_type()
            if mt == "HEARTBEAT" and m.autopilot == D.MAV_AUTOPILOT_PX4:
                self.hb = m
                name = px4_mode_name(m.custom_mode) or f"custom {m.custom_mode}"
                armed = bool(m.base_mode & D.MAV_MODE_FLAG_SAFETY_ARMED)
                if not self.modes or (self.modes[-1]["mode"], self.modes[-1]["armed"]) != (name, armed):
                    self.modes.append({"t_s": round(self.t_s, 2), "mode": name,
                                       "armed": armed, "system_status": m.system_status})
                    print(f"  [{self.t_s:6.2f} s] HEARTBEAT mode {name:12s} {'ARMED' if armed else 'disarmed'}"
                          f" status {m.system_status}")
            elif mt == "LOCAL_POSITION_NED":
                self.pos_ned_m = (m.x, m.y, m.z)
                self.vel_ned_mps = (m.vx, m.vy, m.vz)
                self.max_speed_mps = max(self.max_speed_mps, math.hypot(m.vx, m.vy))
            elif mt == "COMMAND_ACK":
                self.acks.append({"t_s": round(self.t_s, 3), "command": m.command, "result": m.result})

    def _send_sp(self) -> None:
        sp = self.sp
        if sp is None:
            return
        pos, vel = sp.get("pos", (0, 0, 0)), sp.get("vel", (0, 0, 0))
        self.client.mav.set_position_target_local_ned_send(0, 1, 1, D.MAV_FRAME_LOCAL_NED, sp["mask"], *pos, *vel,
                                                           0, 0, 0, 0, 0)

    def run_for(self, sim_s: float, until=None) -> bool:
        """Advance ``sim_s`` simulated seconds, streaming the set-point; stop early when ``until()`` holds."""
        end = self.t_s + sim_s
        wall_limit = time.monotonic() + sim_s / (self.speedup if not self.lockstep else 1e9) + 5.0
        while self.t_s < end:
            if self.lockstep:
                if self.t_s >= self._next_sp_sim - 1e-9:
                    self._send_sp()
                    self._next_sp_sim = self.t_s + 0.05
                self.ap.step(0.01)
            else:
                now = time.monotonic()
                if now >= self._next_sp_wall:
                    self._send_sp()
                    self._next_sp_wall = now + 0.02
                if now > wall_limit:
                    raise DemoError("simulator thread is not advancing")
                time.sleep(0.004)
            self._drain()
            if until is not None and until():
                return True
        return False

    def command(self, cmd: int, *p: float, expect: int = 2 ** 31) -> list[int]:
        n0 = len(self.acks)
        self.client.mav.command_long_send(1, 1, cmd, 0, *(list(p) + [0.0] * (7 - len(p))))
        self.run_for(0.3)
        results = [a["result"] for a in self.acks[n0:] if a["command"] == cmd]
        print(f"  [{self.t_s:6.2f} s] COMMAND {cmd} -> results {results}")
        return results

    # ------------------------------------------------------------------ the flight
    def fly(self) -> dict:
        phases: dict[str, dict] = {}
        errors: list[str] = []
        if not self.run_for(15.0, lambda: self.hb is not None and self.hb.system_status == D.MAV_STATE_STANDBY):
            raise DemoError("no HEARTBEAT with system_status STANDBY within 15 s")
        print(f"  [{self.t_s:6.2f} s] vehicle ready (PX4, sysid {self.hb.get_srcSystem()})")
        self.sp = {"mask": VEL_ONLY, "vel": (0, 0, 0)}
        self.run_for(1.5)
        if self.command(D.MAV_CMD_DO_SET_MODE, 1, 6, 0) != [0, 0]:
            errors.append("OFFBOARD not accepted twice")
        if self.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1) != [0]:
            raise DemoError("arming refused")
        # climb
        self.sp = {"mask": POS_ONLY, "pos": (0.0, 0.0, -10.0)}
        t0 = self.t_s
        if not self.run_for(25.0, lambda: self.pos_ned_m[2] < -9.7):
            raise DemoError(f"climb to 10 m did not finish (z={self.pos_ned_m[2]:.2f})")
        phases["climb"] = {"duration_s": round(self.t_s - t0, 2), "pos_ned_m": _r(self.pos_ned_m)}
        print(f"  [{self.t_s:6.2f} s] at 10 m after {self.t_s - t0:.1f} s")
        self.sp = {"mask": VEL_ONLY, "vel": (0, 0, 0)}
        self.run_for(1.5)
        corners = [_r(self.pos_ned_m)]
        for vel in ((5, 0, 0), (0, 5, 0), (-5, 0, 0), (0, -5, 0)):
            self.sp = {"mask": VEL_ONLY, "vel": vel}
            self.run_for(4.0)
            corners.append(_r(self.pos_ned_m))
            print(f"  [{self.t_s:6.2f} s] leg v={vel} m/s -> pos {corners[-1]} m")
        phases["square"] = {"corners_ned_m": corners, "max_speed_mps": round(self.max_speed_mps, 2)}
        legs = [math.dist(corners[i][:2], corners[i + 1][:2]) for i in range(4)]
        if min(legs) < 14.0:
            errors.append(f"square legs too short: {legs}")
        # position hold
        target = (0.0, 0.0, -10.0)
        self.sp = {"mask": POS_ONLY, "pos": target}
        self.run_for(10.0)
        err = math.dist(self.pos_ned_m, target)
        phases["hold"] = {"target_ned_m": target, "pos_ned_m": _r(self.pos_ned_m), "error_m": round(err, 3)}
        print(f"  [{self.t_s:6.2f} s] position hold error {err:.2f} m")
        if err > 0.5:
            errors.append(f"position hold error {err:.2f} m")
        # land
        if self.command(D.MAV_CMD_NAV_LAND) != [0]:
            errors.append("NAV_LAND refused")
        self.sp = None
        t0 = self.t_s
        disarmed = self.run_for(40.0, lambda: self.hb is not None and
                                not (self.hb.base_mode & D.MAV_MODE_FLAG_SAFETY_ARMED))
        phases["land"] = {"duration_s": round(self.t_s - t0, 2), "pos_ned_m": _r(self.pos_ned_m),
                          "disarmed": disarmed}
        if not disarmed:
            errors.append("no auto-disarm after landing")
        print(f"  [{self.t_s:6.2f} s] landed at {_r(self.pos_ned_m)}, disarmed={disarmed}")
        return {"phases": phases, "errors": errors}


def _r(v) -> list[float]:
    return [round(float(c), 2) for c in v]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="autonomy demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("out/demo"))
    ap.add_argument("--speedup", type=float, default=5.0)
    ap.add_argument("--lockstep", action="store_true", help="step the simulator from this script")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.speedup > 0:
        print("autonomy demo: --speedup must be > 0", file=sys.stderr)
        return 2
    wall0 = time.monotonic()
    demo = Demo(args.speedup, args.lockstep, args.seed)
    print(f"simulated PX4 on udp 127.0.0.1:{demo.lp} -> 127.0.0.1:{demo.rp} "
          f"({'lockstep' if args.lockstep else f'real time x{args.speedup:g}'})")
    summary: dict = {"autopilot": "px4 (simulated)", "lockstep": args.lockstep, "speedup": args.speedup}
    try:
        demo.start()
        summary.update(demo.fly())
    except DemoError as e:
        summary.setdefault("errors", []).append(str(e))
        print(f"demo failed: {e}", file=sys.stderr)
    finally:
        demo.close()
    summary.update({
        "modes": demo.modes, "acks": demo.acks, "sim_time_s": round(demo.t_s, 2),
        "wall_time_s": round(time.monotonic() - wall0, 2), "messages_received": demo.n_msgs,
        "link": {"rx_bad": demo.link.stats.rx_bad, "rx_msgs": demo.link.stats.rx_msgs},
        "ok": not summary.get("errors"),
    })
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"modes: {' -> '.join(m['mode'] + ('*' if m['armed'] else '') for m in demo.modes)}  (* = armed)")
    print(f"{'OK' if summary['ok'] else 'FAILED'}: {summary['sim_time_s']} s simulated in "
          f"{summary['wall_time_s']} s; {demo.n_msgs} MAVLink messages; summary in {args.out / 'summary.json'}")
    for e in summary.get("errors", []):
        print(f"  error: {e}")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
