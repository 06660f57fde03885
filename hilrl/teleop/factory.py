"""``make_controller``: one :class:`TeleopConfig` in, one unstarted input controller out.

Given the env config too, the controller's action matches the env's action space (3 or
6 motion components, gripper last when the env has one) and a device that cannot drive
the env's control mode fails here, before anything starts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, TextIO

from hilrl.config.env import EnvConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.core import InputController, Robot, SimTask
from hilrl.kinematics import KinematicChain, get_chain_spec
from hilrl.robots.factory import make_robot
from hilrl.teleop.base import LatchedController
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.gamepad import GamepadController
from hilrl.teleop.hid import HidGamepad
from hilrl.teleop.leader import LeaderArmController
from hilrl.teleop.mapping import GamepadMapping, default_mapping, load_mapping
from hilrl.teleop.null import NullController
from hilrl.teleop.pynput_keyboard import PynputKeyboard
from hilrl.teleop.sim_operator import make_sim_operator


def make_controller(
    cfg: TeleopConfig,
    *,
    env: EnvConfig | None = None,
    follower: Robot | None = None,
    leader: Robot | None = None,
    out: TextIO | None = None,
) -> InputController:
    """The controller for ``cfg.device``; call its ``start()`` before the first poll.

    ``env`` (optional) sets the action layout (``env.action``: rotation, gripper, control
    mode, masked joints). The leader arm needs ``follower`` (the env's robot) and a leader
    robot: ``leader``, or one built from ``cfg.leader.robot``. Hints go to ``out``
    (default stderr). Raises :class:`TeleopError` for a device that cannot drive ``env``.
    """
    if cfg.device == "none":
        return NullController()
    if cfg.device == "sim":
        return _sim_operator(cfg, env, follower)
    if env is not None and env.gym_id is not None:
        raise TeleopError(
            f"teleop.device={cfg.device} drives a robot arm, but env.gym_id={env.gym_id!r} "
            "has no end-effector action; use teleop.device=none"
        )
    mode = env.action.control_mode if env is not None else "ee_delta"
    gripper = env.action.use_gripper if env is not None else True
    if cfg.device == "leader":
        return _leader(cfg, env, follower, leader, out)
    if mode != "ee_delta":
        raise TeleopError(
            f"teleop.device={cfg.device} produces end-effector steps, but "
            f"env.action.control_mode={mode!r}; set it to 'ee_delta', or use teleop.device=leader"
        )
    rotation = env.action.ee_rotation if env is not None else False
    return make_device(cfg, cfg.device, rotation=rotation, gripper=gripper, out=out)


def make_device(
    cfg: TeleopConfig,
    device: str,
    *,
    rotation: bool = False,
    gripper: bool = True,
    out: TextIO | None = None,
    show_hint: bool | None = None,
) -> LatchedController:
    """A keyboard / gamepad / HID controller with ``cfg``'s settings."""
    common: dict[str, Any] = {
        "rotation": rotation,
        "gripper": gripper,
        "intervention_mode": cfg.intervention_mode,
        "translation_scale": cfg.translation_scale,
        "rotation_scale": cfg.rotation_scale,
        "show_hint": cfg.show_hint if show_hint is None else show_hint,
        "out": out,
    }
    if device == "keyboard":
        backend = cfg.keyboard_backend
        if backend == "auto":
            backend = "pynput" if _desktop_available() else "terminal"
        if backend == "pynput":
            return PynputKeyboard(key_bindings=cfg.key_bindings, **common)
        from hilrl.teleop.terminal import TerminalKeyboard  # optional: termios is POSIX only

        return TerminalKeyboard(key_bindings=cfg.key_bindings, **common)
    if device == "gamepad":
        return GamepadController(
            _mapping(cfg), joystick_index=cfg.joystick_index, deadzone=cfg.deadzone, **common
        )
    if device == "hid":
        if cfg.mapping_file is None:
            raise TeleopError("teleop.device=hid needs teleop.mapping_file (byte offsets)")
        mapping = load_mapping(cfg.mapping_file)
        mapping.check_for_hid()
        return HidGamepad(mapping, deadzone=cfg.deadzone, **common)
    raise TeleopError(f"teleop: {device!r} is not an input device")


def _mapping(cfg: TeleopConfig) -> GamepadMapping:
    return default_mapping() if cfg.mapping_file is None else load_mapping(cfg.mapping_file)


def _desktop_available() -> bool:
    """pynput can work: it is installed and a display session exists."""
    if importlib.util.find_spec("pynput") is None:
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _leader(
    cfg: TeleopConfig,
    env: EnvConfig | None,
    follower: Robot | None,
    leader: Robot | None,
    out: TextIO | None,
) -> InputController:
    if follower is None:
        raise TeleopError("teleop.device=leader: pass the follower robot (the env's robot)")
    if leader is None:
        if cfg.leader.robot is None:
            raise TeleopError(
                "teleop.device=leader: no leader arm; set teleop.leader.robot or pass leader="
            )

        leader = make_robot(cfg.leader.robot)
    mode = env.action.control_mode if env is not None else "joint_absolute"
    chain = None
    masked: tuple[str, ...] = ()
    if env is not None:
        masked = env.action.masked_joints
        if mode == "ee_delta":
            if env.action.ee_rotation:
                raise TeleopError(
                    "teleop.device=leader with ee_delta mirrors translation only; set "
                    "env.action.ee_rotation=false or env.action.control_mode=joint_absolute"
                )
            name = env.chain_name
            if name is None:
                raise TeleopError(
                    f"teleop.device=leader: no kinematic chain for robot type "
                    f"{env.robot.type!r}; use env.action.control_mode=joint_absolute"
                )

            chain = KinematicChain(get_chain_spec(name))
    arm_joints = None
    if masked:
        arm_joints = tuple(j for j in follower.joint_names if j not in masked and j != "gripper")
    trigger = make_device(cfg, cfg.leader.trigger, gripper=False, out=out)
    return LeaderArmController(
        leader,
        follower,
        trigger,
        mode=mode,
        arm_joints=arm_joints,
        gripper=env.action.use_gripper if env is not None else True,
        gripper_close_at_lower=env.action.gripper_close_at_lower if env is not None else True,
        joint_offsets=cfg.leader.joint_offsets,
        joint_signs=cfg.leader.joint_signs,
        joint_step_rad=env.action.joint_step_rad if env is not None else 0.1,
        chain=chain,
        ee_step_m=env.action.ee_step_m if env is not None else (0.02, 0.02, 0.02),
        show_hint=cfg.show_hint,
        out=out,
    )


def _sim_operator(
    cfg: TeleopConfig, env: EnvConfig | None, follower: Robot | None
) -> InputController:
    """The simulated operator: it reads the sim's ground truth through ``follower``."""

    if env is None or not isinstance(follower, SimTask):
        raise TeleopError(
            "teleop.device=sim needs the simulated robot (env.robot.type=sim) and its env "
            "config: the simulated operator reads the sim's ground truth; on a real robot "
            "use keyboard, gamepad, hid or leader"
        )
    return make_sim_operator(cfg.sim, follower, env)
