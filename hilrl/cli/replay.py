"""``hilrl replay``: execute a recorded episode's actions again on the sim or a robot.

The env is rebuilt from the config the dataset was recorded with (hilrl's sidecar
``meta/hilrl_record.json``; a ``--config`` file and overrides apply on top), in 'replay'
mode at the dataset's fps, and reset with the episode's recorded seed, so the sim starts
from the same scene. Each frame's recorded ``observation.state`` is compared with the
replayed one before its action is executed; the tracking error (largest absolute
difference over the state vector) is printed. A real robot replays in real time; the sim
may run as fast as it can (``--fast``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hilrl.cli.common import add_config_arguments
from hilrl.config.loader import ConfigError, build, config_data, deep_merge
from hilrl.config.root import RootConfig
from hilrl.pacing import next_tick
from hilrl.types import STATE_KEY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", help="the dataset folder")
    parser.add_argument(
        "--episode", type=int, default=0, metavar="N", help="episode index (default 0)"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="step the sim as fast as it can (default: real time at the dataset's fps)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="reset seed (default: the one recorded for the episode, else the one 'hilrl "
        "record' draws for episode N from the recorded run seed, or run.seed)",
    )
    parser.add_argument(
        "--print-every",
        type=int,
        default=0,
        metavar="K",
        help="print the tracking error every K frames (default: only the summary)",
    )
    add_config_arguments(
        parser, RootConfig, example="hilrl replay datasets/local/hilrl_demos --episode 2 --fast"
    )


@dataclass
class ReplayResult:
    """How closely the replay followed the recording."""

    frames: int
    """Frames compared (and actions executed)."""
    errors: np.ndarray
    """Per frame: largest |replayed state - recorded state|, before the frame's action."""
    ended_early: bool
    """The env ended the episode before the last recorded action."""

    @property
    def final_error(self) -> float:
        return float(self.errors[-1]) if len(self.errors) else 0.0


def replay_actions(
    env: Any,
    states: np.ndarray,
    actions: np.ndarray,
    *,
    seed: int | None,
    fps: float,
    realtime: bool,
    on_frame: Callable[[int, float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayResult:
    """Reset ``env`` with ``seed`` and execute ``actions``, tracking the state error."""
    obs, _ = env.reset(seed=seed)
    errors: list[float] = []
    dt = 1.0 / fps
    deadline = clock()
    ended = False
    for t in range(len(actions)):
        err = float(np.max(np.abs(np.asarray(obs[STATE_KEY], np.float64) - states[t])))
        errors.append(err)
        if on_frame is not None:
            on_frame(t, err)
        obs, _, terminated, truncated, _ = env.step(np.asarray(actions[t], dtype=np.float32))
        if (terminated or truncated) and t < len(actions) - 1:
            ended = True
            break
        if realtime:
            deadline = next_tick(deadline, dt, clock, sleep)
    return ReplayResult(len(errors), np.asarray(errors), ended)


def replay_config(args: argparse.Namespace, recorded_env: Any) -> RootConfig:
    """The recorded env config, then the ``--config`` file, then the overrides."""
    data: dict[str, Any] = {"env": recorded_env} if isinstance(recorded_env, dict) else {}
    overrides = list(getattr(args, "overrides", []) or [])
    return build(RootConfig, deep_merge(data, config_data(args.config, overrides)))


def run(args: argparse.Namespace) -> int:
    # start-up: MuJoCo and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import LeRobotDatasetReader
    from hilrl.data.lerobot.features import ACTION
    from hilrl.envs import make_env
    from hilrl.runtime.record import (
        fallback_episode_seed,
        read_record_meta,
        recorded_episode_seed,
    )

    if args.print_every < 0:
        raise ConfigError("--print-every", args.print_every, "must be >= 0")
    root = Path(args.dataset)
    reader = LeRobotDatasetReader(root)  # a DatasetError is one line (hilrl.cli.main)
    n = reader.num_episodes
    if args.episode not in reader.episode_lengths:
        raise ConfigError(
            "--episode",
            args.episode,
            f"out of range: {root} has {n} episodes" + (f" (0..{n - 1})" if n else ""),
        )
    for key in (STATE_KEY, ACTION):
        if key not in reader.features:
            raise ConfigError("DATASET", str(root), f"has no '{key}' feature to replay")
    meta = read_record_meta(root)
    cfg = replay_config(args, meta.get("env"))
    simulated = cfg.env.gym_id is not None or cfg.env.robot.type == "sim"
    if args.fast and not simulated:
        raise ConfigError("--fast", True, "a real robot replays in real time only")
    seed = args.seed
    if seed is None:
        seed = recorded_episode_seed(meta, args.episode)
    if seed is None:
        seed = fallback_episode_seed(meta, cfg.run.seed, args.episode)
        print(f"replay: no recorded seed for episode {args.episode}; using {seed}", file=sys.stderr)
    env_cfg = replace(cfg.env, mode="replay", use_cameras=False, fps=reader.fps)
    data = reader.episode(args.episode, keys=[STATE_KEY, ACTION])
    states = np.asarray(data[STATE_KEY], dtype=np.float64)
    actions = np.asarray(data[ACTION], dtype=np.float32)
    env = make_env(env_cfg)
    try:
        _check_shapes(env, states, actions, root)

        def show(t: int, err: float) -> None:
            if args.print_every and t % args.print_every == 0:
                print(f"frame {t:5d}: state error {err:.6f}")

        result = replay_actions(
            env, states, actions, seed=seed, fps=reader.fps, realtime=not args.fast, on_frame=show
        )
    finally:
        env.close()
    errs = result.errors
    print(
        f"replay: episode {args.episode} of {root}: {result.frames}/{len(actions)} frames at "
        f"{reader.fps} fps, seed {seed}; state error mean {errs.mean():.6f} max "
        f"{errs.max():.6f} last frame {result.final_error:.6f}"
        + ("; the env ended the episode early" if result.ended_early else "")
    )
    return 0


def _check_shapes(env: Any, states: np.ndarray, actions: np.ndarray, root: Path) -> None:
    act_shape = tuple(env.action_space.shape)
    state_shape = tuple(env.observation_space[STATE_KEY].shape)
    if actions.shape[1:] != act_shape:
        raise ConfigError(
            "env.action",
            list(act_shape),
            f"the env's action shape differs from the dataset's {list(actions.shape[1:])} "
            f"({root}); replay with the config it was recorded with",
        )
    if states.shape[1:] != state_shape:
        raise ConfigError(
            "env.state",
            list(state_shape),
            f"the env's observation.state shape differs from the dataset's "
            f"{list(states.shape[1:])} ({root}); replay with the config it was recorded with",
        )
