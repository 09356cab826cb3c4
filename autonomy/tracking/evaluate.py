"""Tracking quality on real labelled videos and synthetic rotating-camera scenes: MOTA, IDF1, ID switches.

    python -m autonomy.tracking.evaluate [--data ../shared/data] [--seed 0] [--max-videos N]

prints one row per data set for our tracker (``make bench`` / ``bench/bench_tracking.py`` adds SORT,
ByteTrack and norfair on the very same detections). Real data: the Svanström videos' per-frame label CSVs
and the Anti-UAV IR sequence 18 (see ../shared/data/SOURCES.md); their ground-truth boxes are degraded by
seeded noise, misses and false alarms (:func:`degrade`), standing in for a detector until one is plugged in
via ``--detections`` (not yet: the project's detector had not landed when this was written).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autonomy.camera.model import Camera, CameraIntrinsics, CameraMount
from autonomy.geometry import euler_to_quat
from autonomy.tracking.metrics import MotResult, evaluate_mot, optimal_pairs
from autonomy.tracking.tracker import Tracker, TrackerConfig
from autonomy.types import Detections

CLASS_NAMES = ("drone", "bird", "airplane", "helicopter")
_LABELS = {"DRONE": 0, "BIRD": 1, "AIRPLANE": 2, "HELICOPTER": 3}


@dataclass
class Sequence:
    """One video/scene: ground truth, detections and attitude per frame (same length)."""

    name: str
    camera: Camera
    t_s: np.ndarray                                  # (F,)
    q_body_to_ned: np.ndarray                        # (F, 4)
    gt: list[tuple[np.ndarray, np.ndarray]]          # per frame (ids, boxes)
    gt_classes: list[np.ndarray] = field(default_factory=list)
    dets: list[Detections] = field(default_factory=list)


@dataclass(frozen=True)
class DegradeConfig:
    """How ground truth becomes detections: centre noise (fraction of the box diagonal + px floor),
    log-size noise, miss probability, false alarms per frame (Poisson), score ranges."""

    centre_noise_frac: float = 0.05
    centre_noise_px: float = 0.5
    logsize_noise: float = 0.07
    p_miss: float = 0.1
    false_alarms_per_frame: float = 0.3
    true_score: tuple[float, float] = (0.5, 1.0)
    false_score: tuple[float, float] = (0.3, 0.8)


def degrade(seq: Sequence, cfg: DegradeConfig, rng: np.random.Generator) -> None:
    """Fill ``seq.dets`` from its ground truth (seeded)."""
    w, h = seq.camera.intrinsics.width_px, seq.camera.intrinsics.height_px
    seq.dets = []
    for f, (ids, boxes) in enumerate(seq.gt):
        cls = seq.gt_classes[f] if seq.gt_classes else np.zeros(len(ids), dtype=np.int64)
        keep = rng.uniform(size=len(ids)) >= cfg.p_miss
        b = boxes[keep]
        c = 0.5 * (b[:, :2] + b[:, 2:])
        wh = b[:, 2:] - b[:, :2]
        diag = np.hypot(wh[:, 0], wh[:, 1])
        c = c + rng.normal(0, 1, c.shape) * (cfg.centre_noise_frac * diag + cfg.centre_noise_px)[:, None]
        wh = wh * np.exp(rng.normal(0, cfg.logsize_noise, wh.shape))
        wh = np.maximum(wh, 1.0)
        det = np.column_stack([c - wh / 2, c + wh / 2])
        sc = rng.uniform(*cfg.true_score, len(det))
        dc = cls[keep]
        n_fa = rng.poisson(cfg.false_alarms_per_frame)
        if n_fa:
            ref = wh if len(wh) else np.full((1, 2), 20.0)
            fwh = ref[rng.integers(0, len(ref), n_fa)] * np.exp(rng.normal(0, 0.3, (n_fa, 2)))
            fc = np.column_stack([rng.uniform(0, w, n_fa), rng.uniform(0, h, n_fa)])
            det = np.vstack([det, np.column_stack([fc - fwh / 2, fc + fwh / 2])])
            sc = np.concatenate([sc, rng.uniform(*cfg.false_score, n_fa)])
            dc = np.concatenate([dc, np.zeros(n_fa, dtype=np.int64)])
        seq.dets.append(Detections(float(seq.t_s[f]), np.ascontiguousarray(det, dtype=np.float64), sc,
                                   dc.astype(np.int64), CLASS_NAMES))


# ------------------------------------------------------------------ real data
def _static_camera(width_px: int, height_px: int, hfov_deg: float, fps: float) -> Camera:
    return Camera(CameraIntrinsics.from_hfov(width_px, height_px, hfov_deg), CameraMount(), fps)


def _link_ids(frames: list[np.ndarray], max_jump_px: float = 80.0) -> list[np.ndarray]:
    """Give per-frame boxes (no ids in the labels) trajectory ids by optimal frame-to-frame linking of
    centres (a box further than ``max_jump_px`` from every previous one starts a new id)."""
    out: list[np.ndarray] = []
    prev_c = np.zeros((0, 2))
    prev_id = np.zeros(0, dtype=np.int64)
    next_id = 0
    for boxes in frames:
        c = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        ids = np.full(len(boxes), -1, dtype=np.int64)
        if len(prev_c) and len(c):
            d = np.linalg.norm(c[:, None] - prev_c[None], axis=2)
            cost = np.where(d <= max_jump_px, d, 1e30)
            for a, b in optimal_pairs(cost):
                ids[a] = prev_id[b]
        for a in np.flatnonzero(ids < 0):
            ids[a] = next_id
            next_id += 1
        out.append(ids)
        if len(c):
            prev_c, prev_id = c, ids
    return out


def load_svanstrom(data: Path, sensor: str = "visible", max_videos: int | None = None) -> list[Sequence]:
    """Svanström videos as label-only sequences (the video pixels are not needed for tracking)."""
    root = data / "svanstrom_drone_detection_dataset"
    index = {r["video"]: r for r in csv.DictReader((root / "videos_index.csv").open())}
    files = sorted((root / f"labels_csv_{sensor}").glob("*_LABELS.csv"))
    if max_videos:
        files = files[:max_videos]
    seqs = []
    for path in files:
        name = path.name.removesuffix("_LABELS.csv")
        meta = index[name]
        n_frames = int(meta["frames"])
        w, h = int(meta["width"]), int(meta["height"])
        per: list[list[list[float]]] = [[] for _ in range(n_frames)]
        per_cls: list[list[int]] = [[] for _ in range(n_frames)]
        for row in csv.DictReader(path.open()):
            f = int(row["frame"])
            if f >= n_frames:
                continue
            x, y, bw, bh = (float(row[k]) for k in ("x", "y", "width", "height"))
            if bw <= 0 or bh <= 0:
                continue
            per[f].append([x - 1, y - 1, x - 1 + bw, y - 1 + bh])   # MATLAB 1-based top-left
            per_cls[f].append(_LABELS.get(row["label"].upper(), 0))
        boxes = [np.array(b, dtype=np.float64).reshape(-1, 4) for b in per]
        ids = _link_ids(boxes)
        cam = _static_camera(w, h, 40.0 if sensor == "visible" else 30.0, 30.0)
        q = euler_to_quat(0.0, -math.radians(20.0), 0.0)   # horizon-looking, static platform
        seqs.append(Sequence(name, cam, np.arange(n_frames) / 30.0, np.tile(q, (n_frames, 1)),
                             list(zip(ids, boxes)), [np.array(c, dtype=np.int64) for c in per_cls]))
    return seqs


def load_anti_uav_seq18(data: Path) -> Sequence:
    path = data / "anti_uav_ir_track" / "seq18_gt_xywh.txt"
    rows = np.loadtxt(path).reshape(-1, 4)
    n = len(rows)
    gt = []
    for x, y, w, h in rows:
        ok = w > 0 and h > 0
        gt.append((np.zeros(1 if ok else 0, dtype=np.int64),
                   np.array([[x, y, x + w, y + h]]) if ok else np.zeros((0, 4))))
    cam = _static_camera(640, 512, 30.0, 25.0)
    q = euler_to_quat(0.0, -math.radians(20.0), 0.0)
    return Sequence("antiuav_ir_seq18", cam, np.arange(n) / 25.0, np.tile(q, (n, 1)), gt,
                    [np.zeros(len(g[0]), dtype=np.int64) for g in gt])


def synthetic_sequences(n_scenes: int, rng: np.random.Generator, n_targets: int = 6,
                        n_frames: int = 300) -> list[Sequence]:
    """Rotating-camera scenes from :mod:`sitl.mot_scenes` (the interceptor's default camera)."""
    from sitl.mot_scenes import SceneConfig, make_scene

    cam = Camera.default()
    seqs = []
    for k in range(n_scenes):
        frames = make_scene(SceneConfig(n_targets=n_targets, n_frames=n_frames), cam, rng)
        seqs.append(Sequence(
            f"synthetic_{k}", cam, np.array([fr.t_s for fr in frames]),
            np.array([fr.q_body_to_ned for fr in frames]),
            [(fr.ids, fr.boxes_xyxy_px) for fr in frames], [fr.class_ids for fr in frames]))
    return seqs


# ------------------------------------------------------------------ detector output
HELDOUT_DRONE_VIDEOS = ("V_DRONE_023", "V_DRONE_012", "V_DRONE_047", "V_DRONE_010", "IR_DRONE_034")


def detector_sequences(data: Path, model_path: Path, videos: tuple[str, ...] = HELDOUT_DRONE_VIDEOS,
                       include_seq18: bool = True, max_frames: int | None = None) -> list[Sequence]:
    """Sequences whose detections come from the project's ONNX detector run on the real video frames.

    Defaults to videos held out from the detector's training (models/split.json). Slow: one inference per
    frame on the CPU."""
    import cv2

    from autonomy.perception.config import DetectorConfig
    from autonomy.perception.detector import Detector

    det = Detector(DetectorConfig(model_path=str(model_path)))
    root = data / "svanstrom_drone_detection_dataset"
    seqs: list[Sequence] = []
    todo: list[tuple[Sequence, Path]] = []
    for name in videos:
        sensor = "ir" if name.startswith("IR_") else "visible"
        found = [s for s in load_svanstrom_named(data, sensor, name)]
        if found:
            todo.append((found[0], root / f"videos_{sensor}" / f"{name}.mp4"))
    if include_seq18:
        todo.append((load_anti_uav_seq18(data), data / "anti_uav_ir_track" / "seq18_ir.avi"))
    for seq, video in todo:
        cap = cv2.VideoCapture(str(video))
        dets = []
        try:
            for f in range(len(seq.gt)):
                ok, frame = cap.read()
                if not ok or (max_frames is not None and f >= max_frames):
                    break
                dets.append(det.detect(frame, float(seq.t_s[f])))
        finally:
            cap.release()
        n = len(dets)
        seq.gt, seq.gt_classes, seq.t_s, seq.q_body_to_ned = seq.gt[:n], seq.gt_classes[:n], seq.t_s[:n], \
            seq.q_body_to_ned[:n]
        seq.dets = dets
        seq.name = f"detector:{seq.name}"
        seqs.append(seq)
    return seqs


def load_svanstrom_named(data: Path, sensor: str, name: str) -> list[Sequence]:
    return [s for s in load_svanstrom(data, sensor) if s.name == name]


# ------------------------------------------------------------------ running
def run_ours(seq: Sequence, config: TrackerConfig | None = None, emit_coast_frames: int = 2
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Our tracker on ``seq.dets``; per frame the confirmed tracks (and those coasting for at most
    ``emit_coast_frames`` frames) as (ids, boxes)."""
    tr = Tracker(config or TrackerConfig(), seq.camera)
    out = []
    for f, det in enumerate(seq.dets):
        tl = tr.step(det, seq.q_body_to_ned[f], float(seq.t_s[f]))
        st = tl.status_codes
        ok = (st == 2) | ((st == 3) & (tl.misses <= emit_coast_frames))
        boxes = tl.boxes_xyxy_px[ok]
        good = np.all(np.isfinite(boxes), axis=1)
        out.append((tl.ids[ok][good].copy(), boxes[good].copy()))
    return out


def pooled(results: list[tuple[list, list]]) -> MotResult:
    """Metrics over several sequences at once (ids made unique per sequence)."""
    gt_all, hyp_all = [], []
    for k, (gt, hyp) in enumerate(results):
        off = (k + 1) * 1_000_000
        gt_all += [(np.asarray(i) + off, b) for i, b in gt]
        hyp_all += [(np.asarray(i) + off, b) for i, b in hyp]
    return evaluate_mot(gt_all, hyp_all)


def datasets(data: Path | None, seed: int, max_videos: int | None, n_synthetic: int = 4
             ) -> dict[str, list[Sequence]]:
    """The evaluation sets, detections filled (seeded): real (if ``data`` exists) and synthetic."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Sequence]] = {}
    dcfg = DegradeConfig()
    if data is not None and data.is_dir():
        for sensor in ("visible", "ir"):
            seqs = load_svanstrom(data, sensor, max_videos)
            for s in seqs:
                degrade(s, dcfg, rng)
            out[f"svanstrom_{sensor}"] = seqs
        s = load_anti_uav_seq18(data)
        degrade(s, dcfg, rng)
        out["antiuav_ir_seq18"] = [s]
    syn = synthetic_sequences(n_synthetic, rng)
    for s in syn:
        degrade(s, dcfg, rng)
    out["synthetic_rotating"] = syn
    return out


def format_row(name: str, tracker: str, r: MotResult) -> str:
    return (f"{name:22s} {tracker:10s} MOTA {r.mota:6.3f}  IDF1 {r.idf1:6.3f}  IDsw {r.id_switches:5d}  "
            f"FP {r.false_positives:6d}  FN {r.misses:6d}  GT {r.n_gt:6d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m autonomy.tracking.evaluate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-videos", type=int, default=None, help="per sensor (default: all)")
    ap.add_argument("--motion-model", choices=("cv", "ca"), default="cv")
    ap.add_argument("--detector", default=None, help="ONNX model: also track its detections on held-out videos")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        print(f"real data folder {data} is absent: synthetic scenes only", file=sys.stderr)
    cfg = TrackerConfig(motion_model=args.motion_model)
    for name, seqs in datasets(data, args.seed, args.max_videos).items():
        res = pooled([(s.gt, run_ours(s, cfg)) for s in seqs])
        print(format_row(name, "ours", res))
    if args.detector:
        seqs = detector_sequences(data, Path(args.detector))
        print(format_row("detector_heldout", "ours", pooled([(s.gt, run_ours(s, cfg)) for s in seqs])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
