"""Numba kernels of the tracker: measurement, predict, gate, assign, update, re-centre, lifecycle.

Everything here works on contiguous float64/int64 arrays laid out per field, with no Python objects
inside, and is compiled with ``cache=True``. The public, validating API is :mod:`autonomy.tracking.tracker`;
:mod:`autonomy.tracking._reference` holds a plain NumPy implementation of every kernel for the tests.

State space (per track ``i``, DESIGN.md section 4):
- a per-track inertial tangent frame ``basis[i] = [r0, e1, e2]`` (rows, unit NED vectors, r0 = reference
  line of sight, e1/e2 spanning the tangent plane);
- ``x[i]`` = ``[a, b, s, da, db, ds(, dda, ddb, dds)]`` where ``(a, b)`` are the gnomonic coordinates of the
  line of sight in that plane (``los ∝ r0 + a e1 + b e2``; rad near the origin), ``s = ln(angular size / rad)``;
  first derivatives per second (and second derivatives per s^2 for the constant-acceleration model);
- ``P[i]`` its covariance. After every step the frame is re-centred on the estimate (``a = b = 0``), so the
  projection stays accurate whatever the line of sight does, and the line of sight is ``r0`` itself.
Because the frame is inertial (NED), the interceptor's own rotation never enters the motion model: it only
enters through the measurement (pixel -> camera -> NED with the attitude at capture).

Motion models: white-noise-acceleration constant velocity (CV, ``order=2``) and white-noise-jerk constant
acceleration (CA, ``order=3``), Bar-Shalom, Li & Kirubarajan, "Estimation with Applications to Tracking and
Navigation" (2001), sections 6.2.2 and 6.2.3; time steps in seconds from the capture times.

Assignment: rectangular linear sum assignment by shortest augmenting paths (Jonker-Volgenant as described by
Crouse, "On implementing 2D rectangular assignment algorithms", IEEE TAES 2016), with a per-track "miss"
column so that leaving a track unassigned is an explicit, priced option (global optimum, not greedy).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---- status codes (int64 in the state arrays) ----
FREE = 0
TENTATIVE = 1
CONFIRMED = 2
COASTING = 3

INF = 1e30
MAX_CLASSES = 16
# ln of the largest angular size a track may predict (90 deg): a coasting track's ln(size) follows its growth
# rate, and through the closest approach that rate is large; unbounded, 2 s of coasting reached 10.8 rad (more
# than a turn), and a range from that size came out negative (tan of an angle past pi)
LOG_SIZE_MAX = math.log(0.5 * math.pi)

# ---- named slots of the packed float64 configuration vector ``cfg`` (see TrackerConfig.pack) ----
C_SIGMA_PX = 0          # centre noise floor, px (1-sigma)
C_SIGMA_FRAC = 1        # centre noise as a fraction of the box diagonal
C_SIGMA_LOGSIZE = 2     # noise of ln(angular size), 1-sigma
C_Q_ANG = 3             # process noise spectral density of the LOS coordinates (rad^2/s^3 CV, rad^2/s^5 CA)
C_Q_LOGSIZE = 4         # same for ln(size) (1/s^3 CV, 1/s^5 CA)
C_GATE_D2 = 5           # Mahalanobis gate (squared), 3 dof
C_CONFIRM_HITS = 6      # hits that confirm a tentative track
C_MAX_TENT_MISSES = 7   # consecutive misses that delete a tentative track
C_MAX_COAST_S = 8       # time without update after which a confirmed track is deleted
C_MIN_SCORE = 9         # detections below this score are ignored
C_INIT_SCORE = 10       # only detections at or above this score start tracks
C_INIT_RATE_STD = 11    # initial 1-sigma LOS rate, rad/s
C_INIT_LOGRATE_STD = 12  # initial 1-sigma d ln(size)/dt, 1/s
C_INIT_ACC_STD = 13     # initial 1-sigma LOS acceleration (CA only), rad/s^2
C_SCORE_ALPHA = 14      # EMA weight of the track score
C_ASPECT_ALPHA = 15     # EMA weight of the box aspect ratio
C_MAX_POS_STD = 16      # delete a track whose LOS 1-sigma exceeds this, rad
C_ORDER = 17            # 2 = CV, 3 = CA
C_MISS_COST = 18        # cost of leaving a track unassigned (normally = gate)
C_TENT_PENALTY = 19     # added to a tentative track's association costs so established tracks win ties
C_W_LOGDET = 20         # weight of ln(det S / det R) in the association cost (0: plain Mahalanobis)
C_CLASS_TAU_S = 21      # time constant of the class votes' exponential forgetting, s (0: never forget)
C_CLASS_SWITCH = 22     # a confirmed track changes class only when the challenger's votes exceed this x its own
C_DROP_DUP_COAST = 23   # 1: delete a coasting track whose LOS lies on a confirmed track updated this frame
C_DUP_SIZE_RATIO = 24   # ... only if their angular sizes agree within this factor (>= 1)
N_CFG = 25

# ---- intrinsics vector ``intr``: fx, fy, cx, cy, k1, k2, p1, p2, k3 ----
N_INTR = 9


# ============================ camera geometry ============================

@njit(cache=True)
def quat_to_rotmat(q):
    """Hamilton [w, x, y, z] (body -> NED) to a 3x3 rotation matrix; q is normalised here."""
    n = math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
    w, x, y, z = q[0] / n, q[1] / n, q[2] / n, q[3] / n
    r = np.empty((3, 3))
    r[0, 0] = 1 - 2 * (y * y + z * z)
    r[0, 1] = 2 * (x * y - w * z)
    r[0, 2] = 2 * (x * z + w * y)
    r[1, 0] = 2 * (x * y + w * z)
    r[1, 1] = 1 - 2 * (x * x + z * z)
    r[1, 2] = 2 * (y * z - w * x)
    r[2, 0] = 2 * (x * z - w * y)
    r[2, 1] = 2 * (y * z + w * x)
    r[2, 2] = 1 - 2 * (x * x + y * y)
    return r


@njit(cache=True)
def matmul3(a, b):
    """3x3 product without BLAS (numba's @ needs scipy)."""
    out = np.empty((3, 3))
    for r in range(3):
        for c in range(3):
            out[r, c] = a[r, 0] * b[0, c] + a[r, 1] * b[1, c] + a[r, 2] * b[2, c]
    return out


@njit(cache=True)
def pixel_to_bearing_cam(u, v, intr, out):
    """Unit bearing in the camera optical frame (x right, y down, z forward) of pixel (u, v).

    Undistortion by the same damped Newton iteration as
    :func:`autonomy.camera.model._undistort_normalized`; a pixel beyond the fold of the lens model (no
    inverse) gets a NaN bearing and False is returned."""
    xd = (u - intr[2]) / intr[0]
    yd = (v - intr[3]) / intr[1]
    k1, k2, p1, p2, k3 = intr[4], intr[5], intr[6], intr[7], intr[8]
    x, y = xd, yd
    if k1 != 0.0 or k2 != 0.0 or p1 != 0.0 or p2 != 0.0 or k3 != 0.0:
        for _ in range(20):
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
            d_radial = k1 + 2 * k2 * r2 + 3 * k3 * r2 * r2
            ex = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
            ey = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
            j00 = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
            j01 = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
            j11 = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
            det = j00 * j11 - j01 * j01
            if abs(det) < 1e-12:
                det = 1e-12
            dx = (j11 * ex - j01 * ey) / det
            dy = (-j01 * ex + j00 * ey) / det
            n = math.sqrt(dx * dx + dy * dy)
            limit = 0.5 * (1.0 + math.sqrt(x * x + y * y))
            if n > limit:
                dx *= limit / n
                dy *= limit / n
            x -= dx
            y -= dy
        r2 = x * x + y * y
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        d_radial = k1 + 2 * k2 * r2 + 3 * k3 * r2 * r2
        ex = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
        ey = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
        j00 = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
        j11 = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
        if not (math.sqrt(ex * ex + ey * ey) < 1e-9 and j00 > 0 and j11 > 0):
            out[0] = np.nan
            out[1] = np.nan
            out[2] = np.nan
            return False
    n = math.sqrt(x * x + y * y + 1.0)
    out[0] = x / n
    out[1] = y / n
    out[2] = 1.0 / n
    return True


@njit(cache=True)
def bearing_cam_to_pixel(b, intr, out):
    """Project a camera-frame direction to pixels; returns False (and NaN pixels) behind the camera."""
    if b[2] <= 1e-9:
        out[0] = np.nan
        out[1] = np.nan
        return False
    x = b[0] / b[2]
    y = b[1] / b[2]
    k1, k2, p1, p2, k3 = intr[4], intr[5], intr[6], intr[7], intr[8]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    out[0] = xd * intr[0] + intr[2]
    out[1] = yd * intr[1] + intr[3]
    return True


@njit(cache=True)
def detections_to_measurements(xyxy, intr, r_ned_cam, sigma_px, sigma_frac, los_out, logsize_out, sig_ang_out):
    """Boxes (M, 4) px -> centre LOS in NED (M, 3), ln(angular size) (M,), centre 1-sigma (M,) rad.

    Angular size = angle between the bearings of the two box corners (the box diagonal), so lens
    distortion is accounted for. A box reaching beyond the lens model's fold gets NaN outputs (the
    tracker ignores it). Returns 0, or -1 for a non-finite box, -2 for an inverted/empty box.
    """
    b = np.empty(3)
    b2 = np.empty(3)
    f_mean = 0.5 * (intr[0] + intr[1])
    for j in range(xyxy.shape[0]):
        x1, y1, x2, y2 = xyxy[j, 0], xyxy[j, 1], xyxy[j, 2], xyxy[j, 3]
        if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
            return -1
        if x2 <= x1 or y2 <= y1:
            return -2
        pixel_to_bearing_cam(0.5 * (x1 + x2), 0.5 * (y1 + y2), intr, b)
        for k in range(3):
            los_out[j, k] = r_ned_cam[k, 0] * b[0] + r_ned_cam[k, 1] * b[1] + r_ned_cam[k, 2] * b[2]
        pixel_to_bearing_cam(x1, y1, intr, b)
        pixel_to_bearing_cam(x2, y2, intr, b2)
        cx = b[1] * b2[2] - b[2] * b2[1]
        cy = b[2] * b2[0] - b[0] * b2[2]
        cz = b[0] * b2[1] - b[1] * b2[0]
        ang = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz), b[0] * b2[0] + b[1] * b2[1] + b[2] * b2[2])
        logsize_out[j] = math.log(max(ang, 1e-9)) if math.isfinite(ang) else np.nan
        diag_px = math.sqrt((x2 - x1) ** 2 + (y2 - y1) ** 2)
        sig_ang_out[j] = (sigma_px + sigma_frac * diag_px) / f_mean
    return 0


