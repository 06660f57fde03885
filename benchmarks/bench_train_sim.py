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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_metrics import analyse  # noqa: E402

from hilrl.runtime.run_dir import RunDir  # noqa: E402


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
