import cv2
import numpy as np
import pytest

from autonomy.camera.model import CameraError
from autonomy.camera.sources import LiveCaptureSource, VideoFileSource, opencv_has_gstreamer
from autonomy.clock import SimClock


def _write_video(path, n=12, size=(64, 48), fps=10.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert w.isOpened()
    for i in range(n):
        img = np.full((size[1], size[0], 3), i * 20 % 255, np.uint8)
        w.write(img)
    w.release()


def test_video_file_source_stamps_frames_at_file_rate(tmp_path):
    p = tmp_path / "clip.avi"
    _write_video(p)
    src = VideoFileSource(p, t0_s=5.0)
    frames = list(src)
    src.close()
    assert len(frames) == 12
    assert [f.index for f in frames] == list(range(12))
    np.testing.assert_allclose([f.t_capture_s for f in frames], 5.0 + np.arange(12) / 10.0)


def test_missing_sources_raise_camera_error(tmp_path):
    with pytest.raises(CameraError, match="not found"):
        VideoFileSource(tmp_path / "nope.mp4")
    with pytest.raises(CameraError):
        LiveCaptureSource(str(tmp_path / "nope.mp4"), SimClock())
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(CameraError):
        VideoFileSource(bad)


def test_gstreamer_pipeline_without_support_is_a_clear_error():
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    with pytest.raises(CameraError, match="GStreamer"):
        LiveCaptureSource("videotestsrc ! appsink", SimClock())


def test_live_source_keeps_newest_and_reports_end(tmp_path):
    p = tmp_path / "clip.avi"
    _write_video(p, n=30)
    src = LiveCaptureSource(str(p), SimClock())
    seen = []
    while (f := src.read(timeout_s=1.0)) is not None:
        seen.append(f.index)
    src.close()
    # a file read as a live stream delivers faster than we read: frames are skipped, never re-delivered
    assert seen == sorted(set(seen)) and seen[-1] == 29
    assert src.error == "camera stopped delivering frames"
    assert src.dropped_frames + len(seen) >= 30 - 1
