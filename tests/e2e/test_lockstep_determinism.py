"""The lockstep world is exactly deterministic: a flight depends on the scenario, its seed and the code, never
on wall-clock timing (issue 6).

The world's three sockets (simulated PX4, the real MAVLink bridge, the simulated ground station) talk over real
UDP on 127.0.0.1. Here a run is perturbed in wall-clock timing only: every datagram is handed to the kernel
late (a worker thread sends it after a seeded random 0-1 ms, FIFO kept: a loaded kernel delivering late),
``Pipeline.process_frame`` sleeps a seeded random 0-30 ms before and after some frames (a slow or logging
pipeline), and a busy thread competes for the interpreter. Its trajectory, decisions and setpoints must be
bit-identical to a plain run's. Without the world's delivery barrier the same perturbation changes the flight
(a datagram sent in tick k is read in tick k+1), which shows the perturbation bites. A lost datagram is a
``WorldError`` naming the socket within the barrier's timeout, not a hang.
"""

from __future__ import annotations

import queue
import random
import threading
import time

import numpy as np
import pytest

from autonomy.mavlink.errors import CommandError, LinkError
from autonomy.runtime.pipeline import Pipeline
from sitl.engagement_demo import RunOptions, run_engagement
from sitl.video_server import quick_scenario
from sitl.world import World, WorldConfig, WorldError

T_MAX_S = 12.0   # cue, acquisition, authorization over MAVLink, terminal, a lost track and its re-acquisition


class LateSocket:
    """A real UDP socket whose ``sendto`` reaches the kernel late: a worker thread sends each datagram after a
    seeded random delay in [0, max_delay_s), in order. ``drop_after`` loses every datagram after that many
    (a lossy link). Everything else is the socket's own."""

    def __init__(self, sock, seed: int, max_delay_s: float = 0.001, drop_after: int | None = None) -> None:
        self._sock = sock
        self._rng = random.Random(seed)
        self._max = max_delay_s
        self._drop_after = drop_after
        self._q: queue.Queue = queue.Queue()
        self._due = 0.0
        self.sent = 0
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    def sendto(self, data, addr) -> int:
        self.sent += 1
        if self._drop_after is not None and self.sent > self._drop_after:
            return len(data)
        self._due = max(self._due, time.monotonic() + self._rng.uniform(0.0, self._max))
        self._q.put((self._due, bytes(data), addr))
        return len(data)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            due, data, addr = item
            dt = due - time.monotonic()
            if dt > 0:
                time.sleep(dt)
            try:
                self._sock.sendto(data, addr)
            except OSError:
                pass

    def close(self) -> None:
        self._q.put(None)
        self._worker.join(timeout=2.0)
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


def make_late(world: World, max_delay_s: float = 0.001, drop_after: dict[str, int] | None = None) -> list[LateSocket]:
    """Put a LateSocket under each of the world's three senders ("autopilot", "bridge", "ground"); a sender
    named in ``drop_after`` loses its datagrams after that many."""
    drop = drop_after or {}
    ap_link = world.ap.links[0].link
    ap_link._sock = LateSocket(ap_link._sock, 1, max_delay_s, drop.get("autopilot"))
    world.bridge.link._conn.port = LateSocket(world.bridge.link._conn.port, 2, max_delay_s, drop.get("bridge"))
    world.ground.conn.port = LateSocket(world.ground.conn.port, 3, max_delay_s, drop.get("ground"))
    return [ap_link._sock, world.bridge.link._conn.port, world.ground.conn.port]


