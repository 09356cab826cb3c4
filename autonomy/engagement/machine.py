"""Engagement state machine: cue -> midcourse -> acquisition -> track -> authorization -> terminal homing.

::

    IDLE -> MIDCOURSE -> ACQUIRE -> TRACK -> AWAIT_AUTHORIZATION -> TERMINAL -> DONE
                                       \\________(authorized)________/      \\-> MISS -> REATTACK -> TERMINAL
    any active state -> ABORT -> HOLD -> RTL           (ABORT always wins; RETURN -> RTL)

Inputs arrive as the shared value types (``autonomy.types``); the MAVLink mapping lives in the bridge,
``autonomy/mavlink/ground.py`` (its module docstring is the reference for units and frames):

- ground cue :class:`TargetCue` <- FOLLOW_TARGET (144; ``custom_state`` = ground track id, position_cov ->
  ``pos_std_m``) or ADSB_VEHICLE (246; ICAO address = track id), converted to our local NED;
- operator command :class:`OperatorCommand` <- COMMAND_LONG / COMMAND_INT MAV_CMD_USER_1 (31010) addressed to
  our sysid/compid: param1 kind (1 AUTHORIZE, 2 DENY, 3 ABORT, 4 RETURN), param2 track id, param3 validity
  (s); the bridge ACKs it (COMMAND_ACK) and marks ``signed``; this machine refuses unsigned ones when
  ``require_signed_commands`` is set (the bridge also DENIES them when signing is configured);
- camera tracks :class:`TargetTrack` from the tracker (or the campaign's truth perception). Each :meth:`EngagementMachine.step` returns an :class:`EngagementOutput`: a set-point (or a brake /
RTL request), the state, and the reasons of the transitions taken in that step. Every transition, and every
refused command, is appended to :attr:`EngagementMachine.decisions` as a :class:`DecisionRecord`.

Authorization is bound to one track: the operator names the camera track id, or the ground track id of the
cue the camera track was handed over from (the engagement associates them when the track's line of sight
agrees with the cue). It expires after ``min(valid_for_s, max_authorization_s)``. DENY withdraws it.

The machine holds state; every computation it does is a pure function from :mod:`autonomy.guidance` or
:mod:`autonomy.engagement.gates`. Time comes in with each step (``t_s``); there is no clock inside.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

from autonomy.camera.model import Camera
from autonomy.engagement import gates
from autonomy.engagement.config import EngagementConfig
from autonomy.geometry import los_angle_rad
from autonomy.guidance import laws
from autonomy.guidance.setpoint import brake_setpoint, to_setpoint
from autonomy.types import (
    Autopilot,
    OperatorCommand,
    OperatorCommandKind,
    Setpoint,
    TargetCue,
    TargetTrack,
    TrackStatus,
    VehicleState,
)


class State(enum.Enum):
    IDLE = "idle"
    MIDCOURSE = "midcourse"
    ACQUIRE = "acquire"
    TRACK = "track"
    AWAIT_AUTHORIZATION = "await_authorization"
    TERMINAL = "terminal"
    MISS = "miss"
    REATTACK = "reattack"
    DONE = "done"
    ABORT = "abort"
    HOLD = "hold"
    RTL = "rtl"


FINAL_STATES = frozenset({State.ABORT, State.HOLD, State.RTL, State.DONE})
CAMERA_STATES = frozenset({State.ACQUIRE, State.TRACK, State.AWAIT_AUTHORIZATION, State.TERMINAL, State.REATTACK})


class Reason(enum.Enum):
    CUE_RECEIVED = "cue_received"
    CUE_IN_SENSOR_RANGE = "cue_in_sensor_range"
    CUE_OUT_OF_SENSOR_RANGE = "cue_out_of_sensor_range"
    CUE_LOST = "cue_lost"
    TRACK_CONFIRMED = "track_confirmed"
    AUTHORIZATION_REQUIRED = "authorization_required"
    AUTHORIZED = "authorized"
    AUTHORIZATION_EXPIRED = "authorization_expired"
    DENIED = "denied"
    NO_ENGAGE_ZONE = "no_engage_zone"
    TARGET_NOT_AERIAL = "target_not_aerial"
    CONFUSER_CLASS = "confuser_class"
    TRACK_LOST = "track_lost"
    PASSED_TARGET = "passed_target"
    REATTACK_STARTED = "reattack_started"
    REATTACK_READY = "reattack_ready"
    REATTACK_LIMIT = "reattack_limit"
    IMPACT = "impact"
    OPERATOR_ABORT = "operator_abort"
    OPERATOR_RETURN = "operator_return"
    GEOFENCE = "geofence"
    MAX_ENGAGEMENT_TIME = "max_engagement_time"
    LINK_LOST = "link_lost"
    PIPELINE_STALL = "pipeline_stall"
    BRAKING = "braking"
    HOLD_TIMEOUT = "hold_timeout"
    UNSIGNED_COMMAND_REFUSED = "unsigned_command_refused"
    TRACK_REASSOCIATED = "track_reassociated"
    TRACK_DISAGREES_WITH_CUE = "track_disagrees_with_cue"
    COMMAND_IGNORED = "command_ignored"


@dataclass(frozen=True)
class DecisionRecord:
    """One logged decision: a transition (``from_state != to_state``) or a refused/ignored command."""

    t_s: float
    from_state: State
    to_state: State
    reason: Reason
    details: str = ""


@dataclass(frozen=True)
class EngagementInput:
    """Everything one step needs. ``cue`` is the latest ground report (may be old; its ``t_s`` says when);
    ``tracks`` the tracker's output for the latest frame; ``commands`` the operator commands received since
    the last step; ``last_link_rx_t_s`` when the ground link was last heard; ``last_frame_t_s`` when the
    perception pipeline last delivered a frame; ``impact`` an impact detection (IMU shock / simulator)."""

    t_s: float
    vehicle: VehicleState
    cue: TargetCue | None = None
    tracks: tuple[TargetTrack, ...] = ()
    commands: tuple[OperatorCommand, ...] = ()
    last_link_rx_t_s: float | None = None
    last_frame_t_s: float | None = None
    impact: bool = False


@dataclass(frozen=True)
class EngagementOutput:
    t_s: float
    state: State
    setpoint: Setpoint | None
    brake: bool = False
    rtl: bool = False
    reasons: tuple[Reason, ...] = ()
    engaged_track_id: int | None = None
    acc_cmd_ned_mps2: np.ndarray | None = None
    aim_ned_m: np.ndarray | None = None


@dataclass
class _Authorization:
    track_id: int
    expires_t_s: float


@dataclass
class _Target:
    """Best current estimate of the engaged target (NED, our frame)."""

    pos_ned_m: np.ndarray | None = None
    vel_ned_mps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    acc_ned_mps2: np.ndarray = field(default_factory=lambda: np.zeros(3))
    t_s: float = -math.inf


@dataclass
class _LaggedAcceleration:
    """Our achieved kinematic acceleration (NED m/s^2) modelled as a first-order lag of the commands we sent
    (command minus the drag feed-forward): the ``a_M`` of :func:`laws.lag_compensated_apn`. A model, not a
    measurement: the autopilot's velocity differentiated over a frame is noisier and later than this."""

    acc_ned_mps2: np.ndarray = field(default_factory=lambda: np.zeros(3))
    cmd_ned_mps2: np.ndarray = field(default_factory=lambda: np.zeros(3))
    t_s: float | None = None

    def at(self, t_s: float, lag_s: float) -> np.ndarray:
        if self.t_s is None:
            return self.acc_ned_mps2.copy()
        f = 1.0 - math.exp(-max(t_s - self.t_s, 0.0) / lag_s)
        return self.acc_ned_mps2 + f * (self.cmd_ned_mps2 - self.acc_ned_mps2)

    def command(self, t_s: float, lag_s: float, cmd_ned_mps2: np.ndarray) -> None:
        self.acc_ned_mps2 = self.at(t_s, lag_s)
        self.cmd_ned_mps2 = np.asarray(cmd_ned_mps2, dtype=np.float64).copy()
        self.t_s = t_s