# ============================ motion model ============================

@njit(cache=True)
def transition(dt, order, q_ang, q_logsize, f_out, q_out):
    """F and Q (d x d, d = 3*order) for a step of dt seconds; axes (a, b, s) interleaved by derivative."""
    d = 3 * order
    for r in range(d):
        for c in range(d):
            f_out[r, c] = 0.0
            q_out[r, c] = 0.0
    # 1-D blocks
    f1 = np.zeros((3, 3))
    q1 = np.zeros((3, 3))
    _blocks(dt, order, f1, q1)
    for i in range(order):
        for j in range(order):
            for ax in range(3):
                f_out[3 * i + ax, 3 * j + ax] = f1[i, j]
                q_out[3 * i + ax, 3 * j + ax] = q1[i, j] * (q_logsize if ax == 2 else q_ang)


@njit(cache=True)
def predict_one(x, p, f, q):
    """x <- F x, P <- F P F' + Q (symmetrised), in place, for one track (d,), (d, d)."""
    d = x.shape[0]
    xn = np.zeros(d)
    for r in range(d):
        s = 0.0
        for c in range(d):
            s += f[r, c] * x[c]
        xn[r] = s
    fp = np.zeros((d, d))
    for r in range(d):
        for c in range(d):
            s = 0.0
            for k in range(d):
                s += f[r, k] * p[k, c]
            fp[r, c] = s
    xn[2] = min(xn[2], LOG_SIZE_MAX)
    for r in range(d):
        x[r] = xn[r]
        for c in range(r, d):
            s = 0.0
            for k in range(d):
                s += fp[r, k] * f[c, k]
            v = s + 0.5 * (q[r, c] + q[c, r])
            p[r, c] = v
            p[c, r] = v


