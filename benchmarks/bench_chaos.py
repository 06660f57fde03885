"""Exactly-once delivery under chaos: SIGKILLed actors and learner, a link that freezes.

Run: .venv/bin/python benchmarks/bench_chaos.py [--minutes 10] [--seed 0] [--keep]
     (fast check: --minutes 0.5 --chaos-interval 3 --freeze-max 4; see --help)

Real processes on hilrl's real gRPC transport (benchmarks/chaos_procs.py): one learner
(a LearnerServer whose "replay" holds the key of every transition delivered; it
checkpoints replay + transport state every ``--checkpoint-s`` under ``ingest_paused()``,
fsync + rename, then ``mark_durable``, and restores that checkpoint at start) and
``--actors`` actors (ActorClient, spool fsynced at every write, one message in memory),
each putting batches of unique keys (actor, episode, frame), logging them to put.log
before ``put_transitions`` and to received.log once ``flush()`` returned True. The actors
reach the learner through a TCP proxy on loopback that this driver can freeze.

For ``--minutes`` the driver, at random moments (exponential gaps, mean
``--chaos-interval`` s, seeded), does one of: SIGKILL an actor (restarted after a random
delay; it resumes from its spool and numbers above its put.log), SIGKILL the learner
(restarted after a random delay on the same port; it restores its checkpoint) or freeze
the link for ``--freeze-min``..``--freeze-max`` s (no byte moves either way, nothing is
closed). Kinds come from a shuffled bag (2 actor kills : 1 learner kill : 1 freeze), so
every kind happens within the first four events. Events may overlap (a kill while the
link is frozen); such recoveries are marked. Recovery time: from the restart / the
unfreeze until the received.log of every affected actor (the killed one; all of them for
a learner kill or a freeze) grows again.

Then it settles: the link is unfrozen, dead processes restarted, every actor stops
producing, flushes, waits until the learner confirmed a checkpoint holding everything
(``wait_durable``), closes; the learner takes a last checkpoint and stops. From that
checkpoint and the logs:

* produced: keys put (put.log); confirmed: keys whose flush returned True (received.log);
* lost: confirmed keys missing from the final replay (must be 0);
* duplicated: replay entries beyond the first of their key (must be 0);
* unconfirmed: produced, never confirmed (put just before an actor was killed), and how
  many of those still arrived (sent before the kill, or resent from the spool);
* phantom: replay keys nobody produced (must be 0);
* learner / actor restarts, link freezes, the longest recovery, the learner's peak RSS
  (VmHWM, the maximum over its incarnations).

Double faults: by default events overlap, so an actor may be killed while the learner is
down or before its next checkpoint. That exposes a limit of the transport: an actor keeps
its newest ``memory_backlog_messages`` payloads (here 1) only in memory, including the copy
of a message the learner received but has not checkpointed yet; SIGKILL the actor, then
restore the learner to a checkpoint older than that message, and the message is gone
(the restarted actor even reuses its sequence number, so the learner counts nothing
missing). The run then reports it as lost and names the batches and the events around
them. ``--serial`` runs one fault at a time (the next one only after the last recovered
and two checkpoints passed), where every confirmed transition must arrive.

The proxy refuses connections while the learner is down with a reset (``--proxy-refuse
reset``, what a closed port answers). ``--proxy-refuse close`` closes them instead (FIN,
as ``ssh -L`` or docker-proxy do): the actor's TLS diagnosis then takes the closed
connection for a TLS learner, and the actor stops with a fatal LearnerUnreachable (counted
as an unexpected exit; the driver restarts it).

Exit status 1 when lost, duplicated or phantom is above 0, or an actor could not settle
(its data never became durable); 2 when the run itself failed (a child did not start).
It ends with one JSON line of the figures. Child logs, spools, logs and the checkpoint
live in a temporary folder, kept (and named) on failure or with ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from chaos_procs import FreezableProxy, parse_log, read_json  # noqa: E402

KINDS_BAG = ("actor_kill", "actor_kill", "learner_kill", "freeze")
POLL_S = 0.1
KEY_ACTOR = 10**12
KEY_EPISODE = 1000


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class SetupError(RuntimeError):
    """The run could not be set up (a child did not start): no verdict on delivery."""


# ------------------------------------------------------------------ child processes


@dataclass
class Child:
    """One learner or actor: its command, folder, log file and current process."""

    name: str
    argv: list[str]
    folder: Path
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    down_since: float | None = None
    """Killed (or dead) and not restarted yet."""
    logs: list[Path] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.incarnation += 1
        log_path = self.log_dir / f"{self.name}.{self.incarnation}.log"
        self.logs.append(log_path)
        env = {**os.environ, "CHAOS_PARENT_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C reaches the driver only; it cleans up
            )
        self.down_since = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)

    def terminate(self, timeout_s: float) -> int | None:
        """SIGTERM, wait; SIGKILL after ``timeout_s``. The exit code, None if it had to be killed."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


