"""The bridge against scripted autopilot/ground peers over real sockets on 127.0.0.1 (pymavlink both ends).

The peer is a small thread speaking MAVLink like the spec says PX4 (UDP) or ArduCopter (TCP) do; it records
what the bridge sends so each test can assert on the wire.
"""

from __future__ import annotations

import math
import struct
import threading
import time

import numpy as np
import pytest

from autonomy.geometry import geodetic_to_ned
from autonomy.mavlink import (
    Bridge,
    BridgeConfig,
    CommandError,
    Control,
    LinkConfig,
    LinkError,
    MavlinkError,
    MavResult,
    ParamError,
    SetpointError,
    StreamerConfig,
)
from autonomy.mavlink.events import px4_event_id
from autonomy.mavlink.flavour import ArduPilotFlavour, Px4Flavour, px4_custom_mode
from autonomy.mavlink.link import Link, load_signing_key
from autonomy.mavlink.wire import dialect, mavutil
from autonomy.types import OperatorCommandKind, Setpoint
from tests.conftest import free_tcp_port, free_udp_port

KEY = bytes(range(32))
LOITER, OFFBOARD, RTL = px4_custom_mode(4, 3), px4_custom_mode(6, 0), px4_custom_mode(4, 5)


class Peer(threading.Thread):
    """A scripted MAVLink endpoint (autopilot or ground station) on its own thread."""

    def __init__(self, url: str, autopilot: int = 12, sysid: int = 1, compid: int = 1, mav_type: int = 2,
                 key: bytes | None = None, telemetry: bool = True, time_scale: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.conn = mavutil.mavlink_connection(url, source_system=sysid, source_component=compid)
        if key is not None:
            self.conn.setup_signing(key, sign_outgoing=True, allow_unsigned_callback=lambda *_: True)
        self.autopilot, self.mav_type, self.telemetry, self.time_scale = autopilot, mav_type, telemetry, time_scale
        self.px4 = autopilot == 12
        self.custom_mode = LOITER if self.px4 else 0
        self.armed = False
        self.fl = Px4Flavour() if self.px4 else ArduPilotFlavour()
        self.params = ({"MAV_SYS_ID": [1, 6], "MPC_XY_VEL_MAX": [12.0, 9]} if self.px4
                       else {"MAV_SYSID": [1, 4], "GUID_TIMEOUT": [3.0, 9]})
        self.ack_results: dict[int, int] = {}
        self.received: list = []
        self.pos = np.array([1.0, 2.0, -3.0])
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.running = True
        self.start()

    def boot_s(self) -> float:
        return (time.monotonic() - self.t0) * self.time_scale

    def send(self, msg) -> None:
        with self.lock:
            self.conn.mav.send(msg)

    def raw(self, data: bytes) -> None:
        with self.lock:
            self.conn.write(data)

    def got(self, mtype: str) -> list:
        return [m for _, m in list(self.received) if m.get_type() == mtype]

    def wait_got(self, mtype: str, n: int = 1, timeout_s: float = 3.0) -> list:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            g = self.got(mtype)
            if len(g) >= n:
                return g
            time.sleep(0.01)
        return self.got(mtype)

    def run(self) -> None:
        t_hb = t_tel = 0.0
        while self.running:
            now = time.monotonic()
            try:
                while (m := self.conn.recv_msg()) is not None:
                    if m.get_type() != "BAD_DATA":
                        self.received.append((now, m))
                        self.handle(m)
            except OSError:
                pass
            ms = int(self.boot_s() * 1000)
            if now - t_hb > 0.1:
                t_hb = now
                base = 1 | (128 if self.armed else 0)
                self.send(self.conn.mav.heartbeat_encode(self.mav_type, self.autopilot, base, self.custom_mode, 4))
            if self.telemetry and now - t_tel > 0.02:
                t_tel = now
                self.send(self.conn.mav.local_position_ned_encode(ms, *self.pos, 0.5, 0.0, 0.0))
                self.send(self.conn.mav.attitude_quaternion_encode(ms, 1, 0, 0, 0, 0, 0, 0.1))
            time.sleep(0.003)

    def handle(self, m) -> None:
        t = m.get_type()
        mav = self.conn.mav
        if t == "COMMAND_LONG":
            res = self.ack_results.get(m.command, 0)
            if res == 0 and m.command == 176:
                self.custom_mode = (px4_custom_mode(int(m.param2), int(m.param3)) if self.px4 else int(m.param2))
            if res == 0 and m.command == 400:
                self.armed = m.param1 == 1
            if res != -1:
                ack = mav.command_ack_encode(m.command, res, 0, 0, m.get_srcSystem(), m.get_srcComponent())
                self.send(ack)
                if self.px4 and m.command == 176:
                    self.send(ack)  # PX4 acks DO_SET_MODE twice (spec Appendix A)
        elif t in ("PARAM_REQUEST_READ", "PARAM_SET"):
            name = m.param_id
            if name not in self.params:
                return
            if t == "PARAM_SET":
                if m.param_type != self.params[name][1]:
                    return
                self.params[name][0] = self.fl.decode_param(m.param_value, m.param_type)
            v, typ = self.params[name]
            idx = sorted(self.params).index(name)
            self.send(mav.param_value_encode(name.encode(), self.fl.encode_param(v, typ), typ, len(self.params), idx))
        elif t == "TIMESYNC" and m.tc1 == 0:
            self.send(mav.timesync_encode(int(self.boot_s() * 1e9), m.ts1))

    def stop(self) -> None:
        self.running = False
        self.join(timeout=2)
        self.conn.close()


def event_frame(name: str, arg0: int, sysid: int = 1, compid: int = 1, seq: int = 7, level: int = 2) -> bytes:
    payload = struct.pack("<IIHBBB40s", px4_event_id(name), 12345, seq, 0, 0, level, bytes([arg0]) + bytes(39))
    payload = payload.rstrip(b"\0")
    hdr = struct.pack("<BBBBBBBHB", 0xFD, len(payload), 0, 0, 0, sysid, compid, 410 & 0xFFFF, 0)
    crc = dialect.x25crc(hdr[1:] + payload)
    crc.accumulate(bytes([160]))
    return hdr + payload + struct.pack("<H", crc.crc)


@pytest.fixture
def px4():
    port = free_udp_port()
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}"), command_timeout_s=0.3, command_retries=2,
                            prestream_s=0.2, streamer=StreamerConfig(50, 0.2, 0.8)))
    peer = Peer(f"udpout:127.0.0.1:{port}")
    b.start()
    b.connect(timeout_s=3)
    yield b, peer
    peer.stop()
    b.close()


