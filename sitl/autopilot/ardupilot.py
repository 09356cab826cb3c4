"""Simulated ArduCopter 4.7 as seen on SERIAL0 (TCP 5760) (AUTOPILOT_SPEC.md §2-§9, Appendix B).

No telemetry streams until a client asks (REQUEST_DATA_STREAM groups or SET_MESSAGE_INTERVAL); GUIDED takes
SET_POSITION_TARGET_LOCAL_NED by *group* masks in frames 1/7/8/9 and stops on anything else; NAV_TAKEOFF is
needed to leave the ground; velocity/acceleration targets time out after GUID_TIMEOUT (zero velocity, still
GUIDED); parameters are C-cast floats with INT8/INT16/INT32/REAL32 types.
"""

from __future__ import annotations

import math

import numpy as np

from autonomy.mavlink.wire import dialect
from sitl.autopilot.base import NAN3, Autopilot, Limits, LinkState, Setpoint, SimConfig
from sitl.autopilot.params import AP_PARAMS, ParamError, ParamTable
from sitl.vehicle import ControlGains

D = dialect

AP_MODES: dict[str, int] = {
    "STABILIZE": 0, "ACRO": 1, "ALT_HOLD": 2, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "CIRCLE": 7,
    "LAND": 9, "DRIFT": 11, "SPORT": 13, "FLIP": 14, "AUTOTUNE": 15, "POSHOLD": 16, "BRAKE": 17, "THROW": 18,
    "AVOID_ADSB": 19, "GUIDED_NOGPS": 20, "SMART_RTL": 21, "FLOWHOLD": 22, "FOLLOW": 23, "ZIGZAG": 24,
    "SYSTEMID": 25, "AUTOROTATE": 26, "AUTO_RTL": 27, "TURTLE": 28,
}
AP_MODE_NAMES = {v: k for k, v in AP_MODES.items()}
POSITION_MODES = {"GUIDED", "LOITER", "RTL", "CIRCLE", "LAND", "POSHOLD", "BRAKE", "AUTO", "SMART_RTL",
                  "FOLLOW", "ZIGZAG", "AUTO_RTL", "AVOID_ADSB"}
ARMABLE_MODES = {"STABILIZE", "ACRO", "ALT_HOLD", "GUIDED", "LOITER", "POSHOLD", "BRAKE", "SPORT", "DRIFT",
                 "FLOWHOLD", "GUIDED_NOGPS", "ZIGZAG", "SYSTEMID", "THROW"}
TAKEOFF_MODES = {"GUIDED", "LOITER", "POSHOLD", "ALT_HOLD", "SPORT", "FLOWHOLD", "ZIGZAG"}

# ArduPilot SITL writes plain text on SERIAL0 before its first MAVLink frame (Appendix B)
ARDUPILOT_BANNER = b"Init ArduCopter V4.7.0-dev (simulated)\r\n\r\nFree RAM: 262144\r\n"

ACCEPTED = D.MAV_RESULT_ACCEPTED
FAILED = D.MAV_RESULT_FAILED
DENIED = D.MAV_RESULT_DENIED
UNSUPPORTED = D.MAV_RESULT_UNSUPPORTED

# MAV_DATA_STREAM groups (GCS_MAVLink_Parameters.cpp), message ids
STREAM_GROUPS: dict[int, tuple[int, ...]] = {
    D.MAV_DATA_STREAM_RAW_SENSORS: (D.MAVLINK_MSG_ID_RAW_IMU, D.MAVLINK_MSG_ID_SCALED_PRESSURE),
    D.MAV_DATA_STREAM_EXTENDED_STATUS: (D.MAVLINK_MSG_ID_SYS_STATUS, D.MAVLINK_MSG_ID_GPS_RAW_INT,
                                        D.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED),
    D.MAV_DATA_STREAM_RC_CHANNELS: (D.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW, D.MAVLINK_MSG_ID_RC_CHANNELS),
    D.MAV_DATA_STREAM_POSITION: (D.MAVLINK_MSG_ID_GLOBAL_POSITION_INT, D.MAVLINK_MSG_ID_LOCAL_POSITION_NED),
    D.MAV_DATA_STREAM_EXTRA1: (D.MAVLINK_MSG_ID_ATTITUDE,),
    D.MAV_DATA_STREAM_EXTRA2: (D.MAVLINK_MSG_ID_VFR_HUD,),
    D.MAV_DATA_STREAM_EXTRA3: (D.MAVLINK_MSG_ID_SYSTEM_TIME, D.MAVLINK_MSG_ID_BATTERY_STATUS,
                               D.MAVLINK_MSG_ID_EKF_STATUS_REPORT, D.MAVLINK_MSG_ID_VIBRATION, D.MAVLINK_MSG_ID_WIND),
}
# messages that exist only through SET_MESSAGE_INTERVAL / REQUEST_MESSAGE
EXTRA_MESSAGES = (D.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, D.MAVLINK_MSG_ID_HIGHRES_IMU, D.MAVLINK_MSG_ID_HOME_POSITION,
                  D.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN, D.MAVLINK_MSG_ID_TIMESYNC, D.MAVLINK_MSG_ID_ALTITUDE)
