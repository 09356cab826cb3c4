"""The detector the e2e engagements fly, for the lockstep and the real-time tests alike.

``E2E_MODEL=PATH`` flies another detector (e.g. models/detector_v1.onnx, the default until session 16) with the
same config: a measurement like ``E2E_FAMILY_SCENE_OFFSET`` (the ``KNOWN_MISSES`` table is the shipped model's),
so a family run that misses is an xfail with its numbers, and the safety asserts still hold."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autonomy.config import load_config
from sitl.engagement_demo import SITL_CONFIG

E2E_MODEL = os.environ.get("E2E_MODEL", "")


def model_or_skip() -> Path:
    """``E2E_MODEL`` (a missing file fails the test: the user asked for it) or the sim config's model (a checkout
    without it skips)."""
    path = Path(E2E_MODEL or load_config(SITL_CONFIG).detector.model_path)
    if not path.is_file():
        if E2E_MODEL:
            pytest.fail(f"E2E_MODEL={E2E_MODEL}: no such file")
        pytest.skip(f"shipped detector {path} is not in this checkout yet (models/ room)")
    return path
