"""ONNX Runtime detector: our centre-heatmap model or a standard YOLOv5/v8/v11 export.

``Detector(config).detect(frame_bgr, t_capture_s)`` -> :class:`autonomy.types.Detections` in pixels of the
input frame. ``detect_tiled`` covers a large frame with native-resolution tiles of the network size;
``detect_roi`` re-detects at native resolution in a window around a predicted track, so that a distant target
a few pixels wide is not lost to downscaling.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

from autonomy.perception import decode as dec
from autonomy.perception.config import DetectorConfig
from autonomy.perception.errors import FrameError, ModelError
from autonomy.perception.preprocess import Letterbox, as_bgr, letterbox
from autonomy.types import Detections

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def choose_providers(provider: str, available: list[str]) -> list[str]:
    """Execution providers for ``provider`` given onnxruntime's ``available`` list (ModelError if absent)."""
    if provider == "auto":
        for name in ("tensorrt", "cuda", "cpu"):
            if _PROVIDERS[name][0] in available:
                return [p for p in _PROVIDERS[name] if p in available]
    wanted = _PROVIDERS[provider]
    if wanted[0] not in available:
        raise ModelError(f"execution provider {wanted[0]} is not available in this onnxruntime build "
                         f"(available: {', '.join(available)}); use provider='cpu' or 'auto'")
    return [p for p in wanted if p in available]


def _parse_names(meta: dict[str, str]) -> tuple[str, ...] | None:
    if "classes" in meta:
        return tuple(s.strip() for s in meta["classes"].split(","))
    if "names" in meta:  # ultralytics: "{0: 'person', 1: 'bicycle', ...}"
        try:
            d = ast.literal_eval(meta["names"])
            if isinstance(d, dict):
                return tuple(str(d[k]) for k in sorted(d))
            if isinstance(d, (list, tuple)):
                return tuple(str(x) for x in d)
        except (ValueError, SyntaxError):
            return None
    return None


