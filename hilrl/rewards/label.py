"""Labelled frames from the sim's ground truth, for training and testing reward classifiers.

Each frame's ``next.reward`` is the ground-truth success *of that frame's own state*
(``SimTask.task_success()`` when its images were rendered), so the label describes the
image it is stored with (``reward.train.label_offset = 0``). Episodes come in three kinds
(see :class:`~hilrl.config.reward.SimLabelConfig`) so that both classes are plentiful and
the failures include hard ones: the cube grasped but not yet high enough, held then
dropped, nearly reached::

    random   smoothed random actions for random_ticks
    expert   the simulated operator's expert until success + hold_ticks, then random
             actions for after_ticks (or until max_ticks without success)
    give_up  the expert until a random tick before its usual success time, then random

Episode ``i`` resets with :func:`label_seed` ``(reward.label.seed, i)``, a hashed
:func:`hilrl.seeds.episode_seed` of the "label" stream: labelled sets made with seeds 0
and 1 share no scene, and none repeats a run's demonstration or evaluation layouts.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from hilrl import seeds
from hilrl.config.loader import ConfigError, to_dict
from hilrl.config.reward import SimLabelConfig
from hilrl.config.root import RootConfig
from hilrl.core import InputController, SimTask
from hilrl.data.env_features import env_features
from hilrl.data.lerobot import DatasetWriter
from hilrl.data.lerobot.features import ACTION, DONE, INTERVENTION, PENALTY, REWARD, TRUNCATED
from hilrl.envs import make_env
from hilrl.fsutil import atomic_write_json
from hilrl.robots import make_robot
from hilrl.teleop.factory import make_controller
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation

LABEL_META = "meta/hilrl_labels.json"
"""Sidecar of a labelled dataset: what the labels mean and how they were made."""
KINDS = ("random", "expert", "give_up")
LABEL_STREAM = seeds.LABEL
"""Seed stream of labelled episodes (see :mod:`hilrl.seeds`)."""


def label_seed(seed: int, index: int) -> int:
    """The reset seed of labelled episode ``index`` made with ``reward.label.seed = seed``."""
    return seeds.episode_seed(seed, LABEL_STREAM, index)


class FrameSink(Protocol):
    """Where labelled frames go: a :class:`~hilrl.data.lerobot.DatasetWriter` or memory."""

    def add_frame(self, frame: Mapping[str, Any]) -> None: ...

    def save_episode(self, task: str) -> int: ...


class MemorySink:
    """Frames kept in memory as stacked arrays (benchmarks and tests)."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.episode_index: list[int] = []
        self._episode = 0
        self._pending: list[dict[str, Any]] = []

    def add_frame(self, frame: Mapping[str, Any]) -> None:
        self._pending.append(dict(frame))

    def save_episode(self, task: str) -> int:
        self.frames.extend(self._pending)
        self.episode_index.extend([self._episode] * len(self._pending))
        self._pending = []
        self._episode += 1
        return self._episode - 1

    def arrays(self) -> dict[str, np.ndarray]:
        """Every key stacked over the saved frames, plus ``episode_index``."""
        if not self.frames:
            return {}
        out = {k: np.stack([np.asarray(f[k]) for f in self.frames]) for k in self.frames[0]}
        out["episode_index"] = np.asarray(self.episode_index, dtype=np.int64)
        return out


@dataclass
class LabelStats:
    """What a labelling run produced."""

    episodes: int = 0
    frames: int = 0
    successes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    seeds: list[int] = field(default_factory=list)
    """The reset seed of each episode, in order."""

    @property
    def failures(self) -> int:
        return self.frames - self.successes


