"""Real empty-sky crops cut from training / validation clips (``models.data.sky_crops``) and the sky check."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from models.data import CANVAS_WH, SKY_CROP_WH, sky_crop_clips, sky_crops
from models.split import HELDOUT_VIDEOS, VALIDATION_VIDEOS, read_labels

pytestmark = pytest.mark.realdata


def _clear_of_labels(src: str, data_root, margin_px: float) -> bool:
    name, frame, xy = src.removeprefix("sky:").split("/")
    x0, y0 = (int(v[1:]) for v in xy.split("_"))
    w, h = SKY_CROP_WH
    info = next(v for v in sky_crop_clips(data_root, "train") + sky_crop_clips(data_root, "val") if v.name == name)
    for _, bx0, by0, bx1, by1 in read_labels(info, data_root).get(int(frame), []):
        if not (bx1 < x0 - margin_px or bx0 > x0 + w + margin_px or by1 < y0 - margin_px or by0 > y0 + h + margin_px):
            return False
    return True


def test_sky_crops_come_from_training_clips_only_and_keep_clear_of_every_label(shared_data):
    train, val = sky_crop_clips(shared_data, "train"), sky_crop_clips(shared_data, "val")
    names = {v.name for v in train}
    assert names and not names & HELDOUT_VIDEOS and not names & VALIDATION_VIDEOS
    assert {v.name for v in val} == {v for v in VALIDATION_VIDEOS if v.startswith("V_DRONE")}
    fs = sky_crops(shared_data, train[:4], 24, seed=3)
    assert len(fs.images) >= 20 and fs.images.shape[1:] == (CANVAS_WH[1], CANVAS_WH[0], 3)
    assert all(len(b) == 0 for b in fs.boxes)
    frames = [int(s.split("/")[1]) for s in fs.source]
    assert not [f for f in frames if 20 <= f <= 40]   # the frames the held-out sanity crops come from
    assert all(_clear_of_labels(s, shared_data, 20.0) for s in fs.source)
    raw = sky_crops(shared_data, train[:4], 24, seed=3, to_canvas=False)
    assert raw.source == fs.source and raw.images.shape[1:] == (SKY_CROP_WH[1], SKY_CROP_WH[0], 3)
    # the canvas is the raw window upscaled x2, as the runtime letterbox brings a 320x256 frame to 640x512
    assert np.abs(fs.images[:, ::2, ::2].astype(int) - raw.images.astype(int)).mean() < 6.0


def test_sky_check_scores_real_sky_below_real_drones(shared_data, capsys):
    from autonomy.perception import DEFAULT_MODEL_PATH
    from models.sky_check import main, top_drone_scores

    assert main(["--model", str(DEFAULT_MODEL_PATH), "--data", str(shared_data), "--n", "40"]) == 0
    out = capsys.readouterr().out
    assert "sky crops from the validation clips" in out and "detector.onnx" in out
    sky = sky_crops(shared_data, sky_crop_clips(shared_data, "val"), 40, seed=11, to_canvas=False).images
    s_sky = top_drone_scores(str(DEFAULT_MODEL_PATH), sky)
    assert s_sky.shape == (len(sky),) and np.all((s_sky >= 0) & (s_sky <= 1))
    # the same windows with a real drone pasted in (cut from a training clip's labelled frame): scored as one
    clip = next(v for v in sky_crop_clips(shared_data, "train") if v.distance_bin == "MEDIUM")
    cap = cv2.VideoCapture(str(clip.video_path(shared_data)))
    frame = [cap.read()[1] for _ in range(101)][100]
    cap.release()
    _, x0, y0, x1, y1 = (round(v) for v in read_labels(clip, shared_data)[100][0])
    patch = cv2.cvtColor(frame[y0 - 2:y1 + 2, x0 - 2:x1 + 2], cv2.COLOR_BGR2RGB)
    h, w = patch.shape[:2]
    assert 8 <= max(h, w) <= 60, (h, w)
    with_drone = sky.copy()
    with_drone[:, 128 - h // 2:128 - h // 2 + h, 160 - w // 2:160 - w // 2 + w] = patch
    s_drone = top_drone_scores(str(DEFAULT_MODEL_PATH), with_drone)
    assert np.median(s_drone) > np.median(s_sky) + 0.3, (np.median(s_drone), np.median(s_sky))


def test_sky_check_says_what_is_missing(shared_data, tmp_path, capsys):
    from models.sky_check import main

    assert main(["--model", str(tmp_path / "nope.onnx"), "--data", str(shared_data), "--n", "3"]) == 2
    assert "nope.onnx" in capsys.readouterr().err
    assert main(["--model", "models/detector.onnx", "--data", str(tmp_path)]) == 2
    assert "no Svanstrom clips" in capsys.readouterr().err
