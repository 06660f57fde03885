"""``hilrl eval``: evaluate a trained policy checkpoint in its run's env.

Loads the policy (actor side only) from ``--checkpoint`` (a run folder: its latest
complete checkpoint; or one ``step_*`` folder), rebuilds the env from the run config
stored in the checkpoint (``--config`` / ``--section.field=value`` override it, e.g.
``--env.robot.randomize=false``), runs ``--episodes`` deterministic episodes and prints
the success rate with its 95% Wilson interval, the mean return and the mean episode
length. One summary line goes to ``<out>/metrics/eval.jsonl`` (``"eval": true``) and
episode videos to ``<out>/videos/``.

The operator (``--operator``, the default on a real robot with a ``teleop.device``)
watches: their events count, their actions never reach the arm. Quit stops the
evaluation with the partial result; pause holds the arm until pause is pressed again
and that episode is not counted; success / failure end the episode as such; a takeover
attempt ends the episode, which is not counted (see :mod:`hilrl.runtime.evaluate`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from hilrl.config.loader import config_data, format_config_help
from hilrl.config.root import RootConfig
from hilrl.teleop.errors import TeleopError

DEFAULT_SEED = 100_000
"""Eval seed, the same for every checkpoint so that they face the same layouts (a paired
comparison). Evaluation draws from its own hashed seed stream (:func:`hilrl.runtime.
evaluate.eval_seed`), so any value gives layouts no demo or training episode used."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="PATH",
        help="a run folder (its latest complete checkpoint is used) or a checkpoint folder "
        "(.../checkpoints/step_XXXXXXXXX)",
    )
    parser.add_argument(
        "--episodes", type=int, default=20, metavar="N", help="episodes to run (default 20)"
    )
    parser.add_argument(
        "--video",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="record episode videos (default on); state-only sim configs are filmed by the "
        "front camera, rendered for the video only",
    )
    parser.add_argument(
        "--video-episodes",
        type=int,
        default=5,
        metavar="K",
        help="film only the first K episodes (default 5; 0: all)",
    )
    parser.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="where metrics/eval.jsonl and videos/ go (default: the checkpoint's run folder, "
        "else run.output_dir of its config)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="S",
        help="episode i resets with a seed hashed from S and i: the same S gives the same "
        f"task layouts, another S other layouts (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        metavar="DEV",
        help="torch device of the policy: cpu, cuda or auto (default cpu)",
    )
    parser.add_argument(
        "--operator",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the operator's teleop.device watches the evaluation: quit stops it (partial "
        "result), pause holds the arm until pause is pressed again (that episode is not "
        "counted), success / failure end the episode, a takeover attempt ends the episode "
        "(not counted); their actions never reach the arm. Default: on for a real robot "
        "with a teleop.device, off in sim (--operator there: the simulated operator "
        "watches and labels); --no-operator: nobody, only the safety layer acts",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--json", action="store_true", help="also print the summary as one JSON line"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML or JSON file merged over the run config stored in the checkpoint",
    )
    parser.set_defaults(overrides=[])
    parser.epilog = "\n".join(
        [
            "example:\n  hilrl eval --checkpoint runs/sim_pick_cube --episodes 50 "
            "--env.robot.randomize=true",
            "",
            "config fields (override the checkpoint's run config with --<field>=<value>):",
            format_config_help(RootConfig),
        ]
    )


def run(args: argparse.Namespace) -> int:
    # start-up: torch and MuJoCo load when the verb runs, not for its --help
    from hilrl.runtime.checkpoint import CheckpointError
    from hilrl.runtime.evaluate import evaluate_checkpoint

    if args.episodes < 1:
        print(f"hilrl eval: --episodes must be >= 1, got {args.episodes}", file=sys.stderr)
        return 2
    overrides = config_data(args.config, args.overrides)
    print(f"evaluating {args.checkpoint}: {args.episodes} episodes, seed {args.seed}")
    try:
        done = evaluate_checkpoint(
            args.checkpoint,
            episodes=args.episodes,
            seed=args.seed,
            out=Path(args.out) if args.out else None,
            video=args.video,
            video_episodes=args.video_episodes,
            device=args.device,
            config_overrides=overrides,
            progress=not args.no_progress and sys.stderr.isatty(),
            warn=lambda msg: print(f"hilrl eval: {msg}", file=sys.stderr),
            operator=args.operator,
        )
    except (CheckpointError, TeleopError) as exc:
        print(f"hilrl eval: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"hilrl eval: {exc}", file=sys.stderr)
        return 1
    result = done.result
    print(
        f"checkpoint {done.checkpoint} (step {done.step}"
        + (f", {done.env_steps} env steps" if done.env_steps is not None else "")
        + ")"
    )
    if result.stopped is not None:
        print(
            f"stopped: {result.stopped} after {len(result.episodes) + len(result.interrupted)} "
            f"of {args.episodes} episodes; partial result"
        )
    if result.interrupted:
        reasons = Counter(e.interrupted for e in result.interrupted)
        print(
            f"interrupted by the operator, not counted: {len(result.interrupted)} episode(s) ("
            + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=str))
            + f"; {result.operator_takeovers} takeover attempt(s))"
        )
    low, high = result.success_ci
    print(
        f"success rate {result.success_rate:.1%} ({result.successes}/{len(result.episodes)}), "
        f"95% CI [{low:.1%}, {high:.1%}]"
    )
    print(
        f"mean return {result.mean_return:.3f} ± {result.std_return:.3f}, "
        f"mean length {result.mean_length:.1f} steps"
    )
    videos = [e.video for e in result.episodes if e.video]
    if videos:
        print(f"videos: {len(videos)} in {done.video_dir}")
    print(f"wrote {done.metrics_path}")
    if args.json:
        print(json.dumps({"step": done.step, "env_steps": done.env_steps, **result.summary()}))
    return 0
