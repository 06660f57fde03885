"""Classification metrics in numpy: confusion matrix, precision / recall / F1, ROC and AUC.

Success is the positive class. A frame is predicted successful when its success score
(probability) is ``>= threshold``; :func:`calibrate_threshold` picks the threshold that
maximises a metric on validation data.
"""

from __future__ import annotations

import math

import numpy as np

THRESHOLD_METRICS = ("f1", "accuracy", "balanced_accuracy")


def _binary(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("binary labels must be 0 or 1")
    return y.astype(bool)


def _scores(scores: np.ndarray, n: int) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"scores must have shape ({n},), got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    return s


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """``cm[true, predicted]`` counts, shape ``(num_classes, num_classes)``."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(predictions, dtype=np.int64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    for name, arr in (("labels", y), ("predictions", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must be in [0, {num_classes})")
    return np.bincount(y * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def counts_metrics(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Accuracy, precision, recall, F1, specificity and balanced accuracy from the counts.

    A ratio with a zero denominator is 0 (e.g. precision when nothing is predicted
    positive), so an all-negative predictor never scores a perfect precision.
    """
    total = tp + fp + tn + fn
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    specificity = _ratio(tn, tn + fp)
    f1 = _ratio(2 * precision * recall, precision + recall)
    return {
        "accuracy": _ratio(tp + tn, total),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "specificity": specificity,
        "balanced_accuracy": 0.5 * (recall + specificity),
    }


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties 1/2.

    Computed from ranks (Mann-Whitney U) with tied scores sharing their average rank.
    NaN when one class is absent.
    """
    y = _binary(labels)
    s = _scores(scores, y.size)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(y.size, dtype=np.float64)
    # average rank (1-based) of each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], y.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate, thresholds) from the strictest threshold down.

    ``thresholds[0]`` is ``+inf`` (nothing predicted positive); point ``i`` predicts
    positive every score ``>= thresholds[i]``. Rates are 0 for an absent class.
    """
    y = _binary(labels)
    s = _scores(scores, y.size)
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True] if s.size else np.zeros(0, bool)
    tps = np.cumsum(y_sorted)[last_of_run]
    fps = np.cumsum(~y_sorted)[last_of_run]
    n_pos = max(int(y.sum()), 1)
    n_neg = max(int((~y).sum()), 1)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, s_sorted[last_of_run]]
    return fpr, tpr, thresholds


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Every figure of :func:`counts_metrics`, ROC-AUC, and the confusion counts."""
    y = _binary(labels)
    s = _scores(scores, y.size)
    pred = s >= threshold
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    tn = int((~pred & ~y).sum())
    fn = int((~pred & y).sum())
    out = counts_metrics(tp, fp, tn, fn)
    out["roc_auc"] = roc_auc(y.astype(np.int64), s)
    out.update(tp=float(tp), fp=float(fp), tn=float(tn), fn=float(fn), threshold=float(threshold))
    return out


def multiclass_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged precision / recall / F1 of the arg-max class."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probabilities must have shape ({y.shape[0]}, K), got {p.shape}")
    k = p.shape[1]
    cm = confusion_matrix(y, p.argmax(axis=1), k)
    precision = [_ratio(cm[c, c], cm[:, c].sum()) for c in range(k)]
    recall = [_ratio(cm[c, c], cm[c, :].sum()) for c in range(k)]
    f1 = [_ratio(2 * a * b, a + b) for a, b in zip(precision, recall)]
    return {
        "class_accuracy": _ratio(np.trace(cm), cm.sum()),
        "macro_precision": float(np.mean(precision)),
        "macro_recall": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
    }


def calibrate_threshold(
    labels: np.ndarray, scores: np.ndarray, metric: str = "f1"
) -> tuple[float, float]:
    """The threshold maximising ``metric`` on (labels, scores), and the metric's value there.

    Candidates are the midpoints between consecutive distinct scores plus one below the
    lowest and one above the highest score (every distinct prediction set once). Of equally
    good candidates the one closest to 0.5 wins, a neutral choice for probabilities.
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"unknown threshold metric {metric!r}; choose one of {THRESHOLD_METRICS}")
    y = _binary(labels)
    s = _scores(scores, y.size)
    if y.size == 0:
        raise ValueError("cannot calibrate a threshold on no frames")
    uniq = np.unique(s)
    candidates = np.r_[
        uniq[0] - max(1e-6, abs(uniq[0]) * 1e-6),
        (uniq[:-1] + uniq[1:]) / 2.0,
        uniq[-1] + max(1e-6, abs(uniq[-1]) * 1e-6),
    ]
    # counts for every candidate at once: positives / negatives with score >= t
    pos_sorted = np.sort(s[y])
    neg_sorted = np.sort(s[~y])
    tp = np.asarray(pos_sorted.size - np.searchsorted(pos_sorted, candidates, side="left"))
    fp = np.asarray(neg_sorted.size - np.searchsorted(neg_sorted, candidates, side="left"))
    fn = pos_sorted.size - tp
    tn = neg_sorted.size - fp
    rows: list[tuple[int, int, int, int]] = list(
        zip(tp.tolist(), fp.tolist(), tn.tolist(), fn.tolist())
    )
    values = np.array([counts_metrics(a, b, c, d)[metric] for a, b, c, d in rows])
    best = values.max()
    tied = np.flatnonzero(np.isclose(values, best, rtol=0.0, atol=1e-12))
    pick = tied[np.argmin(np.abs(candidates[tied] - 0.5))]
    return float(candidates[pick]), float(values[pick])
