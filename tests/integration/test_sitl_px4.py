"""Simulated PX4 endpoint over real UDP sockets on 127.0.0.1, stepped in lockstep by the test.

A raw pymavlink client (sysid 1, compid 191, like the recorded companion in data/logs/px4_sih) talks to
``Px4Autopilot`` through its real ``UdpLink``; the test advances simulated time and drains the socket after
every step so that nothing is lost in the kernel buffers. Expected values: AUTOPILOT_SPEC.md and Appendix A.
"""

from __future__ import annotations

import math
import socket
import struct

import pytest

from autonomy.mavlink.wire import dialect as D
from autonomy.mavlink.wire import mavutil
from sitl.autopilot import Px4Autopilot, SimConfig, UdpLink, px4_custom_mode, px4_mode_name
from sitl.autopilot import px4_events as ev
from tests.conftest import free_udp_port
from tests.integration._lockstep_client import POS_ONLY, VEL_ONLY, LockstepClient


def _event(m) -> tuple:
    """Decode a PX4 EVENT frame that pymavlink delivers as UNKNOWN_410."""
    buf = bytes(m.get_msgbuf())
    return ev.decode_event_payload(buf[10:10 + buf[1]])


class Px4Harness(LockstepClient):
    """Lockstep driver: step the autopilot, drain the client socket, remember what arrived (with sim time)."""

    def __init__(self, params: dict | None = None, version: str = "main", **cfg) -> None:
        self.lp, self.rp = free_udp_port(), free_udp_port()
        link = UdpLink(self.lp, self.rp)
        ap = Px4Autopilot(SimConfig(**cfg), params or {}, [link], version=version)
        conn = mavutil.mavlink_connection(f"udpin:127.0.0.1:{self.rp}", source_system=1, source_component=191)
        super().__init__(ap, link, conn)

    def set_mode(self, name: str) -> list:
        main, sub = {"OFFBOARD": (6, 0), "POSCTL": (3, 0), "AUTO.LOITER": (4, 3), "AUTO.RTL": (4, 5)}[name]
        return self.command(D.MAV_CMD_DO_SET_MODE, 1, main, sub)

    def takeoff_offboard(self, alt_m: float = 10.0) -> None:
        self.stream(frame=1, mask=POS_ONLY, pos=(0, 0, -alt_m))
        self.step(1.0)
        assert [a.result for a in self.set_mode("OFFBOARD")] == [0, 0]
        assert [a.result for a in self.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)] == [0]
        self.step(alt_m / 1.5 + 8.0)
        assert self.ap.alt_rel_m > alt_m - 0.5


@pytest.fixture
def h():
    hh = Px4Harness()
    hh.step(3.2)  # estimator ready at 3 s
    yield hh
    hh.close()


def test_heartbeat_identity_and_boot_mode():
    hh = Px4Harness()
    try:
        hh.step(1.5)
        hb = hh.last("HEARTBEAT")
        assert (hb.get_srcSystem(), hb.get_srcComponent()) == (1, 1)
        assert (hb.type, hb.autopilot) == (D.MAV_TYPE_QUADROTOR, D.MAV_AUTOPILOT_PX4)
        assert hb.custom_mode == 50593792 and px4_mode_name(hb.custom_mode) == "AUTO.LOITER"
        assert hb.base_mode == 29
        assert hb.system_status == D.MAV_STATE_UNINIT
        assert hb.get_msgbuf()[0] == 0xFD  # MAVLink 2
        hh.step(2.5)
        assert hh.last("HEARTBEAT").system_status == D.MAV_STATE_STANDBY
    finally:
        hh.close()


def test_custom_mode_table_matches_spec():
    expect = {"MANUAL": 65536, "ALTCTL": 131072, "POSCTL": 196608, "AUTO.READY": 17039360,
              "AUTO.TAKEOFF": 33816576, "AUTO.LOITER": 50593792, "AUTO.MISSION": 67371008,
              "AUTO.RTL": 84148224, "AUTO.LAND": 100925440, "AUTO.PRECLAND": 151257088, "ACRO": 327680,
              "OFFBOARD": 393216, "STABILIZED": 458752}
    for name, cm in expect.items():
        assert px4_custom_mode(name) == cm
        assert px4_mode_name(cm) == name


