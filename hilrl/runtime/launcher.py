"""``hilrl train``: one learner and ``train.num_actors`` actors on this machine, one Ctrl-C.

The sequence::

    prepare the run folder (fresh, or --resume from its newest checkpoint); config.yaml
    record the demonstrations if they are missing (sim, simulated operator)
    start the learner; wait for its learner.json (port, run id)
    start the actors, each with its share of the remaining env steps
    until the actors are done, the learner stops, or Ctrl-C: print the status line
    stop: actors first (they flush their data), then the learner (final checkpoint)
    summary, plots

Processes are ``python -m hilrl.cli.main learner|actor --config <run>/config.yaml``
in their own session, so a terminal's Ctrl-C reaches only this launcher, which stops
them in order: SIGTERM, up to ``train.shutdown_timeout_s`` to finish, then SIGKILL. A
second Ctrl-C kills them at once. Their output goes to ``<run>/logs/<name>.log``; the
tail is printed when one fails. Each child also stops by itself when the launcher dies
(``HILRL_PARENT_PID``).

With ``train.inprocess`` the learner runs in this process and the actors in threads,
over the in-process transport (for tests and debugging: no sockets, one log).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from hilrl.config.loader import save_config
from hilrl.config.root import RootConfig
from hilrl.runtime.run_dir import RunDir, prepare_run, read_json, read_jsonl, write_json
from hilrl.runtime.status import RunStatus, StatusPrinter, format_duration
from hilrl.runtime.stopping import PARENT_ENV, StopFlag, handle_signals

LEARNER_START_TIMEOUT_S = 600.0
"""How long the learner may take to come up (imports, demo loading, a resume)."""
POLL_S = 0.2
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class ActorPlan:
    """One local actor: its id, index, step budget and first episode index."""

    actor_id: str
    index: int
    max_steps: int
    first_episode: int = 0


def actor_name(index: int) -> str:
    return f"actor-{index}"


def plan_actors(
    num_actors: int, remaining_steps: int, actor_episodes: dict[str, int] | None = None
) -> list[ActorPlan]:
    """Split the remaining env steps over the actors (the first ones take the remainder)."""
    episodes = actor_episodes or {}
    plans = []
    for i in range(num_actors):
        share = remaining_steps // num_actors + (1 if i < remaining_steps % num_actors else 0)
        if share > 0:
            name = actor_name(i)
            plans.append(ActorPlan(name, i, share, episodes.get(name, 0)))
    return plans


@dataclass
class TrainResult:
    """How a ``hilrl train`` run ended."""

    exit_code: int
    reason: str
    run_dir: Path


def train(
    cfg: RootConfig, *, resume: bool = False, status: bool = True, out: TextIO | None = None
) -> TrainResult:
    """Run the whole job (see the module docstring); returns its exit code and reason."""
    from hilrl.runtime.checkpoint import latest_checkpoint, read_meta
    from hilrl.runtime.demos import ensure_demos
    from hilrl.runtime.learner import Counters

    out = out if out is not None else sys.stderr
    run = prepare_run(cfg.run.output_dir, resume)
    save_config(cfg, run.config)
    counters = Counters()
    if resume:
        ckpt = latest_checkpoint(run.checkpoints)
        assert ckpt is not None  # prepare_run checked
        counters = Counters.from_dict(read_meta(ckpt).get("counters", {}))
        out.write(
            f"train: resuming {run.root} from {ckpt.name} ({counters.env_steps:,} env steps, "
            f"{counters.updates:,} updates)\n"
        )
    else:
        ensure_demos(cfg, progress=status, out=out)
    remaining = cfg.run.total_env_steps - counters.env_steps
    if remaining <= 0 and cfg.train.num_actors > 0:
        out.write(f"train: run.total_env_steps={cfg.run.total_env_steps:,} already reached\n")
        return TrainResult(0, "env steps done", run.root)
    plans = plan_actors(cfg.train.num_actors, max(remaining, 0), counters.actor_episodes)
    printer = StatusPrinter(
        RunStatus(run, cfg.run.total_env_steps), out, cfg.run.log_every_s, enabled=status
    )
    started = time.monotonic()
    if cfg.train.inprocess:
        result = _train_inprocess(cfg, run, resume, plans, printer, out)
    else:
        result = _train_processes(cfg, run, resume, plans, printer, out)
    printer.finish()
    print_summary(run, cfg.run.total_env_steps, time.monotonic() - started, out)
    if result.exit_code == 0:
        final_evaluation(cfg, run, out, progress=status)
    make_plots(run, out)
    return result


def final_evaluation(cfg: RootConfig, run: RunDir, out: TextIO, *, progress: bool) -> None:
    """Evaluate the last checkpoint without operator; videos under <run>/videos."""
    from hilrl.runtime.checkpoint import CheckpointError, latest_checkpoint
    from hilrl.runtime.evaluate import evaluate_checkpoint

    episodes = cfg.train.final_eval_episodes
    if episodes <= 0 or latest_checkpoint(run.checkpoints) is None:
        return
    out.write(f"train: final evaluation, {episodes} episodes with the deterministic policy\n")
    try:
        done = evaluate_checkpoint(
            run.root,
            episodes=episodes,
            seed=cfg.run.seed + 1_000_000,  # layouts no training episode used
            video=cfg.train.final_eval_videos > 0,
            video_episodes=cfg.train.final_eval_videos,
            progress=progress and out.isatty(),
            warn=lambda msg: print(f"train: {msg}", file=out),
        )
    except (CheckpointError, ValueError) as exc:
        out.write(f"train: final evaluation failed: {exc}\n")
        return
    r = done.result
    low, high = r.success_ci
    out.write(
        f"train: final evaluation: success {r.success_rate:.0%} ({r.successes}/{len(r.episodes)}, "
        f"95% CI {low:.0%}-{high:.0%}), mean return {r.mean_return:.2f}, mean length "
        f"{r.mean_length:.1f}\n"
    )
    if done.video_dir is not None and any(e.video for e in r.episodes):
        out.write(f"train: evaluation videos in {done.video_dir}\n")


# ---------------------------------------------------------------------------- processes


class Child:
    """One child process with its log file."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float) -> int | None:
        try:
            rc = self.proc.wait(timeout=max(timeout_s, 0.0))
        except subprocess.TimeoutExpired:
            return None
        self._log.close()
        return rc

    def kill(self) -> int:
        if self.alive():
            self.proc.kill()
        rc = self.proc.wait()
        self._log.close()
        return rc

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _base_command() -> list[str]:
    return [sys.executable, "-m", "hilrl.cli.main"]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env[PARENT_ENV] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _wait_for_learner(run: RunDir, learner: Child, stop: StopFlag) -> dict[str, Any] | None:
    """The learner's learner.json once it listens; None if it died or we are stopping."""
    deadline = time.monotonic() + LEARNER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        info = read_json(run.learner_file)
        if info.get("pid") == learner.pid and isinstance(info.get("port"), int):
            return info
        if not learner.alive() or stop.wait(POLL_S):
            return None
    raise TimeoutError(f"the learner did not start listening within {LEARNER_START_TIMEOUT_S:g} s")


