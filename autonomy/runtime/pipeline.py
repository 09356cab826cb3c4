"""The onboard pipeline: one camera frame in, one setpoint out (DESIGN.md section 2).

Per frame, in order (each stage timed by :class:`~autonomy.runtime.timing.StageTimer`):

1. ``pose``: the vehicle attitude/position at the frame's *capture* time, interpolated from the bridge's
   state history (``state_at``), falling back to the newest state when the history does not cover it.
2. ``detect``: the detector on the whole frame, then ``roi``: re-detection at native resolution in a
   window around each live track's predicted box (small distant targets survive the downscaling).
3. ``track``: the tracker on the merged detections, with the capture-time attitude.
4. ``engage``: the engagement machine (cue, operator commands, gates) and its guidance law.
5. ``send``: the setpoint (or brake / RTL) handed to the vehicle link (the bridge's streamer).

``latency`` is frame capture to setpoint handed over, on the pipeline's clock. The same object runs under a
real clock (companion), a lockstep simulated clock (``sitl.world``) and a log clock (replay): only the
clock, the frame source and the vehicle link differ. Newest frame wins: callers hand over the newest
frame only (see :class:`autonomy.camera.sources.LiveCaptureSource`); :meth:`Pipeline.tick` keeps the
engagement logic (and its pipeline-stall watchdog) running between frames.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from autonomy.camera.model import Camera, pixels_to_bearings_cam
from autonomy.engagement import EngagementInput, EngagementMachine, EngagementOutput, State
from autonomy.geometry import los_angle_rad, los_to_az_el_deg
from autonomy.guidance.setpoint import brake_setpoint
from autonomy.perception.template import TemplateConfig, TemplateRedetector
from autonomy.runtime.timing import StageTimer
from autonomy.types import Detections, OperatorCommand, Setpoint, TargetCue, TargetTrack, VehicleState


class PipelineError(RuntimeError):
    """The pipeline cannot run (missing vehicle state, bad frame)."""


class VehicleLink(Protocol):
    """What the pipeline needs from the vehicle (``autonomy.mavlink.Bridge`` implements it)."""

    @property
    def state(self) -> VehicleState | None: ...
    def state_at(self, t_s: float) -> VehicleState | None: ...
    def poll_cues(self) -> list[TargetCue]: ...
    def poll_operator_commands(self) -> list[OperatorCommand]: ...
    def set_setpoint(self, sp: Setpoint) -> None: ...


class DetectorLike(Protocol):
    def detect(self, frame: np.ndarray, t_capture_s: float = 0.0) -> Detections: ...
    def detect_roi(self, frame: np.ndarray, center_uv_px, size_px, t_capture_s: float = 0.0,
                   scale: float = 1.0, score_threshold: float | None = None) -> Detections: ...


@dataclass(frozen=True)
class PipelineConfig:
    """``roi_*``: re-detection windows around live tracks (side = max(min, factor x predicted box), px);
    ``roi_max_tracks_n`` bounds the extra detector runs per frame; ``status_period_s`` how often the
    engagement state goes to the ground station as STATUSTEXT; ``hold_setpoint_on_final`` streams a brake
    setpoint in ABORT/HOLD (the autopilot's own RTL follows on RTL)."""

    roi_enabled: bool = True
    roi_min_px: float = 96.0
    roi_box_factor: float = 4.0
    roi_max_tracks_n: int = 2
    roi_merge_iou: float = 0.3
    full_frame_detect: bool = True
    status_period_s: float = 1.0
    send_rtl_command: bool = True
    cue_range: bool = True              # tracks that agree with a fresh cue get the cue's range (time-to-go)
    cue_range_gate_rad: float = 0.12    # plus 3 sigma of the cue position over its range
    cue_range_max_age_s: float = 5.0
    cue_roi: bool = True                # re-detect at native resolution where the cue says the target is
    cue_roi_px: float = 256.0           # window side (grown to 3 sigma of the cue position, capped at 2x)
    cue_roi_until_confirmed: bool = True  # stop once a confirmed track exists (its own ROI takes over)
    cue_span_filter: bool = False       # drop detections in the cue's direction too big for any target at the cued
                                        # range (engagement max_target_span_m x target_span_margin; see
                                        # drop_implausible_spans): ground texture the model calls "drone". Off: it
                                        # trusts the cue's range; with a wrong cue (the replay test's synthetic
                                        # 400 m cue on a close drone video) it drops the target
    roi_max_box_px: float = 160.0       # no ROI re-detection for a track whose predicted box is larger than this
                                        # (the full frame sees it; the window would be most of the image)
    # (0 = off) a track whose predicted box is larger than this is re-detected in its window shrunk so that the box
    # is this size: the shipped model, made for few-pixel drones, breaks a 45-105 px wing up into parts. Shahed and
    # fixed wing at 30-80 m, `python -m models.sim_eval --kinds shahed,fixed_wing --ranges-m 30,40,60,80 --n 24`:
    # found in 99 of 192 windows, against 76 at native resolution (`--roi-target-box-px 0`); Shahed at 30-40 m 22
    # against 9 of 48. Closed loop (lockstep families seeds 0-7, two sceneries): 74 of 112 against 75, see
    # tests/e2e/test_pipeline.py
    roi_target_box_px: float = 32.0
    cross_class_nms_iou: float = 0.0    # one box per object: of boxes of different classes overlapping by more
                                        # than this, keep the best-scoring one (0: off). The shipped model often
                                        # puts a "drone" and a "bird" box on one small target; both start tracks.
                                        # Off: no e2e benefit shown (quick seed 0 intercepts at 1.43 m either
                                        # way); the family e2e table of 2026-11-25 was measured with it off.
    roi_score_threshold: float = 0.0    # (0 = the detector's) detection threshold inside a track's ROI window
    roi_weak_gate_box: float = 0.0      # (0 = anywhere in the window) ... such a weak detection only this many
                                        # predicted box sizes from the track's predicted centre
    template_redetect: bool = True      # the engaged target, missed by the detector, is found again by correlation
                                        # with its last detected appearance (autonomy.perception.template)
    template_min_ncc: float = 0.7
    template_max_frames_n: int = 15     # frames in a row on the template alone (then the track coasts as before)

    def __post_init__(self) -> None:
        if self.roi_min_px < 8 or self.roi_box_factor <= 0 or self.roi_max_tracks_n < 0:
            raise PipelineError("roi_min_px >= 8, roi_box_factor > 0 and roi_max_tracks_n >= 0 are required")
        if not 0.0 < self.roi_merge_iou <= 1.0 or self.status_period_s <= 0:
            raise PipelineError("roi_merge_iou in (0, 1] and status_period_s > 0 are required")
        if not self.roi_max_box_px > 0:
            raise PipelineError("roi_max_box_px > 0 is required")
        if not (0.0 <= self.roi_score_threshold <= 1.0 and self.roi_weak_gate_box >= 0.0):
            raise PipelineError("roi_score_threshold must be in [0, 1] (0 = the detector's threshold) and "
                                "roi_weak_gate_box >= 0 (0 = anywhere in the window)")
        if not (math.isfinite(self.roi_target_box_px) and self.roi_target_box_px >= 0):
            raise PipelineError("roi_target_box_px >= 0 is required (0 = off)")
        if not 0.0 <= self.cross_class_nms_iou <= 1.0:
            raise PipelineError("cross_class_nms_iou in [0, 1] is required (0: off)")
        if not (0.0 < self.template_min_ncc < 1.0 and self.template_max_frames_n >= 1):
            raise PipelineError("template_min_ncc in (0, 1) and template_max_frames_n >= 1 are required")

    def roi_window(self, box_px: float) -> tuple[float, float]:
        """Re-detection window around a track whose predicted box's larger side is ``box_px``: the window's side
        (px of the frame, ``roi_box_factor`` x the box, at least ``roi_min_px``) and the factor it is shrunk by
        before detection (< 1 for a box over ``roi_target_box_px``)."""
        side = max(self.roi_min_px, self.roi_box_factor * box_px)
        t = self.roi_target_box_px
        return side, (min(1.0, t / box_px) if t > 0 and box_px > 0 else 1.0)


@dataclass
class StepResult:
    """What one pipeline step did (also what the demo draws on the frame)."""

    t_s: float
    t_capture_s: float | None
    state: State
    output: EngagementOutput
    detections: Detections | None = None
    tracks: tuple[TargetTrack, ...] = ()
    setpoint: Setpoint | None = None
    latency_s: float | None = None
    roi_boxes: list[np.ndarray] = field(default_factory=list)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` (4,) against boxes ``b`` (N, 4), xyxy."""
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(ua, 1e-9)


def keep_weak_track_detections(dets: Detections, class_name: str, strong: float, centre_uv_px=None,
                               radius_px: float = math.inf) -> Detections:
    """``dets`` without the boxes under ``strong`` that are not of ``class_name`` or whose centre lies farther
    than ``radius_px`` from ``centre_uv_px``: a weak detection may carry on the track whose window it was found
    in, where that track is predicted, as the class that track already holds; never change a class."""
    if len(dets) == 0:
        return dets
    cls = np.array([dets.class_names[c] == class_name for c in dets.class_ids], dtype=bool)
    if centre_uv_px is not None and math.isfinite(radius_px):
        cu = 0.5 * (dets.xyxy_px[:, 0] + dets.xyxy_px[:, 2]) - centre_uv_px[0]
        cv = 0.5 * (dets.xyxy_px[:, 1] + dets.xyxy_px[:, 3]) - centre_uv_px[1]
        cls &= np.hypot(cu, cv) <= radius_px
    ok = (dets.scores >= strong) | cls
    return Detections(dets.t_capture_s, dets.xyxy_px[ok], dets.scores[ok], dets.class_ids[ok], dets.class_names)


def merge_detections(base: Detections, extra: Detections, iou: float) -> Detections:
    """``base`` plus the boxes of ``extra`` that overlap no ``base`` box by more than ``iou``; where they do,
    the higher-scoring (ROI, native-resolution) box replaces the base one. Class names must match."""
    if len(extra) == 0:
        return base
    if len(base) == 0:
        return Detections(base.t_capture_s, extra.xyxy_px, extra.scores, extra.class_ids, base.class_names)
    xyxy, sc, cid = base.xyxy_px.copy(), base.scores.copy(), base.class_ids.copy()
    add_b, add_s, add_c = [], [], []
    for k in range(len(extra)):
        ov = _iou(extra.xyxy_px[k], xyxy)
        j = int(np.argmax(ov))
        if ov[j] > iou:
            if extra.scores[k] > sc[j]:
                xyxy[j], sc[j], cid[j] = extra.xyxy_px[k], extra.scores[k], extra.class_ids[k]
        else:
            add_b.append(extra.xyxy_px[k])
            add_s.append(extra.scores[k])
            add_c.append(extra.class_ids[k])
    if add_b:
        xyxy = np.vstack([xyxy, np.array(add_b)])
        sc = np.concatenate([sc, np.array(add_s)])
        cid = np.concatenate([cid, np.array(add_c, dtype=np.int64)])
    return Detections(base.t_capture_s, xyxy, sc, cid, base.class_names)


def suppress_cross_class(dets: Detections, iou: float) -> Detections:
    """Class-agnostic suppression: greedily, by descending score, drop every box that overlaps a kept box
    of ANOTHER class by more than ``iou`` (same-class overlaps were already settled by the detector's NMS).
    The frame then carries one class per object: its most confident one."""
    n = len(dets)
    if n < 2 or iou <= 0.0:
        return dets
    order = np.argsort(-dets.scores, kind="stable")
    keep: list[int] = []
    for k in order:
        if keep:
            kb = np.asarray(keep)
            other = dets.class_ids[kb] != dets.class_ids[k]
            if np.any(other & (_iou(dets.xyxy_px[k], dets.xyxy_px[kb]) > iou)):
                continue
        keep.append(int(k))
    if len(keep) == n:
        return dets
    kb = np.sort(np.asarray(keep))
    return Detections(dets.t_capture_s, dets.xyxy_px[kb], dets.scores[kb], dets.class_ids[kb], dets.class_names)


def box_diagonals_rad(camera: Camera, xyxy_px: np.ndarray) -> np.ndarray:
    """Angle (rad) between the top-left and bottom-right corner bearings of each box (N, 4) xyxy px:
    the angular size the tracker measures (distortion included)."""
    xyxy = np.asarray(xyxy_px, dtype=np.float64).reshape(-1, 4)
    if len(xyxy) == 0:
        return np.zeros(0)
    b1 = pixels_to_bearings_cam(camera.intrinsics, xyxy[:, 0:2])
    b2 = pixels_to_bearings_cam(camera.intrinsics, xyxy[:, 2:4])
    return np.arctan2(np.linalg.norm(np.cross(b1, b2), axis=1), np.einsum("ij,ij->i", b1, b2))


def drop_implausible_spans(dets: Detections, camera: Camera, q_body_to_ned: np.ndarray, cue_los_ned: np.ndarray,
                           range_lo_m: float, gate_rad: float, max_span_m: float,
                           min_size_rad: float = 0.0) -> Detections:
    """Detections minus those whose centre lies within ``gate_rad`` of the cue's line of sight ``cue_los_ned``
    (unit, NED) and whose span at the cue's nearest plausible range ``range_lo_m`` (box diagonal angle x range)
    exceeds ``max_span_m``: in the cue's direction, at that range, such a box is no aerial target (the shipped
    model fires "drone" at 0.4-0.5 on 200-300 px tree lines and fields; at 85 m that is ~40 m across).
    Boxes away from the cue are kept (their range is unknown), and so are boxes of at most ``min_size_rad``
    (the detector's smallest boxes are far larger than a distant target)."""
    n = len(dets)
    if n == 0 or not (range_lo_m > 0.0 and math.isfinite(max_span_m)):
        return dets
    size = box_diagonals_rad(camera, dets.xyxy_px)
    span = np.where(size > min_size_rad, size * range_lo_m, 0.0)
    ctr = np.column_stack([0.5 * (dets.xyxy_px[:, 0] + dets.xyxy_px[:, 2]),
                           0.5 * (dets.xyxy_px[:, 1] + dets.xyxy_px[:, 3])])
    los = camera.pixels_to_los_ned(ctr, q_body_to_ned)
    cosang = np.clip(los @ np.asarray(cue_los_ned, dtype=np.float64), -1.0, 1.0)
    bad = (span > max_span_m) & (np.arccos(cosang) <= gate_rad)
    if not np.any(bad):
        return dets
    keep = ~bad
    return Detections(dets.t_capture_s, dets.xyxy_px[keep], dets.scores[keep], dets.class_ids[keep],
                      dets.class_names)


class Pipeline:
    """Frame -> pose -> detect (+ROI) -> track -> engage -> setpoint. See the module docstring.

    ``detector`` None runs the pipeline without perception (the engagement flies on the cue; also the
    "without detector" latency baseline). ``tracker`` is an ``autonomy.tracking.Tracker``. ``clock`` gives
    ``now_s()``; ``wall`` measures stage durations (``time.perf_counter`` by default: processing cost is
    real even in a lockstep simulation). ``on_status`` receives STATUSTEXT lines for the ground station.
    """

    def __init__(self, config: PipelineConfig, camera: Camera, vehicle: VehicleLink, machine: EngagementMachine,
                 tracker: Any | None, detector: DetectorLike | None, clock: Any,
                 recorder: Any | None = None, timer: StageTimer | None = None,
                 on_status: Callable[[str], None] | None = None,
                 wall: Callable[[], float] = time.perf_counter) -> None:
        self.config = config
        self.camera = camera
        self.vehicle = vehicle
        self.machine = machine
        self.tracker = tracker
        self.detector = detector
        self.clock = clock
        self.recorder = recorder
        self.timer = timer or StageTimer()
        self.on_status = on_status
        self._wall = wall
        self.cue: TargetCue | None = None
        self.last_frame_t_s: float | None = None
        self.last_link_rx_t_s: float | None = None
        self.frames_processed = 0
        self.last: StepResult | None = None
        self._t_status = -math.inf
        self._rtl_sent = False
        self._n_decisions = 0
        self._template = TemplateRedetector(TemplateConfig(min_ncc=config.template_min_ncc,
                                                           max_frames_n=config.template_max_frames_n))

    # ------------------------------------------------------------------ inputs from the ground
    def _ground_inputs(self, now: float) -> tuple[OperatorCommand, ...]:
        for c in self.vehicle.poll_cues():
            if self.cue is None or c.t_s >= self.cue.t_s:
                self.cue = c
            self.last_link_rx_t_s = max(self.last_link_rx_t_s or -math.inf, c.t_s)
        cmds = tuple(self.vehicle.poll_operator_commands())
        for c in cmds:
            self.last_link_rx_t_s = max(self.last_link_rx_t_s or -math.inf, c.t_s)
        return cmds

    # ------------------------------------------------------------------ perception
    def _perceive(self, image: np.ndarray, t_cap: float, q: np.ndarray) -> tuple[Detections, list[np.ndarray]]:
        cfg = self.config
        w0 = self._wall()
        if cfg.full_frame_detect:
            dets = self.detector.detect(image, t_cap)
        else:
            dets = Detections.empty(t_cap, getattr(self.detector, "class_names", ("drone",)))
        w1 = self._wall()
        self.timer.record("detect", w1 - w0)
        rois: list[np.ndarray] = []
        if cfg.roi_enabled and self.tracker is not None and cfg.roi_max_tracks_n > 0:
            live = [tr for tr in (self.tracker.last_tracks or ()) if tr.status.value in ("confirmed", "coasting",
                                                                                          "tentative")]
            # the engaged track first (a coasting target must keep its window when clutter tracks score higher)
            engaged = self.last.output.engaged_track_id if self.last is not None else None
            live.sort(key=lambda tr: (tr.track_id != engaged, tr.status.value != "confirmed", -tr.score))
            h, w = image.shape[:2]
            n_roi = 0
            # boxes at or over the detector's own threshold stay whatever their class (roi_score_threshold)
            strong = getattr(getattr(self.detector, "config", None), "score_threshold", 0.0)
            for tr in live:
                if n_roi >= cfg.roi_max_tracks_n:
                    break
                box = self.tracker.predict_box(tr.track_id, q, t_cap)
                box_px = None if box is None else float(max(box[2] - box[0], box[3] - box[1]))
                if box_px is None or box_px > cfg.roi_max_box_px:
                    continue
                n_roi += 1
                cu, cv = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
                if not (0 <= cu < w and 0 <= cv < h):
                    continue
                side, scale = cfg.roi_window(box_px)
                side = min(side, float(min(w, h)))
                roi = self.detector.detect_roi(image, (cu, cv), side, t_cap, scale=scale,
                                               score_threshold=cfg.roi_score_threshold or None)
                if cfg.roi_score_threshold > 0.0:
                    radius = cfg.roi_weak_gate_box * box_px if cfg.roi_weak_gate_box > 0 else math.inf
                    roi = keep_weak_track_detections(roi, tr.class_name, strong, (cu, cv), max(radius, 4.0))
                dets = merge_detections(dets, roi, cfg.roi_merge_iou)
                rois.append(np.array([cu - side / 2, cv - side / 2, cu + side / 2, cv + side / 2]))
            self.timer.record("roi", self._wall() - w1)
        if cfg.cue_roi and self.cue is not None:
            w2 = self._wall()
            confirmed = any(tr.status.value == "confirmed" for tr in (self.tracker.last_tracks or ())) \
                if self.tracker is not None else False
            if not (cfg.cue_roi_until_confirmed and confirmed):
                win = self._cue_window(image, q, t_cap)
                if win is not None:
                    (cu, cv), side = win
                    roi = self.detector.detect_roi(image, (cu, cv), side, t_cap)
                    dets = merge_detections(dets, roi, cfg.roi_merge_iou)
                    rois.append(np.array([cu - side / 2, cv - side / 2, cu + side / 2, cv + side / 2]))
            self.timer.record("cue_roi", self._wall() - w2)
        if cfg.cross_class_nms_iou > 0.0:
            dets = suppress_cross_class(dets, cfg.cross_class_nms_iou)
        if cfg.template_redetect and self.tracker is not None:
            w3 = self._wall()
            dets = self._redetect_engaged(image, t_cap, q, dets)
            self.timer.record("template", self._wall() - w3)
        return dets, rois

    def _redetect_engaged(self, image: np.ndarray, t_cap: float, q: np.ndarray, dets: Detections) -> Detections:
        """The engaged track's appearance: taken from a detector box on its predicted box (IoU >= 0.2), or, when
        the detector missed it, found again by correlation (:class:`TemplateRedetector`) and added as a detection
        of the track's class."""
        eid = self.last.output.engaged_track_id if self.last is not None else None
        tr = next((t for t in (self.tracker.last_tracks or ()) if t.track_id == eid
                   and t.status.value in ("confirmed", "coasting")), None)
        if tr is None:
            self._template.reset()
            return dets
        pred = self.tracker.predict_box(tr.track_id, q, t_cap)
        if pred is None:
            return dets
        r_cam = self.camera.r_ned_from_cam(q)
        if len(dets):
            ov = _iou(pred, dets.xyxy_px)
            j = int(np.argmax(ov))
            if ov[j] >= 0.2:
                self._template.refresh(tr.track_id, image, dets.xyxy_px[j], r_cam)
                return dets
        if tr.class_name not in dets.class_names:
            return dets
        found = self._template.find(tr.track_id, image, pred, r_cam)
        if found is None:
            return dets
        box, ncc = found
        extra = Detections(t_cap, box[None, :], np.array([self._template.config.score * ncc]),
                           np.array([dets.class_names.index(tr.class_name)], dtype=np.int64), dets.class_names)
        return merge_detections(dets, extra, self.config.roi_merge_iou)

    def _cue_window(self, image: np.ndarray, q: np.ndarray, t_s: float):
        """Pixel centre and side of the window where the cue predicts the target (None: not in view)."""
        c, st = self.cue, self.vehicle.state
        if c is None or st is None or t_s - c.t_s > self.config.cue_range_max_age_s:
            return None
        d = np.asarray(c.pos_ned_m) + np.asarray(c.vel_ned_mps) * (t_s - c.t_s) - np.asarray(st.pos_ned_m)
        rng = float(np.linalg.norm(d))
        if rng < 1.0:
            return None
        uv, ok = self.camera.los_ned_to_pixels((d / rng)[None, :], q)
        if not bool(np.asarray(ok).reshape(-1)[0]):
            return None
        cu, cv = (float(x) for x in np.asarray(uv).reshape(-1, 2)[0])
        h, w = image.shape[:2]
        if not (0 <= cu < w and 0 <= cv < h):
            return None
        sigma_px = 3.0 * c.pos_std_m / rng * self.camera.intrinsics.fx_px
        side = float(min(max(self.config.cue_roi_px, 2.0 * sigma_px), 2.0 * self.config.cue_roi_px, min(w, h)))
        return (cu, cv), side

    # ------------------------------------------------------------------ one step
    def process_frame(self, image: np.ndarray | None, t_capture_s: float | None) -> StepResult:
        """Process the newest frame (``image`` None: no new frame, run the logic only; see :meth:`tick`)."""
        w_start = self._wall()
        now = float(self.clock.now_s())
        cmds = self._ground_inputs(now)
        veh_now = self.vehicle.state
        if veh_now is None:
            raise PipelineError("no vehicle state yet (is the link up?)")
        dets, tracks, rois = None, (), []
        if image is not None and t_capture_s is not None:
            if image.ndim not in (2, 3) or image.size == 0:
                raise PipelineError(f"bad frame shape {image.shape}")
            w0 = self._wall()
            st = self.vehicle.state_at(t_capture_s) or veh_now
            q = np.asarray(st.q_body_to_ned, dtype=np.float64)
            self.timer.record("pose", self._wall() - w0)
            if self.detector is not None:
                dets, rois = self._perceive(image, t_capture_s, q)
                if self.config.cue_span_filter:
                    dets = self._span_filter(dets, st, q, t_capture_s)
                if self.tracker is not None:
                    w2 = self._wall()
                    tracks = tuple(self.tracker.step(dets, q, t_capture_s))
                    if self.config.cue_range:
                        tracks = self._with_cue_range(tracks, st, t_capture_s)
                    self.timer.record("track", self._wall() - w2)
            self.last_frame_t_s = t_capture_s
            self.frames_processed += 1
        w3 = self._wall()
        out = self.machine.step(EngagementInput(
            now, veh_now, self.cue, tracks, cmds, last_link_rx_t_s=self.last_link_rx_t_s,
            last_frame_t_s=self.last_frame_t_s))
        self.timer.record("engage", self._wall() - w3)
        w4 = self._wall()
        sp = self._act(out, veh_now, now)
        w5 = self._wall()
        self.timer.record("send", w5 - w4)
        lat = None
        if image is not None and t_capture_s is not None:
            # capture -> setpoint: the wait before processing (clock) plus the processing itself (wall)
            lat = max(now - t_capture_s, 0.0) + (w5 - w_start)
            self.timer.record("latency", lat)
            self.timer.record("processing", w5 - w_start)
        res = StepResult(now, t_capture_s, out.state, out, dets, tracks, sp, lat, rois)
        self.last = res
        self._record(res)
        self._status(now, out)
        return res

    def _span_filter(self, dets: Detections, st: VehicleState, q: np.ndarray, t_s: float) -> Detections:
        """:func:`drop_implausible_spans` with the fresh cue (range minus 3 sigma; gate as ``cue_range``) and the
        engagement's ``max_target_span_m x target_span_margin``. No fresh cue: unchanged."""
        c = self.cue
        ecfg = self.machine.cfg
        if c is None or len(dets) == 0 or t_s - c.t_s > self.config.cue_range_max_age_s:
            return dets
        d = np.asarray(c.pos_ned_m) + np.asarray(c.vel_ned_mps) * (t_s - c.t_s) - np.asarray(st.pos_ned_m)
        rng = float(np.linalg.norm(d))
        if rng < 1.0:
            return dets
        gate = self.config.cue_range_gate_rad + 3.0 * c.pos_std_m / rng
        return drop_implausible_spans(dets, self.camera, q, d / rng, rng - 3.0 * c.pos_std_m, gate,
                                      ecfg.max_target_span_m * ecfg.target_span_margin,
                                      ecfg.span_check_min_px / self.camera.intrinsics.fx_px)

    def _with_cue_range(self, tracks: tuple[TargetTrack, ...], st: VehicleState, t_s: float) -> tuple:
        """Range for the tracks whose line of sight agrees with the cue: the camera gives bearing only,
        and the class size of a generic "drone" (0.5 m) is wrong by 5x for a Shahed-class wing."""
        c = self.cue
        if c is None or not tracks or t_s - c.t_s > self.config.cue_range_max_age_s:
            return tracks
        d = np.asarray(c.pos_ned_m) + np.asarray(c.vel_ned_mps) * (t_s - c.t_s) - np.asarray(st.pos_ned_m)
        rng = float(np.linalg.norm(d))
        if rng < 1.0:
            return tracks
        gate = self.config.cue_range_gate_rad + 3.0 * c.pos_std_m / rng
        out = []
        for tr in tracks:
            if tr.range_m is None and los_angle_rad(tr.los_ned, d) <= gate:
                tr = replace(tr, range_m=rng)
            out.append(tr)
        return tuple(out)

    def tick(self) -> StepResult:
        """No new frame: run the engagement logic on the latest inputs (watchdogs included)."""
        return self.process_frame(None, None)

    def _act(self, out: EngagementOutput, veh: VehicleState, now: float) -> Setpoint | None:
        if out.rtl:
            if self.config.send_rtl_command and not self._rtl_sent and hasattr(self.vehicle, "return_to_launch"):
                self._rtl_sent = True
                try:
                    self.vehicle.return_to_launch()
                except Exception as exc:  # noqa: BLE001 - the autopilot's own failsafe still applies
                    self._say(f"RTL command failed: {exc}")
            return None
        sp = out.setpoint
        if sp is None and out.brake:
            sp = brake_setpoint(now)
        if sp is None and out.state in (State.ABORT, State.HOLD):
            sp = brake_setpoint(now)
        if sp is not None:
            self.vehicle.set_setpoint(sp)
        return sp

    # ------------------------------------------------------------------ reporting
    def _say(self, text: str) -> None:
        if self.on_status is not None:
            self.on_status(text)

    def _status(self, now: float, out: EngagementOutput) -> None:
        new = self.machine.decisions[self._n_decisions:]
        self._n_decisions = len(self.machine.decisions)
        for d in new:
            if d.from_state is not d.to_state:
                self._say(f"ENG {d.from_state.value}->{d.to_state.value} {d.reason.value}")
        if out.state is State.AWAIT_AUTHORIZATION and out.engaged_track_id is not None and \
                now - self._t_status >= self.config.status_period_s:
            self._t_status = now
            cue = getattr(self.machine, "_cue_id", None)
            text = f"AUTH? track {out.engaged_track_id}" + (f" cue {cue}" if cue is not None else "")
            last = self.last
            for tr in (last.tracks if last is not None else ()):
                if tr.track_id == out.engaged_track_id:  # where to look: the track's bearing (NED, degrees)
                    az, el = los_to_az_el_deg(tr.los_ned)
                    text += f" az {az:.1f} el {el:.1f}"
            self._say(text)

    def _record(self, r: StepResult) -> None:
        rec = self.recorder
        if rec is None:
            return
        if r.detections is not None:
            rec.write(r.t_s, "detections", t_capture_s=r.t_capture_s, xyxy_px=r.detections.xyxy_px,
                      scores=r.detections.scores, class_ids=r.detections.class_ids)
        if r.tracks:
            rec.write(r.t_s, "tracks", tracks=[{"id": t.track_id, "status": t.status.value, "los_ned": t.los_ned,
                                                "los_rate_ned_radps": t.los_rate_ned_radps,
                                                "box": t.box_xyxy_px, "class": t.class_name} for t in r.tracks])
        for d in self.machine.decisions[self._n_decisions:]:
            rec.write(d.t_s, "decision", from_state=d.from_state.value, to_state=d.to_state.value,
                      reason=d.reason.value, details=d.details)
        if r.setpoint is not None:
            sp = r.setpoint
            rec.write(r.t_s, "setpoint", state=r.state.value, vel_ned_mps=sp.vel_ned_mps, acc_ned_mps2=sp.acc_ned_mps2,
                      yaw_rad=sp.yaw_rad)
        if r.latency_s is not None:
            rec.write(r.t_s, "latency", latency_s=r.latency_s)
