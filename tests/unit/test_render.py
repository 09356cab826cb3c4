"""Synthetic camera: geometry of labels against the camera model, exclusion rules, determinism, dataset."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from autonomy.camera.model import Camera, CameraIntrinsics, CameraMount
from autonomy.geometry import euler_to_quat, quat_to_rotmat
from sitl.render import (
    CLASS_OF_KIND,
    CLASSES,
    KINDS,
    NOMINAL_SIZE_M,
    Renderer,
    RenderError,
    RenderTarget,
    SceneParams,
    random_scene,
)
from sitl.render._kernels import finish_numba, finish_numpy
from sitl.render.dataset import DatasetMix, homing_view, make_dataset, sim_view_sample
from sitl.render.models import MeshLibrary

LEVEL = np.array([1.0, 0.0, 0.0, 0.0])


def _camera(w=320, h=240, hfov=60.0, dist=(0.0,) * 5, tilt_deg=0.0) -> Camera:
    b = CameraIntrinsics.from_hfov(w, h, hfov)
    return Camera(CameraIntrinsics(w, h, b.fx_px, b.fy_px, b.cx_px, b.cy_px, dist),
                  CameraMount(tilt_up_rad=math.radians(tilt_deg)))


def _plain_scene(**kw) -> SceneParams:
    base = {"noise_sigma_dn": 0.0, "optics_blur_sigma_px": 0.0, "vignette": 0.0, "jpeg_quality": 0, "cloud_cover": 0.0,
                "sun_glare": 0.0, "tree_cover": 0.0, "hill_height_m": 0.0, "visibility_m": 1e9}
    base.update(kw)
    return SceneParams(**base)


def _expected_box(cam: Camera, q_cam, cam_pos, t: RenderTarget):
    """Independent projection of the target's mesh vertices through Camera.los_ned_to_pixels."""
    mesh = MeshLibrary().mesh(t.kind, 0.0, t.anim_phase_rad)
    v = mesh.tris_body_m.reshape(-1, 3) * t.size_scale @ quat_to_rotmat(np.asarray(t.q_body_to_ned)).T
    uv, front = cam.los_ned_to_pixels(v + np.asarray(t.pos_ned_m) - cam_pos, q_cam)
    assert front.all()
    return uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()


@pytest.mark.parametrize("dist", [(0.0,) * 5, (-0.2, 0.05, 0.001, -0.001, 0.0)])
def test_label_box_is_the_projected_geometry(dist):
    cam = _camera(dist=dist, tilt_deg=10.0)
    r = Renderer(cam, _plain_scene())
    q_cam = euler_to_quat(0.1, -0.05, 0.3)
    cam_pos = np.array([10.0, -5.0, -40.0])
    # a target placed on the line of sight of a chosen off-centre pixel
    los = cam.pixels_to_los_ned(np.array([70.0, 180.0]), q_cam)
    t = RenderTarget("shahed", tuple(cam_pos + 150.0 * los), tuple(euler_to_quat(0.2, 0.1, 1.0)))
    f = r.render(cam_pos, q_cam, [t], None)
    assert len(f.labels) == 1
    lab = f.labels[0]
    np.testing.assert_allclose(lab.xyxy_px, _expected_box(cam, q_cam, cam_pos, t), atol=1e-6)
    cx, cy = 0.5 * (lab.xyxy_px[0] + lab.xyxy_px[2]), 0.5 * (lab.xyxy_px[1] + lab.xyxy_px[3])
    assert abs(cx - 70.0) < 6 and abs(cy - 180.0) < 6  # the model's centre lands on the chosen pixel
    assert lab.class_name == "drone" and lab.target_index == 0 and lab.visible_fraction == pytest.approx(1.0)
    # the target is actually drawn inside its box and nowhere else
    bg = r.render(cam_pos, q_cam, [], None).image.astype(int)
    diff = np.abs(f.image.astype(int) - bg).sum(axis=2) > 8
    ys, xs = np.nonzero(diff)
    assert len(xs) > 10
    assert xs.min() >= math.floor(lab.xyxy_px[0]) - 1 and xs.max() <= math.ceil(lab.xyxy_px[2]) + 1
    assert ys.min() >= math.floor(lab.xyxy_px[1]) - 1 and ys.max() <= math.ceil(lab.xyxy_px[3]) + 1