def _fly(perturb: bool, barrier: bool = True, monkeypatch=None):
    late: list[LateSocket] = []
    stop = threading.Event()
    if perturb:
        orig = Pipeline.process_frame
        rng = random.Random(7)

        def slow_process_frame(self, *a, **k):
            if rng.random() < 0.1:
                time.sleep(rng.uniform(0.0, 0.03))
            res = orig(self, *a, **k)
            if rng.random() < 0.1:
                time.sleep(rng.uniform(0.0, 0.03))
            return res

        monkeypatch.setattr(Pipeline, "process_frame", slow_process_frame)

        def busy() -> None:
            x = 0
            while not stop.is_set():
                for _ in range(20000):
                    x += 1
                time.sleep(0.002)

        threading.Thread(target=busy, daemon=True).start()
    try:
        res = run_engagement(quick_scenario(0), RunOptions(perception="labels", t_max_s=T_MAX_S),
                             world_config=WorldConfig(lockstep_barrier=barrier),
                             on_world=(lambda w: late.extend(make_late(w))) if perturb else None)
    finally:
        stop.set()
        if perturb:
            monkeypatch.undo()
    return res, sum(s.sent for s in late)


def _flight(res) -> dict:
    """What must not depend on wall time: the trajectory (0.1 s samples of own/target position, own velocity),
    the engagement decisions, and per step the state and the setpoints sent (NaN where none)."""
    return {
        "traj": np.asarray(res.traj, dtype=np.float64),
        "decisions": res.decisions,
        "steps": [(r["t"], r["state"]) for r in res.log],
        "setpoints": np.array([r["acc"] + r["vel_sp"] for r in res.log], dtype=np.float64),
        "authorized": res.authorized_tracks,
        "frames": res.frames,
        "miss_m": res.miss_distance_m,
    }


def _identical(a: dict, b: dict) -> list[str]:
    diff = []
    for k, va in a.items():
        vb = b[k]
        same = va.shape == vb.shape and va.tobytes() == vb.tobytes() if isinstance(va, np.ndarray) else va == vb
        if not same:
            diff.append(k)
    return diff


@pytest.fixture(scope="module")
def plain():
    res, _ = _fly(perturb=False)
    return _flight(res)


def test_flight_does_not_depend_on_wall_clock_timing(plain, monkeypatch):
    res, late_n = _fly(perturb=True, monkeypatch=monkeypatch)
    assert late_n > 2000, f"the perturbation delayed only {late_n} datagrams"
    perturbed = _flight(res)
    assert plain["decisions"] and plain["decisions"][0][2] == "midcourse", plain["decisions"]
    assert any(d[2] == "terminal" for d in plain["decisions"]), "the short run must reach terminal homing"
    diff = _identical(plain, perturbed)
    assert not diff, f"perturbed run differs from the plain run in {diff}"


def test_without_the_barrier_late_delivery_changes_the_flight(plain, monkeypatch):
    """The perturbation is real: with the world's barrier off the same late delivery moves the flight (or, in
    some runs, makes the start fail: e.g. OFFBOARD's ACK read late, the dead-man hands back, the mode command
    is superseded)."""
    try:
        res, _ = _fly(perturb=True, barrier=False, monkeypatch=monkeypatch)
    except (CommandError, LinkError, WorldError) as exc:
        diff = [f"start failed: {exc}"]
    else:
        diff = _identical(plain, _flight(res))
    assert diff, "late delivery did not change the unsynchronised flight: the perturbation shows nothing"


@pytest.mark.parametrize(("sender", "receiver"), [
    ("autopilot", r"bridge link udpin:127\.0\.0\.1:\d+"),
    ("ground", r"bridge link udpin:127\.0\.0\.1:\d+"),
    ("bridge", r"simulated autopilot: udp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+|ground station udp port \d+"),
], ids=["autopilot", "ground", "bridge"])
def test_lost_datagram_is_a_world_error_naming_the_socket(sender, receiver):
    t0 = time.monotonic()
    with World(quick_scenario(0), WorldConfig(barrier_timeout_s=0.3)) as w:
        make_late(w, max_delay_s=0.0, drop_after={sender: 3})
        with pytest.raises(WorldError, match=rf"({receiver}): lockstep barrier: 1 of the \d+ datagrams sent to this "
                                             r"socket did not arrive within 0\.3 s \(lost\)"):
            w.start()
    assert time.monotonic() - t0 < 5.0, "a lost datagram must fail fast, not hang"
