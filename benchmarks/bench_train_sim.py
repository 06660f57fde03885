"""A real learning run of the main job: ``hilrl train`` on sim pick-cube, state observations.

Runs ``hilrl train --config configs/sim_pick_cube.yaml`` (learner + actor processes, the
simulated operator intervening, demonstrations recorded first) for a wall-clock budget,
then reads the run's metrics and reports how many env steps (and seconds) it took to
reach 80% and 90% success:

* ``train``: rolling success over the last 20 training episodes (the operator helps:
  this one is high early, it measures the human-in-the-loop system, not the policy);
* ``autonomous``: rolling share of the last 20 training episodes that succeeded without
  a single intervention step;
* ``eval``: deterministic episodes without operator that actor 0 runs every
  ``train.eval_every_episodes`` training episodes (success of each evaluation round of
  ``train.eval_episodes`` episodes, and over the last 20 evaluation episodes).

    .venv/bin/python benchmarks/bench_train_sim.py --minutes 15
    .venv/bin/python benchmarks/bench_train_sim.py --minutes 5 --train.num_actors=2

Extra ``--section.field=value`` arguments go to ``hilrl train``. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hilrl.runtime.run_dir import RunDir, read_jsonl  # noqa: E402

WINDOW = 20
THRESHOLDS = (0.8, 0.9)


def first_crossing(
    rows: list[dict[str, Any]], key: str, threshold: float, window: int = WINDOW
) -> dict[str, Any] | None:
    """The row at which the rolling mean of ``key`` over ``window`` rows first reaches ``threshold``."""
    values: list[float] = []
    for row in rows:
        values.append(float(bool(row.get(key))))
        recent = values[-window:]
        if len(recent) == window and sum(recent) / window >= threshold:
            return row
    return None


def eval_rounds(evals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evaluation episodes grouped into rounds (same actor, consecutive, same env_steps)."""
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


def analyse(run: RunDir) -> dict[str, Any]:
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


def progress_line(run: RunDir, started: float) -> str:
    stats = analyse(run)
    return (
        f"[{time.monotonic() - started:6.0f} s] env steps {stats['env_steps']:,}, updates "
        f"{stats['updates']:,} ({stats['updates_per_s']}/s), train success "
        f"{stats['final_train_success']}, autonomous {stats['final_autonomous_success']}, "
        f"eval {stats['final_eval_success']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget")
    parser.add_argument("--config", default=str(ROOT / "configs" / "sim_pick_cube.yaml"))
    parser.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between progress lines")
    args, overrides = parser.parse_known_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_train_")) / "run"
    run = RunDir.of(out)
    cmd = [
        sys.executable,
        "-m",
        "hilrl.cli.main",
        "train",
        "--config",
        args.config,
        f"--run.output_dir={out}",
        f"--train.max_runtime_s={args.minutes * 60:g}",
        "--run.total_env_steps=10000000",
        "--transport.port=0",  # a free port: runs side by side do not collide
        "--no-status",
        *overrides,
    ]
    print("running:", " ".join(cmd), flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    try:
        while proc.poll() is None:
            time.sleep(min(args.every, 5.0))
            if int(time.monotonic() - started) % int(max(args.every, 5)) < 5:
                print(progress_line(run, started), flush=True)
    except KeyboardInterrupt:
        proc.send_signal(2)
        proc.wait()
    wall = time.monotonic() - started
    stats = analyse(run)
    stats = {
        "name": "train_sim_pick_cube",
        "minutes_budget": args.minutes,
        "wall_s": round(wall, 1),
        "exit_code": proc.returncode,
        "run_dir": str(out),
        **stats,
    }
    for key, value in stats.items():
        print(f"{key:>32}: {value}")
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
