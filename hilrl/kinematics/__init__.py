"""Kinematics of serial revolute arms: FK, Jacobian and IK (pure numpy), plus arm models."""

from hilrl.kinematics.chain import IKResult, KinematicChain
from hilrl.kinematics.models import CHAIN_SPECS, KOCH, MOSS, SO100, get_chain_spec
from hilrl.kinematics.spec import SIM_ARM, ChainSpec, JointSpec
from hilrl.kinematics.transforms import (
    invert_pose,
    make_pose,
    matrix_from_quat,
    matrix_from_rotvec,
    matrix_from_rpy,
    quat_from_matrix,
    rotation_angle_between,
    rotvec_from_matrix,
    rpy_from_matrix,
)

__all__ = [
    "CHAIN_SPECS",
    "KOCH",
    "MOSS",
    "SIM_ARM",
    "SO100",
    "ChainSpec",
    "IKResult",
    "JointSpec",
    "KinematicChain",
    "get_chain_spec",
    "invert_pose",
    "make_pose",
    "matrix_from_quat",
    "matrix_from_rotvec",
    "matrix_from_rpy",
    "quat_from_matrix",
    "rotation_angle_between",
    "rotvec_from_matrix",
    "rpy_from_matrix",
]
