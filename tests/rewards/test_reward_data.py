"""Bad datasets fail before training; labels align; the split keeps episodes whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from reward_helpers import mixed_episodes, tiny_model_cfg, tiny_train_cfg, write_labelled_dataset

from hilrl.rewards.data import (
    RewardDataError,
    align_labels,
    load_labelled_frames,
    split_by_episode,
    to_labels,
)
from hilrl.rewards.evaluate import evaluate_classifier
from hilrl.rewards.train import train_reward_classifier


def test_one_class_dataset_fails_before_training(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_labelled_dataset(root, [[0] * 5, [0] * 4])
    out = tmp_path / "out"
    with pytest.raises(RewardDataError, match=r"no frames of class \['success'\]"):
        train_reward_classifier(root, tiny_model_cfg(), tiny_train_cfg(), output_dir=out)
    assert not out.exists()


def test_missing_camera_or_label_column_fails_naming_it(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_labelled_dataset(root, [[0, 1], [0, 1]])
    with pytest.raises(RewardDataError, match=r"observation.images.top.*its cameras"):
        load_labelled_frames(root, tiny_model_cfg(cameras=("top",)))
    with pytest.raises(RewardDataError, match=r"no label column 'label\.success'"):
        load_labelled_frames(root, tiny_model_cfg(), label_key="label.success")
    frames = load_labelled_frames(root, tiny_model_cfg(cameras=("wrist",)))
    assert frames.spec.image_keys == ("observation.images.wrist",)


def test_labels_for_more_classes_must_be_integers_in_range() -> None:
    assert to_labels(np.array([0.0, 0.49, 0.5, 1.0]), 2, "x").tolist() == [0, 0, 1, 1]
    assert to_labels(np.array([0, 2, 1]), 3, "x").tolist() == [0, 2, 1]
    with pytest.raises(RewardDataError, match=r"integers in \[0, 3\)"):
        to_labels(np.array([0, 3]), 3, "x")
    with pytest.raises(RewardDataError, match="NaN"):
        to_labels(np.array([0, np.nan]), 2, "x")


def test_label_offset_stays_inside_episodes() -> None:
    raw = np.array([10, 11, 12, 20, 21])
    eps = np.array([0, 0, 0, 1, 1])
    keep, labels = align_labels(raw, eps, -1)
    assert keep.tolist() == [1, 2, 4] and labels.tolist() == [10, 11, 20]
    keep, labels = align_labels(raw, eps, 1)
    assert keep.tolist() == [0, 1, 3] and labels.tolist() == [11, 12, 21]


def test_split_keeps_episodes_whole_and_both_classes_on_both_sides(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    episodes = mixed_episodes(6, 6) + [[0] * 6] * 4
    write_labelled_dataset(root, episodes)
    frames = load_labelled_frames(root, tiny_model_cfg())
    for seed in range(5):
        tr, va = split_by_episode(frames, 1, 0.3, seed)
        assert len(tr) + len(va) == len(frames)
        assert not set(frames.episodes[tr]) & set(frames.episodes[va])
        for part in (tr, va):
            assert set(frames.labels[part]) == {0, 1}
    tr, va = split_by_episode(frames, 1, 0.3, 0, val_episodes=[0, 9])
    assert set(frames.episodes[va]) == {0, 9}
    with pytest.raises(RewardDataError, match=r"val_episodes \[42\]"):
        split_by_episode(frames, 1, 0.3, 0, val_episodes=[42])


def test_eval_on_images_of_another_size_fails(tmp_path: Path) -> None:
    train_root, other_root = tmp_path / "a", tmp_path / "b"
    write_labelled_dataset(train_root, mixed_episodes(4, 6))
    write_labelled_dataset(other_root, mixed_episodes(2, 4), size=20)
    outcome = train_reward_classifier(
        train_root,
        tiny_model_cfg(),
        tiny_train_cfg(epochs=1),
        output_dir=tmp_path / "m",
        progress=False,
    )
    with pytest.raises(RewardDataError, match="differ from the classifier"):
        evaluate_classifier(outcome.output_dir, other_root)
