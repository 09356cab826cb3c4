"""Appearance re-detection (autonomy.perception.template) on the simulator's own rendered frames."""

import math

import numpy as np
import pytest

from autonomy.geometry import euler_to_quat
from autonomy.perception.template import TemplateConfig, TemplateRedetector, roll_about_optical_axis_rad
from sitl.render import Renderer, RenderTarget, SceneParams
from sitl.world import sim_camera

CAM = sim_camera()
ALT_M = 120.0


def _frame(range_m: float, roll_deg: float, yaw_off_deg: float = 0.0, with_target: bool = True):
    """A Shahed ahead at ``range_m``, 10 deg above us, seen with the given camera roll; image, exact box, attitude."""
    el = math.radians(10.0)
    q = euler_to_quat(math.radians(roll_deg), el - CAM.mount.tilt_up_rad, math.radians(yaw_off_deg))
    pos = np.array([0.0, 0.0, -ALT_M])
    tgt = RenderTarget("shahed", pos + range_m * np.array([math.cos(el), 0.0, -math.sin(el)]),
                       euler_to_quat(0.0, 0.0, math.radians(70.0)))
    rf = Renderer(CAM, SceneParams(seed=3)).render(pos, q, [tgt] if with_target else [],
                                                    rng=np.random.default_rng(0))
    box = np.asarray(rf.labels[0].xyxy_px, float) if with_target else None
    return rf.image, box, CAM.r_ned_from_cam(q)


def _iou(a, b):
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_roll_about_the_optical_axis_is_the_camera_roll_change():
    _, _, r0 = _frame(60.0, 0.0, with_target=False)
    a = math.radians(25.0)
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    # the camera turned by +25 deg about its own optical axis (x toward y): the scene turns the other way
    assert math.degrees(roll_about_optical_axis_rad(r0, r0 @ rz)) == pytest.approx(-25.0, abs=1e-6)
    assert roll_about_optical_axis_rad(r0, r0) == pytest.approx(0.0, abs=1e-9)


def test_finds_the_target_again_after_the_camera_rolled_and_closed_in():
    img0, box0, r0 = _frame(70.0, 0.0)
    img1, box1, r1 = _frame(55.0, 30.0)            # 30 deg of roll and 27 % bigger, 0.25 s later at 60 m/s
    assert math.sqrt((box0[2] - box0[0]) * (box0[3] - box0[1])) > 20.0
    det = TemplateRedetector()
    assert det.refresh(7, img0, box0, r0)
    grown = 1.2 * np.array([box0[2] - box0[0], box0[3] - box0[1]])
    cu, cv = 0.5 * (box1[0] + box1[2]) + 12.0, 0.5 * (box1[1] + box1[3]) - 9.0   # the tracker's prediction, off
    pred = np.array([cu - grown[0] / 2, cv - grown[1] / 2, cu + grown[0] / 2, cv + grown[1] / 2])
    found = det.find(7, img1, pred, r1)
    assert found is not None
    box, ncc = found
    assert ncc >= 0.7
    c_found = 0.5 * (box[:2] + box[2:])
    c_true = 0.5 * (box1[:2] + box1[2:])
    assert np.linalg.norm(c_found - c_true) < 0.25 * math.sqrt((box1[2] - box1[0]) * (box1[3] - box1[1]))
    assert _iou(box, box1) > 0.4
    # without the roll compensation the same search correlates worse (or not at all)
    plain = TemplateRedetector()
    plain.refresh(7, img0, box0, r0)
    unrolled = plain.find(7, img1, pred, r0)
    assert unrolled is None or unrolled[1] < ncc


def test_does_not_find_a_target_that_is_not_there():
    img0, box0, r0 = _frame(70.0, 0.0)
    empty, _, r1 = _frame(70.0, 0.0, with_target=False)
    det = TemplateRedetector()
    assert det.refresh(3, img0, box0, r0)
    assert det.find(3, empty, box0, r1) is None
    assert det.find(4, img0, box0, r0) is None        # another track's template is not this one's


def test_gives_up_after_max_frames_without_a_detection():
    img0, box0, r0 = _frame(70.0, 0.0)
    det = TemplateRedetector(TemplateConfig(max_frames_n=3))
    assert det.refresh(1, img0, box0, r0)
    assert [det.find(1, img0, box0, r0) is not None for _ in range(4)] == [True, True, True, False]
    assert det.refresh(1, img0, box0, r0)              # a detection starts the count again
    assert det.find(1, img0, box0, r0) is not None


def test_refuses_boxes_it_cannot_take_a_template_from():
    img0, box0, r0 = _frame(70.0, 0.0)
    det = TemplateRedetector()
    assert not det.refresh(1, img0, np.array([10.0, 10.0, 15.0, 14.0]), r0)      # too small to correlate
    assert not det.refresh(1, img0, np.array([-5.0, 100.0, 40.0, 140.0]), r0)    # cut by the frame edge
    assert not det.refresh(1, img0, np.array([np.nan, 0.0, 30.0, 30.0]), r0)
    assert not det.refresh(1, img0, box0 + np.array([200.0, 0.0, 200.0, 0.0]), r0)  # plain sky: nothing stands out
    assert det.refresh(1, img0, box0, r0)
    det.reset()
    assert not det.has_template
    for bad in ({"min_ncc": 1.5}, {"min_psr": -1.0}, {"min_contrast": -0.5}):
        with pytest.raises(ValueError):
            TemplateConfig(**bad)
