"""Tiny labelled datasets and configs for the reward classifier tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hilrl.config.learner import EncoderConfig
from hilrl.config.reward import RewardModelConfig, RewardTrainConfig
from hilrl.data.lerobot import DatasetWriter, hilrl_features
from hilrl.data.lerobot.features import (
    ACTION,
    DONE,
    INTERVENTION,
    PENALTY,
    REWARD,
    TRUNCATED,
)
from hilrl.types import IMAGE_PREFIX, STATE_KEY

SIZE = 16
CAMERAS = ("front", "wrist")
STATE_DIM = 3


def tiny_model_cfg(**overrides: object) -> RewardModelConfig:
    """A small CNN encoder sized for 16x16 images: milliseconds per step."""
    enc = EncoderConfig(
        type="small_cnn",
        small_cnn_channels=(8, 8),
        small_cnn_patch=2,
        spatial_features=2,
        image_latent_dim=16,
        state_latent_dim=8,
    )
    base: dict[str, object] = {"encoder": enc, "hidden_dims": (16,), "dropout": 0.0}
    base.update(overrides)
    return RewardModelConfig(**base)  # type: ignore[arg-type]


def tiny_train_cfg(**overrides: object) -> RewardTrainConfig:
    base: dict[str, object] = {
        "epochs": 8,
        "batch_size": 32,
        "lr": 3e-3,
        "patience": 0,
        "tensorboard": False,
        "device": "cpu",
        "augment_pad": 1,
    }
    base.update(overrides)
    return RewardTrainConfig(**base)  # type: ignore[arg-type]


def synthetic_frame(
    rng: np.random.Generator, success: bool, size: int = SIZE, cameras: tuple[str, ...] = CAMERAS
) -> dict[str, np.ndarray]:
    """Dark noise images; a success frame has a bright 4x4 square somewhere in camera 0."""
    frame: dict[str, np.ndarray] = {}
    for i, cam in enumerate(cameras):
        img = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
        if success and i == 0:
            y, x = rng.integers(0, size - 4, size=2)
            img[y : y + 4, x : x + 4] = 250
        frame[IMAGE_PREFIX + cam] = img
    frame[STATE_KEY] = rng.normal(size=STATE_DIM).astype(np.float32)
    return frame


def write_labelled_dataset(
    root: Path,
    labels_per_episode: list[list[int]],
    *,
    seed: int = 0,
    size: int = SIZE,
    cameras: tuple[str, ...] = CAMERAS,
    success_label: int = 1,
) -> list[dict[str, np.ndarray]]:
    """A lossless (PNG) dataset whose next.reward is each frame's label; returns the frames.

    Frames labelled ``success_label`` show the bright square; all others look alike."""
    rng = np.random.default_rng(seed)
    feats = hilrl_features(STATE_DIM, 2, {c: (size, size) for c in cameras})
    frames = []
    with DatasetWriter(root, fps=10, features=feats, image_storage="image", fsync=False) as w:
        for labels in labels_per_episode:
            for t, label in enumerate(labels):
                obs = synthetic_frame(rng, label == success_label, size, cameras)
                frames.append(obs)
                w.add_frame(
                    {
                        **obs,
                        ACTION: np.zeros(2, np.float32),
                        REWARD: np.float32(label),
                        DONE: t == len(labels) - 1,
                        TRUNCATED: False,
                        INTERVENTION: np.float32(0.0),
                        PENALTY: np.float32(0.0),
                    }
                )
            w.save_episode("synthetic")
    return frames


def mixed_episodes(n_episodes: int, length: int, rng_seed: int = 0) -> list[list[int]]:
    """Episodes of failures ending in a run of successes (about a third of the frames)."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for _ in range(n_episodes):
        k = int(rng.integers(length // 4, length // 2))
        out.append([0] * (length - k) + [1] * k)
    return out
