"""Detector configuration (frozen; loadable from a TOML table)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from autonomy.perception.errors import ModelError

DEFAULT_MODEL_PATH = Path(__file__).resolve().parents[2] / "models" / "detector.onnx"


@dataclass(frozen=True)
class DetectorConfig:
    """Settings of :class:`autonomy.perception.detector.Detector`.

    ``provider``: 'cpu' (default), 'cuda', 'tensorrt' or 'auto' (TensorRT > CUDA > CPU, whichever this
    onnxruntime build offers). ``layout``: 'auto' (from the model's metadata / output shapes), 'centernet'
    (ours), 'yolov5' ((1, N, 5+C)) or 'yolov8' ((1, 4+C, N), also YOLOv11). ``input_wh_px`` overrides the
    network input size (None: the model's fixed size, or its nominal size for our dynamic-size model).
    ``classes`` keeps only these class names (None = all). ``pad_value`` of the letterbox border
    (None: 0 for our model, 114 for YOLO exports as ultralytics does). ``agnostic_nms``: suppress across
    classes (a bird box that out-scores a drone box on the same object removes it), then filter classes.
    """

    model_path: str = str(DEFAULT_MODEL_PATH)
    provider: str = "cpu"
    intra_op_threads_n: int = 1
    score_threshold: float = 0.4
    nms_iou: float = 0.5
    max_detections_n: int = 100
    classes: tuple[str, ...] | None = None
    layout: str = "auto"
    input_wh_px: tuple[int, int] | None = None
    class_names: tuple[str, ...] | None = None  # override for YOLO exports without names metadata
    pad_value: int | None = None
    warmup_runs_n: int = 1
    tile_overlap_px: int = 64
    agnostic_nms: bool = False

    def __post_init__(self) -> None:
        if self.provider not in {"cpu", "cuda", "tensorrt", "auto"}:
            raise ModelError(f"provider must be cpu|cuda|tensorrt|auto, got {self.provider!r}")
        if self.layout not in {"auto", "centernet", "yolov5", "yolov8"}:
            raise ModelError(f"layout must be auto|centernet|yolov5|yolov8, got {self.layout!r}")
        if self.intra_op_threads_n < 0:
            raise ModelError("intra_op_threads_n must be >= 0 (0 = onnxruntime default)")
        if not 0.0 <= self.score_threshold <= 1.0 or not 0.0 < self.nms_iou <= 1.0:
            raise ModelError("score_threshold must be in [0, 1] and nms_iou in (0, 1]")

    @classmethod
    def from_toml(cls, path: str | Path, table: str = "detector") -> DetectorConfig:
        """Read ``[detector]`` (or ``table``) from a TOML file; unknown keys are an error."""
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        sub = data.get(table, data)
        known = {f.name for f in fields(cls)}
        unknown = set(sub) - known
        if unknown:
            raise ModelError(f"unknown detector config keys in {path}: {sorted(unknown)}")
        conv = dict(sub)
        for key in ("classes", "class_names", "input_wh_px"):
            if key in conv and conv[key] is not None:
                conv[key] = tuple(conv[key])
        return cls(**conv)
