"""Demonstrations for a run: record them in the sim when missing, load them into replay.

HIL-SERL starts from about 20 demonstrations; they fill the demo buffer, which with the
intervention buffer forms the offline half of every batch (RLPD mixing). In the sim the
simulated operator records them (driving every tick) before the learner starts; on a
real robot ``hilrl record`` does, and ``train.demo_dataset`` points at the folder.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TextIO

import numpy as np

from hilrl import seeds
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.data.lerobot import DatasetError, LeRobotDatasetReader, iter_transitions
from hilrl.data.lerobot.features import Feature
from hilrl.data.mixer import ReplayBuffers
from hilrl.policies.encoder import ObservationSpec
from hilrl.runtime.record import record_dataset
from hilrl.runtime.run_dir import RunDir

DEMO_STREAM = seeds.DEMO
"""Demo episode ``i`` resets with ``hilrl.seeds.episode_seed(run.seed, "demo", i)`` (recorded
in the dataset's sidecar, so ``hilrl replay`` can reproduce it). Actors, evaluation and
``hilrl record`` draw from other streams, and other run seeds from other hashes, so no
demo layout is one a run evaluates on or another run's demos repeat."""
LOAD_CHUNK = 2048


def demo_path(cfg: RootConfig) -> Path:
    """``train.demo_dataset``, or ``<run.output_dir>/demos``."""
    if cfg.train.demo_dataset is not None:
        return Path(cfg.train.demo_dataset).expanduser()
    return RunDir.of(cfg.run.output_dir).demos


def is_dataset(path: Path) -> bool:
    return (path / "meta" / "info.json").is_file()


def ensure_demos(
    cfg: RootConfig, *, progress: bool = True, out: TextIO | None = None
) -> Path | None:
    """The demo dataset folder, recorded first with the simulated operator when missing.

    None when the run trains without demos (no dataset and ``num_demo_episodes`` is 0).
    A :class:`~hilrl.data.lerobot.DatasetError` names the dataset folder.
    """
    path = demo_path(cfg)
    if is_dataset(path):
        return path
    count = cfg.train.num_demo_episodes
    if count == 0:
        if cfg.train.demo_dataset is not None:
            raise ConfigError(
                "train.demo_dataset",
                cfg.train.demo_dataset,
                "no LeRobot dataset there (set train.num_demo_episodes to record one in the sim)",
            )
        return None
    if cfg.env.gym_id is not None or cfg.env.robot.type != "sim":
        raise ConfigError(
            "train.demo_dataset",
            str(path),
            "no dataset there, and only the sim can record demonstrations by itself: record "
            "them with 'hilrl record', or set train.num_demo_episodes=0",
        )
    with _naming(path):
        record_demos(cfg, path, count, progress=progress, out=out)
    return path


def record_demos(
    cfg: RootConfig, path: Path, count: int, *, progress: bool = True, out: TextIO | None = None
) -> None:
    """Record ``count`` episodes into ``path`` with the simulated operator driving every tick."""

    out = out if out is not None else sys.stderr
    sim = replace(cfg.teleop.sim, drive_always=True)
    rec = replace(
        cfg,
        dataset=replace(cfg.dataset, root=str(path), num_episodes=count),
        teleop=replace(cfg.teleop, device="sim", sim=sim),
    )
    out.write(f"train: recording {count} demonstrations with the simulated operator -> {path}\n")
    summary = record_dataset(
        rec, realtime=False, progress=progress, out=out, seed_stream=DEMO_STREAM
    )
    if summary.reason == "interrupted":
        raise KeyboardInterrupt
    out.write(
        f"train: recorded {len(summary.saved)} demonstrations ({summary.successes} successful, "
        f"{summary.frames} frames)\n"
    )


def load_demos(
    buffers: ReplayBuffers, path: Path, spec: ObservationSpec, action_dim: int
) -> tuple[int, int]:
    """Stream a LeRobot dataset into the demo buffer; returns (episodes, transitions).

    The dataset must hold every observation key of ``spec`` with the same shape and an
    action of ``action_dim`` components; extra features (e.g. cameras a state-only run
    does not use) are ignored. Raises :class:`ConfigError` naming the dataset otherwise,
    and a :class:`~hilrl.data.lerobot.DatasetError` naming it when a file is unreadable.
    """

    with _naming(path):
        reader = LeRobotDatasetReader(path)
        _check_features(reader.features, path, spec, action_dim)
        keys = list(spec.keys)
        count = 0
        for batch in iter_transitions(reader, chunk_size=LOAD_CHUNK):
            obs = {k: _as_stored(k, batch.observations[k]) for k in keys}
            nxt = {k: _as_stored(k, batch.next_observations[k]) for k in keys}
            buffers.add_demos(
                obs,
                np.require(batch.actions, np.float32, ["C", "W"]),
                batch.rewards,
                nxt,
                batch.terminated,
                batch.truncated,
                batch.discrete_penalties,
            )
            count += len(batch)
    return reader.num_episodes, count


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Make every :class:`DatasetError` raised inside name the dataset folder ``path``.

    The reader names the file at fault, usually inside ``path``; an error that does not
    (a display name, a staged copy) is raised again with the folder in front.
    """

    try:
        yield
    except DatasetError as exc:
        if str(path) in str(exc):
            raise
        raise DatasetError(path, str(exc)) from exc


def _as_stored(key: str, arr: np.ndarray) -> np.ndarray:
    """The replay's dtype, in writable memory (arrow hands out read-only views)."""
    dtype = np.uint8 if key.startswith("observation.images.") else np.float32
    return np.require(arr, dtype=dtype, requirements=["C", "W"])


def _check_features(
    features: Mapping[str, Feature], path: Path, spec: ObservationSpec, action_dim: int
) -> None:
    def shape_of(name: str) -> tuple[int, ...] | None:
        feat = features.get(name)
        if feat is None:
            return None
        return feat.hwc if feat.is_camera else tuple(feat.shape)

    want: dict[str, tuple[int, ...]] = dict(spec.image_shapes)
    if spec.state_dim:
        want["observation.state"] = (spec.state_dim,)
    want["action"] = (action_dim,)
    for key, shape in want.items():
        have = shape_of(key)
        if have is None:
            raise ConfigError(
                "train.demo_dataset",
                str(path),
                f"the dataset has no feature '{key}' that the env observes / acts with",
            )
        if tuple(have) != tuple(shape):
            raise ConfigError(
                "train.demo_dataset",
                str(path),
                f"feature '{key}' has shape {list(have)} in the dataset but {list(shape)} in this env",
            )
