"""The simulator's world for real-time, multi-process runs: camera over MJPEG/HTTP, targets, ground station.

As on a laptop with SITL::

    autonomy sitl serve --autopilot px4 --preset interceptor --local-port 14580 --remote-port 14550
    python -m sitl.video_server --autopilot-port 14550 --companion-port 14540 --http-port 8554 \\
        --scenario shahed_crossing --seed 3
    autonomy fly --config autonomy/runtime/configs/sitl.toml

This process sits on the MAVLink path between the simulated autopilot and the companion, as a MAVLink router
(mavlink-router, MAVProxy) does on a real vehicle: it forwards every datagram both ways unchanged, reads the
vehicle's pose from the telemetry it forwards, and adds the ground station's traffic (FOLLOW_TARGET cues,
the operator's MAV_CMD_USER_1 authorization after reading the companion's ``AUTH? track N cue M az A el E``
STATUSTEXT and looking along that bearing: a box on nothing or on a bird is refused, as in sitl.World).
It flies the scenario's targets on the autopilot's clock (``time_boot_ms``), renders the camera from the
vehicle's pose and serves it as ``http://127.0.0.1:PORT/camera.mjpg`` (multipart JPEG), which OpenCV's FFmpeg
backend, and so the companion's ordinary camera source, opens. Each frame is exposed at an attitude sample's
instant and carries that instant in its first rows (``autonomy.camera.stamp``; ``[camera] frame_stamp``): under
load the render + JPEG + HTTP delay varies by tens of ms, and a capture time guessed from the grab time was wrong
by that much (quick seeds 0-7: 4 of 8 intercepts, none on the first pass, before; 5 of 8, four on the first pass,
with the stamp, 2026-11-26). The router runs on its own thread, so that telemetry and setpoints do not wait out
a render. It prints ``READY ...`` once listening and
``RESULT {json}`` (intercept, miss distance) at the end; ``--result FILE`` writes the JSON too.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from autonomy.camera.stamp import write_frame_stamp
from autonomy.geometry import az_el_deg_to_los, ned_to_geodetic
from autonomy.mavlink.wire import dialect
from sitl.scenarios import FAMILIES, Scenario, make_scenario
from sitl.targets import Target, TargetSpec
from sitl.world import (
    OPERATOR_REFUSES,
    WorldConfig,
    class_on_line_of_sight,
    closest_approach_segment,
    heading_quat,
    render_kind,
    sim_camera,
)

MAV_CMD_USER_1 = 31010
HOST = "127.0.0.1"
OPERATOR_MATCH_RAD = WorldConfig.operator_match_rad   # the lockstep world's operator, the same eyes


def quick_scenario(seed: int = 0) -> Scenario:
    """A short engagement for real-time tests: a 2.5 m fixed wing crossing 700 m out at 25 m/s, 150 m AGL."""
    spec = TargetSpec("straight", (700.0, -150.0, -150.0), (0.0, 25.0, 0.0), "drone", 2.5)
    return Scenario("quick_crossing", seed, spec, operator_delay_s=0.5, t_max_s=60.0)


class _Mjpeg:
    """Newest JPEG for every HTTP client (multipart/x-mixed-replace)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.seq = 0
        self.stopped = False

    def publish(self, jpeg: bytes) -> None:
        with self.cond:
            self.jpeg, self.seq = jpeg, self.seq + 1
            self.cond.notify_all()