@njit(cache=True)
def _blocks(dt, order, f1, q1):
    """1-D transition and noise blocks (order x order) of CV (order 2) or CA (order 3) for dt seconds."""
    f1[:, :] = 0.0
    q1[:, :] = 0.0
    if order == 2:
        f1[0, 0] = 1.0
        f1[0, 1] = dt
        f1[1, 1] = 1.0
        q1[0, 0] = dt ** 3 / 3.0
        q1[0, 1] = dt ** 2 / 2.0
        q1[1, 0] = dt ** 2 / 2.0
        q1[1, 1] = dt
    else:
        f1[0, 0] = 1.0
        f1[0, 1] = dt
        f1[0, 2] = 0.5 * dt * dt
        f1[1, 1] = 1.0
        f1[1, 2] = dt
        f1[2, 2] = 1.0
        q1[0, 0] = dt ** 5 / 20.0
        q1[0, 1] = dt ** 4 / 8.0
        q1[0, 2] = dt ** 3 / 6.0
        q1[1, 1] = dt ** 3 / 3.0
        q1[1, 2] = dt ** 2 / 2.0
        q1[2, 2] = dt
        q1[1, 0] = q1[0, 1]
        q1[2, 0] = q1[0, 2]
        q1[2, 1] = q1[1, 2]


@njit(cache=True)
def predict_batch(x, p, idx, dt, order, q_ang, q_logsize):
    """Predict tracks ``idx`` (K,) int64 by ``dt`` (K,) seconds each, in place on x (N, d), P (N, d, d).

    Same result as :func:`predict_one` with :func:`transition`'s F and Q, using F = kron(F1, I3):
    only the order x order block structure is multiplied (O(d^2 order) instead of O(d^3))."""
    d = x.shape[1]
    f1 = np.zeros((order, order))
    q1 = np.zeros((order, order))
    fp = np.empty((d, d))
    xn = np.empty(d)
    last_dt = -1.0
    for kk in range(idx.shape[0]):
        i = idx[kk]
        h = dt[kk]
        if h == 0.0:
            continue
        if h != last_dt:
            _blocks(h, order, f1, q1)
            last_dt = h
        xi = x[i]
        pi = p[i]
        for bi in range(order):
            for ax in range(3):
                r = 3 * bi + ax
                acc = 0.0
                for bj in range(bi, order):
                    acc += f1[bi, bj] * xi[3 * bj + ax]
                xn[r] = acc
                for c in range(d):
                    acc = 0.0
                    for bj in range(bi, order):
                        acc += f1[bi, bj] * pi[3 * bj + ax, c]
                    fp[r, c] = acc
        for r in range(d):
            xi[r] = xn[r]
        xi[2] = min(xi[2], LOG_SIZE_MAX)
        for bi in range(order):
            for ax in range(3):
                r = 3 * bi + ax
                for bc in range(order):
                    for axc in range(3):
                        c = 3 * bc + axc
                        if c < r:
                            continue
                        acc = 0.0
                        for bj in range(bc, order):
                            acc += fp[r, 3 * bj + axc] * f1[bc, bj]
                        if ax == axc:
                            acc += q1[bi, bc] * (q_logsize if ax == 2 else q_ang)
                        pi[r, c] = acc
                        pi[c, r] = acc


# ============================ measurement / gating ============================

@njit(cache=True)
def project_to_plane(basis, u, z_out):
    """Gnomonic coordinates (a, b) of unit vector u in the tangent frame ``basis`` (rows r0, e1, e2).

    Returns False when u is more than ~84 deg from r0 (projection unusable)."""
    den = basis[0, 0] * u[0] + basis[0, 1] * u[1] + basis[0, 2] * u[2]
    if den < 0.1:
        return False
    z_out[0] = (basis[1, 0] * u[0] + basis[1, 1] * u[1] + basis[1, 2] * u[2]) / den
    z_out[1] = (basis[2, 0] * u[0] + basis[2, 1] * u[1] + basis[2, 2] * u[2]) / den
    return True


@njit(cache=True)
def inv3_sym(s, out):
    """Inverse of a symmetric 3x3 matrix; returns its determinant (<= 0: not positive definite)."""
    a, b, c = s[0, 0], s[0, 1], s[0, 2]
    d, e, f = s[1, 1], s[1, 2], s[2, 2]
    c00 = d * f - e * e
    c01 = c * e - b * f
    c02 = b * e - c * d
    det = a * c00 + b * c01 + c * c02
    if det <= 0.0:
        return det
    inv = 1.0 / det
    out[0, 0] = c00 * inv
    out[0, 1] = c01 * inv
    out[0, 2] = c02 * inv
    out[1, 0] = c01 * inv
    out[1, 1] = (a * f - c * c) * inv
    out[1, 2] = (b * c - a * e) * inv
    out[2, 0] = c02 * inv
    out[2, 1] = out[1, 2]
    out[2, 2] = (a * d - b * b) * inv
    return det


@njit(cache=True)
def innovation(x, p, basis, los, logsize, sig_ang, sig_logsize, nu_out, s_out):
    """Innovation nu (3,) and its covariance S (3x3) of one detection against one track; False if unusable.

    H selects (a, b, s) (the first three state entries); R = diag(sig_ang^2, sig_ang^2, sig_logsize^2)."""
    den = basis[0, 0] * los[0] + basis[0, 1] * los[1] + basis[0, 2] * los[2]
    if den < 0.1:
        return False
    nu_out[0] = (basis[1, 0] * los[0] + basis[1, 1] * los[1] + basis[1, 2] * los[2]) / den - x[0]
    nu_out[1] = (basis[2, 0] * los[0] + basis[2, 1] * los[1] + basis[2, 2] * los[2]) / den - x[1]
    nu_out[2] = logsize - x[2]
    for r in range(3):
        for c in range(3):
            s_out[r, c] = p[r, c]
    s_out[0, 0] += sig_ang * sig_ang
    s_out[1, 1] += sig_ang * sig_ang
    s_out[2, 2] += sig_logsize * sig_logsize
    return True