@dataclass
class Event:
    kind: str
    target: str
    at: float
    """Seconds since the chaos began."""
    wall: float
    delay_s: float
    """Restart delay (kills) or freeze length."""
    resume_at: float | None = None
    """The restart / unfreeze (seconds since the chaos began)."""
    recovered_at: float | None = None
    watch: dict[str, int] = field(default_factory=dict)
    """Actors still to show progress -> their received.log size at resume_at."""
    progressed_at: float | None = None
    """When the last watched actor showed progress (actors killed meanwhile drop out)."""
    state: str = "pending"
    """pending, recovered, interrupted (its actor was killed again first), timeout, unfinished."""
    overlapped: bool = False

    @property
    def recovery_s(self) -> float | None:
        if self.recovered_at is None or self.resume_at is None:
            return None
        return self.recovered_at - self.resume_at


# ---------------------------------------------------------------------------- driver


class ChaosDriver:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rng = random.Random(args.seed)
        self.bag: list[str] = []
        self.learner_port = free_port()
        self.proxy = FreezableProxy(self.learner_port, refuse=args.proxy_refuse)
        logs = workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        procs = [sys.executable, str(HERE / "chaos_procs.py")]
        self.learner = Child(
            "learner",
            [
                *procs,
                "learner",
                "--port",
                str(self.learner_port),
                "--dir",
                str(workdir / "learner"),
                "--checkpoint-s",
                str(args.checkpoint_s),
            ],
            workdir / "learner",
            logs,
        )
        self.actors = {
            f"chaos-{i}": Child(
                f"chaos-{i}",
                [
                    *procs,
                    "actor",
                    "--port",
                    str(self.proxy.port),
                    "--actor-id",
                    f"chaos-{i}",
                    "--dir",
                    str(workdir / f"chaos-{i}"),
                    "--batch",
                    str(args.batch),
                    "--pause-s",
                    str(args.pause_s),
                    "--settle-timeout",
                    str(args.settle_timeout),
                    "--seed",
                    str(args.seed * 100 + i),
                ],
                workdir / f"chaos-{i}",
                logs,
            )
            for i in range(args.actors)
        }
        self.t0, self.t0_wall = time.monotonic(), time.time()
        self.events: list[Event] = []
        self.actions: list[tuple[float, str, str]] = []
        """(due, what, target): restarts and unfreezes waiting for their moment."""
        self.learner_peaks: dict[int, int] = {}
        """Learner incarnation -> its peak RSS (KiB) as last reported."""
        self.learner_status: dict[int, dict[str, Any]] = {}
        self.actor_status: dict[tuple[str, int], dict[str, Any]] = {}
        self.unexpected: list[str] = []
        self.frozen_s = 0.0
        self._last_learner_read = 0.0

    # ------------------------------------------------------------------ helpers

    def now(self) -> float:
        return time.monotonic() - self.t0

    def received_size(self, aid: str) -> int:
        return file_size(self.actors[aid].folder / "received.log")

    def all_children(self) -> list[Child]:
        return [self.learner, *self.actors.values()]

    def say(self, text: str) -> None:
        if self.args.verbose:
            print(f"[{self.now():7.1f} s] {text}", flush=True)

    def read_learner_status(self) -> None:
        status = read_json(self.learner.folder / "status.json")
        if (
            status is None
            or self.learner.proc is None
            or status.get("pid") != self.learner.proc.pid
        ):
            return
        inc = self.learner.incarnation
        self.learner_status[inc] = status
        self.learner_peaks[inc] = max(self.learner_peaks.get(inc, 0), int(status["vmhwm_kib"]))

    def read_actor_status(self, aid: str) -> None:
        child = self.actors[aid]
        status = read_json(child.folder / "status.json")
        if status is not None and child.proc is not None and status.get("pid") == child.proc.pid:
            self.actor_status[(aid, child.incarnation)] = status

    # ------------------------------------------------------------------ startup

    def start(self) -> None:
        self.learner.start()
        self.wait_for(
            lambda: self.learner_ready(),
            self.args.start_timeout,
            "the learner to listen",
            [self.learner],
        )
        for child in self.actors.values():
            child.start()
        self.wait_for(
            lambda: all(self.received_size(a) > 0 for a in self.actors),
            self.args.start_timeout,
            "every actor's first confirmed batch",
            self.all_children(),
        )

    def learner_ready(self) -> bool:
        status = read_json(self.learner.folder / "status.json")
        return bool(
            status and self.learner.proc is not None and status.get("pid") == self.learner.proc.pid
        )

    def wait_for(self, predicate: Any, timeout_s: float, what: str, children: list[Child]) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            for child in children:
                if child.proc is not None and child.proc.poll() is not None:
                    raise SetupError(
                        f"{child.name} exited with {child.proc.returncode} while waiting for "
                        f"{what}; its log: {child.logs[-1]}"
                    )
            if time.monotonic() > deadline:
                raise SetupError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(POLL_S)

    # ------------------------------------------------------------------- chaos

    def next_kind(self) -> str | None:
        """The next feasible kind from the shuffled bag (None when nothing is feasible)."""
        for _ in range(2 * len(KINDS_BAG)):
            if not self.bag:
                self.bag = list(KINDS_BAG)
                self.rng.shuffle(self.bag)
            kind = self.bag.pop()
            if kind == "actor_kill" and any(c.alive for c in self.actors.values()):
                return kind
            if kind == "learner_kill" and self.learner.alive:
                return kind
            if kind == "freeze" and not self.proxy.frozen:
                return kind
        return None

    def fire(self) -> None:
        kind = self.next_kind()
        if kind is None:
            return
        a = self.args
        pending = [e for e in self.events if e.state == "pending"]
        for e in pending:
            e.overlapped = True
        now = self.now()
        if kind == "actor_kill":
            aid = self.rng.choice(sorted(k for k, c in self.actors.items() if c.alive))
            delay = self.rng.uniform(a.restart_delay_min, a.restart_delay_max)
            self.read_actor_status(aid)
            self.actors[aid].kill()
            self.actors[aid].down_since = now
            # Events waiting on this actor will not see it progress before it restarts.
            for e in pending:
                if aid in e.watch and e.kind != "actor_kill":
                    del e.watch[aid]
                elif e.kind == "actor_kill" and e.target == aid:
                    e.state = "interrupted"
            event = Event(kind, aid, now, time.time(), delay, overlapped=bool(pending))
            self.actions.append((now + delay, "restart", aid))
            self.say(f"SIGKILL {aid}; restart in {delay:.1f} s")
        elif kind == "learner_kill":
            delay = self.rng.uniform(a.restart_delay_min, a.restart_delay_max)
            self.read_learner_status()
            self.learner.kill()
            self.learner.down_since = now
            event = Event(kind, "learner", now, time.time(), delay, overlapped=bool(pending))
            self.actions.append((now + delay, "restart", "learner"))
            self.say(f"SIGKILL learner; restart in {delay:.1f} s")
        else:
            delay = self.rng.uniform(a.freeze_min, a.freeze_max)
            self.proxy.freeze()
            event = Event(kind, "link", now, time.time(), delay, overlapped=bool(pending))
            self.actions.append((now + delay, "unfreeze", "link"))
            self.say(f"freeze the link for {delay:.1f} s")
        self.events.append(event)

    def resume(self, what: str, target: str) -> None:
        """Restart a killed child / unfreeze the link, and start timing the recovery."""
        now = self.now()
        if what == "unfreeze":
            self.proxy.unfreeze()
            event = next(e for e in reversed(self.events) if e.kind == "freeze")
            self.frozen_s += now - event.at
            self.say("unfreeze the link")
        elif target == "learner":
            self.learner.start()
            event = next(e for e in reversed(self.events) if e.kind == "learner_kill")
            self.say(f"restart the learner (incarnation {self.learner.incarnation})")
        else:
            self.actors[target].start()
            event = next(
                e for e in reversed(self.events) if e.kind == "actor_kill" and e.target == target
            )
            self.say(f"restart {target} (incarnation {self.actors[target].incarnation})")
        event.resume_at = now
        if event.state != "pending":
            return
        if event.kind == "actor_kill":
            watched = [target]
        else:
            watched = [aid for aid, c in self.actors.items() if c.down_since is None]
        event.watch = {aid: self.received_size(aid) for aid in watched}

    def poll(self) -> None:
        now = self.now()
        # Restarts and unfreezes that are due.
        due = sorted(x for x in self.actions if x[0] <= now)
        self.actions = [x for x in self.actions if x[0] > now]
        for _, what, target in due:
            self.resume(what, target)
        # Children that died without being killed: a bug (restarted, and reported).
        for child in self.all_children():
            if (
                child.down_since is None
                and child.proc is not None
                and child.proc.poll() is not None
            ):
                rc = child.proc.returncode
                self.unexpected.append(
                    f"{child.name} (incarnation {child.incarnation}) exited with {rc} at "
                    f"{now:.1f} s; log {child.logs[-1]}"
                )
                print(f"!! {self.unexpected[-1]}; restarting it", flush=True)
                child.start()
        # Recoveries.
        for e in self.events:
            if e.state != "pending" or e.resume_at is None:
                continue
            for aid in list(e.watch):
                if self.received_size(aid) > e.watch[aid]:
                    del e.watch[aid]
                    e.progressed_at = now
            if not e.watch and e.progressed_at is None:
                e.state = "interrupted"  # every watched actor was killed before it progressed
            elif not e.watch:
                e.state, e.recovered_at = "recovered", e.progressed_at
                self.say(f"{e.kind} {e.target}: recovered in {e.recovery_s:.1f} s")
            elif now - e.resume_at > self.args.recovery_timeout:
                e.state = "timeout"
                print(
                    f"!! {e.kind} {e.target} at {e.at:.1f} s: no progress of "
                    f"{sorted(e.watch)} within {self.args.recovery_timeout:.0f} s",
                    flush=True,
                )
        if time.monotonic() - self._last_learner_read >= 0.5:
            self._last_learner_read = time.monotonic()
            self.read_learner_status()

    def quiet(self) -> bool:
        """--serial: the last event recovered, and the learner has checkpointed twice since."""
        if self.actions or any(e.state == "pending" for e in self.events):
            return False
        settled = max((e.recovered_at or e.at for e in self.events), default=0.0)
        return self.now() >= settled + 2 * self.args.checkpoint_s

    def run_chaos(self) -> None:
        self.t0, self.t0_wall = time.monotonic(), time.time()
        end = self.args.minutes * 60.0
        next_event = self.rng.expovariate(1.0 / self.args.chaos_interval)
        while self.now() < end:
            if self.now() >= next_event and (not self.args.serial or self.quiet()):
                self.fire()
                next_event = self.now() + self.rng.expovariate(1.0 / self.args.chaos_interval)
            self.poll()
            time.sleep(POLL_S)
        self.chaos_s = self.now()

    # ------------------------------------------------------------------- settle

    def settle(self) -> dict[str, Any]:
        """Stop the chaos, then stop every actor cleanly and the learner last."""
        for _, what, target in sorted(self.actions):
            self.resume(what, target)
        self.actions = []
        # Let pending recoveries finish (bounded), so their times are measured too.
        deadline = time.monotonic() + min(30.0, self.args.recovery_timeout)
        while any(e.state == "pending" for e in self.events) and time.monotonic() < deadline:
            self.poll()
            time.sleep(POLL_S)
        for e in self.events:
            if e.state == "pending":
                e.state = "unfinished"
        settle_t0 = time.monotonic()
        for child in self.actors.values():
            if child.proc is not None and child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)
        actor_rc: dict[str, int | None] = {}
        for aid, child in self.actors.items():
            left = max(1.0, 2 * self.args.settle_timeout + 20 - (time.monotonic() - settle_t0))
            actor_rc[aid] = child.terminate(left)
            self.read_actor_status(aid)
        self.read_learner_status()
        learner_rc = self.learner.terminate(60.0)
        self.read_learner_status()
        self.proxy.close()
        finals = {
            aid: (self.actor_status.get((aid, c.incarnation)) or {}).get("final") or {}
            for aid, c in self.actors.items()
        }
        return {
            "settle_s": time.monotonic() - settle_t0,
            "actor_rc": actor_rc,
            "learner_rc": learner_rc,
            "finals": finals,
        }

    def cleanup(self) -> None:
        for child in self.all_children():
            child.kill()
        with contextlib.suppress(Exception):
            self.proxy.close()