class SimLabeller:
    """Drives ``env`` (built on the sim ``task``) and records ground-truth-labelled frames."""

    def __init__(
        self,
        env: gym.Env[Any, Any],
        task: SimTask,
        expert: InputController,
        cfg: SimLabelConfig,
    ) -> None:
        self.env = env
        self.task = task
        self.expert = expert
        self.cfg = cfg
        space = env.action_space
        assert isinstance(space, gym.spaces.Box) and space.shape is not None
        self.low = space.low.astype(np.float32)
        self.high = space.high.astype(np.float32)
        obs_space = env.observation_space
        assert isinstance(obs_space, gym.spaces.Dict)
        self.keys = [k for k in obs_space.spaces if k == STATE_KEY or k.startswith(IMAGE_PREFIX)]
        self.rng = np.random.default_rng(cfg.seed)
        self.typical_success_tick = 20.0
        """Running mean of the expert's first-success tick (sets the give-up times)."""

    def _kind(self) -> str:
        if self.rng.random() < self.cfg.random_episode_fraction:
            return "random"
        return "give_up" if self.rng.random() < self.cfg.give_up_fraction else "expert"

    def _random_action(self, previous: np.ndarray) -> np.ndarray:
        s = self.cfg.random_smoothing
        noise = self.rng.uniform(-1.0, 1.0, size=previous.shape).astype(np.float32)
        return np.clip(s * previous + (1.0 - s) * noise, self.low, self.high)

    def _expert_action(self, obs: Observation, info: Mapping[str, Any]) -> np.ndarray:
        cmd = self.expert.poll(obs, info)
        if cmd.action is None:
            raise RuntimeError("the simulated operator gave no action (is drive_always on?)")
        return np.clip(np.asarray(cmd.action, dtype=np.float32), self.low, self.high)

    def episode(self, sink: FrameSink, seed: int, task_text: str) -> tuple[str, int, int]:
        """Record one episode; (kind, frames, success frames)."""
        cfg = self.cfg
        kind = self._kind()
        obs, info = self.env.reset(seed=seed)
        self.expert.reset()
        label = bool(self.task.task_success())
        give_up_at = (
            int(self.rng.integers(1, max(2, round(self.typical_success_tick))))
            if kind == "give_up"
            else None
        )
        first_success: int | None = None
        random_left = cfg.random_ticks if kind == "random" else None
        action = np.zeros_like(self.low)
        frames = successes = 0
        tick = 0
        while True:
            if random_left is None:
                done_expert = (
                    (first_success is not None and tick >= first_success + cfg.hold_ticks)
                    or (
                        give_up_at is not None
                        and tick >= give_up_at
                        and first_success is None
                        and not label
                    )
                    or tick >= cfg.max_ticks
                )
                if done_expert:
                    random_left = cfg.after_ticks
            expert_turn = random_left is None
            if random_left is not None and random_left <= 0:
                break
            if expert_turn:
                action = self._expert_action(obs, info)
            else:
                action = self._random_action(action)
            next_obs, _, _, _, info = self.env.step(action)
            next_label = bool(self.task.task_success())
            last = random_left is not None and random_left <= 1
            sink.add_frame(
                {
                    **{k: obs[k] for k in self.keys},
                    ACTION: np.asarray(info.get("teleop_action", action), dtype=np.float32),
                    REWARD: np.float32(label),
                    DONE: bool(last),
                    TRUNCATED: bool(last),
                    INTERVENTION: np.float32(expert_turn),
                    PENALTY: np.float32(info.get("discrete_penalty", 0.0)),
                }
            )
            frames += 1
            successes += int(label)
            if label and first_success is None and kind != "random":
                first_success = tick
            obs, label = next_obs, next_label
            tick += 1
            if random_left is not None:
                random_left -= 1
        if first_success is not None and kind == "expert":
            self.typical_success_tick += 0.3 * (first_success - self.typical_success_tick)
        sink.save_episode(task_text)
        return kind, frames, successes

    def run(
        self,
        sink: FrameSink,
        num_episodes: int,
        task_text: str,
        *,
        progress: bool = False,
        out: TextIO | None = None,
    ) -> LabelStats:
        stats = LabelStats()
        start = getattr(self.expert, "start", None)
        if callable(start):
            start()
        bar = tqdm(
            total=num_episodes,
            desc="label-sim",
            unit="ep",
            file=out if out is not None else sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )
        try:
            for i in range(num_episodes):
                seed = label_seed(self.cfg.seed, i)
                kind, n, pos = self.episode(sink, seed, task_text)
                stats.seeds.append(seed)
                stats.episodes += 1
                stats.frames += n
                stats.successes += pos
                stats.kinds[kind] += 1
                bar.update(1)
                bar.set_postfix(frames=stats.frames, success=stats.successes, refresh=False)
        finally:
            bar.close()
            stop = getattr(self.expert, "stop", None)
            if callable(stop):
                stop()
        return stats


