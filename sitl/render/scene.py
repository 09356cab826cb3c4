"""Scene description for the synthetic camera: sky, clouds, sun, terrain, optics and sensor.

All colours are BGR uint8 triplets (OpenCV order). In ``mode == "ir"`` the renderer outputs a grey
(1-channel look, stored as 3 equal channels) thermal-like image: the palette fields then hold grey
levels (a cold dark sky, warm bright ground and trees, hot targets at ``ir_target_level_dn``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

BGR = tuple[int, int, int]


class RenderError(ValueError):
    """Invalid render input (scene, pose, target)."""


@dataclass(frozen=True)
class SceneParams:
    """Everything about the world and the sensor that does not change from frame to frame."""

    mode: str = "visible"  # "visible" | "ir"
    seed: int = 0  # procedural textures (clouds, fields, tree line), noise bank
    # sky
    sky_zenith_bgr: BGR = (215, 150, 80)
    sky_horizon_bgr: BGR = (235, 210, 185)
    sky_gradient_scale: float = 3.0  # larger: zenith colour reached closer to the horizon
    # clouds (a textured layer at a fixed altitude, seen in perspective)
    cloud_cover: float = 0.3  # 0 clear .. 1 overcast
    cloud_altitude_m: float = 1500.0
    cloud_feature_m: float = 2500.0  # size of the largest cloud structures
    cloud_bgr: BGR = (245, 245, 245)
    cloud_shadow_bgr: BGR = (175, 170, 170)
    # sun
    sun_azimuth_rad: float = 0.5
    sun_elevation_rad: float = 0.6
    sun_glare: float = 1.0  # 0: no glare
    # terrain
    ground_bgr: BGR = (60, 120, 90)
    ground_alt_bgr: BGR = (70, 150, 140)  # second field colour
    field_size_m: float = 120.0
    tree_bgr: BGR = (45, 70, 50)
    tree_distance_m: float = 600.0
    tree_height_m: float = 18.0
    tree_cover: float = 0.7  # fraction of azimuths with trees
    hill_bgr: BGR = (120, 115, 100)
    hill_distance_m: float = 5000.0
    hill_height_m: float = 80.0
    visibility_m: float = 15000.0  # haze: contrast halves at ~0.7 * visibility
    # sensor
    exposure_gain: float = 1.0
    gamma: float = 1.0
    noise_sigma_dn: float = 2.0
    optics_blur_sigma_px: float = 0.6
    vignette: float = 0.1  # relative darkening at the image corners
    jpeg_quality: int = 0  # 0: no JPEG round-trip
    # IR
    ir_target_level_dn: int = 230

    def __post_init__(self) -> None:
        if self.mode not in ("visible", "ir"):
            raise RenderError(f"mode must be 'visible' or 'ir', got {self.mode!r}")
        if not 0.0 <= self.cloud_cover <= 1.0 or not 0.0 <= self.tree_cover <= 1.0:
            raise RenderError("cloud_cover and tree_cover must be in [0, 1]")
        if min(self.cloud_altitude_m, self.cloud_feature_m, self.field_size_m, self.visibility_m,
               self.tree_distance_m, self.hill_distance_m) <= 0:
            raise RenderError("distances and sizes must be positive")
        if not 0 <= self.jpeg_quality <= 100:
            raise RenderError("jpeg_quality must be in [0, 100] (0 disables)")
        if self.exposure_gain <= 0 or self.gamma <= 0 or self.noise_sigma_dn < 0 or self.optics_blur_sigma_px < 0:
            raise RenderError("exposure_gain and gamma must be positive, noise and blur non-negative")


def _jit(rng: np.random.Generator, bgr, amount: float) -> BGR:
    """Brightness jitter of +-amount and a small hue jitter (a few DN per channel)."""
    c = np.asarray(bgr, float) * (1.0 + rng.uniform(-amount, amount)) + rng.normal(0, 255 * amount / 8, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _grey(v: float) -> BGR:
    g = int(np.clip(v, 0, 255))
    return (g, g, g)


def random_scene(rng: np.random.Generator, ir_fraction: float = 0.2) -> SceneParams:
    """A random but plausible scene: clear/hazy/overcast/evening skies, varied terrain and sensor,
    with probability ``ir_fraction`` a grey thermal-like scene."""
    seed = int(rng.integers(0, 2**31 - 1))
    sensor = {
        "exposure_gain": float(rng.uniform(0.8, 1.2)), "gamma": float(rng.uniform(0.85, 1.15)),
        "noise_sigma_dn": float(rng.uniform(0.3, 3.0)), "optics_blur_sigma_px": float(rng.uniform(0.3, 1.1)),
        "vignette": float(rng.uniform(0.0, 0.35)),
        "jpeg_quality": int(rng.choice([0, 0, 50, 65, 75, 85, 95])),
        "sun_azimuth_rad": float(rng.uniform(-math.pi, math.pi)),
        "sun_elevation_rad": float(rng.uniform(0.03, 1.2)),
        "cloud_altitude_m": float(rng.uniform(600, 4000)), "cloud_feature_m": float(rng.uniform(800, 5000)),
        "field_size_m": float(rng.uniform(40, 300)),
        "tree_distance_m": float(rng.uniform(150, 2500)), "tree_height_m": float(rng.uniform(8, 30)),
        "tree_cover": float(rng.uniform(0.0, 1.0)) ** 0.5,
        "hill_distance_m": float(rng.uniform(2000, 15000)), "hill_height_m": float(rng.uniform(0, 250)),
        "seed": seed,
    }
    if rng.random() < ir_fraction:
        sky = rng.uniform(20, 140)
        sensor["vignette"] = float(rng.uniform(0.0, 0.6))  # uncooled thermal cores vignette strongly
        return SceneParams(
            mode="ir", sky_zenith_bgr=_grey(sky * rng.uniform(0.4, 0.9)), sky_horizon_bgr=_grey(sky + rng.uniform(10, 70)),
            sky_gradient_scale=float(rng.uniform(1.5, 6)), cloud_cover=float(rng.uniform(0, 0.8)),
            cloud_bgr=_grey(sky + rng.uniform(20, 110)), cloud_shadow_bgr=_grey(sky + rng.uniform(0, 50)),
            sun_glare=0.0,
            ground_bgr=_grey(rng.uniform(110, 220)), ground_alt_bgr=_grey(rng.uniform(110, 240)),
            tree_bgr=_grey(rng.uniform(140, 250)), hill_bgr=_grey(rng.uniform(90, 200)),
            visibility_m=float(rng.uniform(3000, 20000)),
            ir_target_level_dn=int(rng.choice([rng.integers(170, 256), rng.integers(0, 60)], p=[0.85, 0.15])),
            **sensor,
        )
    sky_kind = rng.choice(["clear", "hazy", "overcast", "evening"], p=[0.4, 0.25, 0.25, 0.1])
    if sky_kind == "clear":
        zen, hor, cover = (215, 145, 70), (240, 205, 170), rng.uniform(0.0, 0.5)
    elif sky_kind == "hazy":
        zen, hor, cover = (225, 185, 150), (235, 225, 215), rng.uniform(0.0, 0.6)
    elif sky_kind == "overcast":
        g = rng.uniform(150, 230)
        zen, hor, cover = (g, g - 3, g - 8), (g + 12, g + 10, g + 6), rng.uniform(0.6, 1.0)
    else:
        zen, hor, cover = (170, 110, 70), (140, 190, 245), rng.uniform(0.0, 0.5)
    green = rng.random() < 0.7
    ground = (60, 120, 90) if green else (90, 130, 150)
    ground_alt = (50, 140, 120) if green else (110, 160, 185)
    return SceneParams(
        mode="visible", sky_zenith_bgr=_jit(rng, zen, 0.08), sky_horizon_bgr=_jit(rng, hor, 0.05),
        sky_gradient_scale=float(rng.uniform(1.5, 6)), cloud_cover=float(cover),
        cloud_bgr=_jit(rng, (245, 245, 245), 0.04), cloud_shadow_bgr=_jit(rng, (172, 170, 168), 0.12),
        sun_glare=float(rng.uniform(0.3, 1.0)) if sky_kind != "overcast" else 0.1,
        ground_bgr=_jit(rng, ground, 0.2), ground_alt_bgr=_jit(rng, ground_alt, 0.2),
        tree_bgr=_jit(rng, (40, 65, 45), 0.3), hill_bgr=_jit(rng, (130, 120, 110), 0.2),
        visibility_m=float(rng.uniform(4000, 40000) if sky_kind != "hazy" else rng.uniform(2000, 8000)),
        **sensor,
    )
