"""Frame checks and letterbox preprocessing (pure functions on arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from autonomy.perception.errors import FrameError


@dataclass(frozen=True)
class Letterbox:
    """Input pixel -> network pixel: ``u_net = u_in * scale + pad_x`` (same for v with pad_y)."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy_net: np.ndarray) -> np.ndarray:
        out = np.array(xyxy_net, dtype=np.float64, copy=True)
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def as_bgr(frame: object) -> np.ndarray:
    """Validate a camera frame and return it as (H, W, 3) uint8 BGR.

    Accepts (H, W) or (H, W, 1) grey (thermal IR), (H, W, 3) BGR and (H, W, 4) BGRA, dtype uint8.
    """
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"frame must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise FrameError(f"frame dtype must be uint8, got {frame.dtype}")
    if frame.ndim not in (2, 3):
        raise FrameError(f"frame must be (H, W) or (H, W, C), got shape {frame.shape}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise FrameError(f"frame is empty or too small: shape {frame.shape}")
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(frame.reshape(frame.shape[:2])), cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 3:
        return frame
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    raise FrameError(f"frame must have 1, 3 or 4 channels, got {frame.shape[2]}")


def letterbox(bgr: np.ndarray, size_wh: tuple[int, int], pad_value: int, rgb: bool = True,
              allow_upscale: bool = True) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio, centre on a ``size_wh`` canvas; return NCHW float32 in [0, 1]."""
    h, w = bgr.shape[:2]
    tw, th = size_wh
    s = min(tw / w, th / h)
    if not allow_upscale:
        s = min(s, 1.0)
    nw, nh = round(w * s), round(h * s)
    img = bgr if (nw, nh) == (w, h) else cv2.resize(
        bgr, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    px, py = (tw - nw) // 2, (th - nh) // 2
    canvas = np.full((th, tw, 3), pad_value, np.uint8)
    canvas[py:py + nh, px:px + nw] = img
    if rgb:
        canvas = canvas[:, :, ::-1]
    blob = np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32) * (1.0 / 255.0)
    return blob, Letterbox(s, px, py)