def test_box_size_scales_inverse_with_range():
    cam = _camera()
    r = Renderer(cam, _plain_scene())
    widths = []
    for rng_m in (15.0, 30.0, 60.0):
        f = r.render((0, 0, -50.0), LEVEL, [RenderTarget("quad_x8", (rng_m, 0.0, -50.0))], None)
        x0, _y0, x1, _y1 = f.labels[0].xyxy_px
        widths.append(x1 - x0)
    assert widths[0] / widths[1] == pytest.approx(2.0, rel=0.03)
    assert widths[1] / widths[2] == pytest.approx(2.0, rel=0.03)


def test_target_behind_camera_gives_no_label_and_is_not_drawn():
    cam = _camera()
    r = Renderer(cam, _plain_scene())
    t = RenderTarget("airliner", (-300.0, 0.0, -50.0))
    f = r.render((0, 0, -50.0), LEVEL, [t], None)
    assert f.labels == [] and f.excluded == []
    assert np.array_equal(f.image, r.render((0, 0, -50.0), LEVEL, [], None).image)


def test_small_and_outside_targets_are_excluded_with_a_reason():
    cam = _camera()
    r = Renderer(cam, _plain_scene())
    far = RenderTarget("fpv_quad", (2000.0, 0.0, -50.0))  # ~0.04 px
    off = RenderTarget("quad", (10.0, 30.0, -50.0))  # 71 deg right of a 60 deg FOV, in front
    near_edge = RenderTarget("helicopter", (60.0, 36.0, -50.0))  # straddles the right border
    f = r.render((0, 0, -50.0), LEVEL, [far, off, near_edge], None)
    reasons = {lab.target_index: lab.excluded for lab in f.excluded}
    assert reasons == {0: "too_small", 1: "outside"}
    (lab,) = f.labels
    assert lab.target_index == 2 and lab.class_name == "helicopter"
    assert 0.05 < lab.visible_fraction < 0.95
    assert lab.xyxy_px[2] == pytest.approx(cam.intrinsics.width_px - 0.5)


def test_seeded_determinism():
    cam = _camera()
    scene = random_scene(np.random.default_rng(7))
    t = [RenderTarget("bird", (80.0, 5.0, -60.0)), RenderTarget("quad", (40.0, -3.0, -52.0))]
    a = Renderer(cam, scene).render((0, 0, -50.0), euler_to_quat(0, 0.2, 0), t, np.random.default_rng(1), 0.3)
    b = Renderer(cam, scene).render((0, 0, -50.0), euler_to_quat(0, 0.2, 0), t, np.random.default_rng(1), 0.3)
    c = Renderer(cam, scene).render((0, 0, -50.0), euler_to_quat(0, 0.2, 0), t, np.random.default_rng(2), 0.3)
    assert np.array_equal(a.image, b.image) and a.labels == b.labels
    if scene.noise_sigma_dn > 0:
        assert not np.array_equal(a.image, c.image)
    assert random_scene(np.random.default_rng(3)) == random_scene(np.random.default_rng(3))


@pytest.mark.parametrize("dist", [(0.0,) * 5, (-0.25, 0.06, 0.0, 0.0, 0.0)])
def test_horizon_follows_attitude_and_lens(dist):
    """Sky above / ground below the pixel the camera model gives for a level line of sight."""
    cam = _camera(dist=dist)
    scene = _plain_scene(sky_horizon_bgr=(250, 250, 250), sky_zenith_bgr=(250, 250, 250), ground_bgr=(0, 0, 0),
                         ground_alt_bgr=(0, 0, 0))
    r = Renderer(cam, scene, bg_downscale=1)
    q_cam = euler_to_quat(math.radians(12.0), math.radians(5.0), 0.4)
    img = r.render((0, 0, -2.0), q_cam, [], None).image[..., 1].astype(int)
    for u in (15.0, 160.0, 300.0):
        los = cam.pixels_to_los_ned(np.array([u, 120.0]), q_cam)
        los[2] = 0.0  # level direction at that azimuth
        (uh, vh), _front = cam.los_ned_to_pixels(los, q_cam)
        col = round(uh)
        assert img[int(vh) - 3, col] > 200 and img[int(vh) + 4, col] < 50