def test_connect_decodes_state_and_flavour(px4):
    b, peer = px4
    assert b.flavour.autopilot.value == "px4" and b.mode == "AUTO.LOITER"
    assert b.wait_for(lambda: b.state is not None and len(b.cache.history.att) > 0, 2)
    s = b.state
    assert np.allclose(s.pos_ned_m, [1, 2, -3]) and np.allclose(s.vel_ned_mps, [0.5, 0, 0])
    assert np.allclose(s.q_body_to_ned, [1, 0, 0, 0]) and s.rate_body_radps[2] == pytest.approx(0.1)
    hb = peer.wait_got("HEARTBEAT")[0]   # our heartbeat: onboard controller, compid 191
    assert hb.type == 18 and hb.get_srcComponent() == 191 and hb.get_srcSystem() == 1


def test_commands_ack_duplicates_and_typed_errors(px4):
    b, peer = px4
    b.set_mode("OFFBOARD", wait_s=2)              # acked twice by the peer: tolerated
    assert b.mode == "OFFBOARD"
    assert b.wait_for(lambda: b.commander.duplicate_acks >= 1, 1)
    m = [c for c in peer.got("COMMAND_LONG") if c.command == 176][-1]
    assert (m.param1, m.param2, m.param3) == (1, 6, 0) and (m.target_system, m.target_component) == (1, 1)
    peer.ack_results[400] = int(MavResult.TEMPORARILY_REJECTED)
    with pytest.raises(CommandError) as ei:
        b.arm()
    assert ei.value.result == MavResult.TEMPORARILY_REJECTED
    peer.ack_results[400] = -1                     # never answers: retried, then NO_ACK
    t0 = time.monotonic()
    with pytest.raises(CommandError) as ei:
        b.arm()
    assert ei.value.result is None and time.monotonic() - t0 < 3
    arms = [c for c in peer.got("COMMAND_LONG") if c.command == 400]
    assert [c.confirmation for c in arms[-3:]] == [0, 1, 2]


