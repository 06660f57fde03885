"""Training end to end on separable synthetic images; balancing and early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from reward_helpers import (
    mixed_episodes,
    synthetic_frame,
    tiny_model_cfg,
    tiny_train_cfg,
    write_labelled_dataset,
)

from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards.data import load_labelled_frames, split_by_episode
from hilrl.rewards.hook import load_reward_fn
from hilrl.rewards.model import RewardClassifier
from hilrl.rewards.train import RewardTrainer, fit, train_reward_classifier


def test_tiny_end_to_end_training_reaches_high_accuracy(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_labelled_dataset(root, mixed_episodes(12, 16))
    out = tmp_path / "clf"
    outcome = train_reward_classifier(
        root,
        tiny_model_cfg(),
        tiny_train_cfg(epochs=12, tensorboard=True),
        output_dir=out,
        progress=False,
    )
    assert outcome.val_metrics["accuracy"] >= 0.95
    assert outcome.val_metrics["roc_auc"] >= 0.98
    for name in ("model.safetensors", "reward_classifier.json", "roc.png", "confusion.png"):
        assert (out / name).is_file(), name
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any((out / "tensorboard").iterdir())
    meta = json.loads((out / "reward_classifier.json").read_text())
    assert meta["class_names"] == ["failure", "success"]
    assert meta["image_sizes"] == {
        "observation.images.front": [16, 16, 3],
        "observation.images.wrist": [16, 16, 3],
    }
    assert meta["threshold"] == outcome.meta.threshold
    # fresh frames through the env hook: the deployed reward is as good
    fn = load_reward_fn(out)
    rng = np.random.default_rng(123)
    labels = np.arange(200) % 2
    hits = sum(fn(synthetic_frame(rng, bool(y)), {})[1] == bool(y) for y in labels)
    assert hits / len(labels) >= 0.95


def test_multiclass_training_scores_the_success_class(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rng = np.random.default_rng(0)
    episodes = [[int(x) for x in rng.integers(0, 3, 14)] for _ in range(10)]
    write_labelled_dataset(root, episodes, success_label=2)
    cfg = tiny_model_cfg(num_classes=3, class_names=("idle", "grasped", "lifted"))
    outcome = train_reward_classifier(
        root, cfg, tiny_train_cfg(epochs=10), output_dir=tmp_path / "clf", progress=False
    )
    assert outcome.meta.class_names == ("idle", "grasped", "lifted")
    assert set(outcome.train_counts) == {"idle", "grasped", "lifted"}
    assert outcome.val_metrics["accuracy"] >= 0.9  # lifted vs the rest: separable
    assert "class_accuracy" in outcome.val_metrics  # arg-max figures over the 3 classes
    assert (tmp_path / "clf" / "confusion.png").is_file()


def test_early_stopping_stops_when_nothing_improves(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_labelled_dataset(root, mixed_episodes(4, 6))
    frames = load_labelled_frames(root, tiny_model_cfg())
    tr, va = split_by_episode(frames, 1, 0.5, 0)
    cfg = tiny_train_cfg(epochs=10, patience=2, lr=1e-14)  # steps far below the tolerance
    torch.manual_seed(0)
    trainer = RewardTrainer(
        RewardClassifier(frames.spec, tiny_model_cfg()), cfg, np.ones(2), torch.device("cpu")
    )
    result = fit(trainer, frames.subset(tr), frames.subset(va))
    assert result.stopped_early and result.best_epoch == 0 and len(result.history) == 3
    assert [r.improved for r in result.history] == [True, False, False]


def test_best_epoch_weights_are_restored(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_labelled_dataset(root, mixed_episodes(4, 8))
    frames = load_labelled_frames(root, tiny_model_cfg())
    tr, va = split_by_episode(frames, 1, 0.5, 0)
    cfg = tiny_train_cfg(epochs=4, lr=3e-2)
    torch.manual_seed(0)
    trainer = RewardTrainer(
        RewardClassifier(frames.spec, tiny_model_cfg()), cfg, np.ones(2), torch.device("cpu")
    )
    result = fit(trainer, frames.subset(tr), frames.subset(va))
    best = result.history[result.best_epoch].val["loss"]
    assert trainer.predict(frames.subset(va)).loss == pytest.approx(best, rel=1e-6)
    assert best == min(r.val["loss"] for r in result.history)


def test_balanced_sampler_draws_classes_equally() -> None:
    labels = np.array([1] * 50 + [0] * 950)
    trainer = RewardTrainer(
        RewardClassifier(
            load_spec(),
            tiny_model_cfg(),
        ),
        tiny_train_cfg(balance="sampler"),
        np.bincount(labels),
        torch.device("cpu"),
    )
    rng = np.random.default_rng(0)
    drawn = np.concatenate([trainer.epoch_order(labels, rng) for _ in range(10)])
    assert abs(labels[drawn].mean() - 0.5) < 0.02
    plain = RewardTrainer(
        RewardClassifier(load_spec(), tiny_model_cfg()),
        tiny_train_cfg(balance="none"),
        np.bincount(labels),
        torch.device("cpu"),
    )
    order = plain.epoch_order(labels, rng)
    assert sorted(order.tolist()) == list(range(1000))  # a permutation


def test_class_weighted_loss_matches_the_formula() -> None:
    counts = np.array([30, 10])
    trainer = RewardTrainer(
        RewardClassifier(load_spec(), tiny_model_cfg()),
        tiny_train_cfg(balance="loss"),
        counts,
        torch.device("cpu"),
    )
    logits = torch.tensor([0.3, -1.0, 2.0, 0.0])
    labels = torch.tensor([1, 0, 0, 1])
    w = torch.tensor([40 / 60, 40 / 20])[labels]  # total / (K * count)
    per = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, labels.float(), reduction="none"
    )
    assert float(trainer.loss(logits, labels)) == pytest.approx(float((per * w).sum() / w.sum()))


def load_spec() -> ObservationSpec:
    return ObservationSpec(0, (("observation.images.front", (16, 16, 3)),))