def test_default_stream_rates(h):
    t0 = h.ap.t_s
    h.step(4.0)
    want = {"ATTITUDE": 100, "ATTITUDE_QUATERNION": 50, "HIGHRES_IMU": 50, "GLOBAL_POSITION_INT": 50,
            "LOCAL_POSITION_NED": 30, "ODOMETRY": 30, "TIMESYNC": 10, "ALTITUDE": 10, "VFR_HUD": 10,
            "EXTENDED_SYS_STATE": 5, "SYS_STATUS": 5, "HEARTBEAT": 1, "HOME_POSITION": 0.5,
            "BATTERY_STATUS": 0.5}
    for name, hz in want.items():
        n = len(h.since(t0, name))
        assert abs(n / 4.0 - hz) <= max(0.15 * hz, 0.5), (name, n)
    ts = h.since(t0, "TIMESYNC")[0]
    assert ts.tc1 == 0 and ts.ts1 > 0  # PX4's own requests
    assert not h.since(0, "STATUSTEXT")  # no GCS heartbeat on this link


def test_set_message_interval_and_request_message(h):
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE, 50000)[0].result == 0
    t0 = h.ap.t_s
    h.step(2.0)
    assert 36 <= len(h.since(t0, "ATTITUDE")) <= 44
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE, -1)[0].result == 0
    t0 = h.ap.t_s
    h.step(0.5)
    assert not h.since(t0, "ATTITUDE")
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE, 0)[0].result == 0
    t0 = h.ap.t_s
    h.step(1.0)
    assert len(h.since(t0, "ATTITUDE")) >= 90
    failed = D.MAV_RESULT_FAILED
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_HEARTBEAT, 100000)[0].result == failed
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, D.MAVLINK_MSG_ID_ATTITUDE, 1000, 1)[0].result == failed
    assert h.command(D.MAV_CMD_SET_MESSAGE_INTERVAL, 60000, 1000)[0].result == failed
    n0 = len(h.since(0, "HOME_POSITION"))
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION)[0].result == 0
    assert len(h.since(0, "HOME_POSITION")) == n0 + 1
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, 60000)[0].result == D.MAV_RESULT_DENIED
    # REQUEST_DATA_STREAM is ignored by PX4
    h.c.mav.request_data_stream_send(1, 1, 0, 1, 0)
    t0 = h.ap.t_s
    h.step(1.0)
    assert len(h.since(t0, "ATTITUDE")) >= 90


def test_offboard_entry_and_arming_rules(h):
    acks = h.set_mode("OFFBOARD")  # no stream, disarmed: accepted (twice, like real PX4)
    assert [a.result for a in acks] == [0, 0]
    assert (acks[0].target_system, acks[0].target_component) == (1, 191)
    h.step(1.1)
    assert h.last("HEARTBEAT").custom_mode == 393216 and h.last("HEARTBEAT").base_mode == 17
    acks = h.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    assert [a.result for a in acks] == [D.MAV_RESULT_TEMPORARILY_REJECTED]
    assert not h.ap.armed
    h.stream(mask=VEL_ONLY)
    h.step(1.5)
    assert [a.result for a in h.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)] == [0]
    h.step(1.0)
    hb = h.last("HEARTBEAT")
    assert hb.base_mode == 145 and hb.system_status == D.MAV_STATE_ACTIVE
    # armed: a mode that needs RC is refused; disarm on the ground is fine
    assert [a.result for a in h.set_mode("POSCTL")] == [D.MAV_RESULT_TEMPORARILY_REJECTED] * 2
    assert h.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 2)[0].result == D.MAV_RESULT_UNSUPPORTED
    # armed, no climb commanded: auto-disarm after COM_DISARM_PRFLT (10 s)
    h.step(9.5)
    assert not h.ap.armed
    assert any("preflight" in e for _, e in h.ap.events)


