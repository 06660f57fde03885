"""Metrics against hand-computed values and brute-force oracles."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from hilrl.rewards import metrics as M


def test_confusion_matrix_and_counts_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0, 1, 1, 1, 0, 0])
    cm = M.confusion_matrix(y, p, 2)
    assert cm.tolist() == [[2, 1], [1, 2]]
    m = M.counts_metrics(tp=2, fp=1, tn=2, fn=1)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # nothing predicted positive: precision 0, not a perfect score
    assert M.counts_metrics(tp=0, fp=0, tn=5, fn=2)["precision"] == 0.0


def _pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg))
    return float(wins / (len(pos) * len(neg)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_matches_pairwise_count_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.random(60) + 0.3 * y, 1)  # rounding makes many ties
    assert M.roc_auc(y, s) == pytest.approx(_pairwise_auc(y, s), abs=1e-12)
    fpr, tpr, thr = M.roc_curve(y, s)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.isinf(thr[0])
    # the trapezoid area under the curve is the same number
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.roc_auc(y, s), abs=1e-12)


def test_roc_auc_is_nan_with_one_class() -> None:
    assert math.isnan(M.roc_auc(np.zeros(5, int), np.linspace(0, 1, 5)))


def test_threshold_calibration_on_a_hand_made_example() -> None:
    scores = np.array([0.1, 0.3, 0.35, 0.6, 0.7, 0.9])
    labels = np.array([0, 0, 1, 0, 1, 1])
    # F1: predicting the top four positive gives P = 3/4, R = 1, F1 = 6/7: the best
    t, v = M.calibrate_threshold(labels, scores, "f1")
    assert t == pytest.approx(0.325) and v == pytest.approx(6 / 7)
    # accuracy: 5/6 both at (0.3, 0.35] and (0.6, 0.7]; the tie goes to the one nearer 0.5
    t, v = M.calibrate_threshold(labels, scores, "accuracy")
    assert t == pytest.approx(0.65) and v == pytest.approx(5 / 6)
    m = M.binary_metrics(labels, scores, 0.325)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 1, 2, 0)


@pytest.mark.parametrize("metric", M.THRESHOLD_METRICS)
def test_calibrated_threshold_is_as_good_as_a_fine_grid(metric: str) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    t, v = M.calibrate_threshold(y, s, metric)
    grid = np.linspace(-0.01, 1.01, 5001)
    best = max(M.binary_metrics(y, s, g)[metric] for g in grid)
    assert v == pytest.approx(best, abs=1e-12)
    assert M.binary_metrics(y, s, t)[metric] == pytest.approx(v, abs=1e-12)


def test_multiclass_metrics_by_hand() -> None:
    y = np.array([0, 1, 2, 2])
    probs = np.eye(3)[[0, 1, 1, 2]]
    m = M.multiclass_metrics(y, probs)
    assert m["class_accuracy"] == pytest.approx(0.75)
    # class 1: P = 1/2, R = 1; class 2: P = 1, R = 1/2; class 0 perfect
    assert m["macro_precision"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert m["macro_recall"] == pytest.approx((1 + 1 + 0.5) / 3)
