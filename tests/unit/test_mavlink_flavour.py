"""Flavour tables and encoders: modes, setpoint type masks and refusals, parameter encodings (spec 2, 5, 8)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy.mavlink.errors import SetpointError
from autonomy.mavlink.flavour import (
    COPTER_MODES,
    PX4_MODES,
    ArduPilotFlavour,
    Px4Flavour,
    flavour_for,
    px4_custom_mode,
)
from autonomy.types import Autopilot, Setpoint, SetpointFrame

PX4 = Px4Flavour()
APM = ArduPilotFlavour()

# AUTOPILOT_SPEC section 2 table, verbatim
SPEC_PX4 = {"MANUAL": 65536, "ALTCTL": 131072, "POSCTL": 196608, "AUTO.READY": 17039360,
            "AUTO.TAKEOFF": 33816576, "AUTO.LOITER": 50593792, "AUTO.MISSION": 67371008,
            "AUTO.RTL": 84148224, "AUTO.LAND": 100925440, "AUTO.PRECLAND": 151257088, "ACRO": 327680,
            "OFFBOARD": 393216, "STABILIZED": 458752}


def test_flavour_detection_from_heartbeat_autopilot_field():
    assert flavour_for(12).autopilot is Autopilot.PX4
    assert flavour_for(3).autopilot is Autopilot.ARDUPILOT
    assert flavour_for(8) is None and flavour_for(0) is None


@pytest.mark.parametrize("name,custom", sorted(SPEC_PX4.items()))
def test_px4_spec_modes_decode_and_encode(name, custom):
    assert PX4.mode_name(custom) == name
    _, main, sub = PX4.set_mode_params(name)
    assert px4_custom_mode(int(main), int(sub)) == custom


def test_px4_offboard_is_main_mode_6():
    assert px4_custom_mode(6, 0) == 393216
    assert px4_custom_mode(6, 0) == 0x60000
    assert PX4.mode_name(393216) == "OFFBOARD"
    # the old (sub-mode) reading of OFFBOARD is not OFFBOARD
    assert PX4.mode_name(6 << 24) != "OFFBOARD"
    assert PX4.set_mode_params("OFFBOARD") == (1.0, 6.0, 0.0)


def test_every_px4_mode_round_trips_and_is_unique():
    seen = set()
    for name, (main, sub) in PX4_MODES.items():
        cm = px4_custom_mode(main, sub)
        assert cm & 0xFFFF == 0
        assert PX4.mode_name(cm) == name
        seen.add(cm)
    assert len(seen) == len(PX4_MODES) >= 13 + 8 + 3  # spec table, EXTERNAL1-8, SLOW/TERMINATION/CRUISE
    assert PX4.mode_name(px4_custom_mode(4, 0)) == "AUTO"
    assert PX4.mode_name(px4_custom_mode(99, 3)).startswith("PX4_UNKNOWN")


@pytest.mark.parametrize("name,number", sorted(COPTER_MODES.items()))
def test_every_arducopter_mode_round_trips(name, number):
    assert APM.mode_name(number) == name
    assert APM.set_mode_params(name) == (1.0, float(number), 0.0)


def test_arducopter_mode_table_matches_spec():
    assert (COPTER_MODES["GUIDED"], COPTER_MODES["LOITER"], COPTER_MODES["RTL"], COPTER_MODES["LAND"],
            COPTER_MODES["BRAKE"], COPTER_MODES["TURTLE"]) == (4, 5, 6, 9, 17, 28)
    assert len(COPTER_MODES) == 26
    assert APM.mode_name(10).startswith("COPTER_UNKNOWN")


def test_unknown_mode_name_is_refused():
    with pytest.raises(ValueError, match="unknown PX4 mode"):
        PX4.set_mode_params("GUIDED")
    with pytest.raises(ValueError, match="unknown ArduCopter mode"):
        APM.set_mode_params("OFFBOARD")


V = np.array([1.0, 2.0, -0.5])


@pytest.mark.parametrize("fl", [PX4, APM], ids=["px4", "ardupilot"])
@pytest.mark.parametrize("kwargs,mask", [
    ({"pos_ned_m": V}, 3576), ({"pos_ned_m": V, "yaw_rad": 0.3}, 2552), ({"vel_ned_mps": V}, 3527),
    ({"vel_ned_mps": V, "yaw_rad": 0.3}, 2503), ({"vel_ned_mps": V, "yaw_rate_radps": 0.7}, 1479),
    ({"acc_ned_mps2": V}, 3135), ({"pos_ned_m": V, "vel_ned_mps": V}, 3520),
])
def test_spec_type_masks(fl, kwargs, mask):
    enc = fl.encode_setpoint(Setpoint(t_s=0.0, **kwargs))
    assert enc.type_mask == mask and enc.coordinate_frame == 1


def test_body_frame_and_values_are_carried():
    enc = PX4.encode_setpoint(Setpoint(t_s=0.0, vel_ned_mps=V, yaw_rate_radps=-0.2, frame=SetpointFrame.BODY_NED))
    assert enc.coordinate_frame == 8 and enc.vel_mps == (1.0, 2.0, -0.5) and enc.yaw_rate_radps == -0.2


@pytest.mark.parametrize("fl,kwargs,match", [
    (PX4, {"pos_ned_m": V, "frame": SetpointFrame.BODY_NED}, "BODY_NED"),
    (APM, {"pos_ned_m": V, "acc_ned_mps2": V}, "position \\+ acceleration"),
    (APM, {"vel_ned_mps": np.array([1001.0, 0, 0])}, "1000"),
    (PX4, {"vel_ned_mps": np.array([np.nan, 0, 0])}, "non-finite"),
    (APM, {"acc_ned_mps2": np.array([0, np.inf, 0])}, "non-finite"),
    (PX4, {"vel_ned_mps": V, "yaw_rad": math.nan}, "not finite"),
    (PX4, {"vel_ned_mps": V, "yaw_rad": 0.1, "yaw_rate_radps": 0.1}, "not both"),
    (APM, {"yaw_rad": 0.1}, "needs position"),
    (PX4, {}, "needs position"),
    (PX4, {"vel_ned_mps": np.zeros(2)}, "shape"),
])
def test_refused_before_sending(fl, kwargs, match):
    with pytest.raises(SetpointError, match=match):
        fl.encode_setpoint(Setpoint(t_s=0.0, **kwargs))


def test_ardupilot_accepts_body_position_offset_and_px4_accepts_pos_acc():
    APM.encode_setpoint(Setpoint(t_s=0.0, pos_ned_m=V, frame=SetpointFrame.BODY_NED))
    PX4.encode_setpoint(Setpoint(t_s=0.0, pos_ned_m=V, acc_ned_mps2=V))


vec = st.one_of(st.none(), st.lists(st.floats(-100, 100), min_size=3, max_size=3).map(np.array))


@settings(deadline=None)
@given(pos=vec, vel=vec, acc=vec, yaw=st.one_of(st.none(), st.floats(-3, 3)))
def test_type_mask_round_trips(pos, vel, acc, yaw):
    sp = Setpoint(t_s=0.0, pos_ned_m=pos, vel_ned_mps=vel, acc_ned_mps2=acc, yaw_rad=yaw)
    for fl in (PX4, APM):
        try:
            enc = fl.encode_setpoint(sp)
        except SetpointError:
            assert (pos is None and vel is None and acc is None) or (
                fl is APM and pos is not None and acc is not None and vel is None)
            continue
        m = enc.type_mask
        assert ((m & 7) == 0) == (pos is not None) and ((m & 7) in (0, 7))
        assert ((m >> 3 & 7) == 0) == (vel is not None) and ((m >> 3 & 7) in (0, 7))
        assert ((m >> 6 & 7) == 0) == (acc is not None) and ((m >> 6 & 7) in (0, 7))
        assert (not m & 1024) == (yaw is not None) and m & 2048 and not m & 512


def test_px4_int_params_are_bytewise():
    # MAV_SYS_ID = 1 arrives as the float 1.401298e-45 (spec section 8, flight A README)
    wire = PX4.encode_param(1, 6)
    assert struct.pack("<f", wire) == b"\x01\x00\x00\x00" and abs(wire - 1.401298e-45) < 1e-50
    assert PX4.decode_param(wire, 6) == 1
    assert PX4.decode_param(12.0, 9) == 12.0
    with pytest.raises(ValueError):
        PX4.encode_param(1.5, 6)


@settings(deadline=None)
@given(st.integers(-(2**31), 2**31 - 1))
def test_px4_int32_round_trip(v):
    bits = v & 0xFFFFFFFF
    if (bits & 0x7FC00000) == 0x7F800000 and bits & 0x003FFFFF:   # signalling NaN: refused, not corrupted
        with pytest.raises(ValueError, match="signalling-NaN"):
            PX4.encode_param(v, 6)
        return
    assert PX4.decode_param(PX4.encode_param(v, 6), 6) == v


@settings(deadline=None)
@given(st.integers(-(2**24), 2**24))
def test_ardupilot_params_are_float_cast(v):
    for t in (2, 4, 6):
        assert APM.encode_param(v, t) == float(v)
        assert APM.decode_param(float(v), t) == v
    assert APM.decode_param(3.0, 9) == 3.0