# -------------------------------------------------------------------------- verdict


def expand(rows: list[tuple[int, int, int, float]], actor: int) -> np.ndarray:
    """Key codes of every transition of put.log / received.log rows."""
    if not rows:
        return np.zeros(0, np.int64)
    starts = np.array([actor * KEY_ACTOR + ep * KEY_EPISODE + f0 for ep, f0, _, _ in rows])
    counts = np.array([n for _, _, n, _ in rows])
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + offsets


def tally(driver: ChaosDriver) -> dict[str, Any]:
    """Compare the final checkpoint's replay with what the actors produced and confirmed."""
    path = driver.learner.folder / "checkpoint.npz"
    with np.load(path) as saved:
        replay = np.asarray(saved["replay"], np.int64).reshape(-1, 3)
    codes = replay[:, 0] * KEY_ACTOR + replay[:, 1] * KEY_EPISODE + replay[:, 2]
    uniq, counts = np.unique(codes, return_counts=True)
    produced_parts, confirmed_parts = [], []
    confirmed_at: dict[int, float] = {}
    for aid, child in driver.actors.items():
        index = int(aid.rsplit("-", 1)[1])
        produced_parts.append(expand(parse_log(child.folder / "put.log"), index))
        rows = parse_log(child.folder / "received.log")
        confirmed_parts.append(expand(rows, index))
        for ep, f0, _, t in rows:
            confirmed_at[index * KEY_ACTOR + ep * KEY_EPISODE + f0] = t
    produced = np.concatenate(produced_parts)
    confirmed = np.concatenate(confirmed_parts)
    produced_set, confirmed_set = np.unique(produced), np.unique(confirmed)
    lost = np.setdiff1d(confirmed_set, uniq)
    unconfirmed = np.setdiff1d(produced_set, confirmed_set)
    return {
        "produced": len(produced),
        "produced_twice": int(len(produced) - len(produced_set)),
        "confirmed": len(confirmed),
        "confirmed_twice": int(len(confirmed) - len(confirmed_set)),
        "in_replay": len(codes),
        "lost": len(lost),
        "duplicated": int((counts - 1).sum()),
        "duplicated_keys": int((counts > 1).sum()),
        "unconfirmed": len(unconfirmed),
        "unconfirmed_arrived": len(np.intersect1d(unconfirmed, uniq)),
        "phantom": len(np.setdiff1d(uniq, produced_set)),
        "_lost_keys": lost,
        "_dup_keys": uniq[counts > 1],
        "_confirmed_at": confirmed_at,
    }