def test_class_names_for_every_kind():
    cam = _camera()
    r = Renderer(cam, _plain_scene())
    for kind in KINDS:
        rng_m = NOMINAL_SIZE_M[kind] * cam.intrinsics.fx_px / 30.0  # ~30 px
        f = r.render((0, 0, -50.0), LEVEL, [RenderTarget(kind, (rng_m, 0, -50))], None)
        assert [l.class_name for l in f.labels] == [CLASS_OF_KIND[kind]]
        assert CLASS_OF_KIND[kind] in CLASSES
    assert {CLASS_OF_KIND[k] for k in ("quad", "quad_x8", "fpv_quad", "shahed", "fixed_wing")} == {"drone"}


def test_bad_input_is_a_clear_error():
    with pytest.raises(RenderError, match="kind"):
        RenderTarget("zeppelin", (0, 0, 0))
    with pytest.raises(RenderError, match="pos_ned_m"):
        RenderTarget("quad", (0, 0))
    r = Renderer(_camera(), _plain_scene())
    with pytest.raises(RenderError, match="q_body_to_ned"):
        r.render((0, 0, 0), (0, 0, 0, 0), [], None)
    with pytest.raises(RenderError, match="cam_pos"):
        r.render((0, float("nan"), 0), LEVEL, [], None)
    with pytest.raises(RenderError):
        SceneParams(mode="uv")


def test_make_dataset_writes_yolo_labels(tmp_path):
    stats = make_dataset(tmp_path, 6, np.random.default_rng(0), image_size=(160, 128))
    assert stats["images"] == 6
    assert (tmp_path / "classes.txt").read_text().split() == list(CLASSES)
    n_lines = 0
    for i in range(6):
        img = cv2.imread(str(tmp_path / "images" / f"{i:06d}.jpg"))
        assert img.shape == (128, 160, 3)
        for line in (tmp_path / "labels" / f"{i:06d}.txt").read_text().splitlines():
            c, cx, cy, w, h = line.split()
            assert 0 <= int(c) < len(CLASSES)
            assert all(0.0 <= float(v) <= 1.0 for v in (cx, cy, w, h))
            n_lines += 1
    assert n_lines == sum(stats[f"n_{c}"] for c in CLASSES) > 0


def test_numba_kernels_match_numpy_reference():
    cam = _camera(dist=(-0.1, 0.01, 0.0, 0.0, 0.0))
    scene = SceneParams(cloud_cover=0.6, tree_cover=0.8, hill_height_m=150.0, sun_azimuth_rad=0.3,
                        sun_elevation_rad=0.15, noise_sigma_dn=3.0, vignette=0.3, gamma=1.2)
    fast, ref = Renderer(cam, scene, bg_downscale=1), Renderer(cam, scene, bg_downscale=1, use_numba=False)
    for q, pos in ((euler_to_quat(0.2, 0.1, 0.3), (5.0, 3.0, -20.0)), (euler_to_quat(-0.1, -0.3, 2.0), (0, 0, -300.0))):
        a, da = fast._background_lowres(np.asarray(pos), q)
        b, db = ref._background_lowres(np.asarray(pos), q)
        d = np.abs(a - b)
        assert np.percentile(d, 99.5) < 0.5 and d.mean() < 0.05  # float32 vs float64 at region edges only
        assert np.mean(np.isclose(da, db, rtol=1e-3)) > 0.995
        assert np.any(da < 1e4) and np.any(da >= 1e9)  # terrain and sky both in view
        ia = fast.render(pos, q, [RenderTarget("quad", (40.0, 3.0, -22.0))], np.random.default_rng(5)).image
        ib = ref.render(pos, q, [RenderTarget("quad", (40.0, 3.0, -22.0))], np.random.default_rng(5)).image
        assert np.mean(np.abs(ia.astype(int) - ib.astype(int))) < 0.1
    img = np.random.default_rng(0).integers(0, 256, (20, 90)).astype(np.uint8)  # 20 rows of 30 BGR pixels
    r2 = np.random.default_rng(1).uniform(0.0, 2.5, (20, 90)).astype(np.float32)
    noise = np.random.default_rng(2).normal(0, 1, (25, 105)).astype(np.float32)
    for nz in (noise, np.zeros((0, 0), np.float32)):
        o1, o2 = np.empty_like(img), np.empty_like(img)
        finish_numba(img, r2, 1.1, 0.3, nz, 4.0, 3, 4, o1)
        finish_numpy(img, r2, 1.1, 0.3, nz, 4.0, 3, 4, o2)
        assert np.abs(o1.astype(int) - o2.astype(int)).max() <= 1


