"""Learning benchmark: does the simulated operator's intervening cut the env steps to 90% success?

Sim pick-cube with randomised cube positions and state observations
(``configs/sim_pick_cube.yaml``), two arms run with the same seeds:

* ``hil``: ``teleop.device=sim``: the simulated operator takes over when the policy
  stalls, strays or runs out of time (HIL-SERL);
* ``rl``: ``teleop.device=none``: nobody intervenes (RLPD-style SAC from demos).

Both arms load the SAME demonstrations: for each seed, ``--demos`` episodes are recorded
once with the simulated operator (``run.seed`` = that seed) into ``<out>/seed_<S>/demos``
and both arms' ``train.demo_dataset`` point at it; everything else (config, seed, the
operator's noise seed, the evaluation schedule, the budgets) is identical, so only the
interventions differ. Runs are sequential (seed by seed: hil, then rl).

Definitions (what the table reports):

* evaluation: actor 0's deterministic episodes without operator, ``--eval-episodes``
  episodes after every ``--eval-every`` training episodes (``train.eval_episodes`` /
  ``train.eval_every_episodes``); round k uses the same cube layouts in both arms;
* **steps to 90%**: the learner's env-step count (training steps only, all actors; eval
  steps excluded) logged with the first evaluation episode at which the success rate
  over the last ``--window`` (20) evaluation episodes, a full window, is >= 90%.
  ``train_s`` is the learner's training seconds at that episode; ``wall_s`` and
  ``cpu_s`` are the benchmark's wall-clock and the user+system CPU seconds of the
  ``hilrl train`` process tree (launcher, learner, actor) since it was started, sampled
  when the crossing was seen (within ``--poll`` s). Demo recording is counted separately
  (``demo_cpu_s``, once per seed, shared by both arms);
* a run trains on for ``--train-on-steps`` env steps after its crossing, and at least
  ``--confirm`` more evaluation episodes, before it stops (the same for both arms: the
  final figures describe a policy past its crossing, not the lucky crossing window), or
  it stops at its budget: ``--max-env-steps`` env steps or
  ``--max-minutes`` of training, whichever comes first. A run that never crosses is
  "not reached": for the ratio it is counted at the env steps it had at its end, which
  makes the reported reduction a LOWER bound (flagged ``*_lower_bound``);
* **final success**: ``hilrl eval`` of the run's last checkpoint (written when it
  stops), ``--final-episodes`` (50) deterministic episodes on held-out layouts (eval
  seed 100000), and the rolling evaluation success over the run's last 20 eval episodes;
* ``cpu_min``: CPU minutes of the whole run (demo recording + the ``hilrl train``
  process tree until it exited), the figure for "95% within 30 CPU-minutes";
* **reduction**: ``1 - mean_hil / mean_rl`` of steps to 90% over seeds.

The eval-success curves (rolling over the last ``--window`` eval episodes, against env
steps; per-seed thin lines, mean over seeds thick, dashed where some seeds have stopped
and hold their last value) go to ``--png``.

    .venv/bin/python benchmarks/bench_hil_vs_rl.py
    .venv/bin/python benchmarks/bench_hil_vs_rl.py --seeds 0 1 2 3 4 --max-env-steps 60000 \\
        --png docs/img/hil_vs_rl_eval_success.png

Extra ``--section.field=value`` arguments go to ``hilrl train`` in both arms (and to
the demo recording). Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_metrics import (  # noqa: E402
    analyse,
    first_crossing,
    process_tree_cpu_s,
    rolling_eval_curve,
)

from hilrl.runtime.run_dir import RunDir, read_jsonl  # noqa: E402

ARMS = {"hil": "sim", "rl": "none"}
"""Arm name -> teleop.device."""


@dataclass
class Crossing:
    """Where a run first reached the threshold (see the module docstring)."""

    env_steps: int
    train_s: float
    wall_s: float
    cpu_s: float
    eval_episode: int


@dataclass
class RunResult:
    """One (seed, arm) run: its crossing, its end, and its final evaluation."""

    seed: int
    arm: str
    run_dir: str
    crossing: Crossing | None = None
    end_env_steps: int = 0
    end_reason: str = ""
    wall_s: float = 0.0
    train_cpu_s: float = 0.0
    demo_cpu_s: float = 0.0
    exit_code: int | None = None
    final_rolling_success: float | None = None
    final_eval: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.crossing is not None

    @property
    def steps_for_ratio(self) -> int:
        """Steps to the threshold, or the run's end when it never got there (a lower bound)."""
        return self.crossing.env_steps if self.crossing else self.end_env_steps

    @property
    def cpu_min(self) -> float:
        return (self.demo_cpu_s + self.train_cpu_s) / 60.0


