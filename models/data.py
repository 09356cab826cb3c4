"""Read the real training / evaluation frames (and optional synthetic renders) as uint8 RGB arrays + boxes.

Every frame is brought to the detector's nominal canvas of 640x512 px the way the runtime letterbox does it:
the 320x256 thermal-IR clips are upscaled x2 (exactly what ``Detector`` does with such a frame at the shipped
input size), 640x512 frames pass unchanged. Boxes are ``(k, 5)`` float32 ``[class_id, x0, y0, x1, y1]`` in
pixels of that canvas. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.split import SVANSTROM, VALIDATION_VIDEOS, VideoInfo, read_labels, split_videos

CANVAS_WH = (640, 512)


@dataclass
class FrameSet:
    """``images`` (N, H, W, 3) uint8 RGB; ``boxes`` list of (k, 5) float32; ``source`` per-frame tag."""

    images: np.ndarray
    boxes: list[np.ndarray]
    source: list[str]


def _to_canvas(img_bgr: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Letterbox-resize to CANVAS_WH (no crop); returns (rgb, scale, pad_x, pad_y)."""
    h, w = img_bgr.shape[:2]
    cw, ch = CANVAS_WH
    s = min(cw / w, ch / h)
    nw, nh = round(w * s), round(h * s)
    if (nw, nh) != (w, h):
        img_bgr = cv2.resize(img_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    px, py = (cw - nw) // 2, (ch - nh) // 2
    out = np.zeros((ch, cw, 3), np.uint8)
    out[py:py + nh, px:px + nw] = img_bgr
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), s, px, py


def read_video_frames(info: VideoInfo, data_root: Path, every: int = 1, offset: int = 0):
    """Yield (frame_index, rgb canvas image, boxes (k,5) in canvas pixels) for every ``every``-th frame."""
    labels = read_labels(info, data_root)
    cap = cv2.VideoCapture(str(info.video_path(data_root)))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {info.video_path(data_root)}")
    try:
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i % every == offset % every:
                img, s, px, py = _to_canvas(frame)
                rows = labels.get(i, [])
                b = np.array([[c, x0 * s + px, y0 * s + py, x1 * s + px, y1 * s + py] for c, x0, y0, x1, y1 in rows],
                             np.float32).reshape(-1, 5)
                yield i, img, b
            i += 1
    finally:
        cap.release()


def read_yolo_folder(images_dir: Path, labels_dir: Path, tag: str) -> FrameSet:
    """Images + YOLO txt labels (class cx cy w h, normalised) -> canvas images and pixel boxes."""
    imgs, boxes, src = [], [], []
    for p in sorted(Path(images_dir).glob("*.jpg")) + sorted(Path(images_dir).glob("*.png")):
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            continue
        h, w = bgr.shape[:2]
        img, s, px, py = _to_canvas(bgr)
        rows = []
        lp = Path(labels_dir) / (p.stem + ".txt")
        if lp.is_file():
            for line in lp.read_text().split("\n"):
                parts = line.split()
                if len(parts) < 5:
                    continue
                c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
                x0, x1 = (cx - bw / 2) * w, (cx + bw / 2) * w
                y0, y1 = (cy - bh / 2) * h, (cy + bh / 2) * h
                rows.append([c, x0 * s + px, y0 * s + py, x1 * s + px, y1 * s + py])
        imgs.append(img)
        boxes.append(np.array(rows, np.float32).reshape(-1, 5))
        src.append(f"{tag}/{p.stem}")
    return FrameSet(np.stack(imgs) if imgs else np.zeros((0, CANVAS_WH[1], CANVAS_WH[0], 3), np.uint8), boxes, src)


