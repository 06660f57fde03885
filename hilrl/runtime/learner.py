"""The learner: ingest actor data into replay, train SAC, publish weights, checkpoint.

Run it with ``hilrl learner --config FILE [--resume]`` (``hilrl train`` starts it). The
main loop is :meth:`Learner.train`::

    publish weights (version 0, or one past the highest version ever published)
    until stopped:
        before the warm-up is reached: wait
        else: metrics = sac.update(sampler.next())        (utd_ratio critic steps)
        every train.publish_every_s: publish weights, version + 1
        every learning.checkpoint.every_steps updates: checkpoint
        every run.log_every_s: metrics/learner.jsonl + TensorBoard
    final checkpoint

Ingest runs on the transport's ingest thread (:meth:`Learner.on_transitions` adds each
actor message to the replay buffers in one call; :meth:`Learner.on_episode` writes
``metrics/episodes.jsonl``); the buffers' own locks keep ingest and the sampler's
prefetch thread apart. A checkpoint holds the ingest thread
(``endpoint.ingest_paused()``) while the replay buffers and the transport's
acknowledgement marks are saved together, so a resumed learner tells every actor
exactly where to continue.

Every actor message is checked before it touches the replay (:meth:`Learner.on_transitions`:
observation keys, shapes, dtypes, and finiteness in float32, the storage dtype); a bad
message raises ``ValueError`` (the transport rejects it and tells the actor why) and is
counted as ``ingest_rejected``.

Only real updates count: an ``sac.update`` call whose batches were all skipped (non-finite
inputs) or whose losses / values came out non-finite does not raise ``updates`` (nor the
actors' step allowance); such calls are counted (``skipped_batches``: skipped batch
chunks, ``nonfinite_losses``: calls with a non-finite metric) in metrics/learner.jsonl,
TensorBoard and the status line. After ``train.max_consecutive_skips`` of them in a row
the learner stops with :class:`LearnerFailed` (``hilrl learner`` exits 1), after a final
checkpoint only when the networks are still finite: a checkpoint, periodic or final, is
never written with non-finite weights, and such weights are never published.

Non-finite metric values are kept (the interval's mean becomes nan / inf, counted in
``nonfinite/<key>``); metrics/learner.jsonl writes them as the strings ``"nan"``,
``"inf"``, ``"-inf"`` (valid JSON; :mod:`hilrl.runtime.plots` skips non-numbers) and
TensorBoard gets the real value.

A resumed learner does not write an episode twice: actors resend the episodes above the
checkpoint's acknowledgement marks, and those already in ``metrics/episodes.jsonl`` (same
actor, episode index, eval flag and policy version) are skipped; ``counters.episodes``
then equals the distinct training episodes of that file.

The learner stops on SIGINT / SIGTERM, after ``train.max_runtime_s``, or once
``run.total_env_steps`` have arrived (it then waits up to :data:`DRAIN_S` for the actors
to finish sending), always with a final checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np
import torch

from hilrl.config.loader import ConfigError, save_config
from hilrl.config.root import RootConfig
from hilrl.data.lerobot import DatasetError
from hilrl.devices import resolve_device
from hilrl.runtime.checkpoint import (
    latest_checkpoint,
    read_meta,
    remove_stale_temps,
    restore_checkpoint,
    save_checkpoint,
)
from hilrl.runtime.demos import demo_path, ensure_demos
from hilrl.runtime.run_dir import JsonlWriter, RunDir, prepare_run, read_jsonl, write_json
from hilrl.runtime.scalars import ScalarLogger
from hilrl.runtime.specs import specs_from_config
from hilrl.runtime.stopping import StopFlag
from hilrl.runtime.trainers import make_trainer
from hilrl.transport import InProcLearner, LearnerServer
from hilrl.types import EpisodeStats, LearnerProgress, StepResult, Transition

log = logging.getLogger("hilrl.runtime.learner")

DRAIN_S = 30.0
"""After the last env step arrived: how long to wait for the actors to disconnect."""
WARMUP_POLL_S = 0.05


class LearnerFailed(RuntimeError):
    """Training cannot go on (e.g. every update skipped or non-finite); one-line message."""


EpisodeKey = tuple[str, int, bool, int]
"""(actor id, episode index, eval, policy version) of one episode record."""


class Endpoint(Protocol):
    """What the learner needs of a transport (LearnerServer or InProcLearner)."""

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def publish_weights(
        self,
        weights: Mapping[str, np.ndarray],
        version: int,
        progress: LearnerProgress | None = None,
    ) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def ingest_paused(self) -> contextlib.AbstractContextManager[None]: ...

    def wait_idle(self, timeout_s: float) -> bool: ...

    def actor_stats(self) -> Mapping[str, Any]: ...


@dataclass
class Counters:
    """Training progress, saved in every checkpoint's meta.json (``counters``)."""

    updates: int = 0
    env_steps: int = 0
    episodes: int = 0
    weights_version: int = -1
    elapsed_s: float = 0.0
    actor_episodes: dict[str, int] = field(default_factory=dict)
    """Next episode index of each actor (a resumed actor continues its seeds)."""
    demo_transitions: int = 0
    skipped_batches: int = 0
    """Batch chunks ``SAC.update`` skipped for non-finite inputs."""
    nonfinite_losses: int = 0
    """Update calls whose losses / values (any metric) came out non-finite."""
    nonfinite_metrics: int = 0
    """Non-finite metric values (all keys)."""
    ingest_rejected: int = 0
    """Actor messages refused by :meth:`Learner.on_transitions`."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Counters:
        episodes = data.get("actor_episodes") or {}
        return cls(
            updates=int(data.get("updates", 0)),
            env_steps=int(data.get("env_steps", 0)),
            episodes=int(data.get("episodes", 0)),
            weights_version=int(data.get("weights_version", -1)),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            actor_episodes={str(k): int(v) for k, v in dict(episodes).items()},
            demo_transitions=int(data.get("demo_transitions", 0)),
            skipped_batches=int(data.get("skipped_batches", 0)),
            nonfinite_losses=int(data.get("nonfinite_losses", 0)),
            nonfinite_metrics=int(data.get("nonfinite_metrics", 0)),
            ingest_rejected=int(data.get("ingest_rejected", 0)),
        )


class MetricsAverage:
    """Mean of each SAC metric over the updates of one log interval.

    Non-finite values are kept (a diverged critic must show, not vanish): the mean
    becomes nan / inf as the data says, and :attr:`nonfinite` counts them per key.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self.nonfinite: dict[str, int] = {}
        """Non-finite values per key since the last :meth:`take`."""

    def add(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            v = float(v)
            self._sums[k] = self._sums.get(k, 0.0) + v
            self._counts[k] = self._counts.get(k, 0) + 1
            if not math.isfinite(v):
                self.nonfinite[k] = self.nonfinite.get(k, 0) + 1

    def take(self) -> dict[str, float]:
        """The means, and a fresh interval (:attr:`nonfinite` is cleared too)."""
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        self.nonfinite = {}
        return out

    def take_with_counts(self) -> tuple[dict[str, float], dict[str, int]]:
        """:meth:`take` and the interval's non-finite counts per key."""
        counts = self.nonfinite
        return self.take(), counts


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as the string ``"nan"``, ``"inf"`` or ``"-inf"``.

    Keeps metrics/*.jsonl valid JSON (``json`` would write the non-standard ``NaN``);
    ``float("nan")`` / ``float("inf")`` read the strings back.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def nonfinite_tensors(module_state: Mapping[str, Any]) -> list[str]:
    """Names of the floating tensors of a ``{"tensors": ...}`` state that hold nan / inf."""
    tensors = module_state.get("tensors", {})
    assert isinstance(tensors, Mapping)
    by_device: dict[torch.device, list[str]] = {}
    for k, t in tensors.items():
        if torch.is_tensor(t) and t.is_floating_point():
            by_device.setdefault(t.device, []).append(k)
    bad = []
    for names in by_device.values():  # one host sync per device
        flags = torch.stack([torch.isfinite(tensors[k]).all() for k in names]).tolist()
        bad += [k for k, ok in zip(names, flags) if not ok]
    return bad


def repair_jsonl(path: Path) -> str:
    """End ``path`` on a complete line: a torn last line (a crash mid-write) is dropped,
    or completed when it is whole JSON without its newline. Returns what was done ("")."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            if size == 0:
                return ""
            f.seek(max(size - 1, 0))
            if f.read(1) == b"\n":
                return ""
            f.seek(0)
            data = f.read()
    except OSError:
        return ""
    start = data.rfind(b"\n") + 1
    try:
        whole = isinstance(json.loads(data[start:]), dict)
    except ValueError:
        whole = False
    with open(path, "r+b") as f:
        if whole:
            f.seek(0, 2)
            f.write(b"\n")
            return f"completed the last line of {path}"
        f.truncate(start)
    return f"dropped a torn last line of {path} ({len(data) - start} bytes)"


def episode_key(record: Mapping[str, Any]) -> EpisodeKey | None:
    """The :data:`EpisodeKey` of a metrics/episodes.jsonl record (None: not one)."""
    try:
        return (
            str(record["actor_id"]),
            int(record["episode_index"]),
            bool(record.get("eval", False)),
            int(record.get("policy_version", -1)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def learner_torch_threads(cfg: RootConfig, local_actors: int) -> int:
    """``train.learner_torch_threads``, or 1 when actors share the machine (0: torch default).

    On a shared CPU the OpenMP barriers of extra threads cost more than they bring
    (measured ~40x slower tiny updates with 2 threads on 2 busy cores).
    """
    if cfg.train.learner_torch_threads > 0:
        return cfg.train.learner_torch_threads
    return 1 if local_actors > 0 else 0


class Learner:
    """SAC, replay and sampler of one run, its counters, logs and checkpoints."""

    def __init__(
        self,
        cfg: RootConfig,
        *,
        resume: bool = False,
        local_actors: int = 0,
        out: TextIO | None = None,
    ) -> None:
        self.cfg = cfg
        self.out = out if out is not None else sys.stderr
        self._remove_stale_temps()
        self.run = prepare_run(cfg.run.output_dir, resume)
        threads = learner_torch_threads(cfg, local_actors)
        if threads:
            torch.set_num_threads(threads)
        if cfg.learning.sac.retain_freed_memory:
            # process-wide, so the learner process sets it, not a constructor
            from hilrl.algorithms.cpu_memory import retain_freed_memory  # start-up: ctypes/libc

            retain_freed_memory()
        if not resume:
            torch.manual_seed(cfg.run.seed)
        self.obs_spec, self.act_spec = specs_from_config(cfg)
        device = resolve_device(cfg.learning.device)
        self.trainer = make_trainer(cfg, self.obs_spec, self.act_spec, device)
        """The algorithm with its data; nothing below knows which algorithm it is."""
        self.arch_hash = self.trainer.arch_hash
        self.run_id = self.run.run_id()
        self.counters = Counters()
        self._transport_state: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        self._bad_in_row = 0
        """Update calls in a row that made no real update (skipped or non-finite)."""
        self._skipped_in_row = 0
        self._withheld_version = False
        restored_replay = self._restore() if resume else False
        if not restored_replay:
            self._load_demos()
        save_config(cfg, self.run.config)
        for path in (self.run.episodes_jsonl, self.run.learner_jsonl):
            repaired = repair_jsonl(path)
            if repaired:
                self._say(repaired)
        self._written_episodes = self._read_episode_keys()
        """Episodes metrics/episodes.jsonl held at start-up: a resent one is not written again."""
        self.episodes_log = JsonlWriter(self.run.episodes_jsonl)
        self.learner_log = JsonlWriter(self.run.learner_jsonl)

        self.tb = ScalarLogger(self.run.tensorboard, cfg.run, cfg, name=self.run.root.name)
        self.last_checkpoint: Path | None = None
        self._wrote_learner_file = False

    # ------------------------------------------------------------------ setup

    def _remove_stale_temps(self) -> None:
        """Remove the folders crashed checkpoint saves left (before anything is restored)."""

        removed = remove_stale_temps(RunDir.of(self.cfg.run.output_dir).checkpoints)
        if removed:
            self._say(
                f"removed {len(removed)} folder(s) left by interrupted checkpoint saves: "
                + ", ".join(p.name for p in removed)
            )

    def _read_episode_keys(self) -> set[EpisodeKey]:
        """Keys of the episodes already in metrics/episodes.jsonl (a resumed run's).

        ``counters.episodes`` and ``actor_episodes`` come from the checkpoint, which may
        predate episodes written after it; both are raised to what the file holds (every
        counted episode was written, so the file's distinct training episodes are the
        true count), and the resent copies of those episodes are then skipped.
        """
        records, _ = read_jsonl(self.run.episodes_jsonl)
        keys = {k for k in map(episode_key, records) if k is not None}
        train = [k for k in keys if not k[2]]
        with self._lock:
            self.counters.episodes = max(self.counters.episodes, len(train))
            nxt = self.counters.actor_episodes
            for actor_id, index, _, _ in train:
                nxt[actor_id] = max(nxt.get(actor_id, 0), index + 1)
        return keys

    def _restore(self) -> bool:
        """Load the newest complete checkpoint; True when it held the replay buffers."""

        path = latest_checkpoint(self.run.checkpoints)
        if path is None:
            raise ConfigError("--resume", str(self.run.checkpoints), "no complete checkpoint there")
        has_replay = "replay" in read_meta(path).get("parts", [])
        info = restore_checkpoint(
            path,
            self.trainer.algorithm,
            buffers=self.trainer.replay if has_replay else None,
            sampler=self.trainer.sampler,
        )
        self.counters = Counters.from_dict(info.counters)
        transport = info.counters.get("transport")
        self._transport_state = dict(transport) if isinstance(transport, Mapping) else None
        self._say(
            f"resumed from {path.name}: {self.counters.updates} updates, "
            f"{self.counters.env_steps} env steps, replay {self._sizes()}"
        )
        return has_replay

    def _load_demos(self) -> None:
        """The demo dataset into the demo buffer; a dataset it cannot read is a
        :class:`ConfigError` naming it (one line, exit code 2), not a traceback."""

        path = None
        try:
            path = ensure_demos(self.cfg, progress=False, out=self.out)
            if path is None:
                return
            episodes, count = self.trainer.load_demos(str(path))
        except DatasetError as exc:
            where = str(path if path is not None else demo_path(self.cfg))
            problem = " ".join(str(exc).split())
            raise ConfigError(
                "train.demo_dataset", where, f"cannot read the demo dataset: {problem}"
            ) from None
        self.counters.demo_transitions = count
        self._say(f"loaded {episodes} demonstrations ({count} transitions) from {path}")

    def open_endpoint(self, inproc: bool = False) -> Any:
        """The transport (gRPC server on ``transport.host:port``, or in-process), started.

        A resumed learner first restores each actor's delivered sequence number. The
        gRPC learner writes ``learner.json`` (pid, port, run id) into the run folder.
        """
        endpoint: Any
        # Durable acks make actors keep data until a checkpoint holds it; without periodic
        # checkpoints they would keep (and spool) everything, so plain acks are used then.
        # Without the replay in the checkpoints no checkpoint ever holds the data: durable
        # acks would confirm what a crash loses, so plain acks are used, and said so.
        ck = self.cfg.learning.checkpoint
        periodic = bool(ck.every_steps or self.cfg.train.checkpoint_every_s)
        durable = self.cfg.transport.durable_acks and periodic
        if durable and not ck.save_buffers:
            durable = False
            self._say(
                "transport.durable_acks=true needs checkpoints that hold the replay, but "
                "learning.checkpoint.save_buffers=false: using plain acks (data received "
                "since the last checkpoint is lost if the learner crashes)"
            )
        transport_cfg = replace(self.cfg.transport, durable_acks=durable)
        if inproc:
            endpoint = InProcLearner(
                self.on_transitions,
                self.on_episode,
                queue_messages=transport_cfg.ingest_queue_messages,
                durable_acks=transport_cfg.durable_acks,
            )
        else:
            endpoint = LearnerServer(
                transport_cfg,
                self.on_transitions,
                self.on_episode,
                run_id=self.run_id,
                arch_hash=self.arch_hash,
            )
        if self._transport_state is not None:
            endpoint.load_state_dict(self._transport_state)
        endpoint.start()
        if not inproc:
            write_json(
                self.run.learner_file,
                {
                    "pid": os.getpid(),
                    "host": self.cfg.transport.host,
                    "port": endpoint.port,
                    "run_id": self.run_id,
                    "arch_hash": self.arch_hash,
                },
            )
            self._wrote_learner_file = True
            self._say(f"listening on {self.cfg.transport.host}:{endpoint.port} (run {self.run_id})")
        return endpoint

    # ------------------------------------------------------------------ ingest

    def on_transitions(self, actor_id: str, transitions: list[Transition]) -> None:
        """One actor message: all of it into replay in one call (online; interventions also).

        The whole message is checked first, in the replay's storage dtypes (keys, shapes
        and dtypes against the obs / action spec; float fields finite in float32): a bad
        message raises ``ValueError`` naming the transition and field, adds nothing, and
        is counted in ``counters.ingest_rejected``.
        """
        try:
            self.trainer.add_transitions(transitions)
        except ValueError:  # the transport logs it and tells the actor why
            with self._lock:
                self.counters.ingest_rejected += 1
            raise
        with self._lock:
            self.counters.env_steps += len(transitions)

    def on_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        """One finished episode: a line of metrics/episodes.jsonl and TensorBoard scalars.

        An episode metrics/episodes.jsonl already held when this learner started (an
        actor resending what a crashed learner had logged) is neither written nor
        counted again. The trainer hears every episode (its state comes from the
        checkpoint, which predates a resent one): an algorithm may use episode outcomes
        (e.g. to keep only successful episodes).
        """
        self.trainer.add_episode(actor_id, stats)
        is_eval = stats.is_eval
        key = (actor_id, int(stats.episode_index), is_eval, int(stats.policy_version))
        if key in self._written_episodes:
            return
        with self._lock:
            steps = self.counters.env_steps
            if not is_eval:
                self.counters.episodes += 1
                nxt = max(self.counters.actor_episodes.get(actor_id, 0), stats.episode_index + 1)
                self.counters.actor_episodes[actor_id] = nxt
        record = {
            "time_s": round(self.elapsed_s(), 3),
            "env_steps": steps,
            "actor_id": actor_id,
            "episode_index": stats.episode_index,
            "return": stats.episode_return,
            "length": stats.length,
            "success": bool(stats.success),
            "intervention_rate": stats.intervention_rate,
            "policy_version": stats.policy_version,
            "eval": is_eval,
            "autonomous_success": bool(stats.success and stats.intervention_steps == 0),
            "interrupted": stats.interrupted,
            "operator_takeover": stats.operator_takeover,
        }
        self.episodes_log.write(json_safe(record))
        prefix = "eval" if is_eval else "episode"
        scalars = {
            f"{prefix}/return": stats.episode_return,
            f"{prefix}/success": float(stats.success),
            f"{prefix}/length": float(stats.length),
        }
        if not is_eval:
            scalars[f"{prefix}/intervention_rate"] = stats.intervention_rate
        self.tb.log_many(scalars, steps)

    # ------------------------------------------------------------------ main loop

    def train(
        self,
        endpoint: Endpoint,
        stop: StopFlag,
        actors_done: Callable[[], bool] | None = None,
    ) -> str:
        """The training loop (see the module docstring); returns why it stopped.

        Raises :class:`LearnerFailed` after ``train.max_consecutive_skips`` update calls in
        a row made no real update (see :meth:`_count_update`), once the final checkpoint
        (only of finite networks) and the last metrics line are written.
        """
        cfg = self.cfg
        t = cfg.train
        every_steps = cfg.learning.checkpoint.every_steps
        self._started_at = time.monotonic()
        self.publish(endpoint)
        now = time.monotonic()
        next_publish, last_publish_updates = now + t.publish_every_s, self.counters.updates
        next_checkpoint = now + t.checkpoint_every_s if t.checkpoint_every_s else math.inf
        next_log, last_log, last_log_updates = now + cfg.run.log_every_s, now, self.counters.updates
        metrics = MetricsAverage()
        failure = ""
        self._bad_in_row = self._skipped_in_row = 0
        while True:
            reason = self._stop_reason(stop, actors_done)
            if reason:
                break
            if self.trainer.ready(t.warmup_transitions):
                compiling = self.trainer.compiles_next
                if compiling:
                    self._say("compiling the training step (once, ~30-60 s)")
                    t0 = time.monotonic()
                result = self.trainer.step()
                if compiling:
                    self._say(f"training step compiled in {time.monotonic() - t0:.0f} s")
                if self._count_update(result, metrics):
                    self.counters.updates += 1
                    if every_steps and self.counters.updates % every_steps == 0:
                        self.checkpoint(endpoint)
                elif t.max_consecutive_skips and self._bad_in_row >= t.max_consecutive_skips:
                    failure = self._failure_text()
                    reason = "training failed"
                    break
            else:
                stop.wait(WARMUP_POLL_S)
            now = time.monotonic()
            fresh = self.counters.updates - last_publish_updates
            if fresh > 0 and (
                now >= next_publish
                or (t.publish_every_updates and fresh >= t.publish_every_updates)
            ):
                self.publish(endpoint)
                next_publish, last_publish_updates = now + t.publish_every_s, self.counters.updates
            if now >= next_checkpoint:
                self.checkpoint(endpoint)
                next_checkpoint = now + t.checkpoint_every_s
            if now >= next_log:
                rate = (self.counters.updates - last_log_updates) / max(now - last_log, 1e-9)
                values, nonfinite = metrics.take_with_counts()
                self.log_metrics(values, rate, nonfinite)
                next_log, last_log, last_log_updates = (
                    now + cfg.run.log_every_s,
                    now,
                    self.counters.updates,
                )
        if reason == "env steps done":
            self._drain(endpoint, stop)
        now = time.monotonic()
        # Always a last line: its env_steps / updates are the run's final counters (the
        # last steps may have arrived after the latest periodic line, with no update since).
        pending, nonfinite = metrics.take_with_counts()
        rate = (self.counters.updates - last_log_updates) / max(now - last_log, 1e-9)
        self.log_metrics(pending, rate, nonfinite)
        saved = self.checkpoint(endpoint)
        if failure:
            raise LearnerFailed(f"{failure}; {self._last_good_text(saved)}")
        self._say(
            f"stopped ({reason}) after {self.counters.updates} updates, "
            f"{self.counters.env_steps} env steps; checkpoint {self.last_checkpoint}"
        )
        return reason

    def _count_update(self, result: StepResult, metrics: MetricsAverage) -> bool:
        """Account one training step; True when it was a real update.

        Skipped chunks add to ``counters.skipped_batches``, a call with a non-finite
        metric to ``counters.nonfinite_losses``; a call without any optimisation step
        (every chunk skipped) or with non-finite values is not an update and extends the
        run of bad calls that ``train.max_consecutive_skips`` limits.
        """
        metrics.add(result.metrics)
        self.counters.skipped_batches += result.skipped
        finite = all(math.isfinite(v) for v in result.metrics.values())
        if not finite:
            self.counters.nonfinite_losses += 1
        if result.real:
            self._bad_in_row = self._skipped_in_row = 0
            return True
        self._bad_in_row += 1
        if finite:
            self._skipped_in_row += 1
        return False

    def _failure_text(self) -> str:
        bad, skipped = self._bad_in_row, self._skipped_in_row
        return (
            f"training failed: {bad} update calls in a row made no real update "
            f"(train.max_consecutive_skips={self.cfg.train.max_consecutive_skips}): "
            f"{skipped} skipped every batch (non-finite rewards / actions / observations in "
            f"the sampled replay rows), {bad - skipped} gave non-finite losses or values; "
            f"in all {self.counters.skipped_batches} skipped batches, "
            f"{self.counters.nonfinite_losses} non-finite updates"
        )

    def _last_good_text(self, saved: Path | None) -> str:
        if saved is not None:
            note = " (its replay still holds the non-finite rows)" if self._skipped_in_row else ""
            return f"checkpoint of the last good state: {saved}{note}"
        last = self.last_checkpoint or latest_checkpoint(self.run.checkpoints)
        head = "networks are non-finite, not saved"
        if last is None:
            return f"{head}; no earlier checkpoint"
        return f"{head}; last good checkpoint: {last}"

    def _stop_reason(self, stop: StopFlag, actors_done: Callable[[], bool] | None) -> str:
        if stop.is_set():
            return stop.reason or "stopped"
        limit = self.cfg.train.max_runtime_s
        if limit is not None and time.monotonic() - self._started_at >= limit:
            return "time limit"
        if self.counters.env_steps >= self.cfg.run.total_env_steps:
            return "env steps done"
        if actors_done is not None and actors_done():
            return "actors finished"
        return ""

    def _drain(self, endpoint: Endpoint, stop: StopFlag) -> None:
        """Let the actors deliver their last messages (episode stats) and disconnect."""
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and not stop.wait(0.1):
            live = [a for a in endpoint.actor_stats().values() if getattr(a, "connected", False)]
            if not live:
                break
        endpoint.wait_idle(2.0)

    # ------------------------------------------------------------------ outputs

    def elapsed_s(self) -> float:
        return self.counters.elapsed_s + (time.monotonic() - self._started_at)

    def publish(self, endpoint: Endpoint) -> int:
        """Send the current policy with the next version and the learner's progress."""
        version = max(self.counters.weights_version, self.run.published_version()) + 1
        weights = self.trainer.policy_weights()
        bad = [k for k, w in weights.items() if w.dtype.kind == "f" and not np.isfinite(w).all()]
        if bad:  # never send nan / inf weights to an arm: the actors keep their last policy
            if not self._withheld_version:
                self._say(f"not publishing weights: non-finite values in {', '.join(bad[:3])}")
            self._withheld_version = True
            return self.counters.weights_version
        self._withheld_version = False
        with self._lock:
            env_steps = self.counters.env_steps
        progress = LearnerProgress(self.counters.updates, env_steps, self.step_allowance(env_steps))
        endpoint.publish_weights(weights, version, progress)
        self.counters.weights_version = version
        self.run.record_published_version(version)
        return version

    def step_allowance(self, env_steps: int) -> int:
        """Env steps the actors may take before the next publication (-1: no limit)."""
        ratio = self.cfg.train.updates_per_env_step
        if ratio <= 0:
            return -1
        allowed = self.cfg.train.warmup_transitions + self.counters.updates / ratio
        return max(0, int(allowed) - env_steps)

    def checkpoint(self, endpoint: Endpoint) -> Path | None:
        """Save SAC, replay, sampler, counters and transport marks from one instant.

        Networks or optimiser state with nan / inf are not saved (None): the checkpoint
        before stays the last good state (a re-save of the same step would replace it).
        """

        bad = nonfinite_tensors(self.trainer.algorithm.state_dict())
        if bad:
            self._say(
                f"checkpoint not saved: non-finite values in {len(bad)} tensors "
                f"({', '.join(bad[:3])}); last good checkpoint: {self.last_checkpoint}"
            )
            return None
        ck = self.cfg.learning.checkpoint
        with endpoint.ingest_paused():
            transport = endpoint.state_dict()
            with self._lock:
                counters = asdict(self.counters)
            counters["elapsed_s"] = self.elapsed_s()
            counters["transport"] = transport
            counters["run_id"] = self.run_id
            path = save_checkpoint(
                self.run.checkpoints,
                self.counters.updates,
                self.trainer.algorithm,
                buffers=self.trainer.replay if ck.save_buffers else None,
                sampler=self.trainer.sampler,
                config=self.cfg,
                counters=counters,
                keep_last=ck.keep_last,
            )
        mark_durable = getattr(endpoint, "mark_durable", None)
        if callable(mark_durable):
            mark_durable(transport)
        self.last_checkpoint = path
        return path

    def _sizes(self) -> dict[str, int]:
        return self.trainer.replay_sizes()

    def log_metrics(
        self,
        metrics: Mapping[str, float],
        updates_per_s: float,
        nonfinite: Mapping[str, int] | None = None,
    ) -> None:
        """One line of metrics/learner.jsonl and the same scalars in TensorBoard.

        ``nonfinite``: the interval's non-finite values per metric key (written as
        ``nonfinite/<key>``, added to ``nonfinite_metrics``, and said on the output).
        """
        counts = dict(nonfinite or {})
        with self._lock:
            steps, episodes = self.counters.env_steps, self.counters.episodes
            rejected = self.counters.ingest_rejected
        self.counters.nonfinite_metrics += sum(counts.values())
        record: dict[str, Any] = {
            "time_s": round(self.elapsed_s(), 3),
            "env_steps": steps,
            "updates": self.counters.updates,
            "updates_per_s": round(updates_per_s, 3),
            "replay_sizes": self._sizes(),
            "policy_version": self.counters.weights_version,
            "episodes": episodes,
            "skipped_batches": self.counters.skipped_batches,
            "nonfinite_losses": self.counters.nonfinite_losses,
            "nonfinite_metrics": self.counters.nonfinite_metrics,
            "ingest_rejected": rejected,
        }
        record.update(metrics)
        record.update({f"nonfinite/{k}": n for k, n in sorted(counts.items())})
        self.learner_log.write(json_safe(record))
        if counts:
            self._say(
                "WARNING non-finite training values: "
                + ", ".join(f"{k} x{n}" for k, n in sorted(counts.items()))
                + f" (update calls with non-finite values so far: {self.counters.nonfinite_losses})"
            )
        scalars = {f"learner/{k}": float(v) for k, v in metrics.items()}
        scalars.update({f"learner/nonfinite/{k}": float(n) for k, n in counts.items()})
        scalars["learner/updates_per_s"] = updates_per_s
        scalars["learner/updates"] = float(self.counters.updates)
        for name in ("skipped_batches", "nonfinite_losses", "nonfinite_metrics"):
            scalars[f"learner/{name}"] = float(record[name])
        scalars["learner/ingest_rejected"] = float(rejected)
        for name, size in record["replay_sizes"].items():
            scalars[f"replay/{name}"] = float(size)
        self.tb.log_many(scalars, steps)

    def _say(self, text: str) -> None:
        self.out.write(f"learner: {text}\n")
        self.out.flush()

    def close(self, endpoint: Endpoint | None = None) -> None:
        """Stop the sampler and the transport, close the logs."""
        self.trainer.close()
        if endpoint is not None:
            endpoint.stop()
        self.episodes_log.close()
        self.learner_log.close()
        self.tb.close()
        if self._wrote_learner_file:
            self.run.learner_file.unlink(missing_ok=True)


@contextlib.contextmanager
def open_learner(
    cfg: RootConfig,
    *,
    resume: bool = False,
    local_actors: int = 0,
    inproc: bool = False,
    out: TextIO | None = None,
) -> Iterator[tuple[Learner, Any]]:
    """A learner and its started transport; both are closed on exit."""
    learner = Learner(cfg, resume=resume, local_actors=local_actors, out=out)
    endpoint = None
    try:
        endpoint = learner.open_endpoint(inproc=inproc)
        yield learner, endpoint
    finally:
        learner.close(endpoint)


def run_learner_process(cfg: RootConfig, *, resume: bool, local_actors: int, stop: StopFlag) -> str:
    """``hilrl learner``: train until stopped; returns why it stopped.

    Raises :class:`LearnerFailed` when training cannot go on (``hilrl learner`` exits 1).
    """
    with open_learner(cfg, resume=resume, local_actors=local_actors) as (learner, endpoint):
        return learner.train(endpoint, stop)
