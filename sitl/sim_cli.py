"""``autonomy sim [--scenario NAME] [--seed N] [--out DIR]``: see :mod:`sitl.engagement_demo`."""

from __future__ import annotations

import sys

from sitl.engagement_demo import main as _main


def main(argv: list[str] | None = None) -> int:
    return _main(argv, prog="autonomy sim")


if __name__ == "__main__":
    sys.exit(main())