NOT_SENT = {D.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, D.MAVLINK_MSG_ID_ODOMETRY}  # Copter never sends these here


def ardupilot_config(**kw) -> SimConfig:
    """CMAC home (spec §11), heading 353."""
    base = {"home_lat_deg": -35.363261, "home_lon_deg": 149.165230, "home_alt_m": 584.0, "home_yaw_deg": 353.0}
    base.update(kw)
    return SimConfig(**base)


class ArduPilotAutopilot(Autopilot):
    flavour = "ardupilot"
    autopilot_id = D.MAV_AUTOPILOT_ARDUPILOTMEGA

    def __init__(self, config: SimConfig | None = None, params: dict[str, float] | None = None,
                 links: list | None = None) -> None:
        table = ParamTable(AP_PARAMS, params)
        self.mode = "STABILIZE"
        self.guided_sub = "stop"          # stop | pos | posvel | vel | accel | takeoff
        self.guided_sp = Setpoint()
        self.guided_yaw_rad = math.nan
        self.guided_yaw_rate_radps = math.nan
        self.last_guided_sp_s = -1e9
        self.hold_pos: tuple[float, float, float] | None = None
        self.takeoff_alt_rel_m = 0.0
        self.rtl_phase = ""
        self.failsafe = ""
        self.vel_shaped = [0.0, 0.0, 0.0]
        self.last_gcs_seen_s = -1.0
        self._fence_breached = False
        self._home_sent = False
        self._last_timesync_s = 0.0
        self._booted = False
        super().__init__(config or ardupilot_config(), table, links)

    def booted(self) -> bool:
        """ArduPilot SITL does not boot until a client connects to SERIAL0 (Appendix B)."""
        if not self._booted:
            self._booted = not self.links or any(getattr(ls.link, "connections", 1) > 0 for ls in self.links)
        return self._booted

    # ------------------------------------------------------------------ modes
    def set_mode(self, name: str) -> bool:
        if name not in AP_MODES:
            return False
        if self.armed and name in POSITION_MODES and not self.estimator_ready:
            return False
        if self.armed and name == "AUTO":
            return False  # no mission loaded
        if name in ("THROW", "AUTOROTATE", "TURTLE", "FLIP", "AUTOTUNE", "SYSTEMID") and self.armed:
            return False
        self.mode = name
        p = self.pos_ned_m
        self.hold_pos = (float(p[0]), float(p[1]), float(p[2]))
        self.vel_shaped = [float(v) for v in self.vel_ned_mps]
        if name == "GUIDED":
            self.guided_sub = "stop"
            self.guided_sp = Setpoint()
        if name == "RTL":
            self.rtl_phase = "climb"
        self.events.append((self.t_s, f"mode {name}"))
        return True

    def do_arm(self) -> None:
        super().do_arm()
        self.spool_until_s = 0.0
        self.takeoff_start_s = -1.0

    def do_disarm(self, reason: str) -> None:
        super().do_disarm(reason)
        self.takeoff_start_s = -1.0
        if self.mode == "GUIDED":
            self.guided_sub = "stop"

    def update_logic(self) -> None:
        t = self.t_s
        if self.estimator_ready and not self._home_sent:
            self._home_sent = True
            for mid in (D.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN, D.MAVLINK_MSG_ID_HOME_POSITION):
                self.broadcast(self.build(mid))
        if t - self._last_timesync_s >= 10.0:
            self._last_timesync_s = t
            self.broadcast(self.build(D.MAVLINK_MSG_ID_TIMESYNC))
        if not self.armed:
            return
        # GUID_TIMEOUT: velocity/accel targets decay to a zero-velocity hold, still GUIDED
        if self.mode == "GUIDED" and self.guided_sub == "angle" and \
                t - self.last_guided_sp_s > self.params["GUID_TIMEOUT"]:
            self.guided_sub = "angle_timeout"  # level, zero climb rate
            self.guided_sp = Setpoint(vel_ned_mps=(math.nan, math.nan, 0.0), acc_ned_mps2=(0.0, 0.0, math.nan))
            self.events.append((t, "guided timeout: level, zero climb"))
        if self.mode == "GUIDED" and self.guided_sub in ("vel", "accel") and \
                t - self.last_guided_sp_s > self.params["GUID_TIMEOUT"]:
            self.guided_sub = "timeout"
            self.guided_sp = Setpoint(vel_ned_mps=(0.0, 0.0, 0.0))
            self.events.append((t, "guided timeout: zero velocity"))
        if self.mode == "GUIDED" and self.guided_sub in ("timeout", "stop_brake"):
            v = self.vel_ned_mps
            if math.hypot(v[0], v[1]) < 0.2 and abs(v[2]) < 0.2:
                p = self.pos_ned_m
                self.guided_sub, self.hold_pos = "stop", (float(p[0]), float(p[1]), float(p[2]))
        if self.mode == "GUIDED" and self.guided_sub == "takeoff" and not self.landed and \
                self.alt_rel_m >= self.takeoff_alt_rel_m - 0.2:
            p = self.pos_ned_m
            self.guided_sub, self.hold_pos = "stop", (float(p[0]), float(p[1]), -self.takeoff_alt_rel_m)
        self._gcs_failsafe()
        self._fence()
        # disarm: LAND ~2 s after touchdown; other modes DISARM_DELAY while landed and idle
        if self.landed:
            idle_s = t - max(self.landed_time_s, self.arm_time_s)
            if self.mode in ("LAND", "RTL") and self.ever_airborne_since_arm and t - self.landed_time_s > 2.0:
                self.do_disarm("landed")
            elif self.guided_sub != "takeoff" and self.params["DISARM_DELAY"] > 0 and \
                    idle_s > self.params["DISARM_DELAY"]:
                self.do_disarm("auto disarm (DISARM_DELAY)")

    def _gcs_failsafe(self) -> None:
        en = int(self.params["FS_GCS_ENABLE"])
        if en == 0 or self.last_gcs_seen_s < 0:
            return
        lost = self.t_s - self.last_gcs_seen_s > self.params["FS_GCS_TIMEOUT"]
        if lost and self.failsafe != "gcs":
            self.failsafe = "gcs"
            self.statustext(2, "GCS Failsafe")
            if self.landed:
                self.do_disarm("GCS failsafe")
            else:
                self.set_mode("LAND" if en in (4, 5, 7) else "RTL")
        elif not lost and self.failsafe == "gcs":
            self.failsafe = ""
            self.statustext(2, "GCS Failsafe Cleared")

    def _fence(self) -> None:
        if not int(self.params["FENCE_ENABLE"]) or self.landed:
            return
        typ = int(self.params["FENCE_TYPE"])
        p = self.pos_ned_m
        out = bool((typ & 1 and -p[2] > self.params["FENCE_ALT_MAX"])
                   or (typ & 2 and math.hypot(p[0], p[1]) > self.params["FENCE_RADIUS"]))
        if out and not self._fence_breached:
            self._fence_breached = True
            self.failsafe = "fence"
            self.statustext(2, "Fence Breach")
            act = int(self.params["FENCE_ACTION"])
            if act in (1, 3, 5, 6):
                self.set_mode("RTL")
            elif act == 2:
                self.set_mode("LAND")
            elif act == 4:
                self.set_mode("BRAKE")
        elif not out and self._fence_breached:
            self._fence_breached = False
            if self.failsafe == "fence":
                self.failsafe = ""

    # ------------------------------------------------------------------ control
    def gains(self) -> ControlGains:
        p = self.params
        return ControlGains(p["PSC_POSXY_P"], p["PSC_POSZ_P"], p["PSC_VELXY_P"], p["PSC_VELZ_P"])

    def tilt_limit_rad(self) -> float:
        cdeg = self.params["PSC_ANGLE_MAX"] * 100 if self.params["PSC_ANGLE_MAX"] > 0 else self.params["ANGLE_MAX"]
        return math.radians(cdeg / 100.0)

    def _limits(self, xy_mps: float | None = None) -> Limits:
        p = self.params
        return Limits(p["WPNAV_SPEED"] / 100 if xy_mps is None else xy_mps, p["WPNAV_SPEED_UP"] / 100,
                      p["WPNAV_SPEED_DN"] / 100, self.tilt_limit_rad())

    def _shape(self, target: tuple[float, float, float]) -> tuple[float, float, float]:
        """Slew the velocity target at WPNAV_ACCEL / WPNAV_ACCEL_Z (AC_PosControl shaping, simplified)."""
        dt = self.config.physics_dt_s
        ah, az = self.params["WPNAV_ACCEL"] / 100 * dt, self.params["WPNAV_ACCEL_Z"] / 100 * dt * 2.5
        vs = self.vel_shaped
        dx, dy = target[0] - vs[0], target[1] - vs[1]
        n = math.hypot(dx, dy)
        if n > ah:
            dx, dy = dx * ah / n, dy * ah / n
        dz = max(-az, min(az, target[2] - vs[2]))
        self.vel_shaped = [vs[0] + dx, vs[1] + dy, vs[2] + dz]
        return tuple(self.vel_shaped)

    def _land_speed(self) -> float:
        p = self.params
        if self.alt_rel_m > p["LAND_ALT_LOW"] / 100:
            hi = p["LAND_SPEED_HIGH"] if p["LAND_SPEED_HIGH"] > 0 else p["WPNAV_SPEED_DN"]
            return hi / 100
        return p["LAND_SPEED"] / 100

    def current_setpoint(self) -> tuple[Setpoint, Limits, bool]:
        pos = self.pos_ned_m
        lim = self._limits()
        if self.hold_pos is None:
            self.hold_pos = (float(pos[0]), float(pos[1]), float(pos[2]))
        m = self.mode
        if m == "GUIDED":
            return self._guided_setpoint(lim)
        if m == "LAND":
            hp = self.hold_pos
            return Setpoint(pos_ned_m=(hp[0], hp[1], math.nan), vel_ned_mps=(math.nan, math.nan,
                                                                             self._land_speed())), lim, False
        if m in ("RTL", "SMART_RTL", "AUTO_RTL"):
            return self._rtl_setpoint(lim)
        if m == "BRAKE":
            v = self._shape((0.0, 0.0, 0.0))
            if math.hypot(*self.vel_ned_mps[:2]) < 0.2:
                return Setpoint(pos_ned_m=(float(pos[0]), float(pos[1]), self.hold_pos[2])), lim, False
            return Setpoint(vel_ned_mps=v), lim, False
        if m in ("LOITER", "POSHOLD", "ALT_HOLD", "STABILIZE", "ACRO", "SPORT", "CIRCLE", "AUTO", "DRIFT"):
            # no RC in this simulator: sticks centred = hold (throttle centred holds altitude)
            return Setpoint(pos_ned_m=self.hold_pos), lim, self.guided_sub == "takeoff"
        return Setpoint(pos_ned_m=self.hold_pos), lim, False

    def _guided_setpoint(self, lim: Limits) -> tuple[Setpoint, Limits, bool]:
        sub = self.guided_sub
        yaw = self.guided_yaw_rad
        yaw_rate = self.guided_yaw_rate_radps
        if sub == "takeoff":
            hp = self.hold_pos
            climb_lim = Limits(lim.xy_mps, self.params["WPNAV_SPEED_UP"] / 100, lim.down_mps, lim.tilt_rad)
            return Setpoint(pos_ned_m=(hp[0], hp[1], -self.takeoff_alt_rel_m)), climb_lim, True
        if self.landed:
            return Setpoint(pos_ned_m=self.hold_pos), lim, False  # is_disarmed_or_landed: nothing moves
        sp = self.guided_sp
        if sub in ("angle", "angle_timeout"):
            return Setpoint(vel_ned_mps=sp.vel_ned_mps, acc_ned_mps2=sp.acc_ned_mps2, yaw_rad=yaw), \
                Limits(1e3, lim.up_mps, lim.down_mps, lim.tilt_rad), False
        auto_yaw = not math.isfinite(yaw) and not math.isfinite(yaw_rate)
        if sub in ("vel", "accel", "timeout", "stop_brake"):
            tgt = sp.vel_ned_mps if _fin(sp.vel_ned_mps) else tuple(self.vel_ned_mps)
            if sub == "accel":
                dt = self.config.physics_dt_s
                a = sp.acc_ned_mps2
                tgt = (self.vel_shaped[0] + a[0] * dt, self.vel_shaped[1] + a[1] * dt, self.vel_shaped[2] + a[2] * dt)
                self.vel_shaped = list(tgt)
                v = tgt
            else:
                v = self._shape(tgt)
            if auto_yaw and math.hypot(v[0], v[1]) > 1.0:
                yaw = math.atan2(v[1], v[0])
            acc = sp.acc_ned_mps2 if _fin(sp.acc_ned_mps2) else NAN3
            return Setpoint(vel_ned_mps=v, acc_ned_mps2=acc, yaw_rad=yaw, yaw_rate_radps=yaw_rate), \
                Limits(1e3, 1e3, 1e3, lim.tilt_rad), False  # guided velocity is not clipped to WPNAV_SPEED
        if sub in ("pos", "posvel"):
            p = self.pos_ned_m
            tp = sp.pos_ned_m
            if auto_yaw and math.hypot(tp[0] - p[0], tp[1] - p[1]) > 2.0:
                yaw = math.atan2(tp[1] - p[1], tp[0] - p[0])
            return Setpoint(pos_ned_m=tp, vel_ned_mps=sp.vel_ned_mps if sub == "posvel" else NAN3,
                            acc_ned_mps2=sp.acc_ned_mps2, yaw_rad=yaw, yaw_rate_radps=yaw_rate), lim, False
        return Setpoint(pos_ned_m=self.hold_pos, yaw_rad=yaw, yaw_rate_radps=yaw_rate), lim, False

    def _rtl_setpoint(self, lim: Limits) -> tuple[Setpoint, Limits, bool]:
        pos = self.pos_ned_m
        rtl_alt = max(self.params["RTL_ALT"] / 100, 2.0)
        speed = self.params["RTL_SPEED"] / 100 if self.params["RTL_SPEED"] > 0 else lim.xy_mps
        lim = Limits(speed, lim.up_mps, lim.down_mps, lim.tilt_rad)
        dist = math.hypot(pos[0], pos[1])
        if self.rtl_phase == "climb":
            if self.alt_rel_m >= rtl_alt - 0.5 or dist < 2.0:
                self.rtl_phase = "return"
                self.hold_pos = (0.0, 0.0, min(float(pos[2]), -rtl_alt))
            return Setpoint(pos_ned_m=(self.hold_pos[0], self.hold_pos[1], -rtl_alt)), lim, False
        if self.rtl_phase == "return":
            if dist < 1.0:
                self.rtl_phase = "land"
            yaw = math.atan2(-pos[1], -pos[0]) if dist > 2.0 else math.nan
            return Setpoint(pos_ned_m=(0.0, 0.0, self.hold_pos[2]), yaw_rad=yaw), lim, False
        return Setpoint(pos_ned_m=(0.0, 0.0, math.nan), vel_ned_mps=(math.nan, math.nan, self._land_speed())), \
            lim, False

    # ------------------------------------------------------------------ HEARTBEAT
    def heartbeat_message(self):
        base = D.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | D.MAV_MODE_FLAG_STABILIZE_ENABLED | \
            D.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
        if self.mode in POSITION_MODES:
            base |= D.MAV_MODE_FLAG_GUIDED_ENABLED
        if self.armed:
            base |= D.MAV_MODE_FLAG_SAFETY_ARMED
        if self.failsafe:
            status = D.MAV_STATE_CRITICAL
        elif self.landed:
            status = D.MAV_STATE_STANDBY
        else:
            status = D.MAV_STATE_ACTIVE
        return D.MAVLink_heartbeat_message(D.MAV_TYPE_QUADROTOR, D.MAV_AUTOPILOT_ARDUPILOTMEGA, base,
                                           AP_MODES[self.mode], status, 3)

    def on_new_link(self, ls: LinkState) -> None:
        ls.intervals_s = {D.MAVLINK_MSG_ID_HEARTBEAT: 1.0}

    def after_tick(self) -> None:
        for ls in self.links:
            burst = 0
            while ls.param_queue and burst < 10:
                ls.link.send(ls.param_queue.pop(0))
                burst += 1

    # ------------------------------------------------------------------ messages in
    def _for_me(self, ts: int, tc: int) -> bool:
        return ts in (0, self.sysid) and tc in (0, self.compid)

    def handle_message(self, ls: LinkState, msg) -> None:
        mt = msg.get_type()
        if mt == "HEARTBEAT":
            if msg.get_srcSystem() == int(self.params["MAV_GCS_SYSID"]):
                self.last_gcs_seen_s = self.t_s
            return
        if mt == "TIMESYNC":
            if msg.tc1 == 0:
                ls.link.send(D.MAVLink_timesync_message(int(self.t_s * 1e9), msg.ts1))
            return
        ts = getattr(msg, "target_system", 0)
        tc = getattr(msg, "target_component", 0)
        if not self._for_me(ts, tc):
            return
        if mt == "SET_POSITION_TARGET_LOCAL_NED":
            self._handle_sp_local(msg)
        elif mt == "SET_POSITION_TARGET_GLOBAL_INT":
            self._handle_sp_global(msg)
        elif mt == "SET_ATTITUDE_TARGET":
            self._handle_att_target(msg)
        elif mt == "COMMAND_LONG":
            self._handle_command(ls, msg, msg.command, [msg.param1, msg.param2, msg.param3, msg.param4,
                                                        msg.param5, msg.param6, msg.param7], frame=None)
        elif mt == "COMMAND_INT":
            self._handle_command(ls, msg, msg.command, [msg.param1, msg.param2, msg.param3, msg.param4,
                                                        msg.x * 1e-7, msg.y * 1e-7, msg.z], frame=msg.frame)
        elif mt == "SET_MODE":
            name = AP_MODE_NAMES.get(msg.custom_mode)
            if name and msg.base_mode & D.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED and not self.set_mode(name):
                self.statustext(4, "Flight mode change failed")
            # 4.6+: no COMMAND_ACK for SET_MODE
        elif mt == "REQUEST_DATA_STREAM":
            self._request_data_stream(ls, msg)
        elif mt == "PARAM_REQUEST_LIST":
            self.statustext(6, "ArduCopter V4.7.0-dev (sim)")
            ls.param_queue = [self._pv(i) for i in range(len(self.params))]
        elif mt == "PARAM_REQUEST_READ":
            if msg.param_index >= 0:
                if msg.param_index < len(self.params):
                    ls.link.send(self._pv(msg.param_index))
            else:
                name = _pid(msg.param_id)
                if name in self.params:
                    ls.link.send(self._pv(self.params.index(name), by_name=True))
        elif mt == "PARAM_SET":
            self._param_set(msg)

    def _stop(self) -> None:
        """Guided stop: brake to a zero-velocity hold."""
        self.guided_sub = "stop_brake"
        self.guided_sp = Setpoint(vel_ned_mps=(0.0, 0.0, 0.0))

    def _handle_sp_global(self, m) -> None:
        """GLOBAL_INT frames 5/6/11 mapped onto the local frame, then handled like LOCAL_NED (no rotation)."""
        if self.mode != "GUIDED":
            return
        frames = (D.MAV_FRAME_GLOBAL_INT, D.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, D.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT)
        if m.coordinate_frame not in frames:
            self._stop()
            return
        pos_used = not (m.type_mask & 7)
        lat, lon = m.lat_int * 1e-7, m.lon_int * 1e-7
        if pos_used and (not -90 <= lat <= 90 or not -180 <= lon <= 180):
            self._stop()
            return
        if pos_used and m.coordinate_frame == D.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT and not (m.type_mask & 56):
            self._stop()  # terrain frames are refused for pos+vel
            return
        from autonomy.geometry import geodetic_to_ned

        c = self.config
        alt = m.alt if m.coordinate_frame == D.MAV_FRAME_GLOBAL_INT else m.alt + c.home_alt_m
        p = geodetic_to_ned(lat, lon, alt, c.home_lat_deg, c.home_lon_deg, c.home_alt_m)
        local = D.MAVLink_set_position_target_local_ned_message(
            m.time_boot_ms, m.target_system, m.target_component, D.MAV_FRAME_LOCAL_NED, m.type_mask,
            float(p[0]), float(p[1]), float(p[2]), m.vx, m.vy, m.vz, m.afx, m.afy, m.afz, m.yaw, m.yaw_rate)
        self._handle_sp_local(local)

    def _handle_att_target(self, m) -> None:
        """SET_ATTITUDE_TARGET in GUIDED: attitude -> horizontal acceleration, thrust read as climb rate
        (0.5 holds, 1 = WPNAV_SPEED_UP, 0 = WPNAV_SPEED_DN) unless GUID_OPTIONS bit 3. Times out like velocity."""
        if self.mode not in ("GUIDED", "GUIDED_NOGPS"):
            return
        mask = m.type_mask
        q = [float(c) for c in m.q]
        n = math.sqrt(sum(c * c for c in q))
        rates_given = [not (mask & b) for b in (1, 2, 4)]
        if mask & 64 or any(rates_given) != all(rates_given) or \
                (not mask & 128 and (not math.isfinite(n) or abs(n - 1.0) > 1e-3)):
            self._stop()
            return
        from autonomy.geometry import GRAVITY_MPS2, quat_to_euler, rotate_body_to_ned

        thrust = float(m.thrust)
        if not math.isfinite(thrust):
            self._stop()
            return
        if int(self.params["GUID_OPTIONS"]) & 8:  # thrust as thrust (-1..1 of hover*2)
            vz = math.nan
            f_up = max(0.0, thrust) * 2.0 * GRAVITY_MPS2
        else:
            up, dn = self.params["WPNAV_SPEED_UP"] / 100, self.params["WPNAV_SPEED_DN"] / 100
            vz = -(thrust - 0.5) * 2.0 * up if thrust >= 0.5 else (0.5 - thrust) * 2.0 * dn
            f_up = GRAVITY_MPS2
        qn = self.state.q_body_to_ned if mask & 128 else np.array(q) / n
        z_b = rotate_body_to_ned(np.asarray(qn, dtype=float), np.array([0.0, 0.0, 1.0]))
        cz = max(-z_b[2], 0.2)
        acc_h = (-z_b[0] / cz * f_up, -z_b[1] / cz * f_up)
        if self.guided_sub not in ("vel", "accel", "timeout", "stop_brake", "angle"):
            self.vel_shaped = [float(v) for v in self.vel_ned_mps]
        self.guided_sub = "angle"
        self.guided_sp = Setpoint(vel_ned_mps=(math.nan, math.nan, vz),
                                  acc_ned_mps2=(acc_h[0], acc_h[1], 0.0 if math.isnan(vz) else math.nan))
        self.guided_yaw_rad = quat_to_euler(qn)[2]
        self.guided_yaw_rate_radps = math.nan
        self.last_guided_sp_s = self.t_s

    def _handle_sp_local(self, m) -> None:
        if self.mode != "GUIDED":
            return  # silently ignored outside GUIDED
        frame, mask = m.coordinate_frame, m.type_mask
        if frame not in (D.MAV_FRAME_LOCAL_NED, D.MAV_FRAME_LOCAL_OFFSET_NED, D.MAV_FRAME_BODY_NED,
                         D.MAV_FRAME_BODY_OFFSET_NED):
            self._stop()
            return
        pos_ign, vel_ign, acc_ign = bool(mask & 7), bool(mask & 56), bool(mask & 448)
        force = bool(mask & 512)
        yaw_ign, yr_ign = bool(mask & 1024), bool(mask & 2048)
        if force and not acc_ign:
            self._stop()
            return
        pos = [m.x, m.y, m.z]
        vel = [m.vx, m.vy, m.vz]
        acc = [m.afx, m.afy, m.afz]
        for used, vec in ((not vel_ign, vel), (not acc_ign, acc)):
            if used and any(not math.isfinite(c) or abs(c) > 1000 for c in vec):
                self._stop()
                return
        if not pos_ign and any(not math.isfinite(c) for c in pos):
            self._stop()
            return
        heading = self.yaw_rad
        if frame in (D.MAV_FRAME_BODY_NED, D.MAV_FRAME_BODY_OFFSET_NED):
            c, s = math.cos(heading), math.sin(heading)
            for vec in (pos, vel, acc):
                vec[0], vec[1] = c * vec[0] - s * vec[1], s * vec[0] + c * vec[1]
        if frame != D.MAV_FRAME_LOCAL_NED and not pos_ign:
            if not self.estimator_ready:
                self._stop()
                return
            cur = self.pos_ned_m
            pos = [pos[0] + cur[0], pos[1] + cur[1], pos[2] + cur[2]]
        yaw = math.nan if yaw_ign else float(m.yaw)
        if not yaw_ign and frame in (D.MAV_FRAME_BODY_NED, D.MAV_FRAME_BODY_OFFSET_NED):
            yaw += heading
        yaw_rate = math.nan if yr_ign else float(m.yaw_rate)
        if not pos_ign and not vel_ign:
            sub = "posvel"
        elif not vel_ign:
            sub = "vel"
        elif not acc_ign and pos_ign:
            sub = "accel"
        elif not pos_ign and acc_ign:
            sub = "pos"
        else:
            self._stop()
            return
        if not pos_ign and int(self.params["FENCE_ENABLE"]):
            typ = int(self.params["FENCE_TYPE"])
            if (typ & 1 and -pos[2] > self.params["FENCE_ALT_MAX"]) or \
                    (typ & 2 and math.hypot(pos[0], pos[1]) > self.params["FENCE_RADIUS"]):
                self.statustext(4, "Guided: destination outside fence")
                return
        if self.guided_sub == "takeoff":
            p = self.pos_ned_m
            self.hold_pos = (float(p[0]), float(p[1]), float(p[2]))
        if self.guided_sub not in ("vel", "accel", "timeout", "stop_brake"):
            self.vel_shaped = [float(v) for v in self.vel_ned_mps]
        self.guided_sub = sub
        self.guided_sp = Setpoint(tuple(pos) if not pos_ign else NAN3, tuple(vel) if not vel_ign else NAN3,
                                  tuple(acc) if not acc_ign else NAN3)
        self.guided_yaw_rad, self.guided_yaw_rate_radps = yaw, yaw_rate
        self.last_guided_sp_s = self.t_s

    # --- commands
    def _handle_command(self, ls: LinkState, msg, cmd: int, p: list[float], frame: int | None) -> None:
        if cmd == D.MAV_CMD_COMPONENT_ARM_DISARM:
            self.ack(ls, msg, cmd, self._arm_disarm(p[0], p[1]))
        elif cmd == D.MAV_CMD_DO_SET_MODE:
            base = _pint(p[0])
            if base & D.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                name = AP_MODE_NAMES.get(_pint(p[1]))
                ok = name is not None and self.set_mode(name)
                if not ok:
                    self.statustext(4, "Flight mode change failed")
                self.ack(ls, msg, cmd, ACCEPTED if ok else FAILED)
            elif base == 128:
                self.ack(ls, msg, cmd, ACCEPTED)  # safety switch
            else:
                self.ack(ls, msg, cmd, DENIED)
        elif cmd == D.MAV_CMD_NAV_TAKEOFF:
            if frame is not None and frame not in (D.MAV_FRAME_GLOBAL_RELATIVE_ALT,
                                                   D.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT):
                self.ack(ls, msg, cmd, DENIED)
                return
            self.ack(ls, msg, cmd, self._takeoff(p[6]))
        elif cmd == D.MAV_CMD_NAV_LAND:
            self.ack(ls, msg, cmd, ACCEPTED if self.set_mode("LAND") else FAILED)
        elif cmd == D.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.ack(ls, msg, cmd, ACCEPTED if self.set_mode("RTL") else FAILED)
        elif cmd == D.MAV_CMD_SET_MESSAGE_INTERVAL:
            self.ack(ls, msg, cmd, self._set_interval(ls, p))
        elif cmd == D.MAV_CMD_REQUEST_MESSAGE:
            mid = _pint(p[0])
            m = self._autopilot_version() if mid == D.MAVLINK_MSG_ID_AUTOPILOT_VERSION else (
                self.build(mid) if mid in self.BUILDERS and mid not in NOT_SENT else None)
            if m is not None:
                self.ack(ls, msg, cmd, ACCEPTED)
                ls.link.send(m)
            else:
                self.ack(ls, msg, cmd, DENIED)
        elif cmd == D.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self.ack(ls, msg, cmd, ACCEPTED)
            ls.link.send(self._autopilot_version())
        else:
            self.ack(ls, msg, cmd, UNSUPPORTED)

    def _arm_disarm(self, p1: float, p2: float) -> int:
        magic = _pint(p2)
        if p1 == 1.0:
            if self.armed:
                return ACCEPTED
            forced = magic in (2989, 21196)
            reason = None
            if not self.estimator_ready:
                reason = "PreArm: EKF3 waiting for GPS config data"
            elif self.mode not in ARMABLE_MODES:
                reason = "Arm: Mode not armable"
            if reason and not forced:
                self.statustext(2, reason)
                return FAILED
            self.do_arm()
            return ACCEPTED
        if p1 == 0.0:
            if not self.armed:
                return ACCEPTED
            if not self.landed and magic != 21196:
                return FAILED
            self.do_disarm("GCS command")
            return ACCEPTED
        return UNSUPPORTED

    def _takeoff(self, alt_rel_m: float) -> int:
        if not self.armed or not self.landed or self.mode not in TAKEOFF_MODES:
            return FAILED
        if not math.isfinite(alt_rel_m) or alt_rel_m <= self.alt_rel_m:
            return FAILED
        p = self.pos_ned_m
        self.takeoff_alt_rel_m = float(alt_rel_m)
        self.hold_pos = (float(p[0]), float(p[1]), float(p[2]))
        self.guided_sub = "takeoff"
        self.spool_until_s = self.t_s + 3.0  # Appendix B: ~3.5 s from NAV_TAKEOFF to liftoff
        return ACCEPTED

    def _valid_stream_id(self, mid: int) -> bool:
        return not (mid in NOT_SENT or mid not in self.BUILDERS)

    def _set_interval(self, ls: LinkState, p: list[float]) -> int:
        mid, iv_us = _pint(p[0]), float(p[1])
        if not math.isfinite(iv_us) or (p[2] != 0 and math.isfinite(p[2])):
            return DENIED
        if not self._valid_stream_id(mid):
            self.statustext(6, f"No ap_message for mavlink id ({mid})")
            return DENIED
        if iv_us < 0:
            ls.intervals_s[mid] = 0.0
            ls.explicit.add(mid)
        elif iv_us == 0:
            ls.intervals_s.pop(mid, None)
            ls.explicit.discard(mid)
            self._apply_groups(ls)
        else:
            iv_us = min(max(iv_us, 1000.0), 60e6)
            if iv_us < 2500.0:  # faster than the 400 Hz scheduler can send
                return DENIED
            ls.intervals_s[mid] = iv_us * 1e-6
            ls.explicit.add(mid)
        ls.next_due_s[mid] = self.t_s
        return ACCEPTED

    def _request_data_stream(self, ls: LinkState, m) -> None:
        rate = 0.0 if m.start_stop == 0 else float(m.req_message_rate)
        groups = list(STREAM_GROUPS) if m.req_stream_id == D.MAV_DATA_STREAM_ALL else [m.req_stream_id]
        for g in groups:
            if g in STREAM_GROUPS:
                ls.group_hz[g] = rate
        self._apply_groups(ls)

    def _apply_groups(self, ls: LinkState) -> None:
        explicit = ls.explicit
        for g, mids in STREAM_GROUPS.items():
            hz = ls.group_hz.get(g, 0.0)
            for mid in mids:
                if mid in explicit:
                    continue
                ls.intervals_s[mid] = 1.0 / min(hz, 50.0) if hz > 0 else 0.0
                ls.next_due_s.setdefault(mid, self.t_s)

    def _autopilot_version(self):
        caps = (D.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT | D.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                | D.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
                | D.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
                | D.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET | D.MAV_PROTOCOL_CAPABILITY_FLIGHT_TERMINATION
                | D.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | D.MAV_PROTOCOL_CAPABILITY_MISSION_FENCE
                | D.MAV_PROTOCOL_CAPABILITY_MISSION_RALLY | D.MAV_PROTOCOL_CAPABILITY_FTP)
        return D.MAVLink_autopilot_version_message(caps, (4 << 24) | (7 << 16) | (0 << 8), 0, 0, 0, [0] * 8,
                                                   [0] * 8, [0] * 8, 0, 0, 0x5A5A, [0] * 18)

    # --- parameters (C-cast floats, spec §8)
    def _pv(self, i: int, by_name: bool = False):
        d = self.params.definition(i)
        return D.MAVLink_param_value_message(d.name.encode(), float(self.params[d.name]), d.type_id,
                                             len(self.params), 65535 if by_name else i)

    def _param_set(self, m) -> None:
        name = _pid(m.param_id)
        if name not in self.params or not math.isfinite(m.param_value):
            return  # ignored silently
        d = self.params.definition(name)
        i = self.params.index(name)
        if d.read_only:
            self.statustext(4, f"Param write denied ({name})")
            self.broadcast(self._pv(i, by_name=True))
            return
        try:
            self.params.set(name, float(m.param_value))
        except ParamError:
            return
        self.broadcast(self._pv(i, by_name=True))


def _fin(v: tuple[float, float, float]) -> bool:
    return all(math.isfinite(c) for c in v)


def _pint(x: float) -> int:
    """Integer value of a command parameter; NaN/inf (MAVSDK sends NaN for unused ones) read as 0."""
    return int(x) if math.isfinite(x) and abs(x) < 2**31 else 0


def _pid(raw) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return raw.split("\x00")[0]
