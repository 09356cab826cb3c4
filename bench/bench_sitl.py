"""Simulated autopilot cost: physics step (scalar vs NumPy reference) and whole-autopilot speed vs real time.

Ratios are against baselines measured in the same run: the NumPy ``sitl.vehicle.step`` for the physics, and
the wall clock for the full PX4 endpoint (100 Hz physics + the default onboard streams, ~300 messages per
simulated second, encoded and sent over UDP on 127.0.0.1 to a client that drains them).
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np

from sitl import vehicle
from sitl.autopilot import Px4Autopilot, SimConfig, UdpLink
from sitl.autopilot.physics import step_fast


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _time_steps(fn, n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def run(out_dir: Path) -> dict:
    p = vehicle.MultirotorParams()
    s = vehicle.MultirotorState(pos_ned_m=np.array([0.0, 0.0, -10.0]), on_ground=False)
    acc = np.array([1.0, 0.5, -1.0])
    ref_us = _time_steps(lambda: vehicle.step(s, p, acc, 0.3, 0.01), 2000) * 1e6
    fast_us = _time_steps(lambda: step_fast(s, p, (1.0, 0.5, -1.0), 0.3, 0.01), 5000) * 1e6
    print(f"physics step: numpy reference {ref_us:.1f} us, scalar {fast_us:.1f} us  (x{ref_us / fast_us:.1f})")

    lp, rp = _free_port(), _free_port()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", rp))
    sink.setblocking(False)
    link = UdpLink(lp, rp)
    ap = Px4Autopilot(SimConfig(), {}, [link])
    received = 0
    sim_s = 20.0
    t0 = time.perf_counter()
    while ap.t_s < sim_s:
        ap.step(0.1)
        while True:
            try:
                sink.recv(65535)
                received += 1
            except BlockingIOError:
                break
    wall = time.perf_counter() - t0
    link.close()
    sink.close()
    speed = sim_s / wall
    print(f"PX4 endpoint lockstep: {sim_s:.0f} s simulated in {wall:.2f} s wall -> x{speed:.1f} real time; "
          f"{link.stats.tx_msgs / sim_s:.0f} msgs per simulated s in {received / sim_s:.0f} datagrams/s; "
          f"CPU share at x1 ~ {100 / speed:.1f} % of one core")
    return {"physics_numpy_us": ref_us, "physics_scalar_us": fast_us, "physics_speedup": ref_us / fast_us,
            "px4_lockstep_x_realtime": speed, "px4_cpu_share_at_x1_pct": 100.0 / speed,
            "px4_msgs_per_sim_s": link.stats.tx_msgs / sim_s}