def test_offboard_flight_square_hold_land(h):
    h.takeoff_offboard(10.0)
    h.stream(mask=VEL_ONLY, vel=(0, 0, 0))
    h.step(2.0)
    start = h.ap.pos_ned_m.copy()
    for vel in ((5, 0, 0), (0, 5, 0), (-5, 0, 0), (0, -5, 0)):
        p0 = h.ap.pos_ned_m.copy()
        h.stream(mask=VEL_ONLY, vel=vel)
        h.step(4.0)
        d = h.ap.pos_ned_m - p0
        along = d[0] * vel[0] / 5 + d[1] * vel[1] / 5
        assert 15.0 < along < 21.0, (vel, d)
        lp = h.last("LOCAL_POSITION_NED")
        assert abs(lp.x - h.ap.pos_ned_m[0]) < 0.5 and abs(lp.y - h.ap.pos_ned_m[1]) < 0.5
    h.stream(mask=VEL_ONLY, vel=(0, 0, 0))
    h.step(2.0)
    assert math.hypot(*(h.ap.pos_ned_m - start)[:2]) < 6.0
    # position hold
    h.stream(mask=POS_ONLY, pos=(5.0, -3.0, -8.0))
    h.step(10.0)
    lp = h.last("LOCAL_POSITION_NED")
    assert abs(lp.x - 5.0) < 0.3 and abs(lp.y + 3.0) < 0.3 and abs(lp.z + 8.0) < 0.3
    gp = h.last("GLOBAL_POSITION_INT")
    assert abs(gp.relative_alt - 8000) < 300 and abs(gp.alt - 496000) < 300
    # land: AUTO.LAND, landing detected, disarm COM_DISARM_LAND later; the mode shown reverts to OFFBOARD
    assert h.command(D.MAV_CMD_NAV_LAND)[0].result == 0
    h.stop_stream()
    h.step(1.5)
    assert h.last("HEARTBEAT").custom_mode == 100925440
    assert h.last("EXTENDED_SYS_STATE").landed_state == D.MAV_LANDED_STATE_LANDING
    h.step(20.0)
    assert not h.ap.armed and h.ap.landed
    hb = h.last("HEARTBEAT")
    assert hb.base_mode == 17 and hb.custom_mode == 393216
    assert h.last("EXTENDED_SYS_STATE").landed_state == D.MAV_LANDED_STATE_ON_GROUND


def test_offboard_loss_rtl_reentry_and_full_rtl():
    hh = Px4Harness(params={"RTL_RETURN_ALT": 12.0})
    try:
        hh.step(3.2)
        hh.takeoff_offboard(6.0)
        hh.stream(mask=POS_ONLY, pos=(20.0, 0.0, -6.0))
        hh.step(10.0)
        t_last = hh.ap.t_s
        hh.stop_stream()
        hh.step(0.9)
        assert hh.ap.nav_state == "OFFBOARD"
        hh.step(0.3)
        assert hh.ap.nav_state == "AUTO.RTL"          # failsafe ~COM_OF_LOSS_T after the last setpoint
        fs_t = next(t for t, e in hh.ap.events if e.startswith("failsafe offboard"))
        assert 0.95 <= fs_t - t_last <= 1.1
        hh.step(1.0)
        hb = hh.last("HEARTBEAT")
        assert hb.custom_mode == 84148224 and hb.base_mode == 157 and hb.system_status == D.MAV_STATE_CRITICAL
        events = [_event(m) for m in hh.since(0, "UNKNOWN_410")]
        ids = [e[0] for e in events]
        assert ids[:2] == [ev.ARMED_BY, ev.TAKEOFF_DETECTED]
        fs = events[ids.index(ev.FAILSAFE_ENTER_GENERIC)]
        assert fs[4][:6] == bytes([0, 0, 6, 0, 6, 0])  # RTL, as the real PX4 encodes it
        assert events[0][2] == ev.FIRST_SEQUENCE and [e[2] for e in events[:3]] == [65526, 65527, 65528]
        # setpoints resume: PX4 re-enters OFFBOARD on its own
        hh.stream(mask=POS_ONLY, pos=(20.0, 0.0, -6.0))
        hh.step(1.2)
        hb = hh.last("HEARTBEAT")
        assert hh.ap.nav_state == "OFFBOARD" and hb.custom_mode == 393216 and hb.system_status == 4
        # lose it again and let RTL run: climb to RTL_RETURN_ALT, fly home, land, disarm
        hh.stop_stream()
        max_alt = 0.0
        for _ in range(60):
            hh.step(1.0)
            max_alt = max(max_alt, hh.ap.alt_rel_m)
            if not hh.ap.armed:
                break
        assert max_alt > 11.0
        assert not hh.ap.armed
        assert math.hypot(*hh.ap.pos_ned_m[:2]) < 1.5
    finally:
        hh.close()


