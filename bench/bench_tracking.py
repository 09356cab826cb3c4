"""Tracker benchmark: our numba tracker against SORT and ByteTrack (PyPI ``trackers``) and norfair.

Same detections for everyone, in the same run:
- speed: microseconds per ``step``/``update`` at 1, 10 and 50 targets (synthetic detections);
- quality: MOTA / IDF1 / ID switches on the real labelled videos (ground truth degraded by seeded noise,
  misses and false alarms), on the project detector's output for held-out videos (models/detector.onnx,
  when present) and on synthetic rotating-camera scenes;
- cold start: the first ``step`` in a fresh process with a warm numba cache.

The peers live in their own venv (``.venv-peers``, made here or by ``make peers``) because ``trackers``
and norfair pull packages that must not enter the project's .venv. This file is also the peer worker:
``.venv-peers/bin/python bench/bench_tracking.py --peer-worker IN.npz OUT.json`` (numpy-only imports at
module level for that reason).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PEER_VENV = REPO / ".venv-peers"
PEER_PKGS = ["trackers", "norfair"]
SPEED_TARGETS = (1, 10, 50)


# ====================================================================== peer worker (runs in .venv-peers)
def _peer_worker(in_path: str, out_path: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    z = np.load(in_path)
    meta = json.loads(str(z["meta"]))
    out: dict = {"errors": {}, "versions": {}}
    peers = {}
    try:
        import supervision as sv
        import trackers

        out["versions"]["trackers"] = getattr(trackers, "__version__", "?")

        def mk_sort(fps):
            return trackers.SORTTracker(frame_rate=fps)

        def mk_byte(fps):
            return trackers.ByteTrackTracker(frame_rate=fps)

        def run_trackers(tr, boxes, scores, classes):
            d = sv.Detections(xyxy=boxes, confidence=scores, class_id=classes)
            r = tr.update(d)
            tid = np.asarray(r.tracker_id if r.tracker_id is not None else [], dtype=np.int64)
            ok = tid >= 0
            return tid[ok], np.asarray(r.xyxy)[ok] if len(r) else np.zeros((0, 4))

        peers["sort"] = (mk_sort, run_trackers)
        peers["bytetrack"] = (mk_byte, run_trackers)
    except Exception as exc:  # noqa: BLE001 - any import failure of a peer is reported, not fatal
        out["errors"]["trackers"] = f"{type(exc).__name__}: {exc}"
    try:
        import norfair

        out["versions"]["norfair"] = getattr(norfair, "__version__", "?")

        def mk_norfair(fps):
            return norfair.Tracker(distance_function="iou", distance_threshold=0.7)

        def run_norfair(tr, boxes, scores, classes):
            ds = [norfair.Detection(points=b.reshape(2, 2), scores=np.array([s, s])) for b, s in zip(boxes, scores)]
            objs = tr.update(detections=ds)
            if not objs:
                return np.zeros(0, dtype=np.int64), np.zeros((0, 4))
            return (np.array([o.id for o in objs], dtype=np.int64),
                    np.array([o.estimate.reshape(4) for o in objs]))

        peers["norfair"] = (mk_norfair, run_norfair)
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        out["errors"]["norfair"] = f"{type(exc).__name__}: {exc}"
    for peer, (mk, fn) in peers.items():
        res = {}
        for k, sm in enumerate(meta["seqs"]):
            d = z[f"d{k}"]
            frames = [d[d[:, 0] == f] for f in range(sm["n_frames"])]
            tr = mk(sm["fps"])
            rows = []
            t_total = 0.0
            for f, fd in enumerate(frames):
                boxes = np.ascontiguousarray(fd[:, 1:5])
                scores = fd[:, 5].copy()
                classes = fd[:, 6].astype(int)
                t0 = time.perf_counter()
                ids, bx = fn(tr, boxes, scores, classes)
                t_total += time.perf_counter() - t0
                for i, b in zip(ids, bx):
                    rows.append([f, int(i), *map(float, b)])
            res[sm["name"]] = {"us_per_step": 1e6 * t_total / max(1, sm["n_frames"]), "tracks": rows}
        out[peer] = res
    Path(out_path).write_text(json.dumps(out))
    return 0


# ====================================================================== main side
def ensure_peer_venv(timeout_s: float = 900.0) -> tuple[Path | None, str]:
    """The peers' python, creating .venv-peers if needed; (None, reason) if that fails."""
    py = PEER_VENV / "bin" / "python"
    if py.exists():
        return py, "present"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True, timeout=120,
                       capture_output=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEER_PKGS], check=True, timeout=timeout_s,
                       capture_output=True)
        return py, "created"
    except (subprocess.SubprocessError, OSError) as exc:
        err = getattr(exc, "stderr", b"") or b""
        return None, f"could not install {PEER_PKGS} into {PEER_VENV}: {exc} {err.decode()[-500:]}"


