"""The synthetic camera: procedural sky/terrain background + 3D-posed target silhouettes + sensor effects.

Geometry is exact with respect to :class:`autonomy.camera.model.Camera`: every background pixel's ray comes
from ``pixels_to_bearings_cam`` (so lens distortion bends the horizon as the real lens would) and every
target vertex goes through ``bearings_cam_to_pixels``; labels are the projected extent of the drawn
triangles. Pixel coordinates follow the camera model: the centre of the top-left pixel is (0, 0), so the
image spans [-0.5, W-0.5] x [-0.5, H-0.5].

Speed: the background (per-pixel ray directions, sky, clouds, sun, terrain) is evaluated at a reduced
grid (``bg_downscale``, default 2 for widths >= 960) and upsampled; textures, ray tables and the sensor
noise bank are built once per ``Renderer``. Targets are rasterised with OpenCV into a small supersampled
patch around their projection (anti-aliased, so a 3-pixel drone looks like one) and alpha-composited.

Terrain (ground, tree line, hills) hides targets behind it, pixel by pixel, from a per-sample depth of
the background. Known simplifications: the terrain is flat at down = 0; the tree line and hills are
rings around the camera (they move with it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from autonomy.camera.model import Camera, CameraIntrinsics, bearings_cam_to_pixels, pixels_to_bearings_cam
from autonomy.geometry import quat_normalize, quat_to_rotmat
from sitl.render._kernels import N_PARAMS, background_numba, background_numpy, finish_numba, finish_numpy
from sitl.render.models import CLASS_OF_KIND, DEFAULT_BGR, KINDS, MAT_DARK, MAT_DISC, MeshLibrary
from sitl.render.scene import RenderError, SceneParams

_NEAR_M = 0.05  # triangles with a vertex closer than this to the camera plane are not drawn
_MIN_BOX_PX = 2.0
_MAX_PATCH_PX = 4_000_000
_N_AZ = 8192  # azimuth resolution of the tree-line and hill profiles


@dataclass(frozen=True)
class RenderTarget:
    """One object in the world. ``pos_ned_m`` is its centre, ``q_body_to_ned`` its attitude (FRD body,
    w-x-y-z), ``size_scale`` multiplies the real-size model, ``color_bgr`` overrides the main colour,
    ``anim_phase_rad`` offsets the wing-flap / rotor animation, ``vel_ned_mps`` (optional) gives the
    target motion blur over the exposure (relative to the camera's velocity)."""

    kind: str
    pos_ned_m: tuple[float, float, float] | np.ndarray
    q_body_to_ned: tuple[float, float, float, float] | np.ndarray = (1.0, 0.0, 0.0, 0.0)
    size_scale: float = 1.0
    color_bgr: tuple[int, int, int] | None = None
    anim_phase_rad: float = 0.0
    vel_ned_mps: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RenderError(f"unknown target kind {self.kind!r}; expected one of {KINDS}")
        if not (self.size_scale > 0 and math.isfinite(self.size_scale)):
            raise RenderError(f"size_scale must be positive, got {self.size_scale}")
        p = np.asarray(self.pos_ned_m, dtype=np.float64)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise RenderError(f"pos_ned_m must be 3 finite numbers, got {self.pos_ned_m!r}")


@dataclass(frozen=True)
class Label:
    """``xyxy_px``: box in camera-model pixels (clipped to the image), ``class_name`` in
    ("drone", "bird", "airplane", "helicopter"), ``target_index`` into the ``targets`` list,
    ``visible_fraction``: share of the target's silhouette area inside the image (0..1).
    ``excluded`` is "" for a usable label, else why it is not one ("too_small", "outside",
    "occluded" by trees/hills/ground). A target partly hidden by terrain gets the box of its visible part
    and a visible fraction that counts the hidden part as not visible."""

    xyxy_px: tuple[float, float, float, float]
    class_name: str
    target_index: int
    visible_fraction: float
    excluded: str = ""
    range_m: float = float("nan")


@dataclass(frozen=True)
class RenderedFrame:
    """``image``: H x W x 3 uint8 BGR. ``labels``: usable labels only. ``excluded``: targets in front of
    the camera that got no label (too small, outside the image, hidden by terrain), with the reason;
    targets behind the camera appear in neither list."""

    image: np.ndarray
    labels: list[Label]
    excluded: list[Label] = field(default_factory=list)


def _fbm_2d(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    """Tileable fractal noise (n x n, float32 in [0, 1]) by spectral synthesis, power ~ f^-beta."""
    white = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = np.fft.rfft2(white) / f ** (beta / 2.0)
    spec[0, 0] = 0.0
    out = np.fft.irfft2(spec, s=(n, n))
    lo, hi = np.percentile(out, [1, 99])
    return np.clip((out - lo) / (hi - lo), 0, 1).astype(np.float32)


def _fbm_1d(rng: np.random.Generator, n: int, beta: float) -> np.ndarray:
    white = rng.standard_normal(n)
    f = np.fft.rfftfreq(n)
    f[0] = 1.0
    spec = np.fft.rfft(white) / f ** (beta / 2.0)
    spec[0] = 0.0
    out = np.fft.irfft(spec, n=n)
    lo, hi = out.min(), out.max()
    return ((out - lo) / (hi - lo + 1e-12)).astype(np.float64)


def _blur_wrap(tex: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur of a tileable texture (wrap-around borders)."""
    p = int(3 * sigma_px) + 1
    padded = np.pad(tex, p, mode="wrap")
    return np.ascontiguousarray(cv2.GaussianBlur(padded, (0, 0), sigma_px)[p:-p, p:-p])


class RenderCache:
    """Shares what does not depend on the whole scene between Renderers: camera ray tables (per
    intrinsics), procedural textures (per ``scene.seed``) and sensor-noise banks. Pass one instance to
    many Renderers (e.g. every image of a dataset) to avoid rebuilding them; least-recently-used entries
    beyond ``max_entries`` are dropped. Not thread-safe."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._store: dict = {}

    def get(self, key, factory):
        if key in self._store:
            value = self._store.pop(key)
        else:
            value = factory()
            while len(self._store) >= self.max_entries:
                self._store.pop(next(iter(self._store)))
        self._store[key] = value
        return value


def _line_kernel(d_px) -> np.ndarray:
    """Normalised box kernel along the segment -d/2 .. +d/2 (pixels), for motion blur."""
    dx, dy = d_px
    c = math.ceil(max(abs(dx), abs(dy)) / 2.0) + 1
    k = np.zeros((2 * c + 1, 2 * c + 1), np.float32)
    cv2.line(k, (round((c - dx / 2) * 16), round((c - dy / 2) * 16)),
             (round((c + dx / 2) * 16), round((c + dy / 2) * 16)), 1.0, 1, cv2.LINE_AA, 4)
    return k / k.sum()


def _directional_blur(img: np.ndarray, d_px, max_taps: int = 9) -> np.ndarray:
    """Motion blur of a whole uint8 image along the displacement ``d_px`` (du, dv) pixels.

    A box blur along the dominant axis (O(1) per pixel) applied to the mean of a few copies shifted
    along the minor axis (one per pixel of minor extent, at most ``max_taps``): exact for horizontal or
    vertical motion, a close staircase approximation of the line kernel otherwise."""
    dx, dy = float(d_px[0]), float(d_px[1])
    horiz = abs(dx) >= abs(dy)
    major, minor = (dx, dy) if horiz else (dy, dx)
    n = min(math.ceil(abs(minor)) + 1, max_taps) if abs(minor) >= 1.0 else 1
    box = max(1, round(abs(major) / n))
    ksize = (box, 1) if horiz else (1, box)
    if n == 1:
        return cv2.blur(img, ksize)
    pad = math.ceil(max(abs(dx), abs(dy)) / 2) + 1
    src = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    h, w = img.shape[:2]
    acc = np.zeros(img.shape, np.float32)
    for k in range(n):
        f = (k + 0.5) / n - 0.5  # tap centres spread over -d/2 .. +d/2
        ox, oy = round(f * dx), round(f * dy)
        cv2.accumulate(src[pad + oy:pad + oy + h, pad + ox:pad + ox + w], acc)
    return cv2.blur(cv2.convertScaleAbs(acc, alpha=1.0 / n), ksize)


def _camera_tables(intr, bw: int, bh: int):
    """Camera-frame unit rays (3, bw*bh) float32 at the background grid's sample centres (the
    full-res positions cv2.resize(INTER_LINEAR) maps them to), the normalised radius beyond which the
    distortion polynomial is not trusted, and the squared normalised radius map (H, W) for vignetting."""
    w, h = intr.width_px, intr.height_px
    us = (np.arange(bw) + 0.5) * (w / bw) - 0.5
    vs = (np.arange(bh) + 0.5) * (h / bh) - 0.5
    uu, vv = np.meshgrid(us, vs)
    with np.errstate(all="ignore"):
        b = pixels_to_bearings_cam(intr, np.stack([uu, vv], axis=-1)).reshape(-1, 3)
    if not np.all(np.isfinite(b)):
        raise RenderError("the camera's lens distortion cannot be inverted over the whole image "
                          "(undistortion diverges near the corners); use milder dist_coeffs")
    rays = np.ascontiguousarray(b.T.astype(np.float32))
    corners = pixels_to_bearings_cam(intr, np.array([[-0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5],
                                                     [w - 0.5, -0.5]]))
    r_norm_max = 1.5 * float(np.max(np.hypot(corners[:, 0], corners[:, 1]) / corners[:, 2]))
    xx = ((np.arange(w, dtype=np.float32) - intr.cx_px) / (w / 2)) ** 2
    yy = ((np.arange(h, dtype=np.float32) - intr.cy_px) / (h / 2)) ** 2
    r2 = yy[:, None] + xx[None, :]
    return rays, r_norm_max, np.ascontiguousarray(np.repeat(r2, 3, axis=1), dtype=np.float32)


def _crown_profile(rng: np.random.Generator, dist_m: np.ndarray, height_m: np.ndarray) -> np.ndarray:
    """Tree-line top (m) over the _N_AZ azimuth bins: a row of elliptic crowns 4-10 m wide at the local
    distance, each with its own height around ``height_m``; the dips between crowns go 12-30 % down."""
    n = len(dist_m)
    bin_rad = 2 * math.pi / n
    width_bins = 7.0 / (np.mean(dist_m) * bin_rad)  # mean crown width in bins
    n_crowns = max(int(n / max(width_bins * 0.5, 0.5)), 8)
    centres = np.sort(rng.uniform(0, n, n_crowns))
    half_w = rng.uniform(2.0, 5.0, n_crowns) / (dist_m[centres.astype(int) % n] * bin_rad)
    top = height_m[centres.astype(int) % n] * rng.uniform(0.8, 1.1, n_crowns)
    drop = top * rng.uniform(0.12, 0.3, n_crowns)
    x = np.arange(n) + 0.5
    right = np.searchsorted(centres, x) % n_crowns
    prof = np.zeros(n)
    for k in (right - 1, right, (right + 1) % n_crowns, right - 2):
        dx = np.abs(x - centres[k])
        dx = np.minimum(dx, n - dx) / half_w[k]
        h = top[k] - drop[k] * (1.0 - np.sqrt(np.clip(1.0 - dx * dx, 0.0, 1.0)))
        prof = np.maximum(prof, np.where(dx < 1.0, h, 0.0))
    # gaps between crowns: fill with the lower of the neighbouring dips (no holes to the ground)
    floor = np.minimum(top[right - 1] - drop[right - 1], top[right] - drop[right])
    return np.maximum(prof, floor)


def _textures(seed: int):
    """Tileable textures (cloud, cloud blurred, fields, fields blurred: 512 x 512 float32 in [0, 1]) and
    unit 1D azimuth noises (tree presence, crowns, tree height, tree distance, shade, hills)."""
    trng = np.random.default_rng(seed)
    cloud = _fbm_2d(trng, 512, 3.2)
    cells = trng.random((32, 32)).astype(np.float32)
    fields = cv2.resize(cells, (512, 512), interpolation=cv2.INTER_NEAREST)
    # irregular field boundaries: warp the grid of cells by smooth tileable noise (~1 field amplitude)
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float32)
    warp_x, warp_y = (cv2.resize(_fbm_2d(trng, 128, 3.0), (512, 512)) - 0.5) * 40.0, \
        (cv2.resize(_fbm_2d(trng, 128, 3.0), (512, 512)) - 0.5) * 40.0
    fields = cv2.remap(fields, xx + warp_x, yy + warp_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_WRAP)
    fields = 0.75 * fields + 0.25 * cv2.resize(_fbm_2d(trng, 128, 2.5), (512, 512))  # 16 px per field
    az = (_fbm_1d(trng, _N_AZ, 2.0), _fbm_1d(trng, _N_AZ, 1.2), _fbm_1d(trng, _N_AZ, 2.4),
          _fbm_1d(trng, _N_AZ, 3.0), _fbm_1d(trng, _N_AZ, 1.6), _fbm_1d(trng, _N_AZ, 2.6))
    return cloud, _blur_wrap(cloud, 6.0), fields, _blur_wrap(fields, 8.0), az


class Renderer:
    """Renders frames of one ``camera`` in one ``scene``; reuse it for every frame of a run.

    ``render(cam_pos_ned_m, q_body_to_ned, targets, rng, t_s)`` -> :class:`RenderedFrame`.
    """

    def __init__(self, camera: Camera, scene: SceneParams, bg_downscale: int | None = None,
                 use_numba: bool = True, cache: RenderCache | None = None) -> None:
        self.camera = camera
        self.use_numba = use_numba
        self.scene = scene
        intr = camera.intrinsics
        self.width_px, self.height_px = w, h = intr.width_px, intr.height_px
        ds = bg_downscale if bg_downscale is not None else (2 if w >= 960 else 1)
        if ds < 1:
            raise RenderError("bg_downscale must be >= 1")
        self._bw, self._bh = bw, bh = -(-w // ds), -(-h // ds)
        self.cache = cache if cache is not None else RenderCache()
        self._rays_cam, self._r_norm_max, self._r2x3 = self.cache.get(("camera", intr, bw, bh),
                                                              lambda: _camera_tables(intr, bw, bh))
        self._distorted = any(intr.dist_coeffs)
        tex = self.cache.get(("textures", scene.seed), lambda: _textures(scene.seed))
        self._cloud_tex, self._cloud_tex_far, self._ground_tex, self._ground_tex_far = tex[:4]
        presence, crowns, tree_h_n, tree_d_n, shade_n, hill_n = tex[4]
        # Tree line and hills: profiles over azimuth (index = (az + pi) / 2pi * _N_AZ).
        thr = np.quantile(presence, 1.0 - scene.tree_cover) if scene.tree_cover > 0 else 2.0
        self._tree_d_m = scene.tree_distance_m * (0.6 + 0.8 * tree_d_n)
        tree_h = _crown_profile(np.random.default_rng([scene.seed, 7]), self._tree_d_m,
                                scene.tree_height_m * (0.3 + 0.7 * tree_h_n))
        tree_h *= 0.9 + 0.2 * crowns
        # stands of trees with rounded ends (height tapers over ~1 % of the profile's range)
        self._tree_h_m = tree_h * np.sqrt(np.clip((presence - thr) / 0.04, 0.0, 1.0))
        self._tree_shade = 0.8 + 0.35 * shade_n
        self._tree_haze = 1.0 - np.exp(-3.0 * self._tree_d_m / scene.visibility_m)
        self._hill_h_m = scene.hill_height_m * hill_n ** 1.5
        self._noise_pad = 32
        self._noise_bank = np.zeros((0, 0), np.float32)  # (H + pad, 3 * (W + pad)): one draw per pixel
        if scene.noise_sigma_dn > 0:
            self._noise_bank = self.cache.get(("noise", w, h, scene.seed % 4), lambda: np.repeat(
                np.random.default_rng(scene.seed % 4).standard_normal(
                    (h + self._noise_pad, w + self._noise_pad), dtype=np.float32), 3, axis=1))
        self._gamma_lut = np.clip(255.0 * (np.arange(256) / 255.0) ** (1.0 / scene.gamma), 0, 255).astype(np.uint8)
        s_az, s_el = scene.sun_azimuth_rad, scene.sun_elevation_rad
        self._sun_ned = np.array([math.cos(s_el) * math.cos(s_az), math.cos(s_el) * math.sin(s_az), -math.sin(s_el)])
        self._colors = np.array([scene.sky_zenith_bgr, scene.sky_horizon_bgr, scene.cloud_bgr, scene.cloud_shadow_bgr,
                                 scene.ground_bgr, scene.ground_alt_bgr, scene.hill_bgr, scene.tree_bgr], np.float32)
        self._meshes = MeshLibrary()
        self._bg_cache_key: bytes | None = None
        self._bg_cache: np.ndarray | None = None
        self._bg_depth: np.ndarray | None = None

    # ------------------------------------------------------------------ background
    def background(self, cam_pos_ned_m: np.ndarray, q_body_to_ned: np.ndarray) -> np.ndarray:
        """Background (sky, clouds, sun, terrain) as H x W x 3 uint8 BGR, before sensor effects.
        Cached for a repeated pose (do not modify the returned array)."""
        key = np.concatenate([cam_pos_ned_m, q_body_to_ned]).tobytes()
        if key == self._bg_cache_key and self._bg_cache is not None:
            return self._bg_cache
        low, self._bg_depth = self._background_lowres(cam_pos_ned_m, q_body_to_ned)
        sigma_low = self.scene.optics_blur_sigma_px * self._bw / self.width_px
        if sigma_low > 0.05:  # optics blur of the background, at its own grid (targets get theirs in-patch)
            low = cv2.GaussianBlur(low, (0, 0), sigma_low, borderType=cv2.BORDER_REPLICATE)
        img = cv2.convertScaleAbs(low)
        if (self._bw, self._bh) != (self.width_px, self.height_px):
            img = cv2.resize(img, (self.width_px, self.height_px), interpolation=cv2.INTER_LINEAR)
        self._bg_cache_key, self._bg_cache = key, img
        return img

    def _depth_roi(self, x0: int, y0: int, w: int, h: int) -> np.ndarray:
        """Terrain distance (m) behind full-res pixels x0..x0+w-1, y0..y0+h-1 of the last background
        (nearest background sample)."""
        bx = np.clip(((np.arange(x0, x0 + w) + 0.5) * (self._bw / self.width_px)).astype(np.int64), 0, self._bw - 1)
        by = np.clip(((np.arange(y0, y0 + h) + 0.5) * (self._bh / self.height_px)).astype(np.int64), 0, self._bh - 1)
        return self._bg_depth[np.ix_(by, bx)]

    def background_params(self, cam_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-frame inputs of the background kernels (see :mod:`sitl.render._kernels`): the parameter
        vector and the per-azimuth tables (they depend on the camera altitude)."""
        sc = self.scene
        alt = max(-float(cam_pos[2]), 0.5)
        tree_dz = self._tree_h_m - alt
        sin_tree_top = tree_dz / np.hypot(tree_dz, self._tree_d_m)
        sin_tree_base = -alt / np.hypot(alt, self._tree_d_m)
        hill_dz = self._hill_h_m - alt
        sin_hill_top = hill_dz / np.hypot(hill_dz, sc.hill_distance_m)
        tables = np.stack([sin_tree_top, sin_tree_base, sin_hill_top, self._tree_shade, self._tree_haze])
        top = max(float(sin_tree_top.max()), float(sin_hill_top.max()), 0.0)
        p = np.empty(N_PARAMS)
        p[:] = (sc.sky_gradient_scale, sc.cloud_cover, max(sc.cloud_altitude_m - alt, 50.0),
                4.0 * sc.cloud_feature_m, sc.visibility_m, sc.sun_glare if sc.mode == "visible" else 0.0,
                *self._sun_ned, alt, 32.0 * sc.field_size_m, sc.field_size_m,
                -alt / math.hypot(alt, sc.hill_distance_m), top + 1e-3,
                1.0 - math.exp(-3.0 * sc.hill_distance_m / sc.visibility_m), sc.hill_distance_m,
                self.camera.intrinsics.hfov_rad / self._bw)
        return p, tables

    def _background_lowres(self, cam_pos: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(colours (bh, bw, 3) float32, terrain distance (bh, bw) float32 m) at the background grid."""
        out = np.empty((self._rays_cam.shape[1], 3), np.float32)
        depth = np.empty(self._rays_cam.shape[1], np.float32)
        kernel = background_numba if self.use_numba else background_numpy
        p, tables = self.background_params(cam_pos)
        kernel(self._rays_cam, self.camera.r_ned_from_cam(q), np.ascontiguousarray(cam_pos, dtype=np.float64),
               p, self._colors, self._cloud_tex, self._cloud_tex_far, self._ground_tex, self._ground_tex_far,
               tables, self._tree_d_m, out, depth)
        return out.reshape(self._bh, self._bw, 3), depth.reshape(self._bh, self._bw)

    # ------------------------------------------------------------------ targets
    def _target_colors(self, t: RenderTarget, mats: np.ndarray, light: np.ndarray, haze: float) -> np.ndarray:
        sc = self.scene
        if sc.mode == "ir":
            lvl = float(sc.ir_target_level_dn)
            base = np.full((len(mats), 3), lvl, np.float64)
            hot = mats == MAT_DARK  # motors / engines run hotter than the airframe
            base[hot] = np.clip(lvl + (25.0 if lvl > 128 else 10.0), 0, 255)
            col = base * (0.9 + 0.1 * np.clip(light, 0, 1.4)[:, None] / 1.4)
        else:
            main = np.asarray(t.color_bgr if t.color_bgr is not None else DEFAULT_BGR[t.kind], np.float64)
            table = np.stack([main, 0.25 * main + 20.0, np.array([40.0, 50.0, 170.0]) * 0.5 + main * 0.3,
                              np.array([110.0, 110.0, 110.0])])
            col = table[mats] * light[:, None]
        hor = np.asarray(sc.sky_horizon_bgr, np.float64)
        return np.clip(col + haze * (hor - col), 0, 255)

    def _raster(self, uv: np.ndarray, cols: np.ndarray, is_disc: np.ndarray, x0: int, y0: int,
                w: int, h: int, s: float):
        """Rasterise triangles (painter order given) into a patch covering pixels x0..x0+w-1,
        y0..y0+h-1 at ``s`` samples per pixel. Returns (opaque, discs): upscaled BGRA float32 patches
        (colour in 0..255, coverage in the alpha channel); ``discs`` is None without disc triangles."""
        pw, ph = max(round(w * s), 1), max(round(h * s), 1)
        p = (uv - np.array([x0 - 0.5, y0 - 0.5])) * s - 0.5
        pts = np.clip(np.round(p * 16.0), -2e8, 2e8).astype(np.int32)
        opaque = np.zeros((ph, pw, 4), np.float32)
        discs = np.zeros((ph, pw, 4), np.float32) if np.any(is_disc) else None
        colors = np.concatenate([cols, np.ones((len(cols), 1))], axis=1).tolist()
        fill = cv2.fillConvexPoly
        for i in range(len(pts)):
            fill(discs if is_disc[i] else opaque, pts[i], colors[i], cv2.LINE_8, 4)
        return opaque, discs

    def _draw_target(self, img: np.ndarray, idx: int, t: RenderTarget, cam_pos: np.ndarray,
                     r_ned_from_cam: np.ndarray, t_s: float, cam_vel: np.ndarray | None = None,
                     exposure_s: float = 0.0) -> Label | None:
        """Composite one target into ``img`` (uint8, in place). None if it is behind the camera."""
        w_img, h_img = self.width_px, self.height_px
        mesh = self._meshes.mesh(t.kind, t_s, t.anim_phase_rad)
        rt = quat_to_rotmat(quat_normalize(np.asarray(t.q_body_to_ned, np.float64)))
        pos = np.asarray(t.pos_ned_m, np.float64)
        tri_ned = mesh.tris_body_m * t.size_scale @ rt.T + pos  # (T, 3, 3)
        rel = tri_ned - cam_pos
        tri_cam = rel @ r_ned_from_cam  # cam = R^T rel
        z = tri_cam[..., 2]
        ok = np.all(z > _NEAR_M, axis=1)
        if self._distorted:
            rn = np.hypot(tri_cam[..., 0], tri_cam[..., 1]) / np.maximum(z, 1e-9)
            ok &= np.all(rn < self._r_norm_max, axis=1)
        centre_cam = (pos - cam_pos) @ r_ned_from_cam
        range_m = float(np.linalg.norm(pos - cam_pos))
        if not np.any(ok):
            if centre_cam[2] <= 0:
                return None
            return Label((0.0, 0.0, 0.0, 0.0), CLASS_OF_KIND[t.kind], idx, 0.0, "outside", range_m)
        tri_cam, tri_ned, mats = tri_cam[ok], tri_ned[ok], mesh.material[ok]
        uv, _ = bearings_cam_to_pixels(self.camera.intrinsics, tri_cam)  # (T, 3, 2)
        # Flat shading: normal turned toward the camera; sun (dimmed by cloud) + sky light from above.
        n = np.cross(tri_ned[:, 1] - tri_ned[:, 0], tri_ned[:, 2] - tri_ned[:, 0])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        view = cam_pos - tri_ned.mean(axis=1)
        n *= np.where(np.sum(n * view, axis=1) < 0, -1.0, 1.0)[:, None]
        sun_k = 0.75 * (1.0 - 0.8 * self.scene.cloud_cover) * (self._sun_ned[2] < 0)
        light = 0.22 + 0.45 * 0.5 * (1.0 - n[:, 2]) + sun_k * np.maximum(n @ self._sun_ned, 0.0)
        haze = 1.0 - math.exp(-3.0 * range_m / self.scene.visibility_m)
        cols = self._target_colors(t, mats, light, haze)
        order = np.argsort(-tri_cam[..., 2].mean(axis=1), kind="stable")
        uv, cols, is_disc = uv[order], cols[order], (mats[order] == MAT_DISC)

        umin, vmin = uv[..., 0].min(), uv[..., 1].min()
        umax, vmax = uv[..., 0].max(), uv[..., 1].max()
        blur_d = self._target_smear_px(t, pos, cam_pos, cam_vel, r_ned_from_cam, exposure_s)
        sigma = self.scene.optics_blur_sigma_px
        margin = math.ceil(3.0 * sigma) if sigma > 0.05 else 0  # room for the optics blur
        if blur_d is not None:  # the smeared silhouette spans the shape at -d/2 .. +d/2
            umin, umax = umin - abs(blur_d[0]) / 2, umax + abs(blur_d[0]) / 2
            vmin, vmax = vmin - abs(blur_d[1]) / 2, vmax + abs(blur_d[1]) / 2
            margin += 1
        box = (max(umin, -0.5), max(vmin, -0.5), min(umax, w_img - 0.5), min(vmax, h_img - 0.5))
        cls = CLASS_OF_KIND[t.kind]
        if box[2] <= box[0] or box[3] <= box[1]:
            return Label((0.0, 0.0, 0.0, 0.0), cls, idx, 0.0, "outside", range_m)
        # pixel index range of the full silhouette
        fx0, fy0 = math.floor(umin + 0.5) - margin, math.floor(vmin + 0.5) - margin
        fx1, fy1 = math.floor(umax + 0.5) + margin, math.floor(vmax + 0.5) + margin
        fw, fh = fx1 - fx0 + 1, fy1 - fy0 + 1
        big = max(fw, fh)
        s = 8 if big <= 16 else 4 if big <= 64 else 2 if big <= 256 else 1
        # region actually drawn: the silhouette box clipped to the image
        x0, y0 = max(fx0, 0), max(fy0, 0)
        x1, y1 = min(fx1, w_img - 1), min(fy1, h_img - 1)
        rw, rh = x1 - x0 + 1, y1 - y0 + 1
        while rw * rh * s * s > _MAX_PATCH_PX and s > 1:
            s //= 2
        opaque, discs = self._raster(uv, cols, is_disc, x0, y0, rw, rh, s)
        cover = opaque[..., 3] if discs is None else np.maximum(opaque[..., 3], discs[..., 3])
        area_in = float(cover.sum()) / (s * s)
        if (x0, y0, x1, y1) == (fx0, fy0, fx1, fy1):
            area_all = area_in
        else:  # coarse full-silhouette raster for the visible fraction
            sc_ = min(float(s), math.sqrt(_MAX_PATCH_PX / max(fw * fh, 1)))
            o_all, d_all = self._raster(uv, cols, is_disc, fx0, fy0, fw, fh, sc_)
            cover = o_all[..., 3] if d_all is None else np.maximum(o_all[..., 3], d_all[..., 3])
            area_all = float(cover.sum()) / (sc_ * sc_)
            area_in = min(area_in, area_all)
        vis = float(np.clip(area_in / area_all, 0.0, 1.0)) if area_all > 0 else 0.0
        layers = [opaque] if discs is None else [discs, opaque]  # discs first: the airframe covers them
        for j, layer in enumerate(layers):
            if s > 1:  # area-average the samples: premultiplied colour + coverage
                layer = cv2.resize(layer, (rw, rh), interpolation=cv2.INTER_AREA)
            if blur_d is not None:
                layer = cv2.filter2D(layer, -1, _line_kernel(blur_d), borderType=cv2.BORDER_CONSTANT)
            if sigma > 0.05:
                layer = cv2.GaussianBlur(layer, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
            layers[j] = layer
        # terrain in front of the target (trees, hills, ground) hides it, pixel by pixel
        excluded = ""
        in_front = (self._depth_roi(x0, y0, rw, rh) > range_m).astype(np.float32)
        if not np.all(in_front):
            cover = layers[-1][..., 3] if len(layers) == 1 else np.maximum(layers[0][..., 3], layers[1][..., 3])
            total = float(cover.sum())
            shown = cover * in_front
            if total > 0 and float(shown.sum()) < 0.999 * total:
                vis *= float(shown.sum()) / total
                layers = [layer * in_front[..., None] for layer in layers]
                ys, xs = np.nonzero(shown > 0.02)
                if len(xs) == 0:
                    excluded = "occluded"
                else:  # the visible part's pixel extent, never beyond the exact geometric box
                    box = (max(box[0], x0 + xs.min() - 0.5), max(box[1], y0 + ys.min() - 0.5),
                           min(box[2], x0 + xs.max() + 0.5), min(box[3], y0 + ys.max() + 0.5))
        roi = img[y0:y1 + 1, x0:x1 + 1].astype(np.float32)
        for layer in layers:
            k = 1.0
            if layer is not layers[-1]:
                k = 0.12 if self.scene.mode == "ir" else 0.22  # spinning props are faint
            roi *= (1.0 - k * layer[..., 3:4])
            roi += k * layer[..., :3]
        img[y0:y1 + 1, x0:x1 + 1] = cv2.convertScaleAbs(roi)
        if not excluded and max(box[2] - box[0], box[3] - box[1]) < _MIN_BOX_PX:
            excluded = "too_small"
        elif not excluded and vis <= 0.0:
            excluded = "outside"
        return Label(tuple(float(v) for v in box), cls, idx, vis, excluded, range_m)

    def _target_smear_px(self, t: RenderTarget, pos: np.ndarray, cam_pos: np.ndarray, cam_vel, r_ned_from_cam,
                         exposure_s: float):
        """Image displacement (du, dv) of the target centre over the exposure from the relative
        velocity, or None when there is none or it is under a pixel."""
        if exposure_s <= 0 or (t.vel_ned_mps is None and cam_vel is None):
            return None
        v_rel = (np.zeros(3) if t.vel_ned_mps is None else np.asarray(t.vel_ned_mps, np.float64)) - \
            (np.zeros(3) if cam_vel is None else cam_vel)
        ends = np.stack([pos - 0.5 * exposure_s * v_rel, pos + 0.5 * exposure_s * v_rel]) - cam_pos
        uv, front = bearings_cam_to_pixels(self.camera.intrinsics, ends @ r_ned_from_cam)
        if not np.all(front):
            return None
        d = uv[1] - uv[0]
        if not np.all(np.isfinite(d)) or math.hypot(d[0], d[1]) < 1.0:
            return None
        return min(max(float(d[0]), -60.0), 60.0), min(max(float(d[1]), -60.0), 60.0)

    # ------------------------------------------------------------------ frame
    def render(self, cam_pos_ned_m, q_body_to_ned, targets: list[RenderTarget] | tuple = (),
               rng: np.random.Generator | None = None, t_s: float = 0.0,
               rate_body_radps=None, exposure_s: float = 0.004, cam_vel_ned_mps=None) -> RenderedFrame:
        """Render one frame.

        ``cam_pos_ned_m`` (3,) camera position, ``q_body_to_ned`` (4,) vehicle attitude (the camera
        mount comes from ``camera.mount``), ``targets`` objects in the world, ``rng`` drives the sensor
        noise (None: no noise), ``t_s`` animates birds and rotors, ``rate_body_radps`` (3,) the vehicle's
        angular rate: when given, the frame gets the motion blur of that rotation over ``exposure_s``;
        targets with ``vel_ned_mps`` (or any target when ``cam_vel_ned_mps`` is given) are smeared by
        their motion relative to the camera over ``exposure_s`` (label boxes cover the smear).
        """
        cam_pos = np.asarray(cam_pos_ned_m, np.float64)
        if cam_pos.shape != (3,) or not np.all(np.isfinite(cam_pos)):
            raise RenderError(f"cam_pos_ned_m must be 3 finite numbers, got {cam_pos_ned_m!r}")
        try:
            q = quat_normalize(np.asarray(q_body_to_ned, np.float64))
        except ValueError as exc:
            raise RenderError(f"bad q_body_to_ned: {exc}") from exc
        if q.shape != (4,):
            raise RenderError(f"q_body_to_ned must have 4 elements, got shape {q.shape}")
        for t in targets:
            if not isinstance(t, RenderTarget):
                raise RenderError(f"targets must be RenderTarget, got {type(t).__name__}")
        cam_vel = None if cam_vel_ned_mps is None else np.asarray(cam_vel_ned_mps, np.float64).reshape(3)
        sc = self.scene
        img = self.background(cam_pos, q).copy()
        r = self.camera.r_ned_from_cam(q)
        labels: list[Label] = []
        excluded: list[Label] = []
        # far targets first so that nearer ones cover them
        order = sorted(range(len(targets)), key=lambda i: -float(np.linalg.norm(
            np.asarray(targets[i].pos_ned_m, np.float64) - cam_pos)))
        for i in order:
            lab = self._draw_target(img, i, targets[i], cam_pos, r, t_s, cam_vel, exposure_s)
            if lab is None:
                continue
            (excluded if lab.excluded else labels).append(lab)
        labels.sort(key=lambda l: l.target_index)
        excluded.sort(key=lambda l: l.target_index)

        if rate_body_radps is not None:
            d = self._rotation_smear_px(np.asarray(rate_body_radps, np.float64).reshape(3), exposure_s)
            if math.hypot(*d) >= 1.0:
                d = (min(max(d[0], -60.0), 60.0), min(max(d[1], -60.0), 60.0))
                img = _directional_blur(img, d)
                w, h = self.width_px, self.height_px
                labels = [dataclasses.replace(lab, xyxy_px=(
                    max(lab.xyxy_px[0] - abs(d[0]) / 2, -0.5), max(lab.xyxy_px[1] - abs(d[1]) / 2, -0.5),
                    min(lab.xyxy_px[2] + abs(d[0]) / 2, w - 0.5), min(lab.xyxy_px[3] + abs(d[1]) / 2, h - 0.5)))
                    for lab in labels]
        ox = oy = 0
        noise = self._noise_bank
        if rng is not None and noise.shape[0] > 0:
            ox, oy = int(rng.integers(0, self._noise_pad)), int(rng.integers(0, self._noise_pad))
        elif rng is None:
            noise = np.zeros((0, 0), np.float32)
        out = np.empty_like(img)
        h, w = self.height_px, self.width_px
        (finish_numba if self.use_numba else finish_numpy)(
            img.reshape(h, 3 * w), self._r2x3, sc.exposure_gain, sc.vignette, noise, sc.noise_sigma_dn, ox, oy,
            out.reshape(h, 3 * w))
        if sc.gamma != 1.0:
            out = cv2.LUT(out, self._gamma_lut)
        if sc.mode == "ir":
            out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        if sc.jpeg_quality > 0:
            _ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(sc.jpeg_quality)])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return RenderedFrame(out, labels, excluded)

    def _rotation_smear_px(self, rate_body_radps: np.ndarray, exposure_s: float) -> tuple[float, float]:
        """Image displacement at the image centre over the exposure caused by the body rotation."""
        w_cam = self.camera.mount.r_body_from_cam.T @ rate_body_radps
        intr = self.camera.intrinsics
        # a fixed world direction seen from a rotating camera moves as db/dt = -w x b; at b = (0, 0, 1):
        return -intr.fx_px * w_cam[1] * exposure_s, intr.fy_px * w_cam[0] * exposure_s


def sim_camera(width_px: int = 1280, height_px: int = 720, hfov_deg: float = 70.0, tilt_up_deg: float = 45.0,
               fps: float = 30.0) -> Camera:
    """The simulator's camera: DESIGN's 70 deg HFOV camera at reduced resolution/rate for speed on small CPUs
    (the up-tilt is 45 deg, as in campaigns: see ``sitl.campaign.campaign_camera``)."""
    base = Camera.default()
    intr = CameraIntrinsics.from_hfov(width_px, height_px, hfov_deg)
    return Camera(intr, dataclasses.replace(base.mount, tilt_up_rad=math.radians(tilt_up_deg)), fps)
