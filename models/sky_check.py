"""How often a detector calls plain real sky "drone": the empty-sky sanity check, on crops the tests never use.

    python -m models.sky_check --model models/detector.onnx --model new.onnx [--n 300]

Crops are cut from the VALIDATION drone clips (``models.split.VALIDATION_VIDEOS``, never trained on with
``models.train --sky-crops``, never held out) by the rule of the shared data's ``visible_negative_crops``
(``models.data.sky_crops``). Per model: crops with a drone detection at the runtime threshold, and the
distribution of each crop's highest drone score, so that a candidate can be judged on real sky before the
held-out sanity crops are ever looked at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from models.data import sky_crop_clips, sky_crops, svanstrom_root
from models.split import DEFAULT_DATA_ROOT


def top_drone_scores(model: str, images_rgb: np.ndarray) -> np.ndarray:
    """Highest drone score per image (0 where none reaches 0.02), through the runtime ``Detector``."""
    from autonomy.perception import Detector, DetectorConfig

    det = Detector(DetectorConfig(model_path=model, score_threshold=0.02, classes=("drone",)))
    out = np.zeros(len(images_rgb))
    for k, rgb in enumerate(images_rgb):
        ds = det.detect(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        out[k] = float(ds.scores.max()) if len(ds.scores) else 0.0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.sky_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--data", default=str(DEFAULT_DATA_ROOT))
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--threshold", type=float, default=0.4, help="the runtime's score threshold")
    args = ap.parse_args(argv)
    from autonomy.perception import ModelError

    if not svanstrom_root(Path(args.data)).is_dir():
        print(f"sky_check: no Svanstrom clips under {args.data} (--data)", file=sys.stderr)
        return 2
    # the 320x256 windows themselves: the detector upscales them x2, as it does the sanity crops
    crops = sky_crops(Path(args.data), sky_crop_clips(Path(args.data), "val"), args.n, args.seed,
                      to_canvas=False).images
    print(f"{len(crops)} sky crops from the validation clips")
    print(f"{'model':40s} {'FP crops':>9s} {'p50':>6s} {'p95':>6s} {'p99':>6s} {'max':>6s}")
    for m in args.model:
        try:
            s = top_drone_scores(m, crops)
        except ModelError as exc:
            print(f"sky_check: {exc}", file=sys.stderr)
            return 2
        print(f"{Path(m).name:40s} {int((s >= args.threshold).sum()):4d}/{len(s):<4d} "
              f"{np.percentile(s, 50):6.3f} {np.percentile(s, 95):6.3f} {np.percentile(s, 99):6.3f} {s.max():6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
