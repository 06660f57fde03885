"""Training the reward classifier: balanced batches, early stopping, a calibrated threshold.

:class:`RewardTrainer` does the optimisation and returns metrics (it never logs).
:func:`fit` runs epochs with early stopping on a validation figure and keeps the best
weights. :func:`train_reward_classifier` is the whole job behind ``hilrl train-reward``:
load and check the dataset, split by episode, fit, calibrate the success threshold on the
validation frames, save the classifier, the ROC / confusion PNGs and TensorBoard scalars.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from hilrl.config.reward import RewardModelConfig, RewardTrainConfig
from hilrl.data.augment import random_shift
from hilrl.devices import resolve_device
from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards import metrics as M
from hilrl.rewards.data import LabelledFrames, check_classes, load_labelled_frames, split_by_episode
from hilrl.rewards.model import ClassifierMeta, RewardClassifier, save_classifier
from hilrl.rewards.plots import confusion_figure, figure_rgb, roc_figure, save_figure
from hilrl.rewards.preprocess import prepare_inputs

LOWER_IS_BETTER = ("loss",)
EVAL_BATCH = 256


@dataclass
class Predictions:
    """Model outputs on a set of frames."""

    labels: np.ndarray
    """int64 (N,) true classes."""
    probabilities: np.ndarray
    """float64 (N, K) class probabilities."""
    scores: np.ndarray
    """float64 (N,) success probability."""
    loss: float
    """Class-balanced cross-entropy: the mean over classes of each class's mean loss."""