def test_nav_takeoff_amsl_then_loiter(h):
    assert h.command(D.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, math.nan, math.nan, math.nan, 488.0 + 7.0)[0].result == 0
    assert h.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 1)[0].result == 0
    h.step(1.5)
    assert h.last("HEARTBEAT").custom_mode == 33816576
    h.step(10.0)
    assert abs(h.ap.alt_rel_m - 7.0) < 0.5
    assert h.ap.nav_state == "AUTO.LOITER"
    # armed, no set-point stream: OFFBOARD is refused (twice, like every DO_SET_MODE ack)
    assert [a.result for a in h.set_mode("OFFBOARD")] == [D.MAV_RESULT_TEMPORARILY_REJECTED] * 2
    h.stream(mask=VEL_ONLY)
    h.step(0.5)
    assert [a.result for a in h.set_mode("OFFBOARD")] == [0, 0]
    h.stop_stream()
    h.step(1.3)
    assert h.ap.nav_state == "AUTO.RTL"  # offboard loss
    assert [a.result for a in h.set_mode("AUTO.LOITER")] == [0, 0]
    # disarm in the air is denied unless forced
    assert h.command(D.MAV_CMD_COMPONENT_ARM_DISARM, 0)[0].result == D.MAV_RESULT_TEMPORARILY_REJECTED
    assert h.command(D.MAV_CMD_NAV_RETURN_TO_LAUNCH)[0].result == 0
    h.step(0.2)
    assert h.ap.nav_state == "AUTO.RTL" and h.ap.failsafe_mode is None


def _param_values(h, t0: float) -> list:
    return [m for m in h.since(t0, "PARAM_VALUE")]


