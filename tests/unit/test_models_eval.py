"""The held-out evaluation's matching rules and the label analysis's measurements (models.evaluate,
models.label_analysis), on hand-made boxes and images."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluate import _match, evaluate, summarise
from models.label_analysis import CLEAR_SKY_SPREAD, background_spread, pixel_box, tight_box_ceiling

LABEL = np.array([[100.0, 100.0, 140.0, 130.0]])  # a loose 40x30 px label around a 14x10 px object at its centre


def test_centre_match_counts_a_found_object_whatever_its_box_size():
    tight = [113.0, 110.0, 127.0, 120.0]  # the object's own extent: IoU with the label 0.12
    beside = [145.0, 110.0, 159.0, 120.0]  # a box next to the label, centre outside it
    dets, scores = np.array([tight, beside]), np.array([0.9, 0.8])
    assert _match(dets, scores, LABEL, 0.5).tolist() == [False, False]
    assert _match(dets, scores, LABEL, 0.5, "centre").tolist() == [True, False]
    # one label is found once: the second box on the same object is a false positive
    twice = np.array([tight, [112.0, 109.0, 128.0, 121.0]])
    assert _match(twice, np.array([0.6, 0.9]), LABEL, 0.5, "centre").tolist() == [False, True]
    # two labels, each box takes the one whose centre is nearest among those holding its centre
    labels = np.array([[0.0, 0.0, 100.0, 100.0], [40.0, 40.0, 60.0, 60.0]])
    assert _match(np.array([[45.0, 45.0, 55.0, 55.0]]), np.array([0.9]), labels, 0.5, "centre").tolist() == [True]
    with pytest.raises(ValueError, match="match must be"):
        _match(dets, scores, LABEL, 0.5, "overlap")


def test_an_unknown_match_rule_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="match must be"):
        evaluate("no-such-model.onnx", tmp_path, match="centre-ish")


def test_drone_clip_ap_leaves_the_confuser_clips_to_their_own_rate():
    drone = {"clip": "V_DRONE_1", "scores": [0.9, 0.8, 0.7], "tp": [True, True, True], "frames": 3, "gt": 3,
             "fp_frames_at_threshold": 0, "fp_at_threshold": 0}
    bird = {"clip": "V_BIRD_1", "scores": [0.95, 0.95], "tp": [False, False], "frames": 2, "gt": 0,
            "fp_frames_at_threshold": 2, "fp_at_threshold": 2}
    meta = {"V_DRONE_1": ("visible", "drone", "CLOSE"), "V_BIRD_1": ("visible", "bird", "CLOSE")}
    g = summarise([drone, bird], meta)["visible/CLOSE"]
    assert g["AP50_drone_clips"] == pytest.approx(1.0)
    assert g["AP50"] == pytest.approx(0.6)  # precision 1/3, 2/4, 3/5 at the three drones
    assert g["confuser_fp_frame_rate"] == pytest.approx(1.0)


def _sky(rng: np.random.Generator, clutter: bool) -> np.ndarray:
    img = 180.0 + rng.normal(0.0, 1.0, (240, 320))
    if clutter:  # tree-line texture: tens of grey levels
        img += rng.uniform(-40.0, 40.0, (240, 320))
    img[110:120, 113:127] = 60.0  # the object: 14x10 px, dark
    return np.clip(img, 0, 255).astype(np.uint8)


def test_pixel_box_finds_the_object_inside_a_loose_label_and_the_ceiling_counts_it():
    rng = np.random.default_rng(0)
    gray = _sky(rng, clutter=False)
    g = tuple(LABEL[0])
    assert pixel_box(gray, g) == (113, 110, 127, 120)
    assert background_spread(gray, g) < CLEAR_SKY_SPREAD
    tree = _sky(rng, clutter=True)
    assert background_spread(tree, g) > 5 * CLEAR_SKY_SPREAD
    iou_tight = (14 * 10) / (40 * 30)
    c = tight_box_ceiling([(iou_tight, 1.5), (0.6, 2.0), (0.35, 30.0), (None, 1.0)])
    assert (c["labelled"], c["unresolved"]) == (4, 1)
    assert c["all"]["n"] == 3 and c["all"]["ceiling_ap_iou05"] == pytest.approx(1 / 3)
    assert c["all"]["ceiling_ap_iou03"] == pytest.approx(2 / 3)
    assert c["clear_sky"]["n"] == 2 and c["clear_sky"]["ceiling_ap_iou05"] == pytest.approx(0.5)
    assert tight_box_ceiling([])["all"]["ceiling_ap_iou05"] is None