@njit(cache=True)
def gate_cost(x, p, basis, idx, det_los, det_logsize, det_sig_ang, sig_logsize, gate_d2, w_logdet, cost_out):
    """Association cost of every (track idx[r], detection j) pair, INF outside the gate.

    cost_out (K, M) = d^2 + w_logdet[r] * ln(det S / det R) for pairs with squared Mahalanobis distance
    d^2 = nu' S^-1 nu <= gate_d2 (w_logdet (K,) per track; R = the detection's own noise, so the term is >= 0 and vanishes for a
    perfectly known track). With w_logdet = 1 this is the track's negative log-likelihood of the detection
    (up to a constant): a coasting track whose prediction has spread out no longer wins a detection
    against a well-localised track just because its wide S makes every d^2 small (Blackman & Popoli,
    "Design and Analysis of Modern Tracking Systems", 1999, section 6.2). The miss option is priced at the
    gate (see assign). Pairs are first rejected cheaply on a single coordinate: d^2 >= nu_k^2 / S_kk."""
    nu = np.empty(3)
    s = np.empty((3, 3))
    si = np.empty((3, 3))
    for r in range(idx.shape[0]):
        i = idx[r]
        bs = basis[i]
        for j in range(det_los.shape[0]):
            cost_out[r, j] = INF
            u = det_los[j]
            den = bs[0, 0] * u[0] + bs[0, 1] * u[1] + bs[0, 2] * u[2]
            if den < 0.1:
                continue
            sa2 = det_sig_ang[j] * det_sig_ang[j]
            na = (bs[1, 0] * u[0] + bs[1, 1] * u[1] + bs[1, 2] * u[2]) / den - x[i, 0]
            if na * na > gate_d2 * (p[i, 0, 0] + sa2):
                continue
            nb = (bs[2, 0] * u[0] + bs[2, 1] * u[1] + bs[2, 2] * u[2]) / den - x[i, 1]
            if nb * nb > gate_d2 * (p[i, 1, 1] + sa2):
                continue
            if not innovation(x[i], p[i], bs, u, det_logsize[j], det_sig_ang[j], sig_logsize, nu, s):
                continue
            det_s = inv3_sym(s, si)
            if det_s <= 0.0:
                continue
            d2 = 0.0
            for a in range(3):
                for b in range(3):
                    d2 += nu[a] * si[a, b] * nu[b]
            if d2 <= gate_d2:
                if w_logdet[r] != 0.0:
                    d2 += w_logdet[r] * math.log(det_s / (sa2 * sa2 * sig_logsize * sig_logsize))
                cost_out[r, j] = d2


# ============================ assignment ============================

@njit(cache=True)
def lsap(cost):
    """Optimal rectangular assignment, rows <= cols: returns col4row (n,), minimising the summed cost.

    Shortest augmenting path (Crouse 2016, the algorithm of scipy.optimize.linear_sum_assignment).
    Entries >= INF are forbidden; returns all -1 if no complete row assignment exists."""
    n, m = cost.shape
    col4row = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return col4row
    u = np.zeros(n)
    v = np.zeros(m)
    shortest = np.empty(m)
    path = np.full(m, -1, dtype=np.int64)
    row4col = np.full(m, -1, dtype=np.int64)
    sr = np.zeros(n, dtype=np.bool_)
    sc = np.zeros(m, dtype=np.bool_)
    remaining = np.empty(m, dtype=np.int64)
    for cur in range(n):
        min_val = 0.0
        i = cur
        num_rem = m
        for it in range(m):
            remaining[it] = m - it - 1
        sr[:] = False
        sc[:] = False
        shortest[:] = np.inf
        sink = -1
        while sink == -1:
            index = -1
            lowest = np.inf
            sr[i] = True
            for it in range(num_rem):
                j = remaining[it]
                c = cost[i, j]
                if c >= INF:
                    c = np.inf
                r = min_val + c - u[i] - v[j]
                if r < shortest[j]:
                    path[j] = i
                    shortest[j] = r
                if shortest[j] < lowest or (shortest[j] == lowest and row4col[j] == -1):
                    lowest = shortest[j]
                    index = it
            min_val = lowest
            if index == -1 or min_val == np.inf:
                col4row[:] = -1
                return col4row
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            sc[j] = True
            num_rem -= 1
            remaining[index] = remaining[num_rem]
        u[cur] += min_val
        for i2 in range(n):
            if sr[i2] and i2 != cur:
                u[i2] += min_val - shortest[col4row[i2]]
        for j2 in range(m):
            if sc[j2]:
                v[j2] -= min_val - shortest[j2]
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            tmp = col4row[i]
            col4row[i] = j
            j = tmp
            if i == cur:
                break
    return col4row


@njit(cache=True)
def assign(cost, miss_cost):
    """Optimal track-to-detection assignment with misses: returns det4track (K,), -1 = unassigned.

    For each connected component of the gated (finite-cost) bipartite graph, solves the k x (m + k)
    problem [cost | diag(miss_cost)] (off-diagonal of the miss block forbidden), so each track either takes
    one detection or pays ``miss_cost``; detections left over cost nothing. Components are independent, so
    the union of their optima is the global optimum over all tracks."""
    k, m = cost.shape
    out = np.full(k, -1, dtype=np.int64)
    comp_r = np.full(k, -1, dtype=np.int64)
    comp_c = np.full(m, -1, dtype=np.int64)
    stack = np.empty(k + m, dtype=np.int64)   # node ids: rows 0..k-1, cols k..k+m-1
    rows = np.empty(k, dtype=np.int64)
    cols = np.empty(m, dtype=np.int64)
    ncomp = 0
    for r0 in range(k):
        if comp_r[r0] >= 0:
            continue
        has = False
        for j in range(m):
            if cost[r0, j] < INF:
                has = True
                break
        if not has:
            continue
        # flood fill the component of row r0
        nr = 0
        nc = 0
        top = 0
        stack[top] = r0
        top += 1
        comp_r[r0] = ncomp
        while top > 0:
            top -= 1
            node = stack[top]
            if node < k:
                rows[nr] = node
                nr += 1
                for j in range(m):
                    if cost[node, j] < INF and comp_c[j] < 0:
                        comp_c[j] = ncomp
                        stack[top] = k + j
                        top += 1
            else:
                j = node - k
                cols[nc] = j
                nc += 1
                for r in range(k):
                    if cost[r, j] < INF and comp_r[r] < 0:
                        comp_r[r] = ncomp
                        stack[top] = r
                        top += 1
        ncomp += 1
        if nr == 1 and nc == 1:
            if cost[rows[0], cols[0]] < miss_cost:
                out[rows[0]] = cols[0]
            continue
        aug = np.full((nr, nc + nr), INF)
        for a in range(nr):
            for b in range(nc):
                aug[a, b] = cost[rows[a], cols[b]]
            aug[a, nc + a] = miss_cost
        col = lsap(aug)
        for a in range(nr):
            if col[a] >= 0 and col[a] < nc and aug[a, col[a]] < INF:
                out[rows[a]] = cols[col[a]]
    return out


# ============================ update / re-centre ============================

