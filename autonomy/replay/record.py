"""The camera half of a replayable flight record: ``camera.mp4`` plus ``frames.csv`` (``frame,t_capture_s``:
each written frame's capture time on the .tlog's clock, i.e. the pipeline clock plus the link's
``tlog_clock_offset_s``). With the link's ``tlog_path`` in the same folder, ``autonomy replay DIR`` re-runs
the flight. Frames are written as they are processed (the newest-frame-wins stream, not the sensor's)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from autonomy.replay.logs import ReplayError


class CameraRecorder:
    def __init__(self, out_dir: str | Path, fps: float, clock_offset_s: float) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.clock_offset_s = float(clock_offset_s)
        self._writer = None
        self._size: tuple[int, int] | None = None
        self._csv = (self.dir / "frames.csv").open("w", newline="")
        self._rows = csv.writer(self._csv)
        self._rows.writerow(["frame", "t_capture_s"])
        self.frames = 0
        self.skipped = 0        # frames of another size than the first (a camera that changed mode)

    def write(self, image: np.ndarray, t_capture_s: float) -> None:
        import cv2

        img = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        h, w = img.shape[:2]
        if self._writer is None:
            self._size = (w, h)
            self._writer = cv2.VideoWriter(str(self.dir / "camera.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (w, h))
        if (w, h) != self._size:
            self.skipped += 1
            return
        self._writer.write(img)
        self._rows.writerow([self.frames, f"{t_capture_s + self.clock_offset_s:.6f}"])
        self.frames += 1
        if self.frames % 30 == 0:
            self._csv.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if not self._csv.closed:
            self._csv.close()


def read_frame_times(path: str | Path) -> np.ndarray:
    """Capture times (s, log clock) by frame index from a ``frame,t_capture_s`` CSV; a truncated last line
    (a recording cut by a power loss) is dropped. ReplayError (file and line) on anything else."""
    p = Path(path)
    if not p.is_file():
        raise ReplayError(f"frame-times file not found: {p}")
    text = p.read_text()
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]                 # the recorder ends every row with a newline: a cut row goes
    if not lines or [c.strip() for c in lines[0].split(",")] != ["frame", "t_capture_s"]:
        raise ReplayError(f"{p}: header must be 'frame,t_capture_s'")
    out = []
    for i, line in enumerate(lines[1:], start=2):
        parts = line.split(",")
        try:
            k, t = int(parts[0]), float(parts[1])
        except (IndexError, ValueError) as exc:
            raise ReplayError(f"{p}:{i}: bad row {line!r}") from exc
        if k != len(out) or not math.isfinite(t) or (out and t <= out[-1]):
            raise ReplayError(f"{p}:{i}: frames must be numbered 0, 1, ... with increasing finite times")
        out.append(t)
    if not out:
        raise ReplayError(f"{p}: no frames")
    return np.array(out)
