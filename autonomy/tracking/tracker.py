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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

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

    Defaults were chosen by a small sweep on the evaluation sets of :mod:`autonomy.tracking.evaluate`
    (noise model, gate, process noise, tentative penalty); re-tune for a new detector.

    ``w_logdet`` weighs the log-determinant term of the association cost of confirmed/coasting tracks
    (``_kernels.gate_cost``): 1 is the Gaussian negative log-likelihood, 0 plain Mahalanobis. 0.75 was
    picked from {0.25, 0.5, 0.75, 1} on the evaluation sets (seed 0; seed 1 agrees): 1 costs the synthetic
    scenes MOTA/IDF1, 0.25-0.5 leave Svanström IR IDF1 a hair lower than 0.

    ``q_ang`` is the spectral density of the white acceleration (CV, rad^2/s^3) or white jerk (CA,
    rad^2/s^5) of the line-of-sight tangent coordinates; ``q_logsize`` the same for ln(angular size).

    Class: each hit adds its detection score to its class's vote; votes fade as exp(-dt / class_memory_s).
    A tentative track reports the argmax; a confirmed one keeps its class until another class's votes exceed
    ``class_switch_ratio`` x its own (``_kernels.class_estimate``). With the defaults a single-frame (or
    sub-second) flicker never re-labels a confirmed track, while about 3.3 s of consistent other-class
    evidence does. Why: the engagement machine drops a track whose class is a confuser, and the shipped
    model calls a small quad "bird" in 30-50 % of frames at some ranges.

    ``drop_coasting_duplicates``: a coasting track whose LOS lies within the angular extent (or the 3-sigma
    position gate) of a confirmed track updated in the same step is deleted as a duplicate of that object. Off
    by default (the evaluation sets were tuned without it); on in the simulator config, where a long coast
    (``max_coast_s``) otherwise left the engagement homing on a stale duplicate while the live track had the
    detections. Cost: a real second target hidden behind the first for a moment loses its track. Only a live
    track whose angular size is within ``dup_max_size_ratio`` of the coasting one's counts: in the simulator a
    ~30 px target that missed one detection while the vehicle rolled was deleted because it lay inside the
    extent of a ~300 px ground-clutter box, and the engagement then re-associated to the clutter.
    """

    motion_model: str = "cv"            # "cv" or "ca"
    capacity: int = 128                 # maximum simultaneous tracks
    sigma_centre_px: float = 1.0        # centre noise floor (1-sigma, px)
    sigma_centre_frac: float = 0.1      # plus this fraction of the box diagonal
    sigma_logsize: float = 0.25         # noise of ln(size)
    q_ang: float = 0.03                 # rad^2/s^3 (CV) or rad^2/s^5 (CA)
    q_logsize: float = 0.5              # 1/s^3 (CV) or 1/s^5 (CA)
    gate_chi2: float = 16.27            # 3-dof chi-square, p = 0.999
    confirm_hits: int = 3
    max_tentative_misses: int = 2
    max_coast_s: float = 1.0
    min_score: float = 0.1              # detections below are ignored
    init_score: float = 0.7             # detections at/above may start tracks (lower ones only update)
    init_rate_std_radps: float = 0.3
    init_logsize_rate_std_ps: float = 0.5
    init_acc_std_radps2: float = 0.5
    score_alpha: float = 0.3
    aspect_alpha: float = 0.2
    max_los_std_rad: float = 0.15
    tentative_penalty: float = 8.0      # added to a tentative track's squared Mahalanobis costs
    w_logdet: float = 0.75              # established tracks' cost d^2 + w_logdet * ln(det S / det R)
    class_memory_s: float = 3.0         # class votes fade with this time constant (0: never forget)
    class_switch_ratio: float = 2.0     # a confirmed track changes class only on this much more evidence
    drop_coasting_duplicates: bool = False  # delete a coasting track lying on a confirmed one updated this frame
    dup_max_size_ratio: float = 3.0     # ... of an angular size within this factor of its own

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
        if self.dup_max_size_ratio < 1.0:
            raise TrackingError(f"dup_max_size_ratio must be >= 1, got {self.dup_max_size_ratio}")
        if self.class_switch_ratio < 1.0:
            raise TrackingError(f"class_switch_ratio must be >= 1, got {self.class_switch_ratio}")

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
        c[K.C_TENT_PENALTY] = self.tentative_penalty
        c[K.C_W_LOGDET] = self.w_logdet
        c[K.C_CLASS_TAU_S] = self.class_memory_s
        c[K.C_CLASS_SWITCH] = self.class_switch_ratio
        c[K.C_DROP_DUP_COAST] = 1.0 if self.drop_coasting_duplicates else 0.0
        c[K.C_DUP_SIZE_RATIO] = self.dup_max_size_ratio
        return c

    @classmethod
    def from_toml(cls, path: str | Path) -> TrackerConfig:
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

    Owns its arrays (a snapshot): later steps do not change it. Array views without building objects:
    ``ids``, ``status_codes``, ``los_ned`` (n, 3), ``los_rate_ned_radps`` (n, 3), ``los_cov`` (n, 3, 3),
    ``angular_size_rad`` (n,), ``boxes_xyxy_px`` (n, 4), ``growth_ps`` (n,) d ln(size)/dt in 1/s."""

    __slots__ = ("_f", "_i", "_items", "_n", "_names", "t_s")

    def __init__(self, t_s: float, out_f: np.ndarray, out_i: np.ndarray, n: int, names: tuple[str, ...]):
        self.t_s = t_s
        self._f = out_f
        self._i = out_i
        self._n = n
        self._names = names
        self._items: list[TargetTrack | None] = [None] * n

    ids = property(lambda self: self._i[:self._n, K.OI_ID])
    status_codes = property(lambda self: self._i[:self._n, K.OI_STATUS])
    hits = property(lambda self: self._i[:self._n, K.OI_HITS])
    misses = property(lambda self: self._i[:self._n, K.OI_MISSES])
    los_ned = property(lambda self: self._f[:self._n, K.O_LOS:K.O_LOS + 3])
    los_rate_ned_radps = property(lambda self: self._f[:self._n, K.O_RATE:K.O_RATE + 3])
    los_cov = property(lambda self: self._f[:self._n, K.O_COV:K.O_COV + 9].reshape(-1, 3, 3))
    angular_size_rad = property(lambda self: self._f[:self._n, K.O_SIZE])
    boxes_xyxy_px = property(lambda self: self._f[:self._n, K.O_BOX:K.O_BOX + 4])
    age_s = property(lambda self: self._f[:self._n, K.O_AGE])
    score = property(lambda self: self._f[:self._n, K.O_SCORE])
    growth_ps = property(lambda self: self._f[:self._n, K.O_GROWTH])

    def class_name(self, k: int) -> str:
        c = int(self._i[k, K.OI_CLASS])
        return self._names[c] if c < len(self._names) else str(c)

    def __len__(self) -> int:
        return self._n

    def _make(self, k: int) -> TargetTrack:
        f, i = self._f[k], self._i[k]
        return TargetTrack(
            track_id=int(i[K.OI_ID]), t_s=self.t_s, status=_STATUS[int(i[K.OI_STATUS])],
            los_ned=f[K.O_LOS:K.O_LOS + 3], los_rate_ned_radps=f[K.O_RATE:K.O_RATE + 3],
            los_cov=f[K.O_COV:K.O_COV + 9].reshape(3, 3), angular_size_rad=float(f[K.O_SIZE]),
            class_name=self.class_name(k), score=float(f[K.O_SCORE]), box_xyxy_px=f[K.O_BOX:K.O_BOX + 4],
            age_s=float(f[K.O_AGE]), hits=int(i[K.OI_HITS]), misses=int(i[K.OI_MISSES]),
        )

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(self._n))]
        if k < 0:
            k += self._n
        if not 0 <= k < self._n:
            raise IndexError(k)
        t = self._items[k]
        if t is None:
            t = self._items[k] = self._make(k)
        return t

    def __iter__(self) -> Iterator[TargetTrack]:
        for k in range(self._n):
            yield self[k]

    def __repr__(self) -> str:
        return f"TrackList(t_s={self.t_s}, n={self._n}, ids={self.ids.tolist()})"


