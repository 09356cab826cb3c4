"""numba kernels of the tracker against their NumPy twins, plus properties (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.geometry import euler_to_quat
from autonomy.tracking import _kernels as K
from autonomy.tracking import _reference as R


def _random_track(rng, order=2):
    d = 3 * order
    basis = np.zeros((3, 3))
    los = rng.normal(size=3)
    K.tangent_basis(los, basis)
    x = rng.normal(0, 0.01, d)
    x[2] = np.log(0.02)
    a = rng.normal(0, 0.01, (d, d))
    p = a @ a.T + 1e-6 * np.eye(d)
    return x, p, basis


def test_quat_to_rotmat_matches_geometry(rng):
    for _ in range(20):
        q = rng.normal(size=4)
        np.testing.assert_allclose(K.quat_to_rotmat(q), R.quat_to_rotmat(q / np.linalg.norm(q)), atol=1e-12)


@pytest.mark.parametrize("dist", [(0, 0, 0, 0, 0), (-0.2, 0.05, 0.001, -0.002, 0.0)])
def test_measurements_match_camera_model(rng, dist):
    cam = R.camera_for_tests(dist)
    q = euler_to_quat(0.1, -0.3, 1.2)
    c = rng.uniform([50, 50], [1200, 650], (30, 2))
    wh = rng.uniform(3, 80, (30, 2))
    xyxy = np.column_stack([c - wh / 2, c + wh / 2])
    ci = cam.intrinsics
    intr = np.array([ci.fx_px, ci.fy_px, ci.cx_px, ci.cy_px, *ci.dist_coeffs], dtype=float)
    r = cam.r_ned_from_cam(q)
    los, ls, sa = np.empty((30, 3)), np.empty(30), np.empty(30)
    assert K.detections_to_measurements(xyxy, intr, r, 1.0, 0.05, los, ls, sa) == 0
    los_r, ls_r, sa_r = R.measurements_ref(xyxy, cam, q, 1.0, 0.05)
    np.testing.assert_allclose(los, los_r, atol=1e-12)
    np.testing.assert_allclose(ls, ls_r, atol=1e-6)
    np.testing.assert_allclose(sa, sa_r, rtol=1e-12)
    bad = xyxy.copy()
    bad[3, 2] = bad[3, 0] - 1
    assert K.detections_to_measurements(bad, intr, r, 1.0, 0.05, los, ls, sa) == -2
    bad[3, 2] = np.nan
    assert K.detections_to_measurements(bad, intr, r, 1.0, 0.05, los, ls, sa) == -1


@pytest.mark.parametrize("order", [2, 3])
def test_transition_and_predict_match_reference(rng, order):
    d = 3 * order
    f, q = np.empty((d, d)), np.empty((d, d))
    for dt in (0.001, 1 / 30, 0.25, 1.7):
        K.transition(dt, order, 0.05, 0.5, f, q)
        f_r, q_r = R.transition_ref(dt, order, 0.05, 0.5)
        np.testing.assert_allclose(f, f_r, atol=1e-15)
        np.testing.assert_allclose(q, q_r, atol=1e-15)
    xs, ps = [], []
    for _ in range(5):
        x, p, _ = _random_track(rng, order)
        xs.append(x)
        ps.append(p)
    x, p = np.array(xs), np.array(ps)
    dts = np.array([0.0, 1 / 30, 0.1, 0.5, 2.0])
    x2, p2 = x.copy(), p.copy()
    K.predict_batch(x2, p2, np.arange(5), dts, order, 0.05, 0.5)
    for i in range(5):
        xr, pr = R.predict_ref(x[i], p[i], dts[i], order, 0.05, 0.5) if dts[i] else (x[i], p[i])
        np.testing.assert_allclose(x2[i], xr, atol=1e-12)
        np.testing.assert_allclose(p2[i], pr, atol=1e-12)
        # the dense kernel agrees too
        if dts[i]:
            K.transition(dts[i], order, 0.05, 0.5, f, q)
            xd, pd = x[i].copy(), p[i].copy()
            K.predict_one(xd, pd, f, q)
            np.testing.assert_allclose(pd, pr, atol=1e-12)


@pytest.mark.parametrize("order", [2, 3])
def test_predicted_angular_size_is_bounded(rng, order):
    """Coasting through the closest approach, ln(size) follows a large growth rate: unbounded, 2 s reached
    10.8 rad and a range from it came out negative (lockstep degraded-1 crashed in re-association)."""
    x, p, _ = _random_track(rng, order)
    x[2], x[5] = np.log(0.3), 2.5            # 0.3 rad, growing e^2.5 per second
    if order == 3:
        x[8] = 0.0
    xk, pk = x[None].copy(), p[None].copy()
    K.predict_batch(xk, pk, np.arange(1), np.array([2.0]), order, 0.05, 0.5)
    xr, _ = R.predict_ref(x, p, 2.0, order, 0.05, 0.5)
    assert np.exp(xk[0, 2]) == pytest.approx(0.5 * np.pi) and np.exp(xr[2]) == pytest.approx(0.5 * np.pi)
    xs = x.copy()
    K.predict_batch(xs[None], p[None].copy(), np.arange(1), np.array([0.1]), order, 0.05, 0.5)
    assert xs[2] == pytest.approx(np.log(0.3) + 0.25, abs=0.02)   # a normal prediction is untouched


def test_gate_cost_and_update_match_reference(rng):
    xs, ps, bs = zip(*[_random_track(rng) for _ in range(4)])
    x, p, basis = np.array(xs), np.array(ps), np.array(bs)
    # detections near the tracks, and some far away
    dl = []
    for i in range(4):
        v = R.los_of(x[i], basis[i]) + rng.normal(0, 0.01, 3)
        dl.append(v / np.linalg.norm(v))
    dl.append(-dl[0])
    det_los = np.array(dl)
    det_ls = np.log(rng.uniform(0.01, 0.04, 5))
    det_sa = rng.uniform(0.001, 0.01, 5)
    cost = np.empty((4, 5))
    for w_logdet in (np.zeros(4), np.full(4, 0.5), np.array([1.0, 0.0, 0.5, 2.0])):
        K.gate_cost(x, p, basis, np.arange(4), det_los, det_ls, det_sa, 0.15, 16.0, w_logdet, cost)
        ref = R.gate_cost_ref(x, p, basis, det_los, det_ls, det_sa, 0.15, 16.0, w_logdet)
        np.testing.assert_allclose(cost, ref, rtol=1e-9)
        assert np.all(cost[:, 4] >= K.INF)
    for i in range(4):
        xi, pi = x[i].copy(), p[i].copy()
        assert K.update_one(xi, pi, basis[i], det_los[i], det_ls[i], det_sa[i], 0.15)
        xr, pr = R.update_ref(x[i], p[i], basis[i], det_los[i], det_ls[i], det_sa[i], 0.15)
        np.testing.assert_allclose(xi, xr, atol=1e-10)
        np.testing.assert_allclose(pi, pr, atol=1e-12)


@pytest.mark.parametrize("order", [2, 3])
def test_recentre_preserves_los_and_rate(rng, order):
    for _ in range(10):
        x, p, basis = _random_track(rng, order)
        x[:2] = rng.normal(0, 0.05, 2)
        los0 = R.los_of(x, basis)
        # LOS rate in NED: d/dt normalise(r0 + a e1 + b e2)
        eps = 1e-7
        rate0 = (R.los_of(x[:2] + eps * x[3:5], basis) - los0) / eps
        x2, p2, b2 = x.copy(), p.copy(), basis.copy()
        K.recentre(x2, p2, b2, order)
        assert x2[0] == 0 and x2[1] == 0
        np.testing.assert_allclose(b2[0], los0, atol=1e-12)
        np.testing.assert_allclose(b2 @ b2.T, np.eye(3), atol=1e-12)
        rate1 = (R.los_of(eps * x2[3:5], b2) - b2[0]) / eps
        np.testing.assert_allclose(rate1, rate0, atol=1e-6)
        assert np.allclose(p2, p2.T) and np.linalg.eigvalsh(p2).min() > 0


def test_logdet_cost_gives_a_contested_detection_to_the_well_localised_track():
    """Two tracks predicted at the same place: one freshly updated (tight P), one coasting (P grown 100x).
    The detection is 2 sigma off the tight track, so its plain d^2 is smaller for the diffuse track; the
    likelihood cost (d^2 + w ln det S/R) gives it to the tight one, plain Mahalanobis (w = 0) does not."""
    basis = np.zeros((3, 3))
    K.tangent_basis(np.array([1.0, 0.0, 0.0]), basis)
    x = np.zeros((2, 6))
    x[:, 2] = np.log(0.02)
    sig = 0.002
    p = np.zeros((2, 6, 6))
    p[0] = np.diag([sig**2, sig**2, 0.01, 1e-4, 1e-4, 1e-2])
    p[1] = np.diag([(10 * sig) ** 2, (10 * sig) ** 2, 0.04, 1e-2, 1e-2, 1e-1])
    v = basis[0] + 2.0 * np.hypot(sig, sig) * basis[1]
    det_los = (v / np.linalg.norm(v))[None]
    det_ls, det_sa = np.array([np.log(0.02)]), np.array([sig])
    cost = np.empty((2, 1))
    K.gate_cost(x, p, basis[None].repeat(2, 0), np.arange(2), det_los, det_ls, det_sa, 0.15, 16.27, np.zeros(2), cost)
    assert cost[1, 0] < cost[0, 0] and list(K.assign(cost, 16.27)) == [-1, 0]
    K.gate_cost(x, p, basis[None].repeat(2, 0), np.arange(2), det_los, det_ls, det_sa, 0.15, 16.27, np.full(2, 0.5),
                cost)
    np.testing.assert_allclose(cost, R.gate_cost_ref(x, p, basis[None].repeat(2, 0), det_los, det_ls, det_sa,
                                                     0.15, 16.27, 0.5), rtol=1e-9)
    assert list(K.assign(cost, 16.27)) == [0, -1]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 4), m=st.integers(1, 5), seed=st.integers(0, 10_000), p_gate=st.floats(0, 0.6))
def test_lsap_and_assign_are_optimal_vs_brute_force(n, m, seed, p_gate):
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 10, (n, m))
    cost[rng.uniform(size=(n, m)) < p_gate] = K.INF
    if n <= m:
        col = K.lsap(cost)
        best, arg = R.lsap_brute(cost)
        if arg is None:
            assert np.all(col == -1)
        else:
            assert len(set(col.tolist())) == n
            assert sum(cost[r, col[r]] for r in range(n)) == pytest.approx(best)
    miss = 6.0
    a = K.assign(cost, miss)
    used = [j for j in a if j >= 0]
    assert len(used) == len(set(used))
    val = sum(miss if j < 0 else cost[r, j] for r, j in enumerate(a))
    assert val == pytest.approx(R.assign_brute(cost, miss))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.sampled_from([2, 3]))
def test_covariance_stays_symmetric_positive_definite(seed, order):
    rng = np.random.default_rng(seed)
    x, p, basis = _random_track(rng, order)
    x, p = x[None].copy(), p[None].copy()
    for _ in range(40):
        K.predict_batch(x, p, np.zeros(1, dtype=np.int64), np.array([rng.uniform(0.001, 0.5)]), order,
                        rng.uniform(1e-4, 1.0), rng.uniform(1e-3, 1.0))
        if rng.uniform() < 0.7:
            v = R.los_of(x[0], basis) + rng.normal(0, 0.002, 3)
            K.update_one(x[0], p[0], basis, v / np.linalg.norm(v), x[0, 2] + rng.normal(0, 0.1),
                         rng.uniform(1e-4, 1e-2), 0.15)
        K.recentre(x[0], p[0], basis, order)
        assert np.array_equal(p[0], p[0].T)
        assert np.linalg.eigvalsh(p[0]).min() > 0


def test_box_beyond_the_lens_fold_is_ignored_not_fatal():
    """Strong barrel distortion: a corner pixel has no inverse; that detection is dropped, others kept."""
    from autonomy.tracking import Tracker, TrackerConfig
    from autonomy.types import Detections

    cam = R.camera_for_tests((-0.6, 0.0, 0.0, 0.0, 0.0))
    ci = cam.intrinsics
    intr = np.array([ci.fx_px, ci.fy_px, ci.cx_px, ci.cy_px, *ci.dist_coeffs], dtype=float)
    b = np.empty(3)
    assert not K.pixel_to_bearing_cam(0.0, 0.0, intr, b) and np.all(np.isnan(b))
    assert np.all(np.isnan(cam.pixels_to_los_ned(np.array([[0.0, 0.0]]), np.array([1.0, 0, 0, 0]))))
    tr = Tracker(TrackerConfig(confirm_hits=1), cam)
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [600.0, 300.0, 620.0, 315.0]])
    tl = tr.step(Detections(0.0, boxes, np.array([0.9, 0.9]), np.zeros(2, dtype=np.int64)),
                 np.array([1.0, 0, 0, 0]), 0.0)
    assert len(tl) == 1 and tr.associations() == {1: 1}