def _train_processes(
    cfg: RootConfig,
    run: RunDir,
    resume: bool,
    plans: list[ActorPlan],
    printer: StatusPrinter,
    out: TextIO,
) -> TrainResult:
    env = _child_env()
    config = str(run.config)
    run.learner_file.unlink(missing_ok=True)
    stop = StopFlag(watch_parent=False)
    learner_args = [*_base_command(), "learner", "--config", config]
    learner_args += ["--local-actors", str(len(plans))] + (["--resume"] if resume else [])
    actors: list[Child] = []
    learner: Child | None = None
    reason = ""
    with handle_signals(stop):
        try:
            learner = Child("learner", learner_args, run.logs / "learner.log", env)
            _write_pids(run, learner, actors)
            info = _wait_for_learner(run, learner, stop)
            if info is not None:
                host = cfg.transport.host
                if host in ("0.0.0.0", "::", "[::]"):
                    host = "127.0.0.1"
                for plan in plans:
                    args = [*_base_command(), "actor", "--config", config]
                    args += ["--actor-id", plan.actor_id, "--actor-index", str(plan.index)]
                    args += ["--max-steps", str(plan.max_steps)]
                    args += ["--first-episode", str(plan.first_episode)]
                    args += ["--num-actors", str(len(plans)), "--run-id", str(info["run_id"])]
                    args += [f"--transport.host={host}", f"--transport.port={info['port']}"]
                    log_path = run.logs / f"{plan.actor_id}.log"
                    actors.append(Child(plan.actor_id, args, log_path, env))
                _write_pids(run, learner, actors)
                printer.message(
                    f"train: learner pid {learner.pid} on port {info['port']}, "
                    f"{len(actors)} actor(s); logs in {run.logs}"
                )
            reason = _monitor(learner, actors, stop, printer)
        except TimeoutError as exc:
            reason = "learner did not start"
            printer.message(f"train: {exc}")
        except KeyboardInterrupt:
            reason = "interrupted twice: killed"
            for child in [*actors, *([learner] if learner else [])]:
                child.kill()
        finally:
            try:
                done = reason == "actors finished" and all(a.proc.returncode == 0 for a in actors)
                grace = cfg.train.shutdown_timeout_s if done else 0.0
                _shutdown(actors, learner, cfg.train.shutdown_timeout_s, printer, grace)
            except KeyboardInterrupt:
                for child in [*actors, *([learner] if learner else [])]:
                    child.kill()
    return _result(run, reason, learner, actors, printer)


