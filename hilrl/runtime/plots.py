"""PNG plots of a run from its ``metrics/*.jsonl`` files (matplotlib, Agg backend).

Inputs (written by the learner / actors and by ``hilrl eval``)::

    metrics/episodes.jsonl   one object per training episode: env_steps, return,
                             length, success, intervention_rate, actor_id, eval
    metrics/learner.jsonl    one object per log interval: env_steps, updates,
                             updates_per_s, critic_loss, actor_loss, temperature, ...
    metrics/eval.jsonl       one object per evaluation: env_steps, success_rate,
                             success_ci_low / high, mean_return, eval: true

Outputs in ``plots/``: ``success_rate.png``, ``episode_return.png``,
``intervention_rate.png`` (rolling means against env steps, eval points marked) and
``learner.png`` (losses, temperature, update rate). Files may be missing, empty, or end
in a half-written line (a live run); whatever is readable is plotted and a plot with no
data is skipped, never an exception.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hilrl.runtime.evaluate import wilson_interval

METRICS_DIR = "metrics"
PLOTS_DIR = "plots"
EPISODES_FILE = "episodes.jsonl"
LEARNER_FILE = "learner.jsonl"
EVAL_FILE = "eval.jsonl"
LEARNER_PANELS = (
    ("critic_loss", "critic loss", False),
    ("actor_loss", "actor loss", False),
    ("temperature", "temperature (alpha)", True),
    ("updates_per_s", "updates / s", False),
)
"""(metric key, axis label, log scale) of the learner figure's panels."""


