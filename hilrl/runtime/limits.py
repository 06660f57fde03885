"""Range tracking for ``hilrl find-limits``: min / max of poses seen while teleoperating.

:class:`RangeTracker` keeps per-dimension bounds of a stream of samples. Angles are
unwrapped as they arrive (each sample is taken as the continuation of the previous one),
so a yaw that wanders across +-pi gives a range like ``[3.0, 3.3]`` instead of the
meaningless ``[-pi, pi]``. :func:`workspace_yaml` and :func:`joint_limits_yaml` turn the
bounds into config text: the end-effector box widened by a margin and rounded outwards
(so the printed box still contains every pose seen), and the joint ranges clipped to the
robot's own limits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import yaml

DECIMALS = 4
"""Printed precision: 0.1 mm or 0.1 mrad."""
MIN_SPAN = 1e-3
"""A printed workspace axis spans at least this much (a box must have high > low)."""


class RangeTracker:
    """Running min / max of named dimensions; ``angular`` ones are unwrapped first."""

    def __init__(self, names: Sequence[str], angular: Sequence[bool] | None = None) -> None:
        if not names:
            raise ValueError("RangeTracker needs at least one dimension name")
        if len(set(names)) != len(names):
            raise ValueError(f"dimension names must be unique, got {tuple(names)}")
        self.names = tuple(names)
        flags = [False] * len(names) if angular is None else list(angular)
        if len(flags) != len(names):
            raise ValueError(f"angular has {len(flags)} flags for {len(names)} names")
        self.angular = np.asarray(flags, dtype=bool)
        n = len(names)
        self.low = np.full(n, np.inf)
        self.high = np.full(n, -np.inf)
        self.count = 0
        self._last_raw = np.zeros(n)
        self._last_unwrapped = np.zeros(n)

    def update(self, values: Sequence[float] | np.ndarray) -> None:
        """Add one sample; non-finite samples are rejected (a bad reading, not a pose)."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (len(self.names),):
            raise ValueError(f"expected {len(self.names)} values {self.names}, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"non-finite sample {v.tolist()} for {self.names}")
        unwrapped = v.copy()
        if self.count and self.angular.any():
            step = _wrap(v - self._last_raw)
            unwrapped[self.angular] = (self._last_unwrapped + step)[self.angular]
        self._last_raw = v
        self._last_unwrapped = unwrapped
        self.low = np.minimum(self.low, unwrapped)
        self.high = np.maximum(self.high, unwrapped)
        self.count += 1

    def bounds(self) -> dict[str, tuple[float, float]]:
        """Name -> (low, high) of everything seen so far."""
        self._require_samples()
        return {n: (float(lo), float(hi)) for n, lo, hi in zip(self.names, self.low, self.high)}

    def _require_samples(self) -> None:
        if self.count == 0:
            raise ValueError("no samples were tracked: nothing to report")


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles mapped into [-pi, pi)."""
    return (a + math.pi) % (2.0 * math.pi) - math.pi


def _round_down(x: float) -> float:
    scale = 10**DECIMALS
    return math.floor(x * scale + 1e-9) / scale


def _round_up(x: float) -> float:
    scale = 10**DECIMALS
    return math.ceil(x * scale - 1e-9) / scale


EE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw")
EE_ANGULAR = (False, False, False, True, True, True)


def ee_tracker() -> RangeTracker:
    """A tracker of the end-effector pose ``(x, y, z, roll, pitch, yaw)``."""
    return RangeTracker(EE_NAMES, EE_ANGULAR)


def workspace_box(tracker: RangeTracker, margin_m: float) -> tuple[list[float], list[float]]:
    """The (low, high) box around the x, y, z seen, widened by ``margin_m``, rounded outwards.

    An axis that barely moved still gets ``MIN_SPAN`` metres, centred on what was seen.
    """
    if margin_m < 0 or not math.isfinite(margin_m):
        raise ValueError(f"margin must be a finite number >= 0, got {margin_m}")
    tracker._require_samples()
    low: list[float] = []
    high: list[float] = []
    for i in range(3):
        lo, hi = float(tracker.low[i]) - margin_m, float(tracker.high[i]) + margin_m
        if hi - lo < MIN_SPAN:
            mid = 0.5 * (lo + hi)
            lo, hi = mid - MIN_SPAN / 2, mid + MIN_SPAN / 2
        low.append(_round_down(lo))
        high.append(_round_up(hi))
    return low, high


def workspace_yaml(tracker: RangeTracker, margin_m: float, header: Sequence[str] = ()) -> str:
    """A config snippet setting ``env.workspace`` to the box seen (plus margin).

    The orientation range goes into comments: no config field bounds the orientation.
    The text loads back with :func:`hilrl.config.loader.load_config` into ``RootConfig``.
    """
    low, high = workspace_box(tracker, margin_m)
    lines = [f"# {h}" for h in header]
    lines.append(f"# end-effector position seen, widened by {margin_m} m on every side.")
    lines.append("# orientation seen (radians, fixed-axis roll/pitch/yaw; not a config field):")
    for i in range(3, 6):
        name = tracker.names[i]
        lines.append(f"#   {name}: [{tracker.low[i]:.4f}, {tracker.high[i]:.4f}]")
    body = {"env": {"workspace": {"low": low, "high": high}}}
    lines.append(yaml.safe_dump(body, sort_keys=False, default_flow_style=None).rstrip())
    return "\n".join(lines) + "\n"


def joint_ranges(
    tracker: RangeTracker,
    margin: float,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
) -> dict[str, tuple[float, float]]:
    """Each joint's (low, high) seen, widened by ``margin``, clipped to the robot's limits."""
    if margin < 0 or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number >= 0, got {margin}")
    tracker._require_samples()
    n = len(tracker.names)
    lo_lim = np.full(n, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)
    hi_lim = np.full(n, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
    if lo_lim.shape != (n,) or hi_lim.shape != (n,):
        raise ValueError(f"joint limits need {n} values each, for {tracker.names}")
    out: dict[str, tuple[float, float]] = {}
    for i, name in enumerate(tracker.names):
        lo = max(float(tracker.low[i]) - margin, float(lo_lim[i]))
        hi = min(float(tracker.high[i]) + margin, float(hi_lim[i]))
        out[name] = (_round_down(lo), _round_up(hi))
    return out


def joint_limits_yaml(
    tracker: RangeTracker,
    margin: float,
    lower: Sequence[float] | np.ndarray | None = None,
    upper: Sequence[float] | np.ndarray | None = None,
    header: Sequence[str] = (),
) -> str:
    """A YAML mapping ``joint_limits: {joint: [low, high]}`` of the ranges seen (+ margin)."""
    ranges = joint_ranges(tracker, margin, lower, upper)
    lines = [f"# {h}" for h in header]
    lines.append(
        f"# joint ranges seen, widened by {margin} (joint units) and clipped to the robot's limits."
    )
    body = {"joint_limits": {name: [lo, hi] for name, (lo, hi) in ranges.items()}}
    lines.append(yaml.safe_dump(body, sort_keys=False, default_flow_style=None).rstrip())
    return "\n".join(lines) + "\n"
