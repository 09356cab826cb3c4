"""Flight recorder: every step of the pipeline as JSON lines, replayable and greppable.

One record per line: ``{"t_s": float, "kind": str, ...payload}``. Kinds used by the stack: ``state``,
``detections``, ``tracks``, ``decision`` (engagement transitions with reasons), ``setpoint``, ``command``,
``event`` (autopilot notices), ``latency``. NumPy arrays become lists. The file is flushed every
``flush_every`` records and on close, so a crash loses at most that many records; a reader tolerates a
truncated last line (a power cut mid-write) and reports it instead of failing.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np


class RecorderError(RuntimeError):
    pass


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.dtype.kind == "f" else x.tolist()
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, enum.Enum):
        return x.value
    if is_dataclass(x) and not isinstance(x, type):
        return {k: _jsonable(v) for k, v in asdict(x).items()}
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


class FlightRecorder:
    def __init__(self, path: str | Path, flush_every: int = 50) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("w", encoding="utf-8")
        self._flush_every = flush_every
        self._pending = 0
        self.count = 0

    def write(self, t_s: float, kind: str, **payload: Any) -> None:
        rec = {"t_s": float(t_s), "kind": kind}
        rec.update({k: _jsonable(v) for k, v in payload.items()})
        self._f.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.count += 1
        self._pending += 1
        if self._pending >= self._flush_every:
            self._f.flush()
            self._pending = 0

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | Path, kinds: set[str] | None = None) -> Iterator[dict]:
    """Yield records in order. A truncated final line is skipped (with a RecorderError for any other bad line)."""
    path = Path(path)
    if not path.is_file():
        raise RecorderError(f"flight record not found: {path}")
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    last = len(lines) - 1
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            if i >= last - 1 and not line.endswith("}"):
                return  # truncated tail from an interrupted write: everything before it is intact
            raise RecorderError(f"{path}:{i + 1}: corrupt record: {exc}") from exc
        if kinds is None or rec.get("kind") in kinds:
            yield rec
