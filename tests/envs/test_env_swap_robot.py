"""The real-robot example config runs on the sim arm with one override: --env.robot.type=sim.

configs/so100_real.yaml describes its task robot-agnostically (x-forward base frame, reset
by end-effector position, a workspace box every supported arm reaches), so the same file
builds and solves pick_cube in simulation. The SO-100 side of the same file (a SerialArm
over a simulated bus) is tested in tests/robots/test_real_factory.py.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hilrl.config.env import KINEMATIC_CHAINS
from hilrl.config.loader import load_config
from hilrl.config.operator import SimOperatorConfig
from hilrl.config.root import RootConfig
from hilrl.envs import make_env
from hilrl.kinematics import KinematicChain, get_chain_spec
from hilrl.kinematics.transforms import rotation_about_axis
from hilrl.robots.sim import RenderBackendError
from hilrl.robots.sim.scripted import top_down_pose
from hilrl.robots.sim.tasks import CUBE_X_RANGE, CUBE_Y_RANGE, LIFT_HEIGHT
from hilrl.runtime.sim_operator_env import make_operated_env

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "so100_real.yaml"
SWAP = "--env.robot.type=sim"
ARM_CHAINS = sorted(set(KINEMATIC_CHAINS.values()))
"""Every chain a robot type of the config can select (sim_arm, so100, koch)."""


def _corners(low: tuple[float, ...], high: tuple[float, ...]) -> list[np.ndarray]:
    return [np.array(c) for c in itertools.product(*zip(low, high))]


def test_one_override_turns_the_real_config_into_a_sim_config() -> None:
    real = load_config(RootConfig, CONFIG)
    sim = load_config(RootConfig, CONFIG, [SWAP])  # validates, incl. the reset IK
    assert (real.env.chain_name, sim.env.chain_name) == ("so100", "sim_arm")
    # nothing but the robot type differs: same task, cameras, workspace, reset, reward
    assert replace(sim.env, robot=real.env.robot) == real.env
    assert replace(sim, env=real.env) == real
    assert sim.env.robot.cameras == ("front", "wrist")
    assert sim.env.reset.joint_positions is None and sim.env.reset.ee_position is not None
    assert sim.reward.path is None and sim.reward.model.cameras == ("front", "wrist")


@pytest.mark.parametrize("chain_name", ARM_CHAINS)
def test_workspace_corners_and_reset_are_reachable_by_every_arm(chain_name: str) -> None:
    env = load_config(RootConfig, CONFIG).env
    low, high = np.array(env.workspace.low), np.array(env.workspace.high)
    assert env.reset.ee_position is not None
    reset = np.array(env.reset.ee_position)
    assert np.all(reset > low) and np.all(reset < high), "reset inside the box"
    chain = KinematicChain(get_chain_spec(chain_name))
    q0 = np.clip(np.zeros(chain.dof), chain.lower, chain.upper)
    for target in [*_corners(env.workspace.low, env.workspace.high), reset]:
        result = chain.ik(target, q0, position_only=True)
        assert result.success, f"{chain_name} cannot reach {target}"
        reached = chain.fk(result.q)[:3, 3]  # checked by FK, not by the solver's own report
        np.testing.assert_allclose(reached, target, atol=2e-4)
        assert np.all(result.q >= chain.lower) and np.all(result.q <= chain.upper)


def _so100_pointing_down() -> np.ndarray:
    """An SO-100 tool orientation with the jaws pointing straight down.

    The tool's approach axis is -y of its frame (the tool point lies 0.098 m along -y of
    the jaw link); at (0, 1.45, -1.21, 0.98, 0) it points within a degree of down, and the
    small rotation taking it exactly down is applied on top.
    """
    chain = KinematicChain(get_chain_spec("so100"))
    rot = chain.fk(np.array([0.0, 1.45, -1.21, 0.98, 0.0]))[:3, :3]
    approach = rot @ np.array([0.0, -1.0, 0.0])
    axis = np.cross(approach, [0.0, 0.0, -1.0])
    tilt = float(np.arcsin(np.linalg.norm(axis)))
    assert tilt < 0.05
    return rotation_about_axis(axis / np.linalg.norm(axis), tilt) @ rot


def test_the_cube_area_is_reachable_pointing_down_by_the_sim_arm_and_the_so100() -> None:
    # Stronger than the corners: a top-down grasp at the box floor and a lift, over the whole
    # area where the sim puts the cube, for both arms the config is meant to run.
    env = load_config(RootConfig, CONFIG).env
    floor = env.workspace.low[2]
    lift = floor + LIFT_HEIGHT + 0.02
    assert lift < env.workspace.high[2]
    area = _corners(
        (CUBE_X_RANGE[0], CUBE_Y_RANGE[0], floor), (CUBE_X_RANGE[1], CUBE_Y_RANGE[1], lift)
    )
    sim = KinematicChain(get_chain_spec("sim_arm"))
    so100 = KinematicChain(get_chain_spec("so100"))
    down = _so100_pointing_down()
    for p in area:
        assert np.all(p >= env.workspace.low) and np.all(p <= env.workspace.high)
        assert sim.ik(top_down_pose(p, 0.0), np.array([0.0, 0.126, 1.164, 1.851, 0.0])).success, p
        target = np.eye(4)
        target[:3, :3], target[:3, 3] = down, p
        assert so100.ik(target, np.array([0.0, 1.45, -1.21, 0.98, 0.0])).success, p


def test_simulated_operator_solves_pick_cube_through_the_swapped_config() -> None:
    # State only, for speed (the image path is checked below); the operator drives every tick.
    cfg = load_config(RootConfig, CONFIG, [SWAP, "--env.use_cameras=false"])
    env, robot, _ = make_operated_env(cfg.env, SimOperatorConfig(seed=0, drive_always=True))
    reset_tool = np.array(cfg.env.reset.ee_position)
    try:
        successes = 0
        for seed in range(3):
            env.reset(seed=seed)
            # every episode starts at the configured end-effector position
            np.testing.assert_allclose(robot.task_state()["ee_pos"], reset_tool, atol=0.01)
            zero = np.zeros(env.action_space.shape or (), dtype=np.float32)
            for _ in range(cfg.env.max_episode_steps or 200):
                _, reward, terminated, truncated, info = env.step(zero)
                tool = robot.task_state()["ee_pos"]
                low, high = np.array(cfg.env.workspace.low), np.array(cfg.env.workspace.high)
                assert np.all(tool >= low - 0.01) and np.all(tool <= high + 0.01), tool
                if terminated or truncated:
                    break
            successes += bool(info["success"]) and reward == 1.0 and terminated
        assert successes == 3
    finally:
        env.close()


def test_swapped_config_renders_both_cameras_cropped_and_resized() -> None:
    cfg = load_config(RootConfig, CONFIG, [SWAP])
    try:
        env = make_env(cfg.env)
    except RenderBackendError as exc:  # no GL here: the error says what to install
        pytest.skip(f"no offscreen rendering here: {exc}")
    try:
        obs, _ = env.reset(seed=0)
        # the sim renders camera_height x camera_width (240x320), then the real crops apply
        for cam in ("front", "wrist"):
            image = obs[f"observation.images.{cam}"]
            assert image.shape == (128, 128, 3) and image.dtype == np.uint8
            assert image.std() > 5, f"{cam}: a scene, not a blank frame"
        assert env.action_space.shape == (4,)  # ee_delta x, y, z + gripper
    finally:
        env.close()
