"""The training recipe runs end to end on CPU (a few steps) and exports a model the runtime loads."""

from __future__ import annotations

import pytest

from autonomy.perception import Detector, DetectorConfig


@pytest.mark.slow
def test_train_recipe_runs_on_cpu_and_exports(shared_data, tmp_path):
    pytest.importorskip("torch", reason="training needs the optional extra 'train' (torch)")
    from models.train import main

    out = tmp_path / "det.onnx"
    assert main(["--data", str(shared_data), "--device", "cpu", "--steps", "3", "--batch", "4",
                 "--every", "150", "--out", str(out)]) == 0
    det = Detector(DetectorConfig(model_path=str(out)))
    assert det.layout == "centernet" and det.class_names == ("drone", "bird", "airplane", "helicopter")