def _pack(seqs, path: Path) -> None:
    arrays, meta = {}, []
    for k, s in enumerate(seqs):
        rows = [np.column_stack([np.full(len(d), f), d.xyxy_px, d.scores, d.class_ids])
                for f, d in enumerate(s.dets)]
        arrays[f"d{k}"] = np.vstack(rows) if rows else np.zeros((0, 7))
        meta.append({"name": s.name, "n_frames": len(s.dets), "fps": float(s.camera.fps)})
    np.savez(path, meta=json.dumps({"seqs": meta}), **arrays)


def _unpack_tracks(rows, n_frames: int):
    out = [(np.zeros(0, dtype=np.int64), np.zeros((0, 4))) for _ in range(n_frames)]
    if not rows:
        return out
    a = np.array(rows)
    for f in range(n_frames):
        r = a[a[:, 0] == f]
        out[f] = (r[:, 1].astype(np.int64), r[:, 2:6])
    return out


def _speed_sequences(rng):
    from autonomy.camera.model import Camera
    from autonomy.tracking.evaluate import DegradeConfig, Sequence, degrade
    from sitl.mot_scenes import SceneConfig, make_scene

    cam = Camera.default()
    seqs = []
    for n in SPEED_TARGETS:
        cfg = SceneConfig(n_targets=n, n_frames=300, yaw_amp_deg=3.0, roll_amp_deg=2.0, pitch_amp_deg=1.0,
                          range_min_m=60.0, range_max_m=150.0, speed_max_mps=3.0)
        fr = make_scene(cfg, cam, rng)
        s = Sequence(f"speed_{n}", cam, np.array([f.t_s for f in fr]), np.array([f.q_body_to_ned for f in fr]),
                     [(f.ids, f.boxes_xyxy_px) for f in fr], [f.class_ids for f in fr])
        degrade(s, DegradeConfig(p_miss=0.05, false_alarms_per_frame=0.2), rng)
        seqs.append(s)
    return seqs


def _time_ours(seq, repeats: int = 3) -> float:
    from autonomy.tracking import Tracker, TrackerConfig

    best = float("inf")
    for _ in range(repeats):
        tr = Tracker(TrackerConfig(), seq.camera)
        t_total = 0.0
        for f, d in enumerate(seq.dets):
            q, t = seq.q_body_to_ned[f], float(seq.t_s[f])
            t0 = time.perf_counter()
            tr.step(d, q, t)
            t_total += time.perf_counter() - t0
        best = min(best, 1e6 * t_total / len(seq.dets))
    return best


_COLD = r"""
import time
t0 = time.perf_counter()
import numpy as np
from autonomy.camera.model import Camera
from autonomy.tracking import Tracker, TrackerConfig
from autonomy.types import Detections
t1 = time.perf_counter()
tr = Tracker(TrackerConfig(), Camera.default())
t1b = time.perf_counter()
d = Detections(0.0, np.array([[600.0, 300.0, 620.0, 315.0]]), np.array([0.9]), np.array([0]))
t2 = time.perf_counter()
tr.step(d, np.array([1.0, 0.0, 0.0, 0.0]), 0.0)
t3 = time.perf_counter()
tr.step(d, np.array([1.0, 0.0, 0.0, 0.0]), 1 / 30)
t4 = time.perf_counter()
print(f"{t1 - t0:.4f} {t1b - t1:.4f} {t3 - t2:.6f} {t4 - t3:.6f}")
"""


