"""Plain NumPy twins of the numba kernels in ``_kernels.py``, written independently, for the tests.

Same shapes and conventions as the kernels (see that module's docstring). Slow and clear on purpose.
"""

from __future__ import annotations

import itertools

import numpy as np

from autonomy.camera.model import Camera, CameraIntrinsics, CameraMount
from autonomy.geometry import quat_to_rotmat

INF = 1e30


def measurements_ref(xyxy, camera: Camera, q_body_to_ned, sigma_px, sigma_frac):
    """Boxes -> (los_ned (M,3), ln angular size (M,), centre sigma rad (M,)) via the Camera model."""
    xyxy = np.asarray(xyxy, dtype=np.float64)
    c = 0.5 * (xyxy[:, :2] + xyxy[:, 2:])
    los = camera.pixels_to_los_ned(c, q_body_to_ned)
    b1 = camera.pixels_to_los_ned(xyxy[:, :2], q_body_to_ned)
    b2 = camera.pixels_to_los_ned(xyxy[:, 2:], q_body_to_ned)
    ang = np.arccos(np.clip(np.sum(b1 * b2, axis=1), -1, 1))
    f = 0.5 * (camera.intrinsics.fx_px + camera.intrinsics.fy_px)
    diag = np.hypot(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
    return los, np.log(ang), (sigma_px + sigma_frac * diag) / f


def transition_ref(dt, order, q_ang, q_logsize):
    if order == 2:
        f1 = np.array([[1, dt], [0, 1]])
        q1 = np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    else:
        f1 = np.array([[1, dt, dt * dt / 2], [0, 1, dt], [0, 0, 1]])
        q1 = np.array([[dt**5 / 20, dt**4 / 8, dt**3 / 6], [dt**4 / 8, dt**3 / 3, dt**2 / 2],
                       [dt**3 / 6, dt**2 / 2, dt]])
    return np.kron(f1, np.eye(3)), np.kron(q1, np.diag([q_ang, q_ang, q_logsize]))


def predict_ref(x, p, dt, order, q_ang, q_logsize):
    f, q = transition_ref(dt, order, q_ang, q_logsize)
    xn = f @ x
    xn[2] = min(xn[2], np.log(0.5 * np.pi))   # the kernels' LOG_SIZE_MAX (90 deg)
    return xn, f @ p @ f.T + q


def _h(d):
    h = np.zeros((3, d))
    h[:, :3] = np.eye(3)
    return h


def innovation_ref(x, p, basis, los, logsize, sig_ang, sig_logsize):
    r0, e1, e2 = basis
    den = los @ r0
    if den < 0.1:
        return None, None
    z = np.array([los @ e1 / den, los @ e2 / den, logsize])
    h = _h(len(x))
    return z - h @ x, h @ p @ h.T + np.diag([sig_ang**2, sig_ang**2, sig_logsize**2])


def gate_cost_ref(x, p, basis, det_los, det_logsize, det_sig_ang, sig_logsize, gate_d2, w_logdet=0.0):
    """d^2 (+ w_logdet[i] * ln(det S / det R)) inside the gate d^2 <= gate_d2, INF outside."""
    n, m = len(x), len(det_los)
    w = np.broadcast_to(np.asarray(w_logdet, dtype=np.float64), (n,))
    c = np.full((n, m), INF)
    for i in range(n):
        for j in range(m):
            nu, s = innovation_ref(x[i], p[i], basis[i], det_los[j], det_logsize[j], det_sig_ang[j], sig_logsize)
            if nu is None:
                continue
            d2 = float(nu @ np.linalg.solve(s, nu))
            if d2 <= gate_d2:
                r = np.diag([det_sig_ang[j] ** 2, det_sig_ang[j] ** 2, sig_logsize**2])
                c[i, j] = d2 + w[i] * (np.linalg.slogdet(s)[1] - np.linalg.slogdet(r)[1])
    return c


def update_ref(x, p, basis, los, logsize, sig_ang, sig_logsize):
    nu, s = innovation_ref(x, p, basis, los, logsize, sig_ang, sig_logsize)
    h = _h(len(x))
    k = p @ h.T @ np.linalg.inv(s)
    a = np.eye(len(x)) - k @ h
    r = np.diag([sig_ang**2, sig_ang**2, sig_logsize**2])
    return x + k @ nu, a @ p @ a.T + k @ r @ k.T


def los_of(x, basis):
    w = basis[0] + x[0] * basis[1] + x[1] * basis[2]
    return w / np.linalg.norm(w)


def lsap_brute(cost):
    """Minimum total cost over all complete row assignments (rows <= cols); None if none is feasible."""
    n, m = cost.shape
    best, arg = np.inf, None
    for cols in itertools.permutations(range(m), n):
        c = sum(cost[r, cols[r]] for r in range(n))
        if c < best and all(cost[r, cols[r]] < INF for r in range(n)):
            best, arg = c, cols
    return best, arg


def assign_brute(cost, miss_cost):
    """Minimum of sum(assigned costs) + miss_cost * unassigned tracks, by enumeration. Returns the value."""
    n, m = cost.shape
    best = np.inf
    options = [[-1] + [j for j in range(m) if cost[r, j] < INF] for r in range(n)]
    for choice in itertools.product(*options):
        used = [j for j in choice if j >= 0]
        if len(used) != len(set(used)):
            continue
        v = sum(miss_cost if j < 0 else cost[r, j] for r, j in enumerate(choice))
        best = min(best, v)
    return best


def camera_for_tests(dist=(0.0, 0.0, 0.0, 0.0, 0.0)) -> Camera:
    base = CameraIntrinsics.from_hfov(1280, 720, 70.0)
    intr = CameraIntrinsics(1280, 720, base.fx_px, base.fy_px, base.cx_px, base.cy_px, tuple(dist))
    return Camera(intr, CameraMount(), 30.0)


__all__ = [
    "assign_brute",
    "camera_for_tests",
    "gate_cost_ref",
    "los_of",
    "lsap_brute",
    "measurements_ref",
    "predict_ref",
    "quat_to_rotmat",
    "transition_ref",
    "update_ref",
]
