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

An actor that dies while the run goes on (killed by a signal, or exit code != 0) is
restarted at once on the output ("actor-1 died (signal 9, SIGKILL); restarting (1/5) in
1.0 s"), after an exponential backoff (:class:`RestartPolicy`: 1 s doubling up to 30 s),
at most :data:`ACTOR_MAX_RESTARTS` times per actor and run. When an actor dies once more
after that, the whole run stops (exit code 1) with that actor named: its share of the
env steps would never arrive, and an actor that keeps dying needs a person. An actor
that exits with code 0 (step budget used, operator quit, stopped by a signal it caught)
is done and never restarted.

Each actor reserves its episode indices in ``<run>/actors/<actor_id>.json``
(:mod:`hilrl.runtime.actor`): a restarted actor gets ``--first-episode`` after the
highest index reserved there (or in the checkpoint's ``actor_episodes`` on ``--resume``,
whichever is larger) and the rest of its step budget, so it never replays an episode
index or seed. A fresh run clears the folder.

With ``train.inprocess`` the learner runs in this process and the actors in threads,
over the in-process transport (for tests and debugging: no sockets, one log); those
actors are never restarted and keep no state files (a resume takes the checkpoint's
``actor_episodes``).
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

from hilrl.config.loader import save_config, secret_env
from hilrl.config.root import RootConfig
from hilrl.runtime.actor import (
    ACTORS_DIR,
    ActorOptions,
    actor_state_path,
    read_actor_state,
    run_actor,
)
from hilrl.runtime.checkpoint import CheckpointError, latest_checkpoint, read_meta
from hilrl.runtime.demos import ensure_demos
from hilrl.runtime.evaluate import evaluate_checkpoint
from hilrl.runtime.learner import Counters, LearnerFailed, open_learner
from hilrl.runtime.plots import plot_run
from hilrl.runtime.run_dir import RunDir, prepare_run, read_json, read_jsonl, write_json
from hilrl.runtime.status import RunStatus, StatusPrinter, format_duration
from hilrl.runtime.stopping import PARENT_ENV, StopFlag, handle_signals
from hilrl.transport.spool import remove_run_spools

LEARNER_START_TIMEOUT_S = 600.0
"""How long the learner may take to come up (imports, demo loading, a resume)."""
POLL_S = 0.2
LOG_TAIL_LINES = 25
RESTART_TAIL_LINES = 8
"""Lines of a dead actor's log printed when it is restarted."""

ACTOR_MAX_RESTARTS = 5
"""Restarts of one local actor within a run (to become ``train.actor_max_restarts``)."""
ACTOR_RESTART_BACKOFF_S = 1.0
"""Wait before an actor's first restart, doubled for each further one
(to become ``train.actor_restart_backoff_s``)."""
ACTOR_RESTART_BACKOFF_MAX_S = 30.0
"""The longest wait before a restart."""


@dataclass(frozen=True)
class RestartPolicy:
    """How often and how soon a dead actor is started again."""

    max_restarts: int = ACTOR_MAX_RESTARTS
    backoff_s: float = ACTOR_RESTART_BACKOFF_S
    backoff_max_s: float = ACTOR_RESTART_BACKOFF_MAX_S

    def delay(self, restart: int) -> float:
        """Seconds before restart number ``restart`` (1, 2, ...): doubling, capped."""
        return min(self.backoff_s * 2.0 ** max(restart - 1, 0), self.backoff_max_s)


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
    num_actors: int,
    remaining_steps: int,
    actor_episodes: dict[str, int] | None = None,
    reserved: dict[str, int] | None = None,
) -> list[ActorPlan]:
    """Split the remaining env steps over the actors (the first ones take the remainder).

    An actor's first episode is the larger of its next index in ``actor_episodes`` (the
    checkpoint's counters) and in ``reserved`` (its state file: indices it reserved).
    """
    episodes = actor_episodes or {}
    taken = reserved or {}
    plans = []
    for i in range(num_actors):
        share = remaining_steps // num_actors + (1 if i < remaining_steps % num_actors else 0)
        if share > 0:
            name = actor_name(i)
            first = max(episodes.get(name, 0), taken.get(name, 0), 0)
            plans.append(ActorPlan(name, i, share, first))
    return plans


