"""End to end, lockstep: the full onboard pipeline (camera -> pose at capture -> detector -> tracker ->
engagement -> setpoint) flying the simulated PX4 through the real MAVLink bridge over UDP on 127.0.0.1,
against seeded scenarios (sitl.world). The detector is the shipped model (models/detector.onnx)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from autonomy.config import load_config
from sitl.engagement_demo import SITL_CONFIG, RunOptions, run_engagement
from sitl.scenarios import make_scenario

ROOT = Path(__file__).resolve().parents[2]


def _model_or_skip() -> str:
    path = Path(load_config(SITL_CONFIG).detector.model_path)
    if not path.is_file():
        pytest.skip(f"shipped detector {path} is not in this checkout yet (models/ room)")
    return str(path)


def test_camera_stop_mid_flight_brakes_and_holds():
    """Frames stop while the engagement needs the camera: pipeline-stall abort, brake to a hold, then RTL."""
    sc = make_scenario("recon_loiter", 1)
    res = run_engagement(sc, RunOptions(perception="none", camera_off_at_s=12.0, t_max_s=25.0, tail_s=4.5))
    reasons = [d[3] for d in res.decisions]
    assert "pipeline_stall" in reasons, res.decisions
    t_abort = next(d[0] for d in res.decisions if d[3] == "pipeline_stall") + res.t0
    tr = np.array(res.traj)
    speed = np.linalg.norm(tr[:, 7:10], axis=1)
    before = speed[(tr[:, 0] > t_abort - 1.0) & (tr[:, 0] <= t_abort)]
    after = speed[(tr[:, 0] > t_abort) & (tr[:, 0] <= t_abort + 3.2)]   # hold_before_rtl_s = 3 s
    assert before.min() > 10.0, "the vehicle was flying when the camera stopped"
    k = int(np.argmin(after))
    assert after[k] < 2.0, f"not braked to a hold: {np.round(after, 1)}"
    assert np.all(np.diff(after[: k + 1]) < 0.3), "braking must be monotone"
    states = [d[2] for d in res.decisions]
    assert states[-3:] == ["abort", "hold", "rtl"] or states[-2:] == ["abort", "hold"], res.decisions


FAST = [("quick", 0)]          # sitl.video_server.quick_scenario: ~15 s of flight, the demo's scenario
SLOW = [("recon_loiter", 3), ("shahed_crossing", 3), ("shahed_headon", 1), ("fpv_weave", 3), ("evasive", 2),
        ("degraded", 1), ("bird_clutter", 1), ("recon_loiter", 1), ("quick", 1)]


def _fly(family: str, seed: int):
    from sitl.video_server import quick_scenario

    model = _model_or_skip()
    sc = quick_scenario(seed) if family == "quick" else make_scenario(family, seed)
    return sc, run_engagement(sc, RunOptions(perception="model", model_path=model))


# was xfail until 16:58: the track was lost every ~2.5 s in TERMINAL (altitude-floor step in the command,
# FOV clamp counting the drag twice); quick seeds 0, 1, 2 now intercept with the shipped model (1.14, 1.42,
# 1.21 m; deterministic in lockstep) and with perfect boxes (1.27, 1.17, 1.24 m). See autonomy/engagement/README.md.
@pytest.mark.parametrize("family,seed", FAST)
def test_lockstep_engagement_intercepts(family, seed):
    _sc, res = _fly(family, seed)
    assert res.intercept, res.summary()
    assert res.miss_distance_m < 1.5
    assert res.authorized_tracks, "the simulated operator must have authorized over MAVLink"
    assert "terminal" in [d[2] for d in res.decisions]
    assert res.frames > 100 and res.latency["count"] == res.frames


@pytest.mark.slow
@pytest.mark.parametrize("family,seed", SLOW)
def test_lockstep_engagement_intercepts_more_families(family, seed):
    _sc, res = _fly(family, seed)
    assert res.intercept, res.summary()


@pytest.mark.slow
def test_bird_cue_is_never_engaged():
    model = _model_or_skip()
    sc = make_scenario("bird_cue", 1)
    res = run_engagement(sc, RunOptions(perception="model", model_path=model, t_max_s=60.0))
    assert not res.intercept and "terminal" not in [d[2] for d in res.decisions]
    assert math.isfinite(res.miss_distance_m)