def _monitor(learner: Child, actors: list[Child], stop: StopFlag, printer: StatusPrinter) -> str:
    """Watch the children until the run ends; returns why."""
    while True:
        printer.tick()
        if stop.is_set():
            return "interrupted"
        if not learner.alive():
            return "learner exited"
        if actors and not any(a.alive() for a in actors):
            return "actors finished"
        stop.wait(POLL_S)


def _shutdown(
    actors: list[Child],
    learner: Child | None,
    timeout_s: float,
    printer: StatusPrinter,
    learner_grace_s: float = 0.0,
) -> None:
    """Actors first (they flush), then the learner (final checkpoint); kill what hangs.

    ``learner_grace_s``: time the learner gets to finish by itself first (after the
    actors used their whole budget it stops on its own once the last steps arrived).
    """
    if learner is not None and learner_grace_s > 0 and not any(a.alive() for a in actors):
        learner.wait(learner_grace_s)
    for group in (actors, [learner] if learner is not None else []):
        live = [c for c in group if c.alive()]
        for child in live:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in live:
            if child.wait(deadline - time.monotonic()) is None:
                printer.message(f"train: {child.name} did not stop in {timeout_s:g} s: killed")
                child.kill()
        for child in group:
            child.wait(0)


def _result(
    run: RunDir, reason: str, learner: Child | None, actors: list[Child], printer: StatusPrinter
) -> TrainResult:
    failed = []
    for child in [*([learner] if learner else []), *actors]:
        rc = child.proc.returncode
        if rc not in (0, None):
            failed.append(child)
            printer.message(
                f"train: {child.name} exited with code {rc}; last lines of {child.log_path}:"
            )
            printer.message(child.tail())
    if reason.startswith("interrupted"):
        return TrainResult(130, reason, run.root)
    return TrainResult(1 if failed or reason == "learner did not start" else 0, reason, run.root)


def _write_pids(run: RunDir, learner: Child, actors: list[Child]) -> None:
    write_json(
        run.processes_file,
        {
            "launcher": os.getpid(),
            "learner": learner.pid,
            "actors": {a.name: a.pid for a in actors},
        },
        sync=False,
    )


# ---------------------------------------------------------------------------- in-process


