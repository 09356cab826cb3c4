"""Appearance re-detection of the engaged target when the detector misses it (a correlation-tracker fallback).

At close range the shipped detector loses a clearly visible target for a few frames at a time: a rolled delta
wing 50 px across scores under the threshold, motion blur smears it (lockstep homing, ~0.9 s gaps in the last
45 m). The track then coasts on its prediction and the line of sight the guidance flies drifts by degrees just
when it matters. Detector-plus-correlation trackers are the usual cure (e.g. the detect-then-track loops of
counter-UAS trackers; Bolme et al., CVPR 2010, for correlation tracking): keep the target's last *detected*
appearance and, while the detector is silent, find it again by normalized cross-correlation
(``cv2.matchTemplate``, ``TM_CCOEFF_NORMED``) in a window around the tracker's predicted box.

What keeps it honest:

* the template only ever comes from a detector box on the track (never from a previous match), so a match
  cannot drift onto the background by feeding itself; after ``max_frames_n`` frames without a detection it
  stops, and the track coasts or is lost as before;
* the template is rotated by the camera's roll about its optical axis since the template was taken (known from
  the attitudes at both captures) and scaled to the predicted box (the tracker's size prediction), so an
  airframe rolling at hundreds of degrees per second or closing at 60 m/s still matches;
* a match counts only above ``min_ncc`` and when it stands out of its surroundings (peak-to-sidelobe ratio at
  least ``min_psr``: a template that is mostly plain sky correlates with plain sky anywhere, and would only echo
  the tracker's own prediction back as a measurement); its box gets a modest score (``score x ncc``) and the
  track's class.

Matching runs on a pyramid level where the template is at most ``work_side_px`` across (about a millisecond
for a 300 px search window on one core); the found box is located to that level's pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class TemplateConfig:
    """``min_side_px``: smaller boxes have too little texture to correlate (the ROI detector and the tracker's
    prediction serve them). ``search_factor``: the search window reaches this many box sides (plus
    ``search_pad_px``) around the predicted centre."""

    min_ncc: float = 0.7
    min_psr: float = 4.0
    min_contrast: float = 1.5
    max_frames_n: int = 15
    margin_frac: float = 0.25
    min_side_px: float = 20.0
    search_factor: float = 1.0
    search_pad_px: float = 16.0
    work_side_px: float = 32.0
    score: float = 0.6

    def __post_init__(self) -> None:
        if not (0.0 < self.min_ncc < 1.0 and self.max_frames_n >= 1 and self.margin_frac >= 0.0
                and self.min_side_px >= 4.0 and self.search_factor > 0.0 and self.work_side_px >= 8.0
                and 0.0 < self.score <= 1.0 and self.min_psr >= 0.0 and self.min_contrast >= 0.0):
            raise ValueError(f"invalid template re-detection settings: {self}")


def _gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def peak_to_sidelobe(response: np.ndarray, peak_xy: tuple[int, int], exclude_px: int = 5) -> float:
    """Peak-to-sidelobe ratio of a correlation map (Bolme et al. 2010): (peak - mean) / std of the map outside a
    ``(2 exclude_px + 1)``-square around the peak. A distinct match stands many sigmas above its surroundings; a
    template of plain sky on plain sky gives a smooth map whose maximum is anywhere (a ratio of 2-4). 0 when
    too little of the map is left to judge."""
    r = np.asarray(response, dtype=np.float64)
    x, y = int(peak_xy[0]), int(peak_xy[1])
    mask = np.ones(r.shape, dtype=bool)
    mask[max(y - exclude_px, 0):y + exclude_px + 1, max(x - exclude_px, 0):x + exclude_px + 1] = False
    side = r[mask]
    if side.size < 20:
        return 0.0
    sd = float(side.std())
    return (float(r[y, x]) - float(side.mean())) / max(sd, 1e-6)


def appearance_contrast(patch: np.ndarray, margin_x_px: int, margin_y_px: int) -> float:
    """How much the box inside ``patch`` (the patch minus its margins) stands out from the margin ring: the
    spread of the box's grey levels about the ring's mean over the ring's own spread (plus one grey level of
    noise). About 1 for a box on plain sky, several for a target in it."""
    p = np.asarray(patch, dtype=np.float64)
    inner = np.zeros(p.shape, dtype=bool)
    inner[margin_y_px:p.shape[0] - margin_y_px, margin_x_px:p.shape[1] - margin_x_px] = True
    ring = p[~inner]
    if ring.size < 8 or not inner.any():
        return 0.0
    mu = float(ring.mean())
    return math.sqrt(float(np.mean((p[inner] - mu) ** 2))) / (float(ring.std()) + 1.0)


def roll_about_optical_axis_rad(r_ned_from_cam_then: np.ndarray, r_ned_from_cam_now: np.ndarray) -> float:
    """Angle (rad) by which image content turned about the optical axis between two captures (camera frame
    x right, y down, z forward; positive = clockwise on screen, i.e. +x toward +y)."""
    r_rel = np.asarray(r_ned_from_cam_now).T @ np.asarray(r_ned_from_cam_then)   # cam_then -> cam_now
    return math.atan2(float(r_rel[1, 0]), float(r_rel[0, 0]))


class TemplateRedetector:
    """Keeps one track's last detected appearance and finds it again in later frames (see the module docs)."""

    def __init__(self, config: TemplateConfig | None = None) -> None:
        self.config = config or TemplateConfig()
        self.track_id: int | None = None
        self._patch: np.ndarray | None = None        # grey patch: the box plus margin
        self._box_wh = (0.0, 0.0)                    # the detected box's size (px) inside the patch
        self._r_cam: np.ndarray | None = None        # camera attitude (NED from cam) when the patch was taken
        self.frames_since_detection = 0

    def reset(self) -> None:
        self.track_id, self._patch, self._r_cam = None, None, None
        self.frames_since_detection = 0

    @property
    def has_template(self) -> bool:
        return self._patch is not None

    def refresh(self, track_id: int, image: np.ndarray, box_xyxy_px, r_ned_from_cam: np.ndarray) -> bool:
        """Take the appearance of ``track_id`` from a detector box in ``image`` (BGR or grey). False (and no
        template) when the box is too small or not inside the frame."""
        cfg = self.config
        b = np.asarray(box_xyxy_px, dtype=np.float64)
        w, h = float(b[2] - b[0]), float(b[3] - b[1])
        self.reset()
        if not (np.all(np.isfinite(b)) and min(w, h) >= 2.0 and math.sqrt(w * h) >= cfg.min_side_px):
            return False
        mx, my = cfg.margin_frac * w, cfg.margin_frac * h
        x0, y0 = math.floor(b[0] - mx), math.floor(b[1] - my)
        x1, y1 = math.ceil(b[2] + mx), math.ceil(b[3] + my)
        hh, ww = image.shape[:2]
        if x0 < 0 or y0 < 0 or x1 > ww or y1 > hh:   # cut by the frame edge: the patch would not be the target's
            return False
        patch = _gray(image[y0:y1, x0:x1])
        if appearance_contrast(patch, round(mx), round(my)) < cfg.min_contrast:   # the box holds no distinct object
            return False
        self.track_id, self._patch, self._box_wh = track_id, patch.copy(), (w, h)
        self._r_cam = np.asarray(r_ned_from_cam, dtype=np.float64).copy()
        return True

    def find(self, track_id: int, image: np.ndarray, predicted_xyxy_px, r_ned_from_cam: np.ndarray
             ) -> tuple[np.ndarray, float] | None:
        """Box (xyxy px) and NCC of the template's best match near ``predicted_xyxy_px``, or None (no template
        for this track, too many frames without a detection, no match above ``min_ncc``). Counts the frame."""
        cfg = self.config
        if self._patch is None or track_id != self.track_id or self.frames_since_detection >= cfg.max_frames_n:
            return None
        self.frames_since_detection += 1
        p = np.asarray(predicted_xyxy_px, dtype=np.float64)
        if not np.all(np.isfinite(p)):
            return None
        pw, ph = max(p[2] - p[0], 1.0), max(p[3] - p[1], 1.0)
        scale = float(np.clip(math.sqrt(pw * ph / max(self._box_wh[0] * self._box_wh[1], 1e-9)), 0.5, 2.0))
        roll = roll_about_optical_axis_rad(self._r_cam, r_ned_from_cam)
        tw, th = self._box_wh[0] * scale, self._box_wh[1] * scale
        # pyramid level: the template's target part at most work_side_px across
        down = max(1.0, math.sqrt(tw * th) / cfg.work_side_px)
        k = scale / down
        ph_, pw_ = self._patch.shape
        m = cv2.getRotationMatrix2D((pw_ / 2.0, ph_ / 2.0), -math.degrees(roll), k)
        out_w, out_h = max(round(pw_ * k), 4), max(round(ph_ * k), 4)
        m[0, 2] += out_w / 2.0 - pw_ / 2.0
        m[1, 2] += out_h / 2.0 - ph_ / 2.0
        templ = cv2.warpAffine(self._patch, m, (out_w, out_h), flags=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
        cx, cy = 0.5 * (p[0] + p[2]), 0.5 * (p[1] + p[3])
        half = cfg.search_factor * math.sqrt(tw * th) + cfg.search_pad_px + 0.5 * max(out_w, out_h) * down
        hh, ww = image.shape[:2]
        sx0, sy0 = int(max(cx - half, 0)), int(max(cy - half, 0))
        sx1, sy1 = int(min(cx + half, ww)), int(min(cy + half, hh))
        if sx1 - sx0 < 8 or sy1 - sy0 < 8:
            return None
        search = _gray(image[sy0:sy1, sx0:sx1])
        if down > 1.0:
            size_wh = (max(round((sx1 - sx0) / down), 1), max(round((sy1 - sy0) / down), 1))
            search = cv2.resize(search, size_wh, interpolation=cv2.INTER_AREA)
        if search.shape[0] < out_h or search.shape[1] < out_w or float(templ.std()) < 1.0:
            return None
        res = cv2.matchTemplate(search, templ, cv2.TM_CCOEFF_NORMED)
        _, ncc, _, loc = cv2.minMaxLoc(res)
        if not (math.isfinite(ncc) and ncc >= cfg.min_ncc) or peak_to_sidelobe(res, loc) < cfg.min_psr:
            return None
        mu = sx0 + (loc[0] + out_w / 2.0) * down
        mv = sy0 + (loc[1] + out_h / 2.0) * down
        box = np.array([mu - tw / 2.0, mv - th / 2.0, mu + tw / 2.0, mv + th / 2.0])
        return box, float(ncc)


__all__ = ["TemplateConfig", "TemplateRedetector", "appearance_contrast", "peak_to_sidelobe", "roll_about_optical_axis_rad"]
