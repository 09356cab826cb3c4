"""Multi-target tracker in inertial line-of-sight space: the validating API over :mod:`._kernels`.

One ``Tracker.step(detections, q_body_to_ned, t_s)`` runs, inside a single compiled call, the short chain
of parts (DESIGN.md section 4, after Stone Soup's ``tracker/simple.py``):

    measure (pixels -> NED LOS, ln size)  ->  predict (CV or CA, dt from capture times)
    ->  gate (Mahalanobis, chi-square)  ->  associate (optimal assignment with a priced miss)
    ->  update (Joseph-form Kalman)  ->  initiate (unused confident detections)
    ->  lifecycle (tentative -> confirmed -> coasting -> deleted)  ->  re-centre the tangent frames

Each part is a kernel in ``_kernels.py`` with a NumPy twin in ``_reference.py``. Tracks are kept in
fixed-capacity, per-field arrays; ids come from a per-instance counter.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterator

import numpy as np

from autonomy.camera.model import Camera
from autonomy.tracking import _kernels as K
from autonomy.types import Detections, TargetTrack, TrackStatus

_STATUS = {K.TENTATIVE: TrackStatus.TENTATIVE, K.CONFIRMED: TrackStatus.CONFIRMED,
           K.COASTING: TrackStatus.COASTING}


class TrackingError(ValueError):
    """Bad input to the tracker (malformed detections, attitude, time going backwards, bad config)."""


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters; times in seconds, angles in radians (units in the names).

    ``q_ang`` is the spectral density of the white acceleration (CV, rad^2/s^3) or white jerk (CA,
    rad^2/s^5) of the line-of-sight tangent coordinates; ``q_logsize`` the same for ln(angular size).
    """

    motion_model: str = "cv"            # "cv" or "ca"
    capacity: int = 128                 # maximum simultaneous tracks
    sigma_centre_px: float = 1.0        # centre noise floor (1-sigma, px)
    sigma_centre_frac: float = 0.06     # plus this fraction of the box diagonal
    sigma_logsize: float = 0.15         # noise of ln(size)
    q_ang: float = 0.05                 # rad^2/s^3 (CV) or rad^2/s^5 (CA)
    q_logsize: float = 0.5              # 1/s^3 (CV) or 1/s^5 (CA)
    gate_chi2: float = 16.27            # 3-dof chi-square, p = 0.999
    confirm_hits: int = 3
    max_tentative_misses: int = 2
    max_coast_s: float = 1.0
    min_score: float = 0.1              # detections below are ignored
    init_score: float = 0.3             # detections at/above may start tracks
    init_rate_std_radps: float = 0.3
    init_logsize_rate_std_ps: float = 0.5
    init_acc_std_radps2: float = 0.5
    score_alpha: float = 0.3
    aspect_alpha: float = 0.2
    max_los_std_rad: float = 0.15

    def __post_init__(self) -> None:
        if self.motion_model not in ("cv", "ca"):
            raise TrackingError(f"motion_model must be 'cv' or 'ca', got {self.motion_model!r}")
        if not 1 <= self.capacity <= 4096:
            raise TrackingError(f"capacity must be in [1, 4096], got {self.capacity}")
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not (math.isfinite(v) and v >= 0.0):
                raise TrackingError(f"{f.name} must be finite and >= 0, got {v}")
        if self.sigma_centre_px <= 0 or self.sigma_logsize <= 0 or self.q_ang <= 0 or self.q_logsize <= 0:
            raise TrackingError("noise parameters must be positive")
        if self.confirm_hits < 1 or self.max_tentative_misses < 1:
            raise TrackingError("confirm_hits and max_tentative_misses must be >= 1")
        if self.gate_chi2 <= 0:
            raise TrackingError("gate_chi2 must be positive")

    @property
    def order(self) -> int:
        return 2 if self.motion_model == "cv" else 3

    def pack(self) -> np.ndarray:
        """The float64 vector the kernels read (slots named ``_kernels.C_*``)."""
        c = np.zeros(K.N_CFG)
        c[K.C_SIGMA_PX] = self.sigma_centre_px
        c[K.C_SIGMA_FRAC] = self.sigma_centre_frac
        c[K.C_SIGMA_LOGSIZE] = self.sigma_logsize
        c[K.C_Q_ANG] = self.q_ang
        c[K.C_Q_LOGSIZE] = self.q_logsize
        c[K.C_GATE_D2] = self.gate_chi2
        c[K.C_CONFIRM_HITS] = self.confirm_hits
        c[K.C_MAX_TENT_MISSES] = self.max_tentative_misses
        c[K.C_MAX_COAST_S] = self.max_coast_s
        c[K.C_MIN_SCORE] = self.min_score
        c[K.C_INIT_SCORE] = self.init_score
        c[K.C_INIT_RATE_STD] = self.init_rate_std_radps
        c[K.C_INIT_LOGRATE_STD] = self.init_logsize_rate_std_ps
        c[K.C_INIT_ACC_STD] = self.init_acc_std_radps2
        c[K.C_SCORE_ALPHA] = self.score_alpha
        c[K.C_ASPECT_ALPHA] = self.aspect_alpha
        c[K.C_MAX_POS_STD] = self.max_los_std_rad
        c[K.C_ORDER] = self.order
        c[K.C_MISS_COST] = self.gate_chi2
        return c

    @classmethod
    def from_toml(cls, path: str | Path) -> "TrackerConfig":
        """Read ``[tracker]`` (or the top level) of a TOML file; unknown keys are an error."""
        try:
            doc = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise TrackingError(f"{path}: {exc}") from exc
        d = doc.get("tracker", doc)
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise TrackingError(f"{path}: unknown tracker keys {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class SelectionPolicy:
    """Threat ranking for :meth:`Tracker.select_target`.

    threat = w_closing_s * d ln(size)/dt  (apparent growth = closing, 1/s)
           + w_centre * cos(angle from the boresight)  + w_size * ln(angular size)
    Only CONFIRMED (and, for the current one, COASTING) tracks of ``allowed_classes`` are eligible;
    the current selection is kept unless another exceeds it by ``hysteresis``.
    """

    allowed_classes: tuple[str, ...] = ("drone",)
    w_closing_s: float = 2.0
    w_centre: float = 1.0
    w_size: float = 0.2
    hysteresis: float = 0.5
    keep_coasting: bool = True


class TrackList(Sequence):
    """The tracks of one step: a read-only sequence of :class:`TargetTrack`, built on access.

    Holds its own arrays (a snapshot), so later steps do not change it. ``ids``, ``status_codes``,
    ``los_ned``, ``boxes_xyxy_px`` give array access without building objects."""

    __slots__ = ("t_s", "ids", "status_codes", "los_ned", "los_rate_ned_radps", "los_cov", "angular_size_rad",
                 "boxes_xyxy_px", "age_s", "hits", "misses", "class_names", "score", "_items")

    def __init__(self, t_s, ids, status_codes, los, rate, cov, size, boxes, age, hits, misses, class_names,
                 score):
        self.t_s = t_s
        self.ids = ids
        self.status_codes = status_codes
        self.los_ned = los
        self.los_rate_ned_radps = rate
        self.los_cov = cov
        self.angular_size_rad = size
        self.boxes_xyxy_px = boxes
        self.age_s = age
        self.hits = hits
        self.misses = misses
        self.class_names = class_names
        self.score = score
        self._items: list[TargetTrack | None] = [None] * len(ids)

    def __len__(self) -> int:
        return len(self._items)

    def _make(self, k: int) -> TargetTrack:
        return TargetTrack(
            track_id=int(self.ids[k]), t_s=self.t_s, status=_STATUS[int(self.status_codes[k])],
            los_ned=self.los_ned[k], los_rate_ned_radps=self.los_rate_ned_radps[k], los_cov=self.los_cov[k],
            angular_size_rad=float(self.angular_size_rad[k]), class_name=self.class_names[k],
            score=float(self.score[k]), box_xyxy_px=self.boxes_xyxy_px[k], age_s=float(self.age_s[k]),
            hits=int(self.hits[k]), misses=int(self.misses[k]),
        )

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        t = self._items[k]
        if t is None:
            t = self._items[k] = self._make(k)
        return t

    def __iter__(self) -> Iterator[TargetTrack]:
        for k in range(len(self)):
            yield self[k]

    def __repr__(self) -> str:
        return f"TrackList(t_s={self.t_s}, n={len(self)}, ids={self.ids.tolist()})"


class Tracker:
    """Multi-target tracker; see the module docstring. Not thread-safe (one instance per camera)."""

    def __init__(self, config: TrackerConfig, camera: Camera) -> None:
        if not isinstance(config, TrackerConfig):
            raise TrackingError("config must be a TrackerConfig")
        if not isinstance(camera, Camera):
            raise TrackingError("camera must be an autonomy.camera.model.Camera")
        self.config = config
        self.camera = camera
        n, d = config.capacity, 3 * config.order
        self._cfg = config.pack()
        ci = camera.intrinsics
        self._intr = np.array([ci.fx_px, ci.fy_px, ci.cx_px, ci.cy_px, *ci.dist_coeffs], dtype=np.float64)
        self._r_body_cam = np.ascontiguousarray(camera.mount.r_body_from_cam, dtype=np.float64)
        self._x = np.zeros((n, d))
        self._p = np.zeros((n, d, d))
        self._basis = np.zeros((n, 3, 3))
        self._status = np.zeros(n, dtype=np.int64)
        self._id = np.zeros(n, dtype=np.int64)
        self._hits = np.zeros(n, dtype=np.int64)
        self._misses = np.zeros(n, dtype=np.int64)
        self._t_first = np.zeros(n)
        self._t_last_hit = np.zeros(n)
        self._t_state = np.zeros(n)
        self._score = np.zeros(n)
        self._votes = np.zeros((n, K.MAX_CLASSES))
        self._aspect = np.zeros(n)
        self._box_last = np.zeros((n, 4))
        self._det4slot = np.full(n, -1, dtype=np.int64)
        self._dropped = np.zeros(1, dtype=np.int64)
        self._next_id = 1
        self._t_last: float | None = None
        self._q_last = np.array([1.0, 0.0, 0.0, 0.0])
        self._class_names: tuple[str, ...] = ("drone",)
        self._selected_id: int | None = None
        self.dropped_tracks = 0   # new tracks not started because capacity was full (cumulative)
        self.last_tracks: TrackList | None = None

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_q(q_body_to_ned) -> np.ndarray:
        q = np.asarray(q_body_to_ned, dtype=np.float64)
        if q.shape != (4,):
            raise TrackingError(f"q_body_to_ned must have shape (4,), got {q.shape}")
        nq = math.sqrt(float(q @ q))
        if not (math.isfinite(nq) and nq > 1e-6):
            raise TrackingError(f"q_body_to_ned must be finite and non-zero, got {q}")
        return q if q.flags.c_contiguous else np.ascontiguousarray(q)

    def _check_t(self, t_s: float) -> float:
        t = float(t_s)
        if not math.isfinite(t):
            raise TrackingError(f"t_s must be finite, got {t_s}")
        if self._t_last is not None and t < self._t_last:
            raise TrackingError(f"t_s went backwards: {t} < {self._t_last}")
        return t

    # ------------------------------------------------------------------ the cycle
    def step(self, detections: Detections, q_body_to_ned, t_s: float) -> TrackList:
        """Process one frame; returns the live (non-deleted) tracks at ``t_s`` as a :class:`TrackList`.

        ``detections``: boxes in pixels of the camera this tracker was built with; ``q_body_to_ned``:
        vehicle attitude [w, x, y, z] at the frame's capture; ``t_s``: capture time, seconds, never
        decreasing (frame intervals may vary and frames may be dropped)."""
        if not isinstance(detections, Detections):
            raise TrackingError("detections must be an autonomy.types.Detections")
        q = self._check_q(q_body_to_ned)
        t = self._check_t(t_s)
        xyxy = detections.xyxy_px
        if xyxy.dtype != np.float64 or not xyxy.flags.c_contiguous:
            xyxy = np.ascontiguousarray(xyxy, dtype=np.float64)
        scores = detections.scores
        if scores.dtype != np.float64:
            scores = scores.astype(np.float64)
        cls = detections.class_ids
        if cls.dtype != np.int64:
            cls = cls.astype(np.int64)
        if len(detections.class_names) > K.MAX_CLASSES:
            raise TrackingError(f"at most {K.MAX_CLASSES} classes are supported")
        rc = K.step(self._x, self._p, self._basis, self._status, self._id, self._hits, self._misses,
                    self._t_first, self._t_last_hit, self._t_state, self._score, self._votes, self._aspect,
                    self._box_last, xyxy, scores, cls, len(detections.class_names), q, self._r_body_cam, self._intr, self._cfg, t,
                    self._next_id, self._det4slot, self._dropped)
        if rc < 0:
            msg = {-1: "non-finite detection box", -2: "detection box with x2 <= x1 or y2 <= y1",
                   -3: "class id outside class_names"}[int(rc)]
            raise TrackingError(msg)
        self._next_id = int(rc)
        self.dropped_tracks += int(self._dropped[0])
        self._t_last = t
        self._q_last = q
        self._class_names = detections.class_names
        self.last_tracks = self._export(q, t)
        return self.last_tracks

    def _export(self, q: np.ndarray, t: float) -> TrackList:
        n = self.config.capacity
        los = np.empty((n, 3))
        rate = np.empty((n, 3))
        cov = np.empty((n, 3, 3))
        size = np.empty(n)
        box = np.empty((n, 4))
        slots = np.empty(n, dtype=np.int64)
        k = K.export(self._x, self._p, self._basis, self._status, self._aspect, q, self._r_body_cam, self._intr,
                     los, rate, cov, size, box, slots)
        s = slots[:k]
        names = self._class_names
        cls_idx = self._votes[s].argmax(axis=1)
        cls_names = [names[c] if c < len(names) else str(c) for c in cls_idx]
        return TrackList(t, self._id[s], self._status[s], los[:k], rate[:k], cov[:k], size[:k], box[:k],
                         t - self._t_first[s], self._hits[s], self._misses[s], cls_names, self._score[s])

    # ------------------------------------------------------------------ queries
    def associations(self) -> dict[int, int]:
        """track id -> index of the detection it used in the last step (updates and new tracks)."""
        live = np.flatnonzero((self._status != K.FREE) & (self._det4slot >= 0))
        return {int(self._id[i]): int(self._det4slot[i]) for i in live}

    def _slot(self, track_id: int) -> int | None:
        hit = np.flatnonzero((self._id == track_id) & (self._status != K.FREE))
        return int(hit[0]) if len(hit) else None

    def predict_box(self, track_id: int, q_body_to_ned, t_s: float) -> np.ndarray | None:
        """Predicted image box (xyxy px) of a live track at ``t_s`` seen with attitude ``q_body_to_ned``,
        for the detector's ROI re-detection; None if the track is unknown or the LOS is behind the camera.
        The tracker's state is not changed."""
        q = self._check_q(q_body_to_ned)
        t = float(t_s)
        if not math.isfinite(t):
            raise TrackingError(f"t_s must be finite, got {t_s}")
        i = self._slot(track_id)
        if i is None:
            return None
        x = self._x[i:i + 1].copy()
        p = self._p[i:i + 1].copy()
        dt = np.array([max(0.0, t - self._t_state[i])])
        K.predict_batch(x, p, np.zeros(1, dtype=np.int64), dt, self.config.order, self._cfg[K.C_Q_ANG],
                        self._cfg[K.C_Q_LOGSIZE])
        st = np.array([K.CONFIRMED], dtype=np.int64)
        los, rate, size, box = np.empty((1, 3)), np.empty((1, 3)), np.empty(1), np.empty((1, 4))
        cov = np.empty((1, 3, 3))
        slots = np.empty(1, dtype=np.int64)
        K.export(x, p, self._basis[i:i + 1].copy(), st, self._aspect[i:i + 1].copy(), q, self._r_body_cam,
                 self._intr, los, rate, cov, size, box, slots)
        return None if not np.all(np.isfinite(box[0])) else box[0]

    def select_target(self, policy: SelectionPolicy | None = None) -> TargetTrack | None:
        """Highest-threat eligible track of the last step, sticky to the current choice (see
        :class:`SelectionPolicy`). Never returns a track whose class is not in ``allowed_classes``."""
        pol = policy or SelectionPolicy()
        tl = self.last_tracks
        if tl is None or len(tl) == 0:
            self._selected_id = None
            return None
        boresight = self.camera.r_ned_from_cam(self._q_last)[:, 2]
        best_k, best_threat, cur_k, cur_threat = -1, -np.inf, -1, -np.inf
        for k in range(len(tl)):
            if tl.class_names[k] not in pol.allowed_classes:
                continue
            code = int(tl.status_codes[k])
            is_cur = int(tl.ids[k]) == self._selected_id
            if not (code == K.CONFIRMED or (is_cur and pol.keep_coasting and code == K.COASTING)):
                continue
            i = self._slot(int(tl.ids[k]))
            growth = float(self._x[i, 5])
            threat = (pol.w_closing_s * growth + pol.w_centre * float(tl.los_ned[k] @ boresight)
                      + pol.w_size * math.log(max(float(tl.angular_size_rad[k]), 1e-9)))
            if is_cur:
                cur_k, cur_threat = k, threat
            if threat > best_threat:
                best_k, best_threat = k, threat
        if best_k < 0:
            self._selected_id = None
            return None
        if cur_k >= 0 and best_threat < cur_threat + pol.hysteresis:
            best_k = cur_k
        self._selected_id = int(tl.ids[best_k])
        return tl[best_k]

    @property
    def selected_id(self) -> int | None:
        return self._selected_id
