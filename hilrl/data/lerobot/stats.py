"""Feature statistics, in LeRobot's layout, computed while recording.

Per feature: ``min``, ``max``, ``mean``, ``std`` (population), ``count`` (frames, shape
``(1,)``) and the quantiles ``q01 q10 q50 q90 q99`` that LeRobot v0.4+ adds for quantile
normalisation. Vector stats have the feature's shape; image stats are per channel, shaped
``(3, 1, 1)`` and scaled to ``[0, 1]``.

Per-episode stats are exact: vectors from the episode's stacked values, images from a
256-bin histogram per channel filled frame by frame (so video frames never need to be
kept). Dataset stats merge episodes as LeRobot's ``aggregate_stats`` does: exact for
min/max/mean/std/count, count-weighted means for quantiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

Stats = dict[str, np.ndarray]

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = ("q01", "q10", "q50", "q90", "q99")
_CHANNEL_OFFSET = np.array([0, 256, 512], dtype=np.int64)


def vector_stats(values: np.ndarray) -> Stats:
    """Stats of ``(n,)`` or ``(n, d)`` values; min/max keep the dtype (bool stays bool)."""
    v = values.reshape(len(values), -1)
    f = v.astype(np.float64)
    out: Stats = {
        "min": v.min(axis=0),
        "max": v.max(axis=0),
        "mean": f.mean(axis=0),
        "std": f.std(axis=0),
        "count": np.array([len(values)], dtype=np.int64),
    }
    qs = np.quantile(f, QUANTILES, axis=0)
    for key, q in zip(QUANTILE_KEYS, qs):
        out[key] = q
    return out


class ImageStats:
    """Running per-channel histogram of uint8 RGB frames: exact stats, O(1) memory."""

    def __init__(self) -> None:
        self.hist = np.zeros((3, 256), dtype=np.int64)
        self.frames = 0

    def update(self, image: np.ndarray) -> None:
        """Add one HWC uint8 frame."""
        idx = image.reshape(-1, 3).astype(np.int64) + _CHANNEL_OFFSET
        self.hist += np.bincount(idx.ravel(), minlength=768).reshape(3, 256)
        self.frames += 1

    def result(self) -> Stats:
        """Stats in LeRobot's image layout: (3, 1, 1) per entry, values in [0, 1]."""
        levels = np.arange(256, dtype=np.float64) / 255.0
        total = self.hist.sum(axis=1).astype(np.float64)
        mean = (self.hist * levels).sum(axis=1) / total
        var = (self.hist * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
        nonzero = self.hist > 0
        lo = np.argmax(nonzero, axis=1)
        hi = 255 - np.argmax(nonzero[:, ::-1], axis=1)
        cum = np.cumsum(self.hist, axis=1)

        def col(x: np.ndarray) -> np.ndarray:
            return np.asarray(x, dtype=np.float64).reshape(3, 1, 1)

        out: Stats = {
            "min": col(lo / 255.0),
            "max": col(hi / 255.0),
            "mean": col(mean),
            "std": col(np.sqrt(var)),
            "count": np.array([self.frames], dtype=np.int64),
        }
        for key, q in zip(QUANTILE_KEYS, QUANTILES):
            # smallest level whose cumulative share reaches q
            level = np.array([np.searchsorted(cum[c], q * total[c]) for c in range(3)])
            out[key] = col(np.minimum(level, 255) / 255.0)
        return out


def aggregate(stats_list: Iterable[Stats]) -> Stats:
    """Merge stats of disjoint frame sets (LeRobot's ``aggregate_feature_stats`` rule)."""
    items = list(stats_list)
    counts = np.array([float(s["count"][0]) for s in items])
    total = counts.sum()
    means = np.stack([np.asarray(s["mean"], dtype=np.float64) for s in items])
    w = counts.reshape((-1,) + (1,) * (means.ndim - 1))
    mean = (means * w).sum(axis=0) / total
    var = np.stack([np.asarray(s["std"], dtype=np.float64) ** 2 for s in items])
    var_total = ((var + (means - mean) ** 2) * w).sum(axis=0) / total
    out: Stats = {
        "min": np.min(np.stack([s["min"] for s in items]), axis=0),
        "max": np.max(np.stack([s["max"] for s in items]), axis=0),
        "mean": mean,
        "std": np.sqrt(var_total),
        "count": np.array([int(total)], dtype=np.int64),
    }
    for key in QUANTILE_KEYS:
        if all(key in s for s in items):
            q = np.stack([np.asarray(s[key], dtype=np.float64) for s in items])
            out[key] = (q * w).sum(axis=0) / total
    return out


def aggregate_all(per_feature: Iterable[Mapping[str, Stats]]) -> dict[str, Stats]:
    """Merge whole-dataset stats dicts feature by feature (a feature may be missing in some)."""
    groups: dict[str, list[Stats]] = {}
    for stats in per_feature:
        for key, s in stats.items():
            groups.setdefault(key, []).append(s)
    return {key: aggregate(items) for key, items in groups.items()}


def to_json(stats: Mapping[str, Stats]) -> dict[str, dict[str, Any]]:
    """Plain lists/numbers, as ``meta/stats.json`` stores them."""
    return {k: {name: np.asarray(v).tolist() for name, v in s.items()} for k, s in stats.items()}


def from_json(data: Any) -> dict[str, Stats]:
    """Inverse of :func:`to_json`; raises ``ValueError`` on a malformed layout."""
    if not isinstance(data, dict):
        raise ValueError("top level must be an object of features")
    out: dict[str, Stats] = {}
    for key, s in data.items():
        if not isinstance(s, dict):
            raise ValueError(f"stats of '{key}' must be an object")
        out[key] = {name: np.asarray(v) for name, v in s.items()}
    return out


def episode_columns(stats: Mapping[str, Stats]) -> dict[str, Any]:
    """Flatten to ``stats/<feature>/<stat>`` entries, the episodes-parquet columns."""
    return {
        f"stats/{key}/{name}": np.asarray(v).tolist()
        for key, s in stats.items()
        for name, v in s.items()
    }


def from_episode_row(row: Mapping[str, Any]) -> dict[str, Stats]:
    """Inverse of :func:`episode_columns` for one episodes-parquet row."""
    out: dict[str, Stats] = {}
    for col, value in row.items():
        if not col.startswith("stats/") or value is None:
            continue
        key, _, name = col[len("stats/") :].rpartition("/")
        out.setdefault(key, {})[name] = np.asarray(value)
    return out
