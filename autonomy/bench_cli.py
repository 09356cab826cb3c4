"""`autonomy bench`: run the benchmarks of a source checkout (they live in ``bench/`` beside ``autonomy/``)."""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parents[1]
    if not (root / "bench" / "__main__.py").is_file():
        print("autonomy bench: the benchmarks ship with the source checkout only (bench/ not found beside "
              f"{root / 'autonomy'}); run `make bench` in a clone of the repository", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.__main__ import main as bench_main

    return bench_main(argv)
