"""Unit tests of the simulated autopilots' pure parts: scalar physics, parameter encodings, parameter files."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sitl import vehicle
from sitl.autopilot import ArduPilotAutopilot, Px4Autopilot, SimConfig
from sitl.autopilot.ardupilot import AP_MODES
from sitl.autopilot.param_files import ParamFileError, check_param_file, check_params, parse_param_text
from sitl.autopilot.params import (
    AP_INTERCEPTOR,
    AP_PARAMS,
    INT8,
    INT16,
    INT32,
    PX4_INTERCEPTOR,
    PX4_PARAMS,
    REAL32,
    ParamError,
    ParamTable,
    coerce,
    decode_bytewise,
    encode_bytewise,
)
from sitl.autopilot.physics import step_fast
from sitl.vehicle import WindParams

REPO = Path(__file__).resolve().parents[2]


def test_scalar_physics_matches_numpy_reference(rng):
    p = vehicle.MultirotorParams()
    s1 = s2 = vehicle.MultirotorState(pos_ned_m=np.array([0.0, 0.0, -20.0]), on_ground=False)
    for i in range(1500):
        acc = rng.normal(size=3) * 12
        yaw = float(rng.uniform(-3, 3)) if i % 3 else None
        wind = rng.normal(size=3) * 3
        armed = i % 400 != 7
        s1 = vehicle.step(s1, p, acc, yaw, 0.01, wind, armed)
        s2 = step_fast(s2, p, tuple(acc), yaw, 0.01, tuple(wind), armed)
    for f in ("pos_ned_m", "vel_ned_mps", "q_body_to_ned", "rate_body_radps", "acc_ned_mps2"):
        np.testing.assert_allclose(getattr(s2, f), getattr(s1, f), atol=1e-9, err_msg=f)
    assert s1.on_ground == s2.on_ground and s1.thrust_mps2 == pytest.approx(s2.thrust_mps2)


def test_ground_contact_and_lockstep_clock():
    ap = Px4Autopilot()
    ap.step(1.0)
    assert ap.t_s == pytest.approx(1.0) and ap.landed and ap.pos_ned_m[2] == 0.0
    ap.run_until(2.5)
    assert ap.t_s == pytest.approx(2.5)
    with pytest.raises(ValueError):
        ap.step(math.nan)


def test_wind_is_seeded_and_pushes_a_disarmed_vehicle_nowhere():
    w = WindParams(mean_ned_mps=(3.0, 0.0, 0.0), gust_std_mps=1.0)
    a, b = Px4Autopilot(SimConfig(wind=w, seed=7)), Px4Autopilot(SimConfig(wind=w, seed=7))
    c = Px4Autopilot(SimConfig(wind=w, seed=8))
    for ap in (a, b, c):
        ap.step(0.5)
    assert np.array_equal(a.wind_ned_mps, b.wind_ned_mps) and not np.array_equal(a.wind_ned_mps, c.wind_ned_mps)
    assert np.all(a.pos_ned_m == 0.0)  # on the ground, disarmed: friction holds it


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(2**31), max_value=2**31 - 1).filter(lambda v: not -8388607 <= v <= -4194305
                                                                   and not 0x7F800001 <= v <= 0x7FBFFFFF))
def test_bytewise_int32_roundtrip(v):
    # int32 bit patterns of *signalling* NaNs cannot survive a Python float (it quiets them): excluded
    wire = encode_bytewise(v, INT32)
    assert decode_bytewise(wire, INT32) == v
    assert struct.pack("<f", wire) == struct.pack("<i", v)


def test_param_types_and_tables():
    assert encode_bytewise(1, INT32) == pytest.approx(1.401298e-45)
    assert coerce(300, INT8) == 127 and coerce(-40000, INT16) == -32768 and coerce(1.7, INT32) == 1.0
    assert coerce(0.1, REAL32) == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    with pytest.raises(ParamError):
        coerce(math.inf, REAL32)
    t = ParamTable(PX4_PARAMS)
    with pytest.raises(ParamError):
        t.set("NOPE", 1)
    assert t.set("MPC_XY_VEL_MAX", 8.0) and not t.set("MPC_XY_VEL_MAX", 8.0)
    assert {d.type_id for d in PX4_PARAMS} <= {INT32, REAL32}
    assert {d.type_id for d in AP_PARAMS} == {INT8, INT16, INT32, REAL32}
    h0 = ParamTable(PX4_PARAMS).hash32()
    assert h0 != t.hash32()
    with pytest.raises(ParamError):
        Px4Autopilot(params={"BAD_NAME": 1})


def test_limits_from_params_are_obeyed_in_process():
    ap = ArduPilotAutopilot(params={"ANGLE_MAX": 1500})
    assert ap.tilt_limit_rad() == pytest.approx(math.radians(15))
    px = Px4Autopilot(params={"MPC_TILTMAX_AIR": 30})
    px.landed = False
    assert px.tilt_limit_rad() == pytest.approx(math.radians(30))
    assert AP_MODES["GUIDED"] == 4 and AP_MODES["LAND"] == 9 and AP_MODES["BRAKE"] == 17


def test_param_file_parsing_and_check():
    text = "# c\n1\t1\tMPC_XY_VEL_MAX\t70.0\t9\n1\t1\tNAV_RCL_ACT\t2\t6\n"
    assert parse_param_text(text) == {"MPC_XY_VEL_MAX": 70.0, "NAV_RCL_ACT": 2.0}
    assert parse_param_text("WPNAV_SPEED,7000\nRTL_ALT 5000 # cm\n") == {"WPNAV_SPEED": 7000.0, "RTL_ALT": 5000.0}
    with pytest.raises(ParamFileError, match=":2:"):
        parse_param_text("A,1\nB,x\n")
    bad = check_params({"A": 1.0, "B": 2.5}, {"A": 1.0, "B": 2.0, "C": 3.0})
    assert [(m.name, m.actual) for m in bad] == [("B", 2.5), ("C", None)]
    assert check_params({"A": 0.1}, {"A": struct.unpack("<f", struct.pack("<f", 0.1))[0]}) == []


@pytest.mark.parametrize("cls,fname,preset", [
    (Px4Autopilot, "px4_interceptor.params", PX4_INTERCEPTOR),
    (ArduPilotAutopilot, "ardupilot_interceptor.parm", AP_INTERCEPTOR),
])
def test_firmware_param_files_match_the_interceptor_preset(cls, fname, preset):
    path = REPO / "firmware_params" / fname
    ap = cls(params=preset)
    assert check_param_file(ap.params.as_dict(), path, ignore_missing=True) == []
    # and a stock autopilot does not pass the check
    assert check_param_file(cls().params.as_dict(), path, ignore_missing=True)