class Detector:
    """One onnxruntime session plus pre/post-processing. Not thread-safe; one per camera thread."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        import onnxruntime as ort

        self.config = cfg = config or DetectorConfig()
        path = Path(cfg.model_path)
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        so = ort.SessionOptions()
        so.intra_op_num_threads = cfg.intra_op_threads_n
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        providers = choose_providers(cfg.provider, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            raise ModelError(f"cannot load ONNX model {path}: {type(exc).__name__}: {exc}") from exc
        self.providers = self.session.get_providers()
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise ModelError(f"{path}: expected one NCHW image input, got {[(i.name, i.shape) for i in inputs]}")
        self.input_name = inputs[0].name
        ishape = inputs[0].shape
        if isinstance(ishape[1], int) and ishape[1] != 3:
            raise ModelError(f"{path}: input must have 3 channels, got shape {ishape}")
        self.dynamic_size = not (isinstance(ishape[2], int) and isinstance(ishape[3], int))
        outs = self.session.get_outputs()
        self.output_names = [o.name for o in outs]
        self.layout = self._layout(cfg.layout, meta, outs)
        if cfg.input_wh_px is not None:
            self.input_wh_px = tuple(int(v) for v in cfg.input_wh_px)
        elif not self.dynamic_size:
            self.input_wh_px = (int(ishape[3]), int(ishape[2]))
        elif "input_width" in meta and "input_height" in meta:
            self.input_wh_px = (int(meta["input_width"]), int(meta["input_height"]))
        else:
            self.input_wh_px = (640, 640)
        self.size_multiple = int(meta.get("size_multiple", "32"))
        names = cfg.class_names or _parse_names(meta)
        if names is None:
            names = tuple(f"class{i}" for i in range(self._num_classes_from_shapes(outs)))
        self.class_names: tuple[str, ...] = tuple(names)
        self.pad_value = cfg.pad_value if cfg.pad_value is not None else (0 if self.layout == "centernet" else 114)
        if cfg.classes is not None:
            missing = [c for c in cfg.classes if c not in self.class_names]
            if missing:
                raise ModelError(f"class filter {missing} not among the model's classes {self.class_names}")
            self.keep_ids: np.ndarray | None = np.array([self.class_names.index(c) for c in cfg.classes])
        else:
            self.keep_ids = None
        # with class-agnostic NMS every class is decoded so that a confuser can out-score a drone at the same
        # place; the class filter is applied after NMS
        self._decode_ids = None if cfg.agnostic_nms else self.keep_ids
        for _ in range(cfg.warmup_runs_n):  # warm-up: allocations, kernel choice; also proves outputs decode
            w, h = self.input_wh_px
            self._infer(np.zeros((1, 3, h, w), np.float32))

    # ------------------------------------------------------------------ internals
    def _num_classes_from_shapes(self, outs) -> int:
        shp = outs[0].shape
        if self.layout == "yolov5" and len(shp) == 3 and isinstance(shp[2], int):
            return max(shp[2] - 5, 1)
        if self.layout == "yolov8" and len(shp) == 3 and isinstance(shp[1], int):
            return max(shp[1] - 4, 1)
        if self.layout == "centernet" and len(shp) == 4 and isinstance(shp[1], int):
            return shp[1]
        return 1

    @staticmethod
    def _layout(requested: str, meta: dict[str, str], outs) -> str:
        if requested != "auto":
            return requested
        if meta.get("format") == "interceptor-centernet":
            return "centernet"
        if len(outs) == 2 and all(len(o.shape) == 4 for o in outs):
            return "centernet"
        if len(outs) >= 1 and len(outs[0].shape) == 3:
            _, a, b = outs[0].shape
            if isinstance(a, int) and isinstance(b, int):
                return "yolov5" if b < a else "yolov8"
            if isinstance(a, int):
                return "yolov8"  # (1, 4+C, N?) with dynamic N
            if isinstance(b, int):
                return "yolov5"
        raise ModelError(f"cannot tell the output layout from {[(o.name, o.shape) for o in outs]}; "
                         "set layout to centernet|yolov5|yolov8")

    def _infer(self, blob: np.ndarray, score_threshold: float | None = None):
        try:
            outs = self.session.run(None, {self.input_name: blob})
        except Exception as exc:
            raise ModelError(f"inference failed for input {blob.shape}: {type(exc).__name__}: {exc}") from exc
        cfg = self.config
        thr = cfg.score_threshold if score_threshold is None else score_threshold
        if self.layout == "centernet":
            if len(outs) < 2:
                raise ModelError(f"centernet layout needs 2 outputs, model gives {len(outs)}")
            return dec.decode_centernet(outs[0], outs[1], thr, cfg.max_detections_n, self._decode_ids)
        fn = dec.decode_yolov5 if self.layout == "yolov5" else dec.decode_yolov8
        return fn(outs[0], thr, cfg.max_detections_n, self._decode_ids)

    def _run(self, bgr: np.ndarray, size_wh: tuple[int, int], score_threshold: float | None = None):
        blob, lb = letterbox(bgr, size_wh, self.pad_value)
        xyxy, sc, cid = self._infer(blob, score_threshold)
        if len(cid) and cid.max() >= len(self.class_names):
            raise ModelError(f"model predicts class {int(cid.max())} but has {len(self.class_names)} names")
        return lb.to_frame(xyxy), sc, cid

    def _finish(self, xyxy, sc, cid, t_capture_s: float, frame_hw: tuple[int, int]) -> Detections:
        cfg = self.config
        if len(sc):
            h, w = frame_hw
            xyxy = xyxy.copy()
            xyxy[:, [0, 2]] = np.clip(xyxy[:, [0, 2]], 0, w)
            xyxy[:, [1, 3]] = np.clip(xyxy[:, [1, 3]], 0, h)
            ok = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
            xyxy, sc, cid = xyxy[ok], sc[ok], cid[ok]
            if len(sc) > 10 * cfg.max_detections_n:  # bound the O(K^2) NMS
                top = np.argsort(-sc)[: 10 * cfg.max_detections_n]
                xyxy, sc, cid = xyxy[top], sc[top], cid[top]
            nms_ids = np.zeros_like(cid) if cfg.agnostic_nms else cid
            keep = dec.nms(xyxy, sc, nms_ids, cfg.nms_iou, cfg.max_detections_n)
            xyxy, sc, cid = xyxy[keep], sc[keep], cid[keep]
            if self.keep_ids is not None:
                ok = np.isin(cid, self.keep_ids)
                xyxy, sc, cid = xyxy[ok], sc[ok], cid[ok]
        return Detections(float(t_capture_s), np.asarray(xyxy, np.float64).reshape(-1, 4),
                          np.asarray(sc, np.float64), np.asarray(cid, np.int64), self.class_names)

    # ------------------------------------------------------------------ API
    def detect(self, frame: np.ndarray, t_capture_s: float = 0.0) -> Detections:
        """Whole frame, letterboxed to the network input size. ``frame``: (H,W[,C]) uint8 BGR or grey."""
        bgr = as_bgr(frame)
        xyxy, sc, cid = self._run(bgr, self.input_wh_px)
        return self._finish(xyxy, sc, cid, t_capture_s, bgr.shape[:2])

    def detect_tiled(self, frame: np.ndarray, t_capture_s: float = 0.0, include_global: bool = True) -> Detections:
        """Native-resolution tiles of the network input size (overlap ``tile_overlap_px``), merged by NMS.

        With ``include_global`` a whole-frame (downscaled) pass is added so that large targets that straddle
        tiles are still found. A frame no larger than the network input is one plain pass.
        """
        bgr = as_bgr(frame)
        h, w = bgr.shape[:2]
        tw, th = self.input_wh_px
        if w <= tw and h <= th:
            return self.detect(bgr, t_capture_s)
        ov = self.config.tile_overlap_px
        xs = _tile_starts(w, tw, ov)
        ys = _tile_starts(h, th, ov)
        parts = []
        for y0 in ys:
            for x0 in xs:
                tile = bgr[y0:y0 + th, x0:x0 + tw]
                b, s, c = self._run(tile, self.input_wh_px)
                b[:, [0, 2]] += x0
                b[:, [1, 3]] += y0
                parts.append((b, s, c))
        if include_global:
            parts.append(self._run(bgr, self.input_wh_px))
        return self._finish(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                            np.concatenate([p[2] for p in parts]), t_capture_s, (h, w))

    def detect_roi(self, frame: np.ndarray, center_uv_px: tuple[float, float], size_px: float | tuple[float, float],
                   t_capture_s: float = 0.0, scale: float = 1.0,
                   score_threshold: float | None = None) -> Detections:
        """Re-detect at native resolution in a window of ``size_px`` (side, or (w, h)) centred on
        ``center_uv_px`` (pixel u right, v down) — e.g. a track's predicted position. The window is
        clipped to the frame; boxes come back in pixels of the full frame.

        Our dynamic-size model runs on the crop as is (rounded up to a multiple of 32); a fixed-size YOLO
        export gets the crop letterboxed to its input (an upscale, never a downscale, for small windows).
        ``scale`` < 1 shrinks the window by that factor first (dynamic-size models): a target much larger than
        the few-pixel drones the model is made for is brought back to the size it sees best.
        ``score_threshold`` replaces the configured one for this window (a lower one where a track is expected:
        its weak detections may keep the track, while the tracker's ``init_score`` keeps them from starting any).
        """
        if not 0.0 < scale <= 1.0:
            raise FrameError(f"ROI scale must be in (0, 1], got {scale}")
        if score_threshold is not None and not 0.0 <= score_threshold <= 1.0:
            raise FrameError(f"ROI score threshold must be in [0, 1], got {score_threshold}")
        bgr = as_bgr(frame)
        h, w = bgr.shape[:2]
        sw, sh = (size_px, size_px) if np.isscalar(size_px) else size_px
        if not (np.isfinite(sw) and np.isfinite(sh) and sw >= 8 and sh >= 8):
            raise FrameError(f"ROI size must be finite and >= 8 px, got {size_px}")
        cu, cv = float(center_uv_px[0]), float(center_uv_px[1])
        if not (np.isfinite(cu) and np.isfinite(cv)):
            raise FrameError(f"ROI centre must be finite, got {center_uv_px}")
        m = self.size_multiple
        if self.dynamic_size:
            sw = int(np.ceil(min(sw, w) / m) * m)
            sh = int(np.ceil(min(sh, h) / m) * m)
        sw, sh = int(min(sw, w)), int(min(sh, h))
        x0 = int(np.clip(round(cu - sw / 2), 0, w - sw))
        y0 = int(np.clip(round(cv - sh / 2), 0, h - sh))
        crop = bgr[y0:y0 + sh, x0:x0 + sw]
        if self.dynamic_size:
            net_wh = (int(np.ceil(sw * scale / m) * m), int(np.ceil(sh * scale / m) * m))
        else:
            net_wh = self.input_wh_px
        b, s, c = self._run(crop, net_wh, score_threshold)
        b[:, [0, 2]] += x0
        b[:, [1, 3]] += y0
        return self._finish(b, s, c, t_capture_s, (h, w))


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(tile - min(overlap, tile // 2), 1)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


__all__ = ["Detector", "DetectorConfig", "Letterbox", "choose_providers"]
