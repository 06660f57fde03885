"""Sim labelling: every frame carries the ground truth of its own state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from hilrl.config.loader import ConfigError, load_config
from hilrl.config.reward import SimLabelConfig
from hilrl.config.root import RootConfig
from hilrl.core import TeleopCommand
from hilrl.data.lerobot import LeRobotDatasetReader
from hilrl.rewards.label import (
    LABEL_META,
    LabelStats,
    MemorySink,
    SimLabeller,
    label_sim_dataset,
)
from hilrl.types import IMAGE_PREFIX, STATE_KEY

SUCCESS_FROM = 6


class CounterTask:
    """Ground truth that depends on the env's tick counter: success once t >= 6."""

    def __init__(self) -> None:
        self.t = 0

    def reset_task(self, seed: int | None = None) -> None:
        self.t = 0

    def task_success(self) -> bool:
        return self.t >= SUCCESS_FROM

    def task_state(self) -> dict[str, np.ndarray]:
        return {"t": np.array([self.t])}


class CounterEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Observation = the tick (state and a constant image with the tick as its value)."""

    def __init__(self, task: CounterTask) -> None:
        self.task = task
        self.observation_space = gym.spaces.Dict(  # type: ignore[assignment]
            {
                STATE_KEY: gym.spaces.Box(-np.inf, np.inf, (1,), np.float32),
                IMAGE_PREFIX + "cam": gym.spaces.Box(0, 255, (2, 2, 3), np.uint8),
            }
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def _obs(self) -> dict[str, np.ndarray]:
        t = self.task.t
        return {
            STATE_KEY: np.array([t], np.float32),
            IMAGE_PREFIX + "cam": np.full((2, 2, 3), t, np.uint8),
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self.task.reset_task(seed)
        return self._obs(), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        self.task.t += 1
        return self._obs(), 0.0, False, False, {"teleop_action": action}


class Expert:
    def __init__(self) -> None:
        self.polls = 0

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None: ...

    def poll(
        self, observation: Mapping[str, np.ndarray], info: Mapping[str, object]
    ) -> TeleopCommand:
        self.polls += 1
        return TeleopCommand(True, np.array([0.5, -0.5], np.float32))


def test_each_label_is_the_ground_truth_of_its_own_frame() -> None:
    task = CounterTask()
    cfg = SimLabelConfig(
        num_episodes=6,
        random_episode_fraction=0.3,
        give_up_fraction=0.3,
        hold_ticks=3,
        after_ticks=4,
        random_ticks=9,
        max_ticks=50,
        seed=1,
    )
    sink = MemorySink()
    stats = SimLabeller(CounterEnv(task), task, Expert(), cfg).run(sink, cfg.num_episodes, "t")
    data = sink.arrays()
    ticks = data[STATE_KEY][:, 0]
    assert np.array_equal(data["next.reward"], (ticks >= SUCCESS_FROM).astype(np.float32))
    assert np.array_equal(data[IMAGE_PREFIX + "cam"][:, 0, 0, 0], ticks.astype(np.uint8))
    assert stats.frames == len(ticks) and stats.successes == int(data["next.reward"].sum())
    for ep in np.unique(data["episode_index"]):
        t = ticks[data["episode_index"] == ep]
        assert np.array_equal(t, np.arange(len(t)))  # consecutive frames from the reset
        expert = data["complementary_info.is_intervention"][data["episode_index"] == ep]
        done = data["next.done"][data["episode_index"] == ep]
        assert done[-1] and not done[:-1].any()
        if len(t) == cfg.random_ticks and not expert.any():
            continue  # a random episode
        if expert.sum() == SUCCESS_FROM + cfg.hold_ticks:  # expert: success, hold, random
            assert len(t) == SUCCESS_FROM + cfg.hold_ticks + cfg.after_ticks
        else:  # gave up before success
            assert expert.sum() < SUCCESS_FROM and len(t) == expert.sum() + cfg.after_ticks
    assert set(stats.kinds) <= {"random", "expert", "give_up"} and sum(stats.kinds.values()) == 6


def test_label_sim_writes_a_readable_dataset_with_both_classes(tmp_path: Path) -> None:
    cfg = load_config(
        RootConfig,
        None,
        [
            f"--dataset.root={tmp_path / 'ds'}",
            "--dataset.image_storage=image",
            "--env.robot.camera_height=24",
            "--env.robot.camera_width=24",
            "--reward.label.num_episodes=3",
            "--reward.label.random_episode_fraction=0.0",
            "--reward.label.give_up_fraction=0.0",
            "--reward.label.after_ticks=3",
        ],
    )
    root, stats = label_sim_dataset(cfg, progress=False)
    assert stats.successes > 0 and stats.failures > 0
    reader = LeRobotDatasetReader(root)
    assert reader.num_frames == stats.frames and reader.num_episodes == 3
    rewards = np.concatenate([c["next.reward"] for c in reader.iter_chunks(keys=["next.reward"])])
    assert int(rewards.sum()) == stats.successes
    meta = json.loads((root / LABEL_META).read_text())
    assert meta["label_offset"] == 0 and meta["success_frames"] == stats.successes


def test_label_sim_needs_the_sim_and_cameras(tmp_path: Path) -> None:
    cfg = load_config(RootConfig, None, [f"--dataset.root={tmp_path / 'ds'}"])
    with pytest.raises(ConfigError, match=r"env\.use_cameras"):
        label_sim_dataset(replace(cfg, env=replace(cfg.env, use_cameras=False)), progress=False)
    with pytest.raises(ConfigError, match=r"env\.robot\.type"):
        label_sim_dataset(replace(cfg, env=replace(cfg.env, gym_id="Pendulum-v1")), progress=False)
    assert not (tmp_path / "ds").exists()


class SeedLog(CounterTask):
    """A :class:`CounterTask` that keeps every reset seed."""

    def __init__(self) -> None:
        super().__init__()
        self.seeds: list[int | None] = []

    def reset_task(self, seed: int | None = None) -> None:
        super().reset_task(seed)
        self.seeds.append(seed)


def label_reset_seeds(seed: int, episodes: int = 20) -> tuple[list[int | None], LabelStats]:
    """The seeds the env was reset with in a labelling run, and the run's stats."""
    task = SeedLog()
    cfg = SimLabelConfig(num_episodes=episodes, random_ticks=1, after_ticks=1, seed=seed)
    stats = SimLabeller(CounterEnv(task), task, Expert(), cfg).run(MemorySink(), episodes, "t")
    return task.seeds, stats


def test_label_runs_seeded_0_and_1_share_no_scene() -> None:
    first, stats = label_reset_seeds(0)
    second, _ = label_reset_seeds(1)
    assert len(set(first)) == len(set(second)) == 20
    assert not set(first) & set(second)
    assert label_reset_seeds(0, episodes=3)[0] == first[:3]  # the same seed, the same scenes
    assert stats.seeds == first  # what label-sim writes into its sidecar