def load_results(path: Path) -> list[RunResult]:
    """The runs of an earlier benchmark's ``results.json`` (for ``--replot``)."""
    out = []
    for raw in json.loads(path.read_text(encoding="utf-8")):
        crossing = raw.pop("crossing", None)
        curve = [(int(x), float(y)) for x, y in raw.pop("curve", [])]
        run = RunResult(**raw, curve=curve)
        run.crossing = Crossing(**crossing) if crossing else None
        out.append(run)
    return out


def children_cpu_s() -> float:
    """CPU seconds of this process's reaped children (and theirs, once reaped)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def record_demos(config: str, seed: int, path: Path, count: int, overrides: list[str]) -> float:
    """Record the seed's demonstrations in this process; returns the CPU seconds it took."""
    from hilrl.config.loader import load_config
    from hilrl.config.root import RootConfig
    from hilrl.runtime.demos import ensure_demos

    cpu0 = time.process_time()
    cfg = load_config(
        RootConfig,
        config,
        [
            *overrides,
            f"--run.seed={seed}",
            f"--teleop.sim.seed={seed}",
            f"--train.demo_dataset={path}",
            f"--train.num_demo_episodes={count}",
            f"--run.output_dir={path.parent}",
        ],
    )
    ensure_demos(cfg, progress=False, out=sys.stdout)
    return time.process_time() - cpu0


