"""Camera model: intrinsics, Brown-Conrady distortion, mount extrinsics, pixel <-> bearing <-> NED.

Frames:
- camera optical frame "cam": x right, y down, z forward along the optical axis (OpenCV convention).
- body frame FRD; world NED (see :mod:`autonomy.geometry`).
- pixels: u to the right, v down, origin at the top-left corner of the top-left pixel's centre (OpenCV).

Distortion is OpenCV's 5-parameter model (k1, k2, p1, p2, k3) so that calibrations from
``cv2.calibrateCamera`` drop in unchanged.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autonomy.geometry import quat_to_rotmat

# cam (x right, y down, z fwd) -> body (x fwd, y right, z down) for a forward-looking, untilted camera.
_R_BODY_FROM_CAM_LEVEL = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraError(ValueError):
    """Invalid camera description or calibration."""


@dataclass(frozen=True)
class CameraIntrinsics:
    width_px: int
    height_px: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    dist_coeffs: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        vals = (self.fx_px, self.fy_px, self.cx_px, self.cy_px, *self.dist_coeffs)
        if self.width_px <= 0 or self.height_px <= 0:
            raise CameraError(f"image size must be positive, got {self.width_px}x{self.height_px}")
        if not all(math.isfinite(v) for v in vals) or self.fx_px <= 0 or self.fy_px <= 0:
            raise CameraError("focal lengths must be positive and all intrinsics finite")
        if len(self.dist_coeffs) != 5:
            raise CameraError("dist_coeffs must be (k1, k2, p1, p2, k3)")

    @classmethod
    def from_hfov(cls, width_px: int, height_px: int, hfov_deg: float) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre, no distortion."""
        if not 1.0 < hfov_deg < 179.0:
            raise CameraError(f"horizontal FOV must be in (1, 179) deg, got {hfov_deg}")
        fx = 0.5 * width_px / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(width_px, height_px, fx, fx, (width_px - 1) / 2.0, (height_px - 1) / 2.0)

    @property
    def k_matrix(self) -> np.ndarray:
        return np.array([[self.fx_px, 0, self.cx_px], [0, self.fy_px, self.cy_px], [0, 0, 1.0]])

    @property
    def hfov_rad(self) -> float:
        return 2.0 * math.atan(0.5 * self.width_px / self.fx_px)

    @property
    def vfov_rad(self) -> float:
        return 2.0 * math.atan(0.5 * self.height_px / self.fy_px)

    def scaled(self, width_px: int, height_px: int) -> CameraIntrinsics:
        """The same lens at another resolution (e.g. a downscaled detector input)."""
        sx, sy = width_px / self.width_px, height_px / self.height_px
        return CameraIntrinsics(
            width_px, height_px, self.fx_px * sx, self.fy_px * sy,
            (self.cx_px + 0.5) * sx - 0.5, (self.cy_px + 0.5) * sy - 0.5, self.dist_coeffs,
        )


def _distort_normalized(xy: np.ndarray, d: tuple[float, ...]) -> np.ndarray:
    k1, k2, p1, p2, k3 = d
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def _distortion_jacobian(xy: np.ndarray, d: tuple[float, ...]) -> np.ndarray:
    """d(distorted)/d(undistorted), shape (..., 2, 2)."""
    k1, k2, p1, p2, k3 = d
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
    d_radial = k1 + 2 * k2 * r2 + 3 * k3 * r2 * r2
    j = np.empty(xy.shape[:-1] + (2, 2))
    j[..., 0, 0] = radial + 2 * x * x * d_radial + 2 * p1 * y + 6 * p2 * x
    j[..., 0, 1] = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    j[..., 1, 0] = 2 * x * y * d_radial + 2 * p1 * x + 2 * p2 * y
    j[..., 1, 1] = radial + 2 * y * y * d_radial + 6 * p1 * y + 2 * p2 * x
    return j


