"""Chain descriptions of the supported arms, in the URDF convention of :mod:`hilrl.kinematics.spec`.

Numbers are transcribed from the arms' public URDFs (cited per model). Fixed joints in those
URDFs between two revolute joints are folded into the next joint's origin (only where the fixed
joint has no rotation, so the sum of translations is exact). Only the five arm joints are
modelled; the gripper jaw is not part of the chain, and the tool frame is a point between the
closed jaws' fingertips.

Every model is in the base convention of :mod:`hilrl.kinematics.spec`: z up from the mounting
surface and x forward, i.e. with the pan joint at zero the arm moves in the x-z plane and reaches
out along +x (so workspace boxes, reset positions and teleop axes mean the same on every arm,
the built-in sim arm included). Where a URDF's base
frame faces another way (the SO-100 and Koch URDFs reach along -y), the chain is the URDF's,
mounted turned by a base yaw that is folded into the first joint's origin
(:func:`with_base_yaw`); link dimensions, axes and joint angles are the URDF's unchanged, so
joint-space numbers (calibration, recorded joint positions) mean the same in both frames.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hilrl.kinematics.spec import SIM_ARM, ChainSpec, JointSpec

__all__ = ["CHAIN_SPECS", "KOCH", "MOSS", "SIM_ARM", "SO100", "get_chain_spec", "with_base_yaw"]

_HALF_PI = math.pi / 2.0


def with_base_yaw(chain: ChainSpec, yaw: float) -> ChainSpec:
    """``chain`` mounted turned by ``yaw`` radians about the base z axis (same name).

    The base turn ``Rz(yaw)`` is folded into the first joint's origin: its offset is rotated
    and ``yaw`` is added to its origin yaw, which is exact because the fixed-axis rpy applies
    the yaw last (``R = Rz(yaw) Ry(pitch) Rx(roll)``). Tool poses become ``Rz(yaw) @ fk(q)``
    for the same joint angles ``q``. Offsets are rounded to 1e-12 m so a quarter turn gives
    clean zeros.
    """
    if not chain.joints:
        raise ValueError(f"chain '{chain.name}' has no joints to fold a base yaw into")
    first = chain.joints[0]
    c, s = math.cos(yaw), math.sin(yaw)
    x, y, z = first.origin_xyz
    xyz = (round(c * x - s * y, 12) + 0.0, round(s * x + c * y, 12) + 0.0, z)
    roll, pitch, old_yaw = first.origin_rpy
    turned = replace(first, origin_xyz=xyz, origin_rpy=(roll, pitch, old_yaw + yaw))
    return replace(chain, joints=(turned, *chain.joints[1:]))


# SO-ARM100 (The Robot Studio), from TheRobotStudio/SO-ARM100, Simulation/SO100/so100.urdf
# (joints shoulder_pan .. wrist_roll, origins, axes and limits as published there; the same
# kinematics as mujoco_menagerie's trs_so_arm100). The tool point is in the "gripper" (fixed
# jaw) link: the closed fingertip pads sit at x = +/-0.009, y = -0.10 there (menagerie's finger
# pad geoms), so the point between them, slightly inboard of the tips, is (0, -0.098, 0).
# That URDF's base frame has the arm reaching along -y; SO100 below turns it a quarter turn
# (+90 deg yaw) into the x-forward convention.
_SO100_URDF = ChainSpec(
    name="so100",
    joints=(
        JointSpec(
            "shoulder_pan",
            (0.0, -0.0452, 0.0165),
            origin_rpy=(1.57079, 0.0, 0.0),
            axis=(0.0, 1.0, 0.0),
            lower=-2.0,
            upper=2.0,
        ),
        JointSpec(
            "shoulder_lift",
            (0.0, 0.1025, 0.0306),
            origin_rpy=(-1.8, 0.0, 0.0),
            axis=(1.0, 0.0, 0.0),
            lower=0.0,
            upper=3.5,
        ),
        JointSpec(
            "elbow_flex",
            (0.0, 0.11257, 0.028),
            origin_rpy=(1.57079, 0.0, 0.0),
            axis=(1.0, 0.0, 0.0),
            lower=-3.14158,
            upper=0.0,
        ),
        JointSpec(
            "wrist_flex",
            (0.0, 0.0052, 0.1349),
            origin_rpy=(-1.0, 0.0, 0.0),
            axis=(1.0, 0.0, 0.0),
            lower=-2.5,
            upper=1.2,
        ),
        JointSpec(
            "wrist_roll",
            (0.0, -0.0601, 0.0),
            origin_rpy=(0.0, 1.57079, 0.0),
            axis=(0.0, 1.0, 0.0),
            lower=-3.14158,
            upper=3.14158,
        ),
    ),
    tool_xyz=(0.0, -0.098, 0.0),
)
SO100 = with_base_yaw(_SO100_URDF, _HALF_PI)

# Koch v1.1 follower (Alexander Koch / jess-moss/koch-v1-1), from the URDF derived from that
# CAD in haosulab/ManiSkill, mani_skill/assets/robots/koch/follower_arm_v1.1_simplified.urdf
# (joints joint_1 .. joint_5 = shoulder_pan .. wrist_roll, with its real-robot joint limits).
# The fixed base_link -> link_1 offset (0.005766, -0.028665, 0.018513) is folded into
# shoulder_pan's origin. The tool point is that URDF's gripper_tcp frame on link_6. Like the
# SO-100's, that URDF reaches along -y; KOCH below turns it +90 deg into the x-forward convention.
_KOCH_URDF = ChainSpec(
    name="koch",
    joints=(
        JointSpec(
            "shoulder_pan",
            (0.005766, -0.040523, 0.038579),
            axis=(0.0, 0.0, -1.0),
            lower=-3.14159,
            upper=3.14159,
        ),
        JointSpec(
            "shoulder_lift",
            (0.020713, 0.0, 0.015368),
            origin_rpy=(_HALF_PI, 0.0, 0.0),
            axis=(-1.0, 0.0, 0.0),
            lower=0.0,
            upper=2.5,
        ),
        JointSpec(
            "elbow_flex",
            (-0.038026, -0.014951, 0.108424),
            origin_rpy=(-_HALF_PI, 0.0, 0.0),
            axis=(1.0, 0.0, 0.0),
            lower=0.0,
            upper=3.05,
        ),
        JointSpec(
            "wrist_flex",
            (-0.000251, -0.100502, 0.002641),
            origin_rpy=(-_HALF_PI, 0.0, 0.0),
            axis=(1.0, 0.0, 0.0),
            lower=-1.0,
            upper=2.14159,
        ),
        JointSpec(
            "wrist_roll",
            (0.019234, 0.00037, -0.044779),
            origin_rpy=(0.0, 0.0, -_HALF_PI),
            axis=(0.0, 0.0, -1.0),
            lower=-3.14159,
            upper=3.14159,
        ),
    ),
    tool_xyz=(-0.008, 0.0, -0.065),
)
KOCH = with_base_yaw(_KOCH_URDF, _HALF_PI)

# Moss v1 (jess-moss/moss-robot-arms). APPROXIMATE: that repository publishes a parts list and
# CAD renders but no URDF. The arm is built from Feetech STS3215 servos (45.2 x 24.7 x 35 mm)
# joined by the stock metal bracket set, and uses the SO-100 gripper (per its README), so the
# geometry below is estimated from those parts: a vertical pan axis, three parallel pitch axes
# (y) with ~0.11 m links, then the SO-100 wrist roll and gripper (tool 0.098 m along the roll
# axis, as in SO100 above). At q = 0 the arm points straight up; positive shoulder_lift tilts it
# toward +x (already the x-forward convention, no base yaw). Measure a real arm before relying
# on it for absolute positions.
MOSS = ChainSpec(
    name="moss",
    joints=(
        JointSpec("shoulder_pan", (0.0, 0.0, 0.05), axis=(0.0, 0.0, 1.0), lower=-2.0, upper=2.0),
        JointSpec("shoulder_lift", (0.0, 0.0, 0.035), axis=(0.0, 1.0, 0.0), lower=-1.8, upper=1.8),
        JointSpec("elbow_flex", (0.02, 0.0, 0.11), axis=(0.0, 1.0, 0.0), lower=-0.3, upper=2.8),
        JointSpec("wrist_flex", (0.0, 0.0, 0.11), axis=(0.0, 1.0, 0.0), lower=-1.8, upper=1.8),
        JointSpec("wrist_roll", (0.0, 0.0, 0.045), axis=(0.0, 0.0, 1.0), lower=-2.8, upper=2.8),
    ),
    tool_xyz=(0.0, 0.0, 0.098),
)

CHAIN_SPECS: dict[str, ChainSpec] = {
    SIM_ARM.name: SIM_ARM,
    SO100.name: SO100,
    KOCH.name: KOCH,
    MOSS.name: MOSS,
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def get_chain_spec(name: str) -> ChainSpec:
    """The built-in chain called ``name``; case, "-" and "_" are ignored ("SO-100" works)."""
    wanted = _normalise(name)
    for key, spec in CHAIN_SPECS.items():
        if _normalise(key) == wanted:
            return spec
    known = ", ".join(sorted(CHAIN_SPECS))
    raise ValueError(f"unknown chain {name!r}; known chains: {known}")
