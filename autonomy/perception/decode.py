"""Decoding of detector outputs into boxes in network pixels, and NMS (pure NumPy).

Layouts:
  * ``centernet`` (ours, models/arch.py): ``heatmap`` (1, C, h, w) peak-suppressed sigmoid scores and
    ``boxes_cxcywh`` (1, 4, h, w) in network pixels.
  * ``yolov5``: (1, N, 5 + C) rows ``cx, cy, w, h, objectness, class scores`` (score = obj * cls).
  * ``yolov8`` / YOLOv11: (1, 4 + C, N) columns ``cx, cy, w, h, class scores`` (no objectness).
Each decoder returns ``(xyxy (K, 4) float64, scores (K,), class_ids (K,) int64)`` before NMS.
"""

from __future__ import annotations

import numpy as np

from autonomy.perception.errors import ModelError


def _cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float64)
    return np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)


def _keep_mask(num_classes: int, keep_class_ids: np.ndarray | None) -> np.ndarray:
    m = np.ones(num_classes, bool)
    if keep_class_ids is not None:
        m[:] = False
        m[keep_class_ids] = True
    return m


def decode_centernet(heatmap: np.ndarray, boxes: np.ndarray, score_threshold: float, max_n: int,
                     keep_class_ids: np.ndarray | None = None):
    if heatmap.ndim != 4 or boxes.ndim != 4 or boxes.shape[1] != 4 or heatmap.shape[2:] != boxes.shape[2:]:
        raise ModelError(f"centernet outputs must be (1,C,h,w) and (1,4,h,w), got {heatmap.shape}, {boxes.shape}")
    hm = heatmap[0]
    hm = hm * _keep_mask(hm.shape[0], keep_class_ids)[:, None, None]
    c, y, x = np.nonzero(hm > score_threshold)
    scores = hm[c, y, x]
    if len(scores) > max_n:
        top = np.argpartition(-scores, max_n)[:max_n]
        c, y, x, scores = c[top], y[top], x[top], scores[top]
    b = boxes[0][:, y, x].T
    return _cxcywh_to_xyxy(b), scores.astype(np.float64), c.astype(np.int64)


def decode_yolov5(out: np.ndarray, score_threshold: float, max_n: int, keep_class_ids: np.ndarray | None = None):
    if out.ndim != 3 or out.shape[2] < 6:
        raise ModelError(f"yolov5 output must be (1, N, 5+C), got {out.shape}")
    rows = out[0]
    cls = rows[:, 5:] * rows[:, 4:5]
    cls = cls * _keep_mask(cls.shape[1], keep_class_ids)[None]
    cid = cls.argmax(1)
    sc = cls[np.arange(len(cls)), cid]
    sel = np.flatnonzero(sc > score_threshold)
    if len(sel) > 4 * max_n:
        sel = sel[np.argpartition(-sc[sel], 4 * max_n)[: 4 * max_n]]
    return _cxcywh_to_xyxy(rows[sel, :4]), sc[sel].astype(np.float64), cid[sel].astype(np.int64)


def decode_yolov8(out: np.ndarray, score_threshold: float, max_n: int, keep_class_ids: np.ndarray | None = None):
    if out.ndim != 3 or out.shape[1] < 5:
        raise ModelError(f"yolov8 output must be (1, 4+C, N), got {out.shape}")
    cols = out[0]
    cls = cols[4:].T * _keep_mask(cols.shape[0] - 4, keep_class_ids)[None]
    cid = cls.argmax(1)
    sc = cls[np.arange(len(cls)), cid]
    sel = np.flatnonzero(sc > score_threshold)
    if len(sel) > 4 * max_n:
        sel = sel[np.argpartition(-sc[sel], 4 * max_n)[: 4 * max_n]]
    return _cxcywh_to_xyxy(cols[:4, sel].T), sc[sel].astype(np.float64), cid[sel].astype(np.int64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def nms(xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float, max_n: int) -> np.ndarray:
    """Class-aware greedy NMS; returns kept indices sorted by descending score (at most ``max_n``)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    suppressed = np.zeros(len(order), bool)
    if len(order) == 0:
        return np.zeros(0, np.int64)
    ious = iou_matrix(xyxy[order], xyxy[order])
    same = class_ids[order][:, None] == class_ids[order][None, :]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(order[i])
        if len(keep) >= max_n:
            break
        suppressed |= (ious[i] > iou_threshold) & same[i]
    return np.array(keep, np.int64)