@njit(cache=True)
def update_one(x, p, basis, los, logsize, sig_ang, sig_logsize):
    """Kalman update of one track with one detection, Joseph form (keeps P symmetric PSD). In place.

    Returns False if the detection cannot be projected into the track's frame."""
    d = x.shape[0]
    nu = np.empty(3)
    s = np.empty((3, 3))
    si = np.empty((3, 3))
    if not innovation(x, p, basis, los, logsize, sig_ang, sig_logsize, nu, s):
        return False
    if inv3_sym(s, si) <= 0.0:
        return False
    # K = P H' S^-1, with P H' = P[:, :3]
    kg = np.zeros((d, 3))
    for r in range(d):
        for c in range(3):
            acc = 0.0
            for k in range(3):
                acc += p[r, k] * si[k, c]
            kg[r, c] = acc
    for r in range(d):
        x[r] += kg[r, 0] * nu[0] + kg[r, 1] * nu[1] + kg[r, 2] * nu[2]
    # Joseph: P = (I - K H) P (I - K H)' + K R K'
    a = np.zeros((d, d))
    for r in range(d):
        a[r, r] = 1.0
        for c in range(3):
            a[r, c] -= kg[r, c]
    ap = np.zeros((d, d))
    for r in range(d):
        for c in range(d):
            acc = 0.0
            for k in range(d):
                acc += a[r, k] * p[k, c]
            ap[r, c] = acc
    rdiag = np.array([sig_ang * sig_ang, sig_ang * sig_ang, sig_logsize * sig_logsize])
    for r in range(d):
        for c in range(r, d):
            acc = 0.0
            for k in range(d):
                acc += ap[r, k] * a[c, k]
            for k in range(3):
                acc += kg[r, k] * rdiag[k] * kg[c, k]
            p[r, c] = acc
            p[c, r] = acc
    return True


@njit(cache=True)
def recentre(x, p, basis, order):
    """Move the tangent frame of one track to its current LOS estimate so that a = b = 0. In place.

    New r0' = normalise(r0 + a e1 + b e2); e1', e2' = the old e1, e2 turned by the smallest rotation taking
    r0 to r0'. Derivatives map by the Jacobian J of the coordinate change at the point,
    J = [[e1.e1', e2.e1'], [e1.e2', e2.e2']] / |r0 + a e1 + b e2|, and P -> T P T' (T = J on every
    (a, b) derivative pair, 1 on the size entries)."""
    a0, b0 = x[0], x[1]
    if a0 == 0.0 and b0 == 0.0:
        return
    r0x, r0y, r0z = basis[0, 0], basis[0, 1], basis[0, 2]
    e1x, e1y, e1z = basis[1, 0], basis[1, 1], basis[1, 2]
    e2x, e2y, e2z = basis[2, 0], basis[2, 1], basis[2, 2]
    wx = r0x + a0 * e1x + b0 * e2x
    wy = r0y + a0 * e1y + b0 * e2y
    wz = r0z + a0 * e1z + b0 * e2z
    nw = math.sqrt(wx * wx + wy * wy + wz * wz)
    r1x, r1y, r1z = wx / nw, wy / nw, wz / nw
    # Rodrigues rotation about k = (r0 x r1)/|.| by the angle between them, applied to e1
    kx = r0y * r1z - r0z * r1y
    ky = r0z * r1x - r0x * r1z
    kz = r0x * r1y - r0y * r1x
    sn = math.sqrt(kx * kx + ky * ky + kz * kz)
    if sn < 1e-15:
        return
    cs = r0x * r1x + r0y * r1y + r0z * r1z
    kx, ky, kz = kx / sn, ky / sn, kz / sn
    kd1 = kx * e1x + ky * e1y + kz * e1z
    f1x = e1x * cs + (ky * e1z - kz * e1y) * sn + kx * kd1 * (1 - cs)
    f1y = e1y * cs + (kz * e1x - kx * e1z) * sn + ky * kd1 * (1 - cs)
    f1z = e1z * cs + (kx * e1y - ky * e1x) * sn + kz * kd1 * (1 - cs)
    # re-orthonormalise against rounding: f1 _|_ r1, f2 = r1 x f1
    d1 = f1x * r1x + f1y * r1y + f1z * r1z
    f1x, f1y, f1z = f1x - d1 * r1x, f1y - d1 * r1y, f1z - d1 * r1z
    n1 = math.sqrt(f1x * f1x + f1y * f1y + f1z * f1z)
    f1x, f1y, f1z = f1x / n1, f1y / n1, f1z / n1
    f2x = r1y * f1z - r1z * f1y
    f2y = r1z * f1x - r1x * f1z
    f2z = r1x * f1y - r1y * f1x
    j00 = (e1x * f1x + e1y * f1y + e1z * f1z) / nw
    j01 = (e2x * f1x + e2y * f1y + e2z * f1z) / nw
    j10 = (e1x * f2x + e1y * f2y + e1z * f2z) / nw
    j11 = (e2x * f2x + e2y * f2y + e2z * f2z) / nw
    d = x.shape[0]
    x[0] = 0.0
    x[1] = 0.0
    for blk in range(1, order):
        o = 3 * blk
        u0, u1 = x[o], x[o + 1]
        x[o] = j00 * u0 + j01 * u1
        x[o + 1] = j10 * u0 + j11 * u1
    # P <- T P T': rows then columns, pairwise
    for blk in range(order):
        o = 3 * blk
        for c in range(d):
            u0, u1 = p[o, c], p[o + 1, c]
            p[o, c] = j00 * u0 + j01 * u1
            p[o + 1, c] = j10 * u0 + j11 * u1
    for blk in range(order):
        o = 3 * blk
        for r in range(d):
            u0, u1 = p[r, o], p[r, o + 1]
            p[r, o] = j00 * u0 + j01 * u1
            p[r, o + 1] = j10 * u0 + j11 * u1
    for r in range(d):
        for c in range(r + 1, d):
            v = 0.5 * (p[r, c] + p[c, r])
            p[r, c] = v
            p[c, r] = v
    basis[0, 0], basis[0, 1], basis[0, 2] = r1x, r1y, r1z
    basis[1, 0], basis[1, 1], basis[1, 2] = f1x, f1y, f1z
    basis[2, 0], basis[2, 1], basis[2, 2] = f2x, f2y, f2z


