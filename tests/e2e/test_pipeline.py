"""End to end, lockstep: the full onboard pipeline (camera -> pose at capture -> detector -> tracker ->
engagement -> setpoint) flying the simulated PX4 through the real MAVLink bridge over UDP on 127.0.0.1,
against seeded scenarios (sitl.world). The detector is the shipped model (models/detector.onnx)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from autonomy.fly import config_identity
from sitl.engagement_demo import SITL_CONFIG, RunOptions, run_engagement
from sitl.scenarios import make_scenario
from tests.e2e._model import E2E_MODEL, model_or_skip

ROOT = Path(__file__).resolve().parents[2]


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


def test_camera_latency_delays_frames_in_lockstep():
    """``RunOptions.camera_latency_s``: frames reach the pipeline that long after capture (rounded up to the frame
    loop's step), as the real-time camera's render + encode + transport delays them; 0 delivers at once. A delayed
    camera streams from the start (without render_midcourse too): its first frame is not still in transit when the
    engagement starts looking (that tripped the pipeline watchdog at the first ACQUIRE step)."""
    from sitl.video_server import quick_scenario

    sc = quick_scenario(0)
    now = run_engagement(sc, RunOptions(perception="none", render_midcourse=True, t_max_s=3.0))
    late = run_engagement(sc, RunOptions(perception="none", t_max_s=3.0, camera_latency_s=0.065))
    assert now.latency["p99_ms"] < 5.0
    assert 65.0 <= late.latency["p50_ms"] <= 65.0 + 1000.0 / 30.0 + 10.0, late.latency
    assert late.frames >= now.frames - 3     # every frame still arrives, only later
    assert "pipeline_stall" not in [d[3] for d in late.decisions]
    # a capture time told wrong by up to 20 ms (a camera without a hardware timestamp): the same frames, and the
    # latency the pipeline computes from the told time spreads up to the error
    off = run_engagement(sc, RunOptions(perception="none", render_midcourse=True, t_max_s=3.0,
                                        capture_time_error_s=0.02))
    assert off.frames == now.frames
    assert 10.0 < off.latency["p99_ms"] <= 20.0 + now.latency["p99_ms"], off.latency


def test_scene_seed_renders_other_scenery_for_the_same_engagement():
    """``RunOptions.scene_seed`` (``autonomy sim --scene-seed``) seeds the rendered backgrounds only: the world's
    renderer gets it (default: the scenario's seed), and the frames of the same pose differ."""
    from sitl.video_server import quick_scenario

    sc = quick_scenario(0)
    worlds = []
    for scene_seed in (None, 1000):
        run_engagement(sc, RunOptions(perception="none", render_midcourse=True, t_max_s=0.3, scene_seed=scene_seed),
                       on_world=worlds.append)
    assert [w.renderer.scene.seed for w in worlds] == [sc.seed, 1000]
    st = worlds[0].ap.state
    frames = [w.renderer.render(st.pos_ned_m, st.q_body_to_ned, [], None, 0.0).image for w in worlds]
    assert frames[0].shape == frames[1].shape
    assert float(np.mean(np.abs(frames[0].astype(np.int16) - frames[1]))) > 1.0


FAST = [("quick", 0)]          # sitl.video_server.quick_scenario: ~15 s of flight, the demo's scenario
# every engageable scenario family with the same seeds (0 and 1; not picked to pass). Lockstep runs are
# deterministic in practice: repeated plain runs of one seed on one tree gave identical flights (shahed_crossing-1
# three times, recon_loiter-1, quick-0), but a run with a logging wrapper around Pipeline.process_frame diverged, so
# some scheduling dependency remained (the lockstep world's UDP exchange had no barrier before 43e5907). Guidance changes also move
# these outcomes, so an expected miss is xfail (not strict) with its cause; XPASS says a miss went away.
def _family_seeds(spec: str | None) -> tuple[int, ...]:
    """E2E_FAMILY_SEEDS: "0,1,2,3" or "0-3" (default 0 and 1, the seeds of the table below)."""
    if not spec:
        return (0, 1)
    seeds: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return tuple(seeds)


FAMILY_SEEDS = _family_seeds(os.environ.get("E2E_FAMILY_SEEDS"))
# E2E_FAMILY_SCENE_OFFSET=K renders each seed's engagement against the backgrounds of seed + K (same scenario, same
# code; RunOptions.scene_seed). Measured 2026-11-26 (session 9) on 5bdb83e, seeds 0-7 (`E2E_FAMILY_SEEDS=0-7`):
# 36 of 56 intercept with the seeds' own scenery, 39 of 56 with scene offset 1000, and 23 of the 56 outcomes differ
# between the two (per family 3/8 -> 6/8 for the Shahed crossing and for degraded, 5/8 -> 3/8 for evasive and FPV
# weave). So one run's outcome owes about as much to where the detector's luck falls as to the guidance, and
# this table is not a judge of a guidance change: two arms of 56 runs differ by +-5 on noise alone. Judge a change
# on seeds x scenes (112+ runs per arm, ~25 min each here) and on the truth campaign; see the session-9 note.
# Session 12 (2026-11-27), with the pipeline's shrunk ROI windows for large boxes (roi_target_box_px = 32): 38 of 56
# with the seeds' own scenery, 36 of 56 with offset 1000 (74 of 112 against 75): Shahed crossing 4/8 and 8/8 (3/8 and
# 6/8 before), evasive 4/8 and 1/8 (5/8, 3/8), FPV weave 4/8 and 2/8 (5/8, 3/8); fpv_weave-0 now misses (below).
# Session 14 (2026-11-27), the engagement's cue_disagree_s = 1 s in sitl.toml (a track that leaves the cue gate is
# dropped): 40 of 56 with the seeds' own scenery (shahed_crossing-5 and evasive-7 now intercept, taken off the list
# below; no run lost), 35 of 56 with offset 1000 (against 36: recon_loiter-0 misses, 5.67 m, after the gate dropped
# a track 157 deg off the target and the re-acquired one passed 3 m from it; shahed_crossing-7 hits, 1.28 m).
SCENE_OFFSET = int(os.environ.get("E2E_FAMILY_SCENE_OFFSET", "0"))
# measured 2026-11-26 05:08-05:17 (`pytest -m "slow or not slow" tests/e2e/test_pipeline.py -k intercepts
# -p no:cacheprovider`, 9 min) on e0c7e15 with sitl.toml shadow_below_rad = 0, models/detector.onnx md5
# c6b122ea: 11 of 14 plus quick-0 (1.03 m) intercept, intercepts at 0.04-0.37 m. a9a488d removed a 5 ms
# pose-timing error (ClockMapper causality): the terminal commands no longer chatter (vertical LOS-rate sign flips
# at 12 Hz and 14 deg pitch swings were the pose error fed back). With shadow_below_rad = 30 deg, which had been
# set against that chatter's effects: 9 of 14 (fpv_weave-1 1.90 m, degraded-1 2.90 m misses). Before a9a488d
# (33fb2bd, 30 deg): 10 of 14. Re-run after a guidance, tracker or model change and update the table.
# Then (same day, this tree) the simulated operator stopped authorizing tracks on nothing (sitl.World's
# operator_match_rad, 5 deg): 10 of 14, fpv_weave-0 misses (below).
# "exact boxes" = the same seed with the renderer's boxes (older tree).
# The lockstep world runs on past the kill-radius entry to the closest approach (as the truth campaign does;
# tests/integration/test_world_miss_distance.py), so an intercept's miss is the true miss.
# Operator model: the lockstep world's operator authorizes the ground track a camera track came from once it has
# checked that camera track; the truth campaign's does the same with --operator camera-track (9639b3a) and
# authorizes the ground track up front by default (RunConfig.operator_authorizes_cue).
# 2026-11-26, 65f2354 + law = "augmented_pn" in sitl.toml (template re-detection on, 4b4dab2): 11 of 14 plus quick-0,
# every family at least once: crossing 0.53 / 1.35 m, head-on 0.43 / 0.09, loiter 0.06 / 0.07, FPV weave 0.91 / 1.32,
# evasive-1 1.01, degraded-1 0.86, bird_clutter-0 0.21 m. With true_pn on the same tree: 10 of 14 (evasive 0/2,
# fpv_weave-0 missing, degraded 2/2).
# 2026-11-26 (session 8), f944413, seeds 2 and 3 (`E2E_FAMILY_SEEDS=2-3`), never tuned on: 8 of 14 (crossing 0/2,
# head-on 1/2, loiter 2/2, FPV weave 1/2, evasive 1/2, degraded 1/2, bird clutter 2/2), so seeds 0-3: 19 of 28.
# Session 16 (2026-11-27): the default model is now models/detector.onnx of session 16 (v1 is models/detector_v1.onnx;
# models/MODEL_CARD.md). Its table (in this file's history) was measured on 07e87fb's code with seeds 0-7 and the
# seeds' own scenery (`E2E_FAMILY_SEEDS=0-7`): 45 of 56 (v1 40 on the same code), and 41 of 56 with scene offset 1000
# (v1 35).
# The analyses of v1's misses are in this file's history (git log -p tests/e2e/test_pipeline.py).
# Session 17 (2026-11-27): sitl.toml re-attacks targets up to 1.4 m from the stand-off (reattack_standoff_max_size_m;
# autonomy/engagement/README.md). The table below is measured on 5123244 + that setting, seeds 0-7, own scenery:
# 47 of 56 (45 before: fpv_weave-0/3, degraded-1/6 now intercept; recon_loiter-2 and degraded-3 miss); seeds 0-1:
# 12 of 14; all four 56-run sets: 176 of 224 against 169.
_NOT_ANALYSED = "not analysed (measured once with the session-16 model)"
KNOWN_MISSES: dict[tuple[str, int], str] = {
    ("shahed_crossing", 7): "miss 1.50 m, ends in terminal; " + _NOT_ANALYSED,
    ("recon_loiter", 2): "miss 2.15 m, ends in terminal, after a stand-off re-attack (0.88 m on the old direct "
                         "re-attack); " + _NOT_ANALYSED,
    ("fpv_weave", 5): "miss 14.8 m, ends in acquire: the 0.4 m quad is never detected (v1 the same). Not yet "
                      "authorized, we brake for the stand-off from ~400 m on the cue's range (before the detector can "
                      "see it), nose up, and then hover 20-30 m from it with it below the image for 40 s",
    ("evasive", 1): "miss 3.28 m, ends in terminal, 18.2 of 30.3 s of TERMINAL on a track off the target (a hit, "
                    "1.10 m, with the stand-off re-attack at 3 m: a 1.5 m wing re-attacks directly); " + _NOT_ANALYSED,
    ("evasive", 5): "miss 3.96 m, ends in terminal; " + _NOT_ANALYSED,
    ("degraded", 0): "miss 1.88 m, ends in reattack after a 51 s chase (a 2.5 m wing: direct re-attacks); "
                     + _NOT_ANALYSED,
    ("degraded", 3): "miss 6.37 m, ends in reattack (1.20 m hit on the old direct re-attack); " + _NOT_ANALYSED,
    ("bird_clutter", 4): "miss 3.57 m, ends in acquire, 10.1 of 12.0 s of TERMINAL on a track off the target; "
                         + _NOT_ANALYSED,
    ("bird_clutter", 6): "miss 11.5 m, ends in reattack; " + _NOT_ANALYSED,
}
SLOW = [(f, s) for f in ("shahed_crossing", "shahed_headon", "recon_loiter", "fpv_weave", "evasive", "degraded",
                         "bird_clutter") for s in FAMILY_SEEDS]


def _fly(family: str, seed: int):
    from sitl.video_server import quick_scenario

    model = str(model_or_skip())
    sc = quick_scenario(seed) if family == "quick" else make_scenario(family, seed)
    scene = seed + SCENE_OFFSET if SCENE_OFFSET and family != "quick" else None
    return sc, run_engagement(sc, RunOptions(perception="model", model_path=model, scene_seed=scene))


# was xfail until 16:58: the track was lost every ~2.5 s in TERMINAL (altitude-floor step in the command,
# FOV clamp counting the drag twice). See autonomy/engagement/README.md.
@pytest.mark.parametrize("family,seed", FAST)
def test_lockstep_engagement_intercepts(family, seed):
    _sc, res = _fly(family, seed)
    assert res.intercept, res.summary()
    assert res.miss_distance_m < 1.5
    assert res.authorized_tracks, "the simulated operator must have authorized over MAVLink"
    assert "terminal" in [d[2] for d in res.decisions]
    assert res.frames > 100 and res.latency["count"] == res.frames
    # it homed on the target, not on a track beside it (the truth's view; 0.0 of 13.3 s in session 13)
    assert res.terminal_s > 5.0 and res.terminal_off_target_s < 1.0, res.summary()
    # the file that drives this lockstep run is the one `autonomy fly` reads in real time (test_pipeline_realtime)
    assert res.config == config_identity(SITL_CONFIG)


def _family_params():
    for f, s in SLOW:
        why = KNOWN_MISSES.get((f, s)) if not (SCENE_OFFSET or E2E_MODEL) else None
        yield pytest.param(f, s, marks=[pytest.mark.xfail(strict=False, reason=why)] if why else [], id=f"{f}-{s}")


@pytest.mark.slow
@pytest.mark.parametrize("family,seed", list(_family_params()))
def test_lockstep_engagement_intercepts_each_family(family, seed):
    _sc, res = _fly(family, seed)
    print(f"E2E {family} seed {seed}: {res.outcome}, miss {res.miss_distance_m:.2f} m, "
          f"t {res.t_intercept_s}, terminal {res.terminal_s:.1f} s ({res.terminal_off_target_s:.1f} s off target), "
          f"wall {res.wall_s:.0f} s")
    assert res.confusers_engaged == 0 and res.unauthorized_engagements == 0, res.safety_notes
    if (SCENE_OFFSET or E2E_MODEL) and not res.intercept:
        # other scenery or model: a measurement (see SCENE_OFFSET, E2E_MODEL); which runs miss is not known in
        # advance, safety always is
        pytest.xfail(f"scene offset {SCENE_OFFSET}, model {E2E_MODEL or 'shipped'}: miss {res.miss_distance_m:.2f} m, "
                     f"ends in {res.final_state}")
    assert res.intercept, res.summary()


@pytest.mark.slow
def test_bird_cue_is_never_engaged():
    model = str(model_or_skip())
    sc = make_scenario("bird_cue", 1)
    res = run_engagement(sc, RunOptions(perception="model", model_path=model, t_max_s=60.0))
    assert not res.intercept and "terminal" not in [d[2] for d in res.decisions]
    assert math.isfinite(res.miss_distance_m)
