"""Chain descriptions of the supported arms, in the URDF convention of :mod:`hilrl.kinematics.spec`.

Numbers are transcribed from the arms' public URDFs (cited per model). Fixed joints in those
URDFs between two revolute joints are folded into the next joint's origin (only where the fixed
joint has no rotation, so the sum of translations is exact). Only the five arm joints are
modelled; the gripper jaw is not part of the chain, and the tool frame is a point between the
closed jaws' fingertips.
"""

from __future__ import annotations

import math

from hilrl.kinematics.spec import SIM_ARM, ChainSpec, JointSpec

__all__ = ["CHAIN_SPECS", "KOCH", "MOSS", "SIM_ARM", "SO100", "get_chain_spec"]

_HALF_PI = math.pi / 2.0

# SO-ARM100 (The Robot Studio), from TheRobotStudio/SO-ARM100, Simulation/SO100/so100.urdf
# (joints shoulder_pan .. wrist_roll, origins, axes and limits as published there; the same
# kinematics as mujoco_menagerie's trs_so_arm100). The tool point is in the "gripper" (fixed
# jaw) link: the closed fingertip pads sit at x = +/-0.009, y = -0.10 there (menagerie's finger
# pad geoms), so the point between them, slightly inboard of the tips, is (0, -0.098, 0).
SO100 = ChainSpec(
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

# Koch v1.1 follower (Alexander Koch / jess-moss/koch-v1-1), from the URDF derived from that
# CAD in haosulab/ManiSkill, mani_skill/assets/robots/koch/follower_arm_v1.1_simplified.urdf
# (joints joint_1 .. joint_5 = shoulder_pan .. wrist_roll, with its real-robot joint limits).
# The fixed base_link -> link_1 offset (0.005766, -0.028665, 0.018513) is folded into
# shoulder_pan's origin. The tool point is that URDF's gripper_tcp frame on link_6.
KOCH = ChainSpec(
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

# Moss v1 (jess-moss/moss-robot-arms). APPROXIMATE: that repository publishes a parts list and
# CAD renders but no URDF. The arm is built from Feetech STS3215 servos (45.2 x 24.7 x 35 mm)
# joined by the stock metal bracket set, and uses the SO-100 gripper (per its README), so the
# geometry below is estimated from those parts: a vertical pan axis, three parallel pitch axes
# (y) with ~0.11 m links, then the SO-100 wrist roll and gripper (tool 0.098 m along the roll
# axis, as in SO100 above). At q = 0 the arm points straight up. Measure a real arm before
# relying on it for absolute positions.
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
