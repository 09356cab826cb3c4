"""Detector latency per frame, one CPU thread: our shipped model at its input size vs a YOLOv8n-architecture
ONNX at 320x320 (random weights, built with the onnx package: bench/yolov8n_onnx.py) in the same run.

Reports median milliseconds of ``session.run`` and of the whole ``Detector.detect`` (letterbox + decode +
NMS) on a real-sized frame, and the ratio ours / YOLOv8n (goal <= 0.25).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from autonomy.perception import DEFAULT_MODEL_PATH, Detector, DetectorConfig
from bench.yolov8n_onnx import build_yolov8n


def _session(model: bytes | str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _times_ms(fn, n: int, warm: int = 2) -> list[float]:
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return ts


def _median_ms(fn, n: int, warm: int = 3) -> float:
    return float(np.median(_times_ms(fn, n, warm)))


def run(out_dir: Path, n: int = 50) -> dict:
    rng = np.random.default_rng(0)
    yolo = _session(build_yolov8n((320, 320)).SerializeToString())
    x_yolo = rng.random((1, 3, 320, 320), dtype=np.float32)
    ours_path = DEFAULT_MODEL_PATH
    det = Detector(DetectorConfig(model_path=str(ours_path), intra_op_threads_n=1))
    w, h = det.input_wh_px
    ours = _session(str(ours_path))
    x_ours = rng.random((1, 3, h, w), dtype=np.float32)
    frame = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    res: dict = {"threads": 1, "ours_input_wh": [w, h], "yolov8n_input_wh": [320, 320]}
    # interleave repeated rounds so that load changes on a shared machine hit both alike
    yo, ou, full = [], [], []
    for _ in range(5):
        yo += _times_ms(lambda: yolo.run(None, {"images": x_yolo}), max(n // 5, 2))
        ou += _times_ms(lambda: ours.run(None, {"images": x_ours}), max(n // 5, 2))
        full += _times_ms(lambda: det.detect(frame), max(n // 5, 2))
    res["yolov8n_320_ms"] = float(np.median(yo))
    res["ours_ms"] = float(np.median(ou))
    res["ours_detect_ms"] = float(np.median(full))
    res["yolov8n_320_min_ms"] = float(np.min(yo))
    res["ours_min_ms"] = float(np.min(ou))
    res["ratio_min_ours_over_yolov8n"] = res["ours_min_ms"] / res["yolov8n_320_min_ms"]
    int8 = ours_path.with_name(ours_path.stem + "_int8.onnx")
    if int8.is_file():
        s8 = _session(str(int8))
        res["ours_int8_ms"] = _median_ms(lambda: s8.run(None, {"images": x_ours}), n)
    res["ratio_ours_over_yolov8n"] = res["ours_ms"] / res["yolov8n_320_ms"]
    if det.dynamic_size:  # the same model on a 320x256 window (ROI re-detection, native 320x256 IR)
        x_small = rng.random((1, 3, 256, 320), dtype=np.float32)
        res["ours_320x256_ms"] = _median_ms(lambda: ours.run(None, {"images": x_small}), n)
    print(f"YOLOv8n-arch 320x320, 1 thread: {res['yolov8n_320_ms']:.2f} ms/frame (session.run)")
    print(f"ours {w}x{h}, 1 thread:          {res['ours_ms']:.2f} ms/frame (session.run), "
          f"{res['ours_detect_ms']:.2f} ms with letterbox+decode+NMS")
    if "ours_320x256_ms" in res:
        print(f"ours 320x256 window (ROI):        {res['ours_320x256_ms']:.2f} ms/frame")
    if "ours_int8_ms" in res:
        print(f"ours int8 {w}x{h}:               {res['ours_int8_ms']:.2f} ms/frame")
    print(f"ratio ours / YOLOv8n = {res['ratio_ours_over_yolov8n']:.3f} of medians, "
          f"{res['ratio_min_ours_over_yolov8n']:.3f} of minima (goal <= 0.25; minima are the less "
          "load-sensitive figure on a shared machine)")
    return res


if __name__ == "__main__":
    import sys

    run(Path(sys.argv[1] if len(sys.argv) > 1 else "out/bench"))