def reserved_episodes(run_root: Path, num_actors: int) -> dict[str, int]:
    """The next free episode index of each local actor, from its state file (if any)."""

    out = {}
    for i in range(num_actors):
        state = read_actor_state(actor_state_path(run_root, actor_name(i)))
        if state is not None:
            out[actor_name(i)] = state.next_episode
    return out


def clear_actor_states(run_root: Path) -> None:
    """Remove the actors' state files of an earlier attempt (a fresh run starts at 0)."""

    folder = Path(run_root) / ACTORS_DIR
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".json", ".tmp"):
            path.unlink(missing_ok=True)


@dataclass
class TrainResult:
    """How a ``hilrl train`` run ended."""

    exit_code: int
    reason: str
    run_dir: Path


def train(
    cfg: RootConfig,
    *,
    resume: bool = False,
    status: bool = True,
    out: TextIO | None = None,
    restart: RestartPolicy | None = None,
) -> TrainResult:
    """Run the whole job (see the module docstring); returns its exit code and reason.

    ``restart``: how dead actors are restarted (default :class:`RestartPolicy`; actor
    processes only, in-process actors are threads and never restarted).
    """

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
        clear_actor_states(run.root)
        ensure_demos(cfg, progress=status, out=out)
    remaining = cfg.run.total_env_steps - counters.env_steps
    if remaining <= 0 and cfg.train.num_actors > 0:
        out.write(f"train: run.total_env_steps={cfg.run.total_env_steps:,} already reached\n")
        return TrainResult(0, "env steps done", run.root)
    reserved = {} if cfg.train.inprocess else reserved_episodes(run.root, cfg.train.num_actors)
    plans = plan_actors(cfg.train.num_actors, max(remaining, 0), counters.actor_episodes, reserved)
    printer = StatusPrinter(
        RunStatus(run, cfg.run.total_env_steps), out, cfg.run.log_every_s, enabled=status
    )
    started = time.monotonic()
    if restart is None:
        restart = RestartPolicy(cfg.train.actor_max_restarts, cfg.train.actor_restart_backoff_s)
    if cfg.train.inprocess:
        result = _train_inprocess(cfg, run, resume, plans, printer, out)
    else:
        result = _train_processes(cfg, run, resume, plans, printer, out, restart)
        if result.exit_code == 0:
            _remove_spools(cfg, run, out)
    printer.finish()
    print_summary(run, cfg.run.total_env_steps, time.monotonic() - started, out)
    if result.exit_code == 0:
        final_evaluation(cfg, run, out, progress=status)
    make_plots(run, out)
    return result


