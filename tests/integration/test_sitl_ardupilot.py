"""Simulated ArduCopter endpoint over a real TCP socket on 127.0.0.1, stepped in lockstep by the test.

Expected behaviour: AUTOPILOT_SPEC.md §2-§9 and Appendix B (ArduCopter 4.7 SITL).
"""

from __future__ import annotations

import math
import socket

import pytest

from autonomy.mavlink.wire import dialect as D
from autonomy.mavlink.wire import mavutil
from sitl.autopilot import AP_MODES, ArduPilotAutopilot, TcpServerLink, ardupilot_config
from sitl.autopilot.ardupilot import ARDUPILOT_BANNER
from tests.conftest import free_tcp_port
from tests.integration._lockstep_client import POS_ONLY, VEL_ONLY, LockstepClient


class ApHarness(LockstepClient):
    def __init__(self, params: dict | None = None, **cfg) -> None:
        self.port = free_tcp_port()
        link = TcpServerLink(self.port, banner=ARDUPILOT_BANNER)
        ap = ArduPilotAutopilot(ardupilot_config(**cfg), params or {}, [link])
        conn = mavutil.mavlink_connection(f"tcp:127.0.0.1:{self.port}", source_system=255, source_component=190)
        self.gcs_heartbeat = False  # send a GCS HEARTBEAT (sysid 255) every second while stepping
        self._next_hb = 0.0
        super().__init__(ap, link, conn)

    def before_tick(self) -> None:
        if self.gcs_heartbeat and self.ap.t_s >= self._next_hb - 1e-9:
            self.c.mav.heartbeat_send(D.MAV_TYPE_GCS, D.MAV_AUTOPILOT_INVALID, 0, 0, 0)
            self._next_hb = self.ap.t_s + 1.0

    def mode(self, name: str) -> int:
        acks = self.command(D.MAV_CMD_DO_SET_MODE, 1, AP_MODES[name])
        assert len(acks) == 1
        return acks[0].result

    def takeoff(self, alt_m: float = 10.0) -> None:
        assert self.mode("GUIDED") == 0
        assert self.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)[0].result == 0
        assert self.command(D.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, alt_m)[0].result == 0
        self.step(3.0 + alt_m / 2.5 + 4.0)
        assert abs(self.ap.alt_rel_m - alt_m) < 0.5


@pytest.fixture
def h():
    hh = ApHarness()
    hh.step(3.2)
    yield hh
    hh.close()


def test_identity_and_no_streams_until_requested():
    hh = ApHarness()
    try:
        hh.step(4.5)
        kinds = {m.get_type() for _, m in hh.msgs}
        assert kinds <= {"HEARTBEAT", "STATUSTEXT", "HOME_POSITION", "GPS_GLOBAL_ORIGIN", "TIMESYNC"}
        hb = hh.last("HEARTBEAT")
        assert (hb.type, hb.autopilot, hb.get_srcSystem(), hb.get_srcComponent()) == (2, 3, 1, 1)
        assert hb.base_mode == 81 and hb.custom_mode == 0 and hb.system_status == D.MAV_STATE_STANDBY
        assert hh.mode("GUIDED") == 0
        hh.step(1.0)
        assert hh.last("HEARTBEAT").base_mode == 89 and hh.last("HEARTBEAT").custom_mode == 4
        t0 = hh.ap.t_s
        hh.c.mav.request_data_stream_send(1, 1, D.MAV_DATA_STREAM_POSITION, 10, 1)
        hh.c.mav.request_data_stream_send(1, 1, D.MAV_DATA_STREAM_EXTRA1, 20, 1)
        hh.step(2.0)
        assert 18 <= len(hh.since(t0, "GLOBAL_POSITION_INT")) <= 22
        assert 36 <= len(hh.since(t0, "ATTITUDE")) <= 42
        assert not hh.since(t0, "VFR_HUD")
        # SET_MESSAGE_INTERVAL: quaternion only this way; EXTENDED_SYS_STATE never; param3 != 0 denied
        assert hh.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE_QUATERNION, 50000)[0].result == 0
        denied = D.MAV_RESULT_DENIED
        assert hh.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_EXTENDED_SYS_STATE, 1e5)[0].result == denied
        assert hh.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE, 1e5, 1)[0].result == denied
        t1 = hh.ap.t_s
        hh.step(1.0)
        assert 18 <= len(hh.since(t1, "ATTITUDE_QUATERNION")) <= 22
        hh.c.mav.request_data_stream_send(1, 1, D.MAV_DATA_STREAM_ALL, 0, 0)
        hh.step(0.2)
        t2 = hh.ap.t_s
        hh.step(1.0)
        assert not hh.since(t2, "ATTITUDE") and hh.since(t2, "ATTITUDE_QUATERNION")
        assert not hh.since(0, "EXTENDED_SYS_STATE")
    finally:
        hh.close()


