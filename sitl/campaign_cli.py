"""`autonomy campaign`: seeded Monte Carlo engagement campaign (see :mod:`sitl.campaign`).

    autonomy campaign --runs 1000 --seed 0 --perception truth --workers 2 --out campaign_out
    autonomy campaign --runs 40 --families shahed_crossing,fpv_weave --out /tmp/c
    autonomy campaign --runs 140 --operator camera-track --out /tmp/ct   # the lockstep world's operator model
    autonomy campaign --runs 210 --operator camera-track --min-detect-px 8 --law augmented_pn --no-pure-pursuit
    autonomy campaign --perception full --runs 8 --workers 2 --seed 0 --out /tmp/full8
    autonomy campaign --runs 1000 --engage reattack_standoff_max_size_m=1.4   # one engagement setting changed

Writes DIR/summary.json (overall, per family, and PN vs pure pursuit on the crossing family), DIR/runs.json
and plots (matplotlib optional). ``--perception full`` flies each run through the whole onboard pipeline
(simulated PX4 over MAVLink on 127.0.0.1, rendered camera, shipped ONNX detector, tracker; ~30-100 s of CPU a
run, so use tens of runs, not thousands); it also accepts the family ``quick`` (the demo crossing), skips the
pure-pursuit twins and uses the camera of autonomy/runtime/configs/sitl.toml (--camera-tilt-deg is truth only).
Exit status 0; 2 on bad arguments or a failed run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from pathlib import Path

from autonomy.engagement import EngagementError, engagement_config_from_dict
from sitl.campaign import (
    SUMMARY_KEYS,
    CampaignConfig,
    CampaignError,
    RunConfig,
    run_campaign,
    summarize,
    write_outputs,
)
from sitl.scenarios import FAMILIES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autonomy campaign", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--perception", choices=("truth", "full"), default="truth")
    p.add_argument("--families", default=",".join(FAMILIES),
                   help=f"comma-separated subset of: {', '.join(FAMILIES)} (full mode also: quick)")
    p.add_argument("--out", type=Path, default=Path("campaign_out"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-pure-pursuit", action="store_true", help="skip the pure-pursuit twins of crossing runs")
    p.add_argument("--camera-tilt-deg", type=float, default=45.0, help="camera up-tilt (DESIGN default 20)")
    p.add_argument("--operator", choices=("cue", "camera-track"), default="cue",
                   help="truth mode: the simulated operator authorizes the ground track up front (cue), or only once it "
                        "has checked a camera track the companion asks about, and then the ground track that camera "
                        "track was handed over from, as the lockstep world's operator does (camera-track)")
    p.add_argument("--law", choices=("true_pn", "pure_pn", "augmented_pn"), default=None,
                   help="guidance law of every run (default: true_pn in truth mode, sitl.toml's in full mode)")
    p.add_argument("--min-detect-px", type=float, default=None,
                   help="truth mode: smallest apparent target size (px) the simulated camera finds (default 4; the "
                        "shipped detector needs more, see README)")
    p.add_argument("--t-max-s", type=float, default=None,
                   help="full mode: cap on simulated seconds per run (default: the scenario's)")
    p.add_argument("--config", default=None,
                   help="full mode: companion TOML every run flies (default autonomy/runtime/configs/sitl.toml): "
                        "judge a configuration change on the same runs as the shipped one")
    p.add_argument("--engage", action="append", default=[], metavar="KEY=VALUE",
                   help="truth mode: an engagement setting every run flies instead of the campaign's, VALUE in TOML "
                        "(repeatable; e.g. reattack_standoff_max_size_m=1.4): judge a setting on the same runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _engagement_overrides(items: list[str]) -> tuple[tuple[str, object], ...]:
    """``KEY=VALUE`` strings (VALUE in TOML) -> engagement config overrides, read and checked as a companion TOML's
    [engagement] section is (:func:`engagement_config_from_dict`); ValueError names the bad item. The guidance law
    (``--law``), geofence and no-engage zones stay the scenario's."""
    raw: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or key in ("law", "geofence", "no_engage_zones"):
            raise ValueError(f"{item!r}: want KEY=VALUE with KEY an engagement setting other than law (--law), "
                             "geofence and no_engage_zones, e.g. reattack_standoff_max_size_m=1.4")
        try:
            raw[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{item!r}: the value is not TOML ({exc})") from None
    try:
        cfg = engagement_config_from_dict(raw, source=" ".join(items))
    except EngagementError as exc:
        raise ValueError(str(exc)) from None
    return tuple((k, getattr(cfg, k)) for k in raw)


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    fams = tuple(f.strip() for f in a.families.split(",") if f.strip())
    full = a.perception == "full"
    if a.t_max_s is not None and (not full or a.t_max_s <= 0):
        print("autonomy campaign: --t-max-s needs --perception full and a positive value", file=sys.stderr)
        return 2
    if a.config is not None and not full:
        print("autonomy campaign: --config needs --perception full (truth runs fly the scenario's engagement "
              "settings)", file=sys.stderr)
        return 2
    if a.config is not None and not Path(a.config).is_file():
        print(f"autonomy campaign: --config {a.config}: no such file", file=sys.stderr)
        return 2
    if a.min_detect_px is not None and (full or not a.min_detect_px > 0):
        print("autonomy campaign: --min-detect-px needs --perception truth and a positive value", file=sys.stderr)
        return 2
    try:
        overrides = _engagement_overrides(a.engage)
    except ValueError as exc:
        print(f"autonomy campaign: --engage {exc}", file=sys.stderr)
        return 2
    if overrides and full:
        print("autonomy campaign: --engage needs --perception truth (full runs fly --config)", file=sys.stderr)
        return 2
    cc = CampaignConfig(runs=a.runs, seed=a.seed, families=fams, perception=a.perception, workers=max(1, a.workers),
                        compare_pure_pursuit=not a.no_pure_pursuit and not full,
                        run=RunConfig(camera_tilt_up_deg=a.camera_tilt_deg, operator_authorizes_cue=a.operator == "cue",
                                      min_detect_px=a.min_detect_px, engagement_overrides=overrides),
                        full_t_max_s=a.t_max_s, law=a.law, full_config_path=a.config)
    t0 = time.perf_counter()
    try:
        results = run_campaign(cc, progress=None if a.quiet else sys.stderr)
    except CampaignError as exc:
        print(f"autonomy campaign: {exc}", file=sys.stderr)
        return 2
    summary = summarize(results, cc, time.perf_counter() - t0)
    paths = write_outputs(results, summary, a.out)
    print(json.dumps({k: summary[k] for k in (*SUMMARY_KEYS, "runs", "wall_s")}))
    for f, s in summary["per_family"].items():
        print(f"  {f:16s} " + " ".join(f"{k}={s[k]:.3f}" if isinstance(s[k], float) else f"{k}={s[k]}"
                                        for k in SUMMARY_KEYS) + f" ci95={s['intercept_rate_ci95']}")
    if "crossing_comparison" in summary:
        c = summary["crossing_comparison"]
        print(f"  crossing: PN rate {c['pn']['intercept_rate']} median miss {c['pn']['median_miss_distance_m']:.2f} m"
              f" | pure pursuit rate {c['pure_pursuit']['intercept_rate']} median miss "
              f"{c['pure_pursuit']['median_miss_distance_m']:.2f} m")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
