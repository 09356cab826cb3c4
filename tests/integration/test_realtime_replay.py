"""The same pipeline on a LOG clock: a real IR video (Anti-UAV, shared data) from a fixed ground camera,
replayed with the shipped detector and the tracker; deterministic, times are the video's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.camera.model import Camera, CameraIntrinsics, CameraMount
from autonomy.camera.sources import VideoFileSource
from autonomy.clock import SimClock
from autonomy.config import load_config
from autonomy.engagement import EngagementMachine, State
from autonomy.runtime.pipeline import Pipeline
from autonomy.runtime.replay import LogVehicle, replay_video
from autonomy.tracking import Tracker
from autonomy.types import VehicleState
from sitl.engagement_demo import SITL_CONFIG


def _run(video, cfg, n):
    from autonomy.perception.detector import Detector

    cam = Camera(CameraIntrinsics.from_hfov(640, 512, 20.0), CameraMount(math.radians(10.0)), 25.0)
    det = Detector(cfg.detector)
    src = VideoFileSource(video, t0_s=100.0, fps=25.0)
    still = VehicleState(0.0, np.zeros(3), np.zeros(3), np.array([1.0, 0, 0, 0]), armed=False)

    def make(clock):
        veh = LogVehicle([still], clock)
        return Pipeline(cfg.pipeline, cam, veh, EngagementMachine(cfg.engagement, cam), Tracker(cfg.tracker, cam),
                        det, clock)

    try:
        return replay_video(make, src, SimClock(100.0), max_frames=n)
    finally:
        src.close()


def test_pipeline_replays_real_video_on_the_log_clock(shared_data):
    cfg = load_config(SITL_CONFIG)
    from pathlib import Path

    if not Path(cfg.detector.model_path).is_file():
        pytest.skip("shipped detector not in this checkout yet")
    video = shared_data / "anti_uav_ir_track" / "seq18_ir.avi"
    if not video.is_file():
        pytest.skip(f"{video} absent")
    a = _run(video, cfg, 60)
    assert len(a) == 60
    assert [r.t_capture_s for r in a[:3]] == pytest.approx([100.0, 100.04, 100.08])
    assert all(r.state is State.IDLE for r in a)           # no cue, no engagement
    n_det = sum(len(r.detections) for r in a)
    assert n_det >= 20, n_det
    b = _run(video, cfg, 60)
    # deterministic replay: the same boxes and the same tracks, frame by frame
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.detections.xyxy_px, rb.detections.xyxy_px)
        assert [(t.track_id, t.status) for t in ra.tracks] == [(t.track_id, t.status) for t in rb.tracks]
