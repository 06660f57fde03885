"""Scoring a saved classifier on a labelled dataset, through the exact inference path.

Frames go through :class:`~hilrl.rewards.hook.RewardClassifierFn` (the env's reward
hook), so the figures are those the deployed reward would have on these frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hilrl.config.reward import RewardModelConfig
from hilrl.rewards import metrics as M
from hilrl.rewards.data import LabelledFrames, load_labelled_frames
from hilrl.rewards.hook import RewardClassifierFn, load_reward_fn
from hilrl.rewards.plots import confusion_figure, roc_figure, save_figure

BATCH = 256


@dataclass
class EvalReport:
    """Metrics of a classifier on a set of labelled frames."""

    metrics: dict[str, float]
    """Success-vs-rest figures at the threshold (accuracy, precision, recall, F1, ROC-AUC, counts)."""
    threshold: float
    frames: int
    class_counts: dict[str, int]
    ms_per_frame: float
    """Batched inference time per frame (not the per-step latency of the env hook)."""
    files: dict[str, Path] = field(default_factory=dict)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))


def score_frames(fn: RewardClassifierFn, frames: LabelledFrames) -> tuple[np.ndarray, float]:
    """Success probabilities of every frame, and the batched inference ms per frame."""
    out = []
    t0 = time.perf_counter()
    for start in range(0, len(frames), BATCH):
        part = {k: v[start : start + BATCH] for k, v in frames.inputs.items()}
        out.append(fn.scores(part))
    ms = (time.perf_counter() - t0) * 1000.0 / max(len(frames), 1)
    return (np.concatenate(out) if out else np.zeros(0)), ms


def evaluate_frames(
    fn: RewardClassifierFn, frames: LabelledFrames, output_dir: str | Path | None = None
) -> EvalReport:
    """Metrics (and ROC / confusion PNGs in ``output_dir``) of ``fn`` on ``frames``."""
    cfg: RewardModelConfig = fn.meta.model
    scores, ms = score_frames(fn, frames)
    y = (frames.labels == cfg.success_index).astype(np.int64)
    metrics = M.binary_metrics(y, scores, fn.threshold)
    counts = frames.class_counts(cfg.num_classes)
    report = EvalReport(
        metrics,
        fn.threshold,
        len(frames),
        {cfg.names[i]: int(counts[i]) for i in range(cfg.num_classes)},
        ms,
        labels=y,
        scores=scores,
    )
    if output_dir is not None:
        out = Path(output_dir)
        success = cfg.names[cfg.success_index]
        names = ("not " + success, success)
        cm = M.confusion_matrix(y, (scores >= fn.threshold).astype(np.int64), 2)
        report.files["roc"] = save_figure(
            roc_figure(y, scores, fn.threshold, f"ROC ('{success}')"), out / "roc.png"
        )
        report.files["confusion"] = save_figure(
            confusion_figure(cm, names, f"threshold {fn.threshold:.3f}"), out / "confusion.png"
        )
    return report


def evaluate_classifier(
    model_path: str | Path,
    dataset: str | Path,
    *,
    device: str = "cpu",
    threshold: float | None = None,
    output_dir: str | Path | None = None,
) -> EvalReport:
    """Load the classifier at ``model_path`` and score every frame of ``dataset``.

    The dataset must have the classifier's cameras at its image sizes; one class only is
    allowed here (e.g. a set of failures), ROC-AUC is then NaN.
    """
    fn = load_reward_fn(model_path, device, threshold=threshold)
    meta = fn.meta
    frames = load_labelled_frames(
        dataset,
        meta.model,
        meta.label_key,
        meta.label_offset,
        spec=meta.spec,
        require_all_classes=False,
    )
    return evaluate_frames(fn, frames, output_dir)