def test_px4_params_bytewise_round_trip(px4):
    b, peer = px4
    assert b.param_get("MAV_SYS_ID") == 1
    assert b.param_set("MAV_SYS_ID", 7) == 7 and peer.params["MAV_SYS_ID"][0] == 7
    sent = [p for p in peer.got("PARAM_SET") if p.param_id == "MAV_SYS_ID"][-1]
    assert struct.pack("<f", sent.param_value) == struct.pack("<i", 7)   # bytes, not 7.0
    assert b.param_set("MPC_XY_VEL_MAX", 8.5) == pytest.approx(8.5)
    with pytest.raises(ParamError):
        b.param_get("NO_SUCH_PARAM", timeout_s=0.3)
    with pytest.raises(ParamError):
        b.param_set("MPC_XY_VEL_MAX", math.nan)


def test_garbage_truncated_and_nan_are_counted_drops(px4):
    b, peer = px4
    assert b.wait_for(lambda: b.state is not None, 2)
    bad0 = b.link.stats.bad_data
    peer.raw(b"\x00garbage\xff" * 20)
    good = peer.conn.mav.local_position_ned_encode(1, 0, 0, 0, 0, 0, 0).pack(peer.conn.mav)
    peer.raw(good[: len(good) // 2])                           # truncated frame
    peer.raw(bytes([0xFD, 200]) + bytes(30))                   # a header claiming more than it carries
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    peer.raw(bytes(corrupt))                                   # bad CRC
    rx0 = b.link.stats.received
    # the parser resynchronises: bad bytes are counted and good telemetry flows again
    assert b.wait_for(lambda: b.link.stats.bad_data >= bad0 + 3 and b.link.stats.received > rx0 + 20, 3)
    peer.telemetry = False
    time.sleep(0.05)
    last = b.state.pos_ned_m.copy()
    nan0 = b.cache.dropped_nan
    peer.send(peer.conn.mav.local_position_ned_encode(99999, math.nan, 5.0, 5.0, 0, 0, 0))
    assert b.wait_for(lambda: b.cache.dropped_nan == nan0 + 1, 2)
    assert np.allclose(b.state.pos_ned_m, last)                # last good value kept
    peer.telemetry = True
    assert b.wait_for(lambda: b.link.stats.received > 0 and b.step_errors == 0 and b.link_alive, 1)


def test_dead_man_watchdog_brakes_then_hands_back(px4):
    b, peer = px4
    b.engage(Setpoint(t_s=0.0, vel_ned_mps=np.array([0.0, 0.1, 0.0])))   # distinguishable from the brake
    assert b.mode == "OFFBOARD" and b.control is Control.ENGAGED
    t_set = time.monotonic()
    b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.array([3.0, 0, 0])))
    assert b.wait_for(lambda: b.control is Control.HANDED_BACK, 2)
    sps = [(t, m) for t, m in list(peer.received) if m.get_type() == "SET_POSITION_TARGET_LOCAL_NED" and t > t_set]
    fast = [t - t_set for t, m in sps if m.vx == 3.0]
    brake = [t - t_set for t, m in sps if m.vx == 0.0 and m.vy == 0.0 and m.type_mask == 3527]
    assert fast and max(fast) < 0.2 + 0.03            # never re-sent once older than 0.2 s (+ transport)
    assert brake and min(brake) >= 0.18 and np.all(np.diff(brake) < 0.06)
    assert b.wait_for(lambda: b.mode == "AUTO.LOITER", 2)
    n = len(peer.got("SET_POSITION_TARGET_LOCAL_NED"))
    time.sleep(0.2)
    assert len(peer.got("SET_POSITION_TARGET_LOCAL_NED")) == n   # streaming stopped after hand-back
    assert any("dead-man" in why for _, why in b.counters.control_log)


def test_failsafe_is_not_retaken_by_resuming_setpoints(px4):
    b, peer = px4
    b.engage()
    assert b.wait_for(lambda: b.mode == "OFFBOARD", 1)
    b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.zeros(3)))
    time.sleep(0.15)
    peer.custom_mode = RTL                     # the autopilot fails safe on its own
    assert b.wait_for(lambda: b.control is Control.AUTOPILOT_FAILSAFE, 2)
    time.sleep(0.05)
    n = len(peer.got("SET_POSITION_TARGET_LOCAL_NED"))
    for _ in range(10):                         # the pipeline keeps producing setpoints
        b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.array([1.0, 0, 0])))
        time.sleep(0.03)
    assert len(peer.got("SET_POSITION_TARGET_LOCAL_NED")) == n and b.mode == "AUTO.RTL"
    with pytest.raises(MavlinkError, match="reengage"):
        b.engage()                              # not even engage() takes control back
    b.reengage("operator confirmed", initial=Setpoint(t_s=0.0, vel_ned_mps=np.zeros(3)))
    assert b.mode == "OFFBOARD" and b.control is Control.ENGAGED
    assert len(peer.got("SET_POSITION_TARGET_LOCAL_NED")) > n
    assert any("reengage" in why for _, why in b.counters.control_log)


