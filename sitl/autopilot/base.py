"""The simulated-autopilot core shared by the PX4 and ArduPilot endpoints.

An :class:`Autopilot` owns the airframe (``sitl.vehicle`` model, stepped by the scalar ``physics.step_fast``),
the seeded wind, a simulated boot clock, its parameters and its links. ``step(dt_s)`` / ``run_until(t_s)``
advance it in lockstep: every physics tick (``physics_dt_s``, default 10 ms) it reads what arrived on its
links, runs the flavour's mode logic, steps the airframe and sends the streams that are due. The real-time
runner (``sitl.autopilot.server``) calls the same ``tick`` on a wall-clock schedule.

Frames: local NED relative to home (= EKF origin), metres; ``t_s`` is seconds since boot (simulated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from autonomy.geometry import GRAVITY_MPS2, ned_to_geodetic, quat_to_euler, rotate_ned_to_body
from autonomy.mavlink.wire import dialect
from sitl.autopilot.params import ParamTable
from sitl.autopilot.physics import step_fast
from sitl.vehicle import (
    ControlGains,
    MultirotorParams,
    MultirotorState,
    WindParams,
    position_control,
    velocity_control,
    wind_step,
)

NAN3 = (math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class SimConfig:
    """World and airframe of one simulated vehicle."""

    physics_dt_s: float = 0.01
    home_lat_deg: float = 47.397742          # PX4 SITL default home (spec §11)
    home_lon_deg: float = 8.545594
    home_alt_m: float = 488.0
    home_yaw_deg: float = 0.0
    wind: WindParams = field(default_factory=WindParams)
    seed: int = 0
    estimator_ready_s: float = 3.0           # boot time until a position estimate exists (real: 5 s / 41 s)
    unix_time_at_boot_s: float = 1_764_000_000.0
    airframe: MultirotorParams = field(default_factory=MultirotorParams)
    # a message is handled this long after it arrives (whole physics ticks): the companion's processing and the
    # link to the flight controller, which the lockstep world otherwise delivers within the tick it was sent in
    uplink_delay_s: float = 0.0


@dataclass(frozen=True)
class Limits:
    """Speed and tilt limits of the current mode (m/s, rad)."""

    xy_mps: float
    up_mps: float
    down_mps: float
    tilt_rad: float


@dataclass
class Setpoint:
    """A trajectory set-point: NaN components are not controlled (PX4 ``trajectory_setpoint`` semantics)."""

    pos_ned_m: tuple[float, float, float] = NAN3
    vel_ned_mps: tuple[float, float, float] = NAN3
    acc_ned_mps2: tuple[float, float, float] = NAN3
    yaw_rad: float = math.nan
    yaw_rate_radps: float = math.nan


@dataclass
class LinkState:
    """What the autopilot keeps per link: stream intervals, schedule, seen GCS heartbeat, param list cursor."""

    link: object
    mode: str = "onboard"  # PX4 MAVLink instance mode: "onboard" (companion link) or "normal" (GCS link)
    intervals_s: dict[int, float] = field(default_factory=dict)
    next_due_s: dict[int, float] = field(default_factory=dict)
    last_gcs_heartbeat_s: float = -1e9
    param_queue: list = field(default_factory=list)
    seen_sysids: set = field(default_factory=set)
    group_hz: dict[int, float] = field(default_factory=dict)     # ArduPilot REQUEST_DATA_STREAM rates
    explicit: set = field(default_factory=set)                   # ids set by SET_MESSAGE_INTERVAL


def _finite3(v: tuple[float, float, float]) -> bool:
    return any(math.isfinite(c) for c in v)


class Autopilot:
    """Common machinery. Subclasses implement ``handle_message``, ``update_logic`` and the HEARTBEAT fields."""

    flavour = "?"
    autopilot_id = dialect.MAV_AUTOPILOT_GENERIC

    def __init__(self, config: SimConfig, params: ParamTable, links: list | None = None) -> None:
        self.config = config
        self.params = params
        self.sysid = 1
        self.compid = 1
        self._rng = np.random.default_rng(config.seed)
        self._ticks = 0
        self._uplink_queue: list = []   # (tick due, link, messages) held back by config.uplink_delay_s
        yaw0 = math.radians(config.home_yaw_deg)
        self.state = MultirotorState(q_body_to_ned=np.array([math.cos(yaw0 / 2), 0.0, 0.0, math.sin(yaw0 / 2)]))
        self._gust = np.zeros(3)
        self.wind_ned_mps = np.array(config.wind.mean_ned_mps, dtype=np.float64)
        self.armed = False
        self.landed = True
        self._on_ground_since_s = 0.0
        self.arm_time_s = -1.0
        self.landed_time_s = 0.0
        self.ever_airborne_since_arm = False
        self.spool_until_s = 0.0
        self.takeoff_start_s = -1.0
        self._statustext_id = 0
        self.statustexts: list[tuple[float, int, str]] = []  # (t_s, severity, text), for tests and logs
        self.events: list[tuple[float, str]] = []
        self.links: list[LinkState] = []
        self._airframe_cache: dict[float, MultirotorParams] = {}
        self._msg_cache: dict[int, object] = {}
        self.last_acc_cmd = (0.0, 0.0, 0.0)
        self.last_setpoint_used = Setpoint()
        for link in links or []:
            self.add_link(link)

    # ------------------------------------------------------------------ clock and stepping
    @property
    def t_s(self) -> float:
        return self._ticks * self.config.physics_dt_s

    @property
    def time_boot_ms(self) -> int:
        return int(self.t_s * 1000.0) & 0xFFFFFFFF

    def add_link(self, link, mode: str = "onboard") -> LinkState:
        ls = LinkState(link=link, mode=mode)
        self.links.append(ls)
        self.on_new_link(ls)
        return ls

    def on_new_link(self, ls: LinkState) -> None:
        """Subclass hook: install default streams."""

    def step(self, dt_s: float) -> None:
        """Advance by ``dt_s`` seconds of simulated time (rounded to whole physics ticks)."""
        if not math.isfinite(dt_s) or dt_s < 0:
            raise ValueError(f"dt_s must be finite and >= 0, got {dt_s!r}")
        n = round(dt_s / self.config.physics_dt_s)
        for _ in range(n):
            self.tick()

    def run_until(self, t_s: float) -> None:
        """Advance until the simulated boot clock reaches ``t_s`` (returns early while not booted)."""
        while self.t_s < t_s - 1e-9:
            before = self._ticks
            self.tick()
            if self._ticks == before:
                return

    def booted(self) -> bool:
        """Subclass hook: False keeps the clock stopped (ArduPilot SITL waits for its first TCP client)."""
        return True

    def tick(self) -> None:
        """One physics tick: read links, mode logic, airframe, streams."""
        pending = [(ls, ls.link.poll()) for ls in self.links]
        if not self.booted():
            return
        if self.config.uplink_delay_s > 0.0:
            due_tick = self._ticks + round(self.config.uplink_delay_s / self.config.physics_dt_s)
            self._uplink_queue.extend((due_tick, ls, msgs) for ls, msgs in pending if msgs)
            pending = [(ls, msgs) for due, ls, msgs in self._uplink_queue if due <= self._ticks]
            self._uplink_queue = [q for q in self._uplink_queue if q[0] > self._ticks]
        for ls, msgs in pending:
            for msg in msgs:
                src = msg.get_srcSystem(), msg.get_srcComponent()
                if src == (self.sysid, self.compid):
                    continue  # our own messages looped back
                ls.seen_sysids.add(src)
                try:
                    self.handle_message(ls, msg)
                except Exception as e:  # noqa: BLE001 - bad input must never stop the autopilot
                    # a message our handler cannot digest: counted, reported, and a command is refused (FAILED)
                    # so that the client does not wait for an ACK that never comes
                    ls.link.stats.rx_bad += 1
                    self.statustext(3, f"bad {msg.get_type()}: {type(e).__name__}"[:50])
                    if msg.get_type() in ("COMMAND_LONG", "COMMAND_INT"):
                        self.ack(ls, msg, msg.command, dialect.MAV_RESULT_FAILED)
        self.update_logic()
        acc, yaw, powered = self.compute_control()
        self.last_acc_cmd = acc
        dt = self.config.physics_dt_s
        w = self.config.wind
        if w.gust_std_mps > 0.0:
            self._gust = wind_step(self._gust, w, dt, self._rng)
            self.wind_ned_mps = np.asarray(w.mean_ned_mps, dtype=np.float64) + self._gust
        air = self.airframe(self.tilt_limit_rad())
        prev = self.state
        self.state = step_fast(prev, air, acc, yaw, dt, tuple(self.wind_ned_mps), powered)
        if prev.on_ground and self.state.on_ground:  # static friction: wind does not slide a parked airframe
            self.state = replace(self.state, pos_ned_m=prev.pos_ned_m)
        self._ticks += 1
        self._update_land_detector()
        self._msg_cache.clear()
        self._send_streams()
        self.after_tick()
        for ls in self.links:
            ls.link.flush()

    def after_tick(self) -> None:
        """Subclass hook: param list bursts, one-shot messages."""

    # ------------------------------------------------------------------ vehicle helpers
    @property
    def pos_ned_m(self) -> np.ndarray:
        return self.state.pos_ned_m

    @property
    def vel_ned_mps(self) -> np.ndarray:
        return self.state.vel_ned_mps

    @property
    def yaw_rad(self) -> float:
        return quat_to_euler(self.state.q_body_to_ned)[2]

    @property
    def alt_rel_m(self) -> float:
        return -float(self.state.pos_ned_m[2])

    @property
    def estimator_ready(self) -> bool:
        return self.t_s >= self.config.estimator_ready_s

    def airframe(self, tilt_rad: float) -> MultirotorParams:
        key = round(tilt_rad, 6)
        p = self._airframe_cache.get(key)
        if p is None:
            base = self.config.airframe
            p = replace(base, max_tilt_rad=min(base.max_tilt_rad, max(tilt_rad, math.radians(5.0))))
            self._airframe_cache[key] = p
        return p

    def tilt_limit_rad(self) -> float:
        return self.config.airframe.max_tilt_rad

    def _update_land_detector(self) -> None:
        s = self.state
        if not s.on_ground:
            if self.landed and self.alt_rel_m > 0.05:
                self.landed = False
                self.ever_airborne_since_arm = True
                self.on_takeoff_detected()
            self._on_ground_since_s = self.t_s
            return
        if not self.landed and self.t_s - self._on_ground_since_s > 0.3:
            self.landed = True
            self.landed_time_s = self.t_s
            self.on_landing_detected()

    def on_takeoff_detected(self) -> None:
        self.events.append((self.t_s, "takeoff detected"))

    def on_landing_detected(self) -> None:
        self.events.append((self.t_s, "landing detected"))

    def do_arm(self) -> None:
        self.armed = True
        self.arm_time_s = self.t_s
        self.ever_airborne_since_arm = False
        self.events.append((self.t_s, "armed"))

    def do_disarm(self, reason: str) -> None:
        self.armed = False
        self.events.append((self.t_s, f"disarmed: {reason}"))

    # ------------------------------------------------------------------ control
    def gains(self) -> ControlGains:
        return ControlGains()

    def accel_for(self, sp: Setpoint, lim: Limits) -> tuple[float, float, float]:
        """PX4-style cascade: P position + velocity feed-forward (clipped), P velocity + acceleration FF."""
        g = self.gains()
        pos, vel = self.state.pos_ned_m, self.state.vel_ned_mps
        if _finite3(sp.pos_ned_m) or _finite3(sp.vel_ned_mps):
            v_sp = position_control(np.array(sp.pos_ned_m), np.array(sp.vel_ned_mps), pos, g,
                                    lim.xy_mps, lim.up_mps, lim.down_mps)
        else:
            v_sp = np.array(NAN3)
        acc = velocity_control(v_sp, np.array(sp.acc_ned_mps2), vel, g)
        return float(acc[0]), float(acc[1]), float(acc[2])

    def compute_control(self) -> tuple[tuple[float, float, float], float | None, bool]:
        """(commanded acceleration NED m/s^2, yaw command rad or None, motors powered)."""
        if not self.armed:
            return (0.0, 0.0, 0.0), None, False
        sp, lim, climb_wanted = self.current_setpoint()
        self.last_setpoint_used = sp
        if self.landed and (not climb_wanted or self.t_s < self.spool_until_s):
            return (0.0, 0.0, 0.0), None, False  # idle on the ground
        if self.landed and self.takeoff_start_s < 0:
            self.takeoff_start_s = self.t_s
        yaw = sp.yaw_rad if math.isfinite(sp.yaw_rad) else None
        if yaw is None and math.isfinite(sp.yaw_rate_radps):
            yaw = self.yaw_rad + sp.yaw_rate_radps * self.config.physics_dt_s * 4.0
        if self.landed:
            # on the ground: lift straight up, hover thrust plus the climb demand
            acc = self.accel_for(sp, lim)
            return (0.0, 0.0, min(acc[2], -0.5)), yaw, True
        return self.accel_for(sp, lim), yaw, True

    def current_setpoint(self) -> tuple[Setpoint, Limits, bool]:
        """Subclass: the set-point of the active mode, the limits, and whether it asks to leave the ground."""
        raise NotImplementedError

    # ------------------------------------------------------------------ messages out
    def send(self, ls: LinkState, msg) -> None:
        ls.link.send(msg)

    def broadcast(self, msg) -> None:
        for ls in self.links:
            ls.link.send(msg)

    def statustext(self, severity: int, text: str) -> None:
        self.statustexts.append((self.t_s, severity, text))
        raw = text.encode("ascii", "replace")
        if len(raw) <= 50:
            msgs = [dialect.MAVLink_statustext_message(severity, raw, 0, 0)]
        else:  # MAVLink 2 chunking: same id, chunk_seq 0.., the last chunk NUL-terminated
            self._statustext_id = self._statustext_id % 65535 + 1
            chunks = [raw[i:i + 50] for i in range(0, len(raw), 50)]
            msgs = [dialect.MAVLink_statustext_message(severity, c, self._statustext_id, k)
                    for k, c in enumerate(chunks)]
        for ls in self.links:
            if self.statustext_allowed(ls):
                for m in msgs:
                    ls.link.send(m)

    def statustext_allowed(self, ls: LinkState) -> bool:
        return True

    def ack(self, ls: LinkState, msg, command: int, result: int, times: int = 1) -> None:
        a = dialect.MAVLink_command_ack_message(command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent())
        for _ in range(times):
            ls.link.send(a)

    def heartbeat_message(self):
        raise NotImplementedError

    def _send_streams(self) -> None:
        t = self.t_s
        eps = 1e-9
        for ls in self.links:
            if not ls.link.connected:
                continue
            for mid, iv in ls.intervals_s.items():
                if iv is None or iv <= 0:
                    continue
                due = ls.next_due_s.get(mid, 0.0)
                if t + eps < due:
                    continue
                nxt = due + iv
                ls.next_due_s[mid] = nxt if nxt > t else t + iv
                msg = self.build(mid)
                if msg is not None:
                    ls.link.send(msg)

    def build(self, mid: int):
        """The current value of message ``mid`` (cached per tick), or None when it cannot be sent now."""
        if mid in self._msg_cache:
            return self._msg_cache[mid]
        b = self.BUILDERS.get(mid)
        msg = b(self) if b is not None else None
        self._msg_cache[mid] = msg
        return msg

    # --- builders (wire units only here: degE7, mm, cm/s, cdeg)
    def _geo(self) -> tuple[float, float, float]:
        c = self.config
        return ned_to_geodetic(self.state.pos_ned_m, c.home_lat_deg, c.home_lon_deg, c.home_alt_m)

    def _b_heartbeat(self):
        return self.heartbeat_message()

    def _b_attitude(self):
        r, p, y = quat_to_euler(self.state.q_body_to_ned)
        w = self.state.rate_body_radps
        return dialect.MAVLink_attitude_message(self.time_boot_ms, r, p, y, float(w[0]), float(w[1]), float(w[2]))

    def _b_attitude_quaternion(self):
        q = self.state.q_body_to_ned
        w = self.state.rate_body_radps
        return dialect.MAVLink_attitude_quaternion_message(
            self.time_boot_ms, float(q[0]), float(q[1]), float(q[2]), float(q[3]),
            float(w[0]), float(w[1]), float(w[2]), [0.0, 0.0, 0.0, 0.0])

    def _b_local_position_ned(self):
        if not self.estimator_ready:
            return None
        p, v = self.state.pos_ned_m, self.state.vel_ned_mps
        return dialect.MAVLink_local_position_ned_message(
            self.time_boot_ms, float(p[0]), float(p[1]), float(p[2]), float(v[0]), float(v[1]), float(v[2]))

    def _b_global_position_int(self):
        if not self.estimator_ready:
            return None
        lat, lon, alt = self._geo()
        v = self.state.vel_ned_mps
        hdg = round(math.degrees(self.yaw_rad) * 100) % 36000
        return dialect.MAVLink_global_position_int_message(
            self.time_boot_ms, round(lat * 1e7), round(lon * 1e7), round(alt * 1000),
            round(self.alt_rel_m * 1000), _i16(v[0] * 100), _i16(v[1] * 100), _i16(v[2] * 100), hdg)

    def _specific_force_body(self) -> np.ndarray:
        f_ned = np.asarray(self.state.acc_ned_mps2) - np.array([0.0, 0.0, GRAVITY_MPS2])
        return rotate_ned_to_body(self.state.q_body_to_ned, f_ned)

    def _b_highres_imu(self):
        a = self._specific_force_body()
        w = self.state.rate_body_radps
        alt = self.config.home_alt_m + self.alt_rel_m
        press = 1013.25 * (1 - 2.25577e-5 * alt) ** 5.25588
        return dialect.MAVLink_highres_imu_message(
            int(self.t_s * 1e6), float(a[0]), float(a[1]), float(a[2]), float(w[0]), float(w[1]), float(w[2]),
            0.21, 0.0, 0.43, press, 0.0, alt, 25.0, 0x1FFF, 0)

    def _b_odometry(self):
        if not self.estimator_ready:
            return None
        p = self.state.pos_ned_m
        q = self.state.q_body_to_ned
        v = self.state.vel_ned_mps
        w = self.state.rate_body_radps
        # as PX4 sends it (flightA.tlog): velocity in LOCAL_NED (child_frame_id 1), upper-triangle covariances
        pcov = [0.0] * 21
        vcov = [0.0] * 21
        for k, (pv, vv) in zip((0, 6, 11, 15, 18, 20), ((0.01, 0.01), (0.01, 0.01), (0.02, 0.01),
                                                        (1e-4, 0.0), (1e-4, 0.0), (1e-4, 0.0)), strict=True):
            pcov[k], vcov[k] = pv, vv
        return dialect.MAVLink_odometry_message(
            int(self.t_s * 1e6), dialect.MAV_FRAME_LOCAL_NED, dialect.MAV_FRAME_LOCAL_NED,
            float(p[0]), float(p[1]), float(p[2]), [float(c) for c in q],
            float(v[0]), float(v[1]), float(v[2]), float(w[0]), float(w[1]), float(w[2]), pcov, vcov, 0,
            8, 0)

    def _b_altitude(self):
        amsl = self.config.home_alt_m + self.alt_rel_m
        return dialect.MAVLink_altitude_message(
            int(self.t_s * 1e6), amsl, amsl, self.alt_rel_m, self.alt_rel_m, math.nan, math.nan)

    def _b_vfr_hud(self):
        v = self.state.vel_ned_mps
        gs = math.hypot(v[0], v[1])
        thr = int(min(100, max(0, self.state.thrust_mps2 / (self.config.airframe.max_thrust_to_weight
                                                           * GRAVITY_MPS2) * 100)))
        hdg = int(math.degrees(self.yaw_rad)) % 360
        return dialect.MAVLink_vfr_hud_message(gs, gs, hdg, thr, self.config.home_alt_m + self.alt_rel_m,
                                               -float(v[2]))

    def _b_sys_status(self):
        # sensor bit sets as PX4 SITL reported them in flightA.tlog: booting, then estimator ready
        if self.estimator_ready:
            present, enabled, health = 50348079, 50413615, 320915519
        else:
            present, enabled, health = 50348047, 52512783, 50364479
        return dialect.MAVLink_sys_status_message(present, enabled, health, 0, 16200, -100, 100, 0, 0, 0, 0, 0, 0,
                                                  0, 0, 1)

    def _b_battery_status(self):
        cells = [4000] * 4 + [65535] * 6
        return dialect.MAVLink_battery_status_message(0, 0, 0, 32767, cells, 500, -1, -1, 90, 0, 1,
                                                      [0, 0, 0, 0], 0, 0)

    def _b_gps_raw_int(self):
        lat, lon, alt = self._geo()
        v = self.state.vel_ned_mps
        gs = math.hypot(v[0], v[1])
        cog = int(math.degrees(math.atan2(v[1], v[0])) * 100) % 36000 if gs > 0.2 else 65535
        fix = 3 if self.estimator_ready else 0
        return dialect.MAVLink_gps_raw_int_message(
            int(self.t_s * 1e6), fix, round(lat * 1e7), round(lon * 1e7), round(alt * 1000),
            80, 120, int(gs * 100), cog, 14, round(alt * 1000), 500, 800, 200, 0, 0)

    def _b_home_position(self):
        if not self.estimator_ready:
            return None
        c = self.config
        q = [1.0, 0.0, 0.0, 0.0]
        return dialect.MAVLink_home_position_message(
            round(c.home_lat_deg * 1e7), round(c.home_lon_deg * 1e7), round(c.home_alt_m * 1000),
            0.0, 0.0, 0.0, q, 0.0, 0.0, 0.0, int(self.t_s * 1e6))

    def _b_gps_global_origin(self):
        if not self.estimator_ready:
            return None
        c = self.config
        return dialect.MAVLink_gps_global_origin_message(
            round(c.home_lat_deg * 1e7), round(c.home_lon_deg * 1e7), round(c.home_alt_m * 1000),
            int(self.t_s * 1e6))

    def _b_system_time(self):
        return dialect.MAVLink_system_time_message(int((self.config.unix_time_at_boot_s + self.t_s) * 1e6),
                                                   self.time_boot_ms)

    def _b_timesync(self):
        return dialect.MAVLink_timesync_message(0, int(self.t_s * 1e9))

    def _b_position_target_local_ned(self):
        sp = self.last_setpoint_used
        return dialect.MAVLink_position_target_local_ned_message(
            self.time_boot_ms, dialect.MAV_FRAME_LOCAL_NED, 0, *sp.pos_ned_m, *sp.vel_ned_mps, *sp.acc_ned_mps2,
            sp.yaw_rad, sp.yaw_rate_radps)

    def _b_attitude_target(self):
        q = self.state.q_body_to_ned
        thr = self.state.thrust_mps2 / (self.config.airframe.max_thrust_to_weight * GRAVITY_MPS2)
        return dialect.MAVLink_attitude_target_message(self.time_boot_ms, 0, [float(c) for c in q], 0.0, 0.0, 0.0,
                                                       float(thr))

    def _b_servo_output_raw(self):
        pwm = 900 if not self.armed else int(1000 + 1000 * min(1.0, self.state.thrust_mps2 / (
            self.config.airframe.max_thrust_to_weight * GRAVITY_MPS2)))
        return dialect.MAVLink_servo_output_raw_message(int(self.t_s * 1e6) & 0xFFFFFFFF, 0, pwm, pwm, pwm, pwm,
                                                        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    def _b_scaled_pressure(self):
        alt = self.config.home_alt_m + self.alt_rel_m
        press = 1013.25 * (1 - 2.25577e-5 * alt) ** 5.25588
        return dialect.MAVLink_scaled_pressure_message(self.time_boot_ms, press, 0.0, 2500, 0)

    def _b_raw_imu(self):
        a = self._specific_force_body() / GRAVITY_MPS2 * 1000
        w = self.state.rate_body_radps * 1000
        return dialect.MAVLink_raw_imu_message(int(self.t_s * 1e6), *(_i16(x) for x in a), *(_i16(x) for x in w),
                                               210, 0, 430, 0, 2500)

    def _b_vibration(self):
        return dialect.MAVLink_vibration_message(int(self.t_s * 1e6), 0.01, 0.01, 0.01, 0, 0, 0)

    def _b_wind(self):
        w = self.wind_ned_mps
        # WIND.direction is where the wind comes FROM (deg)
        return dialect.MAVLink_wind_message(math.degrees(math.atan2(-w[1], -w[0])) % 360,
                                            float(math.hypot(w[0], w[1])), float(-w[2]))

    def _b_ekf_status_report(self):
        flags = 0x3FF if self.estimator_ready else 0x0
        return dialect.MAVLink_ekf_status_report_message(flags, 0.1, 0.1, 0.1, 0.1, 0.0, 0.0)

    def _b_extended_sys_state(self):
        return dialect.MAVLink_extended_sys_state_message(0, self.landed_state())

    def _b_distance_sensor(self):
        # PX4 SITL publishes an (empty) downward range finder at 10 Hz; here it reads the true height
        d_cm = int(max(0.0, min(100.0, self.alt_rel_m)) * 100)
        return dialect.MAVLink_distance_sensor_message(self.time_boot_ms, 0, 10000, d_cm, 0, 0, 25, 0)

    def _b_estimator_status(self):
        flags = 0x7FF if self.estimator_ready else 164
        return dialect.MAVLink_estimator_status_message(int(self.t_s * 1e6), flags, 0.1, 0.1, 0.05, 0.1,
                                                        math.nan, math.nan, 0.5, 0.8)

    def _b_mission_current(self):
        return dialect.MAVLink_mission_current_message(0, 65535, 1, 2)

    def _b_rc_channels(self):
        return dialect.MAVLink_rc_channels_message(self.time_boot_ms, 0, *([0] * 18), 255)

    def landed_state(self) -> int:
        return dialect.MAV_LANDED_STATE_ON_GROUND if self.landed else dialect.MAV_LANDED_STATE_IN_AIR

    BUILDERS: ClassVar[dict] = {}  # message id -> builder (filled below; read-only after import)


def _i16(x: float) -> int:
    return int(max(-32768, min(32767, round(float(x)))))


Autopilot.BUILDERS = {
    dialect.MAVLINK_MSG_ID_HEARTBEAT: Autopilot._b_heartbeat,
    dialect.MAVLINK_MSG_ID_ATTITUDE: Autopilot._b_attitude,
    dialect.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: Autopilot._b_attitude_quaternion,
    dialect.MAVLINK_MSG_ID_LOCAL_POSITION_NED: Autopilot._b_local_position_ned,
    dialect.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: Autopilot._b_global_position_int,
    dialect.MAVLINK_MSG_ID_HIGHRES_IMU: Autopilot._b_highres_imu,
    dialect.MAVLINK_MSG_ID_ODOMETRY: Autopilot._b_odometry,
    dialect.MAVLINK_MSG_ID_ALTITUDE: Autopilot._b_altitude,
    dialect.MAVLINK_MSG_ID_VFR_HUD: Autopilot._b_vfr_hud,
    dialect.MAVLINK_MSG_ID_SYS_STATUS: Autopilot._b_sys_status,
    dialect.MAVLINK_MSG_ID_BATTERY_STATUS: Autopilot._b_battery_status,
    dialect.MAVLINK_MSG_ID_GPS_RAW_INT: Autopilot._b_gps_raw_int,
    dialect.MAVLINK_MSG_ID_HOME_POSITION: Autopilot._b_home_position,
    dialect.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN: Autopilot._b_gps_global_origin,
    dialect.MAVLINK_MSG_ID_SYSTEM_TIME: Autopilot._b_system_time,
    dialect.MAVLINK_MSG_ID_TIMESYNC: Autopilot._b_timesync,
    dialect.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED: Autopilot._b_position_target_local_ned,
    dialect.MAVLINK_MSG_ID_ATTITUDE_TARGET: Autopilot._b_attitude_target,
    dialect.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: Autopilot._b_servo_output_raw,
    dialect.MAVLINK_MSG_ID_SCALED_PRESSURE: Autopilot._b_scaled_pressure,
    dialect.MAVLINK_MSG_ID_RAW_IMU: Autopilot._b_raw_imu,
    dialect.MAVLINK_MSG_ID_VIBRATION: Autopilot._b_vibration,
    dialect.MAVLINK_MSG_ID_WIND: Autopilot._b_wind,
    dialect.MAVLINK_MSG_ID_EKF_STATUS_REPORT: Autopilot._b_ekf_status_report,
    dialect.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: Autopilot._b_extended_sys_state,
    dialect.MAVLINK_MSG_ID_RC_CHANNELS: Autopilot._b_rc_channels,
    dialect.MAVLINK_MSG_ID_DISTANCE_SENSOR: Autopilot._b_distance_sensor,
    dialect.MAVLINK_MSG_ID_ESTIMATOR_STATUS: Autopilot._b_estimator_status,
    dialect.MAVLINK_MSG_ID_MISSION_CURRENT: Autopilot._b_mission_current,
}
