"""Seeded Monte Carlo campaigns through the CLI: a small one by default, the 1,000-run one behind `slow`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sitl import campaign_cli
from sitl.scenarios import FAMILIES

KEYS = ("intercept_rate", "unauthorized_engagements", "fence_violations", "no_engage_violations",
        "confusers_engaged", "median_time_ratio")


def _run(tmp_path, runs: int, seed: int) -> dict:
    rc = campaign_cli.main(["--runs", str(runs), "--seed", str(seed), "--workers", "2", "--out", str(tmp_path),
                            "--quiet"])
    assert rc == 0
    return json.loads((tmp_path / "summary.json").read_text())


def _assert_safety(s: dict) -> None:
    for k in ("unauthorized_engagements", "fence_violations", "no_engage_violations", "confusers_engaged"):
        assert s[k] == 0, k
        for fam, fs in s["per_family"].items():
            assert fs[k] == 0, (fam, k)
    # bird strikes outside terminal homing are reported apart (a hazard, not an engagement) and must be rare
    assert s["incidental_bird_strikes"] <= 0.01 * s["runs"] + 1


def test_small_campaign_rates(tmp_path):
    s = _run(tmp_path, 40, 1)
    assert set(KEYS) <= set(s) and set(s["per_family"]) == set(FAMILIES)
    for fs in s["per_family"].values():
        assert set(KEYS) <= set(fs)
    _assert_safety(s)
    # loose bounds for 35 engageable runs (seed 1 measured 0.80 and ~1.15; the 1000-run campaign: 0.938, 1.125)
    assert s["intercept_rate"] >= 0.75
    assert s["median_time_ratio"] <= 1.4
    assert s["per_family"]["bird_cue"]["intercept_rate"] is None  # nothing engageable there
    cmp_ = s["crossing_comparison"]
    assert cmp_["pn"]["runs"] == cmp_["pure_pursuit"]["runs"] == 5
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert len(runs) == 45
    assert (tmp_path / "miss_distance_hist.png").stat().st_size > 1000


def test_operator_model_is_a_campaign_option(tmp_path):
    """``--operator camera-track``: the operator authorizes nothing up front; it checks the camera track the companion
    asks about and then authorizes the ground track that track was handed over from (the lockstep world's operator,
    sitl.world). Against evasive targets that authorizes late: seeds 0-9 measured 10/10 with the cue operator and
    7/10 with the camera-track one (2026-11-26)."""
    rates = {}
    for op in ("cue", "camera-track"):
        out = tmp_path / op
        assert campaign_cli.main(["--runs", "10", "--seed", "0", "--families", "evasive", "--operator", op,
                                  "--no-pure-pursuit", "--workers", "2", "--out", str(out), "--quiet"]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["config"]["operator_authorizes_cue"] is (op == "cue")
        _assert_safety(s)
        rates[op] = s["intercept_rate"]
    assert rates["camera-track"] < rates["cue"], rates


def test_detection_size_and_law_are_campaign_options(tmp_path):
    """``--min-detect-px``: a camera that needs a bigger image of the target acquires it later and intercepts less
    (the shipped detector needs ~8-15 px, the default truth camera 4); ``--law`` flies every run on that law."""
    rates = {}
    for px in ("4", "30"):
        out = tmp_path / px
        assert campaign_cli.main(["--runs", "8", "--seed", "0", "--families", "shahed_headon", "--operator",
                                  "camera-track", "--min-detect-px", px, "--law", "augmented_pn", "--no-pure-pursuit",
                                  "--workers", "2", "--out", str(out), "--quiet"]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["config"]["min_detect_px"] == float(px) and s["config"]["law"] == "augmented_pn"
        assert {r["law"] for r in json.loads((out / "runs.json").read_text())} == {"augmented_pn"}
        _assert_safety(s)
        rates[px] = s["intercept_rate"]
    assert rates["30"] < rates["4"], rates
    assert campaign_cli.main(["--perception", "full", "--min-detect-px", "8", "--out", str(tmp_path / "x")]) == 2


def _full(tmp_path, runs: int, workers: int, *extra: str) -> tuple[dict, list[dict]]:
    rc = campaign_cli.main(["--perception", "full", "--runs", str(runs), "--families", "quick", "--seed", "0",
                            "--workers", str(workers), "--out", str(tmp_path), "--quiet", *extra])
    assert rc == 0
    return (json.loads((tmp_path / "summary.json").read_text()),
            json.loads((tmp_path / "runs.json").read_text()))


def _assert_consistent(s: dict, runs: list[dict]) -> None:
    """The summary is what the per-run records say (same metrics as the truth campaign)."""
    assert s["config"]["perception"] == "full" and s["runs"] == len(runs)
    assert set(KEYS) <= set(s) and set(s["per_family"]) == {"quick"} and set(KEYS) <= set(s["per_family"]["quick"])
    eng = [r for r in runs if r["engageable"]]
    assert s["engageable_runs"] == len(eng) == len(runs)   # the quick crossing is a drone
    assert s["intercepts"] == sum(r["intercept"] for r in eng)
    assert s["intercept_rate"] == pytest.approx(s["intercepts"] / len(eng))
    for k in ("unauthorized_engagements", "fence_violations", "no_engage_violations", "confusers_engaged"):
        assert s[k] == sum(r[k] for r in runs) == s["per_family"]["quick"][k]
    for r in runs:
        assert r["intercept"] == (r["miss_distance_m"] < 1.5)
        assert r["frames"] > 0 and 0 < r["latency_ms"]["count"] <= r["frames"]
        assert r["t_lower_bound_s"] is not None and 5.0 < r["t_lower_bound_s"] < 20.0  # 700 m out, 70 m/s
        if r["intercept"]:
            assert r["time_ratio"] == pytest.approx(r["t_intercept_s"] / r["t_lower_bound_s"], rel=1e-3)
            assert r["time_ratio"] >= 1.0
    tr = [r["time_ratio"] for r in runs if r["time_ratio"] is not None]
    assert s["median_time_ratio"] == (pytest.approx(float(np.median(tr))) if tr else None)


def test_full_perception_campaign_short_run(tmp_path):
    """One run through the whole pipeline (simulated PX4 over MAVLink, rendered camera, ONNX detector,
    tracker), cut at 12 simulated seconds: too short to intercept (the whole run takes ~38 s), long enough to
    acquire, be authorized and pass the speed-limited lower bound (~11 s)."""
    s, runs = _full(tmp_path, 1, 1, "--t-max-s", "12")
    _assert_consistent(s, runs)
    _assert_safety(s)
    (r,) = runs
    assert not r["intercept"] and r["miss_distance_m"] > 1.5 and r["sim_time_s"] <= 12.5
    assert any(d[2] == "terminal" and d[3] == "authorized" for d in r["decisions"])   # operator authorized it
    assert s["intercept_rate"] == 0.0 and s["median_time_ratio"] is None
    assert "crossing_comparison" not in s       # no pure-pursuit twins in full mode


@pytest.mark.slow
def test_full_perception_campaign_two_runs(tmp_path):
    """Two whole quick-crossing engagements over two workers (~1-2 min on 2 cores)."""
    s, runs = _full(tmp_path, 2, 2)
    _assert_consistent(s, runs)
    _assert_safety(s)
    assert [r["seed"] for r in runs] == [0, 1]
    assert (tmp_path / "miss_distance_hist.png").stat().st_size > 1000
    assert (tmp_path / "example_trajectories.png").stat().st_size > 1000


def test_full_perception_campaign_flies_the_given_config(tmp_path):
    """``--config``: every full-pipeline run flies that companion TOML (here sitl.toml with true PN instead of
    augmented PN), and the summary says which file it was."""
    from sitl.engagement_demo import SITL_CONFIG

    src = Path(SITL_CONFIG)
    text = src.read_text()
    assert 'law = "augmented_pn"' in text
    model = (src.parent / "../../../models/detector.onnx").resolve()
    cfg = tmp_path / "true_pn.toml"
    cfg.write_text(text.replace('law = "augmented_pn"', 'law = "true_pn"')
                   .replace('model_path = "../../../models/detector.onnx"', f'model_path = "{model}"'))
    s, runs = _full(tmp_path / "out", 1, 1, "--t-max-s", "6", "--config", str(cfg))
    assert s["config"]["full_config_path"] == str(cfg)
    assert [r["law"] for r in runs] == ["true_pn"]
    lo, hi = s["intercept_rate_ci95"]
    assert lo == 0.0 and 0.5 < hi < 1.0      # one run, no intercept: the rate is known to be below ~0.8


def test_wilson_interval():
    from sitl.campaign import wilson_interval

    lo, hi = wilson_interval(36, 56)            # the lockstep families, seeds 0-7 (session 9)
    assert lo == pytest.approx(0.512, abs=0.002) and hi == pytest.approx(0.755, abs=0.002)
    assert wilson_interval(0, 0) is None
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.69 < lo < 0.73       # 0.722: ten of ten is not proof of 0.97
    # more runs, narrower interval around the same rate
    few, many = wilson_interval(18, 28), wilson_interval(72, 112)
    assert few[1] - few[0] > many[1] - many[0]


def test_full_perception_arguments(tmp_path, capsys):
    assert campaign_cli.main(["--runs", "2", "--families", "quick", "--out", str(tmp_path), "--quiet"]) == 2
    assert "unknown family" in capsys.readouterr().err   # quick is a full-pipeline family only
    assert campaign_cli.main(["--runs", "2", "--t-max-s", "5", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--perception full" in capsys.readouterr().err
    assert campaign_cli.main(["--runs", "2", "--config", "x.toml", "--out", str(tmp_path), "--quiet"]) == 2
    assert "--perception full" in capsys.readouterr().err
    assert campaign_cli.main(["--perception", "full", "--runs", "1", "--config", str(tmp_path / "none.toml"),
                              "--out", str(tmp_path), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_family_is_refused(tmp_path, capsys):
    assert campaign_cli.main(["--runs", "2", "--families", "ufo", "--out", str(tmp_path), "--quiet"]) == 2
    assert "unknown family" in capsys.readouterr().err


@pytest.mark.slow
def test_thousand_run_truth_campaign(tmp_path):
    s = _run(tmp_path, 1000, 0)
    _assert_safety(s)
    assert s["median_time_ratio"] <= 1.2
    c = s["crossing_comparison"]
    pn, pp = c["pn"], c["pure_pursuit"]
    assert (pn["intercept_rate"], -pn["median_miss_distance_m"]) > (pp["intercept_rate"], -pp["median_miss_distance_m"])
    # the target; measured 0.992 (868/875, seed 0) with scheduled FOV keeping and the re-attack fixes
    assert s["intercept_rate"] >= 0.97


def test_engage_overrides_an_engagement_setting_of_every_truth_run(tmp_path, capsys):
    base = ["--runs", "2", "--families", "shahed_crossing", "--no-pure-pursuit", "--workers", "1", "--quiet"]
    assert campaign_cli.main([*base, "--out", str(tmp_path / "a")]) == 0
    assert campaign_cli.main([*base, "--out", str(tmp_path / "b"), "--engage", "max_speed_mps = 5.0",
                              "--engage", "reattack_standoff_max_size_m=inf"]) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("a", "b"))
    assert a["config"]["engagement_overrides"] == {}
    assert b["config"]["engagement_overrides"] == {"max_speed_mps": 5.0, "reattack_standoff_max_size_m": math.inf}
    assert a["intercepts"] == 2 and b["intercepts"] == 0      # 5 m/s never catches a 50 m/s wing
    for bad, why in ((["--engage", "speed=3"], "unknown engagement keys"), (["--engage", "law=\"true_pn\""], "--law"),
                     (["--engage", "max_speed_mps=[1"], "not TOML"), (["--engage", "max_speed_mps=-1"], "positive"),
                     (["--engage", "engageable_classes=[\"bird\"]"], "both engageable and confuser"),
                     (["--perception", "full", "--engage", "max_speed_mps=9"], "--perception truth")):
        assert campaign_cli.main([*base, "--out", str(tmp_path / "c"), *bad]) == 2
        assert why in capsys.readouterr().err
