"""Vehicle logs for replay: the states, cues and operator commands of a recorded flight, on the log clock.

* ``.tlog`` (MAVLink telemetry log, PX4 or ArduPilot, as QGroundControl / MAVProxy / Mission Planner write
  it): read through the ordinary :class:`~autonomy.mavlink.Bridge` on a ``file:`` link, so the decoding is
  exactly the one used in flight (flavour, modes, LOCAL_POSITION_NED + ATTITUDE(_QUATERNION), cues from
  FOLLOW_TARGET / ADSB_VEHICLE, operator commands addressed to our component). Corrupt frames are counted
  drops (``LogData.bad_frames``), never an exception; the clock is the log's (Unix seconds).
* ``.ulg`` (PX4 ULog, needs the optional ``pyulog`` extra ``ulog``): ``vehicle_local_position`` (NED, m,
  m/s) and ``vehicle_attitude`` (quaternion w, x, y, z body FRD -> NED, the same convention as ours); the
  clock is PX4 boot time (s). A truncated ULog gives the states up to where it ends.

Every reader returns :class:`LogData` with states sorted by time and at least two of them, or raises
:class:`ReplayError` with one clear line (missing file, unknown format, no position in the log).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autonomy.geometry import quat_normalize, quat_slerp
from autonomy.types import Autopilot, OperatorCommand, TargetCue, VehicleState


class ReplayError(RuntimeError):
    """A log or video that cannot be replayed (one line: which file, what is wrong)."""


@dataclass
class LogData:
    """States (sorted, ``t_s`` on the log clock), ground cues and operator commands from one log."""

    path: str
    kind: str                                   # "tlog" | "ulog"
    states: list[VehicleState]
    cues: list[TargetCue] = field(default_factory=list)
    commands: list[OperatorCommand] = field(default_factory=list)
    autopilot: Autopilot = Autopilot.UNKNOWN
    bad_frames: int = 0                         # corrupt / undecodable records skipped
    notes: list[str] = field(default_factory=list)

    @property
    def t_first_s(self) -> float:
        return self.states[0].t_s

    @property
    def t_last_s(self) -> float:
        return self.states[-1].t_s

    def summary(self) -> dict:
        pos = np.array([s.pos_ned_m for s in self.states])
        return {"path": self.path, "kind": self.kind, "autopilot": self.autopilot.value,
                "states": len(self.states), "duration_s": round(self.t_last_s - self.t_first_s, 3),
                "cues": len(self.cues), "operator_commands": len(self.commands), "bad_frames": self.bad_frames,
                "extent_ned_m": {"min": pos.min(axis=0).round(2).tolist(), "max": pos.max(axis=0).round(2).tolist()},
                "notes": list(self.notes)}


def read_vehicle_log(path: str | Path) -> LogData:
    """The states/cues/commands of ``path`` (.tlog or .ulg); see the module docstring."""
    p = Path(path)
    if not p.is_file():
        raise ReplayError(f"log file not found: {p}")
    if p.stat().st_size == 0:
        raise ReplayError(f"log file is empty: {p}")
    suffix = p.suffix.lower()
    if suffix == ".tlog":
        data = _read_tlog(p)
    elif suffix == ".ulg":
        data = _read_ulog(p)
    else:
        raise ReplayError(f"{p}: unknown log format {suffix!r} (replay reads .tlog and .ulg)")
    if len(data.states) < 2:
        raise ReplayError(f"{p}: fewer than two vehicle states with position and attitude "
                          f"({len(data.states)}); is the local position estimate in the log?")
    return data


def _read_tlog(p: Path) -> LogData:
    from autonomy.mavlink import Bridge, BridgeConfig, LinkConfig
    from autonomy.mavlink.clock import ManualClock
    from autonomy.mavlink.errors import MavlinkError

    try:
        b = Bridge(BridgeConfig(LinkConfig(f"file:{p}")), clock=ManualClock())
    except MavlinkError as exc:
        raise ReplayError(f"{p}: cannot open as a MAVLink log: {exc}") from exc
    states: list[VehicleState] = []
    cues: list[TargetCue] = []
    cmds: list[OperatorCommand] = []
    t_seen = -np.inf
    try:
        while b.step():
            # the bridge reads the log in batches: walk the kinematic samples that arrived in this one
            for t in b.cache.history.kin.times_after(t_seen):
                s = b.state_at(float(t))
                if s is not None and np.all(np.isfinite(s.pos_ned_m)) and np.all(np.isfinite(s.q_body_to_ned)):
                    states.append(s)
                t_seen = float(t)
            cues += b.poll_cues()
            cmds += b.poll_operator_commands()
        stats = b.link.stats
        bad = int(stats.bad_data)
        autopilot = b.flavour.autopilot if b.flavour is not None else Autopilot.UNKNOWN
    finally:
        b.close()
    data = LogData(str(p), "tlog", states, cues, cmds, autopilot, bad)
    if bad:
        data.notes.append(f"{bad} corrupt MAVLink frames skipped")
    return data


def _read_ulog(p: Path) -> LogData:
    try:
        from pyulog import ULog
    except ImportError as exc:
        raise ReplayError("reading .ulg needs pyulog: pip install 'interceptor-autonomy[ulog]'") from exc
    try:
        ulog = ULog(str(p), ["vehicle_local_position", "vehicle_attitude"])
    except Exception as exc:  # pyulog raises bare Exceptions / struct errors on garbage
        raise ReplayError(f"{p}: not a readable ULog: {type(exc).__name__}: {exc}") from exc
    sets = {d.name: d.data for d in ulog.data_list if d.multi_id == 0}
    for need in ("vehicle_local_position", "vehicle_attitude"):
        if need not in sets:
            raise ReplayError(f"{p}: no {need} topic in the ULog")
    lp, att = sets["vehicle_local_position"], sets["vehicle_attitude"]
    t_lp = lp["timestamp"].astype(np.float64) * 1e-6
    t_att = att["timestamp"].astype(np.float64) * 1e-6
    pos = np.column_stack([lp["x"], lp["y"], lp["z"]]).astype(np.float64)
    vel = np.column_stack([lp["vx"], lp["vy"], lp["vz"]]).astype(np.float64)
    q = np.column_stack([att[f"q[{i}]"] for i in range(4)]).astype(np.float64)
    states = []
    for k in range(len(t_lp)):
        t = t_lp[k]
        if not (np.all(np.isfinite(pos[k])) and np.all(np.isfinite(vel[k]))) or t < t_att[0] or t > t_att[-1]:
            continue
        i = int(np.searchsorted(t_att, t, side="right"))
        i0, i1 = max(i - 1, 0), min(i, len(t_att) - 1)
        f = 0.0 if i1 == i0 else (t - t_att[i0]) / (t_att[i1] - t_att[i0])
        qk = quat_normalize(quat_slerp(q[i0], q[i1], float(f)))
        if not np.all(np.isfinite(qk)):
            continue
        states.append(VehicleState(t_s=float(t), pos_ned_m=pos[k], vel_ned_mps=vel[k], q_body_to_ned=qk,
                                   autopilot=Autopilot.PX4))
    data = LogData(str(p), "ulog", states, autopilot=Autopilot.PX4)
    dropped = len(t_lp) - len(states)
    if dropped:
        data.notes.append(f"{dropped} local-position samples without a finite position or attitude skipped")
    return data


CUE_COLUMNS = ("t_s", "n_m", "e_m", "d_m", "vn_mps", "ve_mps", "vd_mps", "pos_std_m")


def read_cues_csv(path: str | Path, t_log0_s: float, target_id: int = 1) -> list[TargetCue]:
    """Ground cues from a CSV (a radar track export, say), header ``t_s,n_m,e_m,d_m,vn_mps,ve_mps,vd_mps,pos_std_m``:
    ``t_s`` in seconds after the log's first state, position/velocity in the vehicle's local NED (m, m/s),
    ``pos_std_m`` 1 sigma. ReplayError (file and line) on a missing column or a non-finite value."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise ReplayError(f"cue file not found: {p}")
    with p.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ReplayError(f"{p}: no cues")
    missing = [c for c in CUE_COLUMNS if c not in rows[0]]
    if missing:
        raise ReplayError(f"{p}: missing columns {missing} (want {','.join(CUE_COLUMNS)})")
    cues = []
    for i, r in enumerate(rows, start=2):
        try:
            v = [float(r[c]) for c in CUE_COLUMNS]
        except (TypeError, ValueError) as exc:
            raise ReplayError(f"{p}:{i}: not a number: {exc}") from exc
        if not all(np.isfinite(v)) or v[7] <= 0:
            raise ReplayError(f"{p}:{i}: non-finite value or pos_std_m <= 0")
        cues.append(TargetCue(t_s=t_log0_s + v[0], target_id=target_id, pos_ned_m=np.array(v[1:4]),
                              vel_ned_mps=np.array(v[4:7]), pos_std_m=v[7], source="cue-file"))
    return sorted(cues, key=lambda c: c.t_s)