def test_arming_needs_estimator_and_takeoff_rules():
    hh = ApHarness()
    try:
        assert hh.mode("GUIDED") == 0      # accepted before any position estimate
        acks = hh.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)
        assert acks[0].result == D.MAV_RESULT_FAILED
        assert any(t.text.startswith("PreArm") for t in hh.since(0, "STATUSTEXT"))
        hh.step(3.2)
        assert hh.command(D.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 5)[0].result == D.MAV_RESULT_FAILED  # disarmed
        assert hh.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)[0].result == 0
        assert hh.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)[0].result == 0  # already armed: ACCEPTED
        # on the ground GUIDED setpoints move nothing
        hh.stream(mask=VEL_ONLY, vel=(2, 0, -1))
        hh.step(4.0)
        assert hh.ap.landed and abs(hh.ap.alt_rel_m) < 0.01
        hh.sp = None
        # COMMAND_INT takeoff in a non-relative frame is DENIED
        hh.c.mav.command_int_send(1, 1, D.MAV_FRAME_GLOBAL, D.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 0, 0, 5)
        hh.step(0.1)
        assert hh.last("COMMAND_ACK").result == D.MAV_RESULT_DENIED
        assert hh.command(D.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 7.5)[0].result == 0
        hh.step(1.0)
        assert hh.ap.landed  # spooling up
        hh.step(8.0)
        assert abs(hh.ap.alt_rel_m - 7.5) < 0.4 and hh.last("HEARTBEAT").base_mode == 217
        assert hh.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 0)[0].result == D.MAV_RESULT_FAILED  # flying
        assert hh.mode("AUTO") == D.MAV_RESULT_FAILED  # no mission
        assert hh.command(D.MAV_CMD_DO_SET_MODE, 1, 99)[0].result == D.MAV_RESULT_FAILED
    finally:
        hh.close()


def test_guided_velocity_square_timeout_position_hold_land(h):
    h.takeoff(10.0)
    for vel in ((4, 0, 0), (0, 4, 0), (-4, 0, 0), (0, -4, 0)):
        p0 = h.ap.pos_ned_m.copy()
        h.stream(mask=VEL_ONLY, vel=vel)
        h.step(4.0)
        d = h.ap.pos_ned_m - p0
        along = (d[0] * vel[0] + d[1] * vel[1]) / 4
        assert 9.0 < along < 14.0, (vel, d)       # real: ~11 m for a 4 s leg at 4 m/s
    # yaw follows the direction of travel (auto-yaw) even with yaw masked
    assert abs(math.degrees(h.ap.yaw_rad) + 90) < 10
    # GUID_TIMEOUT: last velocity kept for 3 s, then brake and hover, still GUIDED and armed
    h.stream(mask=VEL_ONLY, vel=(4, 0, 0))
    h.step(3.0)
    h.sp = None
    p0 = h.ap.pos_ned_m.copy()
    h.step(2.9)
    assert h.ap.pos_ned_m[0] - p0[0] > 9.0
    h.step(3.0)
    assert math.hypot(*h.ap.vel_ned_mps[:2]) < 0.3 and h.ap.mode == "GUIDED" and h.ap.armed
    # position target (never times out)
    h.stream(mask=POS_ONLY, pos=(0.0, 0.0, -12.0))
    h.step(2.0)
    h.sp = None
    h.step(12.0)
    assert math.hypot(*h.ap.pos_ned_m[:2]) < 0.5 and abs(h.ap.alt_rel_m - 12) < 0.3
    # LAND: descends, disarms ~2 s after touchdown, mode stays LAND
    assert h.command(D.MAV_CMD_NAV_LAND)[0].result == 0
    h.stream(mask=VEL_ONLY, vel=(3, 0, 0))  # ignored outside GUIDED
    h.step(30.0)
    assert not h.ap.armed and h.ap.mode == "LAND" and math.hypot(*h.ap.pos_ned_m[:2]) < 0.5


