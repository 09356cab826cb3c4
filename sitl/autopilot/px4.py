"""Simulated PX4 (main, 2026-03) as its onboard MAVLink link sees it (AUTOPILOT_SPEC.md, Appendix A).

Modes are held as names ("OFFBOARD", "AUTO.RTL"...); ``user_mode`` is what was commanded, ``nav_state`` what
runs (a failsafe overrides the user's mode and hands it back when its cause clears, as real PX4 re-enters
OFFBOARD on its own when setpoints resume).
"""

from __future__ import annotations

import math
import struct
from typing import ClassVar

import numpy as np

from autonomy.mavlink.wire import dialect
from sitl.autopilot import px4_events as ev
from sitl.autopilot.base import NAN3, Autopilot, Limits, LinkState, Setpoint, SimConfig
from sitl.autopilot.params import (
    PX4_PARAMS,
    REAL32,
    UINT32,
    ParamError,
    ParamTable,
    decode_bytewise,
    encode_bytewise,
)
from sitl.vehicle import ControlGains

D = dialect

# name -> (main, sub)
PX4_MODES: dict[str, tuple[int, int]] = {
    "MANUAL": (1, 0),
    "ALTCTL": (2, 0),
    "POSCTL": (3, 0),
    "AUTO.READY": (4, 1),
    "AUTO.TAKEOFF": (4, 2),
    "AUTO.LOITER": (4, 3),
    "AUTO.MISSION": (4, 4),
    "AUTO.RTL": (4, 5),
    "AUTO.LAND": (4, 6),
    "AUTO.PRECLAND": (4, 9),
    "ACRO": (5, 0),
    "OFFBOARD": (6, 0),
    "STABILIZED": (7, 0),
}
_BY_MAIN_SUB = {v: k for k, v in PX4_MODES.items()}
RC_MODES = {"MANUAL", "ALTCTL", "POSCTL", "ACRO", "STABILIZED"}
NO_ARM_MODES = {"AUTO.LAND", "AUTO.RTL", "AUTO.PRECLAND"}

ACCEPTED = D.MAV_RESULT_ACCEPTED
TEMP_REJECTED = D.MAV_RESULT_TEMPORARILY_REJECTED
DENIED = D.MAV_RESULT_DENIED
UNSUPPORTED = D.MAV_RESULT_UNSUPPORTED
FAILED = D.MAV_RESULT_FAILED
UNSUPPORTED_MAV_FRAME = 9  # MAV_RESULT 9 (newer than the stock dialect)
FORCE_MAGIC = 21196


def px4_custom_mode(name: str) -> int:
    """HEARTBEAT.custom_mode of a PX4 mode name (main << 16 | sub << 24)."""
    main, sub = PX4_MODES[name]
    return (main << 16) | (sub << 24)


def px4_mode_name(custom_mode: int) -> str | None:
    return _BY_MAIN_SUB.get(((custom_mode >> 16) & 0xFF, (custom_mode >> 24) & 0xFF))


# default ONBOARD stream set (spec §3 table, Appendix A measured), Hz
PX4_ONBOARD_STREAMS_HZ: dict[int, float] = {
    D.MAVLINK_MSG_ID_HEARTBEAT: 1.0,
    D.MAVLINK_MSG_ID_ATTITUDE: 100.0,
    D.MAVLINK_MSG_ID_HIGHRES_IMU: 50.0,
    D.MAVLINK_MSG_ID_ATTITUDE_QUATERNION: 50.0,
    D.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 50.0,
    D.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 30.0,
    D.MAVLINK_MSG_ID_ODOMETRY: 30.0,
    D.MAVLINK_MSG_ID_TIMESYNC: 10.0,
    D.MAVLINK_MSG_ID_ALTITUDE: 10.0,
    D.MAVLINK_MSG_ID_ATTITUDE_TARGET: 10.0,
    D.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED: 10.0,
    D.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: 10.0,
    D.MAVLINK_MSG_ID_VFR_HUD: 10.0,
    D.MAVLINK_MSG_ID_DISTANCE_SENSOR: 10.0,
    D.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT: 10.0,
    D.MAVLINK_MSG_ID_GPS_RAW_INT: 8.0,
    D.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 5.0,
    D.MAVLINK_MSG_ID_SYS_STATUS: 5.0,
    D.MAVLINK_MSG_ID_SYSTEM_TIME: 1.0,
    D.MAVLINK_MSG_ID_ESTIMATOR_STATUS: 1.0,
    D.MAVLINK_MSG_ID_MISSION_CURRENT: 1.0,
    D.MAVLINK_MSG_ID_SCALED_PRESSURE: 1.0,
    D.MAVLINK_MSG_ID_BATTERY_STATUS: 0.5,
    D.MAVLINK_MSG_ID_HOME_POSITION: 0.5,
    D.MAVLINK_MSG_ID_VIBRATION: 0.5,
}


