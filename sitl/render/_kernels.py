"""Per-pixel kernels of the synthetic camera: numba versions and their NumPy references.

``background_*``: for every ray (NED unit direction of a background sample) the colour of the procedural
world: sky gradient by elevation, a perspective cloud layer, sun glare, flat ground with field texture and
haze, a ring of hills and a ragged tree line. ``finish_*``: exposure x vignette, sensor noise, clipping,
to uint8 (gamma and the grey IR conversion follow with OpenCV).

Parameter vector ``p`` (float64) of the background kernels:
  0 sky_gradient_scale, 1 cloud_cover, 2 cloud height above camera (m), 3 cloud tile (m),
  4 visibility (m), 5 sun glare (0 = off), 6..8 unit vector to the sun (NED), 9 camera altitude (m),
  10 field tile (m), 11 field size (m), 12 sin(elevation of the hills' foot), 13 sin of the highest
  terrain elevation, 14 haze factor of the hills, 15 hill distance (m), 16 angular size of one
  background sample (rad; texture level of detail).
Elevations are compared through their sines (no asin per pixel); exponentials use a cheap rational
approximation (these are looks, not physics).
Colour table ``colors`` (8, 3) BGR float32: zenith, horizon, cloud, cloud shadow, ground, ground alt,
hill, tree. Textures are tileable float32 in [0, 1] sampled bilinearly with wrap-around.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

N_PARAMS = 17
SKY_DEPTH_M = 1e9


@njit(cache=True, fastmath=True, inline="always")
def _wrap_bilinear(tex, x, y):
    """Bilinear sample of a tileable power-of-two texture at texel coordinates (x, y)."""
    h, w = tex.shape
    xf = math.floor(x)
    yf = math.floor(y)
    fx = x - xf
    fy = y - yf
    x0 = int(xf) & (w - 1)
    y0 = int(yf) & (h - 1)
    x1 = (x0 + 1) & (w - 1)
    y1 = (y0 + 1) & (h - 1)
    top = tex[y0, x0] * (1.0 - fx) + tex[y0, x1] * fx
    bot = tex[y1, x0] * (1.0 - fx) + tex[y1, x1] * fx
    return top * (1.0 - fy) + bot * fy


@njit(cache=True, fastmath=True, inline="always")
def _smooth(e0, e1, x):
    t = (x - e0) / (e1 - e0)
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


@njit(cache=True, fastmath=True, inline="always")
def _fexp_neg(x):
    """exp(-x) for x >= 0 to a few per cent near 0, decaying as x^-4 (cheap; used for haze/glare looks)."""
    return 1.0 / (1.0 + x * (1.0 + x * (0.5 + x * (0.16666667 + x * 0.041666667))))


@njit(cache=True, fastmath=True)
def background_numba(rays, r, cam_pos, p, colors, cloud_tex, cloud_far, ground_tex, ground_far,
                     az_tables, tree_d, out, depth):
    """rays (3, N) float32 camera-frame unit rays; r (3, 3) NED-from-camera; ``az_tables`` (5, n_az):
    sin(tree top), sin(tree base), sin(hill top), tree shade, tree haze per azimuth bin; ``tree_d``
    (n_az,) tree-line distance (m). Writes ``out`` (N, 3) colours and ``depth`` (N,) the distance (m)
    along each ray to the terrain it shows (SKY_DEPTH_M for sky)."""
    n = rays.shape[1]
    n_az = az_tables.shape[1]
    gscale, cover, h_c, ctile, vis, glare_k = p[0], p[1], p[2], p[3], p[4], p[5]
    sx, sy, sz, alt, gtile, fsize, sin_hill_base, sin_terrain = p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13]
    hill_hz = p[14]
    hd = p[15]
    pix = p[16]
    ext = 3.0 / vis
    thr = 0.85 - 0.8 * cover
    ctn = cloud_tex.shape[0]
    gtn = ground_tex.shape[0]
    az_k = n_az / (2.0 * math.pi)
    for i in range(n):
        bx, by, bz = rays[0, i], rays[1, i], rays[2, i]
        dn = r[0, 0] * bx + r[0, 1] * by + r[0, 2] * bz
        de = r[1, 0] * bx + r[1, 1] * by + r[1, 2] * bz
        dd = r[2, 0] * bx + r[2, 1] * by + r[2, 2] * bz
        sin_el = -dd
        g = 1.0 - _fexp_neg(max(sin_el, 0.0) * gscale)
        c0 = colors[1, 0] + g * (colors[0, 0] - colors[1, 0])
        c1 = colors[1, 1] + g * (colors[0, 1] - colors[1, 1])
        c2 = colors[1, 2] + g * (colors[0, 2] - colors[1, 2])
        cloud_a = 0.0
        dep = SKY_DEPTH_M
        if cover > 0.0 and sin_el > 0.005:
            s = h_c / sin_el
            mx = (cam_pos[1] + de * s) / ctile
            my = (cam_pos[0] + dn * s) / ctile
            mx = (mx - math.floor(mx)) * ctn
            my = (my - math.floor(my)) * ctn
            # level of detail from the ray's footprint on the layer, in texels (no moire near the horizon)
            ft = s * pix / max(sin_el, 0.02) * (ctn / ctile)
            wf = min(max((ft - 1.0) / 6.0, 0.0), 1.0)
            fade = min(max((ft - 6.0) / 60.0, 0.0), 1.0)
            if fade >= 1.0:
                c = 0.5
            elif wf >= 1.0:
                c = _wrap_bilinear(cloud_far, mx, my)
            else:
                c = _wrap_bilinear(cloud_tex, mx, my) * (1.0 - wf) + _wrap_bilinear(cloud_far, mx, my) * wf
            c = c * (1.0 - fade) + 0.5 * fade
            cloud_a = _smooth(thr, thr + 0.25, c) * _fexp_neg(s / (3.0 * vis))
            dens = _smooth(thr + 0.1, thr + 0.6, c)
            k0 = colors[2, 0] * (1.0 - dens) + colors[3, 0] * dens
            k1 = colors[2, 1] * (1.0 - dens) + colors[3, 1] * dens
            k2 = colors[2, 2] * (1.0 - dens) + colors[3, 2] * dens
            c0 += cloud_a * (k0 - c0)
            c1 += cloud_a * (k1 - c1)
            c2 += cloud_a * (k2 - c2)
        ang2 = max(2.0 * (1.0 - (dn * sx + de * sy + dd * sz)), 0.0)
        if glare_k > 0.0 and ang2 < 1.5:  # beyond ~70 deg from the sun the halo is negligible
            gl = glare_k * (_fexp_neg(ang2 / 0.0009) + 0.35 * _fexp_neg(ang2 / 0.06)) * (1.0 - 0.8 * cloud_a)
            gl = min(gl, 1.0)
            c0 += gl * (255.0 - c0)
            c1 += gl * (255.0 - c1)
            c2 += gl * (255.0 - c2)
        if sin_el < sin_terrain:
            ia = int((math.atan2(de, dn) + math.pi) * az_k)
            ia = min(max(ia, 0), n_az - 1)
            if sin_el < 0.0:
                rng_m = min(alt / max(-sin_el, 1e-4), 1e6)
                gx = (cam_pos[1] + de * rng_m) / gtile
                gy = (cam_pos[0] + dn * rng_m) / gtile
                gx = (gx - math.floor(gx)) * gtn
                gy = (gy - math.floor(gy)) * gtn
                foot_m = rng_m * pix / max(-sin_el, 0.02)
                ft = foot_m * (gtn / gtile)
                wf = min(max((ft - 1.0) / 6.0, 0.0), 1.0)
                fade = min(max((ft - 6.0) / 60.0, 0.0), 1.0)
                dt = 1.0
                if fade >= 1.0:
                    f = 0.5
                elif wf >= 1.0:
                    f = _wrap_bilinear(ground_far, gx, gy)
                else:
                    f = _wrap_bilinear(ground_tex, gx, gy) * (1.0 - wf) + _wrap_bilinear(ground_far, gx, gy) * wf
                f = f * (1.0 - fade) + 0.5 * fade
                fd = foot_m * (ctn / (3.7 * fsize))
                if fd < 4.0:
                    # detail within the fields from the cloud texture (tile 3.7 fields, not a multiple)
                    dx = (cam_pos[1] + de * rng_m) / (3.7 * fsize)
                    dy = (cam_pos[0] + dn * rng_m) / (3.7 * fsize)
                    dt = 1.0 + (0.3 * _wrap_bilinear(cloud_tex, (dx - math.floor(dx)) * ctn,
                                                     (dy - math.floor(dy)) * ctn) - 0.15) * (1.0 - fd / 4.0)
                hz = 1.0 - _fexp_neg(rng_m * ext)
                g0 = (colors[4, 0] + f * (colors[5, 0] - colors[4, 0])) * dt
                g1 = (colors[4, 1] + f * (colors[5, 1] - colors[4, 1])) * dt
                g2 = (colors[4, 2] + f * (colors[5, 2] - colors[4, 2])) * dt
                dep = rng_m
                c0 = g0 + hz * (colors[1, 0] - g0)
                c1 = g1 + hz * (colors[1, 1] - g1)
                c2 = g2 + hz * (colors[1, 2] - g2)
            if sin_el < az_tables[2, ia] and sin_el >= sin_hill_base:
                dep = hd / math.sqrt(max(1.0 - sin_el * sin_el, 1e-6))
                c0 = colors[6, 0] + hill_hz * (colors[1, 0] - colors[6, 0])
                c1 = colors[6, 1] + hill_hz * (colors[1, 1] - colors[6, 1])
                c2 = colors[6, 2] + hill_hz * (colors[1, 2] - colors[6, 2])
            top = az_tables[0, ia]
            base = az_tables[1, ia]
            if sin_el < top and sin_el >= base:
                # darker at the foot of the trees, per-azimuth shade, then haze
                sh = az_tables[3, ia] * (0.7 + 0.3 * (sin_el - base) / (top - base))
                hz = az_tables[4, ia]
                dep = tree_d[ia] / math.sqrt(max(1.0 - sin_el * sin_el, 1e-6))
                c0 = colors[7, 0] * sh + hz * (colors[1, 0] - colors[7, 0] * sh)
                c1 = colors[7, 1] * sh + hz * (colors[1, 1] - colors[7, 1] * sh)
                c2 = colors[7, 2] * sh + hz * (colors[1, 2] - colors[7, 2] * sh)
        out[i, 0] = c0
        out[i, 1] = c1
        out[i, 2] = c2
        depth[i] = dep


def _wrap_bilinear_np(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = tex.shape
    xf, yf = np.floor(x), np.floor(y)
    fx, fy = x - xf, y - yf
    x0, y0 = xf.astype(np.int64) % w, yf.astype(np.int64) % h
    x1, y1 = (x0 + 1) % w, (y0 + 1) % h
    return (tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx) * (1 - fy) + (tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx) * fy


def _smooth_np(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _fexp_neg_np(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + x * (1.0 + x * (0.5 + x * (0.16666667 + x * 0.041666667))))


def background_numpy(rays, r, cam_pos, p, colors, cloud_tex, cloud_far, ground_tex, ground_far,
                     az_tables, tree_d, out, depth) -> None:
    """NumPy reference of :func:`background_numba` (same arguments, same result up to rounding)."""
    gscale, cover, h_c, ctile, vis, glare_k = p[:6]
    sun, alt, gtile, fsize, sin_hill_base, sin_terrain, hill_hz = p[6:9], p[9], p[10], p[11], p[12], p[13], p[14]
    col = colors.astype(np.float64)
    d = r @ rays.astype(np.float64)
    dn, de, dd = d
    sin_el = -dd
    ext = 3.0 / vis
    g = 1.0 - _fexp_neg_np(np.maximum(sin_el, 0.0) * gscale)
    img = col[1][None, :] + g[:, None] * (col[0] - col[1])[None, :]
    cloud_a = np.zeros_like(sin_el)
    ctn = cloud_tex.shape[0]
    if cover > 0:
        up = sin_el > 0.005
        s = np.where(up, h_c / np.where(up, sin_el, 1.0), 0.0)
        mx, my = (cam_pos[1] + de * s) / ctile, (cam_pos[0] + dn * s) / ctile
        mx, my = (mx - np.floor(mx)) * ctn, (my - np.floor(my)) * ctn
        ft = s * p[16] / np.maximum(sin_el, 0.02) * (ctn / ctile)
        wf = np.clip((ft - 1.0) / 6.0, 0.0, 1.0)
        fade = np.clip((ft - 6.0) / 60.0, 0.0, 1.0)
        c = _wrap_bilinear_np(cloud_tex, mx, my) * (1 - wf) + _wrap_bilinear_np(cloud_far, mx, my) * wf
        c = c * (1.0 - fade) + 0.5 * fade
        thr = 0.85 - 0.8 * cover
        cloud_a = np.where(up, _smooth_np(thr, thr + 0.25, c) * _fexp_neg_np(s / (3.0 * vis)), 0.0)
        dens = _smooth_np(thr + 0.1, thr + 0.6, c)[:, None]
        k = col[2][None, :] * (1 - dens) + col[3][None, :] * dens
        img += cloud_a[:, None] * (k - img)
    ang2 = np.maximum(2.0 * (1.0 - (dn * sun[0] + de * sun[1] + dd * sun[2])), 0.0)
    if glare_k > 0:
        gl = glare_k * (_fexp_neg_np(ang2 / 0.0009) + 0.35 * _fexp_neg_np(ang2 / 0.06)) * (1 - 0.8 * cloud_a)
        gl = np.where(ang2 < 1.5, np.minimum(gl, 1.0), 0.0)
        img += gl[:, None] * (255.0 - img)
    terr = sin_el < sin_terrain
    n_az = az_tables.shape[1]
    ia = np.clip(((np.arctan2(de, dn) + np.pi) * (n_az / (2 * np.pi))).astype(np.int64), 0, n_az - 1)
    below = terr & (sin_el < 0)
    rng_m = np.minimum(alt / np.maximum(-sin_el, 1e-4), 1e6)
    gx, gy = (cam_pos[1] + de * rng_m) / gtile, (cam_pos[0] + dn * rng_m) / gtile
    m = ground_tex.shape[0]
    gx, gy = (gx - np.floor(gx)) * m, (gy - np.floor(gy)) * m
    foot_m = rng_m * p[16] / np.maximum(-sin_el, 0.02)
    ft = foot_m * (m / gtile)
    wf = np.clip((ft - 1.0) / 6.0, 0.0, 1.0)
    fade = np.clip((ft - 6.0) / 60.0, 0.0, 1.0)
    f = _wrap_bilinear_np(ground_tex, gx, gy) * (1 - wf) + _wrap_bilinear_np(ground_far, gx, gy) * wf
    f = (f * (1.0 - fade) + 0.5 * fade)[:, None]
    dx, dy = (cam_pos[1] + de * rng_m) / (3.7 * fsize), (cam_pos[0] + dn * rng_m) / (3.7 * fsize)
    det = _wrap_bilinear_np(cloud_tex, (dx - np.floor(dx)) * ctn, (dy - np.floor(dy)) * ctn)
    fd = foot_m * (ctn / (3.7 * fsize))
    dt = np.where(fd < 4.0, 1.0 + (0.3 * det - 0.15) * (1.0 - fd / 4.0), 1.0)[:, None]
    ground = (col[4][None, :] + f * (col[5] - col[4])[None, :]) * dt
    hz = (1.0 - _fexp_neg_np(rng_m * ext))[:, None]
    ground = ground + hz * (col[1][None, :] - ground)
    img = np.where(below[:, None], ground, img)
    dep = np.where(below, rng_m, SKY_DEPTH_M)
    cos_el = np.sqrt(np.maximum(1.0 - sin_el * sin_el, 1e-6))
    is_hill = terr & (sin_el < az_tables[2, ia]) & (sin_el >= sin_hill_base)
    img[is_hill] = col[6] + hill_hz * (col[1] - col[6])
    dep = np.where(is_hill, p[15] / cos_el, dep)
    top, base = az_tables[0, ia], az_tables[1, ia]
    it = terr & (sin_el < top) & (sin_el >= base)
    if np.any(it):
        sh = (az_tables[3, ia[it]] * (0.7 + 0.3 * (sin_el[it] - base[it]) / (top[it] - base[it])))[:, None]
        thz = az_tables[4, ia[it]][:, None]
        img[it] = col[7][None, :] * sh + thz * (col[1][None, :] - col[7][None, :] * sh)
    dep = np.where(it, tree_d[ia] / cos_el, dep)
    out[:] = img
    depth[:] = dep


@njit(cache=True, fastmath=True)
def finish_numba(img, r2, exposure, vignette, noise, sigma, ox, oy, out):
    """Sensor response on interleaved rows: ``img`` (H, 3W) uint8 -> ``out`` (H, 3W) uint8 with
    v = img * exposure * (1 - vignette * min(r2 / 2, 1)) + sigma * noise[oy + y, 3 ox + j], rounded and
    clipped. ``r2`` (H, 3W) squared normalised radius; ``noise`` (H + pad, 3 (W + pad)) or (0, 0)."""
    h, n = img.shape
    e = np.float32(exposure)
    vg = np.float32(vignette)
    s = np.float32(sigma)
    o3 = 3 * ox
    use_noise = noise.shape[0] > 0
    for y in range(h):
        irow = img[y]
        rrow = r2[y]
        orow = out[y]
        if use_noise:
            nrow = noise[oy + y]
            for j in range(n):
                g = e * (np.float32(1.0) - vg * min(rrow[j] * np.float32(0.5), np.float32(1.0)))
                v = irow[j] * g + s * nrow[o3 + j] + np.float32(0.5)
                orow[j] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))
        else:
            for j in range(n):
                g = e * (np.float32(1.0) - vg * min(rrow[j] * np.float32(0.5), np.float32(1.0)))
                v = irow[j] * g + np.float32(0.5)
                orow[j] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


def finish_numpy(img, r2, exposure, vignette, noise, sigma, ox, oy, out) -> None:
    """NumPy reference of :func:`finish_numba`."""
    h, n = img.shape
    v = img.astype(np.float32) * (exposure * (1.0 - vignette * np.minimum(r2 * 0.5, 1.0)))
    if noise.shape[0] > 0:
        v = v + sigma * noise[oy:oy + h, 3 * ox:3 * ox + n]
    out[:] = np.clip(v + 0.5, 0, 255).astype(np.uint8)