class RewardTrainer:
    """One classifier and its optimiser; :meth:`step` is one optimisation step."""

    def __init__(
        self,
        model: RewardClassifier,
        cfg: RewardTrainConfig,
        class_counts: np.ndarray,
        device: torch.device,
    ) -> None:
        self.model = model.to(device)
        self.cfg = cfg
        self.device = device
        self.num_classes = model.cfg.num_classes
        self.success_index = model.cfg.success_index
        counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
        self.class_counts = counts
        weights = counts.sum() / (len(counts) * counts) if cfg.balance == "loss" else None
        self.loss_weights = (
            None
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float32, device=device)
        )
        self.optimizer = torch.optim.AdamW(
            model.trainable_parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        self.generator = torch.Generator(device=device).manual_seed(cfg.seed)

    # ----------------------------------------------------------------- loss
    def _per_frame_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.model.binary:
            return F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        return F.cross_entropy(logits, labels, reduction="none")

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Training loss: mean cross-entropy, class-weighted when ``balance='loss'``."""
        per = self._per_frame_loss(logits, labels)
        if self.loss_weights is None:
            return per.mean()
        w = self.loss_weights[labels]
        return (per * w).sum() / w.sum()

    # ----------------------------------------------------------------- training
    def step(self, inputs: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
        """One optimisation step on a prepared batch (augmentation applied by the caller)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(inputs)
        loss = self.loss(logits, labels)
        loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        with torch.no_grad():
            pred = (logits > 0).long() if self.model.binary else logits.argmax(-1)
            acc = (pred == labels).float().mean()
        return {"loss": float(loss.detach()), "accuracy": float(acc)}

    def batch(
        self, frames: LabelledFrames, index: np.ndarray, augment: bool
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Frames ``index`` as model inputs via the shared preprocessing (+ random shifts)."""
        inputs = prepare_inputs(
            {k: v[index] for k, v in frames.inputs.items()}, frames.spec, self.device
        )
        if augment and self.cfg.augment_pad > 0:
            for key in frames.spec.image_keys:
                inputs[key] = random_shift(inputs[key], self.cfg.augment_pad, self.generator)
        labels = torch.as_tensor(frames.labels[index], dtype=torch.long, device=self.device)
        return inputs, labels

    def epoch_order(self, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Frame order of one epoch: class-balanced draws (``balance='sampler'``) or a shuffle."""
        n = labels.shape[0]
        if self.cfg.balance == "sampler":
            counts = np.bincount(labels, minlength=self.num_classes).astype(np.float64)
            p = 1.0 / counts[labels]
            return np.asarray(rng.choice(n, size=n, replace=True, p=p / p.sum()))
        return rng.permutation(n)

    def train_epoch(
        self,
        frames: LabelledFrames,
        rng: np.random.Generator,
        on_batch: Callable[[dict[str, float]], None] | None = None,
    ) -> dict[str, float]:
        order = self.epoch_order(frames.labels, rng)
        bs = self.cfg.batch_size
        losses, accs, sizes = [], [], []
        for start in range(0, order.size, bs):
            idx = order[start : start + bs]
            inputs, labels = self.batch(frames, idx, augment=True)
            out = self.step(inputs, labels)
            losses.append(out["loss"])
            accs.append(out["accuracy"])
            sizes.append(idx.size)
            if on_batch is not None:
                on_batch(out)
        w = np.asarray(sizes, dtype=np.float64)
        return {
            "loss": float(np.average(losses, weights=w)),
            "accuracy": float(np.average(accs, weights=w)),
        }

    # ----------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict(self, frames: LabelledFrames) -> Predictions:
        self.model.eval()
        probs, scores, per_loss = [], [], []
        for start in range(0, len(frames), EVAL_BATCH):
            idx = np.arange(start, min(start + EVAL_BATCH, len(frames)))
            inputs, labels = self.batch(frames, idx, augment=False)
            logits = self.model(inputs)
            probs.append(self.model.probabilities(logits).double().cpu().numpy())
            scores.append(self.model.success_scores(logits).double().cpu().numpy())
            per_loss.append(self._per_frame_loss(logits, labels).double().cpu().numpy())
        losses = np.concatenate(per_loss)
        class_losses = [
            losses[frames.labels == c].mean()
            for c in range(self.num_classes)
            if (frames.labels == c).any()
        ]
        return Predictions(
            frames.labels,
            np.concatenate(probs),
            np.concatenate(scores),
            float(np.mean(class_losses)),
        )


def evaluate(pred: Predictions, success_index: int, threshold: float) -> dict[str, float]:
    """Success-vs-rest metrics at ``threshold`` (+ arg-max metrics for more classes) and loss."""
    y = (pred.labels == success_index).astype(np.int64)
    out = M.binary_metrics(y, pred.scores, threshold)
    if pred.probabilities.shape[1] > 2:
        out.update(M.multiclass_metrics(pred.labels, pred.probabilities))
    out["loss"] = pred.loss
    return out


@dataclass
class EpochRecord:
    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    improved: bool


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


def fit(
    trainer: RewardTrainer,
    train: LabelledFrames,
    val: LabelledFrames,
    *,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    on_batch: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """Train up to ``epochs``, stop after ``patience`` epochs without improvement of
    ``monitor`` on ``val``, and leave the best epoch's weights in the model."""
    cfg = trainer.cfg
    rng = np.random.default_rng(cfg.seed)
    sign = 1.0 if cfg.monitor in LOWER_IS_BETTER else -1.0
    best = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    result = FitResult()
    waited = 0
    for epoch in range(cfg.epochs):
        train_metrics = trainer.train_epoch(train, rng, on_batch)
        val_metrics = evaluate(trainer.predict(val), trainer.success_index, 0.5)
        value = sign * val_metrics[cfg.monitor]
        improved = bool(value < best - 1e-9) or best_state is None
        if improved:
            best = value if math.isfinite(value) else best
            best_state = copy.deepcopy(trainer.model.state_dict())
            result.best_epoch = epoch
            waited = 0
        else:
            waited += 1
        record = EpochRecord(epoch, train_metrics, val_metrics, improved)
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if cfg.patience and waited >= cfg.patience:
            result.stopped_early = epoch + 1 < cfg.epochs
            break
    if best_state is not None:
        trainer.model.load_state_dict(best_state)
    return result


@dataclass
class TrainOutcome:
    """What ``hilrl train-reward`` produced."""

    output_dir: Path
    meta: ClassifierMeta
    fit: FitResult
    train_counts: dict[str, int]
    val_counts: dict[str, int]
    val_metrics: dict[str, float]
    files: dict[str, Path]


def build_model(spec: ObservationSpec, cfg: RewardModelConfig, seed: int) -> RewardClassifier:
    torch.manual_seed(seed)
    return RewardClassifier(spec, cfg)


def train_on_frames(
    train: LabelledFrames,
    val: LabelledFrames,
    model_cfg: RewardModelConfig,
    train_cfg: RewardTrainConfig,
    output_dir: str | Path,
    *,
    dataset: str = "",
    progress: bool = True,
    out: TextIO | None = None,
) -> TrainOutcome:
    """Fit, calibrate, save and plot, from frames already split into train and validation."""

    check_classes(train.labels, model_cfg, "the training split")
    check_classes(val.labels, model_cfg, "the validation split (use more episodes or val_episodes)")
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(train_cfg.device)
    model = build_model(train.spec, model_cfg, train_cfg.seed)
    trainer = RewardTrainer(model, train_cfg, train.class_counts(model_cfg.num_classes), device)
    writer: Any = None
    if train_cfg.tensorboard:
        # start-up: TensorBoard takes ~0.2 s to import; only train.tensorboard runs need it
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out_dir / "tensorboard"))
    batches = math.ceil(len(train) / train_cfg.batch_size)
    bar = tqdm(
        total=train_cfg.epochs * batches,
        desc="train-reward",
        unit="batch",
        file=out if out is not None else sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    step = 0

    def on_batch(m: dict[str, float]) -> None:
        nonlocal step
        step += 1
        bar.update(1)
        if writer is not None:
            writer.add_scalar("train/batch_loss", m["loss"], step)

    def on_epoch(rec: EpochRecord) -> None:
        bar.set_postfix(
            epoch=rec.epoch,
            loss=f"{rec.train['loss']:.4f}",
            val_loss=f"{rec.val['loss']:.4f}",
            val_auc=f"{rec.val['roc_auc']:.4f}",
            refresh=False,
        )
        if writer is not None:
            for k, v in rec.train.items():
                writer.add_scalar(f"train/{k}", v, rec.epoch)
            for k in (
                "loss",
                "accuracy",
                "precision",
                "recall",
                "f1",
                "roc_auc",
                "balanced_accuracy",
            ):
                writer.add_scalar(f"val/{k}", rec.val[k], rec.epoch)

    try:
        result = fit(trainer, train, val, on_epoch=on_epoch, on_batch=on_batch)
    finally:
        bar.close()
    pred = trainer.predict(val)
    y_val = (pred.labels == model_cfg.success_index).astype(np.int64)
    threshold, _ = M.calibrate_threshold(y_val, pred.scores, train_cfg.threshold_metric)
    val_metrics = evaluate(pred, model_cfg.success_index, threshold)
    meta = ClassifierMeta(
        spec=train.spec,
        model=model_cfg,
        threshold=threshold,
        threshold_metric=train_cfg.threshold_metric,
        metrics=val_metrics,
        dataset=dataset,
        label_key=train_cfg.label_key,
        label_offset=train_cfg.label_offset,
    )
    save_classifier(trainer.model, meta, out_dir)
    names = model_cfg.names
    success_name = names[model_cfg.success_index]
    roc = roc_figure(y_val, pred.scores, threshold, f"validation ROC ('{success_name}')")
    if model_cfg.num_classes == 2:
        cm = M.confusion_matrix(y_val, (pred.scores >= threshold).astype(np.int64), 2)
        cm_names: tuple[str, ...] = ("not " + success_name, success_name)
        if model_cfg.success_index == 1:
            cm_names = names
    else:
        cm = M.confusion_matrix(pred.labels, pred.probabilities.argmax(1), model_cfg.num_classes)
        cm_names = names
    conf = confusion_figure(cm, cm_names, f"validation, threshold {threshold:.3f}")
    files = {
        "weights": out_dir / "model.safetensors",
        "meta": out_dir / "reward_classifier.json",
        "roc": save_figure(roc, out_dir / "roc.png"),
        "confusion": save_figure(conf, out_dir / "confusion.png"),
    }
    history = [
        {"epoch": r.epoch, "train": r.train, "val": r.val, "improved": r.improved}
        for r in result.history
    ]
    (out_dir / "history.json").write_text(json.dumps(history, indent=1, default=_json_float) + "\n")
    files["history"] = out_dir / "history.json"
    if writer is not None:
        for k, v in val_metrics.items():
            writer.add_scalar(f"final/{k}", v, result.best_epoch)
        writer.add_image("final/roc", figure_rgb(roc), dataformats="HWC")
        writer.add_image("final/confusion", figure_rgb(conf), dataformats="HWC")
        writer.close()
        files["tensorboard"] = out_dir / "tensorboard"
    return TrainOutcome(
        out_dir,
        meta,
        result,
        _named_counts(train, model_cfg),
        _named_counts(val, model_cfg),
        val_metrics,
        files,
    )


def _json_float(v: object) -> object:
    return None if isinstance(v, float) and v != v else str(v)


def _named_counts(frames: LabelledFrames, cfg: RewardModelConfig) -> dict[str, int]:
    counts = frames.class_counts(cfg.num_classes)
    return {cfg.names[i]: int(counts[i]) for i in range(cfg.num_classes)}


def train_reward_classifier(
    dataset: str | Path,
    model_cfg: RewardModelConfig,
    train_cfg: RewardTrainConfig,
    *,
    output_dir: str | Path | None = None,
    progress: bool = True,
    out: TextIO | None = None,
) -> TrainOutcome:
    """Load the labelled dataset, split it by episode, then :func:`train_on_frames`."""
    frames = load_labelled_frames(dataset, model_cfg, train_cfg.label_key, train_cfg.label_offset)
    train_idx, val_idx = split_by_episode(
        frames,
        model_cfg.success_index,
        train_cfg.val_fraction,
        train_cfg.seed,
        train_cfg.val_episodes,
    )
    return train_on_frames(
        frames.subset(train_idx),
        frames.subset(val_idx),
        model_cfg,
        train_cfg,
        output_dir if output_dir is not None else train_cfg.output_dir,
        dataset=str(dataset),
        progress=progress,
        out=out,
    )
