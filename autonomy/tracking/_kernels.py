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
N_CFG = 19

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

    Undistortion by the same 8 fixed-point iterations as :func:`autonomy.camera.model._undistort_normalized`.
    """
    xd = (u - intr[2]) / intr[0]
    yd = (v - intr[3]) / intr[1]
    k1, k2, p1, p2, k3 = intr[4], intr[5], intr[6], intr[7], intr[8]
    x, y = xd, yd
    if k1 != 0.0 or k2 != 0.0 or p1 != 0.0 or p2 != 0.0 or k3 != 0.0:
        for _ in range(8):
            r2 = x * x + y * y
            radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
            ex = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x) - xd
            ey = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y - yd
            x -= ex
            y -= ey
    n = math.sqrt(x * x + y * y + 1.0)
    out[0] = x / n
    out[1] = y / n
    out[2] = 1.0 / n


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
    distortion is accounted for. Returns 0, or -1 for a non-finite box, -2 for an inverted/empty box.
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
        logsize_out[j] = math.log(max(ang, 1e-9))
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
def predict_batch(x, p, idx, dt, order, q_ang, q_logsize):
    """Predict tracks ``idx`` (K,) int64 by ``dt`` (K,) seconds each, in place on x (N, d), P (N, d, d)."""
    d = x.shape[1]
    f = np.empty((d, d))
    q = np.empty((d, d))
    for k in range(idx.shape[0]):
        i = idx[k]
        if dt[k] == 0.0:
            continue
        transition(dt[k], order, q_ang, q_logsize, f, q)
        predict_one(x[i], p[i], f, q)


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
    z = np.empty(2)
    if not project_to_plane(basis, los, z):
        return False
    nu_out[0] = z[0] - x[0]
    nu_out[1] = z[1] - x[1]
    nu_out[2] = logsize - x[2]
    for r in range(3):
        for c in range(3):
            s_out[r, c] = p[r, c]
    s_out[0, 0] += sig_ang * sig_ang
    s_out[1, 1] += sig_ang * sig_ang
    s_out[2, 2] += sig_logsize * sig_logsize
    return True


@njit(cache=True)
def gate_cost(x, p, basis, idx, det_los, det_logsize, det_sig_ang, sig_logsize, gate_d2, cost_out):
    """Squared Mahalanobis distance of every (track idx[r], detection j) pair, INF outside the gate.

    cost_out (K, M). This is the association cost (the miss option is priced at the gate, see assign)."""
    nu = np.empty(3)
    s = np.empty((3, 3))
    si = np.empty((3, 3))
    for r in range(idx.shape[0]):
        i = idx[r]
        for j in range(det_los.shape[0]):
            cost_out[r, j] = INF
            if not innovation(x[i], p[i], basis[i], det_los[j], det_logsize[j], det_sig_ang[j], sig_logsize,
                              nu, s):
                continue
            if inv3_sym(s, si) <= 0.0:
                continue
            d2 = 0.0
            for a in range(3):
                for b in range(3):
                    d2 += nu[a] * si[a, b] * nu[b]
            if d2 <= gate_d2:
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

    Solves the K x (M + K) problem [cost | diag(miss_cost)] (off-diagonal of the miss block forbidden),
    so each track either takes one detection (cost < INF) or pays ``miss_cost``; detections left over
    cost nothing. The optimum is global over all tracks."""
    k, m = cost.shape
    aug = np.full((k, m + k), INF)
    for r in range(k):
        for j in range(m):
            aug[r, j] = cost[r, j]
        aug[r, m + r] = miss_cost
    col = lsap(aug)
    out = np.full(k, -1, dtype=np.int64)
    for r in range(k):
        if col[r] >= 0 and col[r] < m and cost[r, col[r]] < INF:
            out[r] = col[r]
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
    J = [[e1.e1', e2.e1'], [e1.e2', e2.e2']] / |r0 + a e1 + b e2|, and P -> T P T'."""
    a0, b0 = x[0], x[1]
    if a0 == 0.0 and b0 == 0.0:
        return
    r0 = basis[0].copy()
    e1 = basis[1].copy()
    e2 = basis[2].copy()
    w = r0 + a0 * e1 + b0 * e2
    nw = math.sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2])
    r1 = w / nw
    # Rodrigues rotation taking r0 to r1
    ax = np.array([r0[1] * r1[2] - r0[2] * r1[1], r0[2] * r1[0] - r0[0] * r1[2], r0[0] * r1[1] - r0[1] * r1[0]])
    sn = math.sqrt(ax[0] * ax[0] + ax[1] * ax[1] + ax[2] * ax[2])
    cs = r0[0] * r1[0] + r0[1] * r1[1] + r0[2] * r1[2]
    if sn < 1e-15:
        return
    k = ax / sn
    f1 = np.empty(3)
    f2 = np.empty(3)
    kd1 = k[0] * e1[0] + k[1] * e1[1] + k[2] * e1[2]
    kd2 = k[0] * e2[0] + k[1] * e2[1] + k[2] * e2[2]
    kx1 = np.array([k[1] * e1[2] - k[2] * e1[1], k[2] * e1[0] - k[0] * e1[2], k[0] * e1[1] - k[1] * e1[0]])
    kx2 = np.array([k[1] * e2[2] - k[2] * e2[1], k[2] * e2[0] - k[0] * e2[2], k[0] * e2[1] - k[1] * e2[0]])
    for c in range(3):
        f1[c] = e1[c] * cs + kx1[c] * sn + k[c] * kd1 * (1 - cs)
        f2[c] = e2[c] * cs + kx2[c] * sn + k[c] * kd2 * (1 - cs)
    # re-orthonormalise (Gram-Schmidt against r1) against rounding
    d1 = f1[0] * r1[0] + f1[1] * r1[1] + f1[2] * r1[2]
    f1 = f1 - d1 * r1
    f1 = f1 / math.sqrt(f1[0] * f1[0] + f1[1] * f1[1] + f1[2] * f1[2])
    f2 = np.array([r1[1] * f1[2] - r1[2] * f1[1], r1[2] * f1[0] - r1[0] * f1[2], r1[0] * f1[1] - r1[1] * f1[0]])
    j00 = (e1[0] * f1[0] + e1[1] * f1[1] + e1[2] * f1[2]) / nw
    j01 = (e2[0] * f1[0] + e2[1] * f1[1] + e2[2] * f1[2]) / nw
    j10 = (e1[0] * f2[0] + e1[1] * f2[1] + e1[2] * f2[2]) / nw
    j11 = (e2[0] * f2[0] + e2[1] * f2[1] + e2[2] * f2[2]) / nw
    d = x.shape[0]
    t = np.zeros((d, d))
    for blk in range(order):
        o = 3 * blk
        t[o, o] = j00
        t[o, o + 1] = j01
        t[o + 1, o] = j10
        t[o + 1, o + 1] = j11
        t[o + 2, o + 2] = 1.0
    xn = np.zeros(d)
    for r in range(d):
        acc = 0.0
        for c in range(d):
            acc += t[r, c] * x[c]
        xn[r] = acc
    xn[0] = 0.0
    xn[1] = 0.0
    tp = np.zeros((d, d))
    for r in range(d):
        for c in range(d):
            acc = 0.0
            for kk in range(d):
                acc += t[r, kk] * p[kk, c]
            tp[r, c] = acc
    for r in range(d):
        x[r] = xn[r]
        for c in range(r, d):
            acc = 0.0
            for kk in range(d):
                acc += tp[r, kk] * t[c, kk]
            p[r, c] = acc
            p[c, r] = acc
    basis[0, :] = r1
    basis[1, :] = f1
    basis[2, :] = f2


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
def step(
    # track state (capacity N), mutated in place
    x, p, basis, status, track_id, hits, misses, t_first, t_last_hit, t_state, score, class_votes, aspect,
    box_last,
    # this frame
    xyxy, det_score, det_class, n_classes, q_body_to_ned, r_body_cam, intr, cfg, t_s, next_id,
    # outputs
    det4slot, dropped_out,
):
    """One tracker cycle: measure -> predict -> gate -> assign -> update -> initiate -> lifecycle -> re-centre.

    Returns the next free track id (>= next_id), or a negative error code (nothing changed then):
    -1 non-finite box, -2 inverted box, -3 class id outside [0, n_classes). ``det4slot`` (N,) gets the detection
    index used by each slot this frame (-1 none); ``dropped_out[0]`` the number of new tracks not started
    because every slot was taken."""
    n_cap = x.shape[0]
    order = int(cfg[C_ORDER])
    m_all = xyxy.shape[0]
    for j in range(m_all):
        if det_class[j] < 0 or det_class[j] >= min(n_classes, MAX_CLASSES):
            return -3
    # 1. measurements in NED
    r_nb = quat_to_rotmat(q_body_to_ned)
    r_ned_cam = matmul3(r_nb, r_body_cam)
    los = np.empty((m_all, 3))
    logsize = np.empty(m_all)
    sig_ang = np.empty(m_all)
    rc = detections_to_measurements(xyxy, intr, r_ned_cam, cfg[C_SIGMA_PX], cfg[C_SIGMA_FRAC], los, logsize,
                                    sig_ang)
    if rc < 0:
        return rc
    # usable detections
    keep = np.empty(m_all, dtype=np.int64)
    m = 0
    for j in range(m_all):
        if det_score[j] >= cfg[C_MIN_SCORE]:
            keep[m] = j
            m += 1
    # 2. predict every live track to t_s
    live = np.empty(n_cap, dtype=np.int64)
    k = 0
    for i in range(n_cap):
        if status[i] != FREE:
            live[k] = i
            k += 1
    live = live[:k]
    dts = np.empty(k)
    for r in range(k):
        dts[r] = t_s - t_state[live[r]]
        t_state[live[r]] = t_s
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
    gate_cost(x, p, basis, live, los_k, ls_k, sa_k, cfg[C_SIGMA_LOGSIZE], cfg[C_GATE_D2], cost)
    # 4. assign (optimal)
    a4t = assign(cost, cfg[C_MISS_COST])
    used = np.zeros(m, dtype=np.bool_)
    for i in range(n_cap):
        det4slot[i] = -1
    # 5. update / lifecycle of existing tracks
    alpha = cfg[C_SCORE_ALPHA]
    for r in range(k):
        i = live[r]
        jj = a4t[r]
        if jj >= 0:
            j = keep[jj]
            used[jj] = True
            update_one(x[i], p[i], basis[i], los[j], logsize[j], sig_ang[j], cfg[C_SIGMA_LOGSIZE])
            det4slot[i] = j
            hits[i] += 1
            misses[i] = 0
            t_last_hit[i] = t_s
            score[i] = (1 - alpha) * score[i] + alpha * det_score[j]
            class_votes[i, det_class[j]] += det_score[j]
            w = xyxy[j, 2] - xyxy[j, 0]
            h = xyxy[j, 3] - xyxy[j, 1]
            aspect[i] = (1 - cfg[C_ASPECT_ALPHA]) * aspect[i] + cfg[C_ASPECT_ALPHA] * math.log(w / h)
            for c in range(4):
                box_last[i, c] = xyxy[j, c]
            if status[i] == TENTATIVE and hits[i] >= cfg[C_CONFIRM_HITS]:
                status[i] = CONFIRMED
            elif status[i] == COASTING:
                status[i] = CONFIRMED
        else:
            misses[i] += 1
            score[i] = (1 - alpha) * score[i]
            if status[i] == TENTATIVE:
                if misses[i] >= cfg[C_MAX_TENT_MISSES]:
                    status[i] = FREE
            else:
                status[i] = COASTING
                if t_s - t_last_hit[i] > cfg[C_MAX_COAST_S]:
                    status[i] = FREE
        if status[i] != FREE:
            if max(p[i, 0, 0], p[i, 1, 1]) > cfg[C_MAX_POS_STD] ** 2:
                status[i] = FREE
        if status[i] != FREE:
            recentre(x[i], p[i], basis[i], order)
    # 6. initiate tracks from unused, confident detections
    dropped_out[0] = 0
    slot = 0
    for jj in range(m):
        if used[jj]:
            continue
        j = keep[jj]
        if det_score[j] < cfg[C_INIT_SCORE]:
            continue
        while slot < n_cap and status[slot] != FREE:
            slot += 1
        if slot >= n_cap:
            dropped_out[0] += 1
            continue
        i = slot
        initiate(x[i], p[i], basis[i], los[j], logsize[j], sig_ang[j], cfg)
        status[i] = CONFIRMED if cfg[C_CONFIRM_HITS] <= 1 else TENTATIVE
        track_id[i] = next_id
        next_id += 1
        hits[i] = 1
        misses[i] = 0
        t_first[i] = t_s
        t_last_hit[i] = t_s
        t_state[i] = t_s
        score[i] = det_score[j]
        class_votes[i, :] = 0.0
        class_votes[i, det_class[j]] = det_score[j]
        w = xyxy[j, 2] - xyxy[j, 0]
        h = xyxy[j, 3] - xyxy[j, 1]
        aspect[i] = math.log(w / h)
        for c in range(4):
            box_last[i, c] = xyxy[j, c]
        det4slot[i] = j
    return next_id


