"""Training-set generator: synthetic renders + YOLO labels, with the interceptor's target mix.

Layout written to ``out_dir``::

    images/000000.jpg ...      BGR renders (JPEG)
    labels/000000.txt ...      YOLO: "<class> <cx> <cy> <w> <h>" normalised to the image, one per target
    classes.txt                one class name per line, index order = CLASSES
    meta.jsonl                 per image: scene mode, camera hfov, and each label with pixels, kind,
                               range and visible fraction (for per-size / per-range evaluation)

Mix (per image): ~10% empty frames, otherwise 1-4 objects; ~70% drones (quad, X8, FPV, Shahed, fixed
wing), ~30% distractors (bird, airliner, helicopter); object size drawn log-uniformly 4-40 px for ~80% of
objects and 40-300 px for the rest; the camera looks between 10 deg below and 35 deg above the horizon
with random roll, at 2-300 m altitude; ~20% grey IR-like scenes. ``--homing-fraction F`` renders that share
of frames as the interceptor sees them in terminal homing instead (:func:`homing_view`); ``--sim-fraction F``
that share as the lockstep simulator's own camera sees its own scenes (:func:`sim_view_sample`), the domain the
closed-loop tests fly in.

CLI: ``python -m sitl.render.dataset --out DIR --n N --seed S [--width 640 --height 512] [--workers K]
[--empty-fraction F] [--ir-fraction F] [--distractor-fraction F] [--small-fraction F] [--homing-fraction F]
[--sim-fraction F]``
(same output for any K; ~10 images/s per core at 640x512).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from autonomy.camera.model import (
    Camera,
    CameraIntrinsics,
    CameraMount,
    bearings_cam_to_pixels,
    pixels_to_bearings_cam,
)
from autonomy.geometry import euler_to_quat
from sitl.render.models import CLASSES, DEFAULT_BGR, NOMINAL_SIZE_M
from sitl.render.renderer import RenderCache, RenderedFrame, Renderer, RenderTarget, sim_camera
from sitl.render.scene import RenderError, SceneParams, random_scene

_DRONE_WEIGHTS = {"quad": 0.30, "quad_x8": 0.12, "fpv_quad": 0.18, "shahed": 0.25, "fixed_wing": 0.15}
_DISTRACTOR_WEIGHTS = {"bird": 0.55, "airliner": 0.2, "helicopter": 0.25}
_PALETTE = {
    "quad": [(235, 235, 235), (40, 40, 40), (150, 150, 150), (60, 60, 60), (200, 205, 210)],
    "quad_x8": [(30, 30, 30), (60, 60, 60), (200, 200, 200)],
    "fpv_quad": [(40, 40, 40), (30, 30, 160), (30, 120, 200), (70, 70, 70)],
    "shahed": [(150, 150, 145), (90, 90, 90), (40, 40, 40), (210, 210, 205), (100, 120, 110)],
    "fixed_wing": [(225, 225, 225), (100, 110, 100), (60, 60, 60), (180, 180, 180)],
    "bird": [(60, 60, 60), (30, 30, 30), (200, 200, 200), (110, 115, 120), (60, 80, 100)],
    "airliner": [(240, 240, 240), (220, 220, 225), (180, 180, 185)],
    "helicopter": [(60, 75, 60), (40, 40, 40), (220, 220, 220), (40, 40, 170), (150, 100, 40)],
}


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    p = np.asarray([weights[k] for k in keys], float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def _undistortion_ok(intr: CameraIntrinsics) -> bool:
    """The camera model's pixel -> bearing -> pixel round trip holds at the image border."""
    w, h = intr.width_px, intr.height_px
    uv = np.array([[-0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h / 2], [w / 2, -0.5], [w - 0.5, -0.5]])
    with np.errstate(all="ignore"):
        back, front = bearings_cam_to_pixels(intr, pixels_to_bearings_cam(intr, uv))
    return bool(np.all(front) and np.all(np.abs(back - uv) < 0.05))