@njit(cache=True)
def tangent_basis(los, basis_out):
    """A right-handed frame [r0, e1, e2] with r0 = los, e1 horizontal (east-ish) unless looking vertically."""
    r0 = los / math.sqrt(los[0] * los[0] + los[1] * los[1] + los[2] * los[2])
    # e1 = normalise(down x r0) (horizontal); fall back to north x r0 near the zenith/nadir
    e1 = np.array([-r0[1], r0[0], 0.0])
    n1 = math.sqrt(e1[0] * e1[0] + e1[1] * e1[1])
    if n1 < 1e-6:
        e1 = np.array([0.0, -r0[2], r0[1]])
        n1 = math.sqrt(e1[1] * e1[1] + e1[2] * e1[2])
    e1 = e1 / n1
    e2 = np.array([r0[1] * e1[2] - r0[2] * e1[1], r0[2] * e1[0] - r0[0] * e1[2], r0[0] * e1[1] - r0[1] * e1[0]])
    basis_out[0, :] = r0
    basis_out[1, :] = e1
    basis_out[2, :] = e2


@njit(cache=True)
def initiate(x, p, basis, los, logsize, sig_ang, cfg):
    """Start one track at a detection: frame centred on its LOS, zero rates, diagonal covariance."""
    tangent_basis(los, basis)
    d = x.shape[0]
    for r in range(d):
        x[r] = 0.0
        for c in range(d):
            p[r, c] = 0.0
    x[2] = logsize
    p[0, 0] = sig_ang * sig_ang
    p[1, 1] = sig_ang * sig_ang
    p[2, 2] = cfg[C_SIGMA_LOGSIZE] ** 2
    p[3, 3] = cfg[C_INIT_RATE_STD] ** 2
    p[4, 4] = cfg[C_INIT_RATE_STD] ** 2
    p[5, 5] = cfg[C_INIT_LOGRATE_STD] ** 2
    if d == 9:
        p[6, 6] = cfg[C_INIT_ACC_STD] ** 2
        p[7, 7] = cfg[C_INIT_ACC_STD] ** 2
        p[8, 8] = (0.5 * cfg[C_INIT_LOGRATE_STD]) ** 2


# ============================ the fused step ============================

@njit(cache=True)
def class_estimate(fst_row, current, sticky, switch_ratio):
    """The class a track reports, from its (exponentially forgotten, score-weighted) votes
    ``fst_row[F_VOTES:]``: the argmax while the track is tentative (``sticky`` False); once confirmed it
    keeps ``current`` unless another class's votes exceed ``switch_ratio`` x those of ``current``, so one
    detection (or a short run of them) of another class never re-labels an established track, while
    evidence that dominates over the vote memory does (e.g. a drone track that turns out to be a bird)."""
    best = 0
    for c in range(1, MAX_CLASSES):
        if fst_row[F_VOTES + c] > fst_row[F_VOTES + best]:
            best = c
    if not sticky or best == current:
        return best
    if fst_row[F_VOTES + best] > switch_ratio * fst_row[F_VOTES + current]:
        return best
    return current


# integer per-track fields ``ist`` (N, 6) and float per-track fields ``fst`` (N, 5 + MAX_CLASSES)
I_STATUS, I_ID, I_HITS, I_MISSES, I_DET, I_CLASS = 0, 1, 2, 3, 4, 5   # class: the track's reported class
N_IST = 6
F_T_FIRST, F_T_LAST_HIT, F_T_STATE, F_SCORE, F_ASPECT, F_VOTES = 0, 1, 2, 3, 4, 5   # votes: MAX_CLASSES
N_FST = 5 + MAX_CLASSES
# exported rows: out_f (N, 23) and out_i (N, 6)
O_LOS, O_RATE, O_COV, O_SIZE, O_BOX, O_AGE, O_SCORE, O_GROWTH = 0, 3, 6, 15, 16, 20, 21, 22
N_OUT_F = 23
OI_ID, OI_STATUS, OI_HITS, OI_MISSES, OI_CLASS, OI_SLOT = 0, 1, 2, 3, 4, 5
N_OUT_I = 6