def load_training_set(data_root: Path, every: int = 2, synthetic_dirs: list[Path] | tuple = (),
                      max_videos: int | None = None, exclude_val: bool = False,
                      extra: tuple[FrameSet, ...] = ()) -> FrameSet:
    """The TRAINING split: Svanström train clips (every ``every``-th frame), Anti-UAV YOLO frames, renders.

    ``exclude_val`` leaves out the validation clips (``models.split.VALIDATION_VIDEOS``, a subset of train).
    ``extra`` frame sets (e.g. :func:`sky_crops`) go last, in the same single copy into one array.
    """
    train, _ = split_videos(data_root)
    if exclude_val:
        train = [v for v in train if v.name not in VALIDATION_VIDEOS]
    if max_videos is not None:
        train = train[:max_videos]
    imgs, boxes, src = [], [], []
    for v in train:
        for i, img, b in read_video_frames(v, data_root, every=every):
            imgs.append(img)
            boxes.append(b)
            src.append(f"{v.name}/{i}")
    parts = [FrameSet(np.stack(imgs), boxes, src)]
    au = Path(data_root) / "anti_uav_ir_yolo"
    if au.is_dir():
        parts.append(read_yolo_folder(au / "images", au / "labels", "anti_uav_ir_yolo"))
    for sd in map(Path, synthetic_dirs):
        img_dir = sd / "images" if (sd / "images").is_dir() else sd
        lab_dir = sd / "labels" if (sd / "labels").is_dir() else sd
        parts.append(read_yolo_folder(img_dir, lab_dir, f"synthetic:{sd.name}"))
    parts = [p for p in [*parts, *extra] if len(p.images)]
    return FrameSet(
        np.concatenate([p.images for p in parts]),
        [b for p in parts for b in p.boxes],
        [s for p in parts for s in p.source],
    )


def svanstrom_root(data_root: Path) -> Path:
    return Path(data_root) / SVANSTROM


SKY_CROP_WH = (320, 256)


def sky_crop_clips(data_root: Path, which: str = "train") -> list[VideoInfo]:
    """Visible drone clips that sky crops are cut from: ``train`` = the training clips less the validation
    carve-out (what ``models.train --sky-crops`` learns from), ``val`` = the validation clips (what
    ``models.sky_check`` measures on). Held-out clips are never used."""
    train, _ = split_videos(data_root)
    vis = [v for v in train if v.sensor == "visible" and v.cls == "drone"]
    if which == "val":
        return [v for v in vis if v.name in VALIDATION_VIDEOS]
    return [v for v in vis if v.name not in VALIDATION_VIDEOS]


def sky_crops(data_root: Path, videos: list[VideoInfo], n: int, seed: int, margin_px: float = 20.0,
              skip_frames: tuple[int, int] = (20, 40), to_canvas: bool = True) -> FrameSet:
    """``n`` label-free 320x256 windows of real drone frames that keep ``margin_px`` away from every labelled
    box, brought to the canvas as the runtime brings such a frame (x2). They are cut the way the shared data's
    ``visible_negative_crops`` were (plain sky, cloud, tree line beside the drone); frames ``skip_frames`` (the
    frames those test crops come from) are never used, so no test crop is ever a training crop. With
    ``to_canvas=False`` the images are the 320x256 RGB windows themselves (what a test hands the detector)."""
    gen = np.random.default_rng(seed)
    cw, ch = SKY_CROP_WH
    per_clip = int(np.ceil(n / max(len(videos), 1)))
    imgs, src = [], []
    for v in videos:
        pool = [i for i in range(v.frames) if not skip_frames[0] <= i <= skip_frames[1]]
        # three candidate frames per crop wanted: near a close drone a frame may have no clear window
        want = set(gen.choice(pool, min(3 * per_clip, len(pool)), replace=False).tolist())
        labels = read_labels(v, data_root)
        cap = cv2.VideoCapture(str(v.video_path(data_root)))
        i, got = 0, 0
        while want and got < per_clip and len(imgs) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if i in want:
                want.discard(i)
                h, w = frame.shape[:2]
                boxes = np.array([r[1:] for r in labels.get(i, [])], np.float64).reshape(-1, 4)
                for _ in range(20):
                    x0, y0 = int(gen.integers(0, w - cw + 1)), int(gen.integers(0, h - ch + 1))
                    clear = ((boxes[:, 2] < x0 - margin_px) | (boxes[:, 0] > x0 + cw + margin_px)
                             | (boxes[:, 3] < y0 - margin_px) | (boxes[:, 1] > y0 + ch + margin_px))
                    if clear.all():
                        win = frame[y0:y0 + ch, x0:x0 + cw]
                        imgs.append(_to_canvas(win)[0] if to_canvas else cv2.cvtColor(win, cv2.COLOR_BGR2RGB))
                        src.append(f"sky:{v.name}/{i}/x{x0}_y{y0}")
                        got += 1
                        break
            i += 1
        cap.release()
    empty = np.zeros((0, 5), np.float32)
    shape = (0, *(CANVAS_WH if to_canvas else SKY_CROP_WH)[::-1], 3)
    return FrameSet(np.stack(imgs) if imgs else np.zeros(shape, np.uint8), [empty] * len(imgs), src)