def random_camera(rng: np.random.Generator, image_size: tuple[int, int]) -> Camera:
    """A camera of the requested size with a random FOV (30-90 deg in 5 deg steps), half of them with
    mild barrel or pincushion distortion."""
    w, h = image_size
    # a discrete set of lenses (13 FOVs x 4 distortions) so that a RenderCache can share ray tables
    base = CameraIntrinsics.from_hfov(w, h, float(rng.choice(np.linspace(30.0, 90.0, 13))))
    dist = ((0.0,) * 5, (0.0,) * 5, (-0.2, 0.05, 0.0, 0.0, 0.0), (0.08, -0.02, 0.0, 0.0, 0.0))[int(rng.integers(4))]
    intr = CameraIntrinsics(w, h, base.fx_px, base.fy_px, base.cx_px, base.cy_px, dist)
    if not _undistortion_ok(intr):  # strong barrel at a wide FOV: the camera model cannot invert it
        intr = CameraIntrinsics(w, h, base.fx_px, base.fy_px, base.cx_px, base.cy_px)
    return Camera(intr, CameraMount(tilt_up_rad=0.0), 30.0)


@dataclasses.dataclass(frozen=True)
class DatasetMix:
    """What a training set contains (fractions in 0..1)."""

    empty_fraction: float = 0.1  # frames drawn with no object
    ir_fraction: float = 0.2  # grey thermal-like scenes
    distractor_fraction: float = 0.3  # objects that are birds, airliners, helicopters
    small_fraction: float = 0.8  # objects drawn 4-40 px (the rest 40-300 px)
    max_targets: int = 4
    homing_fraction: float = 0.0  # frames seen as in terminal homing (:func:`homing_view`: ground, roll, blur)
    sim_fraction: float = 0.0  # frames seen by the simulator's own camera in its own scenes (:func:`sim_view_sample`)

    def __post_init__(self) -> None:
        fr = (self.empty_fraction, self.ir_fraction, self.distractor_fraction, self.small_fraction,
              self.homing_fraction, self.sim_fraction)
        if not all(0.0 <= f <= 1.0 for f in fr) or not 1 <= self.max_targets <= 4:
            raise RenderError("mix fractions must be in [0, 1] and max_targets in 1..4")


def random_target(rng: np.random.Generator, camera: Camera, cam_pos: np.ndarray, q_cam: np.ndarray,
                  kind: str | None = None, min_alt_m: float = 2.0, distractor_fraction: float = 0.3,
                  small_fraction: float = 0.8) -> RenderTarget | None:
    """A target of ``kind`` (random if None) placed on a random pixel at the range that gives it a
    drawn pixel size (mostly 4-40 px). None if no placement above the ground was found."""
    if kind is None:
        kind = _pick(rng, _DISTRACTOR_WEIGHTS) if rng.random() < distractor_fraction else _pick(rng, _DRONE_WEIGHTS)
    intr = camera.intrinsics
    scale = float(rng.uniform(0.8, 1.25)) if kind != "bird" else float(rng.uniform(0.35, 1.6))
    size_m = NOMINAL_SIZE_M[kind] * scale
    px = math.exp(rng.uniform(math.log(4.0), math.log(40.0))) if rng.random() < small_fraction else \
        math.exp(rng.uniform(math.log(40.0), math.log(300.0)))
    px = min(px, 0.9 * min(intr.width_px, intr.height_px))
    range_m = size_m * intr.fx_px / px
    for _ in range(20):
        uv = np.array([rng.uniform(-0.02, 1.02) * intr.width_px, rng.uniform(-0.02, 1.02) * intr.height_px])
        los = camera.pixels_to_los_ned(uv, q_cam)
        pos = cam_pos + los * range_m
        if -pos[2] >= min_alt_m + 0.5 * size_m:
            break
    else:
        return None
    if kind in ("quad", "quad_x8", "fpv_quad"):
        roll, pitch = rng.normal(0, 0.25, 2)
        if kind == "fpv_quad":
            pitch -= abs(rng.normal(0.4, 0.3))
    elif kind in ("shahed", "fixed_wing", "airliner"):
        roll, pitch = rng.normal(0, 0.3), rng.normal(0, 0.1)
    else:
        roll, pitch = rng.normal(0, 0.2, 2)
    q = euler_to_quat(float(roll), float(pitch), float(rng.uniform(-math.pi, math.pi)))
    pal = _PALETTE[kind]
    color = pal[int(rng.integers(len(pal)))] if rng.random() < 0.8 else DEFAULT_BGR[kind]
    return RenderTarget(kind, tuple(float(v) for v in pos), tuple(float(v) for v in q), scale,
                        tuple(int(c) for c in color), float(rng.uniform(0, 2 * math.pi)))