@njit(cache=True)
def step(
    # track state (capacity N), mutated in place
    x, p, basis, ist, fst,
    # this frame
    xyxy, det_score, det_class, n_classes, q_body_to_ned, const, t_s,
    # in/out
    info, out_f, out_i,
):
    """One tracker cycle: measure -> predict -> gate -> assign -> update -> lifecycle -> re-centre ->
    initiate -> export.

    ``info[0]`` is the next free track id (read and advanced); ``info[1]`` gets the number of new tracks
    not started because every slot was taken. ``ist[:, I_DET]`` gets the detection index used by each slot
    this frame (-1 none). ``const`` = [cfg (N_CFG), intr (9), r_body_cam (3x3 row-major)] (see
    :func:`pack_const`). Returns the number of live tracks written to ``out_f``/``out_i`` (see
    :func:`export`), or a negative error code, in which case nothing was changed: -1 non-finite box,
    -2 inverted box, -3 class id outside [0, n_classes), -5 non-finite or zero quaternion."""
    n_cap = x.shape[0]
    cfg = const[:N_CFG]
    intr = const[N_CFG:N_CFG + N_INTR]
    r_body_cam = const[N_CFG + N_INTR:N_CFG + N_INTR + 9].reshape(3, 3)
    order = int(cfg[C_ORDER])
    m_all = xyxy.shape[0]
    for j in range(m_all):
        if det_class[j] < 0 or det_class[j] >= min(n_classes, MAX_CLASSES):
            return -3
    qn = q_body_to_ned[0] ** 2 + q_body_to_ned[1] ** 2 + q_body_to_ned[2] ** 2 + q_body_to_ned[3] ** 2
    if not (math.isfinite(qn) and qn > 1e-12):
        return -5
    # 1. measurements in NED
    r_ned_cam = matmul3(quat_to_rotmat(q_body_to_ned), r_body_cam)
    los = np.empty((m_all, 3))
    logsize = np.empty(m_all)
    sig_ang = np.empty(m_all)
    rc = detections_to_measurements(xyxy, intr, r_ned_cam, cfg[C_SIGMA_PX], cfg[C_SIGMA_FRAC], los, logsize,
                                    sig_ang)
    if rc < 0:
        return rc
    keep = np.empty(m_all, dtype=np.int64)
    m = 0
    for j in range(m_all):
        if det_score[j] >= cfg[C_MIN_SCORE] and math.isfinite(logsize[j]) and math.isfinite(los[j, 0]):
            keep[m] = j
            m += 1
    # 2. predict every live track to t_s
    live = np.empty(n_cap, dtype=np.int64)
    k = 0
    for i in range(n_cap):
        if ist[i, I_STATUS] != FREE:
            live[k] = i
            k += 1
    live = live[:k]
    dts = np.empty(k)
    tau = cfg[C_CLASS_TAU_S]
    for r in range(k):
        dts[r] = t_s - fst[live[r], F_T_STATE]
        fst[live[r], F_T_STATE] = t_s
        if tau > 0.0 and dts[r] > 0.0:
            fade = math.exp(-dts[r] / tau)
            for c in range(MAX_CLASSES):
                fst[live[r], F_VOTES + c] *= fade
    predict_batch(x, p, live, dts, order, cfg[C_Q_ANG], cfg[C_Q_LOGSIZE])
    # 3. gate
    cost = np.empty((k, m))
    los_k = np.empty((m, 3))
    ls_k = np.empty(m)
    sa_k = np.empty(m)
    for jj in range(m):
        los_k[jj] = los[keep[jj]]
        ls_k[jj] = logsize[keep[jj]]
        sa_k[jj] = sig_ang[keep[jj]]
    # likelihood term for established tracks only: a tentative track's spread comes from its unknown
    # initial rate, not from coasting, and it already pays C_TENT_PENALTY
    w_rows = np.empty(k)
    for r in range(k):
        w_rows[r] = 0.0 if ist[live[r], I_STATUS] == TENTATIVE else cfg[C_W_LOGDET]
    gate_cost(x, p, basis, live, los_k, ls_k, sa_k, cfg[C_SIGMA_LOGSIZE], cfg[C_GATE_D2], w_rows, cost)
    # a detection inside the gate of an established track never starts a new one (no duplicates from
    # clutter on the target); tentative tracks pay a penalty so established ones win close calls
    used = np.zeros(m, dtype=np.bool_)
    for r in range(k):
        tentative = ist[live[r], I_STATUS] == TENTATIVE
        for jj in range(m):
            if cost[r, jj] < INF:
                if tentative:
                    cost[r, jj] += cfg[C_TENT_PENALTY]
                else:
                    used[jj] = True
    # 4. associate (globally optimal)
    a4t = assign(cost, cfg[C_MISS_COST])
    ist[:, I_DET] = -1
    # 5. update + lifecycle of existing tracks
    alpha = cfg[C_SCORE_ALPHA]
    beta = cfg[C_ASPECT_ALPHA]
    for r in range(k):
        i = live[r]
        jj = a4t[r]
        if jj >= 0:
            j = keep[jj]
            used[jj] = True
            update_one(x[i], p[i], basis[i], los[j], logsize[j], sig_ang[j], cfg[C_SIGMA_LOGSIZE])
            ist[i, I_DET] = j
            ist[i, I_HITS] += 1
            ist[i, I_MISSES] = 0
            fst[i, F_T_LAST_HIT] = t_s
            fst[i, F_SCORE] = (1 - alpha) * fst[i, F_SCORE] + alpha * det_score[j]
            fst[i, F_VOTES + det_class[j]] += det_score[j]
            ist[i, I_CLASS] = class_estimate(fst[i], ist[i, I_CLASS], ist[i, I_STATUS] != TENTATIVE,
                                             cfg[C_CLASS_SWITCH])
            ar = math.log((xyxy[j, 2] - xyxy[j, 0]) / (xyxy[j, 3] - xyxy[j, 1]))
            fst[i, F_ASPECT] = (1 - beta) * fst[i, F_ASPECT] + beta * ar
            st = ist[i, I_STATUS]
            if (st == TENTATIVE and ist[i, I_HITS] >= cfg[C_CONFIRM_HITS]) or st == COASTING:
                ist[i, I_STATUS] = CONFIRMED
        else:
            ist[i, I_MISSES] += 1
            fst[i, F_SCORE] = (1 - alpha) * fst[i, F_SCORE]
            if ist[i, I_STATUS] == TENTATIVE:
                if ist[i, I_MISSES] >= cfg[C_MAX_TENT_MISSES]:
                    ist[i, I_STATUS] = FREE
            else:
                ist[i, I_STATUS] = COASTING
                if t_s - fst[i, F_T_LAST_HIT] > cfg[C_MAX_COAST_S]:
                    ist[i, I_STATUS] = FREE
        if ist[i, I_STATUS] != FREE and max(p[i, 0, 0], p[i, 1, 1]) > cfg[C_MAX_POS_STD] ** 2:
            ist[i, I_STATUS] = FREE
        if ist[i, I_STATUS] != FREE:
            recentre(x[i], p[i], basis[i], order)
    # 5b. a coasting track that sits on a confirmed track updated this frame is a duplicate of that object
    # (both were alive when the detections came back and the other won the assignment): delete it, so that
    # users following its id (the engagement) re-associate to the live one instead of homing on a prediction.
    # Only a live track of comparable angular size is the same object: a small target that misses a detection
    # next to a big box (ground clutter, 10x its size) is another object and coasts on
    if cfg[C_DROP_DUP_COAST] > 0.0:
        ln_ratio = math.log(max(cfg[C_DUP_SIZE_RATIO], 1.0))
        for r in range(k):
            i = live[r]
            if ist[i, I_STATUS] != COASTING:
                continue
            var_i = max(p[i, 0, 0], p[i, 1, 1])
            for r2 in range(k):
                j = live[r2]
                if j == i or ist[j, I_STATUS] != CONFIRMED or ist[j, I_DET] < 0:
                    continue
                if abs(x[j, 2] - x[i, 2]) > ln_ratio:
                    continue
                c = basis[i, 0, 0] * basis[j, 0, 0] + basis[i, 0, 1] * basis[j, 0, 1] + basis[i, 0, 2] * basis[j, 0, 2]
                ang = math.acos(min(1.0, max(-1.0, c)))
                # within the object's own angular extent, or inside the coasting track's 3-sigma position gate
                if ang < max(math.exp(x[j, 2]), 3.0 * math.sqrt(var_i + max(p[j, 0, 0], p[j, 1, 1]))):
                    ist[i, I_STATUS] = FREE
                    break
    # 6. initiate tracks from unused, confident detections
    info[1] = 0
    slot = 0
    for jj in range(m):
        if used[jj]:
            continue
        j = keep[jj]
        if det_score[j] < cfg[C_INIT_SCORE]:
            continue
        while slot < n_cap and ist[slot, I_STATUS] != FREE:
            slot += 1
        if slot >= n_cap:
            info[1] += 1
            continue
        i = slot
        initiate(x[i], p[i], basis[i], los[j], logsize[j], sig_ang[j], cfg)
        ist[i, I_STATUS] = CONFIRMED if cfg[C_CONFIRM_HITS] <= 1 else TENTATIVE
        ist[i, I_ID] = info[0]
        info[0] += 1
        ist[i, I_HITS] = 1
        ist[i, I_MISSES] = 0
        fst[i, F_T_FIRST] = t_s
        fst[i, F_T_LAST_HIT] = t_s
        fst[i, F_T_STATE] = t_s
        fst[i, F_SCORE] = det_score[j]
        fst[i, F_VOTES:F_VOTES + MAX_CLASSES] = 0.0
        fst[i, F_VOTES + det_class[j]] = det_score[j]
        ist[i, I_CLASS] = det_class[j]
        fst[i, F_ASPECT] = math.log((xyxy[j, 2] - xyxy[j, 0]) / (xyxy[j, 3] - xyxy[j, 1]))
        ist[i, I_DET] = j
    # 7. export
    return export(x, p, basis, ist, fst, r_ned_cam, intr, t_s, out_f, out_i)