MAX_ERRORBARS = 15
"""Beyond this many eval points the confidence intervals are drawn as a band."""


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one per line; unreadable lines and a missing file are skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    out: list[dict[str, Any]] = []
    with open(p, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written, or garbage
            if isinstance(obj, dict):
                out.append(obj)
    return out


def rolling_mean(values: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to ``window`` values (shorter at the start); NaNs ignored."""
    v = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    ok = np.isfinite(v)
    sums = np.concatenate([[0.0], np.cumsum(np.where(ok, v, 0.0))])
    counts = np.concatenate([[0], np.cumsum(ok)])
    idx = np.arange(1, len(v) + 1)
    start = np.maximum(idx - window, 0)
    n = counts[idx] - counts[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[idx] - sums[start]) / np.maximum(n, 1), np.nan)


def auto_window(n: int) -> int:
    """Rolling window for ``n`` points: about a tenth of them, between 1 and 100."""
    return int(min(100, max(1, round(n / 10))))


@dataclass
class Series:
    """Points of one metric against env steps, sorted by env steps."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def series(records: Iterable[dict[str, Any]], key: str, x_key: str = "env_steps") -> Series:
    """``(x, y)`` of the records holding finite numeric ``x_key`` and ``key`` (bools count as 0/1)."""
    xs: list[float] = []
    ys: list[float] = []
    for r in records:
        x, y = _number(r.get(x_key)), _number(r.get(key))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    x_arr = np.asarray(xs, dtype=np.float64)
    order = np.argsort(x_arr, kind="stable")
    return Series(x_arr[order], np.asarray(ys, dtype=np.float64)[order])


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def plot_run(run_dir: str | Path, window: int | None = None) -> list[Path]:
    """Write the run's PNGs into ``<run_dir>/plots``; returns the files written."""
    # start-up: matplotlib (~0.5 s) loads only when plots are drawn; then the file backend
    import matplotlib

    matplotlib.use("Agg", force=True)
    run = Path(run_dir)
    metrics = run / METRICS_DIR
    all_episodes = read_jsonl(metrics / EPISODES_FILE)
    train = [e for e in all_episodes if not e.get("eval", False)]
    evals = read_jsonl(metrics / EVAL_FILE) + _eval_points(
        [e for e in all_episodes if e.get("eval", False)]
    )
    learner = read_jsonl(metrics / LEARNER_FILE)
    out_dir = run / PLOTS_DIR
    written: list[Path] = []
    specs = (
        ("success_rate.png", "success", "success rate", "success_rate", (0.0, 1.0)),
        ("episode_return.png", "return", "episodic return", "mean_return", None),
        ("intervention_rate.png", "intervention_rate", "intervention rate", None, (0.0, 1.0)),
    )
    for name, key, label, eval_key, ylim in specs:
        path = _episode_plot(
            out_dir / name, train, key, label, evals if eval_key else [], eval_key, ylim, window
        )
        if path is not None:
            written.append(path)
    path = _learner_plot(out_dir / "learner.png", learner)
    if path is not None:
        written.append(path)
    return written


def _eval_points(eval_episodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Eval episodes logged in episodes.jsonl, grouped by env_steps into eval points."""
    groups: dict[float, list[dict[str, Any]]] = {}
    for e in eval_episodes:
        x = _number(e.get("env_steps"))
        if x is not None:
            groups.setdefault(x, []).append(e)
    points = []
    for x, eps in sorted(groups.items()):
        succ = [s for s in (_number(e.get("success")) for e in eps) if s is not None]
        rets = [r for r in (_number(e.get("return")) for e in eps) if r is not None]
        point: dict[str, Any] = {"env_steps": x}
        if succ:
            low, high = wilson_interval(int(sum(succ)), len(succ))
            point.update(
                success_rate=float(np.mean(succ)), success_ci_low=low, success_ci_high=high
            )
        if rets:
            point["mean_return"] = float(np.mean(rets))
        points.append(point)
    return points


def _episode_plot(
    path: Path,
    episodes: list[dict[str, Any]],
    key: str,
    label: str,
    evals: list[dict[str, Any]],
    eval_key: str | None,
    ylim: tuple[float, float] | None,
    window: int | None,
) -> Path | None:
    import matplotlib.pyplot as plt  # start-up: as in plot_run, which chose the backend

    data = series(episodes, key)
    ev = series(evals, eval_key) if eval_key else Series(np.empty(0), np.empty(0))
    if not len(data) and not len(ev):
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    try:
        if len(data):
            ax.plot(data.x, data.y, ".", ms=3, alpha=0.25, color="tab:blue", label="episode")
            _rolling_line(ax, data, window, "rolling mean ({w} episodes)", "tab:blue", 2.0)
        if key == "success":
            alone = series(episodes, "autonomous_success")
            if len(alone):
                line = "without intervention, rolling mean ({w})"
                _rolling_line(ax, alone, window, line, "tab:green", 1.5)
        if len(ev):
            _eval_markers(ax, evals, eval_key, ev)
        if ylim is not None:
            pad = 0.03 * (ylim[1] - ylim[0])
            ax.set_ylim(ylim[0] - pad, ylim[1] + pad)
        ax.set_xlabel("environment steps")
        ax.set_ylabel(label)
        ax.set_title(f"{label} against environment steps")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def _rolling_line(
    ax: Any, data: Series, window: int | None, label: str, color: str, lw: float
) -> None:
    """A rolling mean of ``data``; ``{w}`` in ``label`` becomes the window used."""
    w = window or auto_window(len(data))
    ax.plot(data.x, rolling_mean(data.y, w), "-", lw=lw, color=color, label=label.format(w=w))


def _eval_markers(ax: Any, evals: list[dict[str, Any]], eval_key: str | None, ev: Series) -> None:
    """Eval points as red diamonds; success rates get their confidence interval as error bars."""
    if eval_key == "success_rate":
        lo = series(evals, "success_ci_low")
        hi = series(evals, "success_ci_high")
        if len(lo) == len(ev) == len(hi) and np.array_equal(lo.x, ev.x):
            err = np.vstack([np.clip(ev.y - lo.y, 0, None), np.clip(hi.y - ev.y, 0, None)])
            if len(ev) > MAX_ERRORBARS:  # a band stays readable where dozens of bars do not
                ax.plot(ev.x, ev.y, "-D", color="tab:red", ms=3, lw=1.2, label="eval")
                ax.fill_between(
                    ev.x, lo.y, hi.y, color="tab:red", alpha=0.15, label="eval 95% Wilson CI"
                )
                return
            ax.errorbar(
                ev.x,
                ev.y,
                yerr=err,
                fmt="D",
                color="tab:red",
                ms=6,
                capsize=4,
                label="eval (95% Wilson CI)",
            )
            return
    ax.plot(ev.x, ev.y, "D", color="tab:red", ms=6, label="eval")


def _learner_plot(path: Path, records: list[dict[str, Any]]) -> Path | None:
    import matplotlib.pyplot as plt  # start-up: as in plot_run, which chose the backend

    x_key = (
        "env_steps" if any(_number(r.get("env_steps")) is not None for r in records) else "updates"
    )
    panels = [(k, label, log, series(records, k, x_key)) for k, label, log in LEARNER_PANELS]
    panels = [p for p in panels if len(p[3])]
    if not panels:
        return None
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.4 * rows), dpi=110, squeeze=False)
    try:
        for ax in axes.flat[len(panels) :]:
            ax.set_visible(False)
        for ax, (_, label, log, data) in zip(axes.flat, panels):
            ax.plot(data.x, data.y, "-", lw=1, alpha=0.35, color="tab:green", label="logged")
            w = auto_window(len(data))
            ax.plot(
                data.x,
                rolling_mean(data.y, w),
                "-",
                lw=2,
                color="tab:green",
                label=f"rolling mean ({w})",
            )
            if log and np.all(data.y > 0):
                ax.set_yscale("log")
            ax.set_title(label)
            ax.set_xlabel("environment steps" if x_key == "env_steps" else "updates")
            ax.set_ylabel(label)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", fontsize=7)
        fig.suptitle("learner")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path
