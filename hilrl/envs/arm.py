"""Where a robot's joints sit in its kinematic chain, and chains with some joints frozen.

The wrappers address joints by robot index (the order of ``robot.joint_names``) and do
kinematics with a :class:`~hilrl.kinematics.KinematicChain`; :class:`ArmModel` maps one
onto the other. :func:`freeze_joints` folds held joints into fixed transforms so the
library IK solves for the free joints only (joint masking in end-effector control).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from hilrl.core import Robot
from hilrl.kinematics import (
    ChainSpec,
    JointSpec,
    KinematicChain,
    make_pose,
    rpy_from_matrix,
)
from hilrl.kinematics.transforms import rotation_about_axis

GRIPPER_NAME = "gripper"
FK_CACHE_SIZE = 4


@dataclass(frozen=True)
class ArmModel:
    """A robot's arm joints as a chain, plus its gripper joint (if any)."""

    chain: KinematicChain
    arm_index: np.ndarray
    """Robot joint index of each chain joint, in chain order."""
    gripper_index: int | None
    """Robot joint index of the gripper (the last joint named 'gripper'), or None."""
    lower: np.ndarray
    """Robot joint lower limits (all joints, robot order)."""
    upper: np.ndarray
    """Robot joint upper limits (all joints, robot order)."""
    _fk_cache: dict[bytes, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def tool_pose(self, q_arm: np.ndarray) -> np.ndarray:
        """FK of the arm joints (chain order), remembering the last few answers (read-only).

        One step asks for the pose at the measured joints more than once (the action
        wrapper, then the safety layer); the cache answers the repeats.
        """
        q = np.ascontiguousarray(q_arm, dtype=np.float64)
        key = q.tobytes()
        pose = self._fk_cache.get(key)
        if pose is None:
            pose = self.chain.fk(q)
            pose.setflags(write=False)
            if len(self._fk_cache) >= FK_CACHE_SIZE:
                del self._fk_cache[next(iter(self._fk_cache))]
            self._fk_cache[key] = pose
        return pose

    @property
    def num_joints(self) -> int:
        return len(self.lower)


def arm_model(robot: Robot, spec: ChainSpec) -> ArmModel:
    """Match ``spec``'s joints to ``robot``'s by name; error naming any missing joint."""
    names = list(robot.joint_names)
    missing = [j for j in spec.joint_names if j not in names]
    if missing:
        raise ValueError(f"robot joints {tuple(names)} lack chain '{spec.name}' joints {missing}")
    arm_index = np.array([names.index(j) for j in spec.joint_names], dtype=np.int64)
    gripper = len(names) - 1 if names and names[-1] == GRIPPER_NAME else None
    lower, upper = robot.joint_limits
    return ArmModel(
        chain=KinematicChain(spec),
        arm_index=arm_index,
        gripper_index=gripper,
        lower=np.asarray(lower, dtype=np.float64),
        upper=np.asarray(upper, dtype=np.float64),
    )


def freeze_joints(spec: ChainSpec, held: Mapping[str, float]) -> ChainSpec:
    """The chain with each joint in ``held`` fixed at its value, folded into the next origin.

    FK of the result over the free joints equals FK of ``spec`` with the held joints at
    their values. Raises if every joint is held (nothing left to solve for).
    """
    unknown = set(held) - set(spec.joint_names)
    if unknown:
        raise ValueError(f"chain '{spec.name}' has no joints {sorted(unknown)}")
    if len(held) == spec.dof:
        raise ValueError(f"chain '{spec.name}': every joint is held")
    joints: list[JointSpec] = []
    carry = np.eye(4)  # transform from the last free joint's frame to the current one
    for j in spec.joints:
        origin = carry @ make_pose(j.origin_xyz, j.origin_rpy)
        if j.name in held:
            rot = np.eye(4)
            rot[:3, :3] = rotation_about_axis(j.axis, float(held[j.name]))
            carry = origin @ rot
            continue
        joints.append(
            JointSpec(
                j.name,
                _vec3(origin[:3, 3]),
                _vec3(rpy_from_matrix(origin[:3, :3])),
                j.axis,
                j.lower,
                j.upper,
            )
        )
        carry = np.eye(4)
    tool = carry @ make_pose(spec.tool_xyz, spec.tool_rpy)
    return ChainSpec(
        name=f"{spec.name}-frozen",
        joints=tuple(joints),
        tool_xyz=_vec3(tool[:3, 3]),
        tool_rpy=_vec3(rpy_from_matrix(tool[:3, :3])),
    )


def _vec3(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))