def random_view(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Camera position (NED, m) and attitude: 2-300 m up, looking -10..+35 deg, roll +-20 deg."""
    alt = math.exp(rng.uniform(math.log(2.0), math.log(300.0)))
    pos = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), -alt])
    q = euler_to_quat(float(rng.normal(0, math.radians(8)) if rng.random() < 0.8 else rng.uniform(-0.35, 0.35)),
                      float(rng.uniform(math.radians(-10), math.radians(35))), float(rng.uniform(-math.pi, math.pi)))
    return pos, q


def homing_view(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A view as the interceptor's camera has it in terminal homing: 30-300 m up, looking 50 deg below to
    20 deg above the horizon (the ground and the tree line fill much of the frame), roll +-45 deg, and the
    body rate (rad/s, FRD) whose rotation blur the frame gets. Returns (position NED m, attitude, rate)."""
    alt = math.exp(rng.uniform(math.log(30.0), math.log(300.0)))
    pos = np.array([rng.uniform(-500, 500), rng.uniform(-500, 500), -alt])
    q = euler_to_quat(float(rng.uniform(-0.8, 0.8)), float(rng.uniform(math.radians(-50), math.radians(20))),
                      float(rng.uniform(-math.pi, math.pi)))
    return pos, q, rng.normal(0.0, 0.5, 3)


# the lockstep simulator's scenes are SceneParams(seed=s) with the scenario's seed s (the tests fly 0-7 and
# 1000-1007): sim-view training frames take their textures from seeds far from those
SIM_SCENE_SEED0 = 50_000
SIM_SCENE_POOL = 64
_SIM_TARGET_WEIGHTS = {"shahed": 0.35, "fixed_wing": 0.15, "quad": 0.25, "fpv_quad": 0.25}
# ranges (m) drawn log-uniformly per kind: out to where the object still covers a few pixels
_SIM_RANGE_M = {"shahed": (25.0, 400.0), "fixed_wing": (25.0, 400.0), "quad": (15.0, 150.0),
                "fpv_quad": (12.0, 90.0), "bird": (20.0, 100.0)}


def _sim_target(rng: np.random.Generator, kind: str, pos_ned_m: np.ndarray, i: int,
                heading_rad: float) -> RenderTarget:
    """A target as the lockstep world draws it: about its nominal size (birds 1 m), level with some bank."""
    scale = float(rng.uniform(0.8, 1.2)) if kind == "bird" else float(rng.uniform(0.85, 1.15))
    q = euler_to_quat(float(rng.normal(0, 0.25)), float(rng.normal(0, 0.1)), float(heading_rad))
    pal = _PALETTE[kind]
    color = DEFAULT_BGR[kind] if rng.random() < 0.5 else pal[int(rng.integers(len(pal)))]
    return RenderTarget(kind, tuple(float(v) for v in pos_ned_m), tuple(float(v) for v in q), scale,
                        tuple(int(c) for c in color), float(rng.uniform(0, 2 * math.pi)) + i)


def sim_view_sample(rng: np.random.Generator, image_size: tuple[int, int] = (640, 512),
                    cache: RenderCache | None = None):
    """A frame as the lockstep simulator's camera has it (:func:`sitl.render.sim_camera`, 1280x720, 70 deg HFOV,
    45 deg up-tilt, the default scene look with textures of seeds ``SIM_SCENE_SEED0`` + 0..63), cut to
    ``image_size`` at native resolution around the object (the pipeline's ROI re-detection sees these pixels):

    * 15 %: no object, camera 20-75 deg below the horizon at 40-250 m: the ground clutter of terminal homing;
    * 10 %: a bird alone (a hard negative) at 20-100 m, otherwise a Shahed / fixed wing at 25-400 m, a quad at
      15-150 m or an FPV quad at 12-90 m (log-uniform); 30 deg below to 15 deg above the camera, near the image
      centre as in homing (the vehicle points the camera at it), half of them seen nose- or tail-on (as in a
      chase or a head-on pass), roll +-60 deg, body rates ~0.6 rad/s (blur);
    * 30 % of the frames with a drone within 120 m get 1-3 birds within ~25 m of it (the bird-clutter family).

    Birds are the world's (1 m, +-20 %) and only where they cover ~8 px or more: a first candidate trained with
    birds out to 400 m called the far Shahed (a few pixels, as a far bird) "bird" in most frames, and the
    tracker's class vote then dropped it in the closed loop (MODEL_CARD.md, session 15).

    Returns what :func:`render_sample` does: (RenderedFrame with the crop and its labels, targets, scene, camera)."""
    camera = sim_camera()
    scene = SceneParams(seed=SIM_SCENE_SEED0 + int(rng.integers(SIM_SCENE_POOL)))
    w, h = camera.intrinsics.width_px, camera.intrinsics.height_px
    cw, ch = min(image_size[0], w), min(image_size[1], h)
    alt_m = float(rng.uniform(40.0, 250.0))
    cam_pos = np.array([rng.uniform(-300, 300), rng.uniform(-300, 300), -alt_m])
    yaw = float(rng.uniform(-math.pi, math.pi))
    roll = math.radians(rng.uniform(-60, 60))
    targets: list[RenderTarget] = []
    u = rng.random()
    if u < 0.15:
        q = euler_to_quat(roll, math.radians(rng.uniform(-75, -20)), yaw)
    else:
        kind = "bird" if u < 0.25 else _pick(rng, _SIM_TARGET_WEIGHTS)
        lo_m, hi_m = _SIM_RANGE_M[kind]
        range_m = math.exp(rng.uniform(math.log(lo_m), math.log(hi_m)))
        el_min = -math.asin(min(1.0, (alt_m - 5.0) / range_m))
        el = max(math.radians(rng.uniform(-30, 15)), el_min)
        az = yaw + math.radians(rng.uniform(-15, 15))
        los = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), -math.sin(el)])
        pos = cam_pos + range_m * los
        q = euler_to_quat(roll, el - camera.mount.tilt_up_rad + math.radians(rng.uniform(-12, 12)), yaw)
        # half nose- or tail-on (a chase, a head-on pass: the thin silhouette of the last seconds), half any heading
        heading = az + math.pi * int(rng.integers(2)) + math.radians(rng.normal(0, 15)) if rng.random() < 0.5 \
            else float(rng.uniform(-math.pi, math.pi))
        targets.append(_sim_target(rng, kind, pos, 0, heading))
        if kind != "bird" and range_m <= 120.0 and rng.random() < 0.3:
            for i in range(int(rng.integers(1, 4))):
                p = pos + rng.normal(0.0, 15.0, 3)
                p[2] = min(p[2], -3.0)
                targets.append(_sim_target(rng, "bird", p, i + 1, float(rng.uniform(-math.pi, math.pi))))
    renderer = Renderer(camera, scene, cache=cache)
    frame = renderer.render(cam_pos, q, targets, rng, t_s=float(rng.uniform(0, 10)),
                            rate_body_radps=rng.normal(0.0, 0.6, 3))
    if frame.labels:
        x0, y0, x1, y1 = frame.labels[0].xyxy_px
        cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    ox = int(np.clip(round(cx - rng.uniform(0.15, 0.85) * cw), 0, w - cw))
    oy = int(np.clip(round(cy - rng.uniform(0.15, 0.85) * ch), 0, h - ch))
    labels = []
    for lab in frame.labels:
        bx0, by0, bx1, by1 = lab.xyxy_px
        mx, my = 0.5 * (bx0 + bx1) - ox, 0.5 * (by0 + by1) - oy
        if 0 <= mx < cw and 0 <= my < ch:
            box = (max(bx0 - ox, -0.5), max(by0 - oy, -0.5), min(bx1 - ox, cw - 0.5), min(by1 - oy, ch - 0.5))
            labels.append(dataclasses.replace(lab, xyxy_px=tuple(float(v) for v in box)))
    crop = np.ascontiguousarray(frame.image[oy:oy + ch, ox:ox + cw])
    return RenderedFrame(crop, labels, frame.excluded), targets, scene, camera