def _handler(stream: _Mjpeg):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a) -> None:
            pass

        def do_GET(self) -> None:
            if not self.path.startswith("/camera.mjpg"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            seen = -1
            try:
                while not stream.stopped:
                    with stream.cond:
                        stream.cond.wait_for(lambda s=seen: stream.seq != s or stream.stopped, timeout=1.0)
                        if stream.stopped:
                            return
                        if stream.seq == seen or stream.jpeg is None:
                            continue
                        seen, data = stream.seq, stream.jpeg
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                     + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                return

    return H


class RealtimeWorld:
    """See the module docstring. ``run()`` until the scenario ends or ``stop()``."""

    def __init__(self, sc: Scenario, autopilot_port: int, companion_port: int, http_port: int,
                 width_px: int = 1280, height_px: int = 720, fps: float = 30.0, tilt_up_deg: float = 45.0,
                 kill_radius_m: float = 1.5, jpeg_quality: int = 90, start_on_arm: bool = True) -> None:
        from sitl.render import Renderer, SceneParams

        self.sc = sc
        self.cam = sim_camera(width_px, height_px, 70.0, tilt_up_deg, fps)
        self.renderer = Renderer(self.cam, SceneParams(seed=sc.seed))
        self.rng = np.random.default_rng([sc.seed, 13])
        self.kill_radius_m = kill_radius_m
        self.start_on_arm = start_on_arm
        self.jpeg_quality = jpeg_quality
        self.s_ap = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s_ap.bind((HOST, autopilot_port))
        self.s_ap.setblocking(False)
        self.s_comp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s_comp.bind((HOST, 0))
        self.s_comp.setblocking(False)
        self.comp_addr = (HOST, companion_port)
        self.ap_addr: tuple[str, int] | None = None
        self.p_ap = dialect.MAVLink(None)
        self.p_ap.robust_parsing = True
        self.p_comp = dialect.MAVLink(None)
        self.p_comp.robust_parsing = True
        self.gcs = dialect.MAVLink(None, srcSystem=255, srcComponent=190)
        self.stream = _Mjpeg()
        self.http = ThreadingHTTPServer((HOST, http_port), _handler(self.stream))
        self.http.daemon_threads = True
        self.http_port = self.http.server_address[1]
        self._http_thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        # vehicle pose from telemetry (autopilot clock)
        self.t_ap_s: float | None = None
        # wall - autopilot time of recent telemetry: the lowest is the one read nearest its sending (this loop
        # is busy rendering for 20-40 ms at a time, and what arrives meanwhile is read late)
        self._wall_minus_ap: deque[float] = deque(maxlen=64)
        self.pos_ned_m: np.ndarray | None = None
        self.vel_ned_mps = np.zeros(3)
        self.q = np.array([1.0, 0, 0, 0])
        self.rate = np.zeros(3)
        self.t_att_s: float | None = None
        self.origin: tuple[float, float, float] | None = None
        self.armed = False
        # world
        self.targets = [Target(sc.target)] + [Target(s) for s in sc.clutter]
        self.t_world_s: float | None = None
        self.min_dist_m = math.inf
        self.killed = False
        self.t_kill_s: float | None = None
        self._cpa_after_kill = False
        self._prev_rel: np.ndarray | None = None
        self._t_start: float | None = None
        self._next_cue = 0.0
        self._cues: list = []
        self._asked: set[int] = set()
        self._op: list[tuple[float, int]] = []
        self.authorized: list[int] = []
        self._t_hb = -math.inf
        self.texts: list[str] = []
        self._stop = False
        self.frames = 0
        # the MAVLink router runs on its own thread (run()): routed through the render loop, telemetry and
        # setpoints waited out each 20-40 ms render; the lock guards the world's state between the two
        self._lock = threading.RLock()
        self._t_att_rendered: float | None = None
        self._t_att_wall_s = -math.inf          # when the newest attitude sample was read (wall clock)

    # -------------------------------------------------------------- MAVLink routing
    def _route(self) -> None:
        """The router thread: forward both ways as datagrams arrive, and take in the telemetry."""
        import select

        while not self._stop:
            try:
                ready, _, _ = select.select([self.s_ap, self.s_comp], [], [], 0.01)
            except (OSError, ValueError):   # sockets closed on the way out
                return
            if ready:
                with self._lock:
                    self._pump()

    def _send_comp(self, msg) -> None:
        self.s_comp.sendto(msg.pack(self.gcs), self.comp_addr)

    def _pump(self) -> None:
        while True:
            try:
                data, addr = self.s_ap.recvfrom(65535)
            except (BlockingIOError, OSError):
                break
            self.ap_addr = addr
            self.s_comp.sendto(data, self.comp_addr)
            for m in self.p_ap.parse_buffer(data) or []:
                self._on_ap(m)
        while True:
            try:
                data, _ = self.s_comp.recvfrom(65535)
            except (BlockingIOError, OSError):
                break
            if self.ap_addr is not None:
                self.s_ap.sendto(data, self.ap_addr)
            for m in self.p_comp.parse_buffer(data) or []:
                if m.get_type() == "STATUSTEXT":
                    self.texts.append(m.text)

    def _on_ap(self, m) -> None:
        t = m.get_type()
        if t == "LOCAL_POSITION_NED":
            self.pos_ned_m = np.array([m.x, m.y, m.z])
            self.vel_ned_mps = np.array([m.vx, m.vy, m.vz])
            self.t_ap_s = m.time_boot_ms * 1e-3
            self._wall_minus_ap.append(time.monotonic() - self.t_ap_s)
            self._advance(self.t_ap_s)
        elif t == "ATTITUDE_QUATERNION":
            self.q = np.array([m.q1, m.q2, m.q3, m.q4])
            self.rate = np.array([m.rollspeed, m.pitchspeed, m.yawspeed])
            self.t_att_s = m.time_boot_ms * 1e-3
            self._t_att_wall_s = time.monotonic()
            self._wall_minus_ap.append(self._t_att_wall_s - self.t_att_s)
        elif t in ("GPS_GLOBAL_ORIGIN", "HOME_POSITION") and self.origin is None:
            self.origin = (m.latitude * 1e-7, m.longitude * 1e-7, m.altitude * 1e-3)
        elif t == "HEARTBEAT" and m.get_srcComponent() == 1:
            self.armed = bool(m.base_mode & 128)

    # -------------------------------------------------------------- world on the autopilot clock
    def _advance(self, t_s: float) -> None:
        if self.t_world_s is None:
            self.t_world_s = t_s
            return
        dt = 0.01
        while self.t_world_s + dt <= t_s + 1e-9:
            if self._t_start is not None:
                for o in self.targets:
                    o.step(self.t_world_s - self._t_start, dt, self.pos_ned_m, self.rng)
            self.t_world_s += dt
        # after a kill, run on to the closest approach (the miss distance is the true miss, as in sitl.world)
        if self._t_start is not None and self.pos_ned_m is not None and not self._cpa_after_kill:
            rel = self.targets[0].pos_ned_m - self.pos_ned_m
            if self._prev_rel is not None:
                d, s = closest_approach_segment(self._prev_rel, rel)
                self.min_dist_m = min(self.min_dist_m, d)
                if d < self.kill_radius_m and self.sc.engageable and not self.killed:
                    self.killed, self.t_kill_s = True, t_s - self._t_start
                if self.killed and s < 1.0:
                    self._cpa_after_kill = True
            self._prev_rel = rel

    def _ground(self, now: float) -> None:
        if now - self._t_hb >= 1.0:
            self._t_hb = now
            hb = self.gcs.heartbeat_encode(6, 8, 0, 0, 4)
            self._send_comp(hb)
            if self.ap_addr is not None:  # a router delivers the ground station's heartbeat to the autopilot too
                self.s_ap.sendto(hb.pack(self.gcs), self.ap_addr)
        if self.origin is None or self.t_world_s is None:
            return
        if self._t_start is None:
            # the scenario (targets, cues) starts when the vehicle is known and, with start_on_arm, armed: the
            # companion arms only after its self-check (model and numba warm-up, camera, link), so its start-up
            # time is not taken out of the engagement (as in lockstep, where the world arms before the cue)
            if self.start_on_arm and not self.armed:
                self.texts.clear()
                return
            self._t_start = self.t_world_s
            print(f"START scenario t_ap={self.t_world_s:.2f} s", flush=True)
        t = self.t_world_s - self._t_start
        c = self.sc.cue
        if t >= self._next_cue:
            tg = self.targets[0]
            self._cues.append((t, tg.pos_ned_m + self.rng.normal(0, c.pos_std_m, 3),
                               tg.vel_ned_mps + self.rng.normal(0, c.vel_std_mps, 3)))
            self._next_cue = t + c.period_s
        while self._cues and self._cues[0][0] + c.latency_s <= t:
            _, p, v = self._cues.pop(0)
            lat, lon, alt = ned_to_geodetic(p, *self.origin)
            var = c.pos_std_m ** 2
            self._send_comp(self.gcs.follow_target_encode(int(t * 1000), 0, round(lat * 1e7),
                                                          round(lon * 1e7), alt, [float(x) for x in v],
                                                          [0.0] * 3, [1.0, 0, 0, 0], [0.0] * 3, [var] * 3,
                                                          1000 + self.sc.seed % 1000))
        for text in self.texts:
            w = text.split()
            if text.startswith("AUTH? track ") and len(w) >= 3:
                try:
                    tid = int(w[2])
                    aid = int(w[4]) if len(w) >= 5 and w[3] == "cue" else tid
                    los = az_el_deg_to_los(float(w[w.index("az") + 1]), float(w[w.index("el") + 1])) \
                        if "az" in w and "el" in w else None
                except (ValueError, IndexError):
                    continue
                if tid not in self._asked and self.sc.engageable and aid not in self.authorized:
                    self._asked.add(tid)
                    # the operator looks where the companion says the track is (as in sitl.World): a box on
                    # nothing or on a bird is refused
                    seen = class_on_line_of_sight(los, self.pos_ned_m, self.targets, OPERATOR_MATCH_RAD) \
                        if los is not None and self.pos_ned_m is not None else "drone"
                    if seen not in OPERATOR_REFUSES:
                        self._op.append((t + self.sc.operator_delay_s, aid))
        self.texts.clear()
        for ta, aid in list(self._op):
            if ta <= t:
                self._op.remove((ta, aid))
                self.authorized.append(aid)
                self._send_comp(self.gcs.command_long_encode(1, 191, MAV_CMD_USER_1, 0, 1.0, float(aid), 60.0,
                                                             0, 0, 0, 0))

    # -------------------------------------------------------------- camera
    def _scene_now(self) -> tuple[np.ndarray, np.ndarray, list, float]:
        """The camera's snapshot: vehicle, attitude and targets all at one instant on the autopilot clock.

        Telemetry arrives at 30-50 Hz and a render takes 20-40 ms on a small CPU, so the newest position, attitude
        and target states are each 0-50 ms old and of different ages; drawn as they are, the target sat up to a
        metre behind where it was relative to the vehicle, an error no real camera makes. The instant is the newest
        attitude sample's (the frame is then exposed with exactly the attitude the companion will look up for it;
        extrapolating the attitude by its body rate instead was wrong by up to a degree at terminal homing's
        angular accelerations, and the render loop waits for a fresh sample, see :meth:`run`); position (by
        velocity) and targets are brought to it, at most 0.1 s. Before any attitude: now on the autopilot clock,
        the wall clock minus the lowest recent (wall - autopilot) time of telemetry arrivals (the time a message
        is read is late by whatever the reader was doing when it came)."""
        from sitl.render import RenderTarget

        if self.pos_ned_m is None or self.t_ap_s is None:  # no telemetry yet: a camera on the ground, level
            pos, q, t_s, dt_tg = np.array([0.0, 0.0, -0.3]), self.q, self.t_world_s or 0.0, 0.0
        elif self.t_att_s is not None:
            t_s, q = self.t_att_s, self.q
            pos = self.pos_ned_m + self.vel_ned_mps * float(np.clip(t_s - self.t_ap_s, -0.1, 0.1))
            dt_tg = float(np.clip(t_s - (self.t_world_s or t_s), -0.1, 0.1)) if self._t_start is not None else 0.0
        else:
            t_s = min(max(time.monotonic() - min(self._wall_minus_ap), self.t_ap_s), self.t_ap_s + 0.1)
            pos = self.pos_ned_m + self.vel_ned_mps * (t_s - self.t_ap_s)
            q = self.q
            dt_tg = float(np.clip(t_s - (self.t_world_s or t_s), 0.0, 0.1)) if self._t_start is not None else 0.0
        tg = [RenderTarget(render_kind(o.spec), o.pos_ned_m + o.vel_ned_mps * dt_tg, heading_quat(o.vel_ned_mps))
              for o in self.targets]
        return pos, q, tg, t_s

    def _render(self) -> None:
        import cv2

        with self._lock:
            pos, q, tg, t_s = self._scene_now()
            rate = self.rate.copy()
            self._t_att_rendered = self.t_att_s
        fr = self.renderer.render(pos, q, tg, self.rng, t_s, rate_body_radps=rate)
        # the exposure instant on the autopilot clock, in the frame's first rows (the companion reads it with
        # [camera] frame_stamp = "autopilot_time"): the render + JPEG + HTTP delay varies with the CPU's load
        write_frame_stamp(fr.image, max(t_s, 0.0))
        ok, buf = cv2.imencode(".jpg", fr.image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        if ok:
            self.stream.publish(buf.tobytes())
            self.frames += 1

    # -------------------------------------------------------------- loop
    def stop(self) -> None:
        self._stop = True

    def run(self, max_wall_s: float = 600.0) -> dict:
        self._http_thread.start()
        print(f"READY video http://{HOST}:{self.http_port}/camera.mjpg mavlink {HOST}:{self.s_ap.getsockname()[1]}"
              f" -> {self.comp_addr[0]}:{self.comp_addr[1]}", flush=True)
        period = 1.0 / self.cam.fps
        router = threading.Thread(target=self._route, name="mavlink-router", daemon=True)
        router.start()
        w0 = time.monotonic()
        next_frame = w0
        t_done = None
        try:
            while not self._stop and time.monotonic() - w0 < max_wall_s:
                now = time.monotonic()
                with self._lock:
                    self._ground(now)
                    fresh = self.t_att_s != self._t_att_rendered and now - self._t_att_wall_s < 0.004
                # a frame is due: exposed at the next attitude sample as it comes in (50 Hz: the exposure is
                # then at most a few ms old when the render starts), or without one 40 ms late
                if now >= next_frame and (fresh or now >= next_frame + 0.04):
                    self._render()
                    next_frame = max(next_frame + period, now)
                with self._lock:
                    if self._t_start is not None and self.t_world_s is not None:
                        t = self.t_world_s - self._t_start
                        if (self.killed or t > self.sc.t_max_s) and t_done is None:
                            t_done = now
                if t_done is not None and now - t_done > 1.0:
                    break
                time.sleep(0.002)
        finally:
            self._stop = True
            router.join(timeout=1.0)
            self.stream.stopped = True
            with self.stream.cond:
                self.stream.cond.notify_all()
            self.http.shutdown()
            self.http.server_close()
            self.s_ap.close()
            self.s_comp.close()
        return {"scenario": self.sc.family, "seed": self.sc.seed, "intercept": bool(self.killed),
                "miss_distance_m": round(self.min_dist_m, 3),
                "t_intercept_s": None if self.t_kill_s is None else round(self.t_kill_s, 2),
                "authorized": self.authorized, "frames_served": self.frames}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sitl.video_server", description=__doc__.split("\n")[0])
    ap.add_argument("--autopilot-port", type=int, default=14550, help="UDP port the simulated autopilot sends to")
    ap.add_argument("--companion-port", type=int, default=14540, help="UDP port `autonomy fly` listens on")
    ap.add_argument("--http-port", type=int, default=8554)
    ap.add_argument("--scenario", default="quick", choices=["quick", *FAMILIES])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--max-wall-s", type=float, default=600.0)
    ap.add_argument("--result", default=None, help="write the result JSON here")
    ap.add_argument("--start-on", choices=["arm", "telemetry"], default="arm",
                    help="start the scenario clock when the vehicle is armed (default; the companion arms after "
                         "its self-check) or as soon as its telemetry arrives")
    a = ap.parse_args(argv)
    sc = quick_scenario(a.seed) if a.scenario == "quick" else make_scenario(a.scenario, a.seed)
    try:
        w = RealtimeWorld(sc, a.autopilot_port, a.companion_port, a.http_port, a.width, a.height, a.fps,
                          start_on_arm=a.start_on == "arm")
    except OSError as exc:
        print(f"video_server: cannot bind: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    signal.signal(signal.SIGINT, lambda *_: w.stop())
    res = w.run(a.max_wall_s)
    print("RESULT " + json.dumps(res), flush=True)
    if a.result:
        with open(a.result, "w") as fh:
            json.dump(res, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