def train_run(
    args: argparse.Namespace,
    seed: int,
    arm: str,
    demos: Path,
    run_dir: Path,
    overrides: list[str],
) -> RunResult:
    """One ``hilrl train`` run, stopped by SIGINT once the crossing is confirmed."""
    run = RunDir.of(run_dir)
    result = RunResult(seed=seed, arm=arm, run_dir=str(run_dir))
    cmd = [
        sys.executable,
        "-m",
        "hilrl.cli.main",
        "train",
        "--config",
        args.config,
        *overrides,
        f"--run.output_dir={run_dir}",
        f"--run.seed={seed}",
        f"--teleop.device={ARMS[arm]}",
        f"--teleop.sim.seed={seed}",
        f"--train.demo_dataset={demos}",
        f"--train.eval_every_episodes={args.eval_every}",
        f"--train.eval_episodes={args.eval_episodes}",
        f"--run.total_env_steps={args.max_env_steps}",
        f"--train.max_runtime_s={args.max_minutes * 60:g}",
        "--train.final_eval_episodes=0",  # the benchmark runs its own (--final-episodes)
        "--transport.port=0",
        "--no-status",
    ]
    log_path = run_dir.with_suffix(".log")
    print(f"\n== seed {seed}, arm {arm}: {' '.join(cmd[3:])}", flush=True)
    print(f"   log: {log_path}", flush=True)
    cpu_before = children_cpu_s()
    started = time.monotonic()
    evals: list[dict[str, Any]] = []
    offset = 0
    latest_steps = 0
    stop_sent = False
    last_print = started
    # A hard wall limit on top of train.max_runtime_s (which counts training time only).
    hard_limit = args.max_minutes * 60 + 180
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                time.sleep(args.poll)
                rows, offset = read_jsonl(run.episodes_jsonl, offset)
                evals.extend(r for r in rows if r.get("eval"))
                latest_steps = max([latest_steps] + [int(r["env_steps"]) for r in rows])
                now = time.monotonic()
                if result.crossing is None:
                    row = first_crossing(evals, "success", args.threshold, args.window)
                    if row is not None:
                        result.crossing = Crossing(
                            env_steps=int(row["env_steps"]),
                            train_s=float(row["time_s"]),
                            wall_s=round(now - started, 1),
                            cpu_s=round(process_tree_cpu_s(proc.pid), 1),
                            eval_episode=evals.index(row) + 1,
                        )
                        print(
                            f"   reached {args.threshold:.0%} (last {args.window} evals) at "
                            f"{row['env_steps']:,} env steps, {row['time_s']:.0f} s of "
                            f"training, {result.crossing.cpu_s:.0f} CPU s",
                            flush=True,
                        )
                confirmed = (
                    result.crossing is not None
                    and len(evals) >= result.crossing.eval_episode + args.confirm
                    and latest_steps >= result.crossing.env_steps + args.train_on_steps
                )
                if not stop_sent and (confirmed or now - started > hard_limit):
                    result.end_reason = "confirmed" if confirmed else "wall limit"
                    proc.send_signal(signal.SIGINT)
                    stop_sent = True
                if now - last_print >= args.every:
                    last_print = now
                    print("   " + progress_line(run, evals, args.window, now - started), flush=True)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
        result.exit_code = proc.wait()
    result.wall_s = round(time.monotonic() - started, 1)
    result.train_cpu_s = round(children_cpu_s() - cpu_before, 1)
    rows, offset = read_jsonl(run.episodes_jsonl, offset)
    evals.extend(r for r in rows if r.get("eval"))
    if not result.end_reason:
        result.end_reason = "budget"
    result.stats = analyse(run)
    result.end_env_steps = int(result.stats["env_steps"])
    result.curve = rolling_eval_curve(evals, args.window)
    last = evals[-args.window :]
    if last:
        result.final_rolling_success = round(sum(bool(e["success"]) for e in last) / len(last), 3)
    if args.final_episodes > 0:
        result.final_eval = final_eval(run_dir, args.final_episodes)
    print(
        f"   done ({result.end_reason}, exit {result.exit_code}): {result.end_env_steps:,} env "
        f"steps, {result.wall_s:.0f} s wall, {result.train_cpu_s:.0f} CPU s; final eval "
        f"{result.final_eval.get('success_rate')}",
        flush=True,
    )
    return result


def progress_line(run: RunDir, evals: list[dict[str, Any]], window: int, elapsed: float) -> str:
    stats = analyse(run)
    last = evals[-window:]
    rolling = f"{sum(bool(e['success']) for e in last) / len(last):.2f}" if last else "-"
    return (
        f"[{elapsed:5.0f} s] env steps {stats['env_steps']:,}, updates {stats['updates']:,} "
        f"({stats['updates_per_s']}/s), train success {stats['final_train_success']}, "
        f"eval (last {len(last)}) {rolling}"
    )


