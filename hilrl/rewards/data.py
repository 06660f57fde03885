"""Labelled frames from a LeRobot dataset: loading, label alignment, checks and the split.

Everything that can be wrong with the data (a missing camera or label column, labels
out of range, one class only, a validation split without both classes) raises a
:class:`RewardDataError` naming the dataset and the problem before any training starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hilrl.config.reward import RewardModelConfig
from hilrl.data.lerobot import LeRobotDatasetReader
from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards.preprocess import camera_key
from hilrl.types import STATE_KEY


class RewardDataError(ValueError):
    """A labelled dataset that cannot train (or evaluate) a reward classifier."""


@dataclass
class LabelledFrames:
    """Frames in memory: classifier inputs, integer labels and each frame's episode."""

    inputs: dict[str, np.ndarray]
    """Images uint8 ``(N, H, W, 3)`` per camera key; ``observation.state`` float32 ``(N, D)``."""
    labels: np.ndarray
    """int64 ``(N,)`` class indices."""
    episodes: np.ndarray
    """int64 ``(N,)`` episode index of every frame."""
    spec: ObservationSpec

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: np.ndarray | Sequence[int]) -> LabelledFrames:
        idx = np.asarray(index, dtype=np.int64)
        return LabelledFrames(
            {k: v[idx] for k, v in self.inputs.items()},
            self.labels[idx],
            self.episodes[idx],
            self.spec,
        )

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=num_classes)[:num_classes]


def dataset_spec(
    reader: LeRobotDatasetReader, cfg: RewardModelConfig, source: str
) -> ObservationSpec:
    """The classifier's inputs as found in the dataset: chosen cameras, sizes, state."""
    cams = [camera_key(c) for c in cfg.cameras] or sorted(reader.camera_keys)
    if not cams:
        raise RewardDataError(f"{source}: the dataset has no camera features to classify")
    missing = [c for c in cams if c not in reader.features or not reader.features[c].is_camera]
    if missing:
        raise RewardDataError(
            f"{source}: reward.model.cameras asks for {missing}, which the dataset lacks "
            f"(its cameras: {sorted(reader.camera_keys)})"
        )
    shapes = []
    for key in sorted(cams):
        h, w, c = reader.features[key].hwc
        if c != 3:
            raise RewardDataError(f"{source}: camera {key} has {c} channels, expected RGB (3)")
        shapes.append((key, (h, w, 3)))
    state_dim = 0
    if cfg.use_state:
        feat = reader.features.get(STATE_KEY)
        if feat is None:
            raise RewardDataError(
                f"{source}: reward.model.use_state is on but the dataset has no {STATE_KEY}"
            )
        state_dim = int(feat.shape[0])
    return ObservationSpec(state_dim, tuple(shapes))


def to_labels(values: np.ndarray, num_classes: int, source: str) -> np.ndarray:
    """Column values -> class indices: binary ``>= 0.5`` is success; else integers in range."""
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if v.shape[1] != 1:
        raise RewardDataError(f"{source}: the label column must hold one value per frame")
    v = v[:, 0]
    if not np.isfinite(v).all():
        raise RewardDataError(f"{source}: the label column has NaN or infinite values")
    if num_classes == 2:
        return (v >= 0.5).astype(np.int64)
    if not np.all(v == np.round(v)) or v.min() < 0 or v.max() >= num_classes:
        raise RewardDataError(
            f"{source}: labels must be integers in [0, {num_classes}) for "
            f"num_classes={num_classes}, got values in [{v.min()}, {v.max()}]"
        )
    return v.astype(np.int64)


