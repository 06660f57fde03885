"""``make_env``: one config in, one fully wrapped gymnasium env out."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import RescaleAction, TimeLimit

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.core import InputController, Robot, SimTask
from hilrl.envs.arm import ArmModel, arm_model
from hilrl.envs.robot_env import RewardFn, RobotEnv
from hilrl.envs.safety import SafetyLayer, SafetyWrapper
from hilrl.envs.wrappers import (
    EEDeltaAction,
    EEPoseObservation,
    GripperAction,
    ImageCropResize,
    InterventionWrapper,
    JointAction,
    JointMaskWrapper,
    JointStateFeatures,
    ObjectStateObservation,
    PolicyObservation,
    ResetPoseWrapper,
    RewardModelWrapper,
)
from hilrl.kinematics import get_chain_spec
from hilrl.robots import make_robot

Env = gym.Env[Any, Any]


def make_env(
    cfg: EnvConfig,
    *,
    robot: Robot | None = None,
    reward_fn: RewardFn | None = None,
    controller: InputController | None = None,
    render_mode: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Env:
    """Build the env of ``cfg``: a robot (``cfg.robot``, or ``robot`` if given) or ``cfg.gym_id``.

    Wrappers, innermost first (observations flow up this list, actions down it)::

        RobotEnv               joint targets in; obs {state: joint positions, images}
        SafetyWrapper          joint limits, per-step joint / end-effector limits, workspace box, watchdog
        ResetPoseWrapper       reset to fixed joint positions     (if reset pose configured)
        JointMaskWrapper       hold masked joints fixed           (if masked joints)
        JointStateFeatures     + joint velocities, currents       (if enabled)
        EEPoseObservation      + normalised end-effector pose     (if enabled)
        ObjectStateObservation + sim ground-truth cube / target   (if state.object_state; sim only)
        ImageCropResize        per-camera crop, common resize     (if configured)
        PolicyObservation      to the policy format of hilrl.types
        EEDeltaAction | JointAction    [-1, 1] arm action -> joint targets (IK for ee_delta)
        GripperAction          last dim -> close / stay / open, info['discrete_penalty']
        RewardModelWrapper     reward_fn replaces the reward      (if reward_fn)
        TimeLimit              truncated (never terminated) after episode_time_s
        InterventionWrapper    operator action replaces the policy's; info['is_intervention'], ['teleop_action']

    For a gymnasium id only the generic wrappers apply: PolicyObservation, a rescale of a
    bounded Box action to [-1, 1], the reward model, the time limit (through gym.make)
    and the intervention hook. ``clock`` drives the safety watchdog (tests pass a fake).
    """
    if cfg.mode == "replay" and controller is not None:
        raise ValueError("mode 'replay' takes its actions from a dataset; pass no controller")
    if cfg.mode == "record" and controller is None:
        raise ValueError("mode 'record' needs a controller (the operator's input device)")
    if cfg.gym_id is not None:
        env = _make_gym(cfg, render_mode)
    else:
        env = _make_robot_stack(cfg, robot, render_mode, clock)
        steps = cfg.max_episode_steps
        if reward_fn is not None:
            env = RewardModelWrapper(env, reward_fn, terminate_on_success=cfg.terminate_on_success)
        if steps is not None:
            env = TimeLimit(env, max_episode_steps=steps)
        return InterventionWrapper(env, controller)
    if reward_fn is not None:
        env = RewardModelWrapper(env, reward_fn, terminate_on_success=cfg.terminate_on_success)
    return InterventionWrapper(env, controller)


def _make_gym(cfg: EnvConfig, render_mode: str | None) -> Env:
    kwargs: dict[str, Any] = {}
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    try:
        env: Env = gym.make(cfg.gym_id, max_episode_steps=cfg.max_episode_steps, **kwargs)  # type: ignore[arg-type]
    except gym.error.Error as exc:
        raise ConfigError("gym_id", cfg.gym_id, f"cannot make this gymnasium env: {exc}") from exc
    env = PolicyObservation(env)
    space = env.action_space
    if (
        isinstance(space, spaces.Box)
        and np.all(np.isfinite(space.low))
        and np.all(np.isfinite(space.high))
        and not (np.all(space.low == -1.0) and np.all(space.high == 1.0))
    ):
        env = RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    return env


def _make_robot_stack(
    cfg: EnvConfig, robot: Robot | None, render_mode: str | None, clock: Callable[[], float]
) -> Env:
    cameras = tuple(cfg.robot.cameras) if cfg.use_cameras else ()
    if robot is None:
        robot = make_robot(replace(cfg.robot, cameras=cameras))
    if not robot.is_connected:
        robot.connect()
    chain_name = cfg.chain_name
    arm = arm_model(robot, get_chain_spec(chain_name)) if chain_name is not None else None
    ee_needed = cfg.action.control_mode == "ee_delta" or cfg.state.ee_pose
    if arm is None and ee_needed:
        raise ConfigError(
            "robot.type", cfg.robot.type, "no kinematic chain for end-effector control or state"
        )
    workspace = (
        np.asarray(cfg.workspace.low, dtype=np.float64),
        np.asarray(cfg.workspace.high, dtype=np.float64),
    )
    pose = _reset_pose(cfg, robot, arm)

    env: Env = RobotEnv(
        robot,
        fps=cfg.fps,
        mode=cfg.mode,
        cameras=cameras,
        terminate_on_success=cfg.terminate_on_success,
        render_mode=render_mode,
    )
    lower, upper = robot.joint_limits
    layer = SafetyLayer(
        cfg.safety,
        np.asarray(lower),
        np.asarray(upper),
        chain=arm.chain if arm is not None else None,
        arm_index=arm.arm_index if arm is not None else None,
        workspace=workspace,
        clock=clock,
        fk=arm.tool_pose if arm is not None else None,
    )
    env = SafetyWrapper(env, layer)
    if pose is not None:
        env = ResetPoseWrapper(
            env,
            pose,
            reset_time_s=cfg.reset.reset_time_s,
            settle_time_s=cfg.reset.settle_time_s,
            max_joint_step=cfg.safety.max_joint_step_rad,
        )
    masked = cfg.action.masked_joints
    hold: dict[str, float] | None = None
    if masked:
        assert arm is not None
        names = arm.chain.spec.joint_names
        index = np.array([arm.arm_index[names.index(n)] for n in masked], dtype=np.int64)
        if pose is not None:
            hold = {n: float(pose[i]) for n, i in zip(masked, index)}
        env = JointMaskWrapper(env, index, None if hold is None else np.array(list(hold.values())))
    if cfg.state.joint_velocities or cfg.state.joint_currents:
        env = JointStateFeatures(
            env, velocities=cfg.state.joint_velocities, currents=cfg.state.joint_currents
        )
    if cfg.state.ee_pose:
        assert arm is not None
        env = EEPoseObservation(env, arm, workspace, orientation=cfg.state.ee_orientation)
    if cfg.state.object_state:
        if not isinstance(robot, SimTask):
            raise ConfigError(
                "state.object_state",
                True,
                "needs the simulated robot's ground truth (robot.type=sim)",
            )
        env = ObjectStateObservation(env, robot, workspace)
    if cameras and (cfg.images.crops or cfg.images.resize is not None):
        crops = {k: v for k, v in cfg.images.crops.items() if k in cameras}
        env = ImageCropResize(env, crops, cfg.images.resize, cfg.images.interpolation)
    env = PolicyObservation(env)

    use_gripper = cfg.action.use_gripper and arm is not None and arm.gripper_index is not None
    if cfg.action.use_gripper and not use_gripper:
        raise ConfigError("action.use_gripper", True, "the robot has no joint named 'gripper'")
    assert arm is not None or cfg.action.control_mode != "ee_delta"
    if cfg.action.control_mode == "ee_delta":
        assert arm is not None
        env = EEDeltaAction(
            env,
            arm,
            workspace,
            step_m=cfg.action.ee_step_m,
            rotation=cfg.action.ee_rotation,
            step_rad=cfg.action.ee_step_rad,
            ik_iterations=cfg.action.ik_iterations,
            ik_tolerance_m=cfg.action.ik_tolerance_m,
            gripper=use_gripper,
            masked=masked,
            hold_values=hold,
        )
    else:
        if arm is None:
            raise ConfigError(
                "robot.type", cfg.robot.type, "no kinematic chain to name the arm joints"
            )
        free = tuple(n for n in arm.chain.spec.joint_names if n not in masked)
        env = JointAction(
            env,
            arm,
            mode=cfg.action.control_mode,
            step_rad=cfg.action.joint_step_rad,
            free_joints=free,
            gripper=use_gripper,
        )
    if use_gripper:
        assert arm is not None and arm.gripper_index is not None
        g = arm.gripper_index
        closed, opened = (arm.lower[g], arm.upper[g])
        if not cfg.action.gripper_close_at_lower:
            closed, opened = opened, closed
        env = GripperAction(
            env, closed=closed, opened=opened, penalty=cfg.action.gripper_penalty, gripper_joint=g
        )
    return env


def _reset_pose(cfg: EnvConfig, robot: Robot, arm: ArmModel | None) -> np.ndarray | None:
    """The full reset pose (robot joint order), or None when none is configured.

    Raises :class:`ConfigError` for a pose outside the joint limits or an end-effector
    position the IK cannot reach: before the robot moves at all.
    """
    r = cfg.reset
    if r.joint_positions is None and r.ee_position is None:
        return None
    if arm is None:
        raise ConfigError("reset", r, "this robot has no kinematic chain to place the arm by")
    home = getattr(robot, "home_joint_positions", None)
    base = np.asarray(home() if callable(home) else robot.read_joint_positions(), dtype=np.float64)
    pose = base.copy()
    dof = arm.chain.dof
    field = "reset.joint_positions"
    if r.joint_positions is not None:
        q = np.asarray(r.joint_positions, dtype=np.float64)
        if len(q) not in (dof, dof + 1) or (len(q) == dof + 1 and arm.gripper_index is None):
            raise ConfigError(
                field,
                r.joint_positions,
                f"needs {dof} arm joint positions (optionally the gripper last)",
            )
        pose[arm.arm_index] = q[:dof]
        if len(q) == dof + 1:
            assert arm.gripper_index is not None
            pose[arm.gripper_index] = q[dof]
    else:
        field = "reset.ee_position"
        assert r.ee_position is not None
        result = arm.chain.ik(
            np.asarray(r.ee_position, dtype=np.float64), base[arm.arm_index], position_only=True
        )
        if not result.success:
            raise ConfigError(
                field, r.ee_position, f"unreachable (IK error {result.position_error:.4f} m)"
            )
        pose[arm.arm_index] = result.q
    bad = np.flatnonzero((pose < arm.lower - 1e-9) | (pose > arm.upper + 1e-9))
    if len(bad):
        i = int(bad[0])
        raise ConfigError(
            field,
            r.joint_positions if r.joint_positions is not None else r.ee_position,
            f"{robot.joint_names[i]} = {pose[i]:.4f} is outside its limits [{arm.lower[i]}, {arm.upper[i]}]",
        )
    return pose