def describe_key(code: int) -> str:
    actor, rest = divmod(int(code), KEY_ACTOR)
    ep, frame = divmod(rest, KEY_EPISODE)
    return f"chaos-{actor} episode {ep} frame {frame}"


def explain(driver: ChaosDriver, t: dict[str, Any]) -> None:
    """Name the first lost / duplicated batches and the chaos events that followed them."""
    batches: dict[int, float] = t["_confirmed_at"]
    for label, keys in (("lost", t["_lost_keys"]), ("duplicated", t["_dup_keys"])):
        if not len(keys):
            continue
        print(f"{label}: {len(keys)} transitions; the first batches and the events around them:")
        seen: set[int] = set()
        for code in keys:
            start = int(code) - (int(code) % KEY_EPISODE) % driver.args.batch
            if start in seen:
                continue
            seen.add(start)
            actor = f"chaos-{start // KEY_ACTOR}"
            when = batches.get(start)
            if when is None:
                print(f"  {describe_key(start)}: never confirmed")
                continue
            at = when - driver.t0_wall
            print(f"  {describe_key(start)}: confirmed (flush True) at {at:.2f} s")
            near = [
                e
                for e in driver.events
                if at - 2 * driver.args.checkpoint_s - 1 <= e.at <= at + 15
                and (e.kind != "actor_kill" or e.target == actor)
            ]
            for e in near:
                back = f"{e.resume_at:7.2f} s" if e.resume_at is not None else "   never"
                print(f"    {e.at:7.2f} s {e.kind:12s} {e.target:8s} until {back}")
            if len(seen) >= 8:
                break


