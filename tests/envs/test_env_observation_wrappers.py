"""Observation wrappers: crop / resize content, state features, EE pose, policy format."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from env_fakes import FakeRobot
from env_helpers import fake_config

from hilrl.config.env import ImageConfig, StateConfig
from hilrl.envs import RobotEnv, make_env
from hilrl.envs.wrappers import ImageCropResize, PolicyObservation, Resizer
from hilrl.envs.wrappers.images import area_weights
from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import SIM_ARM
from hilrl.types import IMAGE_PREFIX, STATE_KEY

FRONT = IMAGE_PREFIX + "front"
WRIST = IMAGE_PREFIX + "wrist"


def _state_only(**state: bool):
    return fake_config(use_cameras=False, state=StateConfig(**state))


def test_crop_takes_the_requested_window(fake_robot: FakeRobot) -> None:
    env = ImageCropResize(RobotEnv(fake_robot), {"front": (5, 7, 20, 30)})
    obs, _ = env.reset(seed=0)
    img = obs[FRONT]
    assert img.shape == (20, 30, 3)
    # FakeRobot pixel (r, c) is (r, c, k): the crop's first pixel is (top, left).
    assert tuple(img[0, 0, :2]) == (5, 7)
    assert tuple(img[-1, -1, :2]) == (24, 36)
    assert obs[WRIST].shape == (48, 64, 3)  # uncropped camera untouched
    assert env.observation_space.contains(obs)


def test_integer_area_resize_equals_block_mean(fake_robot: FakeRobot) -> None:
    env = ImageCropResize(RobotEnv(fake_robot), {}, resize=(24, 16), interpolation="area")
    obs, _ = env.reset(seed=0)
    raw = fake_robot.read_cameras()["wrist"].astype(np.float64)
    expected = np.rint(raw.reshape(24, 2, 16, 4, 3).mean(axis=(1, 3)) + 1e-9)
    np.testing.assert_allclose(obs[WRIST], expected, atol=1)  # rounding of .5 may differ
    assert obs[WRIST].dtype == np.uint8
    assert env.observation_space[WRIST].shape == (24, 16, 3)  # type: ignore[index]


def test_fractional_area_resize_preserves_constant_and_mean() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    out = Resizer((48, 64), (20, 28), "area")(img)
    assert out.shape == (20, 28, 3) and out.dtype == np.uint8
    # Box averaging keeps the image mean (each source pixel has equal total weight).
    assert abs(out.astype(float).mean() - img.astype(float).mean()) < 1.0
    flat = np.full((48, 64, 3), 77, dtype=np.uint8)
    assert np.all(Resizer((48, 64), (20, 28), "area")(flat) == 77)
    w = area_weights(48, 20)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(w.sum(axis=0), 20 / 48, rtol=1e-5)


def test_nearest_resize_samples_source_pixels(fake_robot: FakeRobot) -> None:
    env = ImageCropResize(
        RobotEnv(fake_robot), {"front": (8, 0, 40, 64)}, resize=(10, 16), interpolation="nearest"
    )
    obs, _ = env.reset(seed=0)
    img = obs[FRONT]
    # Rows of the 40-row crop sampled every 4th (centres: 2, 6, ...), offset by the crop top.
    np.testing.assert_array_equal(img[:, 0, 0], 8 + np.arange(10) * 4 + 2)
    np.testing.assert_array_equal(img[0, :, 1], np.arange(16) * 4 + 2)


def test_crop_outside_image_is_rejected(fake_robot: FakeRobot) -> None:
    with pytest.raises(ValueError, match="leaves"):
        ImageCropResize(RobotEnv(fake_robot), {"front": (40, 0, 20, 10)})
    with pytest.raises(ValueError, match="side"):
        ImageCropResize(RobotEnv(fake_robot), {"side": (0, 0, 2, 2)})


def test_make_env_crop_then_resize_per_camera(fake_robot: FakeRobot) -> None:
    cfg = fake_config(images=ImageConfig(crops={"front": (8, 0, 40, 40)}, resize=(20, 20)))
    env = make_env(cfg, robot=fake_robot)
    obs, _ = env.reset(seed=0)
    assert obs[FRONT].shape == obs[WRIST].shape == (20, 20, 3)
    # front: rows 8..47 averaged in pairs -> first output row averages rows 8 and 9.
    assert obs[FRONT][0, 0, 0] in (8, 9)
    assert obs[WRIST][0, 0, 0] in (1, 2)  # 48 rows -> 20: first pixel covers rows 0..2.4
    assert env.observation_space.contains(obs)


def test_velocities_and_currents_follow_the_joints(fake_robot: FakeRobot) -> None:
    cfg = _state_only(joint_velocities=True, joint_currents=True, ee_pose=False)
    cfg = replace(cfg, action=replace(cfg.action, control_mode="joint_delta"))
    env = make_env(cfg, robot=fake_robot)
    obs, _ = env.reset(seed=0)
    assert obs[STATE_KEY].shape == (18,)
    q0 = fake_robot.read_joint_positions()
    action = np.array([0.5, 0, 0, 0, 0, 0], dtype=np.float32)  # joint 0 by +0.05 rad
    obs, *_ = env.step(action)
    state = obs[STATE_KEY]
    q1 = fake_robot.read_joint_positions()
    np.testing.assert_allclose(state[:6], q1, atol=1e-6)
    np.testing.assert_allclose(state[6:12], (q1 - q0) * 10.0, atol=1e-4)  # rad/s at 10 fps
    assert state[6] == pytest.approx(0.5, abs=1e-4)
    np.testing.assert_allclose(state[12:], fake_robot.read_joint_currents(), atol=1e-6)
    assert env.observation_space.contains(obs)


def test_ee_pose_is_normalised_by_the_workspace(fake_robot: FakeRobot) -> None:
    cfg = _state_only(ee_pose=True, ee_orientation=True)
    env = make_env(cfg, robot=fake_robot)
    obs, _ = env.reset(seed=0)
    state = obs[STATE_KEY]
    assert state.shape == (6 + 3 + 6,)
    pose = KinematicChain(SIM_ARM).fk(fake_robot.read_joint_positions()[:5])
    low, high = np.array(cfg.workspace.low), np.array(cfg.workspace.high)
    np.testing.assert_allclose(state[6:9], 2 * (pose[:3, 3] - low) / (high - low) - 1, atol=1e-5)
    np.testing.assert_allclose(state[9:], pose[:3, :2].T.reshape(6), atol=1e-5)
    # The corners of the box map to -1 and +1: put the tool at the box centre.
    from hilrl.envs.wrappers import normalize_position

    np.testing.assert_allclose(normalize_position(low, low, high), -1.0)
    np.testing.assert_allclose(normalize_position(high, low, high), 1.0)
    np.testing.assert_allclose(normalize_position((low + high) / 2, low, high), 0.0, atol=1e-12)


def test_policy_format_of_a_plain_gym_env() -> None:
    env = PolicyObservation(gym.make("Pendulum-v1"))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {STATE_KEY}
    assert obs[STATE_KEY].dtype == np.float32 and obs[STATE_KEY].shape == (3,)
    assert env.observation_space.contains(obs)


def test_policy_format_maps_pixels_and_boxes() -> None:
    space = gym.spaces.Dict(
        {
            "pixels": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
            "agent_pos": gym.spaces.Box(-1.0, 1.0, (2,), np.float64),
            "extra": gym.spaces.Box(-1.0, 1.0, (2, 2), np.float64),
        }
    )

    class Dummy(gym.Env):
        observation_space = space
        action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

    env = PolicyObservation(Dummy())
    obs, _ = env.reset(seed=0)
    assert set(obs) == {STATE_KEY, IMAGE_PREFIX + "pixels"}
    assert obs[STATE_KEY].shape == (6,) and obs[STATE_KEY].dtype == np.float32
    assert env.observation_space.contains(obs)


@pytest.mark.parametrize("size", [(20, 28), (32, 48), (16, 16), (47, 63)])
def test_area_resize_matches_a_dense_box_filter(size: tuple[int, int]) -> None:
    img = np.random.default_rng(2).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    dense = np.einsum(
        "hy,yxc,wx->hwc",
        area_weights(48, size[0]),
        img.astype(np.float64),
        area_weights(64, size[1]),
    )
    out = Resizer((48, 64), size, "area")(img)
    assert out.shape == (*size, 3)
    assert np.abs(out.astype(np.float64) - dense).max() <= 0.5 + 1e-3
