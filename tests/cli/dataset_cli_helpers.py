"""Helpers for the dataset-tool CLI tests (record, replay, crop-roi, view).

A uniquely named module (not ``conftest``) so the test modules can import it without
clashing with other test folders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hilrl.config.loader import load_config
from hilrl.config.root import RootConfig
from hilrl.core import TeleopCommand, TeleopEvents
from hilrl.types import Observation

EPISODE_STEPS = 15
"""Frames of an episode that runs into the time limit (1.5 s at 10 fps)."""

SIM_OVERRIDES = [
    "--env.robot.camera_height=64",
    "--env.robot.camera_width=64",
    "--env.episode_time_s=1.5",
    "--teleop.device=none",
]
"""A small sim: two 64x64 cameras, 15-step episodes, no device (the tests inject one)."""


def sim_config(root: Path, episodes: int, *extra: str) -> RootConfig:
    overrides = [
        *SIM_OVERRIDES,
        f"--dataset.root={root}",
        f"--dataset.num_episodes={episodes}",
        *extra,
    ]
    return load_config(RootConfig, None, overrides)


def operator_action(attempt: int, step: int) -> np.ndarray:
    """A deterministic operator action that encodes the attempt (first component)."""
    rng = np.random.default_rng(1000 * attempt + step)
    a = rng.uniform(-1.0, 1.0, 4).astype(np.float32)
    a[0] = np.float32(0.1 * (attempt % 10) - 0.45)
    return a


class ScriptedOperator:
    """An input controller with a script per *attempt* (every env reset is one attempt).

    It intervenes on steps where ``(step // 3) % 2 == 1`` with :func:`operator_action`;
    ``events[(attempt, step)]`` are reported at that step; ``fail_at`` makes ``poll``
    raise at that (attempt, step) to test clean-up.
    """

    def __init__(
        self,
        events: Mapping[tuple[int, int], TeleopEvents] | None = None,
        fail_at: tuple[int, int] | None = None,
    ) -> None:
        self.events = dict(events or {})
        self.fail_at = fail_at
        self.attempt = -1
        self.step = 0
        self.started = False
        self.stopped = False
        self.pattern: dict[tuple[int, int], np.ndarray] = {}

    @staticmethod
    def intervenes(step: int) -> bool:
        return (step // 3) % 2 == 1

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def reset(self) -> None:
        self.attempt += 1
        self.step = 0

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        key = (self.attempt, self.step)
        self.step += 1
        if key == self.fail_at:
            raise RuntimeError("device unplugged")
        events = self.events.get(key, TeleopEvents())
        if self.intervenes(key[1]):
            action = operator_action(*key)
            self.pattern[key] = action
            return TeleopCommand(True, action, events)
        return TeleopCommand(False, None, events)


def record_sim(
    root: Path,
    episodes: int,
    *extra: str,
    controller: Any = None,
    resume: bool = False,
) -> Any:
    """Record with :func:`hilrl.runtime.record.record_dataset` (as fast as the sim steps)."""
    from hilrl.runtime.record import record_dataset

    cfg = sim_config(root, episodes, *extra)
    return record_dataset(
        cfg,
        resume=resume,
        realtime=False,
        controller=controller if controller is not None else ScriptedOperator(),
        progress=False,
    )


def write_synthetic(
    root: Path,
    lengths: Sequence[int],
    *,
    hw: tuple[int, int] = (48, 64),
    cameras: Sequence[str] = ("front", "wrist"),
    image_storage: str = "image",
    seed: int = 0,
) -> list[list[dict[str, Any]]]:
    """A dataset whose frames are all different (random images); returns the frames."""
    from hilrl.data.lerobot import DatasetWriter, hilrl_features

    rng = np.random.default_rng(seed)
    feats = hilrl_features(5, 4, {c: hw for c in cameras})
    episodes: list[list[dict[str, Any]]] = []
    with DatasetWriter(root, fps=10, features=feats, image_storage=image_storage) as writer:
        for e, n in enumerate(lengths):
            frames = []
            for t in range(n):
                last = t == n - 1
                frame: dict[str, Any] = {
                    "observation.state": rng.normal(size=5).astype(np.float32),
                    "action": rng.uniform(-1, 1, 4).astype(np.float32),
                    "next.reward": np.float32(1.0 if last and e % 2 == 0 else 0.0),
                    "next.done": last,
                    "next.truncated": last and e % 2 == 1,
                    "complementary_info.is_intervention": np.float32(t % 2),
                    "complementary_info.discrete_penalty": np.float32(0.0),
                }
                for c in cameras:
                    if image_storage == "image":
                        img = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
                    else:  # smooth content survives video coding; a new phase every frame
                        yy, xx = np.mgrid[0 : hw[0], 0 : hw[1]].astype(np.float64)
                        phase = 0.9 * (sum(lengths[:e]) + t) + 2.0 * cameras.index(c)
                        wave = np.sin(xx / 4.0 + phase) * np.cos(yy / 6.0 - 0.5 * phase)
                        base = 128 + 100 * wave
                        img = np.stack([base, 255 - base, 0.5 * base + 60], -1).astype(np.uint8)
                    frame[f"observation.images.{c}"] = img
                writer.add_frame(frame)
                frames.append(frame)
            writer.save_episode(f"task {e % 2}")
            episodes.append(frames)
    return episodes


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove a failed command changed nothing)."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
