"""The shipped detector on the real labelled frames of ../shared/data (skips with a reason when absent).

Thresholds were set from what the shipped model does (models/MODEL_CARD.md) with a margin: recall of
drones at IoU >= 0.3 on the close+medium visible frames, all IR frames, no drone on the empty-sky crops.
The full held-out-video evaluation is ``python -m models.evaluate`` (slow test below).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from autonomy.perception import DEFAULT_MODEL_PATH, Detector, DetectorConfig
from autonomy.perception.decode import iou_matrix

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def det() -> Detector:
    return Detector(DetectorConfig(model_path=str(DEFAULT_MODEL_PATH), classes=("drone",)))


def _frames(folder: Path):
    for p in sorted((folder / "images").glob("*.jpg")):
        img = cv2.imread(str(p))
        h, w = img.shape[:2]
        rows = [r.split() for r in (folder / "labels" / (p.stem + ".txt")).read_text().split("\n") if r.strip()]
        gt = np.array([[(float(r[1]) - float(r[3]) / 2) * w, (float(r[2]) - float(r[4]) / 2) * h,
                        (float(r[1]) + float(r[3]) / 2) * w, (float(r[2]) + float(r[4]) / 2) * h]
                       for r in rows if r[0] == "0"]).reshape(-1, 4)
        yield p.stem.rsplit("_f", 1)[0], img, gt


def _recall(det: Detector, folder: Path, keep) -> tuple[int, int]:
    n_gt = n_found = 0
    for video, img, gt in _frames(folder):
        if not len(gt) or not keep(video):
            continue
        d = det.detect(img)
        n_gt += len(gt)
        if len(d):
            n_found += int((iou_matrix(gt, d.xyxy_px).max(1) >= 0.3).sum())
    return n_found, n_gt


def test_finds_drones_in_visible_close_and_medium_frames(det, shared_data):
    from models.split import list_videos

    bins = {v.name: v.distance_bin for v in list_videos(shared_data)}
    folder = shared_data / "svanstrom_drone_detection_dataset" / "frames_yolo" / "visible"
    found, n = _recall(det, folder, lambda v: bins.get(v) in ("CLOSE", "MEDIUM"))
    assert n == 72
    assert found / n >= 0.85, f"recall {found}/{n}"


def test_finds_drones_in_ir_frames(det, shared_data):
    folder = shared_data / "svanstrom_drone_detection_dataset" / "frames_yolo" / "ir"
    found, n = _recall(det, folder, lambda v: True)
    assert n == 30
    assert found / n >= 0.85, f"recall {found}/{n}"


# One of the 26 "empty-sky" crops is not empty: a small dark object (a bird or an insect) crosses V_DRONE_076 in
# frames 29-31, unlabelled in the dataset, and frame 30's crop holds it at (13, 249) (crop pixels). Evidence: the test
# below. A detector may flag it there (models/MODEL_CARD.md, session 16), nowhere else in any crop.
NOT_EMPTY_SKY = {"V_DRONE_076_f0030_neg_x315_y88.jpg": (13.0, 249.0)}


def test_silent_on_empty_sky_crops(det, shared_data):
    folder = shared_data / "svanstrom_drone_detection_dataset" / "frames_yolo" / "visible_negative_crops"
    imgs = sorted((folder / "images").glob("*.jpg"))
    assert len(imgs) == 26
    hits = {}
    for p in imgs:
        d = det.detect(cv2.imread(str(p)))
        obj = NOT_EMPTY_SKY.get(p.name)
        if obj is None:
            hits[p.name] = len(d)
        else:  # only a box on the crossing object itself is allowed
            cx, cy = 0.5 * (d.xyxy_px[:, 0] + d.xyxy_px[:, 2]), 0.5 * (d.xyxy_px[:, 1] + d.xyxy_px[:, 3])
            hits[p.name] = int((np.hypot(cx - obj[0], cy - obj[1]) > 8.0).sum())
    assert sum(hits.values()) == 0, {k: v for k, v in hits.items() if v}


def test_the_one_flagged_sky_crop_holds_an_object_crossing_the_frame(shared_data):
    """The dot in V_DRONE_076 frame 30 moves: it is at (297, 328), (328, 337), (386, 351) in frames 29, 30, 31 (video
    pixels), 10+ grey levels darker than the sky around it, and absent from frame 30's spot before and after."""
    cap = cv2.VideoCapture(str(shared_data / "svanstrom_drone_detection_dataset" / "videos_visible" / "V_DRONE_076.mp4"))
    frames = [cap.read()[1] for _ in range(36)]
    cap.release()

    def dark(k: int, x: int, y: int) -> float:   # grey levels below the 15x15 local mean, max in a 7x7 window
        g = frames[k].astype(np.float32).mean(2)
        d = cv2.blur(g, (15, 15)) - g
        return float(d[y - 3:y + 4, x - 3:x + 4].max())

    assert min(dark(29, 297, 328), dark(30, 328, 337), dark(31, 386, 351)) > 10.0
    assert max(dark(k, 328, 337) for k in (26, 27, 28, 32, 33, 34)) < 3.0
    # the crop is frame 30's window at (315, 88): the object sits at (13, 249) in it, where NOT_EMPTY_SKY says
    assert NOT_EMPTY_SKY["V_DRONE_076_f0030_neg_x315_y88.jpg"] == (328.0 - 315, 337.0 - 88)