class EngagementMachine:
    """See the module docstring. ``camera`` gives the field of view kept during terminal homing."""

    _VEL_HIST_N = 120   # own-velocity samples kept (latency and coasting compensation; ~4 s at 30 Hz)

    def __init__(self, config: EngagementConfig, camera: Camera | None = None,
                 autopilot: Autopilot = Autopilot.PX4) -> None:
        self.cfg = config
        self.camera = camera if camera is not None else Camera.default()
        self.autopilot = autopilot
        self.state = State.IDLE
        self.decisions: list[DecisionRecord] = []
        self._auth: dict[int, _Authorization] = {}
        self._t_start: float | None = None
        self._t_state: float = 0.0
        self._track_id: int | None = None
        self._track_last_t: float = -math.inf
        self._last_track: TargetTrack | None = None
        self._last_range_m = math.nan   # range estimate when the engaged track was last seen (m)
        self._cue_id: int | None = None
        self._cue_hist: list[TargetCue] = []
        self._reattacks = 0
        self._reattack_open_m = 0.0   # largest range since the last pass (re-attack readiness)
        self._first_terminal_size_m: float | None = None  # target size estimate when homing first began (m)
        self._min_range_m = math.inf
        self._tgt = _Target()
        self._reasons: list[Reason] = []
        self._blocked_note: Reason | None = None
        self._vel_hist: list[tuple[float, np.ndarray]] = []
        self._pos_hist: list[tuple[float, np.ndarray]] = []
        self._meas_track: TargetTrack | None = None   # the engaged track's last measured (not coasting) state
        self._disagree: tuple[int, float] | None = None  # (engaged track, since when) outside the cue gate
        self._rejected_ids: set[int] = set()             # tracks dropped for disagreeing with the cue
        # own kinematic acceleration as the control lag makes it of our past commands (control_lag_s > 0)
        self._acc_model = _LaggedAcceleration()

    # ----------------------------------------------------------------------------------------- helpers
    def _go(self, t_s: float, to: State, reason: Reason, details: str = "") -> None:
        self.decisions.append(DecisionRecord(t_s, self.state, to, reason, details))
        self._reasons.append(reason)
        self.state = to
        self._t_state = t_s

    def _note(self, t_s: float, reason: Reason, details: str = "") -> None:
        self.decisions.append(DecisionRecord(t_s, self.state, self.state, reason, details))
        self._reasons.append(reason)

    def authorized(self, t_s: float, track_id: int | None = None) -> bool:
        """Is the (given or engaged) camera track, or the cue it was handed over from, authorized now?"""
        tid = self._track_id if track_id is None else track_id
        for key in (tid, self._cue_id):
            a = self._auth.get(key) if key is not None else None
            if a is not None and t_s <= a.expires_t_s:
                return True
        return False

    # ----------------------------------------------------------------------------------------- commands
    def _commands(self, t_s: float, cmds: tuple[OperatorCommand, ...]) -> None:
        accepted = []
        for c in cmds:
            if self.cfg.require_signed_commands and not c.signed:
                self._note(t_s, Reason.UNSIGNED_COMMAND_REFUSED,
                           f"{c.kind.value} from {c.source_sysid}/{c.source_compid} not signed")
                continue
            accepted.append(c)
        # ABORT always wins, whatever else arrived in the same batch
        if any(c.kind is OperatorCommandKind.ABORT for c in accepted):
            self._auth.clear()
            if self.state not in (State.ABORT, State.HOLD, State.RTL):
                self._go(t_s, State.ABORT, Reason.OPERATOR_ABORT)
            return
        for c in accepted:
            if c.kind is OperatorCommandKind.RETURN:
                self._auth.clear()
                if self.state is not State.RTL:
                    self._go(t_s, State.RTL, Reason.OPERATOR_RETURN)
            elif c.kind is OperatorCommandKind.AUTHORIZE:
                if c.track_id is None:
                    self._note(t_s, Reason.COMMAND_IGNORED, "authorize without a track id")
                    continue
                valid = min(max(c.valid_for_s, 0.0), self.cfg.max_authorization_s)
                self._auth[c.track_id] = _Authorization(c.track_id, c.t_s + valid)
            elif c.kind is OperatorCommandKind.DENY:
                if c.track_id is None:
                    self._auth.clear()
                else:
                    self._auth.pop(c.track_id, None)
                if self.state is State.TERMINAL and not self.authorized(t_s):
                    self._go(t_s, State.AWAIT_AUTHORIZATION, Reason.DENIED, f"track {c.track_id}")

    # ----------------------------------------------------------------------------------------- estimates
    def _update_cue(self, cue: TargetCue | None) -> None:
        if cue is None:
            return
        if self._cue_id is None or (cue.target_id == self._cue_id and cue.t_s > self._cue_hist[-1].t_s):
            if self._cue_hist and cue.target_id == self._cue_id:
                prev = self._cue_hist[-1]
                dt = cue.t_s - prev.t_s
                if dt > 0.05:
                    a_raw = (np.asarray(cue.vel_ned_mps) - np.asarray(prev.vel_ned_mps)) / dt
                    self._tgt.acc_ned_mps2 = 0.7 * self._tgt.acc_ned_mps2 + 0.3 * np.clip(a_raw, -15, 15)
            self._cue_id = cue.target_id
            self._cue_hist = (self._cue_hist + [cue])[-5:]

    def _cue(self) -> TargetCue | None:
        return self._cue_hist[-1] if self._cue_hist else None

    def _cue_fresh(self, t_s: float) -> bool:
        c = self._cue()
        return c is not None and t_s - c.t_s <= self.cfg.cue_timeout_s

    def _cue_pos(self, t_s: float) -> np.ndarray | None:
        c = self._cue()
        if c is None:
            return None
        return np.asarray(c.pos_ned_m, dtype=np.float64) + np.asarray(c.vel_ned_mps) * (t_s - c.t_s)

    def _track_range(self, tr: TargetTrack, own_pos: np.ndarray, t_s: float) -> float | None:
        if tr.range_m is not None and math.isfinite(tr.range_m):
            return float(tr.range_m)
        size = self.cfg.size_of(tr.class_name)
        r = laws.range_from_angular_size(size, tr.angular_size_rad) if size else None
        if r is not None:
            return r
        cp = self._cue_pos(t_s)
        return float(np.linalg.norm(cp - own_pos)) if cp is not None else None

    def _los_now(self, tr: TargetTrack, t_s: float) -> np.ndarray:
        """Track LOS propagated to ``t_s`` with its rate (latency compensation)."""
        los = np.asarray(tr.los_ned, dtype=np.float64) + np.asarray(tr.los_rate_ned_radps) * max(t_s - tr.t_s, 0.0)
        return los / np.linalg.norm(los)

    def _candidate(self, tracks, own_pos: np.ndarray, t_s: float) -> tuple[TargetTrack | None, Reason | None]:
        """The confirmed, engageable track that agrees with the cue (closest to the cue direction). Tracks of a
        plausible span at the cued range (:meth:`_span_plausible`) come first: an implausible one (a 300 px tree
        line called "drone") is taken only when no plausible one agrees with the cue (the cue's range may be wrong).
        """
        cue_pos = self._cue_pos(t_s)
        best, best_ang, refused = None, (True, math.inf), None
        for tr in tracks:
            if tr.status is not TrackStatus.CONFIRMED:
                continue
            if tr.class_name in self.cfg.confuser_classes:
                refused = Reason.CONFUSER_CLASS
                continue
            if tr.class_name not in self.cfg.engageable_classes:
                continue
            if tr.track_id in self._rejected_ids:
                continue
            off = self._cue_offset(tr, own_pos, t_s, cue_pos)
            if off is not None:
                ang, gate, rng = off
                if ang > gate:
                    continue
                key = (not self._span_plausible(tr, rng, self._cue().pos_std_m), ang)
            else:
                key = (False, 0.0)
            if key < best_ang:
                best, best_ang = tr, key
        return best, refused

    def _cue_offset(self, tr: TargetTrack, own_pos: np.ndarray, t_s: float,
                    cue_pos: np.ndarray | None) -> tuple[float, float, float] | None:
        """(angle between the track's LOS and the cue direction, the gate on it: ``cue_gate_rad`` + 3 sigma of
        the cue position over its range (rad), the cue's range m), or None without a cue position."""
        if cue_pos is None:
            return None
        d = cue_pos - own_pos
        rng = float(np.linalg.norm(d))
        gate = self.cfg.cue_gate_rad + (3.0 * self._cue().pos_std_m / rng if rng > 1.0 else math.pi)
        return los_angle_rad(self._los_now(tr, t_s), d), gate, rng

    def _check_cue_agreement(self, t_s: float, own_pos: np.ndarray, tr: TargetTrack | None) -> TargetTrack | None:
        """``tr``, or None once it has lain outside the cue gate for ``cue_disagree_s`` with the cue at least
        ``cue_disagree_min_range_m`` away (the machine then goes back to ACQUIRE and never takes that track again)."""
        if tr is None or self.cfg.cue_disagree_s <= 0.0 or not self._cue_fresh(t_s):
            self._disagree = None
            return tr
        off = self._cue_offset(tr, own_pos, t_s, self._cue_pos(t_s))
        if off is None or off[0] <= off[1] or off[2] < self.cfg.cue_disagree_min_range_m:
            self._disagree = None
            return tr
        if self._disagree is None or self._disagree[0] != tr.track_id:
            self._disagree = (tr.track_id, t_s)
        if t_s - self._disagree[1] < self.cfg.cue_disagree_s:
            return tr
        self._rejected_ids.add(tr.track_id)
        self._go(t_s, State.ACQUIRE, Reason.TRACK_DISAGREES_WITH_CUE,
                 f"track {tr.track_id} {math.degrees(off[0]):.0f} deg off the cue (gate {math.degrees(off[1]):.0f} deg, "
                 f"cue range {off[2]:.0f} m) for {t_s - self._disagree[1]:.1f} s")
        self._disagree = None
        self._track_id = None
        return None

    def _span_plausible(self, tr: TargetTrack, rng_m: float, rng_std_m: float) -> bool:
        """Could ``tr`` be a target at range ``rng_m`` (1-sigma ``rng_std_m``, m)? Its span, angular size (box
        diagonal, rad) x the nearest range within 3 sigma, must be at most ``max_target_span_m x
        target_span_margin``. The track's own ``range_m`` is used when it has one. Unknown sizes, and sizes up to
        ``span_check_min_px`` (the detector's smallest boxes), pass."""
        size = float(tr.angular_size_rad)
        if size <= self.cfg.span_check_min_px / self.camera.intrinsics.fx_px:
            return True
        if tr.range_m is not None and math.isfinite(tr.range_m):
            rng_m = float(tr.range_m)
        if not (math.isfinite(size) and math.isfinite(rng_m) and math.isfinite(self.cfg.max_target_span_m)):
            return True
        r_lo = max(rng_m - 3.0 * max(rng_std_m, 0.0), 0.0)
        return size * r_lo <= self.cfg.max_target_span_m * self.cfg.target_span_margin

    def _reassociate(self, tracks, own_pos: np.ndarray, t_s: float) -> TargetTrack | None:
        """A confirmed engageable track in the direction of the lost one's estimate (angle gate) and of an angular
        size within ``reassociate_max_size_ratio`` of the lost track's (scaled by the range change): in the
        simulator a 30 px target lost for one frame was otherwise replaced by a 300 px ground-clutter track next to
        it. Tracks of a plausible span at that range come first."""
        d = self._tgt.pos_ned_m - own_pos
        rng = float(np.linalg.norm(d))
        if rng < 1.0:
            return None
        gate = self.cfg.cue_gate_rad + 3.0 * 5.0 / rng
        c = self._cue()
        rng_std = c.pos_std_m if c is not None else 5.0
        size_exp = math.nan
        last = self._last_track
        if last is not None and math.isfinite(last.angular_size_rad) and last.angular_size_rad > 0.0:
            r_last = self._last_range_m
            size_exp = float(last.angular_size_rad) * (r_last / rng if math.isfinite(r_last) and r_last > 0.0 else 1.0)
        ln_ratio = math.log(self.cfg.reassociate_max_size_ratio)
        best, best_key = None, (True, math.inf)
        for tr in tracks:
            if tr.status is not TrackStatus.CONFIRMED or tr.class_name not in self.cfg.engageable_classes \
                    or tr.track_id in self._rejected_ids:
                continue
            if math.isfinite(size_exp) and math.isfinite(tr.angular_size_rad) and tr.angular_size_rad > 0.0 \
                    and abs(math.log(float(tr.angular_size_rad) / size_exp)) > ln_ratio:
                continue
            ang = los_angle_rad(self._los_now(tr, t_s), d)
            key = (not self._span_plausible(tr, rng, rng_std), ang)
            if ang < gate and key < best_key:
                best, best_key = tr, key
        return best

    def _engaged_track(self, tracks) -> TargetTrack | None:
        for tr in tracks:
            if tr.track_id == self._track_id and tr.status is not TrackStatus.DELETED:
                return tr
        return None

    def _update_target(self, t_s: float, own_pos: np.ndarray, tr: TargetTrack | None) -> None:
        c = self._cue()
        if c is not None:
            self._tgt.vel_ned_mps = np.asarray(c.vel_ned_mps, dtype=np.float64)
        if tr is not None:
            r = self._track_range(tr, own_pos, t_s)
            if r is not None:
                self._last_range_m = r
                self._tgt.pos_ned_m = own_pos + self._los_now(tr, t_s) * r
                self._tgt.t_s = t_s
                return
        cp = self._cue_pos(t_s)
        if cp is not None:
            self._tgt.pos_ned_m = cp
            self._tgt.t_s = t_s

    # ----------------------------------------------------------------------------------------- step
    def step(self, inp: EngagementInput) -> EngagementOutput:
        t = float(inp.t_s)
        self._reasons = []
        veh = inp.vehicle
        pos = np.asarray(veh.pos_ned_m, dtype=np.float64)
        vel = np.asarray(veh.vel_ned_mps, dtype=np.float64)
        self._vel_hist = (self._vel_hist + [(t, vel.copy())])[-self._VEL_HIST_N:]
        self._pos_hist = (self._pos_hist + [(t, pos.copy())])[-self._VEL_HIST_N:]
        self._commands(t, inp.commands)
        self._update_cue(inp.cue)
        # --- final states: ABORT -> HOLD -> RTL
        if self.state is State.ABORT:
            self._go(t, State.HOLD, Reason.BRAKING)
        if self.state is State.HOLD and t - self._t_state >= self.cfg.hold_before_rtl_s:
            self._go(t, State.RTL, Reason.HOLD_TIMEOUT)
        if self.state in FINAL_STATES:
            return self._final_output(t)
        if self.state is State.IDLE:
            if inp.cue is not None and self._cue_fresh(t):
                self._t_start = t
                self._go(t, State.MIDCOURSE, Reason.CUE_RECEIVED, f"ground track {self._cue_id}")
            else:
                return EngagementOutput(t, self.state, None, reasons=tuple(self._reasons))
        # --- watchdogs and gates that abort from anywhere
        if not gates.watchdog_clear(t, inp.last_link_rx_t_s, self.cfg.link_lost_s):
            self._go(t, State.ABORT, Reason.LINK_LOST, f"last heard {inp.last_link_rx_t_s}")
        elif self.state in CAMERA_STATES and not gates.watchdog_clear(t, inp.last_frame_t_s, self.cfg.pipeline_stall_s):
            self._go(t, State.ABORT, Reason.PIPELINE_STALL, f"last frame {inp.last_frame_t_s}")
        elif t - (self._t_start if self._t_start is not None else t) > self.cfg.max_engagement_s:
            self._go(t, State.ABORT, Reason.MAX_ENGAGEMENT_TIME)
        elif not gates.geofence_clear(pos, vel, self.cfg.geofence, self.cfg.fence_brake_accel_mps2):
            self._go(t, State.ABORT, Reason.GEOFENCE, "vehicle or its stopping point outside the fence")
        if self.state in FINAL_STATES:
            return self._final_output(t)
        if inp.impact and self.state is State.TERMINAL:
            self._go(t, State.DONE, Reason.IMPACT)
            return self._final_output(t)

        tr = self._engaged_track(inp.tracks) if self._track_id is not None else None
        if tr is not None:
            if tr.class_name in self.cfg.confuser_classes:
                self._go(t, State.ACQUIRE, Reason.CONFUSER_CLASS, f"track {tr.track_id} is a {tr.class_name}")
                self._track_id, tr = None, None
            else:
                self._track_last_t = t
                self._last_track = tr
        # --- the tracker may re-number a target it lost for a few frames: re-associate by direction
        if tr is None and self._track_id is not None and self._tgt.pos_ned_m is not None and self.state in (
                State.TRACK, State.AWAIT_AUTHORIZATION, State.TERMINAL, State.REATTACK):
            cand = self._reassociate(inp.tracks, pos, t)
            if cand is not None:
                self._note(t, Reason.TRACK_REASSOCIATED, f"track {self._track_id} -> {cand.track_id}")
                self._track_id, tr = cand.track_id, cand
                self._track_last_t = t
                self._last_track = cand
        if self.state in (State.TRACK, State.AWAIT_AUTHORIZATION, State.TERMINAL):
            tr = self._check_cue_agreement(t, pos, tr)
        # --- track loss: hand back to the cue, or abort
        if self.state in (State.TRACK, State.AWAIT_AUTHORIZATION, State.TERMINAL) and tr is None \
                and t - self._track_last_t > self.cfg.track_lost_s:
            self._track_id = None
            if self._cue_fresh(t):
                self._go(t, State.MIDCOURSE, Reason.TRACK_LOST, "handover back to the cue")
            else:
                self._go(t, State.ABORT, Reason.TRACK_LOST, "no fresh cue")
                return self._final_output(t)
        if self.state in (State.MIDCOURSE, State.ACQUIRE) and not self._cue_fresh(t):
            self._go(t, State.ABORT, Reason.CUE_LOST)
            return self._final_output(t)
        if tr is not None and tr.status is TrackStatus.CONFIRMED and tr.misses == 0:
            self._meas_track = tr
        self._update_target(t, pos, tr if tr is not None else None)
        tgt_pos = self._tgt.pos_ned_m
        rng = float(np.linalg.norm(tgt_pos - pos)) if tgt_pos is not None else math.inf

        # --- transitions between active states
        if self.state is State.MIDCOURSE and rng < self.cfg.acquire_range_m:
            self._go(t, State.ACQUIRE, Reason.CUE_IN_SENSOR_RANGE, f"range {rng:.0f} m")
        if self.state is State.ACQUIRE:
            if rng > 1.3 * self.cfg.acquire_range_m:
                self._go(t, State.MIDCOURSE, Reason.CUE_OUT_OF_SENSOR_RANGE, f"range {rng:.0f} m")
            else:
                cand, refused = self._candidate(inp.tracks, pos, t)
                if cand is not None:
                    self._track_id, tr = cand.track_id, cand
                    self._track_last_t = t
                    self._last_track = cand
                    self._update_target(t, pos, tr)
                    self._go(t, State.TRACK, Reason.TRACK_CONFIRMED,
                             f"track {cand.track_id} ({cand.class_name}) agrees with ground track {self._cue_id}")
                elif refused is not None and self._blocked_note is not refused:
                    self._note(t, refused, "confuser track ignored")
                    self._blocked_note = refused
        pip, _t_go = self._pip(pos, t)
        blocked = self._engage_blocked(pos, pip)
        if self.state in (State.TRACK, State.AWAIT_AUTHORIZATION):
            if self.authorized(t) and blocked is None:
                self._min_range_m = math.inf
                if self._first_terminal_size_m is None and self._last_track is not None:
                    self._first_terminal_size_m = self._track_size_m(self._last_track)
                self._go(t, State.TERMINAL, Reason.AUTHORIZED, f"track {self._track_id}")
            elif self.state is State.TRACK:
                why = Reason.AUTHORIZATION_REQUIRED if blocked is None else blocked[0]
                self._go(t, State.AWAIT_AUTHORIZATION, why, "" if blocked is None else blocked[1])
            elif blocked is not None and self._blocked_note is not blocked[0]:
                self._note(t, blocked[0], blocked[1])
                self._blocked_note = blocked[0]
        elif self.state is State.TERMINAL:
            if not self.authorized(t):
                self._go(t, State.AWAIT_AUTHORIZATION, Reason.AUTHORIZATION_EXPIRED, f"track {self._track_id}")
            elif blocked is not None:
                self._go(t, State.AWAIT_AUTHORIZATION, blocked[0], blocked[1])
            else:
                closing = self._closing(pos, vel, t)
                self._min_range_m = min(self._min_range_m, rng)
                if rng < self.cfg.miss_range_m and closing < 0.0:
                    self._go(t, State.MISS, Reason.PASSED_TARGET, f"closest estimate {self._min_range_m:.1f} m")
        if self.state is State.MISS:
            if self._reattacks < self.cfg.max_reattacks:
                self._reattacks += 1
                self._reattack_open_m = rng
                self._go(t, State.REATTACK, Reason.REATTACK_STARTED, f"attempt {self._reattacks}")
            else:
                self._go(t, State.ABORT, Reason.REATTACK_LIMIT)
                return self._final_output(t)
        if self.state is State.REATTACK:
            if tr is None and t - self._track_last_t > self.cfg.track_lost_s and not self._cue_fresh(t):
                self._go(t, State.ABORT, Reason.TRACK_LOST, "lost during re-attack")
                return self._final_output(t)
            # back to homing as soon as the camera has the target again and we close on it, once we have opened
            # beyond 2 x miss_range after the pass (a noisy closing estimate right after the pass must not flip
            # us back to TERMINAL and burn the re-attacks). A small target is first seen at ~90 m: waiting for
            # it to be 50 m away *while closing* left under half a second of homing, and the re-attack often
            # flew its pass on the midcourse law
            self._reattack_open_m = max(self._reattack_open_m, rng)
            # (a stand-off re-attack, reattack_standoff_max_size_m: or once back out there with a fresh camera track)
            back_out = self._reattack_from_standoff() and tr is not None and tr.misses == 0 \
                and rng >= self.cfg.reattack_ready_frac * self.cfg.standoff_m
            if tr is not None and (self._closing(pos, vel, t) > 5.0 or back_out) \
                    and rng > self.cfg.reattack_min_range_m \
                    and self._reattack_open_m > 2.0 * self.cfg.miss_range_m \
                    and self.authorized(t) and blocked is None:
                self._min_range_m = math.inf
                self._go(t, State.TERMINAL, Reason.REATTACK_READY)
        return self._command(t, veh, pos, vel, tr, pip, rng)

    # ----------------------------------------------------------------------------------------- gates
    def _engage_blocked(self, pos: np.ndarray, pip: np.ndarray | None) -> tuple[Reason, str] | None:
        ok, why = gates.no_engage_clear(pos, pip, self.cfg.no_engage_zones)
        if not ok:
            return Reason.NO_ENGAGE_ZONE, why
        tp = self._tgt.pos_ned_m
        if tp is not None and -float(tp[2]) < self.cfg.min_target_altitude_m:
            return Reason.TARGET_NOT_AERIAL, f"target altitude {-float(tp[2]):.0f} m"
        return None

    def _pip(self, pos: np.ndarray, t_s: float) -> tuple[np.ndarray | None, float]:
        if self._tgt.pos_ned_m is None:
            return None, math.inf
        return laws.predicted_intercept_point(pos, self._tgt.pos_ned_m, self._tgt.vel_ned_mps, self.cfg.max_speed_mps)

    def _closing(self, pos: np.ndarray, vel: np.ndarray, t_s: float) -> float:
        if self._tgt.pos_ned_m is None:
            return 0.0
        return laws.closing_speed(laws._unit(self._tgt.pos_ned_m - pos), vel, self._tgt.vel_ned_mps)

    # ----------------------------------------------------------------------------------------- outputs
    def _final_output(self, t_s: float) -> EngagementOutput:
        s = self.state
        rtl = s in (State.RTL, State.DONE)
        sp = None if rtl else brake_setpoint(t_s)
        return EngagementOutput(t_s, s, sp, brake=not rtl, rtl=rtl, reasons=tuple(self._reasons),
                                engaged_track_id=self._track_id)

    def _own_vel_at(self, t_s: float, default: np.ndarray, hist: list | None = None) -> np.ndarray:
        """Own velocity (or, with ``hist=self._pos_hist``, position) at ``t_s`` interpolated from the history."""
        hist = self._vel_hist if hist is None else hist
        for i in range(len(hist) - 1, 0, -1):
            t1, v1 = hist[i]
            t0, v0 = hist[i - 1]
            if t0 <= t_s <= t1:
                f = (t_s - t0) / (t1 - t0) if t1 > t0 else 0.0
                return v0 + f * (v1 - v0)
        return hist[0][1] if hist and t_s < hist[0][0] else default

    def _los_and_rate_now(self, tr: TargetTrack, t_s: float, pos: np.ndarray, vel: np.ndarray):
        """LOS and LOS rate brought forward from the frame's capture time to ``t_s`` (latency compensation).

        With a range estimate R, the measured rate gives the relative velocity across the LOS at capture
        (``v_perp = R * rate``); our own velocity change since then is known from the vehicle history, the
        target's is assumed zero over the latency. Without a range, the LOS is propagated with the old rate.
        """
        max_lat = 0.5
        meas = self._meas_track
        if tr.status is TrackStatus.COASTING and meas is not None and meas.track_id == tr.track_id \
                and t_s - meas.t_s <= self.cfg.coast_propagate_max_s:
            # coasting: the tracker (or a stale truth track) predicts the LOS with its last rate, open loop; from
            # the last measurement, our own velocity change since then closes the loop (a frozen rate held the
            # PN command for the ~1 s blind end of a pass and cost the pipeline's 1.2-1.5 m misses)
            tr, max_lat = meas, self.cfg.coast_propagate_max_s
        los_c = np.asarray(tr.los_ned, dtype=np.float64)
        rate_c = np.asarray(tr.los_rate_ned_radps, dtype=np.float64)
        lat = max(t_s - tr.t_s, 0.0)
        r_m = self._track_range(tr, pos, t_s)
        if r_m is None or r_m < 1.0 or lat > max_lat:
            return self._los_now(tr, t_s), rate_c
        v_own_c = self._own_vel_at(tr.t_s, vel)
        v_rad = float((self._tgt.vel_ned_mps - v_own_c) @ los_c)
        v_rel_c = rate_c * r_m + v_rad * los_c
        if max_lat > 0.5:
            # coasting: the target's velocity held, our own displacement since the measurement from the history
            r_now = los_c * r_m + (v_rel_c + v_own_c) * lat - (pos - self._own_vel_at(tr.t_s, pos, self._pos_hist))
        else:
            r_now = los_c * r_m + v_rel_c * lat - 0.5 * (vel - v_own_c) * lat
        v_rel_now = v_rel_c - (vel - v_own_c)
        rn = float(np.linalg.norm(r_now))
        if rn < 0.5:
            return self._los_now(tr, t_s), rate_c
        los = r_now / rn
        rate = (v_rel_now - (v_rel_now @ los) * los) / rn
        return los, rate

    def _fov_keep(self, acc: np.ndarray, vel: np.ndarray, los: np.ndarray) -> np.ndarray:
        """FOV keeping on an autopilot command ``acc`` (NED m/s^2) that already carries the drag feed-forward.

        :func:`laws.fov_keep` takes the vehicle's kinematic acceleration (it adds the drag back to find the
        rotor force); our command is kinematic + ``k |v| v`` (the autopilot does not know the drag), so the
        feed-forward is taken out before and put back after. Passing the command straight in counted the drag
        twice (~22 m/s^2 of phantom forward force at 70 m/s): the clamp then believed the nose was far lower
        than it was and cut the forward command, which fought the homing.
        """
        drag_ff = self.cfg.drag_per_m * float(np.linalg.norm(vel)) * vel
        return laws.fov_keep(acc - drag_ff, vel, los, self.cfg.drag_per_m, self.camera.mount.tilt_up_rad,
                             self.camera.intrinsics.vfov_rad, self.cfg.fov_margin_rad) + drag_ff

    def _speed_band(self, los: np.ndarray | None) -> tuple[float, float]:
        cfg = self.cfg
        if not cfg.fov_keep or los is None:
            return 0.0, cfg.max_speed_mps
        lo, hi = laws.fov_speed_band(los, cfg.drag_per_m, self.camera.mount.tilt_up_rad,
                                     self.camera.intrinsics.vfov_rad, cfg.fov_margin_rad)
        return min(lo, cfg.max_speed_mps), min(hi, cfg.max_speed_mps)

    def _keep_in_view(self, rng_m: float) -> bool:
        """Field-of-view keeping wanted at this range: close enough (``fov_keep_range_m``) and a small target."""
        return rng_m < self.cfg.fov_keep_range_m and self._small_target(self.cfg.fov_keep_max_size_m)

    def _reattack_from_standoff(self) -> bool:
        """Re-attack from the stand-off (``reattack_standoff_max_size_m``) rather than straight at the target? The
        size is the one estimated when homing first began: at the pass the track's range (the cue's) is off by
        as much as the range itself, and a 2.5 m wing then measured 1.2-7.5 m."""
        max_m, size_m = self.cfg.reattack_standoff_max_size_m, self._first_terminal_size_m
        return max_m > 0.0 and (size_m is None or size_m <= max_m)

    def _small_target(self, max_size_m: float) -> bool:
        """Is the engaged target at most ``max_size_m`` across (size = the camera track's angular size times its
        range, or the class size)? True before any track (a target we still have to find).

        A small target is first seen late (a 0.4 m quad at ~90 m): once it leaves the image it is not seen
        again before the pass, so keeping it in view is worth the speed that costs. A large one is seen from
        hundreds of metres and re-acquired after a short loss, and the speed matters more (evasive turns)."""
        tr = self._last_track
        if tr is None or not math.isfinite(max_size_m):
            return True
        size = self._track_size_m(tr)
        return size is None or size <= max_size_m

    def _track_size_m(self, tr: TargetTrack) -> float | None:
        """The track's angular size times its range, else the size of its class (m), else None."""
        if tr.range_m is not None and math.isfinite(tr.range_m) and math.isfinite(tr.angular_size_rad):
            return float(tr.angular_size_rad) * float(tr.range_m)
        return self.cfg.size_of(tr.class_name)

    def _command(self, t_s, veh, pos, vel, tr, pip, rng) -> EngagementOutput:
        cfg = self.cfg
        acc, aim, yaw = np.zeros(3), None, None
        speed = float(np.linalg.norm(vel))
        drag_ff = cfg.drag_per_m * speed * vel  # the autopilot does not know our drag: feed it forward
        if self.state is State.TERMINAL and (tr is not None or self._last_track is not None):
            trk = tr if tr is not None else self._last_track
            los, rate = self._los_and_rate_now(trk, t_s, pos, vel)
            vc = max(laws.closing_speed(los, vel, self._tgt.vel_ned_mps), 10.0)
            keep_view = cfg.fov_keep_terminal and self._keep_in_view(rng)
            lo, hi = self._speed_band(los) if keep_view else (0.0, cfg.max_speed_mps)
            v_target = min(max(cfg.terminal_speed_mps, lo), hi) if hi > 0.0 else cfg.terminal_speed_mps
            if cfg.law == "pure_pursuit":
                acc = laws.pure_pursuit(los, vel, v_target, cfg.speed_gain_per_s) + drag_ff
            else:
                if cfg.law == "true_pn":
                    a_pn = laws.true_pn(los, rate, vc, cfg.nav_gain)
                elif cfg.law == "pure_pn":
                    a_pn = laws.pure_pn(los, rate, vel, cfg.nav_gain)
                elif cfg.control_lag_s > 0.0:
                    t_go = laws.time_to_go(rng, vc)
                    a_pn = laws.lag_compensated_apn(los, rate, vc, self._tgt.acc_ned_mps2,
                                                    self._acc_model.at(t_s, cfg.control_lag_s),
                                                    t_go if t_go > 0.0 else math.inf, cfg.control_lag_s,
                                                    cfg.nav_gain, cfg.lag_max_nav_gain)
                else:
                    a_pn = laws.augmented_pn(los, rate, vc, self._tgt.acc_ned_mps2, cfg.nav_gain)
                vhat = vel / speed if speed > 1.0 else los
                a_speed = cfg.speed_gain_per_s * (v_target - speed) * vhat + drag_ff
                # speed control may not undo the homing: keep only its part along the LOS
                a_speed = float(a_speed @ los) * los
                acc = a_pn + a_speed
            acc = laws.saturate(acc, cfg.max_accel_mps2, priority_dir_ned=los)
            if cfg.fov_clamp_accel and keep_view:
                acc = self._fov_keep(acc, vel, los)
            # in the last second the LOS swings fast: yawing after it would drag the thrust vector around
            # (attitude is one rotation), so the heading is frozen for the endgame
            yaw = laws.heading_to(los) if rng > cfg.endgame_yaw_hold_s * max(vc, 1.0) else None
        elif pip is not None:
            aim = pip.copy()
            d = pip - pos
            horiz = math.hypot(d[0], d[1])
            if cfg.approach_above_rad > 0.0:  # optional glide slope onto the target from above
                aim[2] -= min(math.tan(cfg.approach_above_rad) * horiz, cfg.approach_above_max_m)
            # shadowing a target we may not engage yet: hold below it, where the up-tilted camera of a vehicle slowed
            # by the stand-off braking still sees it (level with it, the nose-up braking put it under the image:
            # lockstep evasive-0 and bird_clutter-0 lost the target there and were authorized late or on a coast)
            if cfg.shadow_below_rad > 0.0 and self._tgt.pos_ned_m is not None and not self.authorized(t_s) \
                    and self.state in (State.ACQUIRE, State.TRACK, State.AWAIT_AUTHORIZATION) \
                    and rng < cfg.shadow_below_range_m:
                tgt = self._tgt.pos_ned_m
                h_t = math.hypot(float(tgt[0] - pos[0]), float(tgt[1] - pos[1]))
                aim[2] = float(tgt[2]) + min(math.tan(cfg.shadow_below_rad) * h_t, cfg.shadow_below_max_m)
            aim[2] = min(max(aim[2], -cfg.geofence.max_altitude_m + 50.0), -cfg.min_altitude_m)
            los_t = laws._unit(self._tgt.pos_ned_m - pos) if self._tgt.pos_ned_m is not None else None
            v_max = cfg.max_speed_mps
            # field-of-view keeping only where the camera can see the target: farther out it only costs time
            fov_near = los_t is not None and self._keep_in_view(rng)
            reattack_out = self.state is State.REATTACK and self._reattack_from_standoff()
            if (self.state in (State.TRACK, State.AWAIT_AUTHORIZATION) or reattack_out) and fov_near:
                v_max = max(self._speed_band(los_t)[1], 5.0)
            v_sp, _ = laws.velocity_to_point(pos, vel, aim, v_max, cfg.speed_gain_per_s)
            v_close_max = math.inf  # closing speed along the LOS (relative, m/s)
            if los_t is not None and reattack_out:
                # re-attack: back out to the stand-off (negative closing inside it), braking onto it from either side
                gap = rng - cfg.standoff_m
                v_close_max = math.copysign(math.sqrt(cfg.max_accel_mps2 * abs(gap)), gap)
            elif los_t is not None and (self.state in (State.AWAIT_AUTHORIZATION, State.TRACK)
                                        or not self.authorized(t_s)):
                # shadow: approach no closer than the stand-off (closing speed limited by braking distance)
                v_close_max = math.sqrt(cfg.max_accel_mps2 * max(rng - cfg.standoff_m, 0.0))
            if los_t is not None and self.state is State.ACQUIRE and rng < cfg.acquire_slow_range_m:
                # the camera has not found it yet and it is close (a small target): slow the closure so that
                # homing, once it is seen, has at least acquire_min_homing_s to null the cue's error
                v_close_max = min(v_close_max, max(rng - 20.0, 0.0) / cfg.acquire_min_homing_s)
            standoff_braking = False
            if math.isfinite(v_close_max):
                v_close_max += float(self._tgt.vel_ned_mps @ los_t)  # relative -> our own speed along LOS
                v_along = float(v_sp @ los_t)
                if v_along > v_close_max:
                    v_sp = v_sp + (v_close_max - v_along) * los_t
                    standoff_braking = v_close_max < float(vel @ los_t)
            acc = laws.saturate(cfg.speed_gain_per_s * (v_sp - vel) + drag_ff, cfg.max_accel_mps2)
            if los_t is not None and self.state in CAMERA_STATES:
                yaw = laws.heading_to(los_t)
                # the FOV clamp bounds the nose-up pitch, i.e. the braking: it may never stop us from braking
                # to the stand-off of a target we are not (yet) allowed to engage (safety wins over the view)
                if cfg.fov_clamp_accel and fov_near and not standoff_braking:
                    acc = self._fov_keep(acc, vel, los_t)
            else:
                yaw = laws.heading_to(d) if horiz > 1.0 else None
        acc = laws.altitude_floor(acc, pos, vel, -cfg.min_altitude_m, cfg.max_accel_mps2)
        acc = laws.saturate(acc, cfg.max_accel_mps2)
        sp = to_setpoint(t_s, acc, vel, self.autopilot, cfg.max_speed_mps, yaw_rad=yaw)
        if cfg.control_lag_s > 0.0:
            self._acc_model.command(t_s, cfg.control_lag_s, acc - drag_ff)
        return EngagementOutput(t_s, self.state, sp, reasons=tuple(self._reasons),
                                engaged_track_id=self._track_id, acc_cmd_ned_mps2=acc, aim_ned_m=aim)
