"""Engagement configuration: frozen dataclasses with the unit in every field name, loadable from TOML.

Example (all keys optional; defaults are the DESIGN.md interceptor)::

    [engagement]
    law = "true_pn"            # true_pn | pure_pn | augmented_pn | pure_pursuit
    nav_gain = 4.0
    max_speed_mps = 70.0
    max_accel_mps2 = 30.0
    min_altitude_m = 20.0      # floor above the NED origin that guidance cannot go below
    max_engagement_s = 150.0
    require_signed_commands = true

    [engagement.geofence]
    polygon_ne_m = [[-3000, -3000], [3000, -3000], [3000, 3000], [-3000, 3000]]
    min_altitude_m = 0.0
    max_altitude_m = 1500.0

    [[engagement.no_engage_zones]]
    name = "village"
    polygon_ne_m = [[500, 500], [900, 500], [900, 900], [500, 900]]
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path


class EngagementError(ValueError):
    """Invalid engagement configuration or input."""


LAWS = ("true_pn", "pure_pn", "augmented_pn", "pure_pursuit")


def _polygon(name: str, pts) -> tuple[tuple[float, float], ...]:
    try:
        poly = tuple((float(p[0]), float(p[1])) for p in pts)
    except (TypeError, ValueError, IndexError) as exc:
        raise EngagementError(f"{name}: polygon must be a list of [north_m, east_m] pairs") from exc
    if poly and len(poly) < 3:
        raise EngagementError(f"{name}: a polygon needs at least 3 vertices, got {len(poly)}")
    if not all(math.isfinite(c) for p in poly for c in p):
        raise EngagementError(f"{name}: polygon vertices must be finite")
    return poly


@dataclass(frozen=True)
class Zone:
    """A named polygon in the local NE plane (metres from the NED origin)."""

    name: str
    polygon_ne_m: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygon_ne_m", _polygon(f"zone {self.name!r}", self.polygon_ne_m))
        if not self.polygon_ne_m:
            raise EngagementError(f"zone {self.name!r} has no vertices")


@dataclass(frozen=True)
class GeofenceConfig:
    """Inclusion fence: polygon (empty = no horizontal limit) and an altitude band above the NED origin."""

    polygon_ne_m: tuple[tuple[float, float], ...] = ()
    min_altitude_m: float = -math.inf
    max_altitude_m: float = math.inf

    def __post_init__(self) -> None:
        object.__setattr__(self, "polygon_ne_m", _polygon("geofence", self.polygon_ne_m))
        if not self.min_altitude_m < self.max_altitude_m:
            raise EngagementError("geofence: min_altitude_m must be below max_altitude_m")


@dataclass(frozen=True)
class EngagementConfig:
    law: str = "true_pn"
    nav_gain: float = 4.0
    max_speed_mps: float = 70.0
    max_accel_mps2: float = 30.0
    drag_per_m: float = 0.0045              # airframe quadratic drag, used to keep the camera pointing
    speed_gain_per_s: float = 2.0           # velocity loop gain for midcourse / along-LOS speed
    terminal_speed_mps: float = 70.0        # speed held along our velocity while homing (FOV keeping may lower it)
    approach_above_rad: float = 0.0  # midcourse aims this far above the target: diving on it
                                            # lets the nose go down (speed) while the up-tilted camera still sees it
    approach_above_max_m: float = 250.0
    # (0 = off) not yet authorized (ACQUIRE/TRACK/AWAIT) and within shadow_below_range_m of the target, aim this
    # elevation below it (at most shadow_below_max_m; the altitude floor wins): braking to the stand-off pitches the
    # nose up, and an up-tilted camera on a slow, level vehicle sees a target above it, not one level with it
    shadow_below_rad: float = 0.0
    shadow_below_max_m: float = 150.0
    shadow_below_range_m: float = 250.0
    fov_keep: bool = False                  # keep the target in view through the speed (fov_speed_band)
    fov_clamp_accel: bool = False           # also clamp the forward acceleration (fov_keep); stricter, but it
                                            # fights the homing on crossing targets (campaign: more misses)
    fov_margin_rad: float = math.radians(4.0)
    fov_keep_range_m: float = math.inf      # FOV keeping (speed band, clamp) outside TERMINAL only this close
    fov_keep_terminal: bool = True          # FOV keeping also while homing (TERMINAL)
    fov_keep_max_size_m: float = math.inf   # FOV keeping only for targets this small (seen late, lost for good)
    min_altitude_m: float = 20.0            # guidance floor above the NED origin
    min_target_altitude_m: float = 10.0     # "aerial only": targets below this are not engaged
    acquire_range_m: float = 900.0          # cue range at which the camera search starts
    acquire_slow_range_m: float = 0.0       # (0 = off) no camera track yet this close: slow the closure ...
    acquire_min_homing_s: float = 2.0       # ... to leave this much homing time after detection
    cue_gate_rad: float = math.radians(6.0) # camera track must lie within this of the cue direction (+ cue sigma)
    cue_timeout_s: float = 10.0
    # (0 = off) the engaged camera track outside that gate around a fresh cue for this long is dropped (back to
    # ACQUIRE; that track is never taken again): a track that has drifted onto clutter flies away from the target
    # ... checked only while the cue is at least this far: closer, the cue's error (tens of m: its age, its
    # sigma) is tens of degrees, and a track on the target was dropped at 26 m (lockstep shahed_headon-2)
    cue_disagree_s: float = 0.0
    cue_disagree_min_range_m: float = 50.0
    track_lost_s: float = 1.0
    link_lost_s: float = 5.0
    pipeline_stall_s: float = 0.5
    max_engagement_s: float = 150.0
    max_authorization_s: float = 120.0      # cap on an authorization's validity, whatever the command says
    require_signed_commands: bool = False
    standoff_m: float = 60.0                # shadowing distance while awaiting authorization
    endgame_yaw_hold_s: float = 1.0         # heading frozen when time-to-go is below this
    miss_range_m: float = 25.0              # opening within this range while terminal -> MISS
    max_reattacks: int = 2
    reattack_min_range_m: float = 5.0       # a re-attack goes terminal on a closing camera track beyond this range
    # re-attack from the stand-off, for targets up to this size (m, as for fov_keep_max_size_m; 0 = never, inf =
    # always): after a pass, back out to ``standoff_m`` (braking onto it from either side) with the view kept as
    # while shadowing, and home again once the camera has the target there, closing or not. Otherwise (larger
    # targets, seen from far and re-found) fly straight at the predicted intercept point and home on the first
    # closing camera track
    reattack_standoff_max_size_m: float = 0.0
    reattack_ready_frac: float = 0.8        # ... "back out" = the range is at least this fraction of standoff_m
    hold_before_rtl_s: float = 3.0
    fence_brake_accel_mps2: float = 15.0    # deceleration assumed for the geofence stopping-point check
    engageable_classes: tuple[str, ...] = ("drone", "uav", "quadcopter", "fixed_wing_uav", "shahed", "fpv")
    confuser_classes: tuple[str, ...] = ("bird", "airplane", "airliner", "helicopter")
    target_size_m: tuple[tuple[str, float], ...] = (("drone", 0.5), ("shahed", 2.5), ("fixed_wing_uav", 2.5))
    # size plausibility of a camera track taken over in ACQUIRE or by re-association (plausible tracks are
    # preferred; an implausible one is taken only when alone, as the cue's range may be wrong): its span (angular
    # size x the nearest range the cue allows, 3 sigma) at most max_target_span_m x target_span_margin (the
    # detector's box diagonal runs up to ~1.6x the wingspan). Shahed-136 class: ~2.5-3.5 m. A 300 px ground-clutter
    # box at 85 m spans ~40 m. inf: off. Boxes up to span_check_min_px (diagonal, at the camera's fx) always pass:
    # the shipped model boxes a 2.5 m wing at 560 m (4 px) as ~24 px
    max_target_span_m: float = 3.5
    target_span_margin: float = 2.0
    span_check_min_px: float = 40.0
    # re-association also needs the candidate's angular size within this factor of the lost track's (scaled by
    # the range change since it was last seen)
    reassociate_max_size_ratio: float = 3.0
    # a coasting engaged track is flown from its last measurement (range x rate = relative velocity across the
    # LOS, target velocity held, our own velocity change since then known) for at most this long; beyond,
    # and for fresh tracks beyond 0.5 s of latency, the LOS is propagated with its rate
    coast_propagate_max_s: float = 2.0
    # (0 = off) the vehicle's control lag (attitude response + uplink delay, s), modelled as first order: with
    # law augmented_pn, terminal homing uses laws.lag_compensated_apn (Zarchan's optimal guidance for that lag:
    # the gain rises as time-to-go falls to a few lags, capped at lag_max_nav_gain, and the acceleration the
    # lagged past commands still make is taken off the zero-effort miss)
    control_lag_s: float = 0.0
    lag_max_nav_gain: float = 12.0
    geofence: GeofenceConfig = field(default_factory=GeofenceConfig)
    no_engage_zones: tuple[Zone, ...] = ()

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise EngagementError(f"law must be one of {LAWS}, got {self.law!r}")
        for name in ("nav_gain", "max_speed_mps", "max_accel_mps2", "track_lost_s", "link_lost_s",
                     "pipeline_stall_s", "max_engagement_s", "acquire_range_m"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise EngagementError(f"{name} must be a positive finite number, got {v!r}")
        if not (self.max_target_span_m > 0 and self.target_span_margin >= 1.0 and self.reassociate_max_size_ratio >= 1.0
                and self.span_check_min_px >= 0.0):
            raise EngagementError("max_target_span_m > 0, target_span_margin >= 1, reassociate_max_size_ratio >= 1 and "
                                  "span_check_min_px >= 0 are required")
        if not (self.cue_disagree_s >= 0.0 and math.isfinite(self.cue_disagree_s)
                and self.cue_disagree_min_range_m >= 0.0):
            raise EngagementError("cue_disagree_s must be finite and >= 0 (0 = off), cue_disagree_min_range_m >= 0")
        if not (self.control_lag_s >= 0.0 and math.isfinite(self.control_lag_s) and self.lag_max_nav_gain > 0.0):
            raise EngagementError("control_lag_s must be finite and >= 0, lag_max_nav_gain > 0")
        if not (self.reattack_standoff_max_size_m >= 0.0 and 0.0 < self.reattack_ready_frac <= 1.0):
            raise EngagementError(f"reattack_standoff_max_size_m must be >= 0 (0 = off, inf = always), got "
                                  f"{self.reattack_standoff_max_size_m!r}, and 0 < reattack_ready_frac <= 1, got "
                                  f"{self.reattack_ready_frac!r}")
        overlap = set(self.engageable_classes) & set(self.confuser_classes)
        if overlap:
            raise EngagementError(f"classes both engageable and confuser: {sorted(overlap)}")

    def size_of(self, class_name: str) -> float | None:
        return dict(self.target_size_m).get(class_name)


def engagement_config_from_dict(d: dict, source: str = "config") -> EngagementConfig:
    known = {f.name for f in fields(EngagementConfig)}
    unknown = set(d) - known
    if unknown:
        raise EngagementError(f"{source}: unknown engagement keys {sorted(unknown)}")
    kw = dict(d)
    try:
        if "geofence" in kw:
            kw["geofence"] = GeofenceConfig(**kw["geofence"])
        if "no_engage_zones" in kw:
            kw["no_engage_zones"] = tuple(Zone(**z) for z in kw["no_engage_zones"])
        for k in ("engageable_classes", "confuser_classes"):
            if k in kw:
                kw[k] = tuple(str(x) for x in kw[k])
        if "target_size_m" in kw:
            ts = kw["target_size_m"]
            kw["target_size_m"] = tuple((str(k), float(v)) for k, v in (ts.items() if isinstance(ts, dict) else ts))
        return EngagementConfig(**kw)
    except TypeError as exc:
        raise EngagementError(f"{source}: {exc}") from exc


def load_engagement_toml(path: str | Path) -> EngagementConfig:
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise EngagementError(f"engagement config not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise EngagementError(f"{path}: malformed TOML: {exc}") from exc
    return engagement_config_from_dict(doc.get("engagement", doc), source=str(path))