def open_label_env(cfg: RootConfig) -> tuple[gym.Env[Any, Any], SimTask, InputController]:
    """The env, its sim robot and the simulated operator (driving every tick) of ``cfg``.

    The env never ends an episode by itself (no success termination, no time limit): the
    labeller decides, so success frames can follow the first success.
    """

    env_cfg = cfg.env
    if env_cfg.gym_id is not None or env_cfg.robot.type != "sim":
        raise ConfigError(
            "env.robot.type",
            env_cfg.gym_id or env_cfg.robot.type,
            "label-sim needs the simulated robot: its ground truth provides the labels",
        )
    if not env_cfg.use_cameras or not env_cfg.robot.cameras:
        raise ConfigError(
            "env.use_cameras",
            env_cfg.use_cameras,
            "label-sim records camera frames; enable cameras",
        )
    env_cfg = replace(env_cfg, terminate_on_success=False, episode_time_s=None, mode="train")
    robot = make_robot(env_cfg.robot)
    if not isinstance(robot, SimTask):
        raise ConfigError("env.robot.type", env_cfg.robot.type, "the robot has no ground truth")
    sim = replace(
        cfg.teleop.sim,
        drive_always=True,
        label_success=False,
        label_failure_on_timeout=False,
        label_failure_when_lost=False,
        seed=cfg.teleop.sim.seed if cfg.teleop.sim.seed is not None else cfg.reward.label.seed,
    )
    teleop = replace(cfg.teleop, device="sim", sim=sim)
    expert = make_controller(teleop, env=env_cfg, follower=robot)
    env = make_env(env_cfg, robot=robot)
    return env, robot, expert


def label_sim_dataset(
    cfg: RootConfig, *, progress: bool = True, out: TextIO | None = None
) -> tuple[Path, LabelStats]:
    """``hilrl label-sim``: record ``reward.label.num_episodes`` labelled episodes into
    the dataset folder of ``cfg.dataset``; returns the folder and the counts."""

    root = cfg.dataset.path
    env, robot, expert = open_label_env(cfg)
    task_text = cfg.dataset.task or f"{cfg.env.robot.task} (success labels)"
    try:
        writer = DatasetWriter(
            root,
            fps=cfg.env.fps,
            features=env_features(env),
            robot_type="sim",
            video_codec=cfg.dataset.video_codec,
            image_storage=cfg.dataset.image_storage,
        )
        with writer:
            stats = SimLabeller(env, robot, expert, cfg.reward.label).run(
                writer, cfg.reward.label.num_episodes, task_text, progress=progress, out=out
            )
    finally:
        env.close()
    meta = {
        "label_key": REWARD,
        "label_offset": 0,
        "meaning": "next.reward is the sim's ground-truth task success of the frame's own "
        "state (1.0 success, 0.0 failure), not the outcome of the following step",
        "task": cfg.env.robot.task,
        "frames": stats.frames,
        "success_frames": stats.successes,
        "episode_kinds": dict(stats.kinds),
        "episode_seeds": stats.seeds,
        "label": to_dict(cfg.reward.label),
        "env": to_dict(cfg.env),
    }
    atomic_write_json(root / LABEL_META, meta, indent=2)
    return root, stats