def cold_start() -> dict:
    """Fresh interpreter, warm numba cache: import, Tracker construction (includes the kernel warm-up that
    absorbs numba's start-up), first step, second step (seconds)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True, timeout=300, cwd=REPO,
                       env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    imp, construct, first, second = map(float, r.stdout.split())
    return {"import_s": imp, "construct_s": construct, "first_step_s": first, "second_step_s": second}


def run(out_dir: Path, max_videos: int | None = None, seed: int = 0) -> dict:
    from autonomy.tracking.evaluate import datasets, format_row, pooled, run_ours

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {"speed_us_per_step": {}, "quality": {}, "peers_skipped": {}}
    rng = np.random.default_rng(seed)
    speed = _speed_sequences(rng)
    data = Path(os.environ.get("INTERCEPTOR_SHARED_DATA", REPO.parent / "shared" / "data"))
    sets = datasets(data if data.is_dir() else None, seed, max_videos)
    if not data.is_dir():
        print(f"real data folder {data} absent: synthetic quality only")
    model = REPO / "models" / "detector.onnx"
    if data.is_dir() and model.is_file() and not os.environ.get("TRACKING_BENCH_NO_DETECTOR"):
        from autonomy.tracking.evaluate import detector_sequences

        try:  # the project detector on videos held out from its training (one inference per frame)
            sets["detector_heldout"] = detector_sequences(data, model)
        except Exception as exc:  # noqa: BLE001 - a broken detector must not hide the tracker results
            print(f"detector run skipped: {type(exc).__name__}: {exc}")
            result["detector_skipped"] = f"{type(exc).__name__}: {exc}"
    else:
        print(f"detector run skipped: {model} absent or TRACKING_BENCH_NO_DETECTOR set")
    all_seqs = speed + [s for v in sets.values() for s in v]
    # ours (this also warms the numba cache for the cold-start measurement)
    for s in speed:
        us = _time_ours(s)
        result["speed_us_per_step"].setdefault("ours", {})[s.name] = us
    ours_q = {name: pooled([(s.gt, run_ours(s)) for s in seqs]) for name, seqs in sets.items()}
    # peers, in their venv, on the same detections
    peer_out: dict = {}
    py, why = ensure_peer_venv()
    if py is None:
        print(f"peers skipped: {why}")
        result["peers_skipped"]["all"] = why
    else:
        npz, js = out_dir / "tracking_dets.npz", out_dir / "tracking_peers.json"
        _pack(all_seqs, npz)
        r = subprocess.run([str(py), str(Path(__file__).resolve()), "--peer-worker", str(npz), str(js)],
                           capture_output=True, text=True, timeout=3600, cwd=REPO, check=False)
        if r.returncode != 0:
            print(f"peer worker failed: {r.stderr[-1500:]}")
            result["peers_skipped"]["all"] = r.stderr[-1500:]
        else:
            peer_out = json.loads(js.read_text())
            for k, v in peer_out.get("errors", {}).items():
                print(f"peer {k} skipped: {v}")
                result["peers_skipped"][k] = v
            result["peer_versions"] = peer_out.get("versions", {})
            npz.unlink(missing_ok=True)
    peers = [p for p in ("sort", "bytetrack", "norfair") if p in peer_out]
    for p in peers:
        for s in speed:
            result["speed_us_per_step"].setdefault(p, {})[s.name] = peer_out[p][s.name]["us_per_step"]
    # ---- print speed
    print("microseconds per step (same detections; mean detections/frame in brackets)")
    for s in speed:
        mean_det = np.mean([len(d) for d in s.dets])
        ours = result["speed_us_per_step"]["ours"][s.name]
        line = f"  {s.name:9s} [{mean_det:5.1f}]  ours {ours:8.1f}"
        fastest = min((result["speed_us_per_step"][p][s.name] for p in peers), default=float("nan"))
        for p in peers:
            line += f"  {p} {result['speed_us_per_step'][p][s.name]:9.1f}"
        line += f"  -> fastest peer / ours = {fastest / ours:6.1f}x"
        result["speed_us_per_step"].setdefault("speedup_vs_fastest_peer", {})[s.name] = fastest / ours
        print(line)
    # ---- quality
    print("quality (MOTA / IDF1 / ID switches), IoU >= 0.5, pooled over each set's sequences")
    for name, seqs in sets.items():
        result["quality"][name] = {"ours": ours_q[name].as_dict()}
        print(format_row(name, "ours", ours_q[name]))
        for p in peers:
            res = pooled([(s.gt, _unpack_tracks(peer_out[p][s.name]["tracks"], len(s.dets))) for s in seqs])
            result["quality"][name][p] = res.as_dict()
            print(format_row(name, p, res))
    cs = cold_start()
    result["cold_start"] = cs
    print(f"fresh process, warm numba cache: import {cs['import_s'] * 1e3:.0f} ms, Tracker() with warm-up "
          f"{cs['construct_s'] * 1e3:.0f} ms, first step {cs['first_step_s'] * 1e3:.2f} ms, second step "
          f"{cs['second_step_s'] * 1e6:.0f} us")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-worker", nargs=2, metavar=("IN_NPZ", "OUT_JSON"))
    ap.add_argument("--out", default="out/bench")
    ap.add_argument("--max-videos", type=int, default=None)
    a = ap.parse_args()
    if a.peer_worker:
        sys.exit(_peer_worker(*a.peer_worker))
    sys.path.insert(0, str(REPO))
    res = run(Path(a.out), a.max_videos)
    Path(a.out, "bench_tracking.json").write_text(json.dumps(res, indent=2, default=float))
