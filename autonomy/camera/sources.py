"""Frame sources: OpenCV capture (V4L2 device, file, RTSP/UDP stream, GStreamer pipeline), recorded video,
and anything else that yields frames with a capture time.

Every source returns :class:`Frame` objects whose ``t_capture_s`` is on the stack's clock. Live sources run
a grabber thread that keeps only the newest frame (the pipeline must never work through a backlog);
file sources replay at the file's frame rate on a log clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from autonomy.camera.model import CameraError
from autonomy.camera.stamp import read_frame_stamp
from autonomy.clock import Clock


@dataclass(frozen=True)
class Frame:
    image: np.ndarray      # HxWx3 uint8 BGR, or HxW uint8 for 1-channel (IR) cameras
    t_capture_s: float     # capture time on the stack's clock
    index: int             # 0-based frame counter of the source
    # the exposure instant on the autopilot's boot clock, when the frame carries it (autonomy.camera.stamp);
    # the flight loop maps it to the stack's clock through the link's clock mapping
    t_capture_autopilot_s: float | None = None


class FrameSource(Protocol):
    def read(self, timeout_s: float = 1.0) -> Frame | None:
        """The newest frame not yet returned, or None if none arrived within ``timeout_s``."""
        ...

    def close(self) -> None: ...


def parse_source_spec(spec: str | int) -> str | int:
    """'0' or 0 -> V4L2 device index; '/dev/video2' -> path; 'rtsp://...', 'udp://...', file paths as given;
    strings containing '!' are GStreamer pipelines."""
    if isinstance(spec, int):
        return spec
    s = spec.strip()
    if s.isdigit():
        return int(s)
    return s


def opencv_has_gstreamer() -> bool:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


def _open_capture(spec: str | int, api: int = cv2.CAP_ANY) -> cv2.VideoCapture:
    if isinstance(spec, str) and "!" in spec:
        if not opencv_has_gstreamer():
            raise CameraError(
                "this OpenCV build has no GStreamer support (opencv-python-headless wheels lack it); use a V4L2 "
                "device, a file or an RTSP URL, or an OpenCV built with GStreamer (as on JetPack)"
            )
        cap = cv2.VideoCapture(spec, cv2.CAP_GSTREAMER)
    else:
        if isinstance(spec, str) and "://" not in spec and not Path(spec).exists():
            raise CameraError(f"camera source not found: {spec}")
        cap = cv2.VideoCapture(spec, api)
    if not cap.isOpened():
        cap.release()
        raise CameraError(f"cannot open camera source {spec!r}")
    return cap


class VideoFileSource:
    """A recorded video, frames stamped ``t0_s + index / fps`` (log clock). Reads every frame in order."""

    def __init__(self, path: str | Path, t0_s: float = 0.0, fps: float | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise CameraError(f"video file not found: {self.path}")
        self._cap = _open_capture(str(self.path))
        file_fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = float(fps or (file_fps if file_fps > 0 else 30.0))
        self.t0_s = float(t0_s)
        self._index = 0

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        ok, img = self._cap.read()
        if not ok or img is None:
            return None
        f = Frame(img, self.t0_s + self._index / self.fps, self._index)
        self._index += 1
        return f

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f

    def close(self) -> None:
        self._cap.release()


V4L2_MAX_AGE_S = 1.0   # a V4L2 buffer time older than this at the grab (or in the future) is not believed
FRAME_STAMPS = ("none", "v4l2", "autopilot_time")   # where a live frame's capture time comes from (LiveCaptureSource)


def v4l2_capture_time_s(buffer_ms: float, monotonic_now_s: float, clock_now_s: float,
                        latency_s: float = 0.0) -> float | None:
    """A V4L2 buffer's timestamp (``buffer_ms``, CLOCK_MONOTONIC in ms, as OpenCV's V4L2 backend returns it for
    ``CAP_PROP_POS_MSEC``) on the stack's clock, given both clocks read together at the grab; ``latency_s`` is
    the exposure-to-timestamp delay (0 for start-of-exposure stamps; the readout for end-of-frame ones).
    None when the result is in the future or older than :data:`V4L2_MAX_AGE_S` (a driver whose timestamps
    are not on CLOCK_MONOTONIC, or none at all)."""
    age_s = monotonic_now_s - (buffer_ms * 1e-3 - latency_s)
    if not (buffer_ms > 0.0 and -1e-3 <= age_s <= V4L2_MAX_AGE_S):
        return None
    return clock_now_s - max(age_s, 0.0)


class LiveCaptureSource:
    """A live OpenCV capture with a grabber thread: only the newest frame is kept (newest frame wins).

    ``frame_stamp`` says where the capture time comes from (see ``[camera] frame_stamp``):

    - ``"none"``: ``t_capture_s`` is the clock time when the grab returned, minus ``latency_s`` (the
      sensor-to-driver delay measured for the camera, from config); only as good as that delay is steady.
    - ``"v4l2"``: the driver's buffer timestamp (:func:`v4l2_capture_time_s`; ``latency_s`` is then the
      exposure-to-timestamp delay); the source must open with OpenCV's V4L2 backend (a /dev/video device).
    - ``"autopilot_time"``: the frames carry their exposure instant on the autopilot's clock in their first rows
      (:mod:`autonomy.camera.stamp`, the simulator's real-time camera): read into ``Frame.t_capture_autopilot_s``
      (the band painted over), which the flight loop maps through the link's clock.

    A frame without the expected stamp falls back to the first rule and is counted in ``unstamped_frames``.
    """

    def __init__(self, spec: str | int, clock: Clock, latency_s: float = 0.0, frame_stamp: str = "none") -> None:
        if frame_stamp not in FRAME_STAMPS:
            raise CameraError(f"unknown frame_stamp {frame_stamp!r} ({', '.join(FRAME_STAMPS)})")
        spec_p = parse_source_spec(spec)
        v4l2_dev = frame_stamp == "v4l2" and (isinstance(spec_p, int) or str(spec_p).startswith("/dev/video"))
        self._cap = _open_capture(spec_p, cv2.CAP_V4L2 if v4l2_dev else cv2.CAP_ANY)
        if frame_stamp == "v4l2" and self._cap.getBackendName() != "V4L2":
            backend = self._cap.getBackendName()
            self._cap.release()
            raise CameraError(f'frame_stamp = "v4l2" needs a V4L2 device (/dev/videoN); {spec!r} opened with '
                              f"OpenCV's {backend} backend")
        self._clock = clock
        self._latency_s = latency_s
        self._frame_stamp = frame_stamp
        self.unstamped_frames = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._returned_index = -1
        self._count = 0
        self._stopped = False
        self.dropped_frames = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="camera-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            ok, img = self._cap.read()
            now = self._clock.now_s()
            t = now - self._latency_s
            stamp_ok = self._frame_stamp == "none"
            if self._frame_stamp == "v4l2" and ok:
                t_v = v4l2_capture_time_s(float(self._cap.get(cv2.CAP_PROP_POS_MSEC)), time.monotonic(), now,
                                          self._latency_s)
                stamp_ok = t_v is not None
                t = t_v if t_v is not None else t
            if not ok or img is None:
                with self._cond:
                    self.error = "camera stopped delivering frames"
                    self._cond.notify_all()
                return
            t_ap = read_frame_stamp(img) if self._frame_stamp == "autopilot_time" else None
            stamp_ok = stamp_ok or t_ap is not None
            with self._cond:
                if not stamp_ok:
                    self.unstamped_frames += 1
                if self._latest is not None and self._latest.index > self._returned_index:
                    self.dropped_frames += 1
                self._latest = Frame(img, t, self._count, t_ap)
                self._count += 1
                self._cond.notify_all()

    def read(self, timeout_s: float = 1.0) -> Frame | None:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (self._latest is not None and self._latest.index > self._returned_index)
                or self.error is not None or self._stopped,
                timeout=timeout_s,
            )
            if not ok or self._latest is None or self._latest.index <= self._returned_index:
                return None
            self._returned_index = self._latest.index
            return self._latest

    def close(self) -> None:
        self._stopped = True
        self._thread.join(timeout=2.0)
        self._cap.release()