def test_setpoint_refused_before_sending(px4):
    b, peer = px4
    with pytest.raises(SetpointError):
        b.set_setpoint(Setpoint(t_s=0.0, pos_ned_m=np.ones(3), frame=__import__("autonomy.types").types.SetpointFrame.BODY_NED))
    with pytest.raises(SetpointError):
        b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.array([0, math.inf, 0])))
    assert peer.got("SET_POSITION_TARGET_LOCAL_NED") == []


def test_px4_events_and_statustext(px4):
    b, peer = px4
    peer.raw(event_frame("commander_failsafe_enter_generic", 0) [:0])
    frame = bytearray(event_frame("commander_armed_by", 4))
    peer.raw(bytes(frame))
    frame2 = bytearray(event_frame("commander_armed_by", 4))
    frame2[-1] ^= 0x55                                       # CRC broken: dropped and counted
    peer.raw(bytes(frame2))
    assert b.wait_for(lambda: b.counters.dropped_events == 1, 2)
    texts = [t for t in b.poll_texts() if t.event]
    assert [t.text for t in texts] == ["Armed by external command"] and texts[0].severity == 2
    b.send_statustext("x" * 120, severity=4)
    st = peer.wait_got("STATUSTEXT", 3)
    assert [s.chunk_seq for s in st] == [0, 1, 2] and len({s.id for s in st}) == 1 and st[0].id != 0
    assert "".join(s.text for s in st) == "x" * 120


def test_timesync_maps_a_fast_autopilot_clock():
    port = free_udp_port()
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}"), timesync_period_s=0.05))
    peer = Peer(f"udpout:127.0.0.1:{port}", time_scale=3.0)   # a simulator at --speedup 3
    try:
        b.start()
        b.connect(2)
        assert b.wait_for(lambda: len(b.mapper._sync) >= 20, 3)
        assert b.mapper.rate == pytest.approx(1 / 3, rel=0.05)
        s = b.state
        assert abs(s.t_s - b.clock.now_s()) < 0.05             # sample times land on our clock
    finally:
        peer.stop()
        b.close()


def test_ground_cues_and_operator_commands_with_wrong_target():
    port = free_udp_port()
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}")))
    ap = Peer(f"udpout:127.0.0.1:{port}")
    gcs = Peer(f"udpout:127.0.0.1:{port}", autopilot=8, sysid=255, compid=190, mav_type=6, telemetry=False)
    try:
        b.start()
        b.connect(2)
        mav = gcs.conn.mav
        gcs.send(mav.follow_target_encode(0, 0, int(47.3978 * 1e7), int(8.5460 * 1e7), 520.0, [10, 0, -1],
                                          [0, 0, 0], [1, 0, 0, 0], [0, 0, 0], [16, 16, 16], 42))
        assert b.wait_for(lambda: b.counters.cues_without_origin == 1, 2)
        ap.send(ap.conn.mav.gps_global_origin_encode(int(47.397742e7), int(8.545594e7), 488000))
        time.sleep(0.1)
        gcs.send(mav.follow_target_encode(0, 0, int(47.3978 * 1e7), int(8.5460 * 1e7), 520.0, [10, 0, -1],
                                          [0, 0, 0], [1, 0, 0, 0], [0, 0, 0], [16, 16, 16], 42))
        gcs.send(mav.adsb_vehicle_encode(0xABCDEF, int(47.40 * 1e7), int(8.55 * 1e7), 1, 600000, 9000, 2000,
                                         -100, b"HOSTILE", 0, 1, 0, 0))
        assert b.wait_for(lambda: len(b._cues) == 2, 2)
        ft, ads = b.poll_cues()
        exp = geodetic_to_ned(int(47.3978 * 1e7) * 1e-7, int(8.5460 * 1e7) * 1e-7, 520.0, 47.397742, 8.545594, 488.0)
        assert ft.target_id == 42 and np.allclose(ft.pos_ned_m, exp, atol=0.01) and ft.pos_std_m == 4.0
        assert ads.target_id == 0xABCDEF and np.allclose(ads.vel_ned_mps, [0, 20, 1], atol=1e-9)
        # operator commands: authorize track 7 (validity 0 -> 30 s), malformed kind, wrong target, COMMAND_INT
        gcs.send(mav.command_long_encode(1, 191, 31010, 0, 1, 7, 0, 0, 0, 0, 0))
        gcs.send(mav.command_long_encode(1, 191, 31010, 0, 9, 7, 0, 0, 0, 0, 0))
        gcs.send(mav.command_long_encode(1, 192, 31010, 0, 3, 0, 0, 0, 0, 0, 0))
        gcs.send(mav.command_int_encode(1, 191, 0, 31010, 0, 0, 3, -1, 0, 0, 0, 0, 0))
        acks = gcs.wait_got("COMMAND_ACK", 3)
        assert [a.result for a in acks] == [0, 2, 0] and all(a.target_system == 255 for a in acks)
        cmds = b.poll_operator_commands()
        assert [c.kind for c in cmds] == [OperatorCommandKind.AUTHORIZE, OperatorCommandKind.ABORT]
        assert cmds[0].track_id == 7 and cmds[0].valid_for_s == 30.0 and cmds[1].track_id is None
        assert cmds[0].source_sysid == 255 and not cmds[0].signed
        assert b.counters.wrong_target == 1 and b.counters.malformed_operator_commands == 1
    finally:
        gcs.stop()
        ap.stop()
        b.close()


