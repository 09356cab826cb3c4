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


@pytest.mark.slow
def test_fine_tune_starts_from_given_weights_and_refuses_another_layout(shared_data, tmp_path):
    torch = pytest.importorskip("torch", reason="training needs the optional extra 'train' (torch)")
    from models.train import main

    base = tmp_path / "base.onnx"
    common = ["--data", str(shared_data), "--device", "cpu", "--batch", "4", "--every", "150", "--arch", "v2"]
    assert main(common + ["--steps", "2", "--out", str(base)]) == 0
    w0 = torch.load(base.with_suffix(".pt"), weights_only=True)
    tuned = tmp_path / "tuned.onnx"
    assert main(common + ["--steps", "1", "--lr", "1e-9", "--init", str(base.with_suffix(".pt")), "--out", str(tuned)]) == 0
    w1 = torch.load(tuned.with_suffix(".pt"), weights_only=True)
    # one step at lr ~0 moves no weight (BatchNorm running statistics do move): the run started from the given
    # weights; from scratch (same seed) it would sit ~1e-5 away, where base's two warm-up steps took it
    learned = [k for k in w0 if "running_" not in k and "num_batches" not in k]
    assert len(learned) > 20
    assert all(torch.allclose(w0[k].float(), w1[k].float(), atol=1e-6) for k in learned)
    with pytest.raises(SystemExit, match="cannot load"):
        main(["--data", str(shared_data), "--device", "cpu", "--batch", "4", "--every", "150", "--steps", "1",
              "--init", str(base.with_suffix(".pt")), "--out", str(tmp_path / "v1.onnx")])


@pytest.mark.slow
def test_fine_tune_from_the_shipped_onnx_starts_from_its_function(shared_data, tmp_path):
    pytest.importorskip("torch", reason="training needs the optional extra 'train' (torch)")
    from pathlib import Path

    import numpy as np

    from models.train import main

    shipped = str(Path(__file__).resolve().parents[2] / "models" / "detector.onnx")
    tuned = tmp_path / "tuned.onnx"
    assert main(["--data", str(shared_data), "--device", "cpu", "--batch", "4", "--every", "150", "--steps", "1",
                 "--lr", "1e-9", "--init", shipped, "--out", str(tuned)]) == 0
    # the BatchNorms were folded into the convolutions on export; loaded back as identities and kept frozen, one
    # step at lr ~0 leaves the function as it was: same boxes and scores on a seeded frame
    frame = (np.random.default_rng(3).random((256, 320, 3)) * 255).astype(np.uint8)
    frame[100:110, 150:170] = 20  # something dark on the noise
    cfg = DetectorConfig(model_path=shipped, score_threshold=0.01)
    a = Detector(cfg).detect(frame, 0.0)
    b = Detector(DetectorConfig(model_path=str(tuned), score_threshold=0.01)).detect(frame, 0.0)
    assert len(a.scores) > 0 and len(a.scores) == len(b.scores)
    assert np.allclose(a.scores, b.scores, atol=1e-4) and np.allclose(a.xyxy_px, b.xyxy_px, atol=1e-2)
    # another layout's graph does not fit the network: a clear refusal, not a half-loaded model
    with pytest.raises(SystemExit, match="cannot load"):
        main(["--data", str(shared_data), "--device", "cpu", "--batch", "4", "--every", "150", "--steps", "1",
              "--arch", "v2", "--init", shipped, "--out", str(tmp_path / "v2.onnx")])