def _undistort_normalized(xyd: np.ndarray, d: tuple[float, ...], iterations: int = 20) -> np.ndarray:
    """Invert the distortion by damped Newton steps (converges where OpenCV's fixed-point iteration diverges,
    e.g. strong barrel distortion at wide FOV). Points beyond the fold of the lens model, which have no
    inverse, come back as NaN so that callers see them instead of a wrong bearing."""
    if not any(d):
        return xyd
    xy = xyd.copy()
    for _ in range(iterations):
        err = _distort_normalized(xy, d) - xyd
        j = _distortion_jacobian(xy, d)
        det = j[..., 0, 0] * j[..., 1, 1] - j[..., 0, 1] * j[..., 1, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        dx = (j[..., 1, 1] * err[..., 0] - j[..., 0, 1] * err[..., 1]) / det
        dy = (-j[..., 1, 0] * err[..., 0] + j[..., 0, 0] * err[..., 1]) / det
        step = np.stack([dx, dy], axis=-1)
        # damping: never move more than the size of the current residual's scale allows
        n = np.linalg.norm(step, axis=-1, keepdims=True)
        limit = 0.5 * (1.0 + np.linalg.norm(xy, axis=-1, keepdims=True))
        xy = xy - np.where(n > limit, step * (limit / np.maximum(n, 1e-300)), step)
    resid = np.linalg.norm(_distort_normalized(xy, d) - xyd, axis=-1)
    ok = (resid < 1e-9) & np.all(_distortion_jacobian(xy, d)[..., [0, 1], [0, 1]] > 0, axis=-1)
    return np.where(ok[..., None], xy, np.nan)


def pixels_to_bearings_cam(intr: CameraIntrinsics, uv_px: np.ndarray) -> np.ndarray:
    """Unit bearing vectors in the camera optical frame for pixel(s). (..., 2) -> (..., 3)."""
    uv = np.asarray(uv_px, dtype=np.float64)
    xyd = np.stack([(uv[..., 0] - intr.cx_px) / intr.fx_px, (uv[..., 1] - intr.cy_px) / intr.fy_px], axis=-1)
    xy = _undistort_normalized(xyd, intr.dist_coeffs)
    b = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
    return b / np.linalg.norm(b, axis=-1, keepdims=True)


def bearings_cam_to_pixels(intr: CameraIntrinsics, bearing_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame direction(s) to pixels. Returns (uv_px (..., 2), in_front (...,) bool).

    Points behind the camera (z <= 0) get NaN pixels and ``in_front`` False.
    """
    b = np.asarray(bearing_cam, dtype=np.float64)
    z = b[..., 2]
    in_front = z > 1e-9
    zs = np.where(in_front, z, 1.0)
    xy = np.stack([b[..., 0] / zs, b[..., 1] / zs], axis=-1)
    xyd = _distort_normalized(xy, intr.dist_coeffs)
    uv = np.stack([xyd[..., 0] * intr.fx_px + intr.cx_px, xyd[..., 1] * intr.fy_px + intr.cy_px], axis=-1)
    uv = np.where(in_front[..., None], uv, np.nan)
    return uv, in_front


@dataclass(frozen=True)
class CameraMount:
    """Fixed mount: the camera looks along body +x, tilted up by ``tilt_up_rad``, then panned right by
    ``pan_right_rad`` (DESIGN.md default: forward-fixed, 20 deg up-tilt)."""

    tilt_up_rad: float = math.radians(20.0)
    pan_right_rad: float = 0.0
    offset_body_m: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def r_body_from_cam(self) -> np.ndarray:
        t, p = self.tilt_up_rad, self.pan_right_rad
        # nose-up rotation about body y (positive pitch), then yaw right about body z.
        r_tilt = np.array([[math.cos(t), 0, math.sin(t)], [0, 1, 0], [-math.sin(t), 0, math.cos(t)]])
        r_pan = np.array([[math.cos(p), -math.sin(p), 0], [math.sin(p), math.cos(p), 0], [0, 0, 1]])
        return r_pan @ r_tilt @ _R_BODY_FROM_CAM_LEVEL


@dataclass(frozen=True)
class Camera:
    intrinsics: CameraIntrinsics
    mount: CameraMount = field(default_factory=CameraMount)
    fps: float = 30.0

    @classmethod
    def default(cls) -> Camera:
        """DESIGN.md default: 1280x720 @ 30 fps, 70 deg horizontal FOV, 20 deg up-tilt."""
        return cls(CameraIntrinsics.from_hfov(1280, 720, 70.0), CameraMount(), 30.0)

    def r_ned_from_cam(self, q_body_to_ned: np.ndarray) -> np.ndarray:
        return quat_to_rotmat(q_body_to_ned) @ self.mount.r_body_from_cam

    def pixels_to_los_ned(self, uv_px: np.ndarray, q_body_to_ned: np.ndarray) -> np.ndarray:
        """Unit line-of-sight vector(s) in NED for pixel(s), given the vehicle attitude at capture."""
        b_cam = pixels_to_bearings_cam(self.intrinsics, uv_px)
        return b_cam @ self.r_ned_from_cam(q_body_to_ned).T

    def los_ned_to_pixels(self, los_ned: np.ndarray, q_body_to_ned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel(s) of NED direction(s); also whether each is in front of the camera."""
        b_cam = np.asarray(los_ned, dtype=np.float64) @ self.r_ned_from_cam(q_body_to_ned)
        return bearings_cam_to_pixels(self.intrinsics, b_cam)

    def in_image(self, uv_px: np.ndarray, margin_px: float = 0.0) -> np.ndarray:
        uv = np.asarray(uv_px, dtype=np.float64)
        w, h = self.intrinsics.width_px, self.intrinsics.height_px
        with np.errstate(invalid="ignore"):
            return (
                (uv[..., 0] >= -0.5 + margin_px) & (uv[..., 0] <= w - 0.5 - margin_px)
                & (uv[..., 1] >= -0.5 + margin_px) & (uv[..., 1] <= h - 0.5 - margin_px)
            )


def load_camera_toml(path: str | Path) -> Camera:
    """Load a camera from TOML::

        [camera]
        width_px = 1280
        height_px = 720
        hfov_deg = 70.0            # or fx_px, fy_px, cx_px, cy_px
        dist_coeffs = [0, 0, 0, 0, 0]
        fps = 30.0
        [camera.mount]
        tilt_up_deg = 20.0
        pan_right_deg = 0.0
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise CameraError(f"camera file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CameraError(f"{path}: malformed TOML: {exc}") from exc
    return camera_from_dict(doc.get("camera", doc), source=str(path))


def camera_from_dict(c: dict, source: str = "config") -> Camera:
    try:
        w, h = int(c["width_px"]), int(c["height_px"])
        dist = tuple(float(x) for x in c.get("dist_coeffs", (0, 0, 0, 0, 0)))
        if "fx_px" in c:
            intr = CameraIntrinsics(
                w, h, float(c["fx_px"]), float(c.get("fy_px", c["fx_px"])),
                float(c.get("cx_px", (w - 1) / 2)), float(c.get("cy_px", (h - 1) / 2)), dist,
            )
        else:
            base = CameraIntrinsics.from_hfov(w, h, float(c.get("hfov_deg", 70.0)))
            intr = CameraIntrinsics(w, h, base.fx_px, base.fy_px, base.cx_px, base.cy_px, dist)
        m = c.get("mount", {})
        mount = CameraMount(
            math.radians(float(m.get("tilt_up_deg", 20.0))), math.radians(float(m.get("pan_right_deg", 0.0)))
        )
        return Camera(intr, mount, float(c.get("fps", 30.0)))
    except KeyError as exc:
        raise CameraError(f"{source}: camera is missing field {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise CameraError(f"{source}: bad camera value: {exc}") from exc
