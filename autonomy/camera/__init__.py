"""Camera sources and the camera model (intrinsics, distortion, mount, pixel <-> bearing)."""

from autonomy.camera.model import Camera, CameraError, CameraIntrinsics, CameraMount

__all__ = ["Camera", "CameraError", "CameraIntrinsics", "CameraMount"]
