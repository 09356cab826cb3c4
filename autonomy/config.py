"""The companion's configuration: one TOML file for ``autonomy fly`` (and the simulator, which reads the same).

Sections (each optional except ``[link]`` and ``[camera]``; every room's own dataclass parses its section, so
the keys are exactly that room's field names; unknown keys are an error)::

    [link]          url, baud, source_system, source_component, signing_key_path, connect_timeout_s,
                    command_timeout_s, link_lost_s, [link.streamer] rate_hz / max_age_s / hand_back_after_s
    [camera]        source (V4L2 index or device, file, rtsp/udp/http URL, or a GStreamer pipeline string with "!"), latency_s,
                    frame_stamp, first_frame_timeout_s, calibration (a camera TOML file) or inline width_px, height_px,
                    hfov_deg | fx_px.., dist_coeffs, fps, [camera.mount] tilt_up_deg, pan_right_deg
    [detector]      autonomy.perception.config.DetectorConfig (model_path, provider, intra_op_threads_n, ...);
                    enabled = false runs without perception (the engagement then flies on the cue only)
    [tracker]       autonomy.tracking.TrackerConfig
    [pipeline]      autonomy.runtime.pipeline.PipelineConfig
    [engagement]    autonomy.engagement.EngagementConfig (limits, geofence, no_engage_zones, signing policy)
    [service]       tick_hz, record_dir, auto_arm (simulation only), takeoff_alt_m
    [checks]        params_min / params_max: {NAME = value} the autopilot must satisfy at start-up

Relative paths (model, calibration, signing key, record dir) are relative to the config file's folder.
Every problem raises :class:`ConfigError` with one line that names the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from autonomy.camera.model import Camera, CameraError, camera_from_dict, load_camera_toml
from autonomy.camera.sources import FRAME_STAMPS
from autonomy.engagement import EngagementConfig, EngagementError, engagement_config_from_dict
from autonomy.runtime.pipeline import PipelineConfig, PipelineError


class ConfigError(ValueError):
    """A malformed or inconsistent companion configuration (one line, names file and key)."""


@dataclass(frozen=True)
class LinkSettings:
    url: str
    baud: int = 921600
    source_system: int = 1
    source_component: int = 191
    signing_key_path: str | None = None
    connect_timeout_s: float = 10.0
    command_timeout_s: float = 1.0
    link_lost_s: float = 3.0
    streamer_rate_hz: float = 50.0
    streamer_max_age_s: float = 0.2
    streamer_hand_back_after_s: float = 2.0
    tlog_path: str | None = None       # record the link here (set per flight by `autonomy fly` under record_dir)


@dataclass(frozen=True)
class CameraSettings:
    source: str
    camera: Camera
    latency_s: float = 0.0
    first_frame_timeout_s: float = 5.0
    # where the capture time comes from (autonomy.camera.sources.LiveCaptureSource): "none": the grab time minus
    # latency_s; "v4l2": the driver's buffer timestamp (a /dev/video device; latency_s is then the exposure-to-
    # timestamp delay); "autopilot_time": each frame carries its exposure instant on the autopilot's clock in its
    # first rows (autonomy.camera.stamp: the simulator's real-time camera), mapped to ours by the link's clock;
    # frames without the stamp fall back to "none"
    frame_stamp: str = "none"


@dataclass(frozen=True)
class ServiceSettings:
    tick_hz: float = 30.0              # engagement logic rate when no frame arrives
    record_dir: str | None = None      # flight recorder folder (None: no recording)
    auto_arm: bool = False             # arm + OFFBOARD on the first cue: simulation/test ranges ONLY
    takeoff_alt_m: float = 0.0         # unused when the engagement climbs itself
    duration_s: float | None = None    # stop after this long (tests); None: until SIGINT/SIGTERM


@dataclass(frozen=True)
class CompanionConfig:
    path: str
    link: LinkSettings
    camera: CameraSettings
    detector: Any | None                # DetectorConfig or None (perception disabled)
    tracker: Any                        # TrackerConfig
    pipeline: PipelineConfig
    engagement: EngagementConfig
    service: ServiceSettings = field(default_factory=ServiceSettings)
    params_min: tuple[tuple[str, float], ...] = ()
    params_max: tuple[tuple[str, float], ...] = ()

    def bridge_config(self):
        """The :class:`autonomy.mavlink.BridgeConfig` this file describes (loads the signing key)."""
        from autonomy.mavlink import BridgeConfig, LinkConfig, StreamerConfig
        from autonomy.mavlink.link import load_signing_key

        lk = self.link
        key = load_signing_key(lk.signing_key_path) if lk.signing_key_path else None
        return BridgeConfig(
            LinkConfig(lk.url, baud=lk.baud, source_system=lk.source_system, source_component=lk.source_component,
                       connect_timeout_s=min(lk.connect_timeout_s, 5.0), signing_key=key, tlog_path=lk.tlog_path),
            streamer=StreamerConfig(lk.streamer_rate_hz, lk.streamer_max_age_s, lk.streamer_hand_back_after_s),
            command_timeout_s=lk.command_timeout_s, link_lost_s=lk.link_lost_s)


def _take(d: dict, cls: type, section: str, src: str, rename: dict[str, str] | None = None) -> dict:
    names = {f.name for f in fields(cls)}
    out = {}
    for k, v in d.items():
        k2 = (rename or {}).get(k, k)
        if k2 not in names:
            raise ConfigError(f"{src}: unknown key [{section}] {k}")
        out[k2] = v
    return out


def _rel(base: Path, p: str | None) -> str | None:
    if p is None or p == "":
        return None
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q))


def config_from_dict(doc: dict, path: str | Path = "<config>") -> CompanionConfig:
    """Build and validate a :class:`CompanionConfig` from a parsed TOML document."""
    src = str(path)
    base = Path(path).resolve().parent if str(path) != "<config>" else Path.cwd()
    allowed = {"link", "camera", "detector", "tracker", "pipeline", "engagement", "service", "checks"}
    unknown = set(doc) - allowed
    if unknown:
        raise ConfigError(f"{src}: unknown section(s) {sorted(unknown)} (allowed: {sorted(allowed)})")
    for req in ("link", "camera"):
        if req not in doc or not isinstance(doc[req], dict):
            raise ConfigError(f"{src}: missing [{req}] section")
    # --- link
    ld = dict(doc["link"])
    st = ld.pop("streamer", {}) or {}
    if "url" not in ld:
        raise ConfigError(f"{src}: [link] url is required (e.g. udpin:127.0.0.1:14540 or serial:/dev/ttyAMA0:921600)")
    kw = _take(ld, LinkSettings, "link", src)
    for k, v in st.items():
        if k not in ("rate_hz", "max_age_s", "hand_back_after_s"):
            raise ConfigError(f"{src}: unknown key [link.streamer] {k}")
        kw[f"streamer_{k}"] = v
    kw["signing_key_path"] = _rel(base, kw.get("signing_key_path"))
    try:
        link = LinkSettings(**kw)
    except TypeError as exc:
        raise ConfigError(f"{src}: [link] {exc}") from exc
    if not str(link.url) or not isinstance(link.url, str):
        raise ConfigError(f"{src}: [link] url must be a non-empty string")
    # --- camera
    cd = dict(doc["camera"])
    source = cd.pop("source", None)
    if source is None:
        raise ConfigError(f"{src}: [camera] source is required (device index, /dev/videoN, file, URL, gst:...)")
    latency = float(cd.pop("latency_s", 0.0))
    first_to = float(cd.pop("first_frame_timeout_s", 5.0))
    stamp = cd.pop("frame_stamp", "none")
    if stamp not in FRAME_STAMPS:
        raise ConfigError(f"{src}: [camera] frame_stamp must be one of {', '.join(FRAME_STAMPS)}, got {stamp!r}")
    calib = cd.pop("calibration", None)
    try:
        if calib:
            cam = load_camera_toml(_rel(base, calib))
        elif cd:
            cam = camera_from_dict(cd, source=f"{src} [camera]")
        else:
            cam = Camera.default()
    except CameraError as exc:
        raise ConfigError(f"{src}: [camera] {exc}") from exc
    if not (math.isfinite(latency) and 0.0 <= latency < 1.0):
        raise ConfigError(f"{src}: [camera] latency_s must be in [0, 1) s, got {latency}")
    camera = CameraSettings(str(source), cam, latency, first_to, stamp)
    # --- detector
    det = None
    dd = dict(doc.get("detector", {}))
    if dd.pop("enabled", True):
        from autonomy.perception.config import DetectorConfig
        from autonomy.perception.errors import ModelError

        if "model_path" in dd:
            dd["model_path"] = _rel(base, dd["model_path"])
        for k in ("classes", "class_names", "input_wh_px"):
            if dd.get(k) is not None:
                dd[k] = tuple(dd[k])
        try:
            det = DetectorConfig(**_take(dd, DetectorConfig, "detector", src))
        except (TypeError, ModelError) as exc:
            raise ConfigError(f"{src}: [detector] {exc}") from exc
    # --- tracker
    from autonomy.tracking import TrackerConfig, TrackingError

    try:
        tracker = TrackerConfig(**_take(doc.get("tracker", {}), TrackerConfig, "tracker", src))
    except (TypeError, TrackingError) as exc:
        raise ConfigError(f"{src}: [tracker] {exc}") from exc
    # --- pipeline, engagement, service
    try:
        pipeline = PipelineConfig(**_take(doc.get("pipeline", {}), PipelineConfig, "pipeline", src))
    except (TypeError, PipelineError) as exc:
        raise ConfigError(f"{src}: [pipeline] {exc}") from exc
    try:
        engagement = engagement_config_from_dict(doc.get("engagement", {}), source=f"{src} [engagement]")
    except EngagementError as exc:
        raise ConfigError(str(exc)) from exc
    sd = _take(doc.get("service", {}), ServiceSettings, "service", src)
    if sd.get("record_dir"):
        sd["record_dir"] = _rel(base, sd["record_dir"])
    try:
        service = ServiceSettings(**sd)
    except TypeError as exc:
        raise ConfigError(f"{src}: [service] {exc}") from exc
    if not service.tick_hz > 0:
        raise ConfigError(f"{src}: [service] tick_hz must be > 0")
    ch = dict(doc.get("checks", {}))
    bad = set(ch) - {"params_min", "params_max"}
    if bad:
        raise ConfigError(f"{src}: unknown key(s) in [checks]: {sorted(bad)}")
    try:
        pmin = tuple((str(k), float(v)) for k, v in ch.get("params_min", {}).items())
        pmax = tuple((str(k), float(v)) for k, v in ch.get("params_max", {}).items())
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{src}: [checks] params_min/params_max must be tables of NAME = number: {exc}") from exc
    return CompanionConfig(src, link, camera, det, tracker, pipeline, engagement, service, pmin, pmax)


def load_config(path: str | Path) -> CompanionConfig:
    """Read and validate a companion TOML file (:class:`ConfigError` with one line on any problem)."""
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {p}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"config path is a directory: {p}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: malformed TOML: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a text file: {exc}") from exc
    return config_from_dict(doc, p)