def test_param_protocol_bytewise(h):
    t0 = h.ap.t_s
    h.c.mav.param_request_read_send(1, 1, b"MAV_SYS_ID", -1)
    h.c.mav.param_request_read_send(1, 1, b"COM_OF_LOSS_T", -1)
    h.step(0.05)
    sysid, loss = _param_values(h, t0)
    assert sysid.param_type == 6 and struct.unpack("<i", struct.pack("<f", sysid.param_value))[0] == 1
    assert sysid.param_value < 1e-40  # 1.4e-45 as a float: byte-wise, not a cast
    assert loss.param_type == 9 and loss.param_value == pytest.approx(1.0)
    # unknown name and type mismatch: PARAM_ERROR
    h.c.mav.param_set_send(1, 1, b"NO_SUCH_PARAM", 1.0, 9)
    h.c.mav.param_set_send(1, 1, b"COM_OBL_RC_ACT", 3.0, 9)
    h.step(0.05)
    errs = h.since(t0, "PARAM_ERROR")
    assert [e.param_id for e in errs] == ["NO_SUCH_PARAM", "COM_OBL_RC_ACT"]
    assert h.ap.params["COM_OBL_RC_ACT"] == 0
    # a real INT32 set, byte-wise
    t1 = h.ap.t_s
    h.c.mav.param_set_send(1, 1, b"COM_OBL_RC_ACT", struct.unpack("<f", struct.pack("<i", 4))[0], 6)
    h.step(0.05)
    assert h.ap.params["COM_OBL_RC_ACT"] == 4
    assert len(_param_values(h, t1)) == 2  # a real change is reported twice
    # unchanged value: one PARAM_VALUE; MPC_XY_VEL_MAX lowers MPC_VEL_MANUAL
    t2 = h.ap.t_s
    h.c.mav.param_set_send(1, 1, b"MPC_XY_VEL_MAX", 12.0, 9)
    h.step(0.05)
    assert len(_param_values(h, t2)) == 1
    t3 = h.ap.t_s
    h.c.mav.param_set_send(1, 1, b"MPC_XY_VEL_MAX", 8.0, 9)
    h.step(0.05)
    assert [p.param_id for p in _param_values(h, t3)] == ["MPC_XY_VEL_MAX", "MPC_VEL_MANUAL", "MPC_XY_VEL_MAX"]
    # list: ignored with target_system 0; with our id _HASH_CHECK first, then every parameter
    t4 = h.ap.t_s
    h.c.mav.param_request_list_send(0, 0)
    h.step(0.2)
    assert not _param_values(h, t4)
    h.c.mav.param_request_list_send(1, 1)
    h.step(0.3)
    vals = _param_values(h, t4)
    assert vals[0].param_id == "_HASH_CHECK" and vals[0].param_type == 5
    assert len(vals) == len(h.ap.params) + 1 == vals[1].param_count + 1
    assert sorted(v.param_index for v in vals[1:]) == list(range(len(h.ap.params)))


def test_command_int_frame_check(h):
    h.c.mav.command_int_send(1, 1, D.MAV_FRAME_LOCAL_NED, D.MAV_CMD_REQUEST_MESSAGE, 0, 0, 242, 0, 0, 0, 0, 0, 0)
    h.step(0.1)
    assert h.last("COMMAND_ACK").result == 9  # UNSUPPORTED_MAV_FRAME
    h.c.mav.command_int_send(1, 1, D.MAV_FRAME_GLOBAL_INT, D.MAV_CMD_REQUEST_MESSAGE, 0, 0, 242, 0, 0, 0, 0, 0, 0)
    h.step(0.1)
    assert h.last("COMMAND_ACK").result == 0


def test_target_filtering_and_first_sender_latch(h):
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION, target=(5, 1)) == []
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION, target=(1, 99)) == []
    assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION, target=(0, 0))[0].result == 0
    # a second sender is not the latched partner: ignored
    intruder = mavutil.mavlink_connection(f"udpout:127.0.0.1:{h.lp}", source_system=200, source_component=1)
    try:
        intruder.mav.command_long_send(1, 1, D.MAV_CMD_COMPONENT_ARM_DISARM, 0, 1, 21196, 0, 0, 0, 0, 0)
        h.step(0.2)
        assert not h.ap.armed and h.link.stats.rx_foreign >= 1
    finally:
        intruder.close()


def test_setpoint_frames_and_statustext_only_to_gcs(h):
    h.send_sp(frame=D.MAV_FRAME_LOCAL_OFFSET_NED)
    h.step(0.1)
    assert not h.since(0, "STATUSTEXT")  # no GCS heartbeat seen yet
    assert h.ap.statustexts[-1][2].endswith("coordinate frame 7 unsupported")
    h.c.mav.heartbeat_send(D.MAV_TYPE_GCS, D.MAV_AUTOPILOT_INVALID, 0, 0, 0)
    h.send_sp(frame=D.MAV_FRAME_BODY_FRD)
    h.step(0.1)
    st = h.since(0, "STATUSTEXT")
    assert len(st) == 2 and st[0].id == st[1].id != 0 and [s.chunk_seq for s in st] == [0, 1]
    assert "".join(s.text for s in st).endswith("coordinate frame 12 unsupported") and st[0].severity == 2
    # BODY_NED: position dropped, velocity rotated by heading; yaw-only is not proof of life
    t_before = h.ap.last_offboard_s
    h.send_sp(frame=D.MAV_FRAME_LOCAL_NED, mask=0b0001_1111_1111)  # everything ignored but yaw
    h.step(0.05)
    assert h.ap.last_offboard_s == t_before
    h.send_sp(frame=D.MAV_FRAME_BODY_NED, mask=0b0000_1100_0000_0000 | 0x1C0, pos=(9, 9, 9), vel=(1, 0, 0))
    h.step(0.05)
    sp = h.ap.offboard_sp
    assert all(math.isnan(c) for c in sp.pos_ned_m) and sp.vel_ned_mps[0] == pytest.approx(1.0)