# PX4 "normal" (GCS) link defaults (mavlink_main.cpp, MAVLINK_MODE_NORMAL), Hz
PX4_NORMAL_STREAMS_HZ: dict[int, float] = {
    D.MAVLINK_MSG_ID_HEARTBEAT: 1.0,
    D.MAVLINK_MSG_ID_ATTITUDE: 15.0,
    D.MAVLINK_MSG_ID_GLOBAL_POSITION_INT: 5.0,
    D.MAVLINK_MSG_ID_RC_CHANNELS: 5.0,
    D.MAVLINK_MSG_ID_VFR_HUD: 4.0,
    D.MAVLINK_MSG_ID_ATTITUDE_TARGET: 2.0,
    D.MAVLINK_MSG_ID_POSITION_TARGET_LOCAL_NED: 1.5,
    D.MAVLINK_MSG_ID_ALTITUDE: 1.0,
    D.MAVLINK_MSG_ID_EXTENDED_SYS_STATE: 1.0,
    D.MAVLINK_MSG_ID_GPS_RAW_INT: 1.0,
    D.MAVLINK_MSG_ID_LOCAL_POSITION_NED: 1.0,
    D.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT: 1.0,
    D.MAVLINK_MSG_ID_SERVO_OUTPUT_RAW: 1.0,
    D.MAVLINK_MSG_ID_SYS_STATUS: 1.0,
    D.MAVLINK_MSG_ID_SYSTEM_TIME: 1.0,
    D.MAVLINK_MSG_ID_BATTERY_STATUS: 0.5,
    D.MAVLINK_MSG_ID_ESTIMATOR_STATUS: 0.5,
    D.MAVLINK_MSG_ID_HOME_POSITION: 0.5,
    D.MAVLINK_MSG_ID_DISTANCE_SENSOR: 0.5,
    D.MAVLINK_MSG_ID_VIBRATION: 0.1,
}


def default_px4_config(**kw) -> SimConfig:
    return SimConfig(**kw)


