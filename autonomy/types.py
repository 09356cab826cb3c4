"""Value types that cross room boundaries (bridge -> tracker -> guidance -> engagement).

Plain frozen dataclasses and enums, no I/O and no pymavlink: every room may import this module.
Units and frames are in the field names (DESIGN.md section 4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Autopilot(enum.Enum):
    PX4 = "px4"
    ARDUPILOT = "ardupilot"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class VehicleState:
    """The vehicle as the autopilot reports it at ``t_s`` (autopilot clock mapped to ours, seconds).

    ``q_body_to_ned`` is the Hamilton quaternion [w, x, y, z] rotating body FRD vectors into NED.
    ``pos_ned_m`` is relative to the autopilot's local (EKF) origin. ``mode`` is the flavour's mode name
    (e.g. "OFFBOARD", "AUTO.RTL", "GUIDED", "LOITER"); ``landed`` is None when the autopilot does not say.
    """

    t_s: float
    pos_ned_m: np.ndarray
    vel_ned_mps: np.ndarray
    q_body_to_ned: np.ndarray
    rate_body_radps: np.ndarray = field(default_factory=lambda: np.zeros(3))
    armed: bool = False
    mode: str = "UNKNOWN"
    autopilot: Autopilot = Autopilot.UNKNOWN
    landed: bool | None = None
    origin_lat_lon_alt: tuple[float, float, float] | None = None  # deg, deg, m AMSL of the NED origin


@dataclass(frozen=True)
class TargetCue:
    """A hostile aerial track reported from the ground (radar, acoustic net, operator click), in our NED.

    ``t_s`` is when the report was valid (our clock). ``target_id`` is the ground system's track number.
    ``pos_std_m`` / ``vel_std_mps`` are 1-sigma isotropic uncertainties.
    """

    t_s: float
    target_id: int
    pos_ned_m: np.ndarray
    vel_ned_mps: np.ndarray
    pos_std_m: float = 10.0
    vel_std_mps: float = 3.0
    source: str = "ground"


class OperatorCommandKind(enum.Enum):
    AUTHORIZE = "authorize"  # engage exactly the track named by track_id
    DENY = "deny"            # withdraw/refuse authorization for that track (or all when track_id is None)
    ABORT = "abort"          # stop the engagement now: brake, hold, then RTL. Always wins.
    RETURN = "return"        # end the mission and return to launch


@dataclass(frozen=True)
class OperatorCommand:
    kind: OperatorCommandKind
    t_s: float
    track_id: int | None = None
    valid_for_s: float = 30.0   # an authorization expires after this
    signed: bool = False         # arrived in a correctly signed MAVLink frame
    source_sysid: int = 255
    source_compid: int = 190


@dataclass(frozen=True)
class Detections:
    """Detector output for one frame, in pixels of the input frame.

    ``xyxy_px`` (N, 4) float64 boxes; ``scores`` (N,); ``class_ids`` (N,) int64 indices into
    ``class_names``. ``t_capture_s`` is the frame's capture time on our clock.
    """

    t_capture_s: float
    xyxy_px: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...] = ("drone",)

    def __post_init__(self) -> None:
        n = len(self.scores)
        if self.xyxy_px.shape != (n, 4) or self.class_ids.shape != (n,):
            raise ValueError(
                f"inconsistent detections: boxes {self.xyxy_px.shape}, scores {self.scores.shape}, "
                f"classes {self.class_ids.shape}"
            )

    @classmethod
    def empty(cls, t_capture_s: float, class_names: tuple[str, ...] = ("drone",)) -> Detections:
        return cls(t_capture_s, np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64), class_names)

    def __len__(self) -> int:
        return len(self.scores)


class SetpointFrame(enum.Enum):
    LOCAL_NED = "local_ned"  # MAV_FRAME_LOCAL_NED (1): world NED axes, position from the local origin
    BODY_NED = "body_ned"    # MAV_FRAME_BODY_NED (8): NED axes rotated by heading; position not allowed on PX4


@dataclass(frozen=True)
class Setpoint:
    """What the companion asks the autopilot to fly, flavour-neutral. None = not commanded.

    Combinations an autopilot rejects (e.g. position + acceleration without velocity on ArduPilot, any
    position in BODY_NED on PX4) and non-finite values are refused by the bridge's encoder before sending.
    """

    t_s: float
    pos_ned_m: np.ndarray | None = None
    vel_ned_mps: np.ndarray | None = None
    acc_ned_mps2: np.ndarray | None = None
    yaw_rad: float | None = None
    yaw_rate_radps: float | None = None
    frame: SetpointFrame = SetpointFrame.LOCAL_NED


class TrackStatus(enum.Enum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    COASTING = "coasting"
    DELETED = "deleted"


@dataclass(frozen=True)
class TargetTrack:
    """One tracked object as guidance and engagement see it (tracker output; truth perception makes it too).

    ``los_ned`` is the unit line of sight from the camera to the target in NED at ``t_s``;
    ``los_rate_ned_radps`` its time derivative (rad/s, perpendicular to ``los_ned``);
    ``los_cov`` (3, 3) covariance of ``los_ned`` (rad^2); ``angular_size_rad`` the apparent size (box diagonal).
    ``range_m`` is an estimate when one exists (cue, known class size), else None.
    """

    track_id: int
    t_s: float
    status: TrackStatus
    los_ned: np.ndarray
    los_rate_ned_radps: np.ndarray
    los_cov: np.ndarray
    angular_size_rad: float
    class_name: str = "drone"
    score: float = 1.0
    box_xyxy_px: np.ndarray | None = None
    age_s: float = 0.0
    hits: int = 0
    misses: int = 0
    range_m: float | None = None
