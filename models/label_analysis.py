"""Whose box is it? For drone detections that hit a ground-truth box at IoU >= 0.3 but miss it at IoU 0.5, compare
both boxes with an image-based estimate of the object's true extent.

    python -m models.label_analysis --model models/detector.onnx --data ../shared/data --every 3 --workers 16

Per labelled drone (held-out drone clips by default, ``--split val`` for the train carve-out), the best
detection at the operating threshold is matched by IoU. The "pixel box" is the bounding box of the connected
blob of pixels that differ from the local background (median of a border ring around GT box union detection,
threshold max(12, 5 MAD) grey levels), the blob nearest the centre of the GT box. It is a measurement, not a
label: when no blob is found or it fills the whole window (cluttered background) the case is "unresolved".
A near miss (0.3 <= IoU < 0.5) is called "label's box" when IoU(det, pixel) exceeds IoU(GT, pixel) by > 0.1,
"our box" in the reverse case, else "both". Also reported per clip: the median ratio of GT box area to pixel-box
area over all labelled frames (how loose the label style of that clip is).
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from models.split import DEFAULT_DATA_ROOT, VALIDATION_VIDEOS, read_labels, split_videos


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def _median_spread(v: np.ndarray) -> tuple[float, float]:
    """Median and robust spread (1.4826 x median absolute deviation) of grey levels."""
    med = float(np.median(v))
    return med, float(np.median(np.abs(v - med))) * 1.4826


def _window(gray: np.ndarray, boxes) -> tuple[np.ndarray, int, int] | None:
    """The grey window (float32) around the union of ``boxes`` with a margin of half its larger side (>= 6 px),
    and its top-left corner; None when it is under 8 px."""
    x0, y0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    m = max(6.0, 0.5 * max(x1 - x0, y1 - y0))
    h, w = gray.shape
    X0, Y0 = int(max(0, np.floor(x0 - m))), int(max(0, np.floor(y0 - m)))
    X1, Y1 = int(min(w, np.ceil(x1 + m))), int(min(h, np.ceil(y1 + m)))
    win = gray[Y0:Y1, X0:X1].astype(np.float32)
    if win.shape[0] < 8 or win.shape[1] < 8:
        return None
    return win, X0, Y0


def background_spread(gray: np.ndarray, gt) -> float | None:
    """Robust spread (1.4826 MAD, grey levels) of the window around a label box outside the box: ~1-3 on clear
    sky, tens in front of trees or fields, where ``pixel_box`` cannot separate the object from its background."""
    got = _window(gray, [gt])
    if got is None:
        return None
    win, X0, Y0 = got
    outside = np.ones(win.shape, bool)
    outside[max(0, int(gt[1]) - Y0):max(0, int(np.ceil(gt[3])) - Y0), max(0, int(gt[0]) - X0):max(0, int(np.ceil(gt[2])) - X0)] = False
    bg = win[outside]
    if bg.size < 16:
        return None
    return _median_spread(bg)[1]


def pixel_box(gray: np.ndarray, gt, det=None) -> tuple[float, float, float, float] | None:
    """Bounding box (x0, y0, x1, y1 px) of the blob that differs from the local background near the GT centre."""
    got = _window(gray, [gt] if det is None else [gt, det])
    if got is None:
        return None
    win, X0, Y0 = got
    ring = np.concatenate([win[:3].ravel(), win[-3:].ravel(), win[:, :3].ravel(), win[:, -3:].ravel()])
    bg, mad = _median_spread(ring)
    mask = (np.abs(win - bg) > max(12.0, 5.0 * mad)).astype(np.uint8)
    n, lab, stats, cent = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return None
    gcx, gcy = 0.5 * (gt[0] + gt[2]) - X0, 0.5 * (gt[1] + gt[3]) - Y0
    d = np.hypot(cent[1:, 0] - gcx, cent[1:, 1] - gcy) / np.sqrt(np.maximum(stats[1:, cv2.CC_STAT_AREA], 1))
    k = 1 + int(np.argmin(d))
    # merge blobs that touch the chosen one's neighbourhood (propellers, arms split by a thin gap)
    sel = np.zeros(n, bool)
    sel[k] = True
    bx, by, bw, bh = stats[k, :4]
    for j in range(1, n):
        jx, jy, jw, jh = stats[j, :4]
        if jx <= bx + bw + 2 and jx + jw >= bx - 2 and jy <= by + bh + 2 and jy + jh >= by - 2:
            sel[j] = True
    ys, xs = np.nonzero(sel[lab])
    px0, py0, px1, py1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    if (px1 - px0) >= 0.95 * win.shape[1] or (py1 - py0) >= 0.95 * win.shape[0]:
        return None  # blob fills the window: clutter, not resolvable
    return (px0 + X0, py0 + Y0, px1 + X0, py1 + Y0)


def measure_clip(job) -> dict:
    """One drone clip (a job of ``drone_clip_jobs``): per labelled drone, the pixel box's IoU with the label and
    the background spread; with a model, its best detection's hits at IoU >= 0.3."""
    from autonomy.perception import Detector, DetectorConfig

    name, video, gt_by_frame, every, model, thr = job  # model None: the labels and pixel boxes only
    det = None if model is None else Detector(DetectorConfig(model_path=model, score_threshold=thr,
                                                             classes=("drone",), intra_op_threads_n=1))
    cap = cv2.VideoCapture(video)
    rows, ratios, tight_ious, i = [], [], [], -1
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        i += 1
        if i % every or i not in gt_by_frame:
            continue
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        d = None if det is None else det.detect(frame)
        for g in gt_by_frame[i]:
            pb = pixel_box(gray, g)
            tight_ious.append((None if pb is None else _iou(g, pb), background_spread(gray, g)))
            if pb is not None:
                ratios.append(((g[2] - g[0]) * (g[3] - g[1])) / max((pb[2] - pb[0]) * (pb[3] - pb[1]), 1.0))
            if d is None or not len(d):
                continue
            ious = [_iou(g, b) for b in d.xyxy_px]
            j = int(np.argmax(ious))
            iou = ious[j]
            if iou < 0.3:
                continue
            b = tuple(float(v) for v in d.xyxy_px[j])
            pbj = pixel_box(gray, g, b)
            rows.append({"frame": i, "iou": iou, "gt": list(g), "det": list(b), "pix": None if pbj is None else list(map(float, pbj))})
    cap.release()
    return {"clip": name, "hits": rows, "gt_over_pixel_area": ratios, "tight_box_iou": tight_ious}