def final_eval(run_dir: Path, episodes: int) -> dict[str, Any]:
    """``hilrl eval`` of the run's last checkpoint; its JSON summary (or an error)."""
    cmd = [
        sys.executable,
        "-m",
        "hilrl.cli.main",
        "eval",
        "--checkpoint",
        str(run_dir),
        "--episodes",
        str(episodes),
        "--no-video",
        "--no-progress",
        "--json",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            data["wall_s"] = round(time.monotonic() - started, 1)
            return dict(data)
    return {"error": (proc.stderr or proc.stdout)[-500:], "exit_code": proc.returncode}


def mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def summarise(results: list[RunResult], args: argparse.Namespace) -> dict[str, Any]:
    """Flat figures: per run, per arm (means over seeds), and the hil / rl comparison."""
    out: dict[str, Any] = {}
    for r in results:
        tag = f"{r.arm}_seed{r.seed}"
        c = r.crossing
        out[f"{tag}_steps_to_90"] = c.env_steps if c else None
        out[f"{tag}_train_s_to_90"] = c.train_s if c else None
        out[f"{tag}_cpu_s_to_90"] = c.cpu_s if c else None
        out[f"{tag}_end_env_steps"] = r.end_env_steps
        out[f"{tag}_final_success_50"] = r.final_eval.get("success_rate")
        out[f"{tag}_final_rolling_success"] = r.final_rolling_success
        out[f"{tag}_cpu_min"] = round(r.cpu_min, 2)
    for arm in ARMS:
        runs = [r for r in results if r.arm == arm]
        if not runs:
            continue
        reached = [r for r in runs if r.reached]
        out[f"{arm}_runs"] = len(runs)
        out[f"{arm}_reached_90"] = len(reached)
        out[f"{arm}_mean_steps_to_90"] = mean([float(r.steps_for_ratio) for r in runs])
        out[f"{arm}_steps_to_90_lower_bound"] = len(reached) < len(runs)
        out[f"{arm}_mean_train_s_to_90"] = (
            mean([r.crossing.train_s for r in reached if r.crossing]) if reached else None
        )
        out[f"{arm}_mean_cpu_s_to_90"] = (
            mean([r.crossing.cpu_s for r in reached if r.crossing]) if reached else None
        )
        finals = [r.final_eval["success_rate"] for r in runs if "success_rate" in r.final_eval]
        out[f"{arm}_mean_final_success_50"] = mean(finals)
        out[f"{arm}_min_final_success_50"] = min(finals) if finals else None
        rolling = [r.final_rolling_success for r in runs if r.final_rolling_success is not None]
        out[f"{arm}_mean_final_rolling_success"] = mean(rolling)
        out[f"{arm}_mean_cpu_min"] = mean([r.cpu_min for r in runs])
        out[f"{arm}_max_cpu_min"] = round(max(r.cpu_min for r in runs), 2)
        ups = [float(r.stats.get("updates_per_s", 0.0)) for r in runs]
        out[f"{arm}_mean_updates_per_s"] = mean(ups)
        out[f"{arm}_mean_intervention_rate_last20"] = mean(
            [float(r.stats.get("final_intervention_rate", 0.0)) for r in runs]
        )
    hil, rl = out.get("hil_mean_steps_to_90"), out.get("rl_mean_steps_to_90")
    if hil and rl:
        ratio = hil / rl
        out["ratio_hil_over_rl"] = round(ratio, 3)
        out["reduction_pct"] = round(100.0 * (1.0 - ratio), 1)
        # Only the rl arm's "not reached" runs make the reduction a lower bound; the hil
        # arm's would make it an upper bound: say which, never hide it.
        rl_lb, hil_lb = out["rl_steps_to_90_lower_bound"], out["hil_steps_to_90_lower_bound"]
        out["reduction_bound"] = (
            "exact"
            if not (rl_lb or hil_lb)
            else "lower bound"
            if rl_lb and not hil_lb
            else "upper bound"
            if hil_lb and not rl_lb
            else "undetermined"
        )
        out["target_reduction_25pct_met"] = out["reduction_pct"] >= 25.0 and out[
            "reduction_bound"
        ] in ("exact", "lower bound")
    hil_runs = [r for r in results if r.arm == "hil"]
    if hil_runs and all("success_rate" in r.final_eval for r in hil_runs):
        out["target_hil_95pct_within_30_cpu_min_met"] = all(
            r.final_eval["success_rate"] >= 0.95 and r.cpu_min <= 30.0 for r in hil_runs
        )
    return out


def plot(results: list[RunResult], path: Path, args: argparse.Namespace) -> None:
    """Eval-success curves of both arms against env steps (per seed thin, mean thick)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    colors = {"hil": "tab:blue", "rl": "tab:orange"}
    labels = {"hil": "HIL (simulated operator)", "rl": "RL only (no interventions)"}
    top = max([r.end_env_steps for r in results] + [1])
    grid = np.linspace(0, top, 300)
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
    try:
        for arm, color in colors.items():
            runs = [r for r in results if r.arm == arm and r.curve]
            if not runs:
                continue
            held = []
            for r in runs:
                xs = np.array([p[0] for p in r.curve], dtype=np.float64)
                ys = np.array([p[1] for p in r.curve], dtype=np.float64)
                ax.step(xs, ys, where="post", color=color, lw=0.8, alpha=0.35)
                idx = np.searchsorted(xs, grid, side="right") - 1
                held.append(np.where(idx >= 0, ys[np.clip(idx, 0, None)], np.nan))
                if r.crossing is not None:
                    ax.plot(r.crossing.env_steps, args.threshold, "o", color=color, ms=5)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no data yet
                avg = np.nanmean(np.vstack(held), axis=0)
            steps = [r.steps_for_ratio for r in runs]
            note = "" if all(r.reached for r in runs) else " (not all reached: lower bound)"
            # Solid while every seed still runs; dashed where stopped seeds hold their last value.
            all_live = grid <= min(r.curve[-1][0] for r in runs)
            ax.plot(
                grid[all_live],
                avg[all_live],
                color=color,
                lw=2.2,
                label=f"{labels[arm]}: mean steps to {args.threshold:.0%} "
                f"{statistics.fmean(steps):,.0f}{note}",
            )
            ax.plot(grid[~all_live], avg[~all_live], color=color, lw=1.6, ls="--")
        ax.axhline(args.threshold, color="gray", ls="--", lw=1)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(0, top)
        ax.set_xlabel("environment steps (training, all actors)")
        ax.set_ylabel(f"eval success (last {args.window} episodes)")
        seeds = sorted({r.seed for r in results})
        ax.set_title(
            f"sim pick-cube, state obs, same demos per seed; seeds {seeds}\n"
            f"thin: per seed; dot: first >= {args.threshold:.0%}; "
            "dashed: mean after some seeds stopped (their last value held)",
            fontsize=9,
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)


def print_table(results: list[RunResult], out: IO[str]) -> None:
    head = (
        f"{'seed':>4} {'arm':>4} {'steps->90%':>11} {'train s':>8} {'CPU s':>7} "
        f"{'end steps':>10} {'end':>10} {'final 50':>9} {'last 20':>8} {'CPU min':>8}"
    )
    out.write(head + "\n" + "-" * len(head) + "\n")
    for r in results:
        c = r.crossing
        steps = f"{c.env_steps:,}" if c else f">{r.end_env_steps:,}"
        final = r.final_eval.get("success_rate")
        out.write(
            f"{r.seed:>4} {r.arm:>4} {steps:>11} {(f'{c.train_s:.0f}' if c else '-'):>8} "
            f"{(f'{c.cpu_s:.0f}' if c else '-'):>7} {r.end_env_steps:>10,} {r.end_reason:>10} "
            f"{(f'{final:.2f}' if final is not None else '-'):>9} "
            f"{(f'{r.final_rolling_success:.2f}' if r.final_rolling_success is not None else '-'):>8} "
            f"{r.cpu_min:>8.2f}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--config", default=str(ROOT / "configs" / "sim_pick_cube.yaml"))
    parser.add_argument("--out", default=None, help="benchmark folder (default: a temporary one)")
    parser.add_argument("--png", default=None, help="curve PNG (default: <out>/hil_vs_rl.png)")
    parser.add_argument("--demos", type=int, default=20, help="demo episodes per seed")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--window", type=int, default=20, help="eval episodes in the rolling rate")
    parser.add_argument("--eval-every", type=int, default=10, help="training episodes per round")
    parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per eval round")
    parser.add_argument(
        "--confirm", type=int, default=20, help="eval episodes to run on after the crossing"
    )
    parser.add_argument(
        "--train-on-steps", type=int, default=8_000, help="env steps to train on after the crossing"
    )
    parser.add_argument("--max-env-steps", type=int, default=40_000, help="per-run budget")
    parser.add_argument(
        "--max-minutes", type=float, default=4.0, help="per-run budget of training time"
    )
    parser.add_argument(
        "--final-episodes", type=int, default=50, help="hilrl eval episodes at the end (0: skip)"
    )
    parser.add_argument(
        "--replot",
        default=None,
        metavar="RESULTS_JSON",
        help="no runs: redo the table, figures and PNG from an earlier <out>/results.json "
        "(pass the options it ran with: they are reported as given)",
    )
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between metric reads")
    parser.add_argument("--every", type=float, default=20.0, help="seconds between progress lines")
    args, overrides = parser.parse_known_args()
    if not 0 < args.threshold <= 1 or args.window < 1 or args.eval_episodes < 1:
        parser.error("--threshold must be in (0, 1], --window and --eval-episodes >= 1")
    if args.eval_every < 1 or args.max_env_steps < 1 or not args.max_minutes > 0:
        parser.error("--eval-every, --max-env-steps and --max-minutes must be positive")
    bad = [o for o in overrides if not o.startswith("--")]
    if bad:
        parser.error(f"unrecognised arguments: {bad}")
    if args.replot:
        out = Path(args.replot).resolve().parent
        started = time.monotonic()
        earlier = load_results(Path(args.replot))
        args.seeds = sorted({r.seed for r in earlier})
        report(
            earlier,
            args,
            overrides,
            Path(args.png) if args.png else out / "hil_vs_rl.png",
            out,
            started,
        )
        return
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_hil_vs_rl_"))
    out.mkdir(parents=True, exist_ok=True)
    png = Path(args.png) if args.png else out / "hil_vs_rl.png"
    print(f"benchmark folder {out}; seeds {args.seeds}, arms {args.arms}", flush=True)
    started = time.monotonic()
    results: list[RunResult] = []
    for seed in args.seeds:
        demos = out / f"seed_{seed}" / "demos"
        t0 = time.monotonic()
        demo_cpu = record_demos(args.config, seed, demos, args.demos, overrides)
        print(
            f"seed {seed}: {args.demos} demos in {time.monotonic() - t0:.1f} s "
            f"({demo_cpu:.1f} CPU s) -> {demos}",
            flush=True,
        )
        for arm in args.arms:
            run_dir = out / f"seed_{seed}" / arm
            if run_dir.exists() and any(run_dir.iterdir()):
                parser.error(f"{run_dir} holds an earlier run: choose another --out")
            result = train_run(args, seed, arm, demos, run_dir, overrides)
            result.demo_cpu_s = round(demo_cpu, 1)
            results.append(result)
            (out / "results.json").write_text(
                json.dumps([asdict(r) for r in results], indent=1) + "\n"
            )
    report(results, args, overrides, png, out, started)


def report(
    results: list[RunResult],
    args: argparse.Namespace,
    overrides: list[str],
    png: Path,
    out: Path,
    started: float,
) -> None:
    """PNG, table, figures, summary.json and the final JSON line."""
    plot(results, png, args)
    figures = summarise(results, args)
    print()
    print_table(results, sys.stdout)
    summary: dict[str, Any] = {
        "name": "hil_vs_rl_sim_pick_cube",
        "seeds": args.seeds,
        "threshold": args.threshold,
        "window": args.window,
        "eval_every": args.eval_every,
        "eval_episodes": args.eval_episodes,
        "train_on_steps": args.train_on_steps,
        "confirm": args.confirm,
        "max_env_steps": args.max_env_steps,
        "max_minutes": args.max_minutes,
        "overrides": overrides,
        "wall_min": round((time.monotonic() - started) / 60.0, 2),
        "png": str(png),
        "out": str(out),
        **figures,
    }
    print()
    for key, value in summary.items():
        if not key.startswith(("hil_seed", "rl_seed")):
            print(f"{key:>40}: {value}")
    name = "summary_replot.json" if args.replot else "summary.json"
    (out / name).write_text(json.dumps(summary, indent=1) + "\n")
    print(
        json.dumps(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
        )
    )


if __name__ == "__main__":
    os.environ.setdefault("MUJOCO_GL", "egl")
    main()
