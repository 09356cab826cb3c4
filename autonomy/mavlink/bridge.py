"""The MAVLink bridge: composition of link, state cache, flavour, setpoint streamer, commander and params.

Threading: ``start()`` runs ``step()`` on a background thread (receive, dispatch, stream setpoints, send
heartbeat/TIMESYNC, retry commands). Public methods are thread-safe; the blocking ones (``arm``,
``set_mode``, ``param_get`` ...) wait for their reply with a timeout, pumping ``step()`` themselves when no
thread runs (lockstep use). Logic time is the injected ``Clock``; waits are bounded by the same clock.

Control states (``Control``):
- IDLE: not streaming. ENGAGED: streaming, the vehicle is (or is being put) in the setpoint mode.
- BRAKING: our pipeline stalled (setpoint older than ``max_age_s``): zero-velocity hold is streamed.
- HANDED_BACK: stalled longer than ``hand_back_after_s``: the hand-back mode was requested, streaming stopped.
- AUTOPILOT_FAILSAFE: the autopilot left the setpoint mode on its own (e.g. offboard loss -> RTL) or our own
  stream had a gap long enough for it to do so. Streaming stops and does NOT resume by itself (real PX4
  re-enters OFFBOARD when setpoints resume, AUTOPILOT_SPEC Appendix A): only ``reengage()`` (logged) does.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from autonomy.mavlink.clock import Clock, ClockMapper, MonotonicClock
from autonomy.mavlink.codec import StateCache
from autonomy.mavlink.commander import Commander, MavResult, PendingCommand
from autonomy.mavlink.errors import CommandError, LinkError, MavlinkError, ParamError
from autonomy.mavlink.events import MSG_ID_EVENT, Px4Event, decode_event_frame
from autonomy.mavlink.flavour import EncodedSetpoint, Flavour
from autonomy.mavlink.ground import (
    MAV_CMD_USER_1,
    MalformedCommand,
    decode_adsb,
    decode_follow_target,
    decode_operator_command,
)
from autonomy.mavlink.history import StateHistory
from autonomy.mavlink.link import Link, LinkConfig
from autonomy.mavlink.params import ParamCache, ParamValue
from autonomy.mavlink.streamer import SetpointStreamer, StreamAction, StreamerConfig
from autonomy.types import Autopilot, OperatorCommand, Setpoint, TargetCue, VehicleState

log = logging.getLogger("autonomy.mavlink")

MAV_CMD_NAV_RETURN_TO_LAUNCH, MAV_CMD_NAV_LAND, MAV_CMD_NAV_TAKEOFF = 20, 21, 22
MAV_CMD_DO_SET_MODE, MAV_CMD_COMPONENT_ARM_DISARM = 176, 400
MAV_CMD_SET_MESSAGE_INTERVAL = 511
FORCE_MAGIC = 21196
MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, MAV_STATE_ACTIVE = 18, 8, 4


# Message ids the bridge uses; on UDP links everything else is skipped before decoding (see Link)
BRIDGE_MSG_IDS = frozenset({
    0,    # HEARTBEAT
    22,   # PARAM_VALUE
    30, 31, 32, 33,   # ATTITUDE, ATTITUDE_QUATERNION, LOCAL_POSITION_NED, GLOBAL_POSITION_INT
    49,   # GPS_GLOBAL_ORIGIN
    75, 76, 77,       # COMMAND_INT, COMMAND_LONG, COMMAND_ACK
    111,  # TIMESYNC
    144,  # FOLLOW_TARGET
    242,  # HOME_POSITION
    245,  # EXTENDED_SYS_STATE
    246,  # ADSB_VEHICLE
    253,  # STATUSTEXT
    410,  # EVENT (PX4)
})


class Control(enum.Enum):
    IDLE = "idle"
    ENGAGED = "engaged"
    BRAKING = "braking"
    HANDED_BACK = "handed_back"
    AUTOPILOT_FAILSAFE = "autopilot_failsafe"


@dataclass(frozen=True)
class BridgeConfig:
    link: LinkConfig
    streamer: StreamerConfig = field(default_factory=StreamerConfig)
    heartbeat_period_s: float = 1.0
    timesync_period_s: float = 0.5
    command_timeout_s: float = 1.0
    command_retries: int = 3
    reconnect_interval_s: float = 1.0
    link_lost_s: float = 3.0
    stream_gap_limit_s: float = 0.5     # a send gap this long (bridge stalled) counts as a lost stream
    prestream_s: float = 1.0            # PX4: setpoints streamed before switching to OFFBOARD
    loop_period_s: float = 0.01         # background thread pacing (adds at most this much latency)


@dataclass(frozen=True)
class AutopilotText:
    """A notice from the autopilot: STATUSTEXT, or a decoded PX4 EVENT (``event`` set)."""

    t_s: float
    severity: int
    text: str
    event: Px4Event | None = None


@dataclass
class BridgeCounters:
    wrong_target: int = 0
    rejected_unsigned_commands: int = 0
    malformed_operator_commands: int = 0
    cues_without_origin: int = 0
    dropped_events: int = 0
    control_log: list[tuple[float, str]] = field(default_factory=list)


class Bridge:
    """See the module docstring. ``state`` / ``state_at`` give ``VehicleState`` in SI units, our clock."""

    def __init__(self, config: BridgeConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or MonotonicClock()
        link_cfg = config.link
        if link_cfg.accept_ids is None:
            link_cfg = dataclasses.replace(link_cfg, accept_ids=BRIDGE_MSG_IDS)
        self.link = Link(link_cfg, self.clock)
        self.mapper = ClockMapper()
        self.cache = StateCache(self.mapper, StateHistory())
        self.commander = Commander()
        self.params = ParamCache()
        self.streamer: SetpointStreamer | None = None
        self.counters = BridgeCounters()
        self.control = Control.IDLE
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._running = False
        self._cues: deque[TargetCue] = deque(maxlen=256)
        self._op_cmds: deque[OperatorCommand] = deque(maxlen=64)
        self._texts: deque[AutopilotText] = deque(maxlen=256)
        self._cue_callbacks: list[Callable[[TargetCue], None]] = []
        self._op_callbacks: list[Callable[[OperatorCommand], None]] = []
        self._t_heartbeat_sent = -math.inf
        self._t_timesync_sent = -math.inf
        self._t_reconnect = -math.inf
        self._timesync_pending: dict[int, float] = {}
        self._expected_mode: str | None = None
        self._engaged_confirmed = False
        self._statustext_id = 0
        self._engage_pending = False   # ArduPilot: engaged, streaming starts with the first setpoint
        self.step_errors = 0

    # ================================================================ lifecycle
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> Bridge:
        """Run ``step()`` on a daemon thread (idempotent)."""
        if self._thread is None:
            self._running = True
            self._thread = threading.Thread(target=self._run, name="mavlink-bridge", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        # Paced loop: drain everything that arrived, then sleep to the next period. Waking per datagram
        # (select on every packet at ~400 msg/s) costs more CPU than the parsing itself.
        period = self.config.loop_period_s
        t_next = time.monotonic()
        while self._running:
            try:
                self.step()
            except Exception:
                self.step_errors += 1
                log.exception("bridge step failed")
            t_next = max(t_next + period, time.monotonic() - period)
            dt = t_next - time.monotonic()
            if dt > 0:
                time.sleep(dt)

    def close(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.link.close()

    def connect(self, timeout_s: float = 10.0) -> Flavour:
        """Wait for the autopilot's HEARTBEAT (flavour detection); LinkError after ``timeout_s``."""
        ok = self.wait_for(lambda: self.cache.flavour is not None, timeout_s)
        if not ok:
            raise LinkError(f"no autopilot HEARTBEAT on {self.config.link.url!r} within {timeout_s} s "
                            f"(received {self.link.stats.received} messages, {self.link.stats.bad_data} bad)")
        with self._lock:
            if self.streamer is None:
                self.streamer = SetpointStreamer(self.cache.flavour, self.config.streamer)
            return self.cache.flavour

    # ================================================================ the loop
    def step(self, max_wait_s: float = 0.0) -> int:
        """One iteration: receive and dispatch, then timed sends. Returns the number of messages handled."""
        msgs = self._receive(max_wait_s)
        with self._lock:
            for msg, t_recv in msgs:
                self._dispatch(msg, t_recv)
            self._timed(self.clock.now_s())
            if msgs:
                self._cond.notify_all()
        return len(msgs)

    def _receive(self, max_wait_s: float) -> list:
        """``[(msg, t_recv_s)]`` that arrived on the link (a lockstep subclass waits here for what its
        simulated peers sent: ``sitl.world.LockstepBridge``)."""
        return self.link.recv(max_wait_s=max_wait_s)

    def _timed(self, now: float) -> None:
        if not self.link.is_open and not self.link.is_log:
            if now - self._t_reconnect >= self.config.reconnect_interval_s:
                self._t_reconnect = now
                try:
                    self.link.close()
                    self.link.open()
                    self._log(now, "link reopened")
                except LinkError as exc:
                    log.warning("reconnect failed: %s", exc)
            return
        if now - self._t_heartbeat_sent >= self.config.heartbeat_period_s:
            self._t_heartbeat_sent = now
            self._send(self.link.mav.heartbeat_encode(MAV_TYPE_ONBOARD_CONTROLLER, MAV_AUTOPILOT_INVALID, 0, 0,
                                                      MAV_STATE_ACTIVE))
        if self.cache.vehicle is not None and now - self._t_timesync_sent >= self.config.timesync_period_s:
            self._t_timesync_sent = now
            ts1 = int(now * 1e9) + 1
            self._timesync_pending[ts1] = now
            if len(self._timesync_pending) > 16:
                self._timesync_pending.pop(next(iter(self._timesync_pending)))
            self._send(self.link.mav.timesync_encode(0, ts1))
        for pc in self.commander.due_resends(now):
            self._send_command(pc)
        if any(p.done for p in self.commander._pending.values()):
            self._cond.notify_all()
        self._stream(now)

    def _stream(self, now: float) -> None:
        st = self.streamer
        if st is None or not st.active:
            return
        if math.isfinite(st._t_sent_s) and now - st._t_sent_s > self.config.stream_gap_limit_s:
            # We (not the pipeline) failed to send for longer than the autopilot tolerates: it may have
            # failed safe. Resuming would silently re-take control on PX4, so stop and wait for reengage().
            st.stop()
            self._set_control(Control.AUTOPILOT_FAILSAFE, now,
                              f"setpoint stream gap {now - st._t_sent_s:.2f} s: stream stopped, reengage() needed")
            return
        action, enc = st.tick(now)
        if action is StreamAction.SEND:
            if self.control is Control.BRAKING:
                self._set_control(Control.ENGAGED, now, "fresh setpoint: braking ends")
            self._send_setpoint(enc, now)
        elif action is StreamAction.BRAKE:
            if st.braking and self.control is Control.ENGAGED:
                self._set_control(Control.BRAKING, now,
                                  f"dead-man: setpoint {st.age_s(now):.2f} s old > {st.config.max_age_s} s, braking")
            self._send_setpoint(enc, now)
        elif action is StreamAction.HAND_BACK:
            fl = self.cache.flavour
            self._set_control(Control.HANDED_BACK, now,
                              f"dead-man: no setpoint for {st.age_s(now):.2f} s, handing back to {fl.hand_back_mode}")
            self._expected_mode = fl.hand_back_mode
            self._engaged_confirmed = False
            self._send_command(self.commander.begin(MAV_CMD_DO_SET_MODE, (*fl.set_mode_params(fl.hand_back_mode),
                               0, 0, 0, 0), now, self.config.command_timeout_s, self.config.command_retries))

    # ================================================================ receive side
    def _dispatch(self, msg, t_recv: float) -> None:
        mtype = msg.get_type()
        changed = self.cache.apply(msg, t_recv)
        if mtype == "HEARTBEAT":
            if changed:
                self._on_vehicle_heartbeat(t_recv)
            return
        if mtype in ("COMMAND_LONG", "COMMAND_INT"):
            self._on_command(msg, t_recv)
            return
        if mtype == "FOLLOW_TARGET" or mtype == "ADSB_VEHICLE":
            self._on_cue(msg, t_recv)
            return
        if mtype == f"UNKNOWN_{MSG_ID_EVENT}":
            # pymavlink's MAVLink_unknown carries the raw frame but no header: the source ids come from it
            ev = decode_event_frame(msg.data)
            if ev is None:
                self.counters.dropped_events += 1
            elif self.cache.vehicle is None or (ev.src_system, ev.src_component) == self.cache.vehicle:
                self._texts.append(AutopilotText(t_recv, ev.severity, ev.text, ev))
                if ev.name == "commander_failsafe_enter_generic" and \
                        self.control in (Control.ENGAGED, Control.BRAKING):
                    # PX4 says so ~0.5 s before its 1 Hz HEARTBEAT shows the new mode: stop at once
                    self.streamer.stop()
                    self._engaged_confirmed = False
                    self._set_control(Control.AUTOPILOT_FAILSAFE, t_recv,
                                      f"autopilot EVENT '{ev.text}': streaming stopped, reengage() needed")
            return
        if not self.cache.is_from_vehicle(msg):
            return
        if mtype == "COMMAND_ACK":
            if msg.target_system in (0, self.config.link.source_system) and \
                    msg.target_component in (0, self.config.link.source_component):
                self.commander.on_ack(msg.command, msg.result, t_recv)
        elif mtype == "PARAM_VALUE":
            self.params.on_param_value(msg, self.cache.flavour)
        elif mtype == "TIMESYNC":
            self._on_timesync(msg, t_recv)
        elif mtype == "STATUSTEXT":
            text = msg.text if isinstance(msg.text, str) else msg.text.decode("ascii", "replace")
            self._texts.append(AutopilotText(t_recv, msg.severity, text.rstrip("\x00")))

    def _on_vehicle_heartbeat(self, now: float) -> None:
        if self.streamer is None and self.cache.flavour is not None:
            self.streamer = SetpointStreamer(self.cache.flavour, self.config.streamer)
        mode = self.cache.mode
        fl = self.cache.flavour
        if self.control in (Control.ENGAGED, Control.BRAKING):
            if mode == fl.setpoint_mode:
                self._engaged_confirmed = True
            elif self._engaged_confirmed and mode != self._expected_mode:
                self.streamer.stop()
                self._engaged_confirmed = False
                self._set_control(Control.AUTOPILOT_FAILSAFE, now,
                                  f"autopilot took control: mode {mode} (status {self.cache.heartbeat.system_status});"
                                  " streaming stopped, reengage() needed")

    def _on_timesync(self, msg, now: float) -> None:
        if msg.tc1 == 0:  # the autopilot asks: answer with our time (PX4 sends these at 10 Hz)
            self._send(self.link.mav.timesync_encode(int(now * 1e9) + 1, msg.ts1))
            return
        t_sent = self._timesync_pending.pop(msg.ts1, None)
        if t_sent is not None:
            self.mapper.add_sync(t_sent, now, msg.tc1 * 1e-9)

    def _on_command(self, msg, now: float) -> None:
        me = (self.config.link.source_system, self.config.link.source_component)
        if (msg.target_system, msg.target_component) != me:
            if msg.target_system not in (0, me[0]) or msg.target_component not in (0, me[1]):
                self.counters.wrong_target += 1
            return  # broadcasts (e.g. PX4's gimbal-manager commands to 1/0) are not for us
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        signed = bool(msg.get_signed())
        result = MavResult.ACCEPTED
        if msg.command != MAV_CMD_USER_1:
            result = MavResult.UNSUPPORTED
        elif self.link.signing and not signed:
            self.counters.rejected_unsigned_commands += 1
            result = MavResult.DENIED
            log.warning("refused unsigned operator command from %s on a signed link", src)
        else:
            try:
                cmd = decode_operator_command(msg.param1, msg.param2, msg.param3, now, signed, *src)
            except MalformedCommand as exc:
                self.counters.malformed_operator_commands += 1
                result = MavResult.DENIED
                log.warning("malformed operator command from %s: %s", src, exc)
            else:
                self._op_cmds.append(cmd)
                for cb in self._op_callbacks:
                    cb(cmd)
        self._send(self.link.mav.command_ack_encode(msg.command, int(result), 0, 0, src[0], src[1]))

    def _on_cue(self, msg, now: float) -> None:
        origin = self.cache.origin
        if origin is None:
            self.counters.cues_without_origin += 1
            return
        cue = decode_follow_target(msg, origin, now) if msg.get_type() == "FOLLOW_TARGET" else \
            decode_adsb(msg, origin, now)
        if cue is None:
            self.cache.dropped_nan += 1
            return
        self._cues.append(cue)
        for cb in self._cue_callbacks:
            cb(cue)

    # ================================================================ send side
    def _send(self, msg) -> bool:
        return self.link.send(msg)

    def _target(self) -> tuple[int, int]:
        if self.cache.vehicle is None:
            raise LinkError("no vehicle yet: call connect() first")
        return self.cache.vehicle

    def _send_command(self, pc: PendingCommand) -> None:
        ts, tc = self._target()
        self._send(self.link.mav.command_long_encode(ts, tc, pc.command, pc.confirmation, *pc.params))

    def _send_setpoint(self, enc: EncodedSetpoint, now: float) -> None:
        ts, tc = self._target()
        t_ms = int(max(0.0, self.mapper.to_autopilot(now)) * 1000) & 0xFFFFFFFF
        self._send(self.link.mav.set_position_target_local_ned_encode(
            t_ms, ts, tc, enc.coordinate_frame, enc.type_mask, *enc.pos_m, *enc.vel_mps, *enc.acc_mps2,
            enc.yaw_rad, enc.yaw_rate_radps))

    def _set_control(self, c: Control, now: float, why: str) -> None:
        self.control = c
        self.counters.control_log.append((now, f"{c.value}: {why}"))
        log.warning("control -> %s: %s", c.value, why)

    def _log(self, now: float, what: str) -> None:
        self.counters.control_log.append((now, what))
        log.info(what)

    # ================================================================ waiting
    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Block until ``predicate()`` is true or ``timeout_s`` passes on the bridge clock."""
        deadline = self.clock.now_s() + timeout_s
        # Hang guard only (not logic time): bounds the wait if the injected clock stands still, e.g. a
        # lockstep clock nobody advances.
        wall_deadline = time.monotonic() + 4.0 * timeout_s + 1.0
        while True:
            with self._lock:
                if predicate():
                    return True
                if self.clock.now_s() >= deadline or time.monotonic() > wall_deadline:
                    return False
                if self._thread is not None:
                    self._cond.wait(timeout=0.005)
                    continue
            if self.step(max_wait_s=0.005) and not self.link.is_log:
                continue
            self._cond_idle_wait()

    def _cond_idle_wait(self) -> None:
        with self._cond:
            self._cond.wait(timeout=0.004)

    def command(self, command: int, params: tuple[float, ...], timeout_s: float | None = None,
                retries: int | None = None) -> None:
        """COMMAND_LONG with ACK/retry; raises ``CommandError`` for any result but ACCEPTED or no ACK."""
        cfg = self.config
        with self._lock:
            pc = self.commander.begin(command, tuple(params), self.clock.now_s(),
                                      cfg.command_timeout_s if timeout_s is None else timeout_s,
                                      cfg.command_retries if retries is None else retries)
            self._send_command(pc)
        self.wait_for(lambda: pc.done, (pc.timeout_s + 0.05) * (pc.retries + 1) + 0.5)
        if not pc.done:
            raise CommandError(f"command {command}: no COMMAND_ACK", command=command, result=None,
                               result_name="NO_ACK")
        pc.raise_if_failed()

    # ================================================================ public API: state
    @property
    def flavour(self) -> Flavour | None:
        return self.cache.flavour

    @property
    def state(self) -> VehicleState | None:
        with self._lock:
            return self.cache.current()

    def state_at(self, t_s: float) -> VehicleState | None:
        """State at ``t_s`` (our clock): position/velocity linear, attitude slerp; None outside history."""
        with self._lock:
            return self.cache.state_at(t_s)

    def autopilot_time_to_ours(self, t_autopilot_s: float) -> float:
        """An instant on the autopilot's boot clock (s) on our clock (s), by the mapping that stamps its telemetry
        (TIMESYNC fit, arrival envelope before it); e.g. a camera frame's embedded exposure time."""
        with self._lock:
            return float(self.mapper.to_ours(t_autopilot_s))

    @property
    def mode(self) -> str:
        return self.cache.mode

    @property
    def armed(self) -> bool:
        return self.cache.armed

    @property
    def link_alive(self) -> bool:
        return self.clock.now_s() - self.cache.t_heartbeat_s < self.config.link_lost_s

    # ================================================================ public API: vehicle commands
    def set_mode(self, name: str, wait_s: float = 0.0) -> None:
        """DO_SET_MODE by flavour mode name; optionally wait until HEARTBEAT shows it (LinkError if not)."""
        fl = self._need_flavour()
        p1, p2, p3 = fl.set_mode_params(name)
        with self._lock:
            self._expected_mode = name
        self.command(MAV_CMD_DO_SET_MODE, (p1, p2, p3, 0, 0, 0, 0))
        if wait_s > 0 and not self.wait_for(lambda: self.mode == name, wait_s):
            raise LinkError(f"mode {name} acknowledged but HEARTBEAT still shows {self.mode} after {wait_s} s")

    def arm(self, force: bool = False, wait_s: float = 0.0, hold: Setpoint | None = None) -> None:
        """Arm; optionally wait for the armed HEARTBEAT (LinkError if it does not come). ``hold``: a setpoint
        the bridge keeps fresh while it waits (arming an engaged vehicle: the streamed hold must not go stale
        and trip the dead-man watchdog before the pipeline's first setpoint)."""
        self.command(MAV_CMD_COMPONENT_ARM_DISARM, (1, FORCE_MAGIC if force else 0, 0, 0, 0, 0, 0))
        if wait_s > 0 and not self._wait_refreshing(hold, lambda: self.armed, wait_s):
            raise LinkError(f"arm acknowledged but HEARTBEAT not armed after {wait_s} s")

    def disarm(self, force: bool = False) -> None:
        self.command(MAV_CMD_COMPONENT_ARM_DISARM, (0, FORCE_MAGIC if force else 0, 0, 0, 0, 0, 0))

    def takeoff(self, alt_m: float, wait_s: float = 0.0, tol_m: float = 0.5) -> None:
        """Climb ``alt_m`` above the current position.

        ArduPilot: NAV_TAKEOFF (p7 = metres above home) while armed in GUIDED; setpoints would cancel it, so
        none are streamed until ``engage()``/``set_setpoint``. PX4: an OFFBOARD position setpoint ``alt_m``
        above the current position (PX4 takes off from climb setpoints; ``engage()`` and ``arm()`` first);
        while waiting the bridge refreshes it itself so the dead-man watchdog does not brake.
        """
        fl = self._need_flavour()
        if not (math.isfinite(alt_m) and alt_m > 0):
            raise ValueError(f"takeoff altitude must be a positive number of metres, got {alt_m}")
        s0 = self.state
        if s0 is None:
            raise LinkError("no position from the autopilot yet: cannot take off")
        target = s0.pos_ned_m.copy()
        target[2] -= alt_m
        if fl.autopilot is Autopilot.ARDUPILOT:
            # p7 is metres above home: our height above home (home's local z from HOME_POSITION, else the
            # EKF origin) plus the climb
            home_z = self.cache.home_ned_m[2] if self.cache.home_ned_m is not None else 0.0
            self.command(MAV_CMD_NAV_TAKEOFF, (0, 0, 0, 0, 0, 0, float(home_z - s0.pos_ned_m[2] + alt_m)))
            if wait_s > 0 and not self.wait_for(lambda: self.state.pos_ned_m[2] <= target[2] + tol_m, wait_s):
                raise LinkError(f"takeoff to {alt_m} m not reached in {wait_s} s (z={self.state.pos_ned_m[2]:.2f})")
            return
        sp = Setpoint(t_s=self.clock.now_s(), pos_ned_m=target)
        self.set_setpoint(sp)
        if wait_s > 0:
            if self._wait_refreshing(sp, lambda: self.state.pos_ned_m[2] <= target[2] + tol_m, wait_s):
                return
            raise LinkError(f"takeoff to {alt_m} m not reached in {wait_s} s (z={self.state.pos_ned_m[2]:.2f})")

    def land(self) -> None:
        """Stop streaming and command NAV_LAND (PX4 AUTO.LAND, ArduPilot LAND)."""
        fl = self._need_flavour()
        self.disengage("landing")
        with self._lock:
            self._expected_mode = fl.land_mode
        self.command(MAV_CMD_NAV_LAND, (0, 0, 0, 0, math.nan, math.nan, math.nan))

    def return_to_launch(self) -> None:
        fl = self._need_flavour()
        self.disengage("return to launch")
        with self._lock:
            self._expected_mode = fl.rtl_mode
        self.command(MAV_CMD_NAV_RETURN_TO_LAUNCH, (0, 0, 0, 0, 0, 0, 0))

    # ================================================================ public API: setpoints
    def set_setpoint(self, sp: Setpoint) -> None:
        """Hand the newest setpoint to the streamer (validated now: SetpointError before anything is sent).

        It is re-sent at the streamer rate while younger than ``max_age_s``; see ``Control``. In
        AUTOPILOT_FAILSAFE or HANDED_BACK it is stored but not sent until ``reengage()``.
        """
        st = self._need_streamer()
        with self._lock:
            st.set(sp, self.clock.now_s())
            if self.control is Control.IDLE and self.cache.flavour.autopilot is Autopilot.ARDUPILOT \
                    and self._engage_pending:
                st.start()
                self._set_control(Control.ENGAGED, self.clock.now_s(), "first setpoint: streaming")

    def engage(self, initial: Setpoint | None = None, timeout_s: float = 5.0) -> None:
        """Put the vehicle under our setpoints.

        PX4: stream ``initial`` (default: zero velocity) for ``prestream_s``, then DO_SET_MODE OFFBOARD (the
        switch needs a live stream). ArduPilot: DO_SET_MODE GUIDED; streaming starts with the first
        setpoint (a setpoint during NAV_TAKEOFF would cancel the takeoff).
        """
        fl = self._need_flavour()
        st = self._need_streamer()
        now = self.clock.now_s()
        if self.control in (Control.AUTOPILOT_FAILSAFE, Control.HANDED_BACK):
            raise MavlinkError(f"control is {self.control.value}: only reengage(reason) takes it back")
        if initial is not None:
            self.set_setpoint(initial)
        if fl.autopilot is Autopilot.PX4:
            with self._lock:
                st.start()
                self._engaged_confirmed = False
                self._set_control(Control.ENGAGED, now, "engage: pre-streaming setpoints")
            t_end = now + self.config.prestream_s
            self._wait_refreshing(initial, lambda: self.clock.now_s() >= t_end, self.config.prestream_s + 1.0)
            self.set_mode(fl.setpoint_mode)
            if not self._wait_refreshing(initial, lambda: self.mode == fl.setpoint_mode, timeout_s):
                raise LinkError(f"{fl.setpoint_mode} acknowledged but HEARTBEAT shows {self.mode} after {timeout_s} s")
        else:
            if self.mode != fl.setpoint_mode:
                self.set_mode(fl.setpoint_mode, wait_s=timeout_s)
            with self._lock:
                self._engaged_confirmed = True
                self._engage_pending = True
                if initial is not None or st._encoded is not None and st.age_s(self.clock.now_s()) < 0.2:
                    st.start()
                    self._set_control(Control.ENGAGED, now, "engage: streaming")

    def _wait_refreshing(self, sp: Setpoint | None, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait while the bridge itself keeps ``sp`` fresh (its own setpoint, not the pipeline's)."""
        deadline = self.clock.now_s() + timeout_s
        while self.clock.now_s() < deadline:
            if sp is not None:
                self.set_setpoint(sp)
            if self.wait_for(predicate, 0.05):
                return True
        return predicate()

    def disengage(self, why: str = "disengage") -> None:
        """Stop streaming on purpose (no mode change). Control -> IDLE."""
        with self._lock:
            if self.streamer is not None:
                self.streamer.stop()
            self._engage_pending = False
            self._engaged_confirmed = False
            if self.control is not Control.IDLE:
                self._set_control(Control.IDLE, self.clock.now_s(), why)

    def suspend_stream(self) -> None:
        """Stop sending setpoints without telling anyone (simulates a lost companion; tests use it).

        The autopilot's own loss failsafe follows; the bridge then needs ``reengage()``.
        """
        with self._lock:
            if self.streamer is not None:
                self.streamer.stop()
            self._log(self.clock.now_s(), "stream suspended")

    def reengage(self, reason: str, initial: Setpoint | None = None, timeout_s: float = 5.0) -> None:
        """The only way back from AUTOPILOT_FAILSAFE or HANDED_BACK: logged, then ``engage()``."""
        with self._lock:
            self._log(self.clock.now_s(), f"reengage requested ({self.control.value}, mode {self.mode}): {reason}")
            self.control = Control.IDLE
        self.engage(initial=initial, timeout_s=timeout_s)

    # ================================================================ public API: streams, params, text
    def request_streams(self, rates_hz: dict[int, float] | None = None) -> dict[int, str]:
        """Ask for telemetry. ArduPilot sends nothing by default (REQUEST_DATA_STREAM for position, attitude
        and status groups); both get SET_MESSAGE_INTERVAL for ``rates_hz`` {msg_id: Hz}. Returns
        {msg_id: result name}; refusals are reported, not raised."""
        fl = self._need_flavour()
        ts, tc = self._target()
        if rates_hz is None:
            rates_hz = {31: 50.0, 32: 30.0, 242: 0.5}
            if fl.autopilot is Autopilot.ARDUPILOT:
                rates_hz |= {30: 50.0, 33: 10.0, 49: 1.0}
            else:
                rates_hz = {}  # PX4 pushes its onboard set (section 3); nothing to ask
        if fl.autopilot is Autopilot.ARDUPILOT:
            for stream_id, hz in ((6, 30), (10, 50), (2, 5), (12, 2)):
                self._send(self.link.mav.request_data_stream_encode(ts, tc, stream_id, hz, 1))
        out = {}
        for msg_id, hz in rates_hz.items():
            try:
                self.command(MAV_CMD_SET_MESSAGE_INTERVAL, (msg_id, 1e6 / hz, 0, 0, 0, 0, 0),
                             timeout_s=0.5, retries=2)
                out[msg_id] = "ACCEPTED"
            except CommandError as exc:
                out[msg_id] = exc.result_name
        return out

    def param_get(self, name: str, timeout_s: float = 2.0) -> float | int:
        self._need_flavour()
        ts, tc = self._target()
        with self._lock:
            self.params.values.pop(name, None)
        for _ in range(3):
            self._send(self.link.mav.param_request_read_encode(ts, tc, name.encode(), -1))
            if self.wait_for(lambda: name in self.params.values, timeout_s / 3):
                return self.params.values[name].value
        raise ParamError(f"parameter {name!r}: no PARAM_VALUE within {timeout_s} s (unknown name?)")

    def param_set(self, name: str, value: float, param_type: int | None = None,
                  timeout_s: float = 2.0) -> float | int:
        """Write and wait for the echo; the type is read first when not given. Returns the echoed value."""
        fl = self._need_flavour()
        ts, tc = self._target()
        if not math.isfinite(float(value)):
            raise ParamError(f"parameter {name!r}: value {value} is not finite")
        if param_type is None:
            self.param_get(name, timeout_s)
            param_type = self.params.values[name].param_type
        try:
            wire = fl.encode_param(value, param_type)
        except (ValueError, struct.error) as exc:
            raise ParamError(f"parameter {name!r}: cannot encode {value} as type {param_type}: {exc}") from exc
        for _ in range(3):
            with self._lock:
                self.params.values.pop(name, None)
            self._send(self.link.mav.param_set_encode(ts, tc, name.encode(), wire, param_type))
            if self.wait_for(lambda: name in self.params.values, timeout_s / 3):
                got = self.params.values[name].value
                if got != value and not (isinstance(got, float) and abs(got - float(value)) <= 1e-6 * abs(value)):
                    raise ParamError(f"parameter {name!r}: wrote {value}, autopilot kept {got}")
                return got
        raise ParamError(f"parameter {name!r}: no PARAM_VALUE echo within {timeout_s} s")

    def param_list(self, timeout_s: float = 10.0) -> dict[str, ParamValue]:
        """All parameters (PX4's ``_HASH_CHECK`` goes to ``self.params.hash_check``); missing ones re-read."""
        self._need_flavour()
        ts, tc = self._target()
        with self._lock:
            self.params.by_index.clear()
            self.params.count = None
        self._send(self.link.mav.param_request_list_encode(ts, tc))
        deadline = self.clock.now_s() + timeout_s
        last = -1
        while self.clock.now_s() < deadline:
            self.wait_for(lambda: False, 0.3)
            with self._lock:
                missing = self.params.missing_indices()
                n = len(self.params.by_index)
                if self.params.count is not None and not missing:
                    return dict(self.params.values)
            if n == last and self.params.count is not None:  # quiet: ask for the holes by index
                for i in missing[:20]:
                    self._send(self.link.mav.param_request_read_encode(ts, tc, b"", i))
            last = n
        raise ParamError(f"parameter list incomplete after {timeout_s} s: "
                         f"{len(self.params.by_index)}/{self.params.count}")

    def send_statustext(self, text: str, severity: int = 6) -> None:
        """STATUSTEXT to the ground station, chunked by 50 characters (``id``/``chunk_seq`` when > 1 chunk)."""
        data = text.encode("ascii", "replace")
        chunks = [data[i:i + 50] for i in range(0, max(len(data), 1), 50)]
        with self._lock:
            self._statustext_id = (self._statustext_id % 65535) + 1 if len(chunks) > 1 else 0
            sid = self._statustext_id
        for seq, chunk in enumerate(chunks):
            self._send(self.link.mav.statustext_encode(severity, chunk, sid, seq))

    # ================================================================ public API: queues
    def poll_cues(self) -> list[TargetCue]:
        with self._lock:
            out = list(self._cues)
            self._cues.clear()
            return out

    def poll_operator_commands(self) -> list[OperatorCommand]:
        with self._lock:
            out = list(self._op_cmds)
            self._op_cmds.clear()
            return out

    def poll_texts(self) -> list[AutopilotText]:
        """STATUSTEXTs and decoded PX4 EVENTs from the autopilot, oldest first."""
        with self._lock:
            out = list(self._texts)
            self._texts.clear()
            return out

    def on_cue(self, cb: Callable[[TargetCue], None]) -> None:
        self._cue_callbacks.append(cb)

    def on_operator_command(self, cb: Callable[[OperatorCommand], None]) -> None:
        self._op_callbacks.append(cb)

    # ================================================================ helpers
    def _need_flavour(self) -> Flavour:
        fl = self.cache.flavour
        if fl is None:
            raise LinkError("autopilot flavour unknown: no HEARTBEAT yet (call connect())")
        return fl

    def _need_streamer(self) -> SetpointStreamer:
        self._need_flavour()
        with self._lock:
            if self.streamer is None:
                self.streamer = SetpointStreamer(self.cache.flavour, self.config.streamer)
            return self.streamer


__all__ = ["AutopilotText", "Bridge", "BridgeConfig", "Control"]
