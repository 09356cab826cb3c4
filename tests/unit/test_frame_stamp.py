"""Capture time carried in the frame's pixels (autonomy.camera.stamp): it survives JPEG, is read back to the
microsecond, is painted over once read, and an ordinary frame never decodes as one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from autonomy.camera.model import CameraError
from autonomy.camera.sources import V4L2_MAX_AGE_S, LiveCaptureSource, v4l2_capture_time_s
from autonomy.camera.stamp import STAMP_ROWS, STAMP_WIDTH_PX, read_frame_stamp, write_frame_stamp
from autonomy.clock import SimClock


def _sky(rng, h=96, w=640) -> np.ndarray:
    """A textured frame: a vertical gradient with noise, a dark blob in the stamp's corner."""
    g = np.linspace(rng.uniform(60, 200), rng.uniform(60, 200), h)[:, None, None]
    img = g + rng.normal(0.0, rng.uniform(1, 25), (h, w, 3))
    img[:6, :40] = rng.uniform(0, 80)
    return img.clip(0, 255).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@pytest.mark.parametrize("quality", [50, 75, 90, 98])
def test_stamp_survives_jpeg_to_the_microsecond(quality):
    rng = np.random.default_rng(quality)
    for _ in range(20):
        img = _sky(rng)
        t_s = float(rng.uniform(0.0, 3e5))
        write_frame_stamp(img, t_s)
        back = _jpeg(img, quality)
        got = read_frame_stamp(back)
        assert got is not None
        assert got == pytest.approx(round(t_s * 1e6) * 1e-6, abs=1e-9)
        # painted over with the row below: the detector never sees the pattern
        np.testing.assert_array_equal(back[:STAMP_ROWS, :STAMP_WIDTH_PX],
                                      np.repeat(back[STAMP_ROWS:STAMP_ROWS + 1, :STAMP_WIDTH_PX], STAMP_ROWS, 0))


def test_grey_frames_carry_it_too():
    img = _sky(np.random.default_rng(1))[:, :, 0].copy()
    write_frame_stamp(img, 12.345678)
    assert read_frame_stamp(img) == pytest.approx(12.345678, abs=1e-9)


def test_ordinary_frames_have_no_stamp_and_are_left_alone():
    rng = np.random.default_rng(7)
    frames = [_sky(rng) for _ in range(50)]
    # the worst case for a black/white block code: a hard-edged black/white checker in the corner
    chk = np.zeros((96, 640, 3), np.uint8)
    chk[:8, ::16] = 255
    frames.append(chk)
    for img in frames:
        before = img.copy()
        assert read_frame_stamp(_jpeg(img, 90)) is None
        assert read_frame_stamp(img) is None
        np.testing.assert_array_equal(img, before)


def test_a_damaged_stamp_is_no_stamp():
    img = _sky(np.random.default_rng(3))
    write_frame_stamp(img, 99.0)
    img[:STAMP_ROWS, 0:STAMP_ROWS] = 255 - img[:STAMP_ROWS, 0:STAMP_ROWS]   # the marker's first bit flipped
    assert read_frame_stamp(img) is None
    img2 = _sky(np.random.default_rng(4))
    write_frame_stamp(img2, 99.0)
    img2[:STAMP_ROWS, 20 * STAMP_ROWS:21 * STAMP_ROWS] = 128               # a block neither black nor white
    assert read_frame_stamp(img2) is None


def test_bad_stamp_input_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the stamp"):
        write_frame_stamp(np.zeros((8, 100, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="outside"):
        write_frame_stamp(np.zeros((96, 640, 3), np.uint8), -1.0)
    with pytest.raises(ValueError, match="uint8"):
        write_frame_stamp(np.zeros((96, 640, 3), np.float32), 1.0)
    assert read_frame_stamp(np.zeros((4, 4, 3), np.uint8)) is None


def test_live_source_reads_the_stamp_into_the_frame(tmp_path):
    """A stamped MJPEG stream read by the ordinary live source: each frame's autopilot time, band erased;
    unstamped frames keep None and are counted."""
    p = tmp_path / "stamped.avi"
    size = (640, 96)
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    assert w.isOpened()
    rng = np.random.default_rng(5)
    for i in range(20):
        img = _sky(rng, size[1], size[0])
        if i != 7:
            write_frame_stamp(img, 100.0 + i / 30.0)
        w.write(img)
    w.release()
    for stamped in (True, False):
        src = LiveCaptureSource(str(p), SimClock(), frame_stamp="autopilot_time" if stamped else "none")
        got = []
        while (f := src.read(timeout_s=1.0)) is not None:
            got.append(f)
        src.close()
        assert got and got[-1].index == 19
        for f in got:
            if not stamped or f.index == 7:
                assert f.t_capture_autopilot_s is None
            else:
                assert f.t_capture_autopilot_s == pytest.approx(100.0 + f.index / 30.0, abs=1e-6)
                assert np.ptp(f.image[:STAMP_ROWS, :STAMP_WIDTH_PX].astype(int), axis=0).max() == 0
        assert src.unstamped_frames == (1 if stamped else 0)   # the grabber sees every frame of a file


def test_v4l2_buffer_time_on_our_clock():
    """A V4L2 buffer timestamp (CLOCK_MONOTONIC, ms) moved onto the stack's clock by the two clocks read together
    at the grab; the exposure-to-timestamp delay comes off; a time in the future, too old, or absent is refused."""
    mono_now, ours_now = 5000.250, 12.000            # the two clocks read at the grab
    assert v4l2_capture_time_s(5000_230.0, mono_now, ours_now) == pytest.approx(11.980, abs=1e-9)
    assert v4l2_capture_time_s(5000_230.0, mono_now, ours_now, latency_s=0.008) == pytest.approx(11.972, abs=1e-9)
    assert v4l2_capture_time_s(5000_300.0, mono_now, ours_now) is None            # 50 ms in the future
    assert v4l2_capture_time_s((mono_now - V4L2_MAX_AGE_S - 0.01) * 1e3, mono_now, ours_now) is None
    assert v4l2_capture_time_s(0.0, mono_now, ours_now) is None                   # no timestamp (first capture)
    assert v4l2_capture_time_s(1_700_000_000_000.0, mono_now, ours_now) is None   # a wall-clock (REALTIME) stamp


def test_v4l2_stamps_need_a_v4l2_device(tmp_path):
    p = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for _ in range(3):
        w.write(np.zeros((48, 64, 3), np.uint8))
    w.release()
    with pytest.raises(CameraError, match="needs a V4L2 device"):
        LiveCaptureSource(str(p), SimClock(), frame_stamp="v4l2")
    with pytest.raises(CameraError, match="unknown frame_stamp"):
        LiveCaptureSource(str(p), SimClock(), frame_stamp="exif")
