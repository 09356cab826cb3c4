"""Synthetic camera: seeded OpenCV/NumPy renderer for training sets and the simulator's camera.

    from sitl.render import Renderer, RenderTarget, SceneParams, random_scene
    r = Renderer(Camera.default(), random_scene(rng))
    frame = r.render(cam_pos_ned_m, q_body_to_ned, [RenderTarget("quad", (50, 0, -30))], rng, t_s=0.0)
    frame.image  # H x W x 3 uint8 BGR;  frame.labels: [Label(xyxy_px, class_name, target_index, ...)]
"""

from sitl.render.models import CLASS_OF_KIND, CLASSES, DISTRACTOR_KINDS, DRONE_KINDS, KINDS, NOMINAL_SIZE_M
from sitl.render.renderer import Label, RenderCache, RenderedFrame, Renderer, RenderTarget, sim_camera
from sitl.render.scene import RenderError, SceneParams, random_scene

__all__ = [
    "CLASSES", "CLASS_OF_KIND", "DISTRACTOR_KINDS", "DRONE_KINDS", "KINDS", "NOMINAL_SIZE_M", "Label", "RenderCache",
    "RenderError", "RenderTarget", "RenderedFrame", "Renderer", "SceneParams", "random_scene", "sim_camera",
]
