"""The lockstep simulation world: simulated PX4 in-process + targets + rendered camera + simulated ground.

Everything a real flight has, in one process and on one simulated clock (deterministic, faster than real
time):

- the vehicle: :class:`sitl.autopilot.Px4Autopilot` (its real UDP endpoint on 127.0.0.1) flown through the
  real :class:`autonomy.mavlink.Bridge` (a :class:`LockstepBridge`: its blocking calls advance the world
  instead of waiting on the wall clock);
- the targets of a :class:`sitl.scenarios.Scenario` (:mod:`sitl.targets`), drawn by the synthetic camera
  (:class:`sitl.render.Renderer`) from the vehicle's pose at each frame's capture time;
- a simulated ground station (:class:`GroundStation`, its own pymavlink socket): radar cues as
  FOLLOW_TARGET with the scenario's noise/period/latency, and an operator who authorizes the track the
  vehicle reports (``AUTH? track N`` STATUSTEXT) after the scenario's reaction delay, by COMMAND_LONG
  MAV_CMD_USER_1 addressed to the companion — never a bird (the simulator knows the truth).

The onboard side is the ordinary :class:`autonomy.runtime.pipeline.Pipeline`; the world only feeds it
frames and steps physics. Closest approach is measured within each physics tick (segment to segment).

Determinism: the three sockets talk over real UDP on 127.0.0.1, so a datagram may still be in the kernel when
its receiver reads. Every read is therefore a *delivery barrier*: the world counts the datagrams sent towards
each socket (autopilot -> bridge and ground -> bridge: the senders' counters; bridge -> autopilot and bridge ->
ground: :class:`LockstepBridge` counts per peer), and each receiver reads until it has exactly that many
(``select``, bounded by ``WorldConfig.barrier_timeout_s`` of wall time; a lost datagram is a
:class:`WorldError` naming the socket, never a hang). Within one read the bridge dispatches the autopilot's
messages before the ground station's, the order in which the world sent them. So a datagram sent in a tick is
handled in the receiver's next read whatever the OS scheduling, and a run depends only on the scenario, its
seed and the code: not on wall-clock timing.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autonomy.camera.model import Camera
from autonomy.clock import SimClock
from autonomy.geometry import ned_to_geodetic
from autonomy.mavlink import Bridge, BridgeConfig, LinkConfig
from autonomy.mavlink.wire import mavutil
from autonomy.types import Detections
from sitl.autopilot import PRESETS, Px4Autopilot, SimConfig, SitlLinkError, UdpLink
from sitl.autopilot.links import await_datagrams
from sitl.campaign import closest_approach_segment
from sitl.render import sim_camera
from sitl.scenarios import Scenario
from sitl.targets import Target, TargetSpec

MAV_CMD_USER_1 = 31010
_KIND_FOR = {"straight": "shahed", "loiter": "quad", "weave": "fpv_quad", "evasive": "fixed_wing", "bird": "bird"}


class WorldError(RuntimeError):
    """The simulated world cannot start or run."""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_kind(spec: TargetSpec) -> str:
    """Renderer model for a scenario target (Shahed-sized straight flyers are drawn as a Shahed)."""
    if spec.kind == "straight" and spec.size_m < 1.5:
        return "fixed_wing"
    return _KIND_FOR[spec.kind]


def heading_quat(vel_ned_mps: np.ndarray) -> np.ndarray:
    """Attitude [w, x, y, z] of a body flying level along ``vel_ned_mps`` (yaw only)."""
    yaw = math.atan2(float(vel_ned_mps[1]), float(vel_ned_mps[0]))
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


# ============================================================================================ the bridge
class LockstepBridge(Bridge):
    """The real bridge, whose blocking waits advance the lockstep world one physics tick at a time (in
    lockstep, waiting *is* the simulator running). ``advance`` is set by the world.

    Delivery barrier (see the module docstring): ``barrier`` (set by the world) gives how many datagrams the
    simulated peers have sent to the bridge's socket so far; each receive reads until exactly that many have
    been read (``WorldError`` after ``barrier_timeout_s`` of wall time) and dispatches them ordered by
    ``source_order`` (MAVLink (sysid, compid) -> rank: the order the world sent them in; stable otherwise).
    ``sent_to`` counts, per peer UDP port, the datagrams the bridge sent there (pymavlink's ``udpin`` link
    sends every message to each peer it has heard from): the peers' barriers.
    """

    advance: Callable[[], None] | None = None

    def __init__(self, config: BridgeConfig, clock) -> None:
        super().__init__(config, clock)
        self.barrier: Callable[[], int] | None = None
        self.barrier_timeout_s = 5.0
        self.source_order: dict[tuple[int, int], int] = {}
        self.sent_to: dict[int, int] = {}

    def _send(self, msg) -> bool:
        ok = super()._send(msg)
        if ok:
            conn = self.link._conn  # pymavlink's udpin socket: its peers are who this datagram went to
            for addr in getattr(conn, "clients", ()):
                self.sent_to[addr[1]] = self.sent_to.get(addr[1], 0) + 1
        return ok

    def _receive(self, max_wait_s: float) -> list:
        msgs = self.link.recv(max_wait_s=max_wait_s)
        if self.barrier is None:
            return msgs
        st = self.link.stats
        want = self.barrier()
        if st.datagrams != want:
            conn = self.link._conn
            if conn is None:
                raise WorldError(f"bridge link {self.config.link.url}: closed while {want - st.datagrams} "
                                 "datagrams were due")
            msgs += await_datagrams(f"bridge link {self.config.link.url}", conn.port,
                                    lambda: self.link.recv(0.0), lambda: st.datagrams, want,
                                    self.barrier_timeout_s, WorldError)
        if len(msgs) > 1 and self.source_order:
            rank, last = self.source_order, len(self.source_order)
            msgs.sort(key=lambda mt: rank.get((mt[0].get_srcSystem(), mt[0].get_srcComponent()), last))
        return msgs

    def wait_for(self, predicate, timeout_s: float) -> bool:
        deadline = self.clock.now_s() + timeout_s
        while True:
            self.step(0.0)
            if predicate():
                return True
            if self.clock.now_s() >= deadline:
                return False
            if self.advance is None:
                raise WorldError("LockstepBridge has no world to advance")
            self.advance()


# ============================================================================================ the ground
@dataclass
class GroundStation:
    """Simulated ground station on its own UDP socket towards the companion's MAVLink port.

    ``home``: (lat, lon, alt AMSL) of the vehicle's NED origin (cues are sent as geodetic positions).
    Sends HEARTBEAT (1 Hz), FOLLOW_TARGET cues, and the operator's MAV_CMD_USER_1 commands; reads the
    companion's STATUSTEXT. ``authorize`` decides per reported track id (the simulated operator's eyes).
    """

    port: int
    home: tuple[float, float, float]
    companion: tuple[int, int] = (1, 191)
    sysid: int = 255
    compid: int = 190
    signing_key: bytes | None = None
    barrier: Callable[[], int] | None = None     # datagrams sent to this socket so far (set by the world)
    barrier_timeout_s: float = 5.0
    texts: list[tuple[float, str]] = field(default_factory=list)
    acks: list[tuple[float, int, int]] = field(default_factory=list)
    sent_commands: list[tuple[float, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conn = mavutil.mavlink_connection(f"udpout:127.0.0.1:{self.port}", source_system=self.sysid,
                                               source_component=self.compid)
        if self.signing_key is not None:
            self.conn.setup_signing(self.signing_key, sign_outgoing=True, allow_unsigned_callback=lambda *_: True)
        self.conn.mav.robust_parsing = True
        self._t_hb = -math.inf
        self.tx_datagrams = 0     # every *_send below is one datagram (pymavlink writes each message at once)
        self.rx_datagrams = 0
        self._port = 0

    @property
    def local_port(self) -> int:
        """The UDP port the ground station sends from (0 before its first send binds it)."""
        if not self._port:
            self._port = int(self.conn.port.getsockname()[1])
        return self._port

    def _drain(self) -> list:
        msgs = []
        for _ in range(10000):
            try:
                data = self.conn.recv()
            except OSError:
                break
            if not data:
                break
            self.rx_datagrams += 1
            msgs.extend(self.conn.mav.parse_buffer(data) or [])
        return msgs

    def close(self) -> None:
        self.conn.close()

    def poll(self, t_s: float) -> None:
        if t_s - self._t_hb >= 1.0:
            self._t_hb = t_s
            self.conn.mav.heartbeat_send(6, 8, 0, 0, 4)  # MAV_TYPE_GCS, MAV_AUTOPILOT_INVALID
            self.tx_datagrams += 1
        msgs = self._drain()
        if self.barrier is not None:
            want = self.barrier()
            if self.rx_datagrams != want:
                msgs += await_datagrams(f"ground station udp port {self.local_port}", self.conn.port, self._drain,
                                        lambda: self.rx_datagrams, want, self.barrier_timeout_s, WorldError)
        for m in msgs:
            t = m.get_type()
            if t == "STATUSTEXT":
                self.texts.append((t_s, m.text))
            elif t == "COMMAND_ACK" and m.command == MAV_CMD_USER_1:
                self.acks.append((t_s, int(m.command), int(m.result)))

    def send_cue(self, t_s: float, track_id: int, pos_ned_m: np.ndarray, vel_ned_mps: np.ndarray,
                 pos_std_m: float) -> None:
        lat, lon, alt = ned_to_geodetic(pos_ned_m, *self.home)
        var = float(pos_std_m) ** 2
        self.conn.mav.follow_target_send(int(t_s * 1000), 0, round(lat * 1e7), round(lon * 1e7), alt,
                                         [float(v) for v in vel_ned_mps], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0],
                                         [0.0, 0.0, 0.0], [var, var, var], int(track_id))
        self.tx_datagrams += 1

    def send_operator(self, t_s: float, kind: int, track_id: int, valid_s: float = 60.0) -> None:
        self.sent_commands.append((t_s, kind, track_id))
        self.conn.mav.command_long_send(self.companion[0], self.companion[1], MAV_CMD_USER_1, 0, float(kind),
                                        float(track_id), float(valid_s), 0, 0, 0, 0)
        self.tx_datagrams += 1


# ============================================================================================ the world
@dataclass(frozen=True)
class WorldConfig:
    camera: Camera = field(default_factory=sim_camera)
    kill_radius_m: float = 1.5
    params: tuple[tuple[str, float], ...] = tuple(PRESETS["interceptor"]["px4"].items())
    render_noise: bool = True
    operator_valid_s: float = 60.0
    # the simulated operator authorizes a track only when an object's true line of sight is this close to the
    # track's (5 deg: ~90 px on the 1280 px camera; a real track of the target is within ~1 deg, coasting ones
    # near the closest approach a few)
    operator_match_rad: float = math.radians(5.0)
    boot_s: float = 3.5                 # simulated autopilot boot (estimator ready at 3 s)
    # the delivery barrier (module docstring); False gives the old unsynchronised exchange, whose flights can
    # depend on OS scheduling: only for showing that race (tests/e2e/test_lockstep_determinism.py)
    lockstep_barrier: bool = True
    barrier_timeout_s: float = 5.0      # wall-clock bound of one barrier wait (then WorldError: lost datagram)
    # what the companion sends reaches the autopilot's controller this much later (its processing time and the
    # serial link in a real flight, 0 in lockstep otherwise): with the camera latency, real time's delays
    uplink_delay_s: float = 0.0


class LabelDetector:
    """Oracle perception for development and the campaign's "labels" mode: the renderer's exact boxes of
    the last rendered frame as detections (score 0.9), in the detector's class vocabulary. It is NOT the
    shipped model; the e2e tests and the demo use :class:`autonomy.perception.detector.Detector`."""

    class_names = ("drone", "bird", "airplane", "helicopter")

    def __init__(self) -> None:
        self.labels: list = []

    def _dets(self, t: float, boxes) -> Detections:
        if not boxes:
            return Detections.empty(t, self.class_names)
        xyxy = np.array([lb.xyxy_px for lb in boxes], dtype=np.float64)
        cid = np.array([self.class_names.index(lb.class_name) for lb in boxes], dtype=np.int64)
        return Detections(t, xyxy, np.full(len(boxes), 0.9), cid, self.class_names)

    def detect(self, frame: np.ndarray, t_capture_s: float = 0.0) -> Detections:
        return self._dets(t_capture_s, self.labels)

    def detect_roi(self, frame, center_uv_px, size_px, t_capture_s: float = 0.0, scale: float = 1.0,
                   score_threshold: float | None = None) -> Detections:
        return Detections.empty(t_capture_s, self.class_names)


class World:
    """One scenario in lockstep. Use as a context manager (closes sockets).

    ``start()`` boots the autopilot, connects the bridge (flavour, origin), puts the vehicle under OFFBOARD
    and arms it on the ground; then alternate :meth:`advance_to` (physics, targets, cues, operator) and
    :meth:`capture` (a rendered frame at the current time, or None when the camera is off).
    """

    def __init__(self, scenario: Scenario, config: WorldConfig = WorldConfig(), bridge_config: BridgeConfig | None = None,
                 renderer: Any | None = None) -> None:
        self.sc = scenario
        self.cfg = config
        self.clock = SimClock()
        self.rng = np.random.default_rng([scenario.seed, 11])
        self.bridge_port, ap_port = free_udp_port(), free_udp_port()
        params = dict(config.params)
        # the autopilot's own geofence matches the scenario's (the engagement's fence is the inner one)
        half = max(max(abs(a), abs(b)) for a, b in scenario.fence_polygon_ne_m) if scenario.fence_polygon_ne_m else 8000.0
        params.update({"GF_MAX_HOR_DIST": float(half) * 1.2, "GF_MAX_VER_DIST": scenario.fence_max_altitude_m + 100.0,
                       "MPC_TILTMAX_AIR": 75.0,
                       # the simulated ground station talks to the companion only: no GCS link-loss failsafe
                       "NAV_DLL_ACT": 0})
        self.ap = Px4Autopilot(SimConfig(wind=scenario.wind, seed=scenario.seed, uplink_delay_s=config.uplink_delay_s),
                               params,
                               [UdpLink(ap_port, self.bridge_port)])
        bc = bridge_config or BridgeConfig(LinkConfig(f"udpin:127.0.0.1:{self.bridge_port}"))
        if not bc.link.url.endswith(f":{self.bridge_port}"):
            bc = replace(bc, link=replace(bc.link, url=f"udpin:127.0.0.1:{self.bridge_port}"))
        self.bridge = LockstepBridge(bc, self.clock)
        self.bridge.advance = self.tick
        c = self.ap.config
        self.home = (c.home_lat_deg, c.home_lon_deg, c.home_alt_m)
        self.ground = GroundStation(self.bridge_port, self.home,
                                    companion=(bc.link.source_system, bc.link.source_component),
                                    signing_key=bc.link.signing_key)
        if config.lockstep_barrier:
            self._install_barriers()
        self.targets = [Target(scenario.target)] + [Target(s) for s in scenario.clutter]
        self.renderer = renderer
        self.camera_on = True
        # bookkeeping
        self.min_dist_m = [math.inf] * len(self.targets)
        self.t_closest_s = math.inf
        self.killed: int | None = None
        self.t_kill_s: float | None = None
        self._cpa_after_kill = False   # the killed object's closest approach lies in a simulated step
        self._cue_queue: list[tuple[float, np.ndarray, np.ndarray]] = []
        self._next_cue_t = 0.0
        self._op_pending: list[tuple[float, int]] = []
        self._op_asked: set[int] = set()
        self.authorized_tracks: set[int] = set()
        self.cues_enabled = False
        self.traj: list[list[float]] = []   # t, own pos(3), tgt pos(3), own vel(3)
        self._t_traj = -math.inf
        self.track_los: Callable[[int], np.ndarray | None] | None = None

    def _install_barriers(self) -> None:
        ap_link: UdpLink = self.ap.links[0].link
        b, g, tmo = self.bridge, self.ground, self.cfg.barrier_timeout_s
        b.barrier = lambda: ap_link.stats.tx_datagrams + g.tx_datagrams
        b.barrier_timeout_s = ap_link.barrier_timeout_s = g.barrier_timeout_s = tmo
        # within a tick the autopilot sends first, then the ground station (tick())
        b.source_order = {(self.ap.sysid, self.ap.compid): 0, (g.sysid, g.compid): 1}
        ap_link.barrier = lambda: b.sent_to.get(ap_link.local_port, 0)
        g.barrier = lambda: b.sent_to.get(g.local_port, 0)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> World:  # noqa: PYI034
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.bridge.close()
        self.ground.close()
        for ls in self.ap.links:
            try:
                ls.link.close()
            except OSError:
                pass

    @property
    def t_s(self) -> float:
        return self.ap.t_s

    def start(self, timeout_s: float = 10.0) -> None:
        """Boot, connect, OFFBOARD with a zero-velocity stream, arm (on the ground)."""
        self.bridge.connect(timeout_s=timeout_s)
        if not self.bridge.wait_for(lambda: self.bridge.state is not None and self.bridge.cache.origin is not None
                                    and self.t_s >= self.cfg.boot_s, timeout_s):
            raise WorldError("no position/origin from the simulated autopilot")
        from autonomy.types import Setpoint
        hold = Setpoint(t_s=self.t_s, vel_ned_mps=np.array([0.0, 0.0, -2.0]))
        self.bridge.engage(hold, timeout_s=5.0)
        # the bridge keeps the hold fresh while arming (the ACK and the armed HEARTBEAT take a few ticks):
        # otherwise its dead-man watchdog brakes (and says so) before the pipeline's first setpoint
        self.bridge.arm(wait_s=3.0, hold=hold)
        self.cues_enabled = True
        self._t0 = self.t_s

    # ------------------------------------------------------------------ physics
    def tick(self) -> None:
        """One physics tick of the whole world (autopilot, targets, ground), then the bridge's I/O."""
        dt = self.ap.config.physics_dt_s
        t = self.ap.t_s
        p_own0 = self.ap.pos_ned_m.copy()
        p_obj0 = [o.pos_ned_m.copy() for o in self.targets]
        try:
            self.ap.tick()
        except SitlLinkError as e:  # the autopilot's delivery barrier
            raise WorldError(f"simulated autopilot: {e}") from e
        for o in self.targets:
            o.step(t, dt, self.ap.pos_ned_m, self.rng)
        self.clock.set(self.ap.t_s)
        own = self.ap.pos_ned_m
        for i, o in enumerate(self.targets):
            d, s = closest_approach_segment(p_obj0[i] - p_own0, o.pos_ned_m - own)
            if d < self.min_dist_m[i]:
                self.min_dist_m[i] = d
                if i == 0:
                    self.t_closest_s = t + s * dt
            if d < self.cfg.kill_radius_m and self.killed is None:
                self.killed, self.t_kill_s = i, t + s * dt
            if i == self.killed and s < 1.0:
                self._cpa_after_kill = True
        self._ground(self.ap.t_s)
        self.bridge.step(0.0)
        if self.ap.t_s - self._t_traj >= 0.1:
            self._t_traj = self.ap.t_s
            self.traj.append([self.ap.t_s, *own, *self.targets[0].pos_ned_m, *self.ap.vel_ned_mps])

    @property
    def kill_final(self) -> bool:
        """A kill whose miss distance is final: the physics ran on past the kill-radius entry to the closest
        approach (as the truth campaign does), so ``min_dist_m`` is the true miss, not the radius crossing."""
        return self.killed is not None and (self._cpa_after_kill or self.ap.t_s - self.t_closest_s > 0.1)

    def advance_to(self, t_s: float) -> None:
        while self.ap.t_s < t_s - 1e-9 and not self.kill_final:
            self.tick()

    def _ground(self, t: float) -> None:
        g, sc = self.ground, self.sc
        g.poll(t)
        if self.cues_enabled:
            if t >= self._next_cue_t:
                tg = self.targets[0]
                self._cue_queue.append((t, tg.pos_ned_m + self.rng.normal(0, sc.cue.pos_std_m, 3),
                                        tg.vel_ned_mps + self.rng.normal(0, sc.cue.vel_std_mps, 3)))
                self._next_cue_t = t + sc.cue.period_s
            while self._cue_queue and self._cue_queue[0][0] + sc.cue.latency_s <= t + 1e-9:
                _, p, v = self._cue_queue.pop(0)
                g.send_cue(t, 1000 + sc.seed % 1000, p, v, sc.cue.pos_std_m)
        # the operator reads "AUTH? track N" and authorizes after a delay, unless the track is a bird
        for _, text in g.texts:
            if text.startswith("AUTH? track "):
                # "AUTH? track N [cue M]": the operator checks what track N is (truth) and authorizes the
                # ground track M it was handed over from (survives camera re-acquisitions), else N itself
                words = text.split()
                try:
                    tid = int(words[2])
                    auth_id = int(words[4]) if len(words) >= 5 and words[3] == "cue" else tid
                except (ValueError, IndexError):
                    continue
                if tid not in self._op_asked:
                    self._op_asked.add(tid)
                    if self.truth_class_of_track(tid) not in OPERATOR_REFUSES and auth_id not in self.authorized_tracks \
                            and all(a != auth_id for _, a in self._op_pending):
                        self._op_pending.append((t + sc.operator_delay_s, auth_id))
        g.texts.clear()
        for ta, tid in list(self._op_pending):
            if ta <= t:
                self._op_pending.remove((ta, tid))
                g.send_operator(t, 1, tid, self.cfg.operator_valid_s)
                self.authorized_tracks.add(tid)

    def truth_class_of_track(self, track_id: int) -> str:
        """The operator's eyes: the class of the simulated object whose true line of sight is closest to the
        track's (``track_los`` is set by the runner that owns the tracker; without it, the cued target), or
        "clutter" when no object lies within ``WorldConfig.operator_match_rad`` of it: the box is on a tree line,
        the ground or a cloud, and an operator watching the video refuses it (before, the nearest object counted
        however far away: lockstep bird_clutter-1 was authorized onto a ground track 40 deg off the drone)."""
        los = self.track_los(track_id) if self.track_los is not None else None
        if los is None:
            return self.targets[0].class_name
        return class_on_line_of_sight(los, self.ap.pos_ned_m, self.targets, self.cfg.operator_match_rad)

    # ------------------------------------------------------------------ camera
    def render_targets(self) -> list:
        from sitl.render import RenderTarget
        out = []
        for o in self.targets:
            v = o.vel_ned_mps
            out.append(RenderTarget(render_kind(o.spec), o.pos_ned_m.copy(), heading_quat(v),
                                    anim_phase_rad=float(o.pos_ned_m[0] % 6.283)))
        return out

    def capture(self):
        """Render the camera now from the vehicle's true pose: (image, t_capture_s, RenderedFrame) or None."""
        if not self.camera_on or self.renderer is None:
            return None
        st = self.ap.state
        fr = self.renderer.render(st.pos_ned_m, st.q_body_to_ned, self.render_targets(),
                                  self.rng if self.cfg.render_noise else None, self.ap.t_s,
                                  rate_body_radps=st.rate_body_radps)
        return fr.image, self.ap.t_s, fr


OPERATOR_REFUSES = ("bird", "clutter")   # what the simulated operator will not authorize (class_on_line_of_sight)


def class_on_line_of_sight(los_ned: np.ndarray, own_pos_ned_m: np.ndarray, objects, match_rad: float) -> str:
    """The simulated operator's eyes: the class of the object (``.pos_ned_m``, ``.class_name``) whose true line of
    sight from ``own_pos_ned_m`` is closest to ``los_ned``, or "clutter" when none is within ``match_rad``."""
    los = np.asarray(los_ned, dtype=np.float64)
    best, best_i = -2.0, 0
    for i, o in enumerate(objects):
        d = o.pos_ned_m - own_pos_ned_m
        c = float(d @ los) / max(float(np.linalg.norm(d)) * float(np.linalg.norm(los)), 1e-9)
        if c > best:
            best, best_i = c, i
    if not objects or math.acos(max(-1.0, min(1.0, best))) > match_rad:
        return "clutter"
    return objects[best_i].class_name


def wall_s() -> float:
    return time.perf_counter()
