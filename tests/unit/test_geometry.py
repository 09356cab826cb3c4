import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from autonomy import geometry as g

angles = st.floats(-math.pi + 1e-3, math.pi - 1e-3)
pitches = st.floats(-math.pi / 2 + 0.05, math.pi / 2 - 0.05)


@given(angles, pitches, angles)
def test_euler_quat_round_trip(roll, pitch, yaw):
    q = g.euler_to_quat(roll, pitch, yaw)
    assert abs(np.linalg.norm(q) - 1.0) < 1e-12
    r2, p2, y2 = g.quat_to_euler(q)
    assert abs(g.wrap_pi(r2 - roll)) < 1e-9
    assert abs(p2 - pitch) < 1e-9
    assert abs(g.wrap_pi(y2 - yaw)) < 1e-9


@given(angles, pitches, angles)
def test_rotmat_is_orthonormal_and_round_trips(roll, pitch, yaw):
    q = g.euler_to_quat(roll, pitch, yaw)
    r = g.quat_to_rotmat(q)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert abs(np.linalg.det(r) - 1.0) < 1e-12
    np.testing.assert_allclose(g.rotmat_to_quat(r), q, atol=1e-9)


def test_yaw_90_maps_body_forward_to_east():
    q = g.euler_to_quat(0.0, 0.0, math.pi / 2)
    np.testing.assert_allclose(g.rotate_body_to_ned(q, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)


def test_nose_up_pitch_points_forward_axis_up():
    q = g.euler_to_quat(0.0, math.radians(30), 0.0)
    f = g.rotate_body_to_ned(q, [1.0, 0.0, 0.0])
    assert f[2] < 0  # up is negative down
    np.testing.assert_allclose(f, [math.cos(math.radians(30)), 0.0, -math.sin(math.radians(30))], atol=1e-12)


@settings(max_examples=50)
@given(angles, pitches, angles, angles, pitches, angles, st.floats(0.0, 1.0))
def test_slerp_endpoints_and_unit_norm(r0, p0, y0, r1, p1, y1, frac):
    q0, q1 = g.euler_to_quat(r0, p0, y0), g.euler_to_quat(r1, p1, y1)
    q = g.quat_slerp(q0, q1, frac)
    assert abs(np.linalg.norm(q) - 1.0) < 1e-9
    np.testing.assert_allclose(abs(np.dot(g.quat_slerp(q0, q1, 0.0), q0)), 1.0, atol=1e-9)
    np.testing.assert_allclose(abs(np.dot(g.quat_slerp(q0, q1, 1.0), q1)), 1.0, atol=1e-9)


def test_quat_integrate_constant_rate():
    q = np.array([1.0, 0, 0, 0])
    for _ in range(100):
        q = g.quat_integrate(q, [0.0, 0.0, math.pi / 2], 0.01)  # 90 deg/s yaw for 1 s
    assert abs(g.quat_to_euler(q)[2] - math.pi / 2) < 1e-9


@given(st.floats(-1000, 1000), st.floats(-1000, 1000), st.floats(-500, 500))
def test_geodetic_round_trip(n, e, d):
    lat0, lon0, alt0 = 47.397742, 8.545594, 488.0
    lat, lon, alt = g.ned_to_geodetic(np.array([n, e, d]), lat0, lon0, alt0)
    np.testing.assert_allclose(g.geodetic_to_ned(lat, lon, alt, lat0, lon0, alt0), [n, e, d], atol=1e-6)


def test_normalize_rejects_zero_and_nan():
    import pytest

    with pytest.raises(ValueError):
        g.quat_normalize([0.0, 0, 0, 0])
    with pytest.raises(ValueError):
        g.quat_normalize([np.nan, 0, 0, 1])


def test_los_angle_between_a_unit_line_of_sight_and_a_point():
    los = np.array([1.0, 0.0, 0.0])
    assert g.los_angle_rad(los, np.array([200.0, 0.0, 0.0])) == 0.0
    assert math.isclose(g.los_angle_rad(los, np.array([100.0, 100.0, 0.0])), math.pi / 4)
    assert math.isclose(g.los_angle_rad(los, np.array([-3.0, 0.0, 0.0])), math.pi)
    assert math.isclose(g.los_angle_rad(los, np.zeros(3)), math.pi / 2)  # no direction: not "on" the LOS
    # rounding that takes the cosine a hair over 1 is clamped, not a math domain error
    assert g.los_angle_rad(np.array([1.0 + 1e-15, 0.0, 0.0]), np.array([5.0, 0.0, 0.0])) == 0.0
