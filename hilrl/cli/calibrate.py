"""``hilrl calibrate``: record a real arm's joint calibration into its calibration file.

The arm in ``env.robot`` (or, with ``--leader``, the leader arm in
``teleop.leader.robot``) is calibrated interactively with torque off: hold it in the
calibration pose, turn each joint a little in its positive direction, then sweep every
joint through its travel. The positive direction of each joint is described from the
arm's kinematic chain (which way the gripper tip moves). The result goes to the config's
``calibration_file`` (or ``--out``); an existing file is kept as ``<file>.bak``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import ConfigError
from hilrl.config.robot import REAL_ROBOT_TYPES, RobotConfig
from hilrl.config.root import RootConfig
from hilrl.kinematics import KinematicChain, get_chain_spec
from hilrl.robots.calibration import (
    ArmCalibration,
    CalibrationError,
    CalibrationIO,
    TerminalIO,
    calibrate,
    describe_calibration,
    joint_setups,
    save_calibration,
)
from hilrl.robots.factory import make_motor_bus
from hilrl.robots.motor_bus import MotorBusError, PortFactory
from hilrl.robots.serial_arm import ARM_LAYOUTS

HINT_STEP_RAD = 0.1
HINT_MIN_MM = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--leader",
        action="store_true",
        help="calibrate the leader arm (teleop.leader.robot) instead of env.robot",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="write the calibration here instead of the robot's calibration_file",
    )
    add_config_arguments(parser, RootConfig, "hilrl calibrate --config configs/so100_real.yaml")


def positive_direction_hints(chain_name: str, pose: Sequence[float]) -> dict[str, str]:
    """Per arm joint, in words: where the gripper tip goes when the joint turns positive.

    Directions are relative to the arm: 'outward' is horizontally away from the base,
    'left' is to the left when looking from the base along the arm. A joint that does not
    move the tip (the wrist roll) is described by its sense of rotation seen from the tip.
    """
    chain = KinematicChain(get_chain_spec(chain_name))
    q = np.clip(np.asarray(pose, dtype=np.float64), chain.lower, chain.upper)
    frames = chain.joint_frames(q)
    tip = frames[-1][:3, 3]
    radial = np.array([tip[0], tip[1], 0.0])
    radial = radial / max(float(np.linalg.norm(radial)), 1e-9)
    left = np.cross([0.0, 0.0, 1.0], radial)
    hints: dict[str, str] = {}
    for k, joint in enumerate(chain.spec.joints):
        dq = q.copy()
        dq[k] += HINT_STEP_RAD
        move = (chain.fk(dq)[:3, 3] - tip) * 1000.0
        parts = {
            ("up", "down"): float(move[2]),
            ("outward", "inward"): float(move @ radial),
            ("left", "right"): float(move @ left),
        }
        words = [
            f"{pos if v > 0 else neg} {abs(v):.0f} mm"
            for (pos, neg), v in sorted(parts.items(), key=lambda kv: -abs(kv[1]))
            if abs(v) >= HINT_MIN_MM
        ]
        if words:
            hints[joint.name] = f"per {HINT_STEP_RAD} rad the gripper tip moves " + ", ".join(words)
        else:
            axis = frames[k][:3, :3] @ np.asarray(joint.axis, dtype=np.float64)
            toward_tip = float(axis @ (tip - frames[k][:3, 3])) > 0
            sense = "counter-clockwise" if toward_tip else "clockwise"
            hints[joint.name] = f"the gripper turns {sense} as seen looking at it from its tip"
    return hints


def run_calibration(
    robot: RobotConfig,
    out: Path,
    io: CalibrationIO,
    *,
    port_factory: PortFactory | None = None,
) -> ArmCalibration:
    """Calibrate the arm ``robot`` describes and save the result to ``out``."""
    if robot.type not in REAL_ROBOT_TYPES:
        raise ConfigError(
            "robot.type", robot.type, f"calibration needs a real arm: {REAL_ROBOT_TYPES}"
        )
    layout = ARM_LAYOUTS[robot.type]
    ids = robot.motor_ids or tuple(range(1, len(layout.joint_names) + 1))
    arm_dof = len(layout.joint_names) - 1
    pose = robot.calibration_pose if robot.calibration_pose is not None else (0.0,) * arm_dof
    hints = positive_direction_hints(layout.chain, pose)
    bus = make_motor_bus(robot, port_factory)
    bus.open()
    try:
        cal = calibrate(
            bus,
            joint_setups(layout.joint_names, ids, hints),
            io,
            robot_type=robot.type,
            reference_pose=pose,
        )
    finally:
        bus.close()
    if out.exists():
        shutil.copy2(out, out.with_name(out.name + ".bak"))
    save_calibration(cal, out)
    return cal


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(RootConfig, args)
    robot = cfg.teleop.leader.robot if args.leader else cfg.env.robot
    field = "teleop.leader.robot" if args.leader else "env.robot"
    if robot is None:
        raise ConfigError(field, None, "no leader arm configured")
    if robot.type not in REAL_ROBOT_TYPES:
        raise ConfigError(
            f"{field}.type", robot.type, f"calibration needs a real arm: {REAL_ROBOT_TYPES}"
        )
    out = Path(args.out or robot.calibration_file)
    io = TerminalIO()
    io.say(
        f"Calibrating the {robot.type} arm on {robot.port} ({field}); the result goes to {out}.\n"
        "Torque stays off: support the arm so it does not fall when released."
    )
    try:
        cal = run_calibration(robot, out, io)
    except (MotorBusError, CalibrationError, EOFError) as exc:
        print(f"hilrl calibrate: {exc}", file=sys.stderr)
        return 2
    io.say(describe_calibration(cal))
    io.say(f"Saved {out}. Check it with 'hilrl teleop --config ...' before training.")
    return 0
