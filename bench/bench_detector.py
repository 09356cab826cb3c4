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


def _median_ms(fn, n: int, warm: int = 3) -> float:
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def run(out_dir: Path, n: int = 30) -> dict:
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
    for _ in range(3):
        yo.append(_median_ms(lambda: yolo.run(None, {"images": x_yolo}), n // 3))
        ou.append(_median_ms(lambda: ours.run(None, {"images": x_ours}), n // 3))
        full.append(_median_ms(lambda: det.detect(frame), n // 3))
    res["yolov8n_320_ms"] = float(np.median(yo))
    res["ours_ms"] = float(np.median(ou))
    res["ours_detect_ms"] = float(np.median(full))
    int8 = ours_path.with_name(ours_path.stem + "_int8.onnx")
    if int8.is_file():
        s8 = _session(str(int8))
        res["ours_int8_ms"] = _median_ms(lambda: s8.run(None, {"images": x_ours}), n)
    res["ratio_ours_over_yolov8n"] = res["ours_ms"] / res["yolov8n_320_ms"]
    print(f"YOLOv8n-arch 320x320, 1 thread: {res['yolov8n_320_ms']:.2f} ms/frame (session.run)")
    print(f"ours {w}x{h}, 1 thread:          {res['ours_ms']:.2f} ms/frame (session.run), "
          f"{res['ours_detect_ms']:.2f} ms with letterbox+decode+NMS")
    if "ours_int8_ms" in res:
        print(f"ours int8 {w}x{h}:               {res['ours_int8_ms']:.2f} ms/frame")
    print(f"ratio ours / YOLOv8n = {res['ratio_ours_over_yolov8n']:.3f} (goal <= 0.25)")
    return res


if __name__ == "__main__":
    import sys

    run(Path(sys.argv[1] if len(sys.argv) > 1 else "out/bench"))