def yolo_lines(labels, width_px: int, height_px: int) -> list[str]:
    """YOLO lines for usable labels; camera-model pixels (centre of pixel 0 at 0) -> [0, 1] edges."""
    out = []
    for lab in labels:
        x0, y0, x1, y1 = lab.xyxy_px
        cx, cy = (0.5 * (x0 + x1) + 0.5) / width_px, (0.5 * (y0 + y1) + 0.5) / height_px
        out.append(f"{CLASSES.index(lab.class_name)} {cx:.6f} {cy:.6f} {(x1 - x0) / width_px:.6f} "
                   f"{(y1 - y0) / height_px:.6f}")
    return out


def render_sample(rng: np.random.Generator, image_size: tuple[int, int] = (640, 512),
                  mix: DatasetMix = DatasetMix(), cache: RenderCache | None = None, texture_pool: int = 24):
    """One random training sample: (RenderedFrame, targets, scene, camera). With a shared ``cache``,
    the procedural textures come from a pool of ``texture_pool`` seeds (everything else about the
    scene still varies continuously), which makes a sample several times cheaper."""
    if mix.sim_fraction > 0 and rng.random() < mix.sim_fraction:
        return sim_view_sample(rng, image_size, cache)
    scene = random_scene(rng, ir_fraction=mix.ir_fraction)
    if cache is not None:
        scene = dataclasses.replace(scene, seed=int(rng.integers(0, texture_pool)))
    camera = random_camera(rng, image_size)
    rate = None
    if mix.homing_fraction > 0 and rng.random() < mix.homing_fraction:
        cam_pos, q, rate = homing_view(rng)
    else:
        cam_pos, q = random_view(rng)
    p_n = np.array([0.6, 0.2, 0.12, 0.08][:mix.max_targets])
    n = 0 if rng.random() < mix.empty_fraction else int(rng.choice(np.arange(1, mix.max_targets + 1),
                                                                   p=p_n / p_n.sum()))
    targets = [random_target(rng, camera, cam_pos, q, distractor_fraction=mix.distractor_fraction,
                             small_fraction=mix.small_fraction) for _ in range(n)]
    targets = [t for t in targets if t is not None]
    renderer = Renderer(camera, scene, cache=cache)
    frame = renderer.render(cam_pos, q, targets, rng, t_s=float(rng.uniform(0, 10)), rate_body_radps=rate)
    return frame, targets, scene, camera


