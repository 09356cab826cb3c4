"""Run every benchmark module (bench/bench_*.py), print their results and write DIR/<name>.json."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench", description=__doc__)
    ap.add_argument("--out", default="out/bench", help="folder for the JSON results")
    ap.add_argument("--only", action="append", default=[], help="run only these benchmarks (repeatable)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n.removeprefix("bench_") in args.only or n in args.only]
    failures = 0
    for name in names:
        print(f"=== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            result = importlib.import_module(f"bench.{name}").run(out)
        except Exception as exc:  # noqa: BLE001 - a broken benchmark must not hide the others
            failures += 1
            print(f"{name} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=float))
        print(f"--- {name} done in {time.perf_counter() - t0:.1f} s -> {out / (name + '.json')}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
