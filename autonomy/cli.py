"""`autonomy` command line: a thin dispatcher over library functions.

Each sub-command lives in its own module exposing ``main(argv: list[str]) -> int``; modules are imported only
when their command runs, so `autonomy --help` stays fast and a missing optional extra breaks only its command.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sitl": ("sitl.cli", "run the simulated autopilot (sitl serve --autopilot px4|ardupilot)"),
    "demo": ("sitl.engagement_demo", "fly an engagement on the embedded simulator and write its report"),
    "detect": ("autonomy.perception.cli", "run the detector on an image, video or folder"),
    "campaign": ("sitl.campaign_cli", "Monte Carlo engagement campaign over scenario families"),
    "bench": ("autonomy.bench_cli", "run the benchmarks (same as make bench)"),
    "sim": ("sitl.sim_cli", "one engagement on the embedded simulator through the full pipeline, with a report"),
    "fly": ("autonomy.fly", "the companion service: autonomy fly --config FILE (self-check, then fly)"),
    "calibrate": ("autonomy.camera.calibrate", "camera calibration from chessboard images/video -> camera TOML"),
    "replay": ("autonomy.replay.cli", "what the stack would have done on a recorded flight (.tlog/.ulg + video)"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: autonomy COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {desc}" for name, (_, desc) in COMMANDS.items()]
    lines += ["", "Run `autonomy COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    if argv[0] == "--version":
        from autonomy import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"autonomy: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