def _train_inprocess(
    cfg: RootConfig,
    run: RunDir,
    resume: bool,
    plans: list[ActorPlan],
    printer: StatusPrinter,
    out: TextIO,
) -> TrainResult:
    """Learner in this thread, actors in threads, in-process transport."""
    from hilrl.runtime.actor import ActorOptions, run_actor
    from hilrl.runtime.learner import open_learner

    stop = StopFlag(watch_parent=False)
    errors: list[tuple[str, BaseException]] = []

    def actor_main(plan: ActorPlan, endpoint: Any) -> None:
        options = ActorOptions.from_config(
            cfg,
            plan.actor_id,
            plan.index,
            max_steps=plan.max_steps,
            first_episode=plan.first_episode,
            num_actors=len(plans),
        )
        try:
            run_actor(cfg, endpoint, options, stop)
        except BaseException as exc:  # reported by the main thread after the run
            errors.append((plan.actor_id, exc))
            stop.set(f"{plan.actor_id} failed")
        finally:
            endpoint.close()

    reason = ""
    with (
        handle_signals(stop),
        open_learner(cfg, resume=resume, local_actors=len(plans), inproc=True, out=out) as (
            learner,
            endpoint,
        ),
    ):
        threads = [
            threading.Thread(
                target=actor_main,
                args=(p, endpoint.connect(p.actor_id)),
                name=p.actor_id,
                daemon=True,
            )
            for p in plans
        ]
        for t in threads:
            t.start()
        done = threading.Event()
        ticker = threading.Thread(target=_tick_until, args=(printer, done), daemon=True)
        ticker.start()

        def actors_done() -> bool:
            return bool(threads) and not any(t.is_alive() for t in threads)

        try:
            reason = learner.train(endpoint, stop, actors_done)
        finally:
            stop.set(stop.reason or "learner stopped")
            for t in threads:
                t.join(timeout=cfg.train.shutdown_timeout_s)
            done.set()
            ticker.join(timeout=5.0)
    for actor_id, exc in errors:
        printer.message(f"train: {actor_id} failed: {type(exc).__name__}: {exc}")
    if reason.startswith("signal"):
        return TrainResult(130, "interrupted", run.root)
    return TrainResult(1 if errors else 0, reason, run.root)


def _tick_until(printer: StatusPrinter, done: threading.Event) -> None:
    while not done.wait(POLL_S):
        printer.tick()


# ---------------------------------------------------------------------------- the end


def print_summary(run: RunDir, total_env_steps: int, wall_s: float, out: TextIO) -> None:
    """Episodes, success rates, env steps, updates and the newest checkpoint."""
    from hilrl.runtime.checkpoint import latest_checkpoint

    episodes, _ = read_jsonl(run.episodes_jsonl)
    learner, _ = read_jsonl(run.learner_jsonl)
    train_eps = [e for e in episodes if not e.get("eval")]
    evals = [e for e in episodes if e.get("eval")]
    last = train_eps[-20:]

    def rate(rows: list[dict[str, Any]], key: str) -> str:
        return f"{100 * sum(bool(r.get(key)) for r in rows) / len(rows):.0f}%" if rows else "-"

    steps = max([int(r.get("env_steps", 0)) for r in episodes + learner] or [0])
    updates = int(learner[-1].get("updates", 0)) if learner else 0
    lines = [
        f"train: done in {format_duration(wall_s)}: {steps:,}/{total_env_steps:,} env steps, "
        f"{updates:,} updates, {len(train_eps)} episodes",
        f"train: last {len(last)} episodes: success {rate(last, 'success')}, "
        f"without intervention {rate(last, 'autonomous_success')}",
    ]
    if evals:
        lines.append(
            f"train: last {len(evals[-20:])} eval episodes: success {rate(evals[-20:], 'success')}"
        )
    ckpt = latest_checkpoint(run.checkpoints)
    lines.append(f"train: checkpoint {ckpt if ckpt is not None else '(none)'}")
    out.write("\n".join(lines) + "\n")
    out.flush()


def make_plots(run: RunDir, out: TextIO) -> None:
    """PNG plots of the run when :mod:`hilrl.runtime.plots` is available."""
    plot_run: Callable[[Path], Any] | None
    try:
        from hilrl.runtime.plots import plot_run
    except ImportError:
        plot_run = None
    if plot_run is None:
        return
    try:
        written = plot_run(run.root)
    except Exception as exc:  # plots are a convenience: report, never fail the run
        out.write(f"train: plots failed: {type(exc).__name__}: {exc}\n")
        return
    if written:
        out.write(f"train: plots in {run.plots}\n")