class Px4Autopilot(Autopilot):
    flavour = "px4"
    autopilot_id = D.MAV_AUTOPILOT_PX4

    VERSIONS = ("main", "1.16", "1.15")

    def __init__(self, config: SimConfig | None = None, params: dict[str, float] | None = None,
                 links: list | None = None, version: str = "main") -> None:
        """``version`` "1.15"/"1.16" switches on the older wire behaviour of spec §1/§8: MAVLink 1 until the
        first MAVLink 2 frame (MAV_PROTO_VER 0), commands need target_system == own id (0 ignored; v1.15
        answers other ids with FAILED), no PARAM_ERROR."""
        if version not in self.VERSIONS:
            raise ValueError(f"unknown PX4 version {version!r}; expected one of {self.VERSIONS}")
        self.version = version
        defaults = {} if version == "main" else {"MAV_PROTO_VER": 0}
        table = ParamTable(PX4_PARAMS, {**defaults, **(params or {})})
        self.user_mode = "AUTO.LOITER"      # PX4 boots in AUTO.LOITER (UserModeIntention.hpp)
        self.last_armable_mode = "AUTO.LOITER"
        self.failsafe_mode: str | None = None
        self.failsafe_reason = ""
        self.last_offboard_s = -1e9
        self.offboard_sp = Setpoint()
        self.hold_pos: tuple[float, float, float] | None = None
        self.rtl_phase = ""
        self.takeoff_alt_rel_m = 2.5
        self._gf_breached = False
        self._event_seq = ev.FIRST_SEQUENCE
        super().__init__(config or SimConfig(), table, links)

    def event(self, event_id: int, args: bytes = b"", log_levels: int = 0x66) -> None:
        """Send a PX4 EVENT (410) on every link (PX4 sends events regardless of GCS heartbeats)."""
        payload = ev.event_payload(event_id, self.time_boot_ms, self._event_seq, args, log_levels)
        self._event_seq = (self._event_seq + 1) & 0xFFFF
        for ls in self.links:
            ls.link.send_raw(ev.EVENT_MSG_ID, payload, ev.EVENT_CRC_EXTRA)

    # ------------------------------------------------------------------ mode state
    @property
    def nav_state(self) -> str:
        return self.failsafe_mode if self.failsafe_mode else self.user_mode

    def offboard_signal_ok(self) -> bool:
        return self.t_s - self.last_offboard_s <= self.params["COM_OF_LOSS_T"]

    def _enter(self, name: str) -> None:
        """Side effects of starting a navigation mode."""
        p = self.pos_ned_m
        if name in ("AUTO.LOITER", "AUTO.MISSION", "AUTO.READY", "POSCTL", "ALTCTL"):
            self.hold_pos = (float(p[0]), float(p[1]), float(p[2]))
        if name == "AUTO.RTL":
            self.rtl_phase = "climb"

    def set_user_mode(self, name: str) -> None:
        if name not in NO_ARM_MODES:
            self.last_armable_mode = name
        self.user_mode = name
        if self.failsafe_reason != "offboard" or name != "OFFBOARD":
            self.failsafe_mode, self.failsafe_reason = None, ""
        self._enter(name)
        self.events.append((self.t_s, f"mode {name}"))

    def can_run(self, name: str) -> bool:
        if name in RC_MODES:
            return False  # COM_RC_IN_MODE: no manual control input in SITL
        if name == "OFFBOARD":
            return self.offboard_signal_ok() and self.estimator_ready
        if name.startswith("AUTO."):
            return self.estimator_ready
        return True

    def request_mode(self, name: str) -> int:
        if not self.armed or self.can_run(name):
            self.set_user_mode(name)
            return ACCEPTED
        return TEMP_REJECTED

    def _failsafe(self, reason: str, action: str) -> None:
        if action == "DISARM":
            self.do_disarm(f"failsafe {reason}")
            return
        if action == "TERMINATE":
            self.do_disarm(f"flight termination ({reason})")
            return
        self.failsafe_mode, self.failsafe_reason = action, reason
        self._enter(action)
        self.events.append((self.t_s, f"failsafe {reason} -> {action}"))
        self.statustext(2, f"Failsafe activated: switching to {action.split('.')[-1]}")
        a = ev.FAILSAFE_ACTION.get(action, 6)
        self.event(ev.FAILSAFE_ENTER_GENERIC, bytes([0, 0, a, 0, a, 0]), 0x42)
        if action == "AUTO.RTL":
            alt = round(self.config.home_alt_m + max(self.alt_rel_m, self.params["RTL_RETURN_ALT"]))
            self.event(ev.RTL_START_RETURN, struct.pack("<ii", alt, round(max(
                self.alt_rel_m, self.params["RTL_RETURN_ALT"]))))

    @staticmethod
    def _action_name(code: int) -> str:
        return {0: "AUTO.LOITER", 1: "AUTO.LOITER", 2: "AUTO.RTL", 3: "AUTO.LAND", 4: "AUTO.LAND",
                5: "TERMINATE", 6: "DISARM"}.get(code, "AUTO.RTL")

    def _offboard_loss_action(self) -> str:
        a = int(self.params["COM_OBL_RC_ACT"])
        if a in (0, 1, 2):  # Position/Altitude/Stabilized need RC: NAV_RCL_ACT applies (failsafe.cpp)
            return self._action_name(int(self.params["NAV_RCL_ACT"]))
        return {3: "AUTO.RTL", 4: "AUTO.LAND", 5: "AUTO.LOITER", 6: "TERMINATE", 7: "DISARM"}.get(a, "AUTO.RTL")

    def update_logic(self) -> None:
        t = self.t_s
        if self.armed:
            # offboard loss / recovery (no COM_FAIL_ACT_T delay for this failsafe)
            if self.user_mode == "OFFBOARD":
                ok = self.offboard_signal_ok()
                if self.failsafe_reason == "offboard" and ok:
                    self.failsafe_mode, self.failsafe_reason = None, ""
                    self.events.append((t, "offboard signal regained: OFFBOARD"))
                elif not self.failsafe_mode and not ok:
                    self.statustext(4, "No offboard signal")
                    self._failsafe("offboard", self._offboard_loss_action())
            self._check_geofence()
            self._check_datalink()
            # auto-disarm
            if self.landed and not self.ever_airborne_since_arm and self.armed and \
                    t - self.arm_time_s > self.params["COM_DISARM_PRFLT"] > 0:
                self.do_disarm("auto preflight disarming")
            elif self.landed and self.ever_airborne_since_arm and \
                    t - self.landed_time_s > self.params["COM_DISARM_LAND"] >= 0:
                self.do_disarm("landing")
            if self.nav_state == "AUTO.TAKEOFF" and not self.landed and \
                    self.alt_rel_m >= self.takeoff_alt_rel_m - 0.3:
                self.set_user_mode("AUTO.LOITER")

    def _check_datalink(self) -> None:
        """GCS data-link loss (COM_DL_LOSS_T, NAV_DLL_ACT): only after a GCS heartbeat has been seen once."""
        act = int(self.params["NAV_DLL_ACT"])
        last = max((ls.last_gcs_heartbeat_s for ls in self.links), default=-1e9)
        if act == 0 or last < 0 or self.landed:
            return
        lost = self.t_s - last > self.params["COM_DL_LOSS_T"]
        if lost and self.failsafe_reason != "datalink" and not self.failsafe_mode:
            self.statustext(2, "Connection to ground station lost")
            self._failsafe("datalink", {1: "AUTO.LOITER", 2: "AUTO.RTL", 3: "AUTO.LAND", 5: "TERMINATE",
                                        6: "DISARM"}.get(act, "AUTO.RTL"))
        elif not lost and self.failsafe_reason == "datalink":
            self.failsafe_mode, self.failsafe_reason = None, ""
            self.events.append((self.t_s, "ground station link regained"))

    def _check_geofence(self) -> None:
        if self.landed:
            return
        hmax, vmax = self.params["GF_MAX_HOR_DIST"], self.params["GF_MAX_VER_DIST"]
        p = self.pos_ned_m
        out = (hmax > 0 and math.hypot(p[0], p[1]) > hmax) or (vmax > 0 and -p[2] > vmax)
        if out and not self._gf_breached:
            self._gf_breached = True
            act = int(self.params["GF_ACTION"])
            self.statustext(2, "Geofence violated")
            if act in (2, 3, 4, 5):
                self._failsafe("geofence", {2: "AUTO.LOITER", 3: "AUTO.RTL", 4: "TERMINATE", 5: "AUTO.LAND"}[act])
        elif not out:
            self._gf_breached = False

    def do_disarm(self, reason: str) -> None:
        super().do_disarm(reason)
        code = {"landing": ev.REASON_AUTO_DISARM_LAND, "auto preflight disarming": ev.REASON_AUTO_DISARM_PREFLIGHT,
                "external command": ev.REASON_COMMAND_EXTERNAL}.get(reason, ev.REASON_FAILSAFE)
        self.event(ev.DISARMED_BY, bytes([code]))
        self.statustext(6, f"Disarmed by {reason}")
        self.failsafe_mode, self.failsafe_reason = None, ""
        if self.user_mode in NO_ARM_MODES or self.user_mode == "AUTO.TAKEOFF":
            self.user_mode = self.last_armable_mode
        self.takeoff_start_s = -1.0

    def on_takeoff_detected(self) -> None:
        super().on_takeoff_detected()
        self.event(ev.TAKEOFF_DETECTED)

    def on_landing_detected(self) -> None:
        super().on_landing_detected()
        self.event(ev.LANDING_DETECTED)

    def do_arm(self) -> None:
        super().do_arm()
        self.event(ev.ARMED_BY, bytes([ev.REASON_COMMAND_EXTERNAL]))
        self.spool_until_s = self.t_s + self.params["COM_SPOOLUP_TIME"]
        self.takeoff_start_s = -1.0
        self._enter(self.nav_state)

    # ------------------------------------------------------------------ control
    def gains(self) -> ControlGains:
        p = self.params
        return ControlGains(p["MPC_XY_P"], p["MPC_Z_P"], p["MPC_XY_VEL_P_ACC"], p["MPC_Z_VEL_P_ACC"])

    def tilt_limit_rad(self) -> float:
        name = "MPC_TILTMAX_LND" if self.landed else "MPC_TILTMAX_AIR"
        return math.radians(self.params[name])

    def _limits(self, xy: float | None = None) -> Limits:
        p = self.params
        up = p["MPC_Z_VEL_MAX_UP"]
        if self.takeoff_start_s >= 0 and self.t_s - self.takeoff_start_s < p["MPC_TKO_RAMP_T"]:
            frac = (self.t_s - self.takeoff_start_s) / max(p["MPC_TKO_RAMP_T"], 1e-3)
            up = max(0.3, min(up, p["MPC_TKO_SPEED"]) * frac + 0.0)
        return Limits(p["MPC_XY_VEL_MAX"] if xy is None else xy, up, p["MPC_Z_VEL_MAX_DN"],
                      self.tilt_limit_rad())

    def _land_speed(self) -> float:
        p = self.params
        h = self.alt_rel_m
        if h > p["MPC_LAND_ALT1"]:
            return p["MPC_Z_VEL_MAX_DN"]
        if h < p["MPC_LAND_ALT2"]:
            return p["MPC_LAND_SPEED"]
        f = (h - p["MPC_LAND_ALT2"]) / max(p["MPC_LAND_ALT1"] - p["MPC_LAND_ALT2"], 1e-3)
        return p["MPC_LAND_SPEED"] + f * (p["MPC_Z_VEL_MAX_DN"] - p["MPC_LAND_SPEED"])

    def current_setpoint(self) -> tuple[Setpoint, Limits, bool]:
        mode = self.nav_state
        pos = self.pos_ned_m
        if mode == "OFFBOARD":
            sp = self.offboard_sp
            climb = (math.isfinite(sp.pos_ned_m[2]) and sp.pos_ned_m[2] < pos[2] - 0.2) or \
                (math.isfinite(sp.vel_ned_mps[2]) and sp.vel_ned_mps[2] < -0.1) or \
                (math.isfinite(sp.acc_ned_mps2[2]) and sp.acc_ned_mps2[2] < -0.1)
            return sp, self._limits(), climb
        if mode == "AUTO.TAKEOFF":
            hp = self.hold_pos or (float(pos[0]), float(pos[1]), 0.0)
            lim = self._limits()
            lim = Limits(lim.xy_mps, min(lim.up_mps, self.params["MPC_TKO_SPEED"]), lim.down_mps, lim.tilt_rad)
            return Setpoint(pos_ned_m=(hp[0], hp[1], -self.takeoff_alt_rel_m)), lim, True
        if mode == "AUTO.LAND":
            hp = self.hold_pos or (float(pos[0]), float(pos[1]), 0.0)
            return Setpoint(pos_ned_m=(hp[0], hp[1], math.nan), vel_ned_mps=(math.nan, math.nan,
                                                                             self._land_speed())), self._limits(), False
        if mode == "AUTO.RTL":
            return self._rtl_setpoint()
        # LOITER / MISSION (empty) / READY / anything else: hold position
        if self.hold_pos is None:
            self.hold_pos = (float(pos[0]), float(pos[1]), float(pos[2]))
        return Setpoint(pos_ned_m=self.hold_pos), self._limits(self.params["MPC_XY_CRUISE"]), False

    def _rtl_setpoint(self) -> tuple[Setpoint, Limits, bool]:
        pos = self.pos_ned_m
        ret_alt = max(self.params["RTL_RETURN_ALT"], self.alt_rel_m if self.rtl_phase != "climb" else 0.0)
        cruise = self._limits(self.params["MPC_XY_CRUISE"])
        dist = math.hypot(pos[0], pos[1])
        if self.rtl_phase == "climb":
            if self.alt_rel_m >= self.params["RTL_RETURN_ALT"] - 0.5 or dist < 1.0:
                self.rtl_phase = "return"
                self.hold_pos = (float(pos[0]), float(pos[1]), min(float(pos[2]), -self.params["RTL_RETURN_ALT"]))
            hp = self.hold_pos or (float(pos[0]), float(pos[1]), 0.0)
            return Setpoint(pos_ned_m=(hp[0], hp[1], -self.params["RTL_RETURN_ALT"])), cruise, False
        if self.rtl_phase == "return":
            if dist < 1.0:
                self.rtl_phase = "land"
            z = self.hold_pos[2] if self.hold_pos else -ret_alt
            yaw = math.atan2(-pos[1], -pos[0]) if dist > 2.0 else math.nan
            return Setpoint(pos_ned_m=(0.0, 0.0, z), yaw_rad=yaw), cruise, False
        return Setpoint(pos_ned_m=(0.0, 0.0, math.nan), vel_ned_mps=(math.nan, math.nan, self._land_speed())), \
            cruise, False

    # ------------------------------------------------------------------ HEARTBEAT
    def heartbeat_message(self):
        mode = self.nav_state
        base = D.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        if self.armed:
            base |= D.MAV_MODE_FLAG_SAFETY_ARMED
        if mode in RC_MODES:
            base |= D.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED
        if mode in ("POSCTL", "ALTCTL", "STABILIZED", "OFFBOARD") or mode.startswith("AUTO."):
            base |= D.MAV_MODE_FLAG_STABILIZE_ENABLED
        if mode.startswith("AUTO."):
            base |= D.MAV_MODE_FLAG_AUTO_ENABLED | D.MAV_MODE_FLAG_GUIDED_ENABLED
        if self.armed:
            status = D.MAV_STATE_CRITICAL if self.failsafe_mode else D.MAV_STATE_ACTIVE
        else:
            ready = self.estimator_ready and (mode != "OFFBOARD" or self.offboard_signal_ok())
            status = D.MAV_STATE_STANDBY if ready else D.MAV_STATE_UNINIT
        return D.MAVLink_heartbeat_message(int(self.params["MAV_TYPE"]), D.MAV_AUTOPILOT_PX4, base,
                                           px4_custom_mode(mode), status, 3)

    def landed_state(self) -> int:
        mode = self.nav_state
        if self.landed:
            return D.MAV_LANDED_STATE_ON_GROUND
        if mode == "AUTO.TAKEOFF":
            return D.MAV_LANDED_STATE_TAKEOFF
        if mode == "AUTO.LAND" or (mode == "AUTO.RTL" and self.rtl_phase == "land"):
            return D.MAV_LANDED_STATE_LANDING
        return D.MAV_LANDED_STATE_IN_AIR

    def _b_position_target_global_int(self):
        """Sent only while armed in AUTO.RTL / AUTO.LAND (as in flightA.tlog)."""
        if not self.armed or self.nav_state not in ("AUTO.RTL", "AUTO.LAND"):
            return None
        sp = self.last_setpoint_used
        from autonomy.geometry import ned_to_geodetic

        c = self.config
        pos = [sp.pos_ned_m[i] if math.isfinite(sp.pos_ned_m[i]) else float(self.pos_ned_m[i]) for i in range(3)]
        lat, lon, alt = ned_to_geodetic(np.array(pos), c.home_lat_deg, c.home_lon_deg, c.home_alt_m)
        return D.MAVLink_position_target_global_int_message(
            self.time_boot_ms, D.MAV_FRAME_GLOBAL_INT, 0, round(lat * 1e7), round(lon * 1e7), alt,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, self.yaw_rad, 0.0)

    BUILDERS: ClassVar[dict] = {**Autopilot.BUILDERS, D.MAVLINK_MSG_ID_POSITION_TARGET_GLOBAL_INT: _b_position_target_global_int}

    # ------------------------------------------------------------------ links and streams
    def on_new_link(self, ls: LinkState) -> None:
        table = PX4_NORMAL_STREAMS_HZ if ls.mode == "normal" else PX4_ONBOARD_STREAMS_HZ
        ls.intervals_s = {mid: 1.0 / hz for mid, hz in table.items()}
        ls.link.v1_until_v2 = int(self.params["MAV_PROTO_VER"]) == 0
        self._origin_sent = False

    def after_tick(self) -> None:
        if not getattr(self, "_origin_sent", True) and self.estimator_ready:
            self._origin_sent = True
            m = self.build(D.MAVLINK_MSG_ID_GPS_GLOBAL_ORIGIN)
            self.broadcast(m)
        for ls in self.links:
            burst = 0
            while ls.param_queue and burst < 20:  # 20 per 10 ms loop on UDP
                ls.link.send(ls.param_queue.pop(0))
                burst += 1

    def statustext_allowed(self, ls: LinkState) -> bool:
        return self.t_s - ls.last_gcs_heartbeat_s <= 2.5

    # ------------------------------------------------------------------ messages in
    def _for_me(self, ts: int, tc: int) -> bool:
        return ts in (0, self.sysid) and tc in (0, self.compid)

    def _command_for_me(self, ls: LinkState, msg) -> bool:
        if self.version == "main":
            return self._for_me(msg.target_system, msg.target_component)
        if msg.target_system == self.sysid and msg.target_component in (0, self.compid):
            return True
        if self.version == "1.15" and msg.target_system != 0:
            self.ack(ls, msg, msg.command, FAILED)  # v1.15 answered mis-targeted commands (changed 2024-11)
        return False

    def handle_message(self, ls: LinkState, msg) -> None:
        mt = msg.get_type()
        if mt == "HEARTBEAT":
            if msg.type == D.MAV_TYPE_GCS:
                ls.last_gcs_heartbeat_s = self.t_s
        elif mt == "SET_POSITION_TARGET_LOCAL_NED":
            if self._for_me(msg.target_system, msg.target_component) and self.params["MAV_FWDEXTSP"]:
                self._handle_sp_local(msg)
        elif mt == "SET_POSITION_TARGET_GLOBAL_INT":
            if self._for_me(msg.target_system, msg.target_component):
                self._handle_sp_global(msg)
        elif mt == "SET_ATTITUDE_TARGET":
            if self._for_me(msg.target_system, msg.target_component):
                self._handle_att_target(msg)
        elif mt == "COMMAND_LONG":
            if self._command_for_me(ls, msg):
                self._handle_command(ls, msg, msg.command,
                                     [msg.param1, msg.param2, msg.param3, msg.param4, msg.param5, msg.param6,
                                      msg.param7])
        elif mt == "COMMAND_INT":
            if self._command_for_me(ls, msg):
                if msg.frame not in (D.MAV_FRAME_GLOBAL, D.MAV_FRAME_GLOBAL_INT):
                    self.ack(ls, msg, msg.command, UNSUPPORTED_MAV_FRAME)
                    return
                self._handle_command(ls, msg, msg.command,
                                     [msg.param1, msg.param2, msg.param3, msg.param4, msg.x * 1e-7, msg.y * 1e-7,
                                      msg.z])
        elif mt == "SET_MODE":
            if msg.target_system in (0, self.sysid):
                cm = msg.custom_mode
                self._handle_command(ls, msg, D.MAV_CMD_DO_SET_MODE,
                                     [msg.base_mode, (cm >> 16) & 0xFF, (cm >> 24) & 0xFF, 0, 0, 0, 0])
        elif mt == "TIMESYNC":
            if msg.tc1 == 0:
                ls.link.send(D.MAVLink_timesync_message(int(self.t_s * 1e9), msg.ts1))
        elif mt == "PARAM_REQUEST_LIST":
            if msg.target_system == self.sysid:
                self._param_list(ls)
        elif mt == "PARAM_REQUEST_READ":
            if msg.target_system == self.sysid and msg.target_component in (0, self.compid):
                self._param_read(ls, msg)
        elif mt == "PARAM_SET":
            if msg.target_system == self.sysid and msg.target_component in (0, self.compid):
                self._param_set(ls, msg)
        elif mt == "REQUEST_DATA_STREAM":
            pass  # PX4 ignores it (spec §3)
        elif mt == "MISSION_REQUEST_LIST" and self._for_me(msg.target_system, msg.target_component):
            # no missions here: an empty list
            ls.link.send(D.MAVLink_mission_count_message(msg.get_srcSystem(), msg.get_srcComponent(), 0,
                                                         msg.mission_type))

    # --- setpoints
    def _handle_sp_local(self, m) -> None:
        frame, mask = m.coordinate_frame, m.type_mask
        if frame not in (D.MAV_FRAME_LOCAL_NED, D.MAV_FRAME_BODY_NED):
            self.statustext(2, f"SET_POSITION_TARGET_LOCAL_NED coordinate frame {frame} unsupported")
            return
        acc_given = (mask & 0x1C0) != 0x1C0
        if mask & 512 and acc_given:
            self.statustext(2, "SET_POSITION_TARGET_LOCAL_NED force not supported")
            return

        def ax(val: float, bit: int) -> float:
            return math.nan if mask & bit else float(val)

        pos = (ax(m.x, 1), ax(m.y, 2), ax(m.z, 4))
        vel = (ax(m.vx, 8), ax(m.vy, 16), ax(m.vz, 32))
        acc = (ax(m.afx, 64), ax(m.afy, 128), ax(m.afz, 256))
        if frame == D.MAV_FRAME_BODY_NED:
            pos = NAN3
            if mask & (8 | 16 | 32):
                vel = NAN3
            else:
                c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
                vel = (c * vel[0] - s * vel[1], s * vel[0] + c * vel[1], vel[2])
            if all(math.isfinite(a) for a in acc):
                from autonomy.geometry import rotate_body_to_ned

                r = rotate_body_to_ned(self.state.q_body_to_ned, np.array(acc))
                acc = (float(r[0]), float(r[1]), float(r[2]))
        if not any(math.isfinite(v) for v in pos + vel + acc):
            self.statustext(2, "SET_POSITION_TARGET_LOCAL_NED invalid")
            return
        self.offboard_sp = Setpoint(pos, vel, acc, ax(m.yaw, 1024), ax(m.yaw_rate, 2048))
        self.last_offboard_s = self.t_s

    def _handle_sp_global(self, m) -> None:
        if m.coordinate_frame not in (D.MAV_FRAME_GLOBAL_INT, D.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
                                      D.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT):
            return
        from autonomy.geometry import geodetic_to_ned

        c = self.config
        mask = m.type_mask
        alt_amsl = m.alt if m.coordinate_frame == D.MAV_FRAME_GLOBAL_INT else m.alt + c.home_alt_m
        p = geodetic_to_ned(m.lat_int * 1e-7, m.lon_int * 1e-7, alt_amsl, c.home_lat_deg, c.home_lon_deg,
                            c.home_alt_m)

        def ax(val: float, bit: int) -> float:
            return math.nan if mask & bit else float(val)

        pos = (ax(p[0], 1), ax(p[1], 2), ax(p[2], 4))
        vel = (ax(m.vx, 8), ax(m.vy, 16), ax(m.vz, 32))
        acc = (ax(m.afx, 64), ax(m.afy, 128), ax(m.afz, 256))
        if not any(math.isfinite(v) for v in pos + vel + acc):
            return
        self.offboard_sp = Setpoint(pos, vel, acc, ax(m.yaw, 1024), ax(m.yaw_rate, 2048))
        self.last_offboard_s = self.t_s

    def _handle_att_target(self, m) -> None:
        mask = m.type_mask
        att = not (mask & 128)
        rates = not (mask & 1) and not (mask & 2)
        if not (att or rates):
            return
        self.last_offboard_s = self.t_s
        if att and not (mask & 64):
            q = np.array(m.q, dtype=np.float64)
            n = float(np.linalg.norm(q))
            if not math.isfinite(n) or n < 1e-6:
                return
            from autonomy.geometry import GRAVITY_MPS2, rotate_body_to_ned

            thrust = max(0.0, float(m.thrust)) / max(self.params["MPC_THR_HOVER"], 0.05) * GRAVITY_MPS2
            f = rotate_body_to_ned(q / n, np.array([0.0, 0.0, -thrust]))
            acc = (float(f[0]), float(f[1]), float(f[2]) + GRAVITY_MPS2)
            from autonomy.geometry import quat_to_euler

            self.offboard_sp = Setpoint(acc_ned_mps2=acc, yaw_rad=quat_to_euler(q / n)[2])

    # --- commands
    def _handle_command(self, ls: LinkState, msg, cmd: int, p: list[float]) -> None:
        if cmd == D.MAV_CMD_COMPONENT_ARM_DISARM:
            self.ack(ls, msg, cmd, self._arm_disarm(p[0], p[1]))
        elif cmd == D.MAV_CMD_DO_SET_MODE:
            base = _pint(p[0])
            if base & D.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
                name = _BY_MAIN_SUB.get((_pint(p[1]), _pint(p[2])))
            elif base & D.MAV_MODE_FLAG_AUTO_ENABLED:
                name = "AUTO.MISSION"
            elif base & D.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED:
                name = "POSCTL" if base & D.MAV_MODE_FLAG_GUIDED_ENABLED else (
                    "STABILIZED" if base & D.MAV_MODE_FLAG_STABILIZE_ENABLED else "MANUAL")
            else:
                name = None
            if name is None:
                self.statustext(2, "Unsupported mode")
                result = TEMP_REJECTED
            else:
                result = self.request_mode(name)
            self.ack(ls, msg, cmd, result, times=2)  # real PX4 acks DO_SET_MODE twice (Appendix A)
        elif cmd == D.MAV_CMD_NAV_TAKEOFF:
            alt_amsl = p[6]
            rel = (self.alt_rel_m + self.params["MIS_TAKEOFF_ALT"]) if not math.isfinite(alt_amsl) else \
                alt_amsl - self.config.home_alt_m
            if not self.estimator_ready:
                self.ack(ls, msg, cmd, TEMP_REJECTED)
                return
            self.takeoff_alt_rel_m = max(rel, 1.0)
            p0 = self.pos_ned_m
            self.set_user_mode("AUTO.TAKEOFF")
            self.hold_pos = (float(p0[0]), float(p0[1]), float(p0[2]))
            self.ack(ls, msg, cmd, ACCEPTED)
        elif cmd == D.MAV_CMD_NAV_LAND:
            self.set_user_mode("AUTO.LAND")
            self.ack(ls, msg, cmd, ACCEPTED)
            if self.armed:
                self.event(ev.LAND_AT_CURRENT_POSITION)
        elif cmd == D.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self.ack(ls, msg, cmd, self.request_mode("AUTO.RTL"))
        elif cmd == D.MAV_CMD_NAV_LOITER_UNLIM:
            self.ack(ls, msg, cmd, self.request_mode("AUTO.LOITER"))
        elif cmd == D.MAV_CMD_SET_MESSAGE_INTERVAL:
            self.ack(ls, msg, cmd, self._set_interval(ls, p))
        elif cmd == D.MAV_CMD_REQUEST_MESSAGE:
            self.ack(ls, msg, cmd, self._request_message(ls, _pint(p[0])))
        elif cmd == D.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self.ack(ls, msg, cmd, ACCEPTED)
            ls.link.send(self._autopilot_version())
        else:
            self.ack(ls, msg, cmd, UNSUPPORTED)

    def _arm_disarm(self, p1: float, p2: float) -> int:
        forced = _pint(p2) == FORCE_MAGIC
        if p1 == 1.0:
            if self.armed:
                return ACCEPTED
            mode = self.nav_state
            reason = None
            if not self.estimator_ready:
                reason = "No valid position estimate"
            elif mode == "OFFBOARD" and not self.offboard_signal_ok():
                reason = "No offboard signal"
            elif mode in RC_MODES:
                reason = "No manual control input"
            elif mode in NO_ARM_MODES:
                reason = "Mode not suitable for arming"
            if reason and not forced:
                self.statustext(2, f"Arming denied: {reason}")
                self.events.append((self.t_s, f"arming denied: {reason}"))
                return TEMP_REJECTED
            self.do_arm()
            self.statustext(6, "Armed by external command")
            return ACCEPTED
        if p1 == 0.0:
            if not self.armed:
                return ACCEPTED
            if not self.landed and not forced:
                self.statustext(2, "Disarming denied: not landed")
                return TEMP_REJECTED
            self.do_disarm("external command")
            return ACCEPTED
        self.statustext(2, f"Unsupported ARM_DISARM param: {p1:.1f}")
        return UNSUPPORTED

    def _set_interval(self, ls: LinkState, p: list[float]) -> int:
        mid, iv_us = _pint(p[0]), p[1]
        if not math.isfinite(iv_us):
            return FAILED
        if (p[2] != 0 and math.isfinite(p[2])) or (p[3] != 0 and math.isfinite(p[3])) or \
                (p[6] != 0 and math.isfinite(p[6])):
            return FAILED
        if mid == D.MAVLINK_MSG_ID_HEARTBEAT or mid not in self.BUILDERS:
            return FAILED
        if iv_us < 0:
            ls.intervals_s[mid] = 0.0
        elif iv_us == 0:
            hz = (PX4_NORMAL_STREAMS_HZ if ls.mode == "normal" else PX4_ONBOARD_STREAMS_HZ).get(mid)
            ls.intervals_s[mid] = 1.0 / hz if hz else 0.0
        else:
            ls.intervals_s[mid] = iv_us * 1e-6
        ls.next_due_s[mid] = self.t_s
        return ACCEPTED

    def _request_message(self, ls: LinkState, mid: int) -> int:
        if mid == D.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            ls.link.send(self._autopilot_version())
            return ACCEPTED
        m = self.build(mid) if mid in self.BUILDERS else None
        if m is None:
            return DENIED
        ls.link.send(m)
        return ACCEPTED

    def _autopilot_version(self):
        caps = (D.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT | D.MAV_PROTOCOL_CAPABILITY_PARAM_ENCODE_BYTEWISE
                | D.MAV_PROTOCOL_CAPABILITY_MAVLINK2 | D.MAV_PROTOCOL_CAPABILITY_SET_ATTITUDE_TARGET
                | D.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_LOCAL_NED
                | D.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT | D.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                | D.MAV_PROTOCOL_CAPABILITY_MISSION_INT)
        return D.MAVLink_autopilot_version_message(caps, (1 << 24) | (17 << 16) | 255, 0, 0, 0, [0] * 8, [0] * 8,
                                                   [0] * 8, 0, 0, 0x1A2B3C4D, [0] * 18)

    # --- parameters (byte-wise int32, spec §8)
    def _pv(self, i: int):
        d = self.params.definition(i)
        return D.MAVLink_param_value_message(d.name.encode(), encode_bytewise(self.params[d.name], d.type_id),
                                             d.type_id, len(self.params), i)

    def _hash_msg(self):
        return D.MAVLink_param_value_message(b"_HASH_CHECK", encode_bytewise(self.params.hash32(), UINT32),
                                             UINT32, len(self.params), 65535)

    def _param_list(self, ls: LinkState) -> None:
        ls.param_queue = [self._hash_msg()] + [self._pv(i) for i in range(len(self.params))]

    def _param_error(self, ls: LinkState, msg, name: str, index: int, err: int) -> None:
        if self.version != "main":
            return  # v1.15/1.16 send nothing for unknown names or type mismatches
        ls.link.send(D.MAVLink_param_error_message(msg.get_srcSystem(), msg.get_srcComponent(), name.encode(),
                                                   index, err))

    def _param_read(self, ls: LinkState, msg) -> None:
        name = _pid(msg.param_id)
        if msg.param_index >= 0:
            if msg.param_index < len(self.params):
                ls.link.send(self._pv(msg.param_index))
            else:
                self._param_error(ls, msg, name, msg.param_index, D.MAV_PARAM_ERROR_DOES_NOT_EXIST)
            return
        if name == "_HASH_CHECK":
            ls.link.send(self._hash_msg())
        elif name in self.params:
            ls.link.send(self._pv(self.params.index(name)))
        else:
            self._param_error(ls, msg, name, -1, D.MAV_PARAM_ERROR_DOES_NOT_EXIST)

    def _param_set(self, ls: LinkState, msg) -> None:
        name = _pid(msg.param_id)
        if name == "_HASH_CHECK":
            ls.param_queue.clear()  # the GCS has the set cached: stop the list
            return
        if name not in self.params:
            self._param_error(ls, msg, name, -1, D.MAV_PARAM_ERROR_DOES_NOT_EXIST)
            return
        d = self.params.definition(name)
        if msg.param_type != d.type_id:
            self._param_error(ls, msg, name, self.params.index(name), 7)  # TYPE_MISMATCH (newer enum)
            return
        value = decode_bytewise(msg.param_value, d.type_id)
        try:
            changed = self.params.set(name, value)
        except ParamError:
            self._param_error(ls, msg, name, self.params.index(name), D.MAV_PARAM_ERROR_VALUE_OUT_OF_RANGE)
            return
        i = self.params.index(name)
        self.broadcast(self._pv(i))
        if changed:
            if name == "MPC_XY_VEL_MAX" and self.params["MPC_VEL_MANUAL"] > self.params[name]:
                self.params.set("MPC_VEL_MANUAL", self.params[name])
                self.broadcast(self._pv(self.params.index("MPC_VEL_MANUAL")))
            self.broadcast(self._pv(i))  # a real change is reported twice (Appendix A)


def _pint(x: float) -> int:
    """Integer value of a command parameter; NaN/inf (MAVSDK sends NaN for unused ones) read as 0."""
    return int(x) if math.isfinite(x) and abs(x) < 2**31 else 0


def _pid(raw) -> str:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    return raw.split("\x00")[0]


__all__ = ["PX4_MODES", "PX4_ONBOARD_STREAMS_HZ", "REAL32", "Px4Autopilot", "px4_custom_mode", "px4_mode_name"]
