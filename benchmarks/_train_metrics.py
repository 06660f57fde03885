"""Shared by the training benchmarks: success figures from a run folder's metrics, CPU time.

``bench_train_sim.py`` and ``bench_hil_vs_rl.py`` read the same ``metrics/episodes.jsonl``
(one line per finished episode, ``"eval": true`` for actor 0's deterministic evaluation
episodes) and ``metrics/learner.jsonl``; the definitions of "first reached X% success"
live here once so that both report the same thing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hilrl.runtime.run_dir import RunDir, read_jsonl  # noqa: E402

WINDOW = 20
"""Episodes in a rolling success window (training and evaluation alike)."""
THRESHOLDS = (0.8, 0.9)


def first_crossing(
    rows: list[dict[str, Any]], key: str, threshold: float, window: int = WINDOW
) -> dict[str, Any] | None:
    """The row at which the mean of ``key`` over the last ``window`` rows first reaches ``threshold``.

    Only full windows count: fewer than ``window`` rows never cross (a lucky first round
    of 5 evaluation episodes must not count as "90% reached").
    """
    values: list[float] = []
    for row in rows:
        values.append(float(bool(row.get(key))))
        recent = values[-window:]
        if len(recent) == window and sum(recent) / window >= threshold:
            return row
    return None


def eval_rounds(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation episodes grouped into rounds (consecutive, same env_steps).

    No training step happens during a round, so its episodes share the learner's
    ``env_steps`` count; each round gets ``env_steps``, ``time_s``, ``n``, ``successes``
    and ``success_rate``.
    """
    rounds: list[dict[str, Any]] = []
    for e in evals:
        if rounds and rounds[-1]["env_steps"] == e["env_steps"]:
            rounds[-1]["n"] += 1
            rounds[-1]["successes"] += int(bool(e.get("success")))
        else:
            rounds.append(
                {
                    "env_steps": e["env_steps"],
                    "time_s": e["time_s"],
                    "n": 1,
                    "successes": int(bool(e.get("success"))),
                }
            )
    for r in rounds:
        r["success_rate"] = r["successes"] / r["n"]
    return rounds


def rolling_eval_curve(
    evals: list[dict[str, Any]], window: int = WINDOW
) -> list[tuple[int, float]]:
    """``(env_steps, success over the last <= window eval episodes)`` after each eval round.

    The point of a round is the rolling success as of its last episode; the first points
    average fewer than ``window`` episodes (everything seen so far).
    """
    points: list[tuple[int, float]] = []
    seen: list[float] = []
    for i, e in enumerate(evals):
        seen.append(float(bool(e.get("success"))))
        last_of_round = i + 1 == len(evals) or evals[i + 1]["env_steps"] != e["env_steps"]
        if last_of_round:
            recent = seen[-window:]
            points.append((int(e["env_steps"]), sum(recent) / len(recent)))
    return points


def split_episodes(run: RunDir) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(training episodes, evaluation episodes) of a run, in logging order."""
    episodes, _ = read_jsonl(run.episodes_jsonl)
    return [e for e in episodes if not e.get("eval")], [e for e in episodes if e.get("eval")]


def analyse(run: RunDir) -> dict[str, Any]:
    """Counts, rates, and env steps / seconds to 80% and 90% success of a run folder."""
    episodes, _ = read_jsonl(run.episodes_jsonl)
    learner, _ = read_jsonl(run.learner_jsonl)
    train = [e for e in episodes if not e.get("eval")]
    evals = [e for e in episodes if e.get("eval")]
    out: dict[str, Any] = {
        "episodes": len(train),
        "eval_episodes": len(evals),
        "env_steps": max([int(r.get("env_steps", 0)) for r in episodes + learner] or [0]),
        "updates": int(learner[-1]["updates"]) if learner else 0,
        "train_time_s": float(learner[-1]["time_s"]) if learner else 0.0,
    }
    out["updates_per_s"] = round(out["updates"] / max(out["train_time_s"], 1e-9), 2)
    out["env_steps_per_s"] = round(out["env_steps"] / max(out["train_time_s"], 1e-9), 2)
    for name, key in (("train", "success"), ("autonomous", "autonomous_success")):
        for th in THRESHOLDS:
            row = first_crossing(train, key, th)
            tag = f"{name}_{int(th * 100)}"
            out[f"steps_to_{tag}"] = row["env_steps"] if row else None
            out[f"time_to_{tag}_s"] = row["time_s"] if row else None
        last = train[-WINDOW:]
        out[f"final_{name}_success"] = (
            round(sum(bool(e.get(key)) for e in last) / len(last), 3) if last else None
        )
    rounds = eval_rounds(evals)
    for th in THRESHOLDS:
        hit = next((r for r in rounds if r["success_rate"] >= th), None)
        rolling = first_crossing(evals, "success", th)
        tag = f"eval_{int(th * 100)}"
        out[f"steps_to_{tag}_round"] = hit["env_steps"] if hit else None
        out[f"time_to_{tag}_round_s"] = hit["time_s"] if hit else None
        out[f"steps_to_{tag}_rolling20"] = rolling["env_steps"] if rolling else None
    last_evals = evals[-WINDOW:]
    out["final_eval_success"] = (
        round(sum(bool(e.get("success")) for e in last_evals) / len(last_evals), 3)
        if last_evals
        else None
    )
    if train:
        last = train[-WINDOW:]
        out["final_intervention_rate"] = round(
            sum(float(e.get("intervention_rate", 0.0)) for e in last) / len(last), 3
        )
    return out


def process_tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants (Linux /proc).

    Children that already exited are not counted (their time reaches us only once they
    are reaped); 0.0 where /proc is unavailable.
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces: the fields after it follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) < 13:
            continue
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = (int(fields[11]) + int(fields[12])) / tick
    total = 0.0
    for p in cpu:
        node = p
        for _ in range(64):  # walk up to the root; the depth is tiny in practice
            if node == pid:
                total += cpu[p]
                break
            parent = parents.get(node)
            if parent is None or parent <= 1:
                break
            node = parent
    return total
