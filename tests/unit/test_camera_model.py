import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.camera.model import (
    Camera,
    CameraError,
    CameraIntrinsics,
    CameraMount,
    bearings_cam_to_pixels,
    camera_from_dict,
    load_camera_toml,
    pixels_to_bearings_cam,
)
from autonomy.geometry import euler_to_quat

DIST = (-0.12, 0.03, 0.001, -0.0005, 0.0)


def test_default_camera_matches_design():
    cam = Camera.default()
    assert (cam.intrinsics.width_px, cam.intrinsics.height_px) == (1280, 720)
    assert abs(math.degrees(cam.intrinsics.hfov_rad) - 70.0) < 1e-9
    assert abs(math.degrees(cam.mount.tilt_up_rad) - 20.0) < 1e-9


def test_principal_point_looks_along_tilted_axis_when_level():
    cam = Camera.default()
    c = np.array([cam.intrinsics.cx_px, cam.intrinsics.cy_px])
    los = cam.pixels_to_los_ned(c, euler_to_quat(0, 0, 0))
    np.testing.assert_allclose(los, [math.cos(math.radians(20)), 0.0, -math.sin(math.radians(20))], atol=1e-12)


def test_right_of_image_is_east_when_facing_north():
    cam = Camera(CameraIntrinsics.from_hfov(640, 480, 60.0), CameraMount(tilt_up_rad=0.0))
    los = cam.pixels_to_los_ned(np.array([639.0, 239.5]), euler_to_quat(0, 0, 0))
    assert los[1] > 0.4 and abs(los[2]) < 1e-9


@settings(max_examples=60)
@given(st.floats(0, 1279), st.floats(0, 719), st.floats(-0.5, 0.5), st.floats(-0.4, 0.4), st.floats(-3, 3))
def test_pixel_los_round_trip_with_distortion(u, v, roll, pitch, yaw):
    intr = CameraIntrinsics(1280, 720, 900.0, 905.0, 640.2, 359.7, DIST)
    cam = Camera(intr, CameraMount())
    q = euler_to_quat(roll, pitch, yaw)
    los = cam.pixels_to_los_ned(np.array([u, v]), q)
    assert abs(np.linalg.norm(los) - 1) < 1e-12
    uv, front = cam.los_ned_to_pixels(los, q)
    assert front
    np.testing.assert_allclose(uv, [u, v], atol=1e-3)


def test_behind_camera_is_flagged():
    cam = Camera.default()
    uv, front = cam.los_ned_to_pixels(np.array([[-1.0, 0, 0], [1.0, 0, 0]]), euler_to_quat(0, 0, 0))
    assert not front[0] and front[1]
    assert np.all(np.isnan(uv[0]))


def test_batch_shapes():
    intr = CameraIntrinsics.from_hfov(320, 240, 90)
    uv = np.random.default_rng(0).uniform(0, 200, size=(7, 2))
    b = pixels_to_bearings_cam(intr, uv)
    assert b.shape == (7, 3)
    uv2, _ = bearings_cam_to_pixels(intr, b)
    np.testing.assert_allclose(uv2, uv, atol=1e-9)


def test_scaled_intrinsics_keep_fov():
    intr = CameraIntrinsics.from_hfov(1280, 720, 70.0)
    s = intr.scaled(640, 360)
    assert abs(s.hfov_rad - intr.hfov_rad) < 1e-3


def test_bad_values_raise_camera_error(tmp_path):
    with pytest.raises(CameraError):
        CameraIntrinsics(0, 10, 1, 1, 0, 0)
    with pytest.raises(CameraError):
        CameraIntrinsics(10, 10, float("nan"), 1, 0, 0)
    with pytest.raises(CameraError):
        camera_from_dict({"height_px": 10})
    p = tmp_path / "cam.toml"
    p.write_text("[camera\nwidth_px=")
    with pytest.raises(CameraError, match="malformed"):
        load_camera_toml(p)
    with pytest.raises(CameraError, match="not found"):
        load_camera_toml(tmp_path / "missing.toml")


def test_load_toml(tmp_path):
    p = tmp_path / "cam.toml"
    p.write_text(
        "[camera]\nwidth_px = 640\nheight_px = 512\nfx_px = 500.0\ndist_coeffs = [-0.1, 0.01, 0, 0, 0]\n"
        "fps = 25.0\n[camera.mount]\ntilt_up_deg = 10.0\n"
    )
    cam = load_camera_toml(p)
    assert cam.intrinsics.fx_px == 500.0 and cam.intrinsics.fy_px == 500.0
    assert cam.fps == 25.0 and abs(cam.mount.tilt_up_rad - math.radians(10)) < 1e-12
    assert cam.intrinsics.dist_coeffs[0] == -0.1


def test_strong_barrel_distortion_at_wide_fov_round_trips():
    # k1 = -0.08 at 90 deg HFOV: the corners sit close to the fold of the lens model, where plain
    # fixed-point undistortion is still 1e-4 off after 8 steps; Newton must round-trip every pixel to 1e-6 px
    base = CameraIntrinsics.from_hfov(1280, 720, 90.0)
    intr = CameraIntrinsics(1280, 720, base.fx_px, base.fy_px, base.cx_px, base.cy_px, (-0.08, 0.0, 0, 0, 0))
    u, v = np.meshgrid(np.linspace(0, 1279, 33), np.linspace(0, 719, 19))
    uv = np.stack([u.ravel(), v.ravel()], axis=-1)
    b = pixels_to_bearings_cam(intr, uv)
    assert np.all(np.isfinite(b))
    uv2, front = bearings_cam_to_pixels(intr, b)
    assert np.all(front)
    np.testing.assert_allclose(uv2, uv, atol=1e-6)


def test_pixels_beyond_the_lens_model_fold_are_nan_not_wrong():
    # with k1 = -0.5 the radial map r*(1 + k1 r^2) folds at r = 0.816: farther distorted radii have no inverse
    intr = CameraIntrinsics(200, 200, 100.0, 100.0, 99.5, 99.5, (-0.5, 0.0, 0, 0, 0))
    b = pixels_to_bearings_cam(intr, np.array([[99.5 + 100 * 0.6, 99.5], [99.5 + 100 * 0.2, 99.5]]))
    assert np.all(np.isnan(b[0])) and np.all(np.isfinite(b[1]))
