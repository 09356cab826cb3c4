"""`autonomy detect IMAGE|VIDEO|DIR [--model PATH] [--out detections.json] [--annotate OUT]`.

Writes ``{"frames": [{"frame": i, "detections": [{"xyxy": [x1, y1, x2, y2], "score": s, "class": "drone"},
...]}, ...]}`` in pixels of the input frames; ``frame`` counts from 0 (video frames; or the sorted image files
of a folder). ``--annotate`` draws the boxes: an image for an image input, an .mp4 for a video, a folder of
images for a folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from autonomy.perception.config import DEFAULT_MODEL_PATH, DetectorConfig
from autonomy.perception.detector import Detector
from autonomy.perception.errors import PerceptionError
from autonomy.types import Detections

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_COLOURS = [(0, 0, 255), (255, 160, 0), (0, 200, 255), (200, 0, 200), (0, 255, 0)]


def detections_to_json(i: int, d: Detections) -> dict:
    return {"frame": i, "detections": [
        {"xyxy": [round(float(v), 2) for v in b], "score": round(float(s), 4), "class": d.class_names[int(c)]}
        for b, s, c in zip(d.xyxy_px, d.scores, d.class_ids)]}


def annotate(frame: np.ndarray, d: Detections) -> np.ndarray:
    out = frame.copy() if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    for b, s, c in zip(d.xyxy_px, d.scores, d.class_ids):
        col = _COLOURS[int(c) % len(_COLOURS)]
        x0, y0, x1, y1 = (round(float(v)) for v in b)
        cv2.rectangle(out, (x0 - 2, y0 - 2), (x1 + 2, y1 + 2), col, 1)
        cv2.putText(out, f"{d.class_names[int(c)]} {s:.2f}", (x0, max(y0 - 5, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    col, 1, cv2.LINE_AA)
    return out


def _run_one(det: Detector, frame: np.ndarray, mode: str) -> Detections:
    if mode == "tiled":
        return det.detect_tiled(frame)
    return det.detect(frame)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="autonomy detect", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="image, video or folder of images")
    ap.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="ONNX model (ours or a YOLOv5/v8/v11 export)")
    ap.add_argument("--out", default="detections.json", help="JSON output path ('-' for stdout)")
    ap.add_argument("--annotate", default=None, help="write annotated image / video (.mp4) / folder here")
    ap.add_argument("--threshold", type=float, default=0.4, help="score threshold")
    ap.add_argument("--classes", default=None, help="comma-separated class names to keep (default all)")
    ap.add_argument("--provider", default="cpu", choices=["cpu", "cuda", "tensorrt", "auto"])
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    ap.add_argument("--tiled", action="store_true", help="native-resolution tiles for frames larger than the input")
    args = ap.parse_args(argv)

    src = Path(args.input)
    if not src.exists():
        print(f"autonomy detect: {src} does not exist", file=sys.stderr)
        return 2
    try:
        det = Detector(DetectorConfig(
            model_path=args.model, provider=args.provider, intra_op_threads_n=args.threads,
            score_threshold=args.threshold,
            classes=tuple(c.strip() for c in args.classes.split(",")) if args.classes else None))
    except PerceptionError as exc:
        print(f"autonomy detect: {exc}", file=sys.stderr)
        return 2
    mode = "tiled" if args.tiled else "plain"
    frames_out: list[dict] = []
    try:
        if src.is_dir():
            files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXT)
            ann_dir = Path(args.annotate) if args.annotate else None
            if ann_dir:
                ann_dir.mkdir(parents=True, exist_ok=True)
            for i, p in enumerate(files):
                img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if img is None:
                    print(f"autonomy detect: skipping unreadable image {p}", file=sys.stderr)
                    frames_out.append({"frame": i, "detections": []})
                    continue
                if img.dtype != np.uint8:
                    img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
                d = _run_one(det, img, mode)
                frames_out.append(detections_to_json(i, d))
                if ann_dir:
                    cv2.imwrite(str(ann_dir / p.name), annotate(img, d))
        elif src.suffix.lower() in IMAGE_EXT:
            img = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
            if img is None:
                print(f"autonomy detect: cannot read image {src}", file=sys.stderr)
                return 2
            if img.dtype != np.uint8:
                img = cv2.convertScaleAbs(img, alpha=255.0 / max(float(img.max()), 1.0))
            d = _run_one(det, img, mode)
            frames_out.append(detections_to_json(0, d))
            if args.annotate:
                cv2.imwrite(args.annotate, annotate(img, d))
        else:
            cap = cv2.VideoCapture(str(src))
            if not cap.isOpened():
                print(f"autonomy detect: cannot open video {src}", file=sys.stderr)
                return 2
            writer = None
            fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
            i = 0
            try:
                while True:
                    ok, frame = cap.read()
                    if not ok:
                        break
                    d = _run_one(det, frame, mode)
                    frames_out.append(detections_to_json(i, d))
                    if args.annotate:
                        if writer is None:
                            h, w = frame.shape[:2]
                            writer = cv2.VideoWriter(args.annotate, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
                        writer.write(annotate(frame, d))
                    i += 1
            finally:
                cap.release()
                if writer is not None:
                    writer.release()
    except PerceptionError as exc:
        print(f"autonomy detect: {exc}", file=sys.stderr)
        return 2
    text = json.dumps({"frames": frames_out})
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        n = sum(len(f["detections"]) for f in frames_out)
        print(f"{len(frames_out)} frame(s), {n} detection(s) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