def test_short_heldout_video_evaluation(shared_data):
    """A short version of models.evaluate on held-out visible videos (every 30th frame)."""
    from models.evaluate import evaluate

    rep = evaluate(str(DEFAULT_MODEL_PATH), shared_data, every=30, iou_thr=0.3, sensors=("visible",),
                   include_seq18=False)
    g = rep["groups"]["visible/CLOSE+MEDIUM"]
    assert g["drone_clips"] == 8 and g["confuser_clips"] == 6
    assert g["AP50"] >= 0.6, g  # IoU 0.3 here (the labels' box sizes are loose, see MODEL_CARD.md)


@pytest.mark.slow
def test_full_heldout_evaluation(shared_data, tmp_path):
    from models.evaluate import evaluate, format_table

    rep = evaluate(str(DEFAULT_MODEL_PATH), shared_data, every=3, workers=2)
    print(format_table(rep))
    assert rep["groups"]["ir/CLOSE+MEDIUM"]["AP50"] >= 0.6
    assert rep["groups"]["visible/CLOSE+MEDIUM"]["AP50"] >= 0.4


def test_the_held_out_labels_are_looser_than_the_drones_they_box(shared_data):
    """Why the model card reports AP with the centre rule beside AP50: on clear sky, where the pixel box is the
    drone, a box of the drone's own extent overlaps its held-out visible close+medium label by IoU >= 0.5 in a
    minority of frames, so AP50 >= 0.90 against these labels asks for the labels' loose, clip-dependent style."""
    from models.label_analysis import drone_clip_jobs, measure_clip, tight_box_ceiling
    from models.split import split_videos

    _, held = split_videos(shared_data)
    clips = [v for v in held if v.sensor == "visible" and v.distance_bin in ("CLOSE", "MEDIUM")]
    jobs = drone_clip_jobs(shared_data, clips, 10, None)
    assert len(jobs) == 8
    ceiling = tight_box_ceiling([x for j in jobs for x in measure_clip(j)["tight_box_iou"]])["clear_sky"]
    assert ceiling["n"] >= 100, ceiling
    assert ceiling["ceiling_ap_iou05"] < 0.5, ceiling


def test_short_heldout_evaluation_finds_the_drones_by_the_centre_rule(shared_data):
    """Every 30th frame: the shipped model finds the held-out visible close+medium drones (centre inside the
    label box) at a high AP on the drone clips; the confuser clips' false positives are what AP over all clips
    adds."""
    from models.evaluate import evaluate

    rep = evaluate(str(DEFAULT_MODEL_PATH), shared_data, every=30, sensors=("visible",), include_seq18=False,
                   match="centre")
    g = rep["groups"]["visible/CLOSE+MEDIUM"]
    assert rep["match"] == "centre" and rep["iou"] is None
    assert g["AP50_drone_clips"] >= 0.85, g
    assert g["AP50"] < g["AP50_drone_clips"], g
