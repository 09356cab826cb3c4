"""Time candidate TinyCenterNet layouts (random weights) against the YOLOv8n-architecture ONNX at 320x320,
one CPU thread, in the same process (the same comparison as ``bench/bench_detector.py``, before training).

    python -m models.arch_latency "" "c8=64,fpn=64" --old models/detector.onnx

Each positional argument is an ``ArchSpec`` override string ("" = defaults). Prints median ms and the ratio
to YOLOv8n's median (and of minima). Needs torch (the ``train`` extra).
"""

from __future__ import annotations

import argparse
import io
import time

import numpy as np
import onnxruntime as ort
import torch

from bench.yolov8n_onnx import build_yolov8n
from models.arch import ExportWrapper, TinyCenterNet
from models.train import parse_arch


def _session(model: bytes | str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _onnx_bytes(net: TinyCenterNet, wh: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    torch.onnx.export(ExportWrapper(net.eval()), torch.zeros(1, 3, wh[1], wh[0]), buf, opset_version=17,
                      input_names=["images"], dynamo=False)
    return buf.getvalue()


def _times(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.arch_latency", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("specs", nargs="*", default=[""])
    ap.add_argument("--old", action="append", default=[], help="also time these ONNX files")
    ap.add_argument("--rounds", type=int, default=8)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    xy = rng.random((1, 3, 320, 320), dtype=np.float32)
    xo = rng.random((1, 3, 512, 640), dtype=np.float32)
    yolo = _session(build_yolov8n((320, 320)).SerializeToString())
    cands, params = {}, {}
    for s in args.specs:
        net = TinyCenterNet(4, parse_arch(s))
        params[s or "default"] = sum(p.numel() for p in net.parameters())
        cands[s or "default"] = _session(_onnx_bytes(net, (640, 512)))
    for p in args.old:
        cands[p] = _session(p)
    for sess in [yolo, *cands.values()]:
        sess.run(None, {"images": xy if sess is yolo else xo})
    ty, tc = [], {k: [] for k in cands}
    for _ in range(args.rounds):  # interleaved so that load changes hit all alike
        ty += _times(lambda: yolo.run(None, {"images": xy}), 5)
        for k, sess in cands.items():
            tc[k] += _times(lambda s=sess: s.run(None, {"images": xo}), 5)
    ym, ymin = np.median(ty) * 1e3, np.min(ty) * 1e3
    print(f"YOLOv8n-arch 320x320: {ym:.2f} ms median, {ymin:.2f} ms min")
    for k, t in tc.items():
        m, mn = np.median(t) * 1e3, np.min(t) * 1e3
        print(f"{k:44s} {params.get(k, 0) / 1e3:6.1f}k params  640x512 {m:6.2f} ms  ratio {m / ym:.3f} "
              f"(minima {mn / ymin:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
