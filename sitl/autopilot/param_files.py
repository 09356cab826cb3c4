"""Read PX4 / ArduPilot parameter files and check a live or dumped parameter set against them.

Formats:
- QGroundControl ``.params`` (PX4): ``sysid<TAB>compid<TAB>NAME<TAB>VALUE<TAB>TYPE``; ``#`` comments.
- Mission Planner / MAVProxy ``.parm`` / ``.param`` (ArduPilot): ``NAME,VALUE`` or ``NAME VALUE``; ``#`` comments.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_]{1,16}$")


class ParamFileError(ValueError):
    """A parameter file could not be read or has a malformed line."""


@dataclass(frozen=True)
class ParamMismatch:
    """``actual`` is None when the parameter is missing from the checked set."""

    name: str
    expected: float
    actual: float | None

    def __str__(self) -> str:
        if self.actual is None:
            return f"{self.name}: missing (expected {self.expected:g})"
        return f"{self.name}: {self.actual:g} (expected {self.expected:g})"


def parse_param_text(text: str, source: str = "<text>") -> dict[str, float]:
    """Parse either format into ``{NAME: value}`` (raises ParamFileError with the line number)."""
    out: dict[str, float] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = line.split("\t") if "\t" in line else re.split(r"[,\s]+", line)
        cols = [c for c in (c.strip() for c in cols) if c]
        if len(cols) >= 4 and cols[0].isdigit() and cols[1].isdigit():
            name, value = cols[2], cols[3]  # QGC: sysid compid name value type
        elif len(cols) == 2:
            name, value = cols
        else:
            raise ParamFileError(f"{source}:{lineno}: cannot parse {raw!r}")
        if not _NAME.match(name):
            raise ParamFileError(f"{source}:{lineno}: bad parameter name {name!r}")
        try:
            v = float(value)
        except ValueError as e:
            raise ParamFileError(f"{source}:{lineno}: value of {name} is not a number: {value!r}") from e
        if not math.isfinite(v):
            raise ParamFileError(f"{source}:{lineno}: value of {name} is not finite")
        out[name] = v
    return out


def load_param_file(path: str | Path) -> dict[str, float]:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ParamFileError(f"cannot read {p}: {e}") from e
    return parse_param_text(text, str(p))


def check_params(actual: Mapping[str, float], expected: Mapping[str, float], *, rel_tol: float = 1e-5,
                 abs_tol: float = 1e-6, ignore_missing: bool = False) -> list[ParamMismatch]:
    """Every expected parameter whose actual value differs (float32 tolerance) or is missing, sorted by name."""
    bad = []
    for name in sorted(expected):
        want = float(expected[name])
        if name not in actual:
            if not ignore_missing:
                bad.append(ParamMismatch(name, want, None))
            continue
        got = float(actual[name])
        if not math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol):
            bad.append(ParamMismatch(name, want, got))
    return bad


def check_param_file(actual: Mapping[str, float], expected_path: str | Path, **kw) -> list[ParamMismatch]:
    return check_params(actual, load_param_file(expected_path), **kw)