def test_speed_and_tilt_limits():
    hh = Px4Harness(params={"MPC_XY_VEL_MAX": 4.0})
    try:
        hh.step(3.2)
        hh.takeoff_offboard(5.0)
        hh.stream(mask=VEL_ONLY, vel=(20, 0, 0))
        hh.step(6.0)
        assert 3.5 < math.hypot(*hh.ap.vel_ned_mps[:2]) <= 4.1
    finally:
        hh.close()
    from sitl.autopilot.params import PX4_INTERCEPTOR

    hh = Px4Harness(params=PX4_INTERCEPTOR)
    try:
        hh.step(3.2)
        hh.takeoff_offboard(5.0)
        hh.stream(mask=VEL_ONLY, vel=(60, 0, 0))
        max_tilt = 0.0
        for _ in range(40):
            hh.step(0.1)
            att = hh.last("ATTITUDE")
            max_tilt = max(max_tilt, math.degrees(math.acos(math.cos(att.roll) * math.cos(att.pitch))))
        assert hh.ap.vel_ned_mps[0] > 40.0       # 70 m/s / 30 m/s^2 airframe: > 40 m/s after 4 s
        assert max_tilt <= 72.5
    finally:
        hh.close()


def test_timesync_reply(h):
    h.c.mav.timesync_send(0, 123456789)
    h.step(0.02)
    rep = [m for m in h.since(0, "TIMESYNC") if m.ts1 == 123456789]
    assert rep and abs(rep[0].tc1 / 1e9 - h.ap.t_s) < 0.05


