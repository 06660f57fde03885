"""What the networks are built for, read off an env, and the hash both ends compare.

The learner and every actor build the same :class:`~hilrl.policies.sac_policy.
PolicyNetworks` from the same config; :func:`policy_arch_hash` is what they exchange at
the transport handshake, so an actor started with another observation layout or network
shape is refused with a message instead of failing on the first weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import gymnasium as gym
from gymnasium import spaces

from hilrl.architecture import architecture_digest
from hilrl.config.learner import LearningConfig
from hilrl.config.loader import ConfigError, to_dict
from hilrl.config.root import RootConfig
from hilrl.core import InputController, Robot
from hilrl.envs import make_env
from hilrl.envs.wrappers import GripperAction
from hilrl.kinematics import get_chain_spec
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec, PolicyNetworks, expected_weight_shapes
from hilrl.rewards.hook import reward_fn_from_config
from hilrl.robots import make_robot
from hilrl.robots.shape_only import ShapeOnlyArm
from hilrl.runtime.teleop_session import find_wrapper
from hilrl.teleop import make_controller
from hilrl.types import IMAGE_PREFIX, STATE_KEY

Env = gym.Env[Any, Any]


def observation_spec(space: spaces.Space[Any]) -> ObservationSpec:
    """The :class:`ObservationSpec` of a policy-format Dict observation space."""
    if not isinstance(space, spaces.Dict):
        raise ConfigError("env", str(space), "the observation space must be a Dict")
    state_dim = 0
    images: list[tuple[str, tuple[int, int, int]]] = []
    for key, sub in space.spaces.items():
        shape = tuple(int(s) for s in (sub.shape or ()))
        if key == STATE_KEY:
            state_dim = int(shape[0]) if shape else 0
        elif key.startswith(IMAGE_PREFIX) and len(shape) == 3:
            images.append((key, (shape[0], shape[1], shape[2])))
        else:
            raise ConfigError("env", key, f"observation key with shape {shape} is not supported")
    return ObservationSpec(state_dim, tuple(sorted(images)))


def action_spec(env: Env) -> ActionSpec:
    """The action layout of ``env``: its Box size, and whether a gripper wrapper is in the stack."""

    space = env.action_space
    if not isinstance(space, spaces.Box) or space.shape is None or len(space.shape) != 1:
        raise ConfigError("env", str(space), "training needs a 1-D Box action space")
    return ActionSpec(int(space.shape[0]), find_wrapper(env, GripperAction) is not None)


def env_specs(env: Env) -> tuple[ObservationSpec, ActionSpec]:
    return observation_spec(env.observation_space), action_spec(env)


@contextlib.contextmanager
def open_env(
    cfg: RootConfig, *, controller_for: bool = True, mode: str = "train"
) -> Iterator[tuple[Env, InputController | None, Robot | None]]:
    """Robot (when not a gymnasium id), unstarted controller (``teleop.device``) and env.

    ``controller_for=False`` builds the env without any operator (the learner reading
    spaces, evaluation). The reward classifier of ``reward.path`` replaces the env's
    reward when set. Everything is closed on exit, the robot disconnected last.
    """

    env_cfg = replace(cfg.env, mode=mode)
    robot: Robot | None = None
    if env_cfg.gym_id is None:
        cameras = env_cfg.robot.cameras if env_cfg.use_cameras else ()
        robot = make_robot(replace(env_cfg.robot, cameras=cameras))
    try:
        controller: InputController | None = None
        if controller_for and cfg.teleop.device != "none":
            controller = make_controller(cfg.teleop, env=env_cfg, follower=robot)
        reward_fn = None
        if cfg.reward.path is not None:
            reward_fn = reward_fn_from_config(cfg.reward, env_cfg)
        env = make_env(env_cfg, robot=robot, controller=controller, reward_fn=reward_fn)
        try:
            yield env, controller, robot
        finally:
            env.close()
    finally:
        if robot is not None and robot.is_connected:
            robot.disconnect()


def specs_from_config(cfg: RootConfig) -> tuple[ObservationSpec, ActionSpec]:
    """Build the env once (no operator, nothing stepped) and read its spaces.

    For a real arm the learner usually runs on another machine than the robot: the env is
    built over :class:`hilrl.robots.shape_only.ShapeOnlyArm` (the arm's kinematic chain and
    its configured cameras, no hardware), so no serial port or camera is opened.
    """
    if cfg.env.gym_id is None and cfg.env.robot.type != "sim":
        return _specs_without_hardware(cfg)
    with open_env(cfg, controller_for=False) as (env, _, _):
        return env_specs(env)


def _specs_without_hardware(cfg: RootConfig) -> tuple[ObservationSpec, ActionSpec]:
    env_cfg = replace(cfg.env, mode="train")
    chain = env_cfg.chain_name
    if chain is None:
        raise ConfigError("env.robot.type", env_cfg.robot.type, "no kinematic chain is known")
    cameras = tuple(env_cfg.robot.cameras) if env_cfg.use_cameras else ()
    stand_in = ShapeOnlyArm(
        get_chain_spec(chain),
        cameras=cameras,
        image_shape=(env_cfg.robot.camera_height, env_cfg.robot.camera_width),
    )
    env = make_env(env_cfg, robot=stand_in)
    try:
        return env_specs(env)
    finally:
        env.close()


def policy_arch_hash(nets: PolicyNetworks, learning: LearningConfig) -> str:
    """SHA-256 of what shapes the actor's networks: tensor names and shapes, specs, settings.

    The learner hashes ``sac.nets``, an actor its ``SACPolicy.nets``: equal configs give
    equal hashes on both machines.
    """
    sac = to_dict(learning.sac)
    enc = to_dict(learning.encoder)
    act = nets.action_spec
    blob = {
        "weights": {k: list(v) for k, v in sorted(expected_weight_shapes(nets).items())},
        "obs_spec": nets.obs_spec.to_json(),
        "action_spec": {"dim": act.dim, "has_gripper": act.has_gripper},
        "sac": {k: sac[k] for k in ("hidden_dims", "activation", "use_grasp_critic")},
        "encoder": {k: v for k, v in enc.items() if k not in ("pretrained", "channels_last")},
    }
    return architecture_digest(blob)
