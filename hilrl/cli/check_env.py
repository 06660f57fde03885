"""``hilrl check-env``: run gymnasium's env checker on every built-in sim task.

Each task is built through :func:`hilrl.envs.make_env` twice, state-only and with
cameras, and checked both as the full wrapper stack and as the bare ``RobotEnv``
underneath. Prints a pass/fail table; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import traceback
import warnings
from dataclasses import dataclass, replace

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError


@dataclass
class CheckRow:
    env_id: str
    observation: str
    target: str
    passed: bool
    warnings: int
    detail: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=None,
        metavar="ID",
        help="gymnasium ids to check (default: every built-in sim task)",
    )
    parser.add_argument(
        "--camera-size",
        type=int,
        default=64,
        metavar="PX",
        help="square camera image size for the camera runs (default 64; small is fast)",
    )
    parser.add_argument(
        "--state-only", action="store_true", help="skip the runs with cameras (no rendering)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print the checker's warnings and full tracebacks"
    )


def run(args: argparse.Namespace) -> int:
    # start-up: gymnasium and the sim load when the verb runs, not for its --help
    from hilrl.envs import TASK_IDS

    ids = args.tasks or sorted(TASK_IDS)
    unknown = [i for i in ids if i not in TASK_IDS]
    if unknown:
        raise ConfigError("--tasks", unknown, f"unknown task ids; choose from {sorted(TASK_IDS)}")
    if args.camera_size <= 0:
        raise ConfigError("--camera-size", args.camera_size, "must be positive")
    rows: list[CheckRow] = []
    for env_id in ids:
        for cameras in (False,) if args.state_only else (False, True):
            rows.extend(
                _check_task(env_id, TASK_IDS[env_id], cameras, args.camera_size, args.verbose)
            )
    _print_table(rows)
    failed = sum(not r.passed for r in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} checks passed")
    return 1 if failed else 0


def _check_task(env_id: str, task: str, cameras: bool, size: int, verbose: bool) -> list[CheckRow]:
    # start-up: gymnasium and the sim load when the verb runs, not for its --help
    from gymnasium.utils.env_checker import check_env

    from hilrl.envs import make_env

    cfg = EnvConfig(use_cameras=cameras)
    cfg = replace(cfg, robot=replace(cfg.robot, task=task, camera_height=size, camera_width=size))
    label = f"cameras {size}x{size}" if cameras else "state only"
    rows = []
    try:
        cfg.validate()
        env = make_env(cfg)
    except Exception as exc:
        detail = traceback.format_exc() if verbose else f"{type(exc).__name__}: {exc}"
        return [CheckRow(env_id, label, "make_env", False, 0, detail)]
    try:
        for target, candidate in (("wrapped", env), ("unwrapped", env.unwrapped)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    check_env(candidate, skip_render_check=True)
                    passed, detail = True, ""
                except Exception as exc:
                    passed = False
                    detail = traceback.format_exc() if verbose else f"{type(exc).__name__}: {exc}"
            if verbose:
                for w in caught:
                    print(f"[{env_id} {label} {target}] warning: {w.message}")
            rows.append(CheckRow(env_id, label, target, passed, len(caught), detail))
    finally:
        env.close()
    return rows


def _print_table(rows: list[CheckRow]) -> None:
    headers = ("env id", "observation", "env", "result", "warnings")
    cells = [
        (r.env_id, r.observation, r.target, "PASS" if r.passed else "FAIL", str(r.warnings))
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for row, c in zip(rows, cells):
        print("  ".join(x.ljust(w) for x, w in zip(c, widths)))
        if row.detail:
            print("    " + row.detail.replace("\n", "\n    "))
