"""``hilrl eval``: evaluate a trained policy checkpoint in its run's env.

Loads the policy (actor side only) from ``--checkpoint`` (a run folder: its latest
complete checkpoint; or one ``step_*`` folder), rebuilds the env from the run config
stored in the checkpoint (``--config`` / ``--section.field=value`` override it, e.g.
``--env.robot.randomize=false``), runs ``--episodes`` deterministic episodes with no
operator and prints the success rate with its 95% Wilson interval, the mean return and
the mean episode length. One summary line goes to ``<out>/metrics/eval.jsonl``
(``"eval": true``) and episode videos to ``<out>/videos/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hilrl.config.loader import deep_merge, format_config_help, parse_overrides, read_config_file
from hilrl.config.root import RootConfig

DEFAULT_SEED = 100_000
"""Eval seed: away from the small seeds training actors use, the same for every checkpoint."""


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
        help=f"episode i resets with seed S + i: the same S gives the same task layouts "
        f"(default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        metavar="DEV",
        help="torch device of the policy: cpu, cuda or auto (default cpu)",
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
    from hilrl.robots.sim import RenderBackendError
    from hilrl.runtime.checkpoint import CheckpointError
    from hilrl.runtime.evaluate import EvalResult, evaluate
    from hilrl.runtime.policy_io import load_policy_checkpoint

    if args.episodes < 1:
        print(f"hilrl eval: --episodes must be >= 1, got {args.episodes}", file=sys.stderr)
        return 2
    overrides: dict[str, Any] = read_config_file(args.config) if args.config else {}
    overrides = deep_merge(overrides, parse_overrides(args.overrides))
    try:
        policy, cfg, ckpt = load_policy_checkpoint(
            args.checkpoint, args.device, config_overrides=overrides
        )
    except CheckpointError as exc:
        print(f"hilrl eval: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else (ckpt.run_dir or Path(cfg.run.output_dir))
    env_steps = ckpt.env_steps
    print(
        f"checkpoint {ckpt.path} (step {ckpt.step}"
        + (f", {env_steps} env steps" if env_steps is not None else "")
        + f"), {args.episodes} episodes, seed {args.seed}"
    )
    reward_fn = None
    if cfg.reward.path is not None:
        from hilrl.rewards.hook import reward_fn_from_config

        reward_fn = reward_fn_from_config(cfg.reward, cfg.env)
    video_dir = out / "videos" if args.video else None
    kwargs: dict[str, Any] = {
        "episodes": args.episodes,
        "seed": args.seed,
        "video_episodes": args.video_episodes or None,
        "video_prefix": f"eval_step{ckpt.step:09d}",
        "reward_fn": reward_fn,
        "progress": not args.no_progress and sys.stderr.isatty(),
    }
    try:
        try:
            result: EvalResult = evaluate(policy, cfg.env, video_dir=video_dir, **kwargs)
        except RenderBackendError as exc:
            print(f"hilrl eval: no video ({exc}); evaluating without it", file=sys.stderr)
            result = evaluate(policy, cfg.env, video_dir=None, **kwargs)
    except ValueError as exc:
        print(f"hilrl eval: {exc}", file=sys.stderr)
        return 1

    summary = result.summary()
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
        print(f"videos: {len(videos)} in {video_dir}")
    entry = {
        "unix_time": time.time(),
        "env_steps": env_steps,
        "step": ckpt.step,
        "policy_version": policy.version,
        "checkpoint": str(ckpt.path),
        "seed": args.seed,
        **summary,
        "per_episode": result.to_json()["per_episode"],
        "eval": True,
    }
    path = out / "metrics" / "eval.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    print(f"wrote {path}")
    if args.json:
        print(json.dumps({"step": ckpt.step, "env_steps": env_steps, **summary}))
    return 0
