"""ROC curve and confusion matrix figures (matplotlib's Agg canvas: no display, no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hilrl.rewards.metrics import roc_auc, roc_curve


def roc_figure(labels: np.ndarray, scores: np.ndarray, threshold: float, title: str) -> Figure:
    """ROC curve with the chance diagonal and the operating point of ``threshold`` marked."""
    fpr, tpr, _ = roc_curve(labels, scores)
    auc = roc_auc(labels, scores)
    y = np.asarray(labels).astype(bool)
    pred = np.asarray(scores) >= threshold
    op_tpr = (pred & y).sum() / max(y.sum(), 1)
    op_fpr = (pred & ~y).sum() / max((~y).sum(), 1)
    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(fpr, tpr, color="tab:blue", lw=2, label=f"ROC (AUC = {auc:.4f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="chance")
    ax.scatter([op_fpr], [op_tpr], color="tab:red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(cm: np.ndarray, class_names: Sequence[str], title: str) -> Figure:
    """Counts per (true, predicted) class, with row-normalised shading."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.6 * k + 2.0, 1.4 * k + 1.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            color = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{cm[i, j]}\n({rates[i, j]:.1%})", ha="center", va="center", color=color)
    ax.set_xticks(range(k), labels=list(class_names))
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def figure_rgb(fig: Figure) -> np.ndarray:
    """The rendered figure as uint8 RGB ``(H, W, 3)`` (for TensorBoard images)."""
    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(out))
    return out