def test_signed_link_refuses_unsigned_and_badly_signed_commands(tmp_path):
    port = free_udp_port()
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY.hex())
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}", signing_key=load_signing_key(keyfile))))
    ap = Peer(f"udpout:127.0.0.1:{port}")                        # PX4 <= 1.16 does not sign telemetry
    good = Peer(f"udpout:127.0.0.1:{port}", autopilot=8, sysid=255, compid=190, mav_type=6, telemetry=False, key=KEY)
    bad = Peer(f"udpout:127.0.0.1:{port}", autopilot=8, sysid=254, compid=190, mav_type=6, telemetry=False,
               key=bytes(32 * [7]))
    plain = Peer(f"udpout:127.0.0.1:{port}", autopilot=8, sysid=253, compid=190, mav_type=6, telemetry=False)
    try:
        b.start()
        b.connect(2)
        for p in (good, bad, plain):
            p.send(p.conn.mav.command_long_encode(1, 191, 31010, 0, 3, 0, 0, 0, 0, 0, 0))
        time.sleep(0.3)  # udpin answers every known peer: keep the ACKs addressed to each one
        acks = {p.conn.mav.srcSystem: [a for a in p.got("COMMAND_ACK") if a.target_system == p.conn.mav.srcSystem]
                for p in (good, bad, plain)}
        assert acks[255][0].result == 0 and acks[255][0].get_signed()      # our frames are signed
        assert acks[254][0].result == 2 and acks[253][0].result == 2
        cmds = b.poll_operator_commands()
        assert len(cmds) == 1 and cmds[0].signed and cmds[0].source_sysid == 255
        assert b.counters.rejected_unsigned_commands == 2 and b.link.stats.bad_signature >= 1
        assert b.state is not None                                  # unsigned telemetry still flows
    finally:
        for p in (good, bad, plain, ap):
            p.stop()
        b.close()


def test_ardupilot_over_tcp_streams_takeoff_and_float_params():
    port = free_tcp_port()
    peer_box = {}
    server = threading.Thread(target=lambda: peer_box.setdefault(
        "p", Peer(f"tcpin:127.0.0.1:{port}", autopilot=3)), daemon=True)
    server.start()
    time.sleep(0.2)
    b = Bridge(BridgeConfig(LinkConfig(f"tcp:127.0.0.1:{port}"), command_timeout_s=0.3))
    try:
        b.start()
        b.connect(3)
        peer = peer_box["p"]
        assert b.flavour.autopilot.value == "ardupilot" and b.mode == "STABILIZE"
        b.request_streams()
        rds = peer.wait_got("REQUEST_DATA_STREAM", 4)
        assert {r.req_stream_id for r in rds} >= {6, 10, 2} and all(r.start_stop == 1 for r in rds)
        assert {int(c.param1) for c in peer.got("COMMAND_LONG") if c.command == 511} >= {31, 32, 30}
        assert b.param_get("MAV_SYSID") == 1
        assert b.param_set("MAV_SYSID", 3) == 3
        sent = [p for p in peer.got("PARAM_SET") if p.param_id == "MAV_SYSID"][-1]
        assert sent.param_value == 3.0                                  # float cast, not bytes
        b.set_mode("GUIDED", wait_s=2)
        b.arm(wait_s=2)
        b.engage()                                  # GUIDED: nothing streamed before the first setpoint
        b.takeoff(7.5)
        tk = [c for c in peer.got("COMMAND_LONG") if c.command == 22][-1]
        assert tk.param7 == pytest.approx(3.0 + 7.5)                     # metres above home (z = -3)
        time.sleep(0.1)
        assert peer.got("SET_POSITION_TARGET_LOCAL_NED") == []
        b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.array([1.0, 0, 0]), yaw_rad=0.5))
        sp = peer.wait_got("SET_POSITION_TARGET_LOCAL_NED", 5)
        assert len(sp) >= 5 and sp[0].type_mask == 2503 and sp[0].coordinate_frame == 1
    finally:
        b.close()
        if "p" in peer_box:
            peer_box["p"].stop()