def test_garbage_and_truncated_bytes_do_not_crash(h, rng):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        # the harness client is the latched partner; send garbage from its own socket
        for _ in range(20):
            h.c.port.sendto(rng.integers(0, 256, int(rng.integers(1, 300)), dtype="uint8").tobytes(),
                            ("127.0.0.1", h.lp))
        good = D.MAVLink_command_long_message(1, 1, D.MAV_CMD_REQUEST_MESSAGE, 0, 242, 0, 0, 0, 0, 0, 0)
        buf = good.pack(D.MAVLink(None, 1, 191))
        h.c.port.sendto(buf[: len(buf) // 2], ("127.0.0.1", h.lp))  # truncated frame
        h.c.port.sendto(b"\xfd" + bytes(300), ("127.0.0.1", h.lp))
        h.step(0.1)
        assert h.link.stats.rx_bad > 0
        assert h.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION)[0].result == 0
        # NaN set-point fields on non-ignored axes are simply uncontrolled (PX4 semantics), no crash
        h.send_sp(mask=VEL_ONLY, vel=(math.nan, math.nan, math.nan))
        h.step(0.1)
        assert h.ap.statustexts[-1][2].endswith("invalid")
    finally:
        sock.close()


def test_gcs_datalink_loss_failsafe():
    hh = Px4Harness(params={"NAV_DLL_ACT": 3, "COM_DL_LOSS_T": 30})
    try:
        hh.step(3.2)
        hh.c.mav.heartbeat_send(D.MAV_TYPE_GCS, D.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        hh.takeoff_offboard(4.0)
        assert hh.ap.nav_state == "OFFBOARD"
        hh.ap.params.set("COM_DL_LOSS_T", 2)
        hh.c.mav.heartbeat_send(D.MAV_TYPE_GCS, D.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        hh.step(1.5)
        assert hh.ap.nav_state == "OFFBOARD"
        hh.step(1.0)
        assert hh.ap.nav_state == "AUTO.LAND" and hh.ap.failsafe_reason == "datalink"
        assert any("ground station lost" in s.text for s in hh.since(0, "STATUSTEXT"))
    finally:
        hh.close()


def test_px4_v115_wire_differences():
    hh = Px4Harness(version="1.15")
    try:
        hh.step(3.5)
        assert hh.msgs and all(m.get_msgbuf()[:1] == b"\xfe" for _, m in hh.msgs)  # MAVLink 1 only
        assert not hh.since(0, "ODOMETRY")                                      # id 331 has no v1 form
        # target_system 0 is ignored; another id is answered FAILED (v1.15); our id works
        assert hh.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION, target=(0, 0)) == []
        acks = hh.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION, target=(5, 1))
        assert [a.result for a in acks] == [D.MAV_RESULT_FAILED]
        assert hh.command(D.MAV_CMD_REQUEST_MESSAGE, D.MAVLINK_MSG_ID_HOME_POSITION)[0].result == 0
        # the client's MAVLink 2 frames switched the link to MAVLink 2
        t0 = hh.ap.t_s
        hh.step(0.5)
        assert hh.since(t0, "ODOMETRY") and hh.last("ATTITUDE").get_msgbuf()[:1] == b"\xfd"
        # no PARAM_ERROR before main
        hh.c.mav.param_set_send(1, 1, b"NO_SUCH_PARAM", 1.0, 9)
        hh.step(0.1)
        assert not hh.since(0, "PARAM_ERROR")
    finally:
        hh.close()


def test_gcs_link_normal_streams_statustext_and_empty_mission(h):
    glp, grp = free_udp_port(), free_udp_port()
    glink = UdpLink(glp, grp)
    h.ap.add_link(glink, mode="normal")
    g = mavutil.mavlink_connection(f"udpin:127.0.0.1:{grp}", source_system=255, source_component=190)
    got = []
    try:
        def step(t_s: float) -> None:
            end = h.ap.t_s + t_s
            while h.ap.t_s < end - 1e-9:
                h.step(0.01)
                while (m := g.recv_match(blocking=False)) is not None:
                    got.append((h.ap.t_s, m))

        step(0.1)
        g.mav.heartbeat_send(D.MAV_TYPE_GCS, D.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        g.mav.mission_request_list_send(1, 1, 0)
        step(0.1)
        t0 = h.ap.t_s
        step(2.0)
        att = [m for t, m in got if t >= t0 and m.get_type() == "ATTITUDE"]
        assert 26 <= len(att) <= 34                          # normal link: 15 Hz (onboard: 100 Hz)
        assert [m.count for _, m in got if m.get_type() == "MISSION_COUNT"] == [0]
        h.send_sp(frame=D.MAV_FRAME_LOCAL_OFFSET_NED)         # produces a critical text
        step(0.1)
        assert any(m.get_type() == "STATUSTEXT" for _, m in got)   # to the GCS link ...
        assert not h.since(0, "STATUSTEXT")                        # ... not to the onboard link
    finally:
        g.close()
        glink.close()


@pytest.mark.parametrize("flavour", ["px4", "ardupilot"])
def test_fuzzed_messages_never_crash(flavour, rng):
    """Well-formed frames with hostile field values (NaN, inf, huge, negative) for every message we handle."""
    from sitl.autopilot import ArduPilotAutopilot

    lp, rp = free_udp_port(), free_udp_port()
    link = UdpLink(lp, rp)
    ap = (Px4Autopilot if flavour == "px4" else ArduPilotAutopilot)(SimConfig(), {}, [link])
    tx = mavutil.mavlink_connection(f"udpout:127.0.0.1:{lp}", source_system=1, source_component=191)
    floats = [math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0, 1.0, -1.0, 21196.0, 1e-45]
    names = ["COMMAND_LONG", "COMMAND_INT", "SET_POSITION_TARGET_LOCAL_NED", "SET_POSITION_TARGET_GLOBAL_INT",
             "SET_ATTITUDE_TARGET", "SET_MODE", "PARAM_SET", "PARAM_REQUEST_READ", "PARAM_REQUEST_LIST",
             "REQUEST_DATA_STREAM", "TIMESYNC", "HEARTBEAT", "MISSION_REQUEST_LIST"]
    try:
        ap.step(3.2)
        for i in range(400):
            name = names[i % len(names)]
            cls = getattr(D, f"MAVLink_{name.lower()}_message")
            args = []
            for fname, ftype in zip(cls.fieldnames, cls.fieldtypes, strict=True):
                n = cls.array_lengths[cls.ordered_fieldnames.index(fname)] if fname in cls.ordered_fieldnames \
                    else 0
                if ftype == "char":
                    args.append(rng.choice([b"MPC_XY_VEL_MAX", b"", b"\xff\xfe", b"X" * 16, b"_HASH_CHECK"]))
                elif ftype in ("float", "double"):
                    v = [float(rng.choice(floats)) for _ in range(max(n, 1))]
                    args.append(v if n else v[0])
                else:
                    bits = int(ftype.removeprefix("u").removeprefix("int").removesuffix("_t") or 8)
                    lo = 0 if ftype.startswith("u") else -(2 ** (bits - 1))
                    hi = 2 ** bits - 1 if ftype.startswith("u") else 2 ** (bits - 1) - 1
                    choice = [lo, hi, 0, 1, 2, 6, 9, 22, 176, 400, 511, 512]
                    v = [int(min(max(rng.choice(choice), lo), hi)) for _ in range(max(n, 1))]
                    args.append(v if n else v[0])
            if name in ("COMMAND_LONG", "COMMAND_INT") and rng.random() < 0.7:
                args[cls.fieldnames.index("command")] = int(rng.choice([22, 176, 400, 511, 512, 20, 21, 520]))
            if "target_system" in cls.fieldnames:
                args[cls.fieldnames.index("target_system")] = 1
            if "target_component" in cls.fieldnames:
                args[cls.fieldnames.index("target_component")] = 1
            tx.mav.send(cls(*args))
            if i % 10 == 0:
                ap.step(0.05)
        ap.step(2.0)
        assert all(math.isfinite(v) for v in ap.pos_ned_m) and all(math.isfinite(v) for v in ap.vel_ned_mps)
        assert link.stats.rx_msgs >= 350
    finally:
        tx.close()
        link.close()


def test_uplink_delay_holds_what_the_companion_sends_back():
    """``SimConfig.uplink_delay_s`` (the lockstep world's ``--uplink-delay-ms``): a set-point acts that much later,
    in whole physics ticks, as the companion's processing and the serial link delay it in a real flight."""
    t_resp = {}
    for delay_s in (0.0, 0.06):
        hh = Px4Harness(uplink_delay_s=delay_s)
        try:
            hh.step(3.2)
            hh.takeoff_offboard(10.0)
            hh.stream(mask=VEL_ONLY, vel=(0, 0, 0))
            hh.step(3.0)
            assert abs(hh.ap.vel_ned_mps[0]) < 0.02
            hh.stream(mask=VEL_ONLY, vel=(8, 0, 0))
            t0 = hh.ap.t_s
            while hh.ap.vel_ned_mps[0] < 0.05 and hh.ap.t_s < t0 + 1.0:
                hh.step(0.01)
            t_resp[delay_s] = hh.ap.t_s - t0
        finally:
            hh.close()
    assert t_resp[0.0] < 0.2, t_resp
    assert t_resp[0.06] - t_resp[0.0] == pytest.approx(0.06, abs=0.011), t_resp