CLEAR_SKY_SPREAD = 4.0  # grey levels: a label whose surroundings vary less is on clear sky (checked on crops)


def tight_box_ceiling(tight_ious: list[tuple[float | None, float | None]]) -> dict:
    """What a detector that boxes exactly the visible object would score against these labels.

    ``tight_ious`` holds per label (IoU of the label with the object's pixel box or None, background spread).
    Such an "oracle" puts one box (the pixel box) on every labelled drone and nothing else; ranked at its best
    (hits first) its AP at an IoU threshold is the share of labels its box overlaps that much, so that share is
    the ceiling of AP for any detector whose boxes are the object's extent. Labels without a pixel box are left
    out and counted (``unresolved``). In front of trees or fields the pixel box often catches only part of the
    object, so the shares are also given for the labels on clear sky (``clear_sky``), where it is the object.
    """
    def shares(v: np.ndarray) -> dict:
        n = len(v)
        return {"n": n, "median_iou_label_vs_pixel_box": float(np.median(v)) if n else None,
                "ceiling_ap_iou05": float(np.mean(v >= 0.5)) if n else None,
                "ceiling_ap_iou03": float(np.mean(v >= 0.3)) if n else None}

    resolved = [(i, sp) for i, sp in tight_ious if i is not None]
    sky = np.array([i for i, sp in resolved if sp is not None and sp <= CLEAR_SKY_SPREAD], float)
    return {"labelled": len(tight_ious), "unresolved": len(tight_ious) - len(resolved),
            "all": shares(np.array([i for i, _ in resolved], float)), "clear_sky": shares(sky)}


