"""Round trips and independent oracles for hilrl.kinematics.transforms."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from hilrl.kinematics.transforms import (
    invert_pose,
    make_pose,
    matrix_from_quat,
    matrix_from_rotvec,
    matrix_from_rpy,
    quat_from_matrix,
    rotation_about_axis,
    rotation_angle_between,
    rotvec_from_matrix,
    rpy_from_matrix,
    skew,
)

RNG_SEED = 1234


def _elementary(axis: int, angle: float) -> np.ndarray:
    """Textbook single-axis rotation, written out independently of the module under test."""
    c, s = math.cos(angle), math.sin(angle)
    if axis == 0:
        return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=float)
    if axis == 1:
        return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=float)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=float)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return matrix_from_quat(q)


def test_matrix_from_rpy_is_fixed_axis_zyx_product() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(50):
        r, p, y = rng.uniform(-math.pi, math.pi, size=3)
        expected = _elementary(2, y) @ _elementary(1, p) @ _elementary(0, r)
        np.testing.assert_allclose(matrix_from_rpy((r, p, y)), expected, atol=1e-12)


def test_matrix_from_rpy_matches_mujoco_extrinsic_xyz_euler() -> None:
    # MuJoCo's own conversion, with eulerseq "XYZ" (fixed axes), is an independent oracle.
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        rpy = rng.uniform(-math.pi, math.pi, size=3)
        xml = (
            '<mujoco><compiler angle="radian" eulerseq="XYZ"/><worldbody>'
            f'<body name="b" euler="{rpy[0]} {rpy[1]} {rpy[2]}"><geom size="0.1"/></body>'
            "</worldbody></mujoco>"
        )
        model = mujoco.MjModel.from_xml_string(xml)
        data = mujoco.MjData(model)
        mujoco.mj_kinematics(model, data)
        np.testing.assert_allclose(matrix_from_rpy(rpy), data.xmat[1].reshape(3, 3), atol=1e-9)


def test_make_pose_rpy_round_trip() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(200):
        xyz = rng.uniform(-1.0, 1.0, size=3)
        rpy = np.array(
            [
                rng.uniform(-math.pi, math.pi),
                rng.uniform(-math.pi / 2 + 1e-3, math.pi / 2 - 1e-3),
                rng.uniform(-math.pi, math.pi),
            ]
        )
        T = make_pose(xyz, rpy)
        np.testing.assert_allclose(T[:3, 3], xyz)
        np.testing.assert_allclose(T[3], [0.0, 0.0, 0.0, 1.0])
        np.testing.assert_allclose(rpy_from_matrix(T[:3, :3]), rpy, atol=1e-9)


def test_rpy_from_matrix_round_trips_every_rotation_including_gimbal_lock() -> None:
    rng = np.random.default_rng(RNG_SEED)
    rotations = [_random_rotation(rng) for _ in range(100)]
    rotations += [
        matrix_from_rpy((0.3, math.pi / 2, -1.1)),
        matrix_from_rpy((-2.0, -math.pi / 2, 0.4)),
    ]
    for R in rotations:
        rpy = rpy_from_matrix(R)
        assert -math.pi / 2 - 1e-12 <= rpy[1] <= math.pi / 2 + 1e-12
        np.testing.assert_allclose(matrix_from_rpy(rpy), R, atol=1e-9)


def test_rotvec_round_trip_including_near_zero_and_near_pi() -> None:
    rng = np.random.default_rng(RNG_SEED)
    angles = [0.0, 1e-10, 1e-7, 1e-4, 0.5, 2.0, math.pi - 1e-2, math.pi - 1e-6, math.pi]
    for angle in angles:
        for _ in range(10):
            axis = rng.normal(size=3)
            axis /= np.linalg.norm(axis)
            R = rotation_about_axis(axis, angle)
            v = rotvec_from_matrix(R)
            assert abs(np.linalg.norm(v) - angle) < 1e-8
            np.testing.assert_allclose(matrix_from_rotvec(v), R, atol=1e-9)
            if 1e-6 < angle < math.pi - 1e-3:
                np.testing.assert_allclose(v, axis * angle, atol=1e-9)


def test_rotation_about_axis_matches_elementary_rotations() -> None:
    for axis in range(3):
        unit = np.zeros(3)
        unit[axis] = 2.5  # not normalised on purpose
        for angle in (-2.0, 0.3, 3.0):
            np.testing.assert_allclose(
                rotation_about_axis(unit, angle), _elementary(axis, angle), atol=1e-12
            )


def test_rotation_angle_between() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for angle in (0.0, 1e-9, 1e-5, 0.7, 3.0, math.pi):
        axis = rng.normal(size=3)
        Ra = _random_rotation(rng)
        Rb = Ra @ rotation_about_axis(axis, angle)
        assert rotation_angle_between(Ra, Rb) == pytest.approx(angle, abs=1e-9)
        assert rotation_angle_between(Rb, Ra) == pytest.approx(angle, abs=1e-9)


def test_quaternion_round_trip_and_mujoco_oracle() -> None:
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(100):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[0] >= 0 else -q
        R = matrix_from_quat(q)
        mat = np.zeros(9)
        mujoco.mju_quat2Mat(mat, q)
        np.testing.assert_allclose(R, mat.reshape(3, 3), atol=1e-12)
        np.testing.assert_allclose(quat_from_matrix(R), q, atol=1e-9)


def test_invert_pose_and_skew() -> None:
    rng = np.random.default_rng(RNG_SEED)
    T = make_pose(rng.normal(size=3), rng.normal(size=3))
    np.testing.assert_allclose(invert_pose(T) @ T, np.eye(4), atol=1e-12)
    a, b = rng.normal(size=3), rng.normal(size=3)
    np.testing.assert_allclose(skew(a) @ b, np.cross(a, b), atol=1e-12)


def test_bad_shapes_raise_value_error_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="rpy"):
        make_pose((0.0, 0.0, 0.0), (0.0, 0.0))
    with pytest.raises(ValueError, match="xyz"):
        make_pose((0.0, 0.0), (0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="R"):
        rpy_from_matrix(np.eye(4))
    with pytest.raises(ValueError, match="axis"):
        rotation_about_axis((0.0, 0.0, 0.0), 1.0)
