"""Shared helpers of the runtime tests: a tiny state-only pick-cube run config, and what an
actor loop saw (:class:`StepRecorder`) and sent (:class:`Sink`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import yaml

from hilrl.config.loader import build, deep_merge
from hilrl.config.root import RootConfig
from hilrl.types import EpisodeStats, Observation, Transition


def tiny_config_data(run_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A fast run: state-only pick-cube, short episodes, small networks and batches."""
    base: dict[str, Any] = {
        "env": {
            "robot": {"type": "sim", "task": "pick_cube"},
            "use_cameras": False,
            "episode_time_s": 1.0,
        },
        "teleop": {"device": "sim"},
        "learning": {
            "device": "cpu",
            "sac": {"hidden_dims": [16, 16], "utd_ratio": 1},
            "replay": {
                "batch_size": 8,
                "capacity": 1000,
                "demo_capacity": 1000,
                "intervention_capacity": 1000,
                "prefetch": 0,
            },
            "checkpoint": {"every_steps": 40, "keep_last": 2},
        },
        "transport": {
            "port": 0,
            "spool_dir": "",
            "flush_interval_s": 0.05,
            "batch_size": 8,
            "handshake_timeout_s": 2.0,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "close_timeout_s": 5.0,
        },
        "run": {"output_dir": str(run_dir), "total_env_steps": 120, "log_every_s": 0.3},
        "train": {
            "num_actors": 1,
            "warmup_transitions": 20,
            "publish_every_s": 0.2,
            "num_demo_episodes": 2,
            "weights_timeout_s": 60.0,
            "shutdown_timeout_s": 30.0,
            "final_eval_episodes": 0,
        },
    }
    return deep_merge(base, sections)


def tiny_config(run_dir: Path, **sections: dict[str, Any]) -> RootConfig:
    return build(RootConfig, tiny_config_data(run_dir, **sections))


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


class Step(NamedTuple):
    """One ``env.step`` result as the actor saw it, and when it returned."""

    observation: Observation
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]
    time: float


class StepRecorder(gym.Wrapper[Any, Any, Any, Any]):
    """Outermost wrapper: every reset (seed, observation) and step the actor saw.

    ``fail_on_reset=n``: the n-th reset raises (a crash in the middle of a reset).
    """

    def __init__(self, env: gym.Env[Any, Any], fail_on_reset: int | None = None) -> None:
        super().__init__(env)
        self.seeds: list[int | None] = []
        self.resets: list[Observation] = []
        self.steps: list[Step] = []
        self.fail_on_reset = fail_on_reset

    def reset(self, **kwargs: Any) -> Any:
        if self.fail_on_reset is not None and len(self.seeds) + 1 == self.fail_on_reset:
            raise RuntimeError("the robot fell over (a crash in the middle of a reset)")
        self.seeds.append(kwargs.get("seed"))
        obs, info = self.env.reset(**kwargs)
        self.resets.append(obs)
        return obs, info

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps.append(
            Step(
                obs, float(reward), bool(terminated), bool(truncated), dict(info), time.monotonic()
            )
        )
        return obs, reward, terminated, truncated, info


class Sink:
    """The learner side of an in-process transport: every transition and episode received."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []
        self.episodes: list[EpisodeStats] = []

    def on_transitions(self, actor_id: str, ts: list[Transition]) -> None:
        self.transitions.extend(ts)

    def on_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        self.episodes.append(stats)

    def evals(self) -> list[EpisodeStats]:
        return [e for e in self.episodes if e.is_eval]

    def train(self) -> list[EpisodeStats]:
        return [e for e in self.episodes if not e.is_eval]
