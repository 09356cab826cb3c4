"""autonomy.perception: ONNX Runtime detector (our centre-heatmap model or YOLOv5/v8/v11 exports).

    from autonomy.perception import Detector, DetectorConfig
    det = Detector(DetectorConfig(model_path="models/detector.onnx"))
    dets = det.detect(frame_bgr, t_capture_s)          # autonomy.types.Detections, frame pixels
    dets = det.detect_roi(frame_bgr, (u_px, v_px), 192)  # native-resolution re-detection near a track
"""

from autonomy.perception.config import DEFAULT_MODEL_PATH, DetectorConfig
from autonomy.perception.detector import Detector
from autonomy.perception.errors import FrameError, ModelError, PerceptionError

__all__ = ["DEFAULT_MODEL_PATH", "Detector", "DetectorConfig", "FrameError", "ModelError", "PerceptionError"]