def test_guided_masks_frames_and_stops(h):
    h.takeoff(5.0)
    # group masks: vx only bit set -> whole velocity ignored -> pos+acc... here pos given -> position target
    h.send_sp(frame=1, mask=0b1111_1100_0000 | 0b001000, pos=(3, 0, -5), vel=(9, 9, 9))
    h.step(0.1)
    assert h.ap.guided_sub == "pos"
    # BODY_OFFSET_NED (9): offset rotated by heading and added to the current position
    h.send_sp(frame=D.MAV_FRAME_BODY_OFFSET_NED, mask=POS_ONLY, pos=(5, 0, 0))
    h.step(0.05)
    yaw = h.ap.yaw_rad
    tgt = h.ap.guided_sp.pos_ned_m
    assert tgt[0] - h.ap.pos_ned_m[0] == pytest.approx(5 * math.cos(yaw), abs=0.3)
    # unsupported frame (BODY_FRD 12) and NaN velocity: stop
    for kwargs in ({"frame": 12}, {"vel": (math.nan, 0, 0)}, {"mask": 0b0001_1100_0111 & ~0x1C0 | 0x38 | 512}):
        h.stream(mask=VEL_ONLY, vel=(3, 0, 0))
        h.step(1.0)
        assert h.ap.guided_sub == "vel"
        h.sp = None
        h.send_sp(**{"mask": VEL_ONLY, **kwargs})
        h.step(0.05)
        assert h.ap.guided_sub in ("stop_brake", "stop"), kwargs
        h.step(3.0)
        assert math.hypot(*h.ap.vel_ned_mps[:2]) < 0.3


def test_param_float_cast(h):
    t0 = h.ap.t_s
    h.c.mav.param_request_read_send(1, 1, b"MAV_SYSID", -1)
    h.c.mav.param_request_read_send(1, 1, b"FS_GCS_ENABLE", -1)
    h.c.mav.param_request_read_send(1, 1, b"GUID_TIMEOUT", -1)
    h.c.mav.param_request_read_send(1, 1, b"", 0)
    h.step(0.05)
    a, b, c, d = h.since(t0, "PARAM_VALUE")
    assert (a.param_id, a.param_value, a.param_type, a.param_index) == ("MAV_SYSID", 1.0, 4, 65535)
    assert (b.param_value, b.param_type) == (0.0, 2) and (c.param_value, c.param_type) == (3.0, 9)
    assert d.param_index == 0 and d.param_count == len(h.ap.params)
    t1 = h.ap.t_s
    h.c.mav.param_set_send(1, 1, b"GUID_TIMEOUT", 1.5, 9)
    h.c.mav.param_set_send(1, 1, b"DISARM_DELAY", 7.0, 2)
    h.c.mav.param_set_send(1, 1, b"NOPE", 1.0, 9)            # unknown: ignored silently
    h.c.mav.param_set_send(1, 1, b"ANGLE_MAX", math.nan, 4)  # NaN: ignored silently
    h.c.mav.param_set_send(1, 1, b"FORMAT_VERSION", 3.0, 4)  # read-only: text + old value
    h.step(0.1)
    vals = h.since(t1, "PARAM_VALUE")
    assert [(v.param_id, v.param_value, v.param_index) for v in vals] == [
        ("GUID_TIMEOUT", 1.5, 65535), ("DISARM_DELAY", 7.0, 65535), ("FORMAT_VERSION", 120.0, 65535)]
    assert h.ap.params["ANGLE_MAX"] == 3000
    assert any("Param write denied" in s.text for s in h.since(t1, "STATUSTEXT"))
    t2 = h.ap.t_s
    h.c.mav.param_request_list_send(1, 1)
    h.step(0.5)
    assert len(h.since(t2, "PARAM_VALUE")) == len(h.ap.params)


def test_banner_then_mavlink():
    port = free_tcp_port()
    link = TcpServerLink(port, banner=ARDUPILOT_BANNER)
    ap = ArduPilotAutopilot(ardupilot_config(), {}, [link])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
            ap.step(1.1)
            s.settimeout(2.0)
            data = s.recv(4096)
        assert data.startswith(b"Init ArduCopter") and b"\xfd" in data  # text first, then MAVLink 2
    finally:
        link.close()


def test_one_client_garbage_and_wrong_target(h, rng):
    other = socket.create_connection(("127.0.0.1", h.port), timeout=2.0)
    try:
        h.step(0.1)
        other.settimeout(2.0)
        assert other.recv(100) == b""  # second client is closed at once
    finally:
        other.close()
    n0 = len(h.since(0, "COMMAND_ACK"))
    h.c.mav.command_long_send(7, 1, D.MAV_CMD_REQUEST_MESSAGE, 0, 242, 0, 0, 0, 0, 0, 0)  # not us
    h.step(0.1)
    assert len(h.since(0, "COMMAND_ACK")) == n0
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION)[0].result == 0
    h.c.write(rng.integers(0, 256, 2000, dtype="uint8").tobytes())
    good = D.MAVLink_command_long_message(1, 1, D.MAV_CMD_REQUEST_MESSAGE, 0, 242, 0, 0, 0, 0, 0, 0)
    buf = good.pack(D.MAVLink(None, 255, 190))
    h.c.write(buf[:10])  # truncated
    h.step(0.1)
    assert h.link.stats.rx_bad > 0
    # the parser resynchronises: a retried command is answered
    acks = []
    for _ in range(3):
        acks += h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION)
    assert acks and acks[0].result == 0


