"""Ground clutter next to a small target, as the engagement sees it: the real tracker (numba kernels) feeding the
real engagement machine, and the pipeline's span filter, with hand-made detections shaped like issue 6's quick
seed 0 flight (a ~30 px target at ~85 m; a ~300 px "drone" box on a tree line 220 px beside it)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from autonomy.camera.model import Camera
from autonomy.engagement import (
    EngagementConfig,
    EngagementInput,
    EngagementMachine,
    GeofenceConfig,
    Reason,
    State,
)
from autonomy.runtime.pipeline import box_diagonals_rad, drop_implausible_spans, keep_weak_track_detections
from autonomy.tracking import Tracker, TrackerConfig
from autonomy.types import (
    Autopilot,
    Detections,
    OperatorCommand,
    OperatorCommandKind,
    TargetCue,
    VehicleState,
)

CAM = Camera.default()
NAMES = ("drone", "bird")
FENCE = GeofenceConfig(((-5000, -5000), (5000, -5000), (5000, 5000), (-5000, 5000)), -5.0, 1500.0)
CUE_ID = 1000
# the simulator's tracker settings (autonomy/runtime/configs/sitl.toml)
SIM_TRACKER = TrackerConfig(q_ang=0.01, init_rate_std_radps=0.05, confirm_hits=5, max_coast_s=2.0,
                            drop_coasting_duplicates=True, init_score=0.35)


class Scene:
    """Vehicle level at 100 m, target 85 m ahead in the middle of the image; the ground cue authorized."""

    def __init__(self, tracker_cfg: TrackerConfig = SIM_TRACKER, eng_cfg: EngagementConfig | None = None):
        self.tracker = Tracker(tracker_cfg, CAM)
        self.machine = EngagementMachine(eng_cfg or EngagementConfig(geofence=FENCE), CAM, Autopilot.PX4)
        self.pos = np.array([0.0, 0.0, -100.0])
        up = math.tan(CAM.mount.tilt_up_rad)
        self.tgt = self.pos + np.array([85.0, 0.0, -85.0 * up]) / math.sqrt(1 + up * up)
        self.q = np.array([1.0, 0.0, 0.0, 0.0])
        self.t = 0.0

    def target_box(self) -> list[float]:
        los = (self.tgt - self.pos) / np.linalg.norm(self.tgt - self.pos)
        uv, _ok = CAM.los_ned_to_pixels(los[None], self.q)
        u, v = np.asarray(uv).reshape(-1, 2)[0]
        return [u - 17.0, v - 14.0, u + 17.0, v + 14.0]

    def clutter_box(self) -> list[float]:
        u0, v0, _, _ = self.target_box()
        return [u0 + 75.0, v0 - 72.0, u0 + 388.0, v0 + 197.0]     # 313 x 269 px, centre 220 px away

    def frame(self, target: bool = True, clutter: bool = True, authorize: bool = False):
        self.t += 0.04
        boxes, scores = [], []
        if target:
            boxes.append(self.target_box())
            scores.append(0.55)
        if clutter:
            boxes.append(self.clutter_box())
            scores.append(0.45)
        dets = Detections(self.t, np.array(boxes, dtype=float).reshape(-1, 4), np.array(scores),
                          np.zeros(len(boxes), dtype=np.int64), NAMES)
        tracks = tuple(self.tracker.step(dets, self.q, self.t))
        cmds = (OperatorCommand(OperatorCommandKind.AUTHORIZE, self.t, CUE_ID, 60.0),) if authorize else ()
        veh = VehicleState(self.t, self.pos.copy(), np.zeros(3), self.q.copy())
        cue = TargetCue(self.t, CUE_ID, self.tgt.copy(), np.zeros(3))
        return self.machine.step(EngagementInput(self.t, veh, cue, tracks, cmds, last_link_rx_t_s=self.t,
                                                 last_frame_t_s=self.t))


def _engage(scene: Scene) -> int:
    out = scene.frame(authorize=True)
    for _ in range(20):
        out = scene.frame()
        if out.state is State.TERMINAL:
            break
    assert out.state is State.TERMINAL, scene.machine.decisions
    return out.engaged_track_id


def test_target_missing_one_detection_beside_clutter_stays_engaged():
    s = Scene()
    tid = _engage(s)
    tl = s.tracker.last_tracks
    assert len(tl) == 2, "the clutter has its own confirmed track (as in the flight)"
    out = s.frame(target=False)                       # motion blur: the target is not detected this frame
    assert out.state is State.TERMINAL and out.engaged_track_id == tid, s.machine.decisions
    assert Reason.TRACK_REASSOCIATED not in [d.reason for d in s.machine.decisions]
    out = s.frame()
    assert out.engaged_track_id == tid


def test_before_the_fix_the_engagement_went_to_the_clutter():
    """The same scene with the size checks off (any size ratio a duplicate, no span limit): the coasting target is
    deleted and the engagement re-associates to the clutter track, as in the flight at 21.64 s."""
    s = Scene(replace(SIM_TRACKER, dup_max_size_ratio=1e9),
              EngagementConfig(geofence=FENCE, max_target_span_m=math.inf, reassociate_max_size_ratio=1e9))
    tid = _engage(s)
    out = s.frame(target=False)
    assert out.engaged_track_id != tid and Reason.TRACK_REASSOCIATED in [d.reason for d in s.machine.decisions]


def test_span_filter_drops_the_clutter_box_in_the_cue_direction_only():
    s = Scene()
    los = (s.tgt - s.pos) / np.linalg.norm(s.tgt - s.pos)
    big = s.clutter_box()
    far = [1000.0, 600.0, 1270.0, 715.0]              # as big, well away from the cue direction
    dets = Detections(0.0, np.array([s.target_box(), big, far]), np.array([0.5, 0.5, 0.5]),
                      np.zeros(3, dtype=np.int64), NAMES)
    sizes = box_diagonals_rad(CAM, dets.xyxy_px)
    assert 0.04 < sizes[0] < 0.05 and sizes[1] > 0.4
    rng_lo, gate = 85.0 - 30.0, 0.12 + 30.0 / 85.0
    out = drop_implausible_spans(dets, CAM, s.q, los, rng_lo, gate, 7.0, 40.0 / CAM.intrinsics.fx_px)
    assert out.xyxy_px.tolist() == [s.target_box(), far]
    # close in, the same boxes are plausible (a 2.5 m wing at 5 m is ~0.5 rad)
    assert len(drop_implausible_spans(dets, CAM, s.q, los, 5.0, gate, 7.0)) == 3


def test_auth_request_bearing_round_trips():
    """The bearing in "AUTH? track N cue M az A el E" (degrees, NED azimuth, elevation up) and back."""
    import pytest

    from autonomy.geometry import az_el_deg_to_los, los_to_az_el_deg

    assert los_to_az_el_deg(np.array([0.0, 1.0, 0.0])) == pytest.approx((90.0, 0.0))      # east, level
    assert los_to_az_el_deg(np.array([1.0, 0.0, -1.0])) == pytest.approx((0.0, 45.0))     # north, 45 deg up
    rng = np.random.default_rng(3)
    for _ in range(20):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        az, el = los_to_az_el_deg(u * 7.0)
        back = az_el_deg_to_los(round(az, 1), round(el, 1))   # as sent: one decimal
        assert math.degrees(math.acos(min(1.0, float(back @ u)))) < 0.1


def test_weak_boxes_in_a_track_window_are_kept_only_as_that_track_near_its_prediction():
    # roi_score_threshold: boxes under the detector's 0.4 survive only as the track's class near where it is predicted
    xyxy = np.array([[100, 100, 110, 110],    # strong bird: kept whatever
                     [118, 100, 128, 110],    # weak drone 3 px from the prediction (120, 105): kept
                     [160, 100, 170, 110],    # weak drone 60 px away: kept only without a radius
                     [120, 120, 130, 130]],   # weak bird: never (would vote "bird" on a drone track)
                    dtype=np.float64)
    dets = Detections(1.0, xyxy, np.array([0.7, 0.25, 0.25, 0.3]), np.array([1, 0, 0, 1]), NAMES)
    near = keep_weak_track_detections(dets, "drone", 0.4, (120.0, 105.0), 20.0)
    np.testing.assert_array_equal(near.xyxy_px, xyxy[[0, 1]])
    anywhere = keep_weak_track_detections(dets, "drone", 0.4)
    np.testing.assert_array_equal(anywhere.scores, [0.7, 0.25, 0.25])
    assert [NAMES[c] for c in keep_weak_track_detections(dets, "bird", 0.4).class_ids] == ["bird", "bird"]
