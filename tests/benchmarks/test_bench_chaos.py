"""benchmarks/bench_chaos.py, shortened: real processes, SIGKILLs and a frozen link, ~40 s.

One fault at a time (``--serial``): every transition an actor saw confirmed (flush()
returned True) must be in the learner's final checkpoint exactly once. (Overlapping
faults, the benchmark's default, can kill an actor while the learner is being restored;
see the benchmark's docstring.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_chaos.py"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_chaos_soak_delivers_every_confirmed_transition_exactly_once(tmp_path: Path) -> None:
    args = [
        sys.executable,
        str(BENCH),
        "--minutes",
        "0.6",
        "--serial",
        "--chaos-interval",
        "2",
        "--freeze-min",
        "1.5",
        "--freeze-max",
        "3",
        "--restart-delay-max",
        "1",
        "--checkpoint-s",
        "1",
        "--settle-timeout",
        "30",
        "--workdir",
        str(tmp_path / "run"),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=200, check=False)
    out = proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines, out
    result = json.loads(lines[-1])
    assert proc.returncode == 0, out
    assert result["ok"] is True, out
    assert result["lost"] == 0 and result["duplicated"] == 0 and result["phantom"] == 0, out
    assert result["confirmed"] > 0 and result["in_replay"] >= result["confirmed"], out
    assert result["learner_restarts"] >= 1, out
    assert result["actor_restarts"] >= 1, out
    assert result["link_freezes"] >= 1, out
    assert result["settled"] is True and result["unexpected_exits"] == 0, out
    assert result["learner_peak_rss_mib"] > 0, out