def _write_one(out: Path, i: int, base_seed: int, image_size, mix: DatasetMix, jpeg_quality: int,
               cache: RenderCache) -> dict:
    """Render and write image ``i`` (its own generator: results do not depend on the worker count)."""
    rng = np.random.default_rng([base_seed, i])
    frame, targets, scene, camera = render_sample(rng, image_size, mix, cache=cache)
    name = f"{i:06d}"
    cv2.imwrite(str(out / "images" / f"{name}.jpg"), frame.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    lines = yolo_lines(frame.labels, frame.image.shape[1], frame.image.shape[0])  # a sim view may be cut smaller
    (out / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return {
        "image": f"images/{name}.jpg", "mode": scene.mode,
        "hfov_deg": round(math.degrees(camera.intrinsics.hfov_rad), 2),
        "labels": [{"xyxy_px": [round(v, 2) for v in lab.xyxy_px], "class": lab.class_name,
                    "kind": targets[lab.target_index].kind, "range_m": round(lab.range_m, 1),
                    "visible_fraction": round(lab.visible_fraction, 3)} for lab in frame.labels],
        "excluded": [{"kind": targets[lab.target_index].kind, "reason": lab.excluded} for lab in frame.excluded],
    }


def _worker(args) -> list[dict]:
    out, indices, base_seed, image_size, mix, jpeg_quality = args
    cache = RenderCache(max_entries=96)
    return [_write_one(out, i, base_seed, image_size, mix, jpeg_quality, cache) for i in indices]


def make_dataset(out_dir: str | Path, n_images: int, rng: np.random.Generator,
                 image_size: tuple[int, int] = (640, 512), empty_fraction: float = 0.1,
                 ir_fraction: float = 0.2, jpeg_quality: int = 92, progress: bool = False,
                 workers: int = 1, distractor_fraction: float = 0.3, small_fraction: float = 0.8,
                 homing_fraction: float = 0.0, sim_fraction: float = 0.0) -> dict:
    """Write ``n_images`` renders with YOLO labels into ``out_dir`` (see module docstring).

    One seed is drawn from ``rng``; image ``i`` uses ``default_rng([seed, i])``, so the output is the
    same for any ``workers`` (processes). Returns counts: images, labels per class, empty images,
    excluded (too small / outside) targets, IR images."""
    if n_images < 0 or workers < 1:
        raise RenderError("n_images must be >= 0 and workers >= 1")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    mix = DatasetMix(empty_fraction, ir_fraction, distractor_fraction, small_fraction,
                     homing_fraction=homing_fraction, sim_fraction=sim_fraction)
    base_seed = int(rng.integers(0, 2**62))
    chunk = 50
    jobs = [(out, range(s, min(s + chunk, n_images)), base_seed, tuple(image_size), mix, jpeg_quality)
            for s in range(0, n_images, chunk)]
    metas: list[dict] = []
    t0 = time.perf_counter()

    def report() -> None:
        if progress:
            el = max(time.perf_counter() - t0, 1e-9)
            print(f"\r{len(metas)}/{n_images} images  {el:.0f} s  ({len(metas) / el:.1f} img/s)", end="",
                  file=sys.stderr, flush=True)

    if workers == 1:
        cache = RenderCache(max_entries=96)
        for i in range(n_images):
            metas.append(_write_one(out, i, base_seed, tuple(image_size), mix, jpeg_quality, cache))
            if (i + 1) % 10 == 0 or i + 1 == n_images:
                report()
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            for part in pool.imap(_worker, jobs):
                metas.extend(part)
                report()
    if progress:
        print(file=sys.stderr)
    stats = {"images": 0, "empty": 0, "excluded": 0, "ir": 0, **{f"n_{c}": 0 for c in CLASSES}}
    with open(out / "meta.jsonl", "w") as meta:
        for m in metas:
            meta.write(json.dumps(m) + "\n")
            stats["images"] += 1
            stats["empty"] += not m["labels"]
            stats["excluded"] += len(m["excluded"])
            stats["ir"] += m["mode"] == "ir"
            for lab in m["labels"]:
                stats[f"n_{lab['class']}"] += 1
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sitl.render.dataset", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--n", type=int, required=True, help="number of images")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--empty-fraction", type=float, default=0.1)
    ap.add_argument("--ir-fraction", type=float, default=0.2)
    ap.add_argument("--distractor-fraction", type=float, default=0.3, help="share of objects that are not drones")
    ap.add_argument("--small-fraction", type=float, default=0.8, help="share of objects drawn 4-40 px")
    ap.add_argument("--homing-fraction", type=float, default=0.0,
                    help="share of frames seen as in terminal homing (ground, tree line, roll, rotation blur)")
    ap.add_argument("--sim-fraction", type=float, default=0.0,
                    help="share of frames seen by the simulator's own camera in its own scenes, cut around the "
                         "object at native resolution (sim_view_sample: ground clutter, birds, Shahed/quads 25-400 m)")
    ap.add_argument("--workers", type=int, default=1, help="processes (output does not depend on it)")
    args = ap.parse_args(argv)
    stats = make_dataset(args.out, args.n, np.random.default_rng(args.seed), (args.width, args.height),
                         args.empty_fraction, args.ir_fraction, progress=True, workers=args.workers,
                         distractor_fraction=args.distractor_fraction, small_fraction=args.small_fraction,
                         homing_fraction=args.homing_fraction, sim_fraction=args.sim_fraction)
    print(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