def summarise(results: list[dict], groups: dict[str, str] | None = None) -> dict:
    """``groups`` maps a clip name to its group (e.g. "visible/MEDIUM"); the tight-box ceiling is given per
    group and for "<sensor>/CLOSE+MEDIUM", the issue's goal groups."""
    near = [(r["clip"], h) for r in results for h in r["hits"] if h["iou"] < 0.5]
    hits = [h for r in results for h in r["hits"] if h["iou"] >= 0.5]
    verdict = {"label's box": 0, "our box": 0, "both": 0, "unresolved": 0}
    gt_larger = 0
    rows = []
    for clip, h in near:
        g, b, p = h["gt"], h["det"], h["pix"]
        ga, da = (g[2] - g[0]) * (g[3] - g[1]), (b[2] - b[0]) * (b[3] - b[1])
        gt_larger += ga > da
        if p is None:
            verdict["unresolved"] += 1
            continue
        ig, idt = _iou(g, p), _iou(b, p)
        v = "label's box" if idt > ig + 0.1 else "our box" if ig > idt + 0.1 else "both"
        verdict[v] += 1
        rows.append((ig, idt, ga / max(da, 1e-6)))
    a = np.array(rows) if rows else np.zeros((0, 3))
    def _nm(r):
        ratios = [((h["gt"][2] - h["gt"][0]) * (h["gt"][3] - h["gt"][1]))
                  / max((h["det"][2] - h["det"][0]) * (h["det"][3] - h["det"][1]), 1e-6)
                  for h in r["hits"] if h["iou"] < 0.5]
        return {"near_miss_gt_larger": int(sum(x > 1 for x in ratios)),
                "near_miss_median_gt_over_our_area": float(np.median(ratios)) if ratios else None}

    per_clip = {r["clip"]: {**_nm(r), "labelled": len(r["gt_over_pixel_area"]),
                            "median_gt_over_pixel_area": float(np.median(r["gt_over_pixel_area"])) if r["gt_over_pixel_area"] else None,
                            "near_misses": sum(1 for h in r["hits"] if h["iou"] < 0.5),
                            "tight_box": tight_box_ceiling(r["tight_box_iou"]),
                            "hits_iou05": sum(1 for h in r["hits"] if h["iou"] >= 0.5)} for r in results}
    by_group: dict[str, list] = {}
    for r in results:
        g = (groups or {}).get(r["clip"], "ALL")
        keys = [g] + ([g.split("/")[0] + "/CLOSE+MEDIUM"] if g.endswith(("/CLOSE", "/MEDIUM")) else [])
        for k in keys:
            by_group.setdefault(k, []).extend(r["tight_box_iou"])
    return {
        "tight_box_ceiling": {k: tight_box_ceiling(v) for k, v in sorted(by_group.items())},
        "hits_iou05": len(hits), "near_misses_iou03_05": len(near), "near_miss_verdict": verdict,
        "near_miss_gt_area_larger_than_ours": int(gt_larger),
        "near_miss_median_iou_gt_vs_pixel": float(np.median(a[:, 0])) if len(a) else None,
        "near_miss_median_iou_ours_vs_pixel": float(np.median(a[:, 1])) if len(a) else None,
        "near_miss_median_gt_over_our_area": float(np.median(a[:, 2])) if len(a) else None,
        "per_clip": per_clip,
    }


def drone_clip_jobs(data_root: Path, clips, every: int, model: str | None, threshold: float = 0.4) -> list[tuple]:
    """``measure_clip`` jobs for the drone clips among ``clips`` (``models.split.VideoInfo``), labelled frames only."""
    jobs = []
    for v in clips:
        if v.cls != "drone":
            continue
        lab = read_labels(v, data_root)
        gt = {f: [r[1:] for r in rows if r[0] == 0] for f, rows in lab.items()}
        gt = {f: g for f, g in gt.items() if g}
        jobs.append((v.name, str(v.video_path(data_root)), gt, every, model, threshold))
    return jobs


def _f(v: float | None) -> str:
    return "  -  " if v is None else f"{v:.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.label_analysis", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(Path(__file__).with_name("detector.onnx")))
    ap.add_argument("--data", default=str(DEFAULT_DATA_ROOT))
    ap.add_argument("--every", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--split", default="heldout", choices=("heldout", "val"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    train, held = split_videos(Path(args.data))
    clips = held if args.split == "heldout" else [v for v in train if v.name in VALIDATION_VIDEOS]
    jobs = drone_clip_jobs(Path(args.data), clips, args.every, args.model, args.threshold)
    with ProcessPoolExecutor(max(args.workers, 1)) as ex:
        results = list(ex.map(measure_clip, jobs))
    rep = summarise(results, {v.name: f"{v.sensor}/{v.distance_bin}" for v in clips})
    rep.update({"model": args.model, "split": args.split, "every": args.every, "threshold": args.threshold})
    print(json.dumps({k: v for k, v in rep.items() if k != "per_clip"}, indent=1))
    for k, v in rep["per_clip"].items():
        r = v["near_miss_median_gt_over_our_area"]
        print(f"{k:16s} labelled {v['labelled']:4d}  GT/pixel area {v['median_gt_over_pixel_area'] or float('nan'):6.2f}  "
              f"hits@0.5 {v['hits_iou05']:4d}  near misses {v['near_misses']:4d} (GT larger than ours in "
              f"{v['near_miss_gt_larger']}, median GT/ours area {float('nan') if r is None else r:5.2f})")
    print("Ceiling of AP for a detector whose box is the object's pixel extent (share of labels it overlaps), "
          "all resolved labels | labels on clear sky:")
    for k, c in rep["tight_box_ceiling"].items():
        a, sky = c["all"], c["clear_sky"]
        print(f"  {k:22s} labelled {c['labelled']:5d} (unresolved {c['unresolved']:4d})  "
              + " | ".join(f"n {x['n']:4d} median IoU {_f(x['median_iou_label_vs_pixel_box'])} "
                           f"AP50 <= {_f(x['ceiling_ap_iou05'])} AP@0.3 <= {_f(x['ceiling_ap_iou03'])}"
                           for x in (a, sky)))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.out:
        Path(args.out).write_text(json.dumps(rep, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
