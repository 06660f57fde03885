"""Rotation and rigid-transform helpers (pure numpy).

Conventions match :mod:`hilrl.kinematics.spec` and URDF: roll-pitch-yaw angles are fixed-axis
(``R = Rz(yaw) @ Ry(pitch) @ Rx(roll)``), poses are 4x4 homogeneous matrices mapping child
coordinates to parent coordinates, and quaternions are ``(w, x, y, z)`` as MuJoCo stores them.
These are small, allocation-light functions because the env and teleop call them every tick.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "invert_pose",
    "make_pose",
    "matrix_from_quat",
    "matrix_from_rotvec",
    "matrix_from_rpy",
    "quat_from_matrix",
    "rotation_about_axis",
    "rotation_angle_between",
    "rotvec_from_matrix",
    "rpy_from_matrix",
    "skew",
]

ArrayLike3 = Sequence[float] | np.ndarray


def _vec3(v: ArrayLike3, name: str) -> np.ndarray:
    """Return ``v`` as a float (3,) array or raise naming the argument."""
    a = np.asarray(v, dtype=float)
    if a.shape != (3,):
        raise ValueError(f"{name} must have shape (3,), got {a.shape}")
    return a


def _mat3(m: np.ndarray, name: str) -> np.ndarray:
    """Return ``m`` as a float (3, 3) array or raise naming the argument."""
    a = np.asarray(m, dtype=float)
    if a.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3), got {a.shape}")
    return a


def skew(v: ArrayLike3) -> np.ndarray:
    """Cross-product matrix: ``skew(a) @ b == cross(a, b)``."""
    x, y, z = _vec3(v, "v")
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def matrix_from_rpy(rpy: ArrayLike3) -> np.ndarray:
    """Rotation matrix of fixed-axis roll-pitch-yaw angles: ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``."""
    roll, pitch, yaw = _vec3(rpy, "rpy")
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array(
        [
            [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
            [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
            [-sp, cp * sr, cp * cr],
        ]
    )


def rpy_from_matrix(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`matrix_from_rpy`, with pitch in ``[-pi/2, pi/2]``.

    At gimbal lock (``|pitch| = pi/2``) roll and yaw are not separable; roll is set to 0 and the
    whole rotation about the vertical goes into yaw, so ``matrix_from_rpy`` still round-trips.
    """
    R = _mat3(R, "R")
    sp = -R[2, 0]
    if abs(sp) >= 1.0 - 1e-12:
        pitch = math.copysign(math.pi / 2.0, sp)
        yaw = math.atan2(-R[0, 1], R[1, 1])
        return np.array([0.0, pitch, yaw])
    pitch = math.atan2(sp, math.hypot(R[0, 0], R[1, 0]))
    roll = math.atan2(R[2, 1], R[2, 2])
    yaw = math.atan2(R[1, 0], R[0, 0])
    return np.array([roll, pitch, yaw])


