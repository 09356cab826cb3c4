"""`autonomy sitl serve`: run a simulated PX4 (UDP) or ArduPilot (TCP) autopilot as its own process.

Contract (other tests rely on it): once the endpoint listens, exactly one line starting with ``READY`` is
printed to stdout and flushed, e.g. ``READY px4 udp 127.0.0.1:14580 -> 127.0.0.1:14540`` or
``READY ardupilot tcp 127.0.0.1:5760``. SIGINT/SIGTERM stop it cleanly (exit 0). Bad options exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from sitl.autopilot import (
    PRESETS,
    ArduPilotAutopilot,
    ParamError,
    Px4Autopilot,
    SitlLinkError,
    TcpServerLink,
    UdpLink,
    ardupilot_config,
    run_realtime,
)
from sitl.autopilot.ardupilot import ARDUPILOT_BANNER
from sitl.autopilot.base import SimConfig
from sitl.vehicle import WindParams


def _floats3(text: str) -> tuple[float, float, float]:
    parts = [float(x) for x in text.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("expected three comma-separated numbers N,E,D")
    return parts[0], parts[1], parts[2]


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"value of {name} is not a number: {value!r}") from e


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="autonomy sitl", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="serve a simulated autopilot on 127.0.0.1")
    s.add_argument("--autopilot", choices=["px4", "ardupilot"], required=True)
    s.add_argument("--speedup", type=float, default=1.0, help="simulated seconds per wall second (default 1)")
    s.add_argument("--local-port", type=int, default=14580, help="PX4: UDP port we bind (default 14580)")
    s.add_argument("--remote-port", type=int, default=14540, help="PX4: UDP port we send to (default 14540)")
    s.add_argument("--px4-version", choices=["main", "1.16", "1.15"], default="main",
                   help="PX4 wire behaviour: main (default) or the older v1.15/v1.16 (MAVLink 1 first, ...)")
    s.add_argument("--gcs", action="store_true",
                   help="PX4: also open the ground-station link (normal stream set), like PX4 SITL's 18570 -> 14550")
    s.add_argument("--gcs-local-port", type=int, default=18570)
    s.add_argument("--gcs-remote-port", type=int, default=14550)
    s.add_argument("--tcp-port", type=int, default=5760, help="ArduPilot: TCP port we listen on (default 5760)")
    s.add_argument("--seed", type=int, default=0, help="seed of the wind/gust generator")
    s.add_argument("--param", type=_param, action="append", default=[], metavar="NAME=VALUE",
                   help="set an autopilot parameter at boot (repeatable)")
    s.add_argument("--preset", choices=sorted(PRESETS), default="default",
                   help="parameter preset: default (stock autopilot) or interceptor (DESIGN.md airframe)")
    s.add_argument("--wind-mps", type=_floats3, default=(0.0, 0.0, 0.0), metavar="N,E,D",
                   help="mean wind velocity NED, m/s")
    s.add_argument("--gust-std-mps", type=float, default=0.0, help="gust standard deviation, m/s")
    s.add_argument("--estimator-ready-s", type=float, default=3.0,
                   help="boot seconds until a position estimate exists (arming/GUIDED need it)")
    s.add_argument("--duration-s", type=float, default=None, help="stop after this much simulated time")
    c = sub.add_parser("check-params", help="compare a parameter dump with an expected set (firmware_params/)")
    c.add_argument("expected", help="expected set: .params (QGC/PX4) or .parm (ArduPilot)")
    c.add_argument("actual", help="the vehicle's parameter dump, same formats")
    c.add_argument("--ignore-missing", action="store_true", help="only compare parameters present in both")
    return ap


def _check_params(args: argparse.Namespace) -> int:
    from sitl.autopilot.param_files import ParamFileError, check_params, load_param_file

    try:
        expected, actual = load_param_file(args.expected), load_param_file(args.actual)
    except ParamFileError as e:
        print(f"autonomy sitl: {e}", file=sys.stderr)
        return 2
    bad = check_params(actual, expected, ignore_missing=args.ignore_missing)
    for m in bad:
        print(m)
    print(f"{len(expected) - len(bad)}/{len(expected)} parameters match")
    return 1 if bad else 0


def make_autopilot(args: argparse.Namespace):
    """Build the autopilot and its link from parsed ``serve`` options (raises SitlLinkError / ParamError)."""
    wind = WindParams(mean_ned_mps=tuple(args.wind_mps), gust_std_mps=args.gust_std_mps)
    params = dict(PRESETS[args.preset][args.autopilot])
    params.update(dict(args.param))
    common = {"wind": wind, "seed": args.seed, "estimator_ready_s": args.estimator_ready_s,
                  "unix_time_at_boot_s": time.time()}
    if args.autopilot == "px4":
        link = UdpLink(args.local_port, args.remote_port)
        try:
            ap = Px4Autopilot(SimConfig(**common), params, [link], version=args.px4_version)
            if args.gcs:
                gcs = UdpLink(args.gcs_local_port, args.gcs_remote_port)
                ap.add_link(gcs, mode="normal")
                print(f"ground-station link: {gcs.describe()}", file=sys.stderr, flush=True)
        except (ParamError, SitlLinkError):
            link.close()
            raise
    else:
        link = TcpServerLink(args.tcp_port, banner=ARDUPILOT_BANNER)
        try:
            ap = ArduPilotAutopilot(ardupilot_config(**common), params, [link])
        except ParamError:
            link.close()
            raise
    return ap, link


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "check-params":
        return _check_params(args)
    if not args.speedup > 0:
        print("autonomy sitl: --speedup must be > 0", file=sys.stderr)
        return 2
    try:
        ap, link = make_autopilot(args)
    except (SitlLinkError, ParamError) as e:
        print(f"autonomy sitl: {e}", file=sys.stderr)
        return 2
    stop = {"flag": False}

    def _on_signal(signum, frame):
        stop["flag"] = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    print(f"READY {args.autopilot} {link.describe()}", flush=True)
    try:
        stats = run_realtime(ap, args.speedup, args.duration_s, should_stop=lambda: stop["flag"])
    finally:
        for ls in ap.links:
            ls.link.close()
    print(f"stopped after {stats.sim_s:.1f} s simulated / {stats.wall_s:.1f} s wall "
          f"(x{stats.achieved_speedup:.2f}, rx {link.stats.rx_msgs} msgs, {link.stats.rx_bad} bad)",
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
