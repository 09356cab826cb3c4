"""MAVLink bridge cost: CPU share of one core to parse PX4's default onboard stream set and stream setpoints.

A separate sender process plays PX4's onboard link (AUTOPILOT_SPEC section 3 rates, ~400 messages/s over
UDP on 127.0.0.1: ATTITUDE 100 Hz; HIGHRES_IMU, ATTITUDE_QUATERNION, GLOBAL_POSITION_INT 50 Hz;
LOCAL_POSITION_NED, ODOMETRY 30 Hz; RC_CHANNELS 20 Hz; TIMESYNC requests and eight more at 10 Hz; SYS_STATUS,
EXTENDED_SYS_STATE 5 Hz; HEARTBEAT, SYSTEM_TIME, SCALED_PRESSURE 1 Hz; HOME_POSITION 0.5 Hz). In this
process, for the same wall time each:

- bridge: ``Bridge`` on its thread (state cache, history, TIMESYNC replies, heartbeat) while the "pipeline"
  (main thread) calls ``set_setpoint`` at 50 Hz and the streamer sends SET_POSITION_TARGET_LOCAL_NED at 50 Hz;
- the same with the bridge loop at 50 Hz instead of 100 Hz (``loop_period_s=0.02``);
- baseline: a bare pymavlink ``udpin`` connection draining the same traffic with ``recv_msg`` (no decoding
  into SI, no sending).

CPU share = process CPU time / wall time (one core = 100 %). Goal: bridge < 5 %.
Run: ``.venv/bin/python -m bench --only bridge`` (or ``make bench``).
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DURATION_S = 6.0

# (message, rate Hz) of PX4's onboard link that the stock dialect can encode
RATES_HZ = {
    "ATTITUDE": 100, "HIGHRES_IMU": 50, "ATTITUDE_QUATERNION": 50, "GLOBAL_POSITION_INT": 50,
    "LOCAL_POSITION_NED": 30, "ODOMETRY": 30, "RC_CHANNELS": 20, "TIMESYNC": 10, "ALTITUDE": 10,
    "DISTANCE_SENSOR": 10, "ATTITUDE_TARGET": 10, "NAV_CONTROLLER_OUTPUT": 10, "POSITION_TARGET_LOCAL_NED": 10,
    "SERVO_OUTPUT_RAW": 10, "VFR_HUD": 10, "SYS_STATUS": 5, "EXTENDED_SYS_STATE": 5, "HEARTBEAT": 1,
    "SYSTEM_TIME": 1, "SCALED_PRESSURE": 1, "HOME_POSITION": 0.5,
}


def _encode(mav, name: str, t_s: float):
    ms = int(t_s * 1000)
    us = int(t_s * 1e6)
    if name == "ATTITUDE":
        return mav.attitude_encode(ms, 0.01, -0.02, 1.0, 0.001, 0.002, 0.003)
    if name == "HIGHRES_IMU":
        return mav.highres_imu_encode(us, 0.1, 0.2, -9.8, 0, 0, 0, 0.2, 0.0, 0.4, 1013.0, 0, 0, 20.0, 0xFFFF)
    if name == "ATTITUDE_QUATERNION":
        return mav.attitude_quaternion_encode(ms, 0.877, 0.0, 0.0, 0.479, 0.001, 0.002, 0.003)
    if name == "GLOBAL_POSITION_INT":
        return mav.global_position_int_encode(ms, 473977420, 85455940, 498000, 10000, 100, 0, 0, 9000)
    if name == "LOCAL_POSITION_NED":
        return mav.local_position_ned_encode(ms, t_s, 2.0, -10.0, 1.0, 0.0, 0.0)
    if name == "ODOMETRY":
        return mav.odometry_encode(us, 1, 8, t_s, 2.0, -10.0, [1, 0, 0, 0], 1.0, 0, 0, 0, 0, 0,
                                   [float("nan")] * 21, [float("nan")] * 21)
    if name == "RC_CHANNELS":
        return mav.rc_channels_encode(ms, 0, *([0] * 18), 0)
    if name == "TIMESYNC":
        return mav.timesync_encode(0, int(t_s * 1e9))
    if name == "ALTITUDE":
        return mav.altitude_encode(us, 498.0, 498.0, 10.0, 10.0, 10.0, float("nan"))
    if name == "DISTANCE_SENSOR":
        return mav.distance_sensor_encode(ms, 10, 4000, 1000, 0, 0, 25, 0)
    if name == "ATTITUDE_TARGET":
        return mav.attitude_target_encode(ms, 0, [1, 0, 0, 0], 0, 0, 0, 0.5)
    if name == "NAV_CONTROLLER_OUTPUT":
        return mav.nav_controller_output_encode(0, 0, 0, 0, 0, 0, 0, 0)
    if name == "POSITION_TARGET_LOCAL_NED":
        return mav.position_target_local_ned_encode(ms, 1, 3527, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    if name == "SERVO_OUTPUT_RAW":
        return mav.servo_output_raw_encode(us & 0xFFFFFFFF, 0, *([1500] * 8))
    if name == "VFR_HUD":
        return mav.vfr_hud_encode(1.0, 1.0, 90, 50, 498.0, 0.0)
    if name == "SYS_STATUS":
        return mav.sys_status_encode(0, 0, 0, 500, 16000, 1000, 90, 0, 0, 0, 0, 0, 0)
    if name == "EXTENDED_SYS_STATE":
        return mav.extended_sys_state_encode(0, 2)
    if name == "HEARTBEAT":
        return mav.heartbeat_encode(2, 12, 145, 393216, 4)
    if name == "SYSTEM_TIME":
        return mav.system_time_encode(int(1.7e15) + us, ms)
    if name == "SCALED_PRESSURE":
        return mav.scaled_pressure_encode(ms, 1013.0, 0.0, 2000)
    if name == "HOME_POSITION":
        return mav.home_position_encode(473977420, 85455940, 488000, 0, 0, 0, [1, 0, 0, 0], 0, 0, 0)
    raise KeyError(name)


def _schedule(duration_s: float) -> list[tuple[float, str]]:
    ev = []
    for name, hz in RATES_HZ.items():
        ev += [(i / hz, name) for i in range(int(duration_s * hz))]
    return sorted(ev)


def _sender(port: int, duration_s: float) -> int:
    """The PX4 side, in its own process: frames at their scheduled times to udp 127.0.0.1:port."""
    sys.path.insert(0, str(REPO))
    from autonomy.mavlink.wire import dialect

    mav = dialect.MAVLink(None, srcSystem=1, srcComponent=1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sched = _schedule(duration_s)
    t0 = time.monotonic()
    for t_s, name in sched:
        dt = t0 + t_s - time.monotonic()
        if dt > 0:
            time.sleep(dt)
        sock.sendto(_encode(mav, name, t_s).pack(mav), ("127.0.0.1", port))
    sock.close()
    return 0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_sender(port: int, duration_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--sender", str(port), str(duration_s)],
                            cwd=REPO)


def _measure_bridge(duration_s: float, loop_period_s: float = 0.01) -> dict:
    from autonomy.mavlink import Bridge, BridgeConfig, LinkConfig
    from autonomy.types import Setpoint

    port = _free_udp_port()
    b = Bridge(BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{port}"), loop_period_s=loop_period_s))
    b.start()
    proc = _start_sender(port, duration_s + 1.0)
    try:
        b.connect(timeout_s=5.0)   # first HEARTBEAT at t=0 of the sender
        st = b._need_streamer()
        st.start()                 # stream without a mode switch (the sender is not a real autopilot)
        rx0, tx0 = b.link.stats.received + b.link.stats.skipped, b.link.stats.sent
        w0, c0 = time.perf_counter(), time.process_time()
        n_set = 0
        while time.perf_counter() - w0 < duration_s:
            b.set_setpoint(Setpoint(t_s=0.0, vel_ned_mps=np.array([1.0, 0.0, 0.0])))
            n_set += 1
            time.sleep(0.02)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        rx = b.link.stats.received + b.link.stats.skipped - rx0
        tx = b.link.stats.sent - tx0
        decoded = b.link.stats.received
        sp_sent = st.sent
        bad = b.link.stats.bad_data
        errors = b.step_errors
    finally:
        b.close()
        proc.wait(timeout=10)
    return {"cpu_share": cpu / wall, "wall_s": wall, "rx_per_s": rx / wall, "tx_per_s": tx / wall,
                "decoded_fraction": decoded / max(b.link.stats.received + b.link.stats.skipped, 1),
                "setpoints_per_s": sp_sent / wall, "set_calls": n_set, "bad_data": bad, "step_errors": errors}


def _measure_baseline(duration_s: float) -> dict:
    from autonomy.mavlink.wire import mavutil

    port = _free_udp_port()
    conn = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}")
    proc = _start_sender(port, duration_s + 1.0)
    try:
        n = 0
        while conn.recv_msg() is None:     # wait for the first frame
            select.select([conn.fd], [], [], 0.1)
        w0, c0 = time.perf_counter(), time.process_time()
        while time.perf_counter() - w0 < duration_s:
            select.select([conn.fd], [], [], 0.004)
            while conn.recv_msg() is not None:
                n += 1
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    finally:
        conn.close()
        proc.wait(timeout=10)
    return {"cpu_share": cpu / wall, "wall_s": wall, "rx_per_s": n / wall}


def run(out_dir: Path) -> dict:
    base = _measure_baseline(DURATION_S)
    br = _measure_bridge(DURATION_S)
    br20 = _measure_bridge(DURATION_S, loop_period_s=0.02)
    ratio = br["cpu_share"] / max(base["cpu_share"], 1e-9)
    print(f"PX4 onboard stream: {br['rx_per_s']:.0f} msg/s received ({100 * br['decoded_fraction']:.0f} % "
          f"decoded, the rest skipped undecoded: ids the bridge does not use); "
          f"setpoints {br['setpoints_per_s']:.1f} Hz sent (pipeline set_setpoint {br['set_calls'] / br['wall_s']:.0f} Hz); bad {br['bad_data']}, "
          f"step errors {br['step_errors']}")
    print(f"bridge CPU share of one core:            {100 * br['cpu_share']:.2f} %  (goal < 5 %)")
    print(f"  same, bridge loop at 50 Hz (loop_period_s=0.02, <=10 ms more telemetry latency): "
          f"{100 * br20['cpu_share']:.2f} %, setpoints {br20['setpoints_per_s']:.1f} Hz")
    print(f"baseline (bare pymavlink recv) CPU share: {100 * base['cpu_share']:.2f} %  "
          f"({base['rx_per_s']:.0f} msg/s)")
    print(f"ratio bridge / baseline: {ratio:.2f}x")
    return {"bridge": br, "bridge_loop_20ms": br20, "baseline": base, "ratio_bridge_over_baseline": ratio,
            "goal_cpu_share": 0.05, "meets_goal": br["cpu_share"] < 0.05}


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--sender":
        sys.exit(_sender(int(sys.argv[2]), float(sys.argv[3])))
    sys.path.insert(0, str(REPO))
    print(run(Path("out/bench")))
