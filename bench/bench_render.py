"""Synthetic camera throughput: frames/s at 1280x720 (simulator camera) and 640x512 (training renders)
with 1 and 5 targets, the pose changing every frame (so the background is recomputed), against a
baseline measured in the same run: one cv2.GaussianBlur (sigma 1) + one JPEG encode (q 90) of a frame of
the same size. Also the training-sample rate of sitl.render.dataset (new scene + camera every image)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import cv2
import numpy as np

from autonomy.camera.model import Camera, CameraIntrinsics, CameraMount
from autonomy.geometry import euler_to_quat
from sitl.render import RenderCache, Renderer, RenderTarget, SceneParams
from sitl.render.dataset import render_sample
from sitl.render.renderer import _textures

_KINDS = ("quad", "shahed", "bird", "fpv_quad", "helicopter")


def _time_per_call(fn, n: int) -> tuple[float, float]:
    """(wall s, process CPU s) per call; CPU time is less sensitive to other load on a shared machine."""
    fn(0)  # warm-up (numba compile, caches)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i + 1)
    return (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def run(out_dir: Path) -> dict:
    rng = np.random.default_rng(0)
    scene = SceneParams(cloud_cover=0.5, tree_cover=0.8, hill_height_m=100.0, noise_sigma_dn=2.0,
                        optics_blur_sigma_px=0.7, jpeg_quality=0)
    result: dict = {"frames": {}}
    for w, h in ((1280, 720), (640, 512)):
        cam = Camera(CameraIntrinsics.from_hfov(w, h, 70.0), CameraMount())
        frame = np.full((h, w, 3), 128, np.uint8)
        frame[: h // 2] = (200, 160, 120)

        def baseline(_i: int, frame=frame) -> None:
            cv2.imencode(".jpg", cv2.GaussianBlur(frame, (0, 0), 1.0), [cv2.IMWRITE_JPEG_QUALITY, 90])

        t_base, c_base = _time_per_call(baseline, 30)
        renderer = Renderer(cam, scene)
        for n_targets in (1, 5):
            targets = [RenderTarget(_KINDS[k], (60.0 + 80 * k, 8.0 * (k - 2), -40.0 - 3 * k),
                                    euler_to_quat(0.0, 0.0, 0.3 * k)) for k in range(n_targets)]

            def render(i: int, renderer=renderer, targets=targets) -> None:
                q = euler_to_quat(0.05 * math.sin(0.3 * i), -0.2 + 0.002 * i, 0.01 * i)
                renderer.render((0.5 * i, 0.0, -30.0), q, targets, rng, t_s=i / 30.0)

            t, c = _time_per_call(render, 30)
            key = f"{w}x{h}_{n_targets}t"
            result["frames"][key] = {"render_ms": 1e3 * t, "fps": 1.0 / t, "baseline_ms": 1e3 * t_base,
                                     "ratio_to_baseline": t / t_base, "render_cpu_ms": 1e3 * c,
                                     "baseline_cpu_ms": 1e3 * c_base, "cpu_ratio_to_baseline": c / c_base}
            print(f"render {w}x{h}, {n_targets} target(s): {1e3 * t:6.1f} ms/frame = {1 / t:5.1f} fps "
                  f"(CPU {1e3 * c:5.1f} ms); baseline blur+JPEG {1e3 * t_base:5.1f} ms (CPU {1e3 * c_base:4.1f}); "
                  f"ratio {t / t_base:4.1f}x (CPU {c / c_base:4.1f}x)", flush=True)
    # training samples as make_dataset draws them: new scene, camera and Renderer every image, 640x512,
    # with a shared RenderCache whose texture pool (24 seeds) is already built
    srng = np.random.default_rng(1)
    cache = RenderCache()
    for seed in range(24):  # fill the texture pool as a long make_dataset run has
        cache.get(("textures", seed), lambda seed=seed: _textures(seed))
    t_sample, c_sample = _time_per_call(lambda _i: render_sample(srng, (640, 512), cache=cache), 30)
    result["dataset_sample_ms_640x512"] = 1e3 * t_sample
    result["dataset_images_per_s"] = 1.0 / t_sample
    result["dataset_sample_cpu_ms_640x512"] = 1e3 * c_sample
    print(f"dataset sample 640x512 (new scene each, shared cache, lens tables built on first use): "
          f"{1e3 * t_sample:.1f} ms (CPU {1e3 * c_sample:.1f}) = {1 / t_sample:.1f} images/s", flush=True)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(Path("out/bench")), indent=2))