def test_make_dataset_same_output_for_any_worker_count(tmp_path):
    a = make_dataset(tmp_path / "a", 4, np.random.default_rng(9), image_size=(96, 80))
    b = make_dataset(tmp_path / "b", 4, np.random.default_rng(9), image_size=(96, 80), workers=2)
    assert a == b
    for i in range(4):
        name = f"labels/{i:06d}.txt"
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
        ia = cv2.imread(str(tmp_path / "a" / f"images/{i:06d}.jpg"))
        ib = cv2.imread(str(tmp_path / "b" / f"images/{i:06d}.jpg"))
        assert np.array_equal(ia, ib)


def test_motion_blur_smears_along_relative_motion_and_boxes_cover_it():
    cam = _camera()
    r = Renderer(cam, _plain_scene())
    still = RenderTarget("quad_x8", (30.0, 0.0, -50.0))
    moving = RenderTarget("quad_x8", (30.0, 0.0, -50.0), vel_ned_mps=(0.0, 60.0, 0.0))  # crossing right
    a = r.render((0, 0, -50.0), LEVEL, [still], None, exposure_s=0.01)
    b = r.render((0, 0, -50.0), LEVEL, [moving], None, exposure_s=0.01)
    wa = a.labels[0].xyxy_px[2] - a.labels[0].xyxy_px[0]
    wb = b.labels[0].xyxy_px[2] - b.labels[0].xyxy_px[0]
    smear = 60.0 * 0.01 / 30.0 * cam.intrinsics.fx_px  # ~5.5 px
    assert wb - wa == pytest.approx(smear, rel=0.05)
    assert b.labels[0].xyxy_px[3] - b.labels[0].xyxy_px[1] == pytest.approx(a.labels[0].xyxy_px[3] - a.labels[0].xyxy_px[1])
    bg = r.render((0, 0, -50.0), LEVEL, [], None).image.astype(int)
    cols_a = np.nonzero((np.abs(a.image.astype(int) - bg).sum(axis=2) > 2).any(axis=0))[0]
    cols_b = np.nonzero((np.abs(b.image.astype(int) - bg).sum(axis=2) > 2).any(axis=0))[0]
    assert cols_b.max() - cols_b.min() > cols_a.max() - cols_a.min() + 3  # drawn wider, too
    # the same smear from the camera moving the other way
    c = r.render((0, 0, -50.0), LEVEL, [still], None, exposure_s=0.01, cam_vel_ned_mps=(0.0, -60.0, 0.0))
    np.testing.assert_allclose(c.labels[0].xyxy_px, b.labels[0].xyxy_px, atol=1e-9)
    # camera rotation (yaw rate) blurs the whole frame and grows the boxes
    d = r.render((0, 0, -50.0), LEVEL, [still], None, exposure_s=0.01, rate_body_radps=(0.0, 0.0, 2.0))
    wd = d.labels[0].xyxy_px[2] - d.labels[0].xyxy_px[0]
    assert wd - wa == pytest.approx(2.0 * 0.01 * cam.intrinsics.fx_px, rel=0.05)
    bg_d = r.render((0, 0, -50.0), LEVEL, [], None, exposure_s=0.01, rate_body_radps=(0.0, 0.0, 2.0)).image.astype(int)
    cols_d = np.nonzero((np.abs(d.image.astype(int) - bg_d).sum(axis=2) > 2).any(axis=0))[0]
    rows_d = np.nonzero((np.abs(d.image.astype(int) - bg_d).sum(axis=2) > 2).any(axis=1))[0]
    rows_a = np.nonzero((np.abs(a.image.astype(int) - bg).sum(axis=2) > 2).any(axis=1))[0]
    assert cols_d.max() - cols_d.min() >= cols_a.max() - cols_a.min() + 3  # smeared sideways (~5.5 px)
    assert rows_d.max() - rows_d.min() <= rows_a.max() - rows_a.min() + 1  # not vertically


