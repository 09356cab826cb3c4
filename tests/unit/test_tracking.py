"""Tracker behaviour through the public API (real numba kernels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.camera.model import Camera
from autonomy.geometry import euler_to_quat
from autonomy.tracking import SelectionPolicy, Tracker, TrackerConfig, TrackingError
from autonomy.tracking.metrics import evaluate_mot, iou_matrix
from autonomy.types import Detections, TrackStatus

CAM = Camera.default()
NAMES = ("drone", "bird")


def _box_of(los_ned, q, half_px=8.0):
    uv, _front = CAM.los_ned_to_pixels(np.asarray(los_ned)[None], q)
    u, v = uv[0]
    return np.array([[u - half_px, v - half_px * 0.6, u + half_px, v + half_px * 0.6]])


def _det(t, boxes, cls=None, scores=None):
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    n = len(boxes)
    return Detections(t, boxes, np.full(n, 0.9) if scores is None else np.asarray(scores, float),
                      np.zeros(n, dtype=np.int64) if cls is None else np.asarray(cls, dtype=np.int64), NAMES)


@settings(max_examples=8, deadline=None)
@given(yaw_rate=st.floats(-2.0, 2.0), roll_rate=st.floats(-3.0, 3.0), az=st.floats(-0.3, 0.3))
def test_static_target_seen_from_rotating_camera_stays_static_in_ned(yaw_rate, roll_rate, az):
    """Up to 115 deg/s yaw and 170 deg/s roll: the target sweeps across the image but not across NED."""
    los_true = np.array([math.cos(az), math.sin(az), -0.3])
    los_true /= np.linalg.norm(los_true)
    tr = Tracker(TrackerConfig(), CAM)
    for f in range(45):
        t = f / 30
        q = euler_to_quat(0.15 * math.sin(roll_rate * t), -math.radians(20) + 0.05 * math.sin(3 * t),
                          az + 0.2 * math.sin(yaw_rate * t))
        tl = tr.step(_det(t, _box_of(los_true, q)), q, t)
    assert len(tl) == 1 and tl[0].status is TrackStatus.CONFIRMED
    trk = tl[0]
    assert np.degrees(math.acos(min(1.0, float(trk.los_ned @ los_true)))) < 0.01
    assert np.linalg.norm(trk.los_rate_ned_radps) < 2e-3
    assert abs(float(trk.los_rate_ned_radps @ trk.los_ned)) < 1e-9
    assert np.allclose(trk.los_cov, trk.los_cov.T) and np.linalg.eigvalsh(trk.los_cov).min() > -1e-15


@pytest.mark.parametrize("model", ["cv", "ca"])
def test_moving_target_rate_and_dropped_frames(model):
    """LOS turning at 0.2 rad/s about NED down; irregular frame times with gaps; rate is recovered."""
    rate = 0.2
    tr = Tracker(TrackerConfig(motion_model=model), CAM)
    q = euler_to_quat(0.0, -math.radians(20), 0.0)
    rng = np.random.default_rng(1)
    t = 0.0
    ids = set()
    while t < 3.0:
        los = np.array([math.cos(rate * t), math.sin(rate * t), -0.2])
        los /= np.linalg.norm(los)
        tl = tr.step(_det(t, _box_of(los, q)), q, t)
        ids |= set(tl.ids.tolist())
        t += rng.choice([1 / 30, 2 / 30, 5 / 30])
    assert ids == {1}
    horiz = tl[0].los_rate_ned_radps[:2]
    assert np.linalg.norm(horiz) / np.linalg.norm(los[:2]) == pytest.approx(rate, rel=0.05)


def test_lifecycle_tentative_confirmed_coasting_deleted():
    cfg = TrackerConfig(confirm_hits=3, max_coast_s=0.5)
    tr = Tracker(cfg, CAM)
    q = np.array([1.0, 0, 0, 0])
    box = [[600, 300, 620, 315]]
    seen = []
    for f in range(4):
        tl = tr.step(_det(f / 30, box), q, f / 30)
        seen.append(tl[0].status)
    assert seen[:3] == [TrackStatus.TENTATIVE, TrackStatus.TENTATIVE, TrackStatus.CONFIRMED]
    tl = tr.step(_det(5 / 30, np.zeros((0, 4))), q, 5 / 30)
    assert tl[0].status is TrackStatus.COASTING and tl[0].misses == 1
    tl = tr.step(_det(6 / 30, box), q, 6 / 30)
    assert tl[0].status is TrackStatus.CONFIRMED and tl[0].track_id == 1
    for f in range(7, 30):
        tl = tr.step(_det(f / 30, np.zeros((0, 4))), q, f / 30)
    assert len(tl) == 0
    # a lone false alarm never gets confirmed and disappears
    tl = tr.step(_det(1.0, [[100, 100, 110, 110]]), q, 1.0)
    assert tl[0].status is TrackStatus.TENTATIVE
    for f in range(1, 4):
        tl = tr.step(_det(1.0 + f / 30, np.zeros((0, 4))), q, 1.0 + f / 30)
    assert len(tl) == 0


def test_crossing_targets_keep_their_ids():
    """Two targets crossing in the image (different sizes) keep ids through the crossing."""
    tr = Tracker(TrackerConfig(), CAM)
    q = np.array([1.0, 0, 0, 0])
    for f in range(60):
        t = f / 30
        a = [300 + 10 * f, 300, 300 + 10 * f + 30, 320]
        b = [900 - 10 * f, 310, 900 - 10 * f + 12, 318]
        tl = tr.step(_det(t, [a, b]), q, t)
        if f >= 3:
            cx = {int(i): 0.5 * (bx[0] + bx[2]) for i, bx in zip(tl.ids, tl.boxes_xyxy_px)}
            assert cx[1] == pytest.approx(315 + 10 * f, abs=6)
            assert cx[2] == pytest.approx(906 - 10 * f, abs=6)


def test_select_target_drone_only_and_sticky():
    tr = Tracker(TrackerConfig(confirm_hits=2), CAM)
    q = np.array([1.0, 0, 0, 0])
    c = CAM.intrinsics
    bird = [c.cx_px - 20, c.cy_px - 20, c.cx_px + 20, c.cy_px + 20]   # big and central, but a bird
    drone_a = [100, 100, 110, 108]
    drone_b = [900, 500, 912, 510]
    for f in range(5):
        tr.step(_det(f / 30, [bird, drone_a, drone_b], cls=[1, 0, 0]), q, f / 30)
    sel = tr.select_target()
    assert sel is not None and sel.class_name == "drone"
    first = sel.track_id
    # the other drone becomes slightly more central: the choice sticks (hysteresis)
    for f in range(5, 8):
        tr.step(_det(f / 30, [bird, drone_a, drone_b], cls=[1, 0, 0]), q, f / 30)
        assert tr.select_target().track_id == first
    # only the bird remains: nothing to engage
    tr2 = Tracker(TrackerConfig(confirm_hits=2), CAM)
    for f in range(5):
        tr2.step(_det(f / 30, [bird], cls=[1]), q, f / 30)
    assert tr2.select_target() is None
    assert tr2.select_target(SelectionPolicy(allowed_classes=("drone", "bird"))) is not None


def test_predict_box_follows_camera_rotation():
    tr = Tracker(TrackerConfig(), CAM)
    q0 = np.array([1.0, 0, 0, 0])
    for f in range(5):
        tr.step(_det(f / 30, [[600, 300, 620, 316]]), q0, f / 30)
    b0 = tr.predict_box(1, q0, 5 / 30)
    assert iou_matrix(b0[None], np.array([[600, 300, 620, 316]]))[0, 0] > 0.8
    q_yaw = euler_to_quat(0.0, 0.0, math.radians(5))   # vehicle yaws right: target moves left in the image
    b1 = tr.predict_box(1, q_yaw, 5 / 30)
    assert b1[0] < b0[0] - 50
    assert tr.predict_box(99, q0, 1.0) is None
    assert tr.predict_box(1, euler_to_quat(0, 0, math.pi), 5 / 30) is None   # behind the camera


def test_bad_input_is_refused_and_leaves_state_unchanged():
    tr = Tracker(TrackerConfig(), CAM)
    q = np.array([1.0, 0, 0, 0])
    tr.step(_det(0.0, [[600, 300, 620, 316]]), q, 0.0)
    for bad in ([[np.nan, 0, 10, 10]], [[10, 10, 5, 20]]):
        with pytest.raises(TrackingError):
            tr.step(_det(0.1, bad), q, 0.1)
    with pytest.raises(TrackingError):
        tr.step(_det(0.1, [[0, 0, 10, 10]], cls=[5]), q, 0.1)
    with pytest.raises(TrackingError):
        tr.step(_det(0.1, [[0, 0, 10, 10]]), np.zeros(4), 0.1)
    with pytest.raises(TrackingError):
        tr.step(_det(0.1, [[0, 0, 10, 10]]), q[:3], 0.1)
    with pytest.raises(TrackingError):
        tr.step(_det(-1.0, [[0, 0, 10, 10]]), q, -1.0)
    with pytest.raises(TrackingError):
        tr.step("not detections", q, 0.2)
    with pytest.raises(TrackingError):
        TrackerConfig(motion_model="imm")
    tl = tr.step(_det(1 / 30, [[600, 300, 620, 316]]), q, 1 / 30)
    assert tl.ids.tolist() == [1] and tl[0].hits == 2


def test_capacity_full_drops_new_tracks_without_crashing():
    tr = Tracker(TrackerConfig(capacity=3), CAM)
    q = np.array([1.0, 0, 0, 0])
    boxes = [[50 + 100 * k, 100, 60 + 100 * k, 110] for k in range(5)]
    tl = tr.step(_det(0.0, boxes), q, 0.0)
    assert len(tl) == 3 and tr.dropped_tracks == 2


def test_tracklist_is_a_snapshot():
    tr = Tracker(TrackerConfig(), CAM)
    q = np.array([1.0, 0, 0, 0])
    tl0 = tr.step(_det(0.0, [[600, 300, 620, 316]]), q, 0.0)
    box0 = tl0[0].box_xyxy_px.copy()
    tr.step(_det(0.1, [[700, 300, 720, 316]]), q, 0.1)
    np.testing.assert_array_equal(tl0[0].box_xyxy_px, box0)
    assert next(iter(tl0)) is tl0[0]


def test_synthetic_rotating_scene_quality():
    """A small seeded rotating-camera scene: our tracker holds identities (MOTA, IDF1 floors)."""
    from autonomy.tracking.evaluate import DegradeConfig, degrade, run_ours, synthetic_sequences

    rng = np.random.default_rng(3)
    seqs = synthetic_sequences(1, rng, n_targets=4, n_frames=150)
    degrade(seqs[0], DegradeConfig(), rng)
    r = evaluate_mot(seqs[0].gt, run_ours(seqs[0]))
    assert r.mota > 0.5 and r.idf1 > 0.6


def test_config_from_toml(tmp_path):
    p = tmp_path / "trk.toml"
    p.write_text('[tracker]\nmotion_model = "ca"\nmax_coast_s = 0.7\nconfirm_hits = 2\n')
    cfg = TrackerConfig.from_toml(p)
    assert (cfg.motion_model, cfg.max_coast_s, cfg.confirm_hits, cfg.order) == ("ca", 0.7, 2, 3)
    p.write_text("[tracker]\nmax_coast = 0.7\n")
    with pytest.raises(TrackingError, match="unknown"):
        TrackerConfig.from_toml(p)
    with pytest.raises(TrackingError):
        TrackerConfig(max_coast_s=float("nan"))


@pytest.mark.parametrize("drop", [False, True])
def test_coasting_duplicate_of_a_live_track_is_deleted_when_enabled(drop):
    """The detections of one big object jump 50 px (outside the first track's gate): a second track starts and
    is confirmed while the first coasts next to it. With ``drop_coasting_duplicates`` the coasting duplicate
    (inside the live track's angular extent) is deleted at once; without, it coasts on to ``max_coast_s``."""
    tr = Tracker(TrackerConfig(drop_coasting_duplicates=drop), CAM)
    q = np.array([1.0, 0, 0, 0])
    c = CAM.intrinsics
    a = [c.cx_px - 30, c.cy_px - 30, c.cx_px + 30, c.cy_px + 30]
    b = [a[0] + 50, a[1], a[2] + 50, a[3]]
    for f in range(10):
        tl = tr.step(_det(f / 30, [a]), q, f / 30)
    first = int(tl.ids[0])
    for f in range(10, 14):
        tl = tr.step(_det(f / 30, [b]), q, f / 30)
    ids = {t.track_id: t.status for t in tl}
    second = [i for i in ids if i != first]
    assert len(second) == 1 and ids[second[0]] is TrackStatus.CONFIRMED
    if drop:
        assert first not in ids
    else:
        assert ids[first] is TrackStatus.COASTING


def test_small_target_is_not_a_duplicate_of_a_big_clutter_box_next_to_it():
    """Issue 6, quick seed 0 at 21.64 s: a ~30 px target (confirmed) missed one detection while a ~300 px
    ground-clutter box (a confirmed "drone" track) was detected 220 px away; the coasting target lay inside the
    clutter's angular extent and ``drop_coasting_duplicates`` deleted it. Boxes as in that flight. A coasting
    track is a duplicate only of a live track of comparable size (``dup_max_size_ratio``), so the target coasts."""
    sim = {"q_ang": 0.01, "init_rate_std_radps": 0.05, "confirm_hits": 5, "max_coast_s": 2.0, "init_score": 0.35,
           "drop_coasting_duplicates": True}
    q = np.array([1.0, 0, 0, 0])
    small = [615.0, 274.0, 649.0, 303.0]
    big = [690.0, 202.0, 1003.0, 471.0]

    def run(cfg):
        tr = Tracker(cfg, CAM)
        for f in range(10):
            tl = tr.step(_det(f / 30, [small, big], scores=[0.55, 0.45]), q, f / 30)
        assert len(tl) == 2 and all(t.status is TrackStatus.CONFIRMED for t in tl)
        target = int(tl.ids[int(np.argmin(tl.angular_size_rad))])
        tl = tr.step(_det(10 / 30, [big], scores=[0.45]), q, 10 / 30)
        return target, {t.track_id: t.status for t in tl}

    target, status = run(TrackerConfig(**sim))
    assert status.get(target) is TrackStatus.COASTING, status
    # the size test is what keeps it: with any size accepted (the behaviour before) it is deleted
    target, status = run(TrackerConfig(**sim, dup_max_size_ratio=1e6))
    assert target not in status, status
    # and a duplicate of comparable size still goes at once (see the test above)


@pytest.mark.xfail(strict=True, reason="known (issue 6): drop_coasting_duplicates deletes a coasting target lying within "
                   "the full box diagonal of a comparable clutter track beside it. A birth-time rule (a duplicate only of "
                   "a live track born after the coasting one's last hit) fixed this case but lockstep fpv_weave-1 and "
                   "degraded-0 then missed (1.70 and 2.36 m; degraded-0 lost its engaged track at 38.6 s; not diagnosed further): "
                   "reverted (aa5865c)")
def test_coasting_target_is_not_a_duplicate_of_a_track_seen_beside_it():
    """Issue 6, evasive seed 0 (lockstep, 57.52 s): the engaged target (~75 px box, confirmed) missed one detection
    at 40 m while a confirmed ~115 px "airplane" clutter track 104 px (6.5 deg) away was detected; the target lay
    inside the clutter's full box diagonal and was deleted as its duplicate, and the engagement flew the last line of
    sight open loop for 1.5 s (its error grew to 25 deg)."""
    sim = {"q_ang": 0.01, "init_rate_std_radps": 0.05, "confirm_hits": 5, "max_coast_s": 2.0, "init_score": 0.35,
           "drop_coasting_duplicates": True}
    tr = Tracker(TrackerConfig(**sim), CAM)
    q = np.array([1.0, 0, 0, 0])
    c = CAM.intrinsics
    target = [c.cx_px - 30, c.cy_px - 22, c.cx_px + 30, c.cy_px + 23]
    clutter = [c.cx_px + 104 - 45, c.cy_px - 35, c.cx_px + 104 + 45, c.cy_px + 35]
    for f in range(10):
        tl = tr.step(_det(f / 30, [target, clutter], scores=[0.6, 0.5]), q, f / 30)
    assert len(tl) == 2 and all(t.status is TrackStatus.CONFIRMED for t in tl)
    tid = int(tl.ids[int(np.argmin(tl.angular_size_rad))])
    tl = tr.step(_det(10 / 30, [clutter], scores=[0.5]), q, 10 / 30)
    status = {t.track_id: t.status for t in tl}
    assert status.get(tid) is TrackStatus.COASTING, status