# ============================ outputs ============================

@njit(cache=True)
def export(x, p, basis, ist, fst, r_ned_cam, intr, t_s, out_f, out_i):
    """Write one row per live track (slot order) and return how many.

    out_f: LOS NED (3), LOS rate NED rad/s (3), LOS covariance (3x3 row-major, rad^2), angular size rad,
    box xyxy px (4; the LOS projected with the angular size as diagonal and the tracked aspect ratio, NaN
    when behind the camera), age s, score, d ln(size)/dt 1/s. out_i: id, status, hits, misses, class, slot."""
    n = 0
    b = np.empty(3)
    c1 = np.empty(3)
    c2 = np.empty(3)
    uv = np.empty(2)
    for i in range(x.shape[0]):
        if ist[i, I_STATUS] == FREE:
            continue
        r0, e1, e2 = basis[i, 0], basis[i, 1], basis[i, 2]
        # LOS = normalise(r0 + a e1 + b e2): a = b = 0 after re-centring, kept general for predictions
        w0 = r0[0] + x[i, 0] * e1[0] + x[i, 1] * e2[0]
        w1 = r0[1] + x[i, 0] * e1[1] + x[i, 1] * e2[1]
        w2 = r0[2] + x[i, 0] * e1[2] + x[i, 1] * e2[2]
        nw = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
        lx, ly, lz = w0 / nw, w1 / nw, w2 / nw
        o = out_f[n]
        o[O_LOS], o[O_LOS + 1], o[O_LOS + 2] = lx, ly, lz
        for c in range(3):
            o[O_RATE + c] = (x[i, 3] * e1[c] + x[i, 4] * e2[c]) / nw
        for r in range(3):
            for c in range(3):
                o[O_COV + 3 * r + c] = (e1[r] * (p[i, 0, 0] * e1[c] + p[i, 0, 1] * e2[c])
                                        + e2[r] * (p[i, 1, 0] * e1[c] + p[i, 1, 1] * e2[c])) / (nw * nw)
        size = math.exp(x[i, 2])
        o[O_SIZE] = size
        for c in range(3):
            b[c] = r_ned_cam[0, c] * lx + r_ned_cam[1, c] * ly + r_ned_cam[2, c] * lz
        if bearing_cam_to_pixel(b, intr, uv):
            ar = math.exp(fst[i, F_ASPECT])
            # local radians per pixel of box diagonal at this image point (exact inverse of the
            # corner-angle size measurement for a small box, distortion included)
            h10 = 10.0 / math.sqrt(1.0 + ar * ar)
            w10 = ar * h10
            pixel_to_bearing_cam(uv[0] - 0.5 * w10, uv[1] - 0.5 * h10, intr, c1)
            pixel_to_bearing_cam(uv[0] + 0.5 * w10, uv[1] + 0.5 * h10, intr, c2)
            cx = c1[1] * c2[2] - c1[2] * c2[1]
            cy = c1[2] * c2[0] - c1[0] * c2[2]
            cz = c1[0] * c2[1] - c1[1] * c2[0]
            rad_per_px = math.atan2(math.sqrt(cx * cx + cy * cy + cz * cz),
                                    c1[0] * c2[0] + c1[1] * c2[1] + c1[2] * c2[2]) / 10.0
            diag = size / max(rad_per_px, 1e-12)
            hgt = diag / math.sqrt(1.0 + ar * ar)
            wid = ar * hgt
            o[O_BOX] = uv[0] - 0.5 * wid
            o[O_BOX + 1] = uv[1] - 0.5 * hgt
            o[O_BOX + 2] = uv[0] + 0.5 * wid
            o[O_BOX + 3] = uv[1] + 0.5 * hgt
        else:
            for c in range(4):
                o[O_BOX + c] = np.nan
        o[O_AGE] = t_s - fst[i, F_T_FIRST]
        o[O_SCORE] = fst[i, F_SCORE]
        o[O_GROWTH] = x[i, 5]
        oi = out_i[n]
        oi[OI_ID] = ist[i, I_ID]
        oi[OI_STATUS] = ist[i, I_STATUS]
        oi[OI_HITS] = ist[i, I_HITS]
        oi[OI_MISSES] = ist[i, I_MISSES]
        oi[OI_CLASS] = ist[i, I_CLASS]
        oi[OI_SLOT] = i
        n += 1
    return n


@njit(cache=True)
def predict_export(x, p, basis, ist, fst, slot, q_body_to_ned, const, t_s, out_f, out_i):
    """Export one slot predicted to t_s without changing the state (for ROI prediction)."""
    xs = x[slot:slot + 1].copy()
    ps = p[slot:slot + 1].copy()
    dt = np.array([max(0.0, t_s - fst[slot, F_T_STATE])])
    cfg = const[:N_CFG]
    intr = const[N_CFG:N_CFG + N_INTR]
    r_body_cam = const[N_CFG + N_INTR:N_CFG + N_INTR + 9].reshape(3, 3)
    predict_batch(xs, ps, np.zeros(1, dtype=np.int64), dt, int(cfg[C_ORDER]), cfg[C_Q_ANG], cfg[C_Q_LOGSIZE])
    r_ned_cam = matmul3(quat_to_rotmat(q_body_to_ned), r_body_cam)
    return export(xs, ps, basis[slot:slot + 1], ist[slot:slot + 1], fst[slot:slot + 1], r_ned_cam, intr, t_s,
                  out_f, out_i)


def pack_const(cfg, intr, r_body_cam):
    """The ``const`` vector of :func:`step`: cfg (N_CFG), intrinsics (9), r_body_cam row-major (9)."""
    return np.ascontiguousarray(np.concatenate([cfg, intr, np.asarray(r_body_cam, dtype=np.float64).ravel()]))