def test_unreachable_port_missing_device_and_silence_give_clear_errors(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(LinkError, match="cannot open"):
        Link(LinkConfig(f"tcp:127.0.0.1:{free_tcp_port()}", connect_timeout_s=1.0))
    with pytest.raises(LinkError, match="does not exist"):
        Link(LinkConfig("serial:/dev/ttyDOESNOTEXIST:57600"))
    with pytest.raises(LinkError, match="does not exist"):
        Link(LinkConfig("/dev/ttyUSB_nope"))
    with pytest.raises(LinkError, match="serial"):   # exists but is no serial port (or pyserial is missing)
        Link(LinkConfig("/dev/null"))
    with pytest.raises(LinkError, match="does not exist"):
        Link(LinkConfig(f"file:{tmp_path / 'none.tlog'}"))
    with pytest.raises(LinkError, match="32 bytes"):
        Link(LinkConfig(f"udpin:127.0.0.1:{free_udp_port()}", signing_key=b"short"))
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{free_udp_port()}")))
    with pytest.raises(LinkError, match="no autopilot HEARTBEAT"):
        b.connect(timeout_s=0.3)
    with pytest.raises(LinkError):
        b.arm()
    b.close()
    assert time.monotonic() - t0 < 3.0


def test_tcp_link_reconnects_after_the_autopilot_restarts():
    port = free_tcp_port()
    peer = Peer(f"tcpin:127.0.0.1:{port}", autopilot=3)
    b = Bridge(BridgeConfig(LinkConfig(f"tcp:127.0.0.1:{port}", connect_timeout_s=0.5), reconnect_interval_s=0.1,
                            link_lost_s=0.5))
    try:
        b.start()
        b.connect(3)
        peer.stop()                                              # the autopilot goes away
        assert b.wait_for(lambda: not b.link.is_open, 3)
        assert b.wait_for(lambda: not b.link_alive, 2)
        time.sleep(0.3)                                          # reconnect attempts fail (logged), no crash
        peer = Peer(f"tcpin:127.0.0.1:{port}", autopilot=3)      # ... and comes back on the same port
        assert b.wait_for(lambda: b.link.is_open and b.link_alive, 5)
        assert any("link reopened" in why for _, why in b.counters.control_log) and b.step_errors == 0
    finally:
        b.close()
        peer.stop()


def test_lockstep_use_with_a_manual_clock():
    """No thread: the owner advances the clock and calls step(); streaming follows the manual clock."""
    from autonomy.mavlink import ManualClock

    clock = ManualClock(100.0)
    port = free_udp_port()
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}")), clock=clock)
    peer = Peer(f"udpout:127.0.0.1:{port}")
    try:
        assert b.wait_for(lambda: b.flavour is not None, 2.0)     # wall-bounded although the clock stands
        st = b._need_streamer()
        st.start()
        b.control = Control.ENGAGED
        n0 = st.sent
        for _ in range(100):                                       # 1 s of manual time in 10 ms steps
            b.set_setpoint(Setpoint(t_s=clock.now_s(), vel_ned_mps=np.ones(3)))
            b.step(max_wait_s=0.001)
            clock.advance(0.01)
        assert st.sent - n0 == 50                                  # exactly 50 Hz of manual time
        s = b.state
        assert s is not None and abs(s.t_s - clock.now_s()) < 1.0  # autopilot time mapped onto the manual clock
    finally:
        peer.stop()
        b.close()
