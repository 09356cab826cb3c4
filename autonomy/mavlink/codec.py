"""Wire -> SI decoding of vehicle telemetry, and the state cache that keeps the newest good values.

Units leave here in SI: m, m/s, rad, rad/s, s. Frames: positions/velocities NED relative to the EKF origin
(LOCAL_POSITION_NED, AUTOPILOT_SPEC section 11), attitude as the Hamilton quaternion body FRD -> NED.
Message times (time_boot_ms) are autopilot boot time, mapped to our clock by a ``ClockMapper``.

A message with a NaN/inf in a field we use is dropped whole (``StateCache.dropped_nan``), and the state keeps
its last good value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from autonomy.geometry import euler_to_quat, geodetic_to_ned, ned_to_geodetic
from autonomy.mavlink.clock import ClockMapper
from autonomy.mavlink.flavour import Flavour, flavour_for
from autonomy.mavlink.history import StateHistory
from autonomy.types import Autopilot, VehicleState

MAV_MODE_FLAG_SAFETY_ARMED = 128
MAV_TYPE_GCS, MAV_TYPE_ONBOARD_CONTROLLER, MAV_TYPE_GIMBAL, MAV_TYPE_ADSB = 6, 18, 26, 27
_NOT_VEHICLES = {MAV_TYPE_GCS, MAV_TYPE_ONBOARD_CONTROLLER, MAV_TYPE_GIMBAL, MAV_TYPE_ADSB}


def _finite(*vals: float) -> bool:
    return all(math.isfinite(v) for v in vals)


@dataclass(frozen=True)
class Heartbeat:
    autopilot_id: int
    mav_type: int
    base_mode: int
    custom_mode: int
    system_status: int

    @property
    def armed(self) -> bool:
        return bool(self.base_mode & MAV_MODE_FLAG_SAFETY_ARMED)


def decode_heartbeat(msg) -> Heartbeat:
    return Heartbeat(msg.autopilot, msg.type, msg.base_mode, msg.custom_mode, msg.system_status)


def decode_local_position(msg) -> tuple[float, np.ndarray, np.ndarray] | None:
    """LOCAL_POSITION_NED -> (t_boot_s, pos_ned_m, vel_ned_mps), None when a field is not finite."""
    if not _finite(msg.x, msg.y, msg.z, msg.vx, msg.vy, msg.vz):
        return None
    return msg.time_boot_ms * 1e-3, np.array([msg.x, msg.y, msg.z]), np.array([msg.vx, msg.vy, msg.vz])


def decode_attitude_quaternion(msg) -> tuple[float, np.ndarray, np.ndarray] | None:
    """ATTITUDE_QUATERNION -> (t_boot_s, q [w,x,y,z] body FRD->NED, rate_body_radps)."""
    w, x, y, z = msg.q1, msg.q2, msg.q3, msg.q4
    if not _finite(w, x, y, z, msg.rollspeed, msg.pitchspeed, msg.yawspeed):
        return None
    n = math.sqrt(w * w + x * x + y * y + z * z)
    if not 0.5 < n < 1.5:
        return None
    return (msg.time_boot_ms * 1e-3, np.array([w / n, x / n, y / n, z / n]),
            np.array([msg.rollspeed, msg.pitchspeed, msg.yawspeed]))


def decode_attitude(msg) -> tuple[float, np.ndarray, np.ndarray] | None:
    """ATTITUDE (Euler 3-2-1, rad) -> (t_boot_s, q, rate_body_radps)."""
    if not _finite(msg.roll, msg.pitch, msg.yaw, msg.rollspeed, msg.pitchspeed, msg.yawspeed):
        return None
    q = euler_to_quat(msg.roll, msg.pitch, msg.yaw)
    return msg.time_boot_ms * 1e-3, q, np.array([msg.rollspeed, msg.pitchspeed, msg.yawspeed])


def decode_global_position(msg) -> tuple[float, tuple[float, float, float], np.ndarray]:
    """GLOBAL_POSITION_INT -> (t_boot_s, (lat_deg, lon_deg, alt_m AMSL), vel_ned_mps). Integers: always finite."""
    return (msg.time_boot_ms * 1e-3, (msg.lat * 1e-7, msg.lon * 1e-7, msg.alt * 1e-3),
            np.array([msg.vx, msg.vy, msg.vz]) * 0.01)


def decode_origin(msg) -> tuple[float, float, float] | None:
    """GPS_GLOBAL_ORIGIN or HOME_POSITION -> EKF origin (lat_deg, lon_deg, alt_m AMSL)."""
    lla = (msg.latitude * 1e-7, msg.longitude * 1e-7, msg.altitude * 1e-3)
    if msg.get_type() == "GPS_GLOBAL_ORIGIN":
        return lla
    # HOME_POSITION gives home's geodetic position and its local NED position: origin = home - local
    if not _finite(msg.x, msg.y, msg.z):
        return None
    return ned_to_geodetic(-np.array([msg.x, msg.y, msg.z]), *lla)


class StateCache:
    """The newest good vehicle state from one vehicle (sysid/compid latched from its first HEARTBEAT).

    ``apply(msg, t_recv_s)`` takes every received message; it returns True when the message changed state.
    """

    def __init__(self, mapper: ClockMapper, history: StateHistory | None = None,
                 local_stale_s: float = 1.0) -> None:
        self.mapper = mapper
        self.history = history or StateHistory()
        self.flavour: Flavour | None = None
        self.vehicle: tuple[int, int] | None = None
        self.heartbeat: Heartbeat | None = None
        self.t_heartbeat_s = -math.inf
        self.origin: tuple[float, float, float] | None = None
        self.origin_from_gps_origin = False
        self.landed: bool | None = None
        self.home_ned_m: np.ndarray | None = None
        self.dropped_nan = 0
        self._local_stale_s = local_stale_s
        self._t_local_s = -math.inf
        self._t_quat_s = -math.inf
        self._pos = np.zeros(3)
        self._vel = np.zeros(3)
        self._q = np.array([1.0, 0.0, 0.0, 0.0])
        self._rate = np.zeros(3)
        self._t_state_s = -math.inf

    # ---------------------------------------------------------------- dispatch
    def is_from_vehicle(self, msg) -> bool:
        return self.vehicle is not None and (msg.get_srcSystem(), msg.get_srcComponent()) == self.vehicle

    def apply(self, msg, t_recv_s: float) -> bool:
        mtype = msg.get_type()
        if mtype == "HEARTBEAT":
            return self._heartbeat(msg, t_recv_s)
        if not self.is_from_vehicle(msg):
            return False
        handler = self._handlers.get(mtype)
        return handler(self, msg, t_recv_s) if handler else False

    def _heartbeat(self, msg, t_recv_s: float) -> bool:
        if self.vehicle is None:
            fl = flavour_for(msg.autopilot)
            if fl is None or msg.type in _NOT_VEHICLES:
                return False
            self.vehicle = (msg.get_srcSystem(), msg.get_srcComponent())
            self.flavour = fl
        elif not self.is_from_vehicle(msg):
            return False
        self.heartbeat = decode_heartbeat(msg)
        self.t_heartbeat_s = t_recv_s
        return True

    def _ap_time(self, t_boot_s: float, t_recv_s: float) -> float:
        self.mapper.add_arrival(t_recv_s, t_boot_s)
        return self.mapper.to_ours(t_boot_s)

    def _local(self, msg, t_recv_s: float) -> bool:
        d = decode_local_position(msg)
        if d is None:
            self.dropped_nan += 1
            return False
        t_s = self._ap_time(d[0], t_recv_s)
        self._pos, self._vel = d[1], d[2]
        self._t_local_s = t_recv_s
        self._t_state_s = t_s
        self.history.add_kinematics(t_s, d[1], d[2])
        return True

    def _global(self, msg, t_recv_s: float) -> bool:
        # Fallback for ArduPilot before its EKF publishes LOCAL_POSITION_NED (Appendix B).
        if t_recv_s - self._t_local_s < self._local_stale_s or self.origin is None:
            return False
        t_boot, lla, vel = decode_global_position(msg)
        t_s = self._ap_time(t_boot, t_recv_s)
        self._pos = geodetic_to_ned(*lla, *self.origin)
        self._vel = vel
        self._t_state_s = t_s
        self.history.add_kinematics(t_s, self._pos, vel)
        return True

    def _attitude_q(self, msg, t_recv_s: float) -> bool:
        d = decode_attitude_quaternion(msg)
        if d is None:
            self.dropped_nan += 1
            return False
        self._t_quat_s = t_recv_s
        return self._set_att(d, t_recv_s)

    def _attitude(self, msg, t_recv_s: float) -> bool:
        if t_recv_s - self._t_quat_s < 0.5:  # ATTITUDE_QUATERNION is the better source when it flows
            return False
        d = decode_attitude(msg)
        if d is None:
            self.dropped_nan += 1
            return False
        return self._set_att(d, t_recv_s)

    def _set_att(self, d, t_recv_s: float) -> bool:
        t_s = self._ap_time(d[0], t_recv_s)
        self._q, self._rate = d[1], d[2]
        self.history.add_attitude(t_s, d[1], d[2])
        return True

    def _ext_state(self, msg, t_recv_s: float) -> bool:
        self.landed = {1: True, 2: False, 3: False, 4: False}.get(msg.landed_state)
        return True

    def _origin(self, msg, t_recv_s: float) -> bool:
        o = decode_origin(msg)
        if o is None:
            self.dropped_nan += 1
            return False
        if msg.get_type() == "GPS_GLOBAL_ORIGIN":
            self.origin, self.origin_from_gps_origin = o, True
            return True
        self.home_ned_m = np.array([msg.x, msg.y, msg.z])
        if not self.origin_from_gps_origin:
            self.origin = o
        return True

    _handlers = MappingProxyType({   # read-only: no class-level mutable state
        "LOCAL_POSITION_NED": _local,
        "GLOBAL_POSITION_INT": _global,
        "ATTITUDE_QUATERNION": _attitude_q,
        "ATTITUDE": _attitude,
        "EXTENDED_SYS_STATE": _ext_state,
        "GPS_GLOBAL_ORIGIN": _origin,
        "HOME_POSITION": _origin,
    })

    # ---------------------------------------------------------------- views
    @property
    def mode(self) -> str:
        if self.heartbeat is None or self.flavour is None:
            return "UNKNOWN"
        return self.flavour.mode_name(self.heartbeat.custom_mode)

    @property
    def armed(self) -> bool:
        return self.heartbeat is not None and self.heartbeat.armed

    def current(self) -> VehicleState | None:
        """The newest state (None before any position arrived)."""
        if not math.isfinite(self._t_state_s):
            return None
        return self._make(self._t_state_s, self._pos.copy(), self._vel.copy(), self._q.copy(), self._rate.copy())

    def state_at(self, t_s: float) -> VehicleState | None:
        """Interpolated state at ``t_s`` (our clock); None outside the history (see StateHistory)."""
        kin = self.history.kinematics_at(t_s)
        att = self.history.attitude_at(t_s)
        if kin is None or att is None:
            return None
        return self._make(t_s, kin[0], kin[1], att[0], att[1])

    def _make(self, t_s, pos, vel, q, rate) -> VehicleState:
        return VehicleState(t_s=t_s, pos_ned_m=pos, vel_ned_mps=vel, q_body_to_ned=q, rate_body_radps=rate,
                            armed=self.armed, mode=self.mode,
                            autopilot=self.flavour.autopilot if self.flavour else Autopilot.UNKNOWN,
                            landed=self.landed, origin_lat_lon_alt=self.origin)
