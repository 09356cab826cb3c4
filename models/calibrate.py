"""Score calibration of a trained detector so that the runtime's operating threshold keeps its meaning.

    python -m sitl.render.dataset --out /tmp/syn_cal --n 120 --seed 999      # fresh renders, never trained on
    python -m models.calibrate --model new.onnx --reference old.onnx --renders /tmp/syn_cal --out models/detector.onnx

The pipeline (tracker confirmation, the e2e engagements) is tuned to what a detection at the runtime threshold
(``DetectorConfig.score_threshold`` = 0.4) means. A retrained model can have a different score scale: the same
ranking (AP) but fewer or more detections at 0.4. This tool finds the threshold ``t*`` at which the new model's
drone recall (IoU >= 0.3) on *synthetic renders* equals the reference model's recall at 0.4, and adds
``logit(0.4) - logit(t*)`` to the bias of the heatmap convolution, i.e. a monotonic shift of every score:
AP and recall-at-FP-rate do not change, only which score reads as 0.4. The renders are fresh seeds (not the
training seeds), and no held-out clip is involved. The shift is stored in the metadata (``score_logit_bias``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import numpy_helper

from models.evaluate import _match


def render_scores(model: str, renders: Path, iou_thr: float = 0.3) -> tuple[np.ndarray, np.ndarray, int]:
    """Drone detection scores and TP flags (IoU >= iou_thr) over a folder of renders (YOLO labels)."""
    from autonomy.perception import Detector, DetectorConfig

    det = Detector(DetectorConfig(model_path=model, score_threshold=0.02, classes=("drone",)))
    scores, tps, n_gt = [], [], 0
    for p in sorted((renders / "images").glob("*.jpg")):
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        rows = [r.split() for r in (renders / "labels" / (p.stem + ".txt")).read_text().split("\n") if r.strip()]
        gt = np.array([[(float(r[1]) - float(r[3]) / 2) * w, (float(r[2]) - float(r[4]) / 2) * h,
                        (float(r[1]) + float(r[3]) / 2) * w, (float(r[2]) + float(r[4]) / 2) * h]
                       for r in rows if r[0] == "0"]).reshape(-1, 4)
        d = det.detect(img)
        scores += d.scores.tolist()
        tps += _match(d.xyxy_px, d.scores, gt, iou_thr).tolist()
        n_gt += len(gt)
    return np.array(scores), np.array(tps, bool), n_gt


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def apply_bias(src: str, dst: str, bias: float) -> None:
    """Add ``bias`` to the heatmap convolution's bias (all classes) and record it in the metadata."""
    m = onnx.load(src)
    conv = [n for n in m.graph.node if n.op_type == "Conv" and "/hm/" in n.name]
    if len(conv) != 1 or len(conv[0].input) < 3:
        raise SystemExit(f"{src}: expected one heatmap Conv with a bias, found {[n.name for n in conv]}")
    init = {i.name: i for i in m.graph.initializer}
    b = init[conv[0].input[2]]
    b.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(b) + np.float32(bias), b.name))
    props = {p.key: p for p in m.metadata_props}
    old = float(props["score_logit_bias"].value) if "score_logit_bias" in props else 0.0
    if "score_logit_bias" in props:
        props["score_logit_bias"].value = f"{old + bias:.6f}"
    else:
        e = m.metadata_props.add()
        e.key, e.value = "score_logit_bias", f"{bias:.6f}"
    onnx.save(m, dst)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.calibrate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--reference", required=True, help="the model whose operating point is kept")
    ap.add_argument("--renders", required=True, help="folder from sitl.render.dataset (fresh seed)")
    ap.add_argument("--threshold", type=float, default=0.4, help="the runtime operating threshold")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rs, rt, n = render_scores(args.reference, Path(args.renders))
    target = (rt & (rs >= args.threshold)).sum() / max(n, 1)
    s, t, n2 = render_scores(args.model, Path(args.renders))
    cand = np.unique(np.round(s[t], 4))[::-1]  # thresholds at TP scores, high to low
    t_star = next((float(c) for c in cand if (t & (s >= c)).sum() / max(n2, 1) >= target), args.threshold)
    bias = logit(args.threshold) - logit(t_star)
    print(f"reference recall at {args.threshold}: {target:.3f} ({n} drones); new model reaches it at "
          f"{t_star:.4f} -> logit bias {bias:+.4f}")
    apply_bias(args.model, args.out, bias)
    s2, t2, _ = render_scores(args.out, Path(args.renders))
    print(f"calibrated: recall at {args.threshold} = {(t2 & (s2 >= args.threshold)).sum() / max(n2, 1):.3f}, "
          f"precision {(t2 & (s2 >= args.threshold)).sum() / max((s2 >= args.threshold).sum(), 1):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