def test_sun_glare_sits_where_the_camera_model_puts_the_sun():
    cam = _camera()
    az, el = 0.3, 0.25
    scene = _plain_scene(sun_azimuth_rad=az, sun_elevation_rad=el, sun_glare=1.0)
    q_cam = euler_to_quat(0.05, 0.2, 0.1)
    img = Renderer(cam, scene).render((0, 0, -20.0), q_cam, [], None).image.sum(axis=2)
    sun = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), -math.sin(el)])
    (u, v), front = cam.los_ned_to_pixels(sun, q_cam)
    assert front and cam.in_image(np.array([u, v]))
    ys, xs = np.nonzero(img >= img.max() - 3)  # the saturated sun disc
    assert abs(xs.mean() - u) < 2 and abs(ys.mean() - v) < 2
    assert img[round(v), round(u)] >= 3 * 250
    # facing away from the sun: no glare anywhere
    away = Renderer(cam, scene).render((0, 0, -20.0), euler_to_quat(0.0, 0.2, 0.1 + math.pi), [], None).image
    assert away.sum(axis=2).max() < 3 * 250


def test_ir_scene_is_grey_with_hot_targets():
    cam = _camera()
    scene = random_scene(np.random.default_rng(4), ir_fraction=1.0)
    scene = SceneParams(**{**scene.__dict__, "ir_target_level_dn": 250, "noise_sigma_dn": 0.0, "jpeg_quality": 0})
    f = Renderer(cam, scene).render((0, 0, -5.0), euler_to_quat(0, 0.2, 0), [RenderTarget("quad_x8", (25.0, 0, -12))],
                                    np.random.default_rng(0))
    assert scene.mode == "ir"
    assert np.array_equal(f.image[..., 0], f.image[..., 1]) and np.array_equal(f.image[..., 1], f.image[..., 2])
    x0, y0, x1, y1 = (round(v) for v in f.labels[0].xyxy_px)
    assert f.image[y0:y1 + 1, x0:x1 + 1, 0].max() > f.image[:y0 - 5, :, 0].max()  # hotter than the sky above