# ============================ outputs ============================

@njit(cache=True)
def export(x, p, basis, status, aspect, q_body_to_ned, r_body_cam, intr, los_out, rate_out, cov_out,
           size_out, box_out, slots_out):
    """Write the NED outputs of every live track; returns how many. Box = projection of the LOS with the
    angular size as diagonal and the tracked aspect ratio (NaN box if the LOS is behind the camera)."""
    r_nb = quat_to_rotmat(q_body_to_ned)
    r_ned_cam = matmul3(r_nb, r_body_cam)
    f_mean = 0.5 * (intr[0] + intr[1])
    n = 0
    b = np.empty(3)
    uv = np.empty(2)
    for i in range(x.shape[0]):
        if status[i] == FREE:
            continue
        slots_out[n] = i
        r0, e1, e2 = basis[i, 0], basis[i, 1], basis[i, 2]
        # LOS = normalise(r0 + a e1 + b e2): with a re-centred frame a = b = 0 but keep it general
        w0 = r0[0] + x[i, 0] * e1[0] + x[i, 1] * e2[0]
        w1 = r0[1] + x[i, 0] * e1[1] + x[i, 1] * e2[1]
        w2 = r0[2] + x[i, 0] * e1[2] + x[i, 1] * e2[2]
        nw = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
        los_out[n, 0] = w0 / nw
        los_out[n, 1] = w1 / nw
        los_out[n, 2] = w2 / nw
        for c in range(3):
            rate_out[n, c] = (x[i, 3] * e1[c] + x[i, 4] * e2[c]) / nw
        for r in range(3):
            for c in range(3):
                cov_out[n, r, c] = (e1[r] * (p[i, 0, 0] * e1[c] + p[i, 0, 1] * e2[c])
                                    + e2[r] * (p[i, 1, 0] * e1[c] + p[i, 1, 1] * e2[c])) / (nw * nw)
        size = math.exp(x[i, 2])
        size_out[n] = size
        for c in range(3):
            b[c] = r_ned_cam[0, c] * los_out[n, 0] + r_ned_cam[1, c] * los_out[n, 1] + r_ned_cam[2, c] * los_out[n, 2]
        if bearing_cam_to_pixel(b, intr, uv):
            diag = size * f_mean
            ar = math.exp(aspect[i])
            hgt = diag / math.sqrt(1.0 + ar * ar)
            wid = ar * hgt
            box_out[n, 0] = uv[0] - 0.5 * wid
            box_out[n, 1] = uv[1] - 0.5 * hgt
            box_out[n, 2] = uv[0] + 0.5 * wid
            box_out[n, 3] = uv[1] + 0.5 * hgt
        else:
            for c in range(4):
                box_out[n, c] = np.nan
        n += 1
    return n