def make_pose(xyz: ArrayLike3, rpy: ArrayLike3 = (0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 homogeneous transform with translation ``xyz`` (metres) and rotation ``rpy`` (radians)."""
    T = np.eye(4)
    T[:3, :3] = matrix_from_rpy(rpy)
    T[:3, 3] = _vec3(xyz, "xyz")
    return T


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform, using ``R.T`` rather than a general matrix inverse."""
    T = np.asarray(T, dtype=float)
    if T.shape != (4, 4):
        raise ValueError(f"T must have shape (4, 4), got {T.shape}")
    out = np.eye(4)
    Rt = T[:3, :3].T
    out[:3, :3] = Rt
    out[:3, 3] = -Rt @ T[:3, 3]
    return out


def rotation_about_axis(axis: ArrayLike3, angle: float) -> np.ndarray:
    """Rotation by ``angle`` radians about unit-normalised ``axis`` (Rodrigues' formula)."""
    a = _vec3(axis, "axis")
    n = float(np.linalg.norm(a))
    if n == 0.0:
        raise ValueError("axis must be non-zero")
    return matrix_from_rotvec(a * (angle / n))


def matrix_from_rotvec(rotvec: ArrayLike3) -> np.ndarray:
    """Exponential map: rotation vector (axis * angle, radians) to rotation matrix."""
    w = _vec3(rotvec, "rotvec")
    theta = float(np.linalg.norm(w))
    K = skew(w)
    if theta < 1e-8:
        # Second-order Taylor expansion; exact to double precision at this size.
        return np.eye(3) + K + 0.5 * (K @ K)
    return (
        np.eye(3) + (math.sin(theta) / theta) * K + ((1.0 - math.cos(theta)) / theta**2) * (K @ K)
    )


def rotvec_from_matrix(R: np.ndarray) -> np.ndarray:
    """Logarithm map: rotation matrix to rotation vector with angle in ``[0, pi]``.

    Stable near 0 (uses the antisymmetric part) and near ``pi`` (uses the symmetric part,
    where the antisymmetric part vanishes), which IK needs for large orientation errors.
    """
    R = _mat3(R, "R")
    v = 0.5 * np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    s = float(np.linalg.norm(v))  # sin(theta)
    c = 0.5 * (float(np.trace(R)) - 1.0)  # cos(theta)
    theta = math.atan2(s, c)
    if s < 1e-6 and c > 0.0:
        # Near identity: theta ~ s, so v / sinc(theta) ~ v (1 + theta^2 / 6).
        return v * (1.0 + theta * theta / 6.0)
    if c < -0.99:
        # Near pi: the symmetric part is c I + (1 - c) a a^T, so a a^T is recoverable from it;
        # take the axis from its largest column.
        M = (0.5 * (R + R.T) - c * np.eye(3)) / (1.0 - c)
        k = int(np.argmax(np.diag(M)))
        axis = M[:, k] / math.sqrt(max(M[k, k], 1e-300))
        axis /= np.linalg.norm(axis)
        # Pick the sign consistent with the antisymmetric part (which is 2 sin(theta) axis).
        if float(axis @ v) < 0.0:
            axis = -axis
        return axis * theta
    return v * (theta / s)


def rotation_angle_between(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle (radians, in ``[0, pi]``) of the relative rotation ``Ra.T @ Rb``.

    Uses ``atan2(sin, cos)`` rather than ``arccos(cos)``, which loses precision for small angles.
    """
    Ra = _mat3(Ra, "Ra")
    Rb = _mat3(Rb, "Rb")
    D = Ra.T @ Rb
    s = 0.5 * math.sqrt(
        (D[2, 1] - D[1, 2]) ** 2 + (D[0, 2] - D[2, 0]) ** 2 + (D[1, 0] - D[0, 1]) ** 2
    )
    c = 0.5 * (D[0, 0] + D[1, 1] + D[2, 2] - 1.0)
    return math.atan2(s, c)


def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` with ``w >= 0`` of a rotation matrix (Shepperd's method)."""
    R = _mat3(R, "R")
    tr = float(np.trace(R))
    if tr > 0.0:
        S = math.sqrt(tr + 1.0) * 2.0
        q = np.array(
            [0.25 * S, (R[2, 1] - R[1, 2]) / S, (R[0, 2] - R[2, 0]) / S, (R[1, 0] - R[0, 1]) / S]
        )
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        S = math.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2.0
        q = np.array(
            [(R[2, 1] - R[1, 2]) / S, 0.25 * S, (R[0, 1] + R[1, 0]) / S, (R[0, 2] + R[2, 0]) / S]
        )
    elif R[1, 1] > R[2, 2]:
        S = math.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2.0
        q = np.array(
            [(R[0, 2] - R[2, 0]) / S, (R[0, 1] + R[1, 0]) / S, 0.25 * S, (R[1, 2] + R[2, 1]) / S]
        )
    else:
        S = math.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2.0
        q = np.array(
            [(R[1, 0] - R[0, 1]) / S, (R[0, 2] + R[2, 0]) / S, (R[1, 2] + R[2, 1]) / S, 0.25 * S]
        )
    q /= np.linalg.norm(q)
    return q if q[0] >= 0.0 else -q


def matrix_from_quat(quat: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation matrix of a quaternion ``(w, x, y, z)``; normalises it first."""
    q = np.asarray(quat, dtype=float)
    if q.shape != (4,):
        raise ValueError(f"quat must have shape (4,), got {q.shape}")
    n = float(np.linalg.norm(q))
    if n == 0.0:
        raise ValueError("quat must be non-zero")
    w, x, y, z = q / n
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
