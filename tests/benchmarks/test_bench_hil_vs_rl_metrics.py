"""The learning benchmarks' definitions: crossings, eval curves, the hil / rl comparison."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


metrics = _load("_train_metrics")
bench = _load("bench_hil_vs_rl")


def _evals(outcomes: list[list[bool]], step: int = 1000) -> list[dict[str, Any]]:
    """Eval episodes of rounds at env steps step, 2*step, ...; one list of outcomes per round."""
    rows = []
    for k, round_ in enumerate(outcomes, start=1):
        for ok in round_:
            rows.append({"env_steps": k * step, "time_s": float(k), "success": ok, "eval": True})
    return rows


def test_first_crossing_needs_a_full_window() -> None:
    rows = _evals([[True] * 5, [True] * 5, [True] * 5, [True] * 5])
    assert metrics.first_crossing(rows[:19], "success", 0.9, window=20) is None
    hit = metrics.first_crossing(rows, "success", 0.9, window=20)
    assert hit is rows[19] and hit["env_steps"] == 4000


def test_first_crossing_is_the_first_window_at_the_threshold() -> None:
    # 3 failures open the first round: the first full window (rows 0-19) holds 17/20, the
    # next (rows 1-20) 18/20 = 90%.
    rows = _evals([[False, False, False, True, True]] + [[True] * 5] * 4)
    hit = metrics.first_crossing(rows, "success", 0.9, window=20)
    assert hit is not None and rows.index(hit) == 20 and hit["env_steps"] == 5000
    assert metrics.first_crossing(rows, "success", 0.85, window=20) is rows[19]
    assert metrics.first_crossing(rows, "success", 0.96, window=20) is rows[22]


def test_eval_rounds_and_rolling_curve() -> None:
    rows = _evals([[True, False], [True, True], [False, False]])
    rounds = metrics.eval_rounds(rows)
    assert [(r["env_steps"], r["n"], r["success_rate"]) for r in rounds] == [
        (1000, 2, 0.5),
        (2000, 2, 1.0),
        (3000, 2, 0.0),
    ]
    curve = metrics.rolling_eval_curve(rows, window=4)
    assert curve == [(1000, 0.5), (2000, 0.75), (3000, 0.5)]


def test_process_tree_cpu_counts_this_process() -> None:
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc")
    sum(i * i for i in range(300_000))  # burn a little CPU
    assert metrics.process_tree_cpu_s(os.getpid()) > 0.0
    assert metrics.process_tree_cpu_s(2**22 + 12345) == 0.0  # no such process


def _run(arm: str, seed: int, steps: int | None, end: int, final: float) -> Any:
    r = bench.RunResult(seed=seed, arm=arm, run_dir="x", end_env_steps=end)
    if steps is not None:
        r.crossing = bench.Crossing(steps, 1.0, 1.0, 1.0, 20)
    r.final_eval = {"success_rate": final}
    r.curve = [(end // 2, 0.5), (end, 1.0)]
    return r


def _args() -> argparse.Namespace:
    return argparse.Namespace(threshold=0.9, window=20)


def test_summary_ratio_and_reduction() -> None:
    runs = [
        _run("hil", 0, 4000, 6000, 1.0),
        _run("rl", 0, 10000, 12000, 0.96),
        _run("hil", 1, 6000, 8000, 0.98),
        _run("rl", 1, 10000, 12000, 0.9),
    ]
    out = bench.summarise(runs, _args())
    assert out["hil_mean_steps_to_90"] == 5000 and out["rl_mean_steps_to_90"] == 10000
    assert out["ratio_hil_over_rl"] == 0.5 and out["reduction_pct"] == 50.0
    assert out["reduction_bound"] == "exact" and out["target_reduction_25pct_met"]
    assert out["rl_min_final_success_50"] == 0.9


def test_rl_not_reached_counts_at_its_end_as_a_lower_bound() -> None:
    runs = [_run("hil", 0, 5000, 7000, 1.0), _run("rl", 0, None, 20000, 0.2)]
    out = bench.summarise(runs, _args())
    assert out["rl_reached_90"] == 0 and out["rl_steps_to_90_lower_bound"]
    assert out["rl_mean_steps_to_90"] == 20000
    assert out["reduction_pct"] == 75.0 and out["reduction_bound"] == "lower bound"


def test_hil_slower_is_reported_as_such() -> None:
    runs = [_run("hil", 0, 12000, 14000, 1.0), _run("rl", 0, 8000, 10000, 1.0)]
    out = bench.summarise(runs, _args())
    assert out["reduction_pct"] == -50.0 and not out["target_reduction_25pct_met"]


def test_results_round_trip_through_json(tmp_path: Path) -> None:
    from dataclasses import asdict

    runs = [_run("hil", 0, 5000, 7000, 1.0), _run("rl", 0, None, 20000, 0.2)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps([asdict(r) for r in runs]))
    back = bench.load_results(path)
    assert [asdict(r) for r in back] == [asdict(r) for r in runs]
    png = tmp_path / "curves.png"
    bench.plot(back, png, _args())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