def test_gcs_failsafe_and_fence():
    hh = ApHarness(params={"FS_GCS_ENABLE": 1, "FENCE_ENABLE": 1, "FENCE_TYPE": 2, "FENCE_RADIUS": 30,
                           "RTL_ALT": 800})
    try:
        hh.gcs_heartbeat = True
        hh.step(3.2)
        hh.takeoff(5.0)
        hh.stream(mask=VEL_ONLY, vel=(8, 0, 0))
        hh.step(8.0)
        assert hh.ap.mode == "RTL" and hh.last("HEARTBEAT").system_status == D.MAV_STATE_CRITICAL
        assert any(s.text == "Fence Breach" for s in hh.since(0, "STATUSTEXT"))
        hh.sp = None
        hh.step(20.0)
        assert hh.ap.failsafe == ""  # back inside the fence
        hh.stream(mask=VEL_ONLY, vel=(0, 0, 0))  # RTL ignores GUIDED setpoints
        assert hh.mode("GUIDED") == 0
        # GCS heartbeats stop: after FS_GCS_TIMEOUT the GCS failsafe returns home, lands and disarms
        hh.gcs_heartbeat = False
        hh.step(5.5)
        assert hh.ap.mode == "RTL" and hh.ap.failsafe == "gcs"
        hh.sp = None
        hh.step(60.0)
        assert not hh.ap.armed and math.hypot(*hh.ap.pos_ned_m[:2]) < 1.5
    finally:
        hh.close()


def test_clock_waits_for_first_client():
    port = free_tcp_port()
    link = TcpServerLink(port, banner=ARDUPILOT_BANNER)
    ap = ArduPilotAutopilot(ardupilot_config(), {}, [link])
    try:
        ap.step(1.0)
        ap.run_until(5.0)  # returns: not booted
        assert ap.t_s == 0.0
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            ap.step(0.5)
            assert ap.t_s == pytest.approx(0.5)
        ap.step(0.5)  # the client left: the clock keeps running
        assert ap.t_s == pytest.approx(1.0)
    finally:
        link.close()


def test_guided_global_int_and_attitude_targets(h):
    h.takeoff(5.0)
    c = h.ap.config
    # GLOBAL_RELATIVE_ALT_INT position: 20 m north of home at 8 m
    lat = c.home_lat_deg + math.degrees(20.0 / 6_378_137.0)
    h.c.mav.set_position_target_global_int_send(0, 1, 1, D.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT, POS_ONLY,
                                                int(lat * 1e7), int(c.home_lon_deg * 1e7), 8.0,
                                                0, 0, 0, 0, 0, 0, 0, 0)
    h.step(15.0)
    assert abs(h.ap.pos_ned_m[0] - 20.0) < 0.5 and abs(h.ap.alt_rel_m - 8.0) < 0.3
    # attitude target: 10 deg pitch down (nose down -> accelerate north), thrust 0.5 = hold altitude
    from autonomy.geometry import euler_to_quat

    q = euler_to_quat(0.0, math.radians(-10.0), 0.0)
    x0 = h.ap.pos_ned_m[0]
    for _ in range(40):
        h.c.mav.set_attitude_target_send(0, 1, 1, 0b0000_0111, [float(v) for v in q], 0, 0, 0, 0.5)
        h.step(0.05)
    assert h.ap.guided_sub == "angle" and h.ap.vel_ned_mps[0] > 2.0 and h.ap.pos_ned_m[0] > x0 + 2.0
    assert abs(h.ap.alt_rel_m - 8.0) < 0.5
    h.step(3.5)
    assert h.ap.guided_sub == "angle_timeout"  # GUID_TIMEOUT: level, zero climb
    # THROTTLE_IGNORE -> stop
    h.c.mav.set_attitude_target_send(0, 1, 1, 0b0100_0111, [1.0, 0, 0, 0], 0, 0, 0, 0.5)
    h.step(0.05)
    assert h.ap.guided_sub in ("stop_brake", "stop")
