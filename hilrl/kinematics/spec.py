"""Serial-chain descriptions in the URDF convention.

Each revolute joint's frame is placed relative to its parent's by ``origin_xyz`` (metres)
and ``origin_rpy`` (radians, fixed-axis roll-pitch-yaw: R = Rz(yaw) Ry(pitch) Rx(roll)),
then rotated by the joint angle about ``axis`` (a unit vector in the joint's own frame).
The tool frame (the end effector: the point between the gripper jaws) sits at
``tool_xyz`` / ``tool_rpy`` in the last joint's frame. The base frame is the robot's
mounting frame (z up, x forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class JointSpec:
    name: str
    origin_xyz: Vec3
    origin_rpy: Vec3 = (0.0, 0.0, 0.0)
    axis: Vec3 = (0.0, 0.0, 1.0)
    lower: float = -math.pi
    upper: float = math.pi


@dataclass(frozen=True)
class ChainSpec:
    name: str
    joints: tuple[JointSpec, ...]
    tool_xyz: Vec3 = (0.0, 0.0, 0.0)
    tool_rpy: Vec3 = (0.0, 0.0, 0.0)

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)


# The built-in MuJoCo desk arm (in the spirit of SO-100): 5 revolute joints, then the
# gripper (not part of this chain; see hilrl.robots.sim). At q = 0 the arm points
# straight up; positive shoulder_lift / elbow_flex / wrist_flex tilt it toward +x.
SIM_ARM = ChainSpec(
    name="sim_arm",
    joints=(
        JointSpec("shoulder_pan", (0.0, 0.0, 0.06), axis=(0.0, 0.0, 1.0), lower=-1.92, upper=1.92),
        JointSpec(
            "shoulder_lift", (0.0, 0.0, 0.045), axis=(0.0, 1.0, 0.0), lower=-1.75, upper=1.75
        ),
        JointSpec("elbow_flex", (0.0, 0.0, 0.12), axis=(0.0, 1.0, 0.0), lower=-0.3, upper=2.6),
        JointSpec("wrist_flex", (0.0, 0.0, 0.13), axis=(0.0, 1.0, 0.0), lower=-1.8, upper=2.2),
        JointSpec("wrist_roll", (0.0, 0.0, 0.05), axis=(0.0, 0.0, 1.0), lower=-2.8, upper=2.8),
    ),
    tool_xyz=(0.0, 0.0, 0.09),
)