_ERRORS = {-1: "non-finite detection box", -2: "detection box with x2 <= x1 or y2 <= y1",
           -3: "class id outside class_names (or more than 16 classes)",
           -5: "q_body_to_ned must be finite and non-zero"}


class Tracker:
    """Multi-target tracker; see the module docstring. Not thread-safe (one instance per camera)."""

    def __init__(self, config: TrackerConfig, camera: Camera, warmup: bool = True) -> None:
        """``warmup``: run the compiled kernels once on scratch data now (tens of ms with a warm numba
        cache) so that the first real :meth:`step` does not pay numba's start-up."""
        if not isinstance(config, TrackerConfig):
            raise TrackingError("config must be a TrackerConfig")
        if not isinstance(camera, Camera):
            raise TrackingError("camera must be an autonomy.camera.model.Camera")
        self.config = config
        self.camera = camera
        n, d = config.capacity, 3 * config.order
        ci = camera.intrinsics
        intr = np.array([ci.fx_px, ci.fy_px, ci.cx_px, ci.cy_px, *ci.dist_coeffs], dtype=np.float64)
        self._const = K.pack_const(config.pack(), intr, camera.mount.r_body_from_cam)
        self._x = np.zeros((n, d))
        self._p = np.zeros((n, d, d))
        self._basis = np.zeros((n, 3, 3))
        self._ist = np.zeros((n, K.N_IST), dtype=np.int64)
        self._fst = np.zeros((n, K.N_FST))
        self._info = np.array([1, 0], dtype=np.int64)   # next id, dropped this step
        self._t_last: float | None = None
        self._q_last = np.array([1.0, 0.0, 0.0, 0.0])
        self._class_names: tuple[str, ...] = ("drone",)
        self._selected_id: int | None = None
        self.dropped_tracks = 0   # new tracks not started because capacity was full (cumulative)
        self.last_tracks: TrackList | None = None
        if warmup:
            self._warmup()

    def _warmup(self) -> None:
        """Run the kernels once on scratch arrays so that numba's runtime start-up and the loading of the
        cached machine code happen here, at construction, not in the first real frame."""
        d = self._x.shape[1]
        x, p, basis = np.zeros((1, d)), np.zeros((1, d, d)), np.zeros((1, 3, 3))
        ist, fst = np.zeros((1, K.N_IST), dtype=np.int64), np.zeros((1, K.N_FST))
        out_f, out_i = np.empty((1, K.N_OUT_F)), np.empty((1, K.N_OUT_I), dtype=np.int64)
        q = np.array([1.0, 0.0, 0.0, 0.0])
        c = self.camera.intrinsics
        box = np.array([[c.cx_px - 5.0, c.cy_px - 5.0, c.cx_px + 5.0, c.cy_px + 5.0]])
        info = np.array([1, 0], dtype=np.int64)
        for t in (0.0, 0.1):
            K.step(x, p, basis, ist, fst, box, np.ones(1), np.zeros(1, dtype=np.int64), 1, q, self._const, t,
                   info, out_f, out_i)
        K.predict_export(x, p, basis, ist, fst, 0, q, self._const, 0.2, out_f, out_i)

    @staticmethod
    def _check_q(q_body_to_ned) -> np.ndarray:
        q = q_body_to_ned
        if not (isinstance(q, np.ndarray) and q.dtype == np.float64 and q.flags.c_contiguous):
            q = np.ascontiguousarray(q, dtype=np.float64)
        if q.shape != (4,):
            raise TrackingError(f"q_body_to_ned must have shape (4,), got {q.shape}")
        return q

    def step(self, detections: Detections, q_body_to_ned, t_s: float) -> TrackList:
        """Process one frame; returns the live (non-deleted) tracks at ``t_s`` as a :class:`TrackList`
        (a sequence of :class:`TargetTrack`).

        ``detections``: boxes in pixels of the camera this tracker was built with; ``q_body_to_ned``:
        vehicle attitude [w, x, y, z] at the frame's capture; ``t_s``: capture time, seconds, never
        decreasing (frame intervals may vary and frames may be dropped). Raises :class:`TrackingError` on bad
        input, leaving the tracker unchanged."""
        if type(detections) is not Detections and not isinstance(detections, Detections):
            raise TrackingError("detections must be an autonomy.types.Detections")
        q = self._check_q(q_body_to_ned)
        t = float(t_s)
        if not math.isfinite(t):
            raise TrackingError(f"t_s must be finite, got {t_s}")
        if self._t_last is not None and t < self._t_last:
            raise TrackingError(f"t_s went backwards: {t} < {self._t_last}")
        xyxy = detections.xyxy_px
        if xyxy.dtype != np.float64 or not xyxy.flags.c_contiguous:
            xyxy = np.ascontiguousarray(xyxy, dtype=np.float64)
        scores = detections.scores
        if scores.dtype != np.float64:
            scores = scores.astype(np.float64)
        cls = detections.class_ids
        if cls.dtype != np.int64:
            cls = cls.astype(np.int64)
        n = self.config.capacity
        out_f = np.empty((n, K.N_OUT_F))
        out_i = np.empty((n, K.N_OUT_I), dtype=np.int64)
        rc = K.step(self._x, self._p, self._basis, self._ist, self._fst, xyxy, scores, cls,
                    len(detections.class_names), q, self._const, t, self._info, out_f, out_i)
        if rc < 0:
            raise TrackingError(_ERRORS[int(rc)])
        self.dropped_tracks += int(self._info[1])
        self._t_last = t
        self._q_last = q
        self._class_names = detections.class_names
        self.last_tracks = TrackList(t, out_f, out_i, int(rc), detections.class_names)
        return self.last_tracks

    # ------------------------------------------------------------------ queries
    def associations(self) -> dict[int, int]:
        """track id -> index of the detection it used in the last step (updates and new tracks)."""
        ist = self._ist
        live = np.flatnonzero((ist[:, K.I_STATUS] != K.FREE) & (ist[:, K.I_DET] >= 0))
        return {int(ist[i, K.I_ID]): int(ist[i, K.I_DET]) for i in live}

    def _slot(self, track_id: int) -> int | None:
        hit = np.flatnonzero((self._ist[:, K.I_ID] == track_id) & (self._ist[:, K.I_STATUS] != K.FREE))
        return int(hit[0]) if len(hit) else None

    def predict_box(self, track_id: int, q_body_to_ned, t_s: float) -> np.ndarray | None:
        """Predicted image box (xyxy px) of a live track at ``t_s`` seen with attitude ``q_body_to_ned``,
        for the detector's ROI re-detection; None if the track is unknown or its LOS is behind the camera.
        The tracker's state is not changed."""
        q = self._check_q(q_body_to_ned)
        if not (np.all(np.isfinite(q)) and float(q @ q) > 1e-12):
            raise TrackingError(_ERRORS[-5])
        t = float(t_s)
        if not math.isfinite(t):
            raise TrackingError(f"t_s must be finite, got {t_s}")
        i = self._slot(track_id)
        if i is None:
            return None
        out_f = np.empty((1, K.N_OUT_F))
        out_i = np.empty((1, K.N_OUT_I), dtype=np.int64)
        K.predict_export(self._x, self._p, self._basis, self._ist, self._fst, i, q, self._const, t, out_f, out_i)
        box = out_f[0, K.O_BOX:K.O_BOX + 4]
        return box.copy() if np.all(np.isfinite(box)) else None

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
        los, size, growth = tl.los_ned, tl.angular_size_rad, tl.growth_ps
        for k in range(len(tl)):
            if tl.class_name(k) not in pol.allowed_classes:
                continue
            code = int(tl.status_codes[k])
            is_cur = int(tl.ids[k]) == self._selected_id
            if not (code == K.CONFIRMED or (is_cur and pol.keep_coasting and code == K.COASTING)):
                continue
            threat = (pol.w_closing_s * float(growth[k]) + pol.w_centre * float(los[k] @ boresight)
                      + pol.w_size * math.log(max(float(size[k]), 1e-9)))
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
        """Id of the track chosen by the last :meth:`select_target` call (None if none)."""
        return self._selected_id