def align_labels(
    raw: np.ndarray, episodes: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept frame indices, their labels): frame i takes the label of frame i + offset.

    Frames whose partner lies outside their episode are dropped. Frames must be grouped
    by episode in order (as the reader returns them).
    """
    n = raw.shape[0]
    if offset == 0:
        return np.arange(n), raw
    src = np.arange(n) + offset
    ok = (src >= 0) & (src < n)
    ok[ok] &= episodes[src[ok]] == episodes[np.flatnonzero(ok)]
    keep = np.flatnonzero(ok)
    return keep, raw[src[keep]]


def check_classes(labels: np.ndarray, cfg: RewardModelConfig, what: str) -> None:
    """Every class must have frames, else the classifier cannot learn to tell it apart."""
    counts = np.bincount(labels, minlength=cfg.num_classes)
    empty = [cfg.names[i] for i in range(cfg.num_classes) if counts[i] == 0]
    if empty:
        have = {cfg.names[i]: int(counts[i]) for i in range(cfg.num_classes)}
        raise RewardDataError(
            f"{what} has no frames of class {empty} (frames per class: {have}); a reward "
            "classifier needs examples of every class (record successes and failures)"
        )


def load_labelled_frames(
    root: str | Path,
    cfg: RewardModelConfig,
    label_key: str = "next.reward",
    label_offset: int = 0,
    *,
    spec: ObservationSpec | None = None,
    require_all_classes: bool = True,
) -> LabelledFrames:
    """Read the classifier's inputs and labels of every frame of the dataset at ``root``.

    With ``spec`` (a trained classifier's), the dataset must provide exactly those cameras
    and sizes (evaluation); otherwise the spec is read off the dataset (training).
    """
    source = str(root)
    reader = LeRobotDatasetReader(root)
    if label_key not in reader.features:
        numeric = sorted(k for k, f in reader.features.items() if not f.is_camera)
        raise RewardDataError(
            f"{source}: no label column {label_key!r} (reward.train.label_key); columns: {numeric}"
        )
    if spec is None:
        spec = dataset_spec(reader, cfg, source)
    else:
        found = dataset_spec(
            reader,
            RewardModelConfig(
                cameras=spec.image_keys, use_state=spec.state_dim > 0, encoder=cfg.encoder
            ),
            source,
        )
        if found != spec:
            raise RewardDataError(
                f"{source}: the dataset's inputs {found.to_json()} differ from the "
                f"classifier's {spec.to_json()} (cameras, image sizes, state size)"
            )
    if reader.num_frames == 0:
        raise RewardDataError(f"{source}: the dataset has no frames")
    keys = [*spec.keys, label_key]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in [*keys, "episode_index"]}
    for chunk in reader.iter_chunks(keys=keys):
        for k in parts:
            parts[k].append(chunk[k])
    data = {k: np.concatenate(v) for k, v in parts.items()}
    episodes = data["episode_index"].astype(np.int64).reshape(-1)
    raw = to_labels(data[label_key], cfg.num_classes, f"{source} column {label_key!r}")
    keep, labels = align_labels(raw, episodes, label_offset)
    inputs = {k: data[k][keep] for k in spec.image_keys}
    if spec.state_dim:
        inputs[STATE_KEY] = data[STATE_KEY][keep].astype(np.float32).reshape(len(keep), -1)
    frames = LabelledFrames(inputs, labels, episodes[keep], spec)
    if require_all_classes:
        check_classes(frames.labels, cfg, f"dataset {source}")
    return frames


def split_by_episode(
    frames: LabelledFrames,
    success_index: int,
    val_fraction: float,
    seed: int,
    val_episodes: Sequence[int] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(train frame indices, validation frame indices), whole episodes on one side.

    Frames of one episode are near-duplicates; splitting inside episodes would let the
    validation score measure memory, not generalisation. Episodes with and without
    successes are split separately so both sides get both kinds.
    """
    eps = np.unique(frames.episodes)
    if val_episodes:
        unknown = sorted(set(val_episodes) - {int(e) for e in eps})
        if unknown:
            raise RewardDataError(f"reward.train.val_episodes {unknown} are not in the dataset")
        val = np.array(sorted(set(val_episodes)), dtype=np.int64)
    else:
        if eps.size < 2:
            raise RewardDataError(
                f"the dataset has {eps.size} episode(s); a validation split by episode needs "
                "at least 2 (record more episodes)"
            )
        rng = np.random.default_rng(seed)
        succ_eps = np.unique(frames.episodes[frames.labels == success_index])
        groups = [succ_eps, np.setdiff1d(eps, succ_eps)]
        chosen = []
        for group in groups:
            if group.size == 0:
                continue
            n_val = round(val_fraction * group.size)
            if group.size >= 2:
                n_val = min(max(n_val, 1), group.size - 1)
            chosen.append(rng.permutation(group)[:n_val])
        val = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)
        if val.size == 0 or val.size == eps.size:
            val = np.sort(
                rng.permutation(eps)[: max(1, min(eps.size - 1, round(val_fraction * eps.size)))]
            )
    is_val = np.isin(frames.episodes, val)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
