"""plot_run and hilrl plot: PNGs from synthetic metrics; missing / partial files tolerated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from hilrl.cli.main import main
from hilrl.runtime.plots import (
    auto_window,
    plot_run,
    read_jsonl,
    rolling_mean,
    series,
)

ALL_PLOTS = ["episode_return.png", "intervention_rate.png", "learner.png", "success_rate.png"]


def _write(path: Path, rows: list[dict[str, Any]], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def synthetic_run(run: Path, episodes: int = 300) -> None:
    """A run whose success rises and interventions fall, as a learning run's should."""
    rng = np.random.default_rng(0)
    rows = []
    steps = 0
    for i in range(episodes):
        p = i / episodes
        length = int(rng.integers(20, 100))
        steps += length
        success = bool(rng.random() < p)
        rows.append(
            {
                "time_s": i * 3.0,
                "env_steps": steps,
                "actor_id": f"actor-{i % 2}",
                "episode_index": i // 2,
                "return": float(success) - 0.01 * length,
                "length": length,
                "success": success,
                "autonomous_success": success and bool(rng.random() < p),
                "intervention_rate": float(max(0.0, 0.8 - p + rng.normal(0, 0.05))),
                "policy_version": i,
                "eval": False,
            }
        )
    for k in range(5):  # eval episodes logged by the runtime itself
        rows.append({"env_steps": steps, "return": 1.0, "success": k < 4, "eval": True})
    _write(run / "metrics" / "episodes.jsonl", rows, tail='{"env_steps": 99, "ret')
    learner = [
        {
            "time_s": 5.0 * j,
            "env_steps": j * steps // 60,
            "updates": 100 * j,
            "updates_per_s": 20.0 + rng.normal(),
            "replay_sizes": {"online": j * 50},
            "policy_version": j,
            "critic_loss": float(np.exp(-j / 20) + 0.05 * rng.random()),
            "actor_loss": float(-j / 10 + rng.normal(0, 0.1)),
            "temperature": float(0.01 * np.exp(-j / 30)),
        }
        for j in range(1, 61)
    ]
    _write(run / "metrics" / "learner.jsonl", learner)
    evals = [
        {
            "env_steps": steps * f,
            "success_rate": f,
            "success_ci_low": max(0.0, f - 0.2),
            "success_ci_high": min(1.0, f + 0.2),
            "mean_return": f,
            "eval": True,
        }
        for f in (0.25, 0.5, 0.75)
    ]
    _write(run / "metrics" / "eval.jsonl", [*evals, {"env_steps": None, "success_rate": 1.0}])


def test_plot_run_writes_readable_pngs(tmp_path: Path) -> None:
    synthetic_run(tmp_path)
    written = plot_run(tmp_path)
    assert sorted(p.name for p in written) == ALL_PLOTS
    for path in written:
        assert path.parent == tmp_path / "plots"
        with Image.open(path) as img:
            assert img.format == "PNG"
            assert img.width >= 600 and img.height >= 350
            pixels = np.asarray(img.convert("RGB"))
        assert pixels.std() > 10  # something is drawn


def test_plot_titles_labels_and_legends_are_filled_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from matplotlib.figure import Figure

    texts: dict[str, list[str]] = {}
    real_savefig = Figure.savefig

    def recording_savefig(fig: Figure, path: Any, *args: Any, **kwargs: Any) -> None:
        ax = fig.axes[0]
        legend = ax.get_legend()
        entries = [t.get_text() for t in legend.get_texts()] if legend else []
        texts[Path(path).name] = [ax.get_title(), ax.get_ylabel(), *entries]
        real_savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    synthetic_run(tmp_path)
    plot_run(tmp_path, window=25)
    success = texts["success_rate.png"]
    assert success[:2] == ["success rate against environment steps", "success rate"]
    assert "rolling mean (25 episodes)" in success
    assert "without intervention, rolling mean (25)" in success
    assert texts["intervention_rate.png"][1] == "intervention rate"
    assert not any("{" in t for names in texts.values() for t in names)


def test_plot_run_tolerates_missing_and_empty_files(tmp_path: Path) -> None:
    assert plot_run(tmp_path) == []
    assert not (tmp_path / "plots").exists()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "episodes.jsonl").write_text("")
    (metrics / "learner.jsonl").write_text('{"env_steps": 1, "critic_lo')  # cut mid-line
    assert plot_run(tmp_path) == []
    _write(metrics / "learner.jsonl", [{"updates": 5, "critic_loss": 1.0}])  # no env_steps yet
    assert [p.name for p in plot_run(tmp_path)] == ["learner.png"]


def test_eval_points_alone_make_a_plot(tmp_path: Path) -> None:
    _write(
        tmp_path / "metrics" / "eval.jsonl",
        [{"env_steps": 100, "success_rate": 0.5, "success_ci_low": 0.2, "success_ci_high": 0.8}],
    )
    assert [p.name for p in plot_run(tmp_path)] == ["success_rate.png"]


def test_read_jsonl_skips_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"a": 1}\n\nnot json\n[1, 2]\n{"a": 2}\n{"a": ')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_series_sorts_and_filters() -> None:
    rows: list[dict[str, Any]] = [
        {"env_steps": 30, "success": True},
        {"env_steps": 10, "success": False},
        {"env_steps": 20},
        {"env_steps": None, "success": True},
        {"env_steps": 40, "success": "yes"},
        {"env_steps": 50, "success": float("nan")},
    ]
    s = series(rows, "success")
    assert s.x.tolist() == [10.0, 30.0]
    assert s.y.tolist() == [0.0, 1.0]


def test_rolling_mean_against_a_loop() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=57)
    values[[3, 20]] = np.nan
    for window in (1, 4, 10, 100):
        got = rolling_mean(values, window)
        for i in range(len(values)):
            chunk = values[max(0, i - window + 1) : i + 1]
            chunk = chunk[np.isfinite(chunk)]
            want = chunk.mean() if len(chunk) else np.nan
            np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-12)
    assert np.isnan(rolling_mean([np.nan, 1.0], 1)[0])
    with pytest.raises(ValueError):
        rolling_mean([1.0], 0)


def test_auto_window() -> None:
    assert [auto_window(n) for n in (0, 1, 9, 50, 500, 10_000)] == [1, 1, 1, 5, 50, 100]


def test_plot_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_run(tmp_path, episodes=40)
    assert main(["plot", str(tmp_path), "--window", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("wrote ") == 4
    assert main(["plot", str(tmp_path / "missing")]) == 1
    assert "not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["plot", str(empty)]) == 0
    assert "nothing to plot" in capsys.readouterr().out