def test_terrain_hides_targets_behind_it():
    cam = _camera()
    # a continuous tree line 200-600 m away, 25 m high, seen from 2 m up
    scene = _plain_scene(tree_cover=1.0, tree_distance_m=400.0, tree_height_m=25.0)
    r = Renderer(cam, scene)
    q = euler_to_quat(0.0, 0.0, 0.0)
    cam_pos = (0.0, 0.0, -2.0)
    behind = RenderTarget("quad_x8", (1200.0, 0.0, -4.0), size_scale=20.0)  # low, beyond the trees
    before = RenderTarget("quad_x8", (150.0, 0.0, -4.0), size_scale=3.0)  # in front of the trees
    f = r.render(cam_pos, q, [behind, before], None)
    assert [(lab.target_index, lab.excluded) for lab in f.excluded] == [(0, "occluded")]
    assert [lab.target_index for lab in f.labels] == [1]
    only_before = r.render(cam_pos, q, [before], None)
    assert np.array_equal(f.image, only_before.image)  # the hidden one left no pixel
    # straddling the tree tops: partly visible, box within the geometric one
    top = float(r._tree_h_m[len(r._tree_h_m) // 2])
    d_tree = float(r._tree_d_m[len(r._tree_d_m) // 2])
    over = RenderTarget("airliner", (3000.0, 0.0, -2.0 - (top - 2.0) * 3000.0 / d_tree), size_scale=3.0)
    g = r.render(cam_pos, q, [over], None)
    lab = (g.labels + g.excluded)[0]
    full = _expected_box(cam, q, np.asarray(cam_pos), over)
    assert lab.excluded == "" and 0.05 < lab.visible_fraction < 0.95
    assert full[0] <= lab.xyxy_px[0] and lab.xyxy_px[2] <= full[2]  # never beyond the geometric box
    assert full[1] <= lab.xyxy_px[1] and lab.xyxy_px[3] <= full[3]


def test_homing_views_look_down_roll_and_blur_and_leave_the_default_mix_unchanged(tmp_path):
    rng = np.random.default_rng(3)
    views = [homing_view(rng) for _ in range(300)]
    fwd = np.array([quat_to_rotmat(q)[:, 0] for _, q, _ in views])       # camera axis (mount tilt 0), NED
    elev_deg = np.degrees(np.arcsin(-fwd[:, 2]))
    assert elev_deg.min() >= -50.5 and elev_deg.max() <= 20.5 and np.mean(elev_deg < -20) > 0.35
    alts = np.array([-p[2] for p, _, _ in views])
    assert alts.min() >= 30.0 and alts.max() <= 300.0
    assert np.std([r for _, _, r in views]) > 0.3                        # rotation blur rates
    with pytest.raises(RenderError):
        DatasetMix(homing_fraction=1.5)
    # the default mix draws no homing views (and no extra random numbers): same images as before the option
    a = make_dataset(tmp_path / "a", 3, np.random.default_rng(4), image_size=(96, 80))
    make_dataset(tmp_path / "b", 3, np.random.default_rng(4), image_size=(96, 80), homing_fraction=1.0)
    c = make_dataset(tmp_path / "c", 3, np.random.default_rng(4), image_size=(96, 80), homing_fraction=0.0)
    same = [np.array_equal(cv2.imread(str(tmp_path / "a" / f"images/{i:06d}.jpg")),
                           cv2.imread(str(tmp_path / x / f"images/{i:06d}.jpg"))) for x in ("b", "c") for i in range(3)]
    assert same[3:] == [True] * 3 and not all(same[:3])
    assert a == c


def test_sim_views_are_native_cuts_of_the_simulator_camera_around_the_object(tmp_path):
    with pytest.raises(RenderError):
        DatasetMix(sim_fraction=-0.1)
    rng = np.random.default_rng(5)
    samples = [sim_view_sample(rng, (320, 256)) for _ in range(32)]
    kinds = [t[0].kind for _, t, _, _ in samples if t]
    assert "bird" in kinds and any(k != "bird" for k in kinds)
    assert sum(not t for _, t, _, _ in samples) >= 1                      # ground-clutter frames, no object
    labelled = 0
    for frame, targets, scene, camera in samples:
        assert frame.image.shape == (256, 320, 3) and camera.intrinsics.width_px == 1280
        assert scene.seed >= 50_000                                       # never the lockstep tests' scenery
        for lab in frame.labels:
            x0, y0, x1, y1 = lab.xyxy_px
            assert -0.5 <= x0 < x1 <= 319.5 and -0.5 <= y0 < y1 <= 255.5
            assert lab.class_name == ("bird" if targets[lab.target_index].kind == "bird" else "drone")
            # birds only where they can be told from a far drone (a few pixels look alike): within ~120 m
            assert lab.class_name != "bird" or lab.range_m < 170.0
            labelled += 1
    assert labelled >= 12
    # the object sits inside the cut at native resolution: its box is as large as in the full frame
    fx_px = samples[0][3].intrinsics.fx_px
    sizes = [(max(lab.xyxy_px[2] - lab.xyxy_px[0], lab.xyxy_px[3] - lab.xyxy_px[1]),
              NOMINAL_SIZE_M[t[lab.target_index].kind] * t[lab.target_index].size_scale * fx_px / lab.range_m)
             for f, t, _, _ in samples for lab in f.labels if t[lab.target_index].kind != "bird"]
    ratio = np.array([px / full for px, full in sizes])  # a box cut by the border is smaller, never larger
    assert len(ratio) >= 8 and 0.7 <= np.median(ratio) <= 1.3 and ratio.max() <= 2.0
    # the default mix draws no sim views: a dataset with sim_fraction 0 is the one it always was
    a = make_dataset(tmp_path / "a", 2, np.random.default_rng(4), image_size=(96, 80))
    c = make_dataset(tmp_path / "c", 2, np.random.default_rng(4), image_size=(96, 80), sim_fraction=0.0)
    s = make_dataset(tmp_path / "s", 2, np.random.default_rng(4), image_size=(96, 80), sim_fraction=1.0)
    assert a == c and s != a