def final_evaluation(cfg: RootConfig, run: RunDir, out: TextIO, *, progress: bool) -> None:
    """Evaluate the last checkpoint without operator; videos under <run>/videos."""

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

    def __init__(
        self,
        name: str,
        args: list[str],
        log_path: Path,
        env: dict[str, str],
        header: str = "",
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in wait()
        if header:
            self._log.write(header.encode() + b"\n")
            self._log.flush()
        try:
            self.proc = subprocess.Popen(
                args,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise

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


def actor_launch(run_root: Path, plan: ActorPlan, steps_before: int = 0) -> tuple[int, int, Path]:
    """First episode, step budget and state file of an actor's next incarnation.

    The first episode follows the highest index the actor reserved in its state file
    (never below ``plan.first_episode``); the budget is ``plan.max_steps`` less the steps
    its state file counted since this launch began (``steps_before``).
    """

    state_file = actor_state_path(run_root, plan.actor_id)
    state = read_actor_state(state_file)
    first, budget = plan.first_episode, plan.max_steps
    if state is not None:
        first = max(first, state.next_episode)
        budget = max(plan.max_steps - max(state.steps - steps_before, 0), 0)
    return first, budget, state_file


def describe_exit(returncode: int) -> str:
    """``signal 9, SIGKILL`` or ``code 1``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
        return f"signal {-returncode}, {name}"
    return f"code {returncode}"


@dataclass
class ActorSlot:
    """One local actor over its incarnations."""

    plan: ActorPlan
    child: Child | None = None
    restarts: int = 0
    restart_at: float | None = None
    """When the pending restart is due (monotonic clock); None: none pending."""
    done: bool = False
    """Exited with code 0: its work is over."""


class ActorSupervisor:
    """Starts the local actors and restarts the ones that die (see the module docstring).

    ``spawn(plan, restarts)`` starts an incarnation (``restarts``: how many came before
    it); ``on_spawn`` runs after each (the launcher rewrites processes.json).
    """

    def __init__(
        self,
        plans: list[ActorPlan],
        spawn: Callable[[ActorPlan, int], Child],
        printer: StatusPrinter,
        policy: RestartPolicy | None = None,
        on_spawn: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slots = [ActorSlot(p) for p in plans]
        self.spawn = spawn
        self.printer = printer
        self.policy = policy if policy is not None else RestartPolicy()
        self.on_spawn = on_spawn
        self.clock = clock
        self.failed = ""
        """The actor whose restarts ran out, once one has."""

    def start(self) -> None:
        for slot in self.slots:
            slot.child = self.spawn(slot.plan, 0)
        if self.on_spawn is not None:
            self.on_spawn()

    @property
    def children(self) -> list[Child]:
        """The newest incarnation of each actor."""
        return [s.child for s in self.slots if s.child is not None]

    def pending(self) -> list[ActorSlot]:
        return [s for s in self.slots if s.restart_at is not None]

    def poll(self) -> str:
        """Notice deaths, start due restarts; ``""`` while the actors work, else why not.

        Returns ``"actors finished"`` once every actor exited with code 0, or
        ``"<actor> kept dying"`` when an actor died after its last allowed restart.
        """
        spawned = False
        for slot in self.slots:
            if slot.done:
                continue
            if slot.restart_at is not None:
                if self.clock() >= slot.restart_at:
                    spawned = self._restart(slot) or spawned
                    if self.failed:
                        return f"{self.failed} kept dying"
                continue
            child = slot.child
            rc = child.proc.poll() if child is not None else None
            if child is None or rc is None:
                continue
            child.wait(0)  # closes its log
            if rc == 0:
                slot.done = True
                continue
            self._died(slot, describe_exit(rc), child.tail(RESTART_TAIL_LINES))
            if self.failed:
                return f"{self.failed} kept dying"
        if spawned and self.on_spawn is not None:
            self.on_spawn()
        if self.slots and all(s.done for s in self.slots):
            return "actors finished"
        return ""

    def _died(self, slot: ActorSlot, how: str, tail: str) -> None:
        name, limit = slot.plan.actor_id, self.policy.max_restarts
        if slot.restarts >= limit:
            self.failed = name
            self.printer.message(
                f"train: {name} died ({how}) after {slot.restarts} restart(s), the most allowed "
                f"(ACTOR_MAX_RESTARTS={limit}); stopping the run"
            )
            return
        slot.restarts += 1
        delay = self.policy.delay(slot.restarts)
        slot.restart_at = self.clock() + delay
        self.printer.message(
            f"train: {name} died ({how}); restarting ({slot.restarts}/{limit}) in {delay:.1f} s"
        )
        if tail.strip():
            log = slot.child.log_path if slot.child is not None else ""
            self.printer.message(f"train: last lines of {log}:\n{tail}")

    def _restart(self, slot: ActorSlot) -> bool:
        slot.restart_at = None
        try:
            slot.child = self.spawn(slot.plan, slot.restarts)
        except OSError as exc:
            slot.child = None
            self._died(slot, f"could not start: {exc}", "")
            return False
        self.printer.message(
            f"train: {slot.plan.actor_id} restarted (pid {slot.child.pid}, restart "
            f"{slot.restarts}/{self.policy.max_restarts})"
        )
        return True


def _train_processes(
    cfg: RootConfig,
    run: RunDir,
    resume: bool,
    plans: list[ActorPlan],
    printer: StatusPrinter,
    out: TextIO,
    policy: RestartPolicy | None = None,
) -> TrainResult:
    env = _child_env()
    # config.yaml holds "<redacted>" for an inline token: the children get it this way.
    env.update(secret_env(cfg))
    config = str(run.config)
    run.learner_file.unlink(missing_ok=True)
    stop = StopFlag(watch_parent=False)
    learner_args = [*_base_command(), "learner", "--config", config]
    learner_args += ["--local-actors", str(len(plans))] + (["--resume"] if resume else [])
    learner: Child | None = None
    supervisor: ActorSupervisor | None = None
    # Steps each actor's state file held before this launch: its share here is counted from it.
    steps_before: dict[str, int] = {}
    for plan in plans:
        state = read_actor_state(actor_state_path(run.root, plan.actor_id))
        steps_before[plan.actor_id] = state.steps if state is not None else 0

    def actors() -> list[Child]:
        return supervisor.children if supervisor is not None else []

    reason = ""
    with handle_signals(stop):
        try:
            learner = Child("learner", learner_args, run.logs / "learner.log", env)
            _write_pids(run, learner, [])
            info = _wait_for_learner(run, learner, stop)
            if info is not None:
                host = cfg.transport.host
                if host in ("0.0.0.0", "::", "[::]"):
                    host = "127.0.0.1"

                def spawn(plan: ActorPlan, restarts: int) -> Child:
                    before = steps_before.get(plan.actor_id, 0)
                    first, budget, state_file = actor_launch(run.root, plan, before)
                    args = [*_base_command(), "actor", "--config", config]
                    args += ["--actor-id", plan.actor_id, "--actor-index", str(plan.index)]
                    args += ["--max-steps", str(budget), "--first-episode", str(first)]
                    args += ["--state-file", str(state_file)]
                    args += ["--num-actors", str(len(plans)), "--run-id", str(info["run_id"])]
                    args += [f"--transport.host={host}", f"--transport.port={info['port']}"]
                    log_path = run.logs / f"{plan.actor_id}.log"
                    header = ""
                    if restarts:
                        header = (
                            f"--- hilrl train: restart {restarts} of {plan.actor_id}: first "
                            f"episode {first}, {budget} steps left ---"
                        )
                    return Child(plan.actor_id, args, log_path, env, header)

                assert learner is not None
                started = learner
                supervisor = ActorSupervisor(
                    plans,
                    spawn,
                    printer,
                    policy,
                    on_spawn=lambda: _write_pids(run, started, actors()),
                )
                supervisor.start()
                printer.message(
                    f"train: learner pid {learner.pid} on port {info['port']}, "
                    f"{len(actors())} actor(s); logs in {run.logs}"
                )
            reason = _monitor(learner, supervisor, stop, printer)
        except TimeoutError as exc:
            reason = "learner did not start"
            printer.message(f"train: {exc}")
        except KeyboardInterrupt:
            reason = "interrupted twice: killed"
            for child in [*actors(), *([learner] if learner else [])]:
                child.kill()
        finally:
            try:
                done = reason == "actors finished" and all(a.proc.returncode == 0 for a in actors())
                grace = cfg.train.shutdown_timeout_s if done else 0.0
                _shutdown(actors(), learner, cfg.train.shutdown_timeout_s, printer, grace)
            except KeyboardInterrupt:
                for child in [*actors(), *([learner] if learner else [])]:
                    child.kill()
    return _result(run, reason, learner, supervisor, printer)


def _monitor(
    learner: Child, supervisor: ActorSupervisor | None, stop: StopFlag, printer: StatusPrinter
) -> str:
    """Watch the children until the run ends (restarting dead actors); returns why."""
    while True:
        printer.tick()
        if stop.is_set():
            return "interrupted"
        if not learner.alive():
            return "learner exited"
        if supervisor is not None:
            why = supervisor.poll()
            if why:
                return why
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
    run: RunDir,
    reason: str,
    learner: Child | None,
    supervisor: ActorSupervisor | None,
    printer: StatusPrinter,
) -> TrainResult:
    failed = []
    slots = supervisor.slots if supervisor is not None else []
    waiting = {s.plan.actor_id for s in slots if s.restart_at is not None}
    actors = [s.child for s in slots if s.child is not None]
    for child in [*([learner] if learner else []), *actors]:
        rc = child.proc.returncode
        if child.name in waiting:
            printer.message(
                f"train: {child.name} had died ({describe_exit(rc or 0)}) and was waiting for "
                "its restart when the run ended"
            )
            continue
        if rc not in (0, None):
            failed.append(child)
            printer.message(
                f"train: {child.name} exited with code {rc}; last lines of {child.log_path}:"
            )
            printer.message(child.tail())
    restarted = [f"{s.plan.actor_id} {s.restarts}x" for s in slots if s.restarts]
    if restarted:
        printer.message("train: actor restarts: " + ", ".join(restarted))
    if reason.startswith("interrupted"):
        return TrainResult(130, reason, run.root)
    bad = failed or reason == "learner did not start" or reason.endswith("kept dying")
    return TrainResult(1 if bad else 0, reason, run.root)


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

    reason = failure = ""
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
        except LearnerFailed as failed:
            failure, reason = str(failed), "training failed"
        finally:
            stop.set(stop.reason or "learner stopped")
            for t in threads:
                t.join(timeout=cfg.train.shutdown_timeout_s)
            done.set()
            ticker.join(timeout=5.0)
    for actor_id, exc in errors:
        printer.message(f"train: {actor_id} failed: {type(exc).__name__}: {exc}")
    if failure:
        printer.message(f"train: {failure}")
        return TrainResult(1, reason, run.root)
    if reason.startswith("signal"):
        return TrainResult(130, "interrupted", run.root)
    return TrainResult(1 if errors else 0, reason, run.root)


def _remove_spools(cfg: RootConfig, run: RunDir, out: TextIO) -> None:
    """After a clean end: the actors' spools of this run are of no use to anyone any more.

    The learner's final checkpoint holds what it received; what is left are copies of
    that and messages past the run's end. Spools of other runs are never touched.
    """
    if not cfg.transport.spool_dir:
        return
    removed = remove_run_spools(Path(cfg.transport.spool_dir).expanduser(), run.run_id())
    if removed:
        messages = sum(r.messages for r in removed)
        out.write(
            f"train: removed this run's actor spools ({len(removed)} folders, {messages} "
            "messages the final checkpoint made unnecessary)\n"
        )


def _tick_until(printer: StatusPrinter, done: threading.Event) -> None:
    while not done.wait(POLL_S):
        printer.tick()


# ---------------------------------------------------------------------------- the end


def print_summary(run: RunDir, total_env_steps: int, wall_s: float, out: TextIO) -> None:
    """Episodes, success rates, env steps, updates and the newest checkpoint."""

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
    """PNG plots of the run (a failure is reported, never fails the run)."""
    try:
        written = plot_run(run.root)
    except Exception as exc:  # plots are a convenience: report, never fail the run
        out.write(f"train: plots failed: {type(exc).__name__}: {exc}\n")
        return
    if written:
        out.write(f"train: plots in {run.plots}\n")