# ------------------------------------------------------------------------------ main


def summarise(driver: ChaosDriver, settled: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    events = driver.events
    recovered = [e for e in events if e.recovery_s is not None]
    isolated = [e for e in recovered if not e.overlapped]

    def longest(es: list[Event]) -> float:
        return round(max((e.recovery_s or 0.0 for e in es), default=0.0), 2)

    finals = settled["finals"]
    last_status = {k: v for k, v in driver.actor_status.items()}
    dropped = sum(s["stats"].get("transitions_dropped", 0) for s in last_status.values())
    evicted = sum(s["stats"].get("retained_evicted", 0) for s in last_status.values())
    handshakes = sum(s["stats"].get("handshakes", 0) for s in last_status.values())
    final_learner = driver.learner_status.get(driver.learner.incarnation, {})
    missing = sum(a.get("missing", 0) for a in final_learner.get("actors", {}).values())
    settled_ok = all(f.get("durable") for f in finals.values()) and len(finals) == len(
        driver.actors
    )
    kinds = Counter(e.kind for e in events)
    out: dict[str, Any] = {
        "minutes": round(driver.chaos_s / 60.0, 2),
        "seed": driver.args.seed,
        "serial": bool(driver.args.serial),
        "actors": len(driver.actors),
        "produced": t["produced"],
        "confirmed": t["confirmed"],
        "in_replay": t["in_replay"],
        "lost": t["lost"],
        "duplicated": t["duplicated"],
        "phantom": t["phantom"],
        "unconfirmed": t["unconfirmed"],
        "unconfirmed_arrived": t["unconfirmed_arrived"],
        "transitions_per_s": round(t["confirmed"] / max(driver.chaos_s, 1e-9), 1),
        "learner_restarts": driver.learner.incarnation - 1,
        "actor_restarts": sum(c.incarnation - 1 for c in driver.actors.values()),
        "link_freezes": kinds["freeze"],
        "frozen_s": round(driver.frozen_s, 1),
        "chaos_events": len(events),
        "overlapping_events": sum(e.overlapped for e in events),
        "recoveries_timed_out": sum(e.state == "timeout" for e in events),
        "longest_recovery_s": longest(recovered),
        "longest_isolated_recovery_s": longest(isolated),
        "median_recovery_s": round(
            statistics.median([e.recovery_s or 0.0 for e in recovered]) if recovered else 0.0, 2
        ),
        **{
            f"longest_recovery_{k}_s": longest([e for e in recovered if e.kind == k])
            for k in ("actor_kill", "learner_kill", "freeze")
        },
        "learner_peak_rss_mib": round(max(driver.learner_peaks.values(), default=0) / 1024, 1),
        "learner_missing_sequences": missing,
        "actor_handshakes": handshakes,
        "transitions_dropped": dropped,
        "retained_evicted": evicted,
        "unexpected_exits": len(driver.unexpected),
        "settled": settled_ok,
        "settle_s": round(settled["settle_s"], 1),
    }
    out["ok"] = bool(
        out["lost"] == 0
        and out["duplicated"] == 0
        and out["phantom"] == 0
        and settled_ok
        and not driver.unexpected
    )
    return out


def report(driver: ChaosDriver, r: dict[str, Any]) -> None:
    print(f"events ({r['chaos_events']}, * = overlapped another event):")
    for e in driver.events:
        rec = f"{e.recovery_s:5.1f} s" if e.recovery_s is not None else e.state
        what = "down" if e.kind != "freeze" else "frozen"
        print(
            f"  {e.at:7.1f} s  {e.kind:12s} {e.target:8s} {what} {e.delay_s:4.1f} s  "
            f"recovery {rec}{' *' if e.overlapped else ''}"
        )
    rows = [
        ("transitions produced", f"{r['produced']:,}", "put by the actors (put.log)"),
        ("  confirmed", f"{r['confirmed']:,}", "flush() returned True (received.log)"),
        ("  in the replay", f"{r['in_replay']:,}", "the learner's final checkpoint"),
        ("  lost", f"{r['lost']}", "confirmed, not in the replay (must be 0)"),
        ("  duplicated", f"{r['duplicated']}", "extra copies in the replay (must be 0)"),
        ("  phantom", f"{r['phantom']}", "in the replay, never produced (must be 0)"),
        (
            "  unconfirmed",
            f"{r['unconfirmed']}",
            f"put, never confirmed (actor killed); {r['unconfirmed_arrived']} arrived anyway",
        ),
        ("throughput", f"{r['transitions_per_s']:.0f}/s", "confirmed transitions, under chaos"),
        ("learner restarts", f"{r['learner_restarts']}", "SIGKILL, restored from checkpoint"),
        ("actor restarts", f"{r['actor_restarts']}", "SIGKILL, resumed from the spool"),
        ("link freezes", f"{r['link_freezes']}", f"{r['frozen_s']:.0f} s frozen in all"),
        (
            "longest recovery",
            f"{r['longest_recovery_s']:.1f} s",
            f"median {r['median_recovery_s']:.1f} s; not overlapped "
            f"{r['longest_isolated_recovery_s']:.1f} s; actor kill "
            f"{r['longest_recovery_actor_kill_s']:.1f} s, learner kill "
            f"{r['longest_recovery_learner_kill_s']:.1f} s, freeze "
            f"{r['longest_recovery_freeze_s']:.1f} s",
        ),
        (
            "learner peak RSS",
            f"{r['learner_peak_rss_mib']:.0f} MiB",
            "VmHWM, max over incarnations",
        ),
        (
            "settled",
            "yes" if r["settled"] else "NO",
            f"every actor flushed + durable, in {r['settle_s']:.0f} s",
        ),
    ]
    for name, value, note in rows:
        print(f"{name:22s} {value:>12s}   {note}")
    if r["recoveries_timed_out"] or r["unexpected_exits"]:
        print(
            f"recoveries timed out: {r['recoveries_timed_out']}, unexpected exits: "
            f"{r['unexpected_exits']}"
        )
    for line in driver.unexpected:
        print(f"  {line}")
    if r["transitions_dropped"] or r["retained_evicted"]:
        print(
            f"actor counters: transitions_dropped {r['transitions_dropped']}, "
            f"retained_evicted {r['retained_evicted']}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the chaos phase")
    parser.add_argument("--seed", type=int, default=0, help="seed of the chaos schedule")
    parser.add_argument("--actors", type=int, default=3, help="actor processes")
    parser.add_argument(
        "--chaos-interval", type=float, default=20.0, help="mean seconds between chaos events"
    )
    parser.add_argument("--freeze-min", type=float, default=2.0, help="shortest link freeze (s)")
    parser.add_argument("--freeze-max", type=float, default=20.0, help="longest link freeze (s)")
    parser.add_argument("--restart-delay-min", type=float, default=0.2, help="s before a restart")
    parser.add_argument("--restart-delay-max", type=float, default=3.0, help="s before a restart")
    parser.add_argument(
        "--checkpoint-s", type=float, default=1.5, help="learner checkpoint (mark_durable) period"
    )
    parser.add_argument(
        "--serial",
        action="store_true",
        help="one fault at a time: the next event only after the last one recovered and "
        "two learner checkpoints passed (no double faults; see the module docstring)",
    )
    parser.add_argument("--batch", type=int, default=10, help="transitions per actor message")
    parser.add_argument("--pause-s", type=float, default=0.05, help="actor pause between batches")
    parser.add_argument(
        "--settle-timeout", type=float, default=60.0, help="final flush / wait_durable per actor"
    )
    parser.add_argument(
        "--recovery-timeout", type=float, default=120.0, help="a recovery slower than this fails"
    )
    parser.add_argument("--start-timeout", type=float, default=60.0, help="child startup limit")
    parser.add_argument(
        "--proxy-refuse",
        choices=("reset", "close"),
        default="reset",
        help="how the proxy refuses a connection while the learner is down: reset (RST, "
        "like a closed port) or close (FIN, like ssh -L / docker-proxy)",
    )
    parser.add_argument(
        "--workdir", default="", help="empty folder for the run, kept (default: a temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every event live")
    args = parser.parse_args(argv)
    if args.freeze_max < args.freeze_min or args.restart_delay_max < args.restart_delay_min:
        parser.error("a --*-max is below its --*-min")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir and Path(args.workdir).exists() and any(Path(args.workdir).iterdir()):
        print(f"--workdir {args.workdir} is not empty (an old checkpoint would be restored)")
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="hilrl-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"chaos soak: 1 learner, {args.actors} actors, {args.minutes:g} min, seed {args.seed}, "
        f"events every ~{args.chaos_interval:g} s{' (serial)' if args.serial else ''}; "
        f"{cpu_model()}, {os.cpu_count()} CPUs; folder {workdir}",
        flush=True,
    )

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    driver = ChaosDriver(args, workdir)
    keep = args.keep or bool(args.workdir)

    def child_logs() -> None:
        logs = [str(p) for c in driver.all_children() for p in c.logs]
        print("child logs:\n  " + "\n  ".join(logs), flush=True)

    def finish(result: dict[str, Any]) -> None:
        """The run folder's fate, then the JSON line (always the last line)."""
        if keep:
            print(f"run folder kept: {workdir}")
        print(json.dumps(result), flush=True)

    try:
        driver.start()
        driver.run_chaos()
        settled = driver.settle()
        tally_ = tally(driver)
        result = summarise(driver, settled, tally_)
        report(driver, result)
        explain(driver, tally_)
        if not result["ok"]:
            keep = True
            child_logs()
            for aid, rc in settled["actor_rc"].items():
                if rc != 0:
                    print(f"  {aid} ended with {rc}; final status {settled['finals'][aid]}")
            if settled["learner_rc"] != 0:
                print(f"  the learner ended with {settled['learner_rc']}")
        finish(result)
        delivery_failed = result["lost"] or result["duplicated"] or result["phantom"]
        return 1 if delivery_failed or not result["settled"] else (0 if result["ok"] else 2)
    except SetupError as exc:
        keep = True
        print(f"setup failed: {exc}", flush=True)
        child_logs()
        finish({"ok": False, "error": str(exc)})
        return 2
    except KeyboardInterrupt:
        print("interrupted; stopping every child", flush=True)
        keep = args.keep or bool(args.workdir)
        return 130
    except Exception:
        keep = True
        child_logs()
        print(f"run folder kept: {workdir}", flush=True)
        raise
    finally:
        driver.cleanup()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
