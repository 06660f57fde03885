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

The learner stops on SIGINT / SIGTERM, after ``train.max_runtime_s``, or once
``run.total_env_steps`` have arrived (it then waits up to :data:`DRAIN_S` for the actors
to finish sending), always with a final checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import math
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
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.runtime.actor import META_ALLOWANCE, META_ENV_STEPS, META_UPDATES
from hilrl.runtime.run_dir import JsonlWriter, prepare_run, write_json
from hilrl.runtime.stopping import StopFlag
from hilrl.types import EpisodeStats, Transition

log = logging.getLogger("hilrl.runtime.learner")

DRAIN_S = 30.0
"""After the last env step arrived: how long to wait for the actors to disconnect."""
WARMUP_POLL_S = 0.05


class Endpoint(Protocol):
    """What the learner needs of a transport (LearnerServer or InProcLearner)."""

    def start(self) -> Any: ...

    def stop(self) -> None: ...

    def publish_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None: ...

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
        )


class MetricsAverage:
    """Mean of each SAC metric over the updates of one log interval."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            if math.isfinite(v):
                self._sums[k] = self._sums.get(k, 0.0) + v
                self._counts[k] = self._counts.get(k, 0) + 1

    def take(self) -> dict[str, float]:
        out = {k: self._sums[k] / self._counts[k] for k in self._sums}
        self._sums.clear()
        self._counts.clear()
        return out


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
        from hilrl.algorithms.sac import SAC, resolve_device
        from hilrl.runtime.specs import policy_arch_hash, specs_from_config

        self.cfg = cfg
        self.out = out if out is not None else sys.stderr
        self.run = prepare_run(cfg.run.output_dir, resume)
        threads = learner_torch_threads(cfg, local_actors)
        if threads:
            torch.set_num_threads(threads)
        if not resume:
            torch.manual_seed(cfg.run.seed)
        self.obs_spec, self.act_spec = specs_from_config(cfg)
        device = resolve_device(cfg.learning.device)
        sac_cfg = cfg.learning.sac
        self.sac = SAC(self.obs_spec, self.act_spec, sac_cfg, cfg.learning.encoder, device)
        self.buffers = ReplayBuffers(self.obs_spec, self.act_spec.dim, cfg.learning.replay)
        self.sampler = MixedSampler(
            self.buffers,
            cfg.learning.replay,
            device,
            chunks=sac_cfg.utd_ratio,
            n_step=sac_cfg.n_step,
            discount=sac_cfg.discount,
            run_seed=cfg.run.seed,
        )
        self.arch_hash = policy_arch_hash(self.sac.nets, cfg.learning)
        self.run_id = self.run.run_id()
        self.counters = Counters()
        self._transport_state: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._started_at = time.monotonic()
        restored_replay = self._restore() if resume else False
        if not restored_replay:
            self._load_demos()
        save_config(cfg, self.run.config)
        self.episodes_log = JsonlWriter(self.run.episodes_jsonl)
        self.learner_log = JsonlWriter(self.run.learner_jsonl)
        from hilrl.runtime.scalars import ScalarLogger

        self.tb = ScalarLogger(self.run.tensorboard, cfg.run, cfg, name=self.run.root.name)
        self.last_checkpoint: Path | None = None
        self._wrote_learner_file = False

    # ------------------------------------------------------------------ setup

    def _restore(self) -> bool:
        """Load the newest complete checkpoint; True when it held the replay buffers."""
        from hilrl.runtime.checkpoint import latest_checkpoint, read_meta, restore_checkpoint

        path = latest_checkpoint(self.run.checkpoints)
        if path is None:
            raise ConfigError("--resume", str(self.run.checkpoints), "no complete checkpoint there")
        has_replay = "replay" in read_meta(path).get("parts", [])
        info = restore_checkpoint(
            path,
            self.sac,
            buffers=self.buffers if has_replay else None,
            sampler=self.sampler,
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
        from hilrl.runtime.demos import ensure_demos, load_demos

        path = ensure_demos(self.cfg, progress=False, out=self.out)
        if path is None:
            return
        episodes, count = load_demos(self.buffers, path, self.obs_spec, self.act_spec.dim)
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
        periodic = bool(
            self.cfg.learning.checkpoint.every_steps or self.cfg.train.checkpoint_every_s
        )
        transport_cfg = replace(
            self.cfg.transport, durable_acks=self.cfg.transport.durable_acks and periodic
        )
        if inproc:
            from hilrl.transport import InProcLearner

            endpoint = InProcLearner(
                self.on_transitions,
                self.on_episode,
                queue_messages=transport_cfg.ingest_queue_messages,
                durable_acks=transport_cfg.durable_acks,
            )
        else:
            from hilrl.transport import LearnerServer

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
            import os

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
        """One actor message: all of it into replay in one call (online; interventions also)."""
        self.buffers.add_transitions(transitions)
        with self._lock:
            self.counters.env_steps += len(transitions)

    def on_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        """One finished episode: a line of metrics/episodes.jsonl and TensorBoard scalars."""
        is_eval = bool(stats.extra.get("eval", 0.0))
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
        }
        self.episodes_log.write(record)
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
        """The training loop (see the module docstring); returns why it stopped."""
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
        compiled = False
        while True:
            reason = self._stop_reason(stop, actors_done)
            if reason:
                break
            if self._warmed_up():
                batch = self.sampler.next()
                compiling = cfg.learning.sac.compile and not compiled
                if compiling:
                    self._say("compiling the training steps (sac.compile: once, ~30-60 s)")
                    t0 = time.monotonic()
                metrics.add(self.sac.update(batch))
                if compiling:
                    compiled = True
                    self._say(f"training steps compiled in {time.monotonic() - t0:.0f} s")
                self.counters.updates += 1
                if every_steps and self.counters.updates % every_steps == 0:
                    self.checkpoint(endpoint)
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
                self.log_metrics(metrics.take(), rate)
                next_log, last_log, last_log_updates = (
                    now + cfg.run.log_every_s,
                    now,
                    self.counters.updates,
                )
        if reason == "env steps done":
            self._drain(endpoint, stop)
        now = time.monotonic()
        pending = metrics.take()
        if pending or self.counters.updates == last_log_updates == 0:
            rate = (self.counters.updates - last_log_updates) / max(now - last_log, 1e-9)
            self.log_metrics(pending, rate)
        self.checkpoint(endpoint)
        self._say(
            f"stopped ({reason}) after {self.counters.updates} updates, "
            f"{self.counters.env_steps} env steps; checkpoint {self.last_checkpoint}"
        )
        return reason

    def _warmed_up(self) -> bool:
        online = len(self.buffers.online)
        if online < self.cfg.train.warmup_transitions:
            return False
        return online + len(self.buffers.demos) + len(self.buffers.interventions) > 0

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
        weights = self.sac.policy_weights()
        with self._lock:
            env_steps = self.counters.env_steps
        weights[META_UPDATES] = np.array([self.counters.updates], np.int64)
        weights[META_ENV_STEPS] = np.array([env_steps], np.int64)
        weights[META_ALLOWANCE] = np.array([self.step_allowance(env_steps)], np.int64)
        endpoint.publish_weights(weights, version)
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

    def checkpoint(self, endpoint: Endpoint) -> Path:
        """Save SAC, replay, sampler, counters and transport marks from one instant."""
        from hilrl.runtime.checkpoint import save_checkpoint

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
                self.sac,
                buffers=self.buffers if ck.save_buffers else None,
                sampler=self.sampler,
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
        return {name: len(buf) for name, buf in self.buffers.by_name().items()}

    def log_metrics(self, metrics: Mapping[str, float], updates_per_s: float) -> None:
        """One line of metrics/learner.jsonl and the same scalars in TensorBoard."""
        with self._lock:
            steps, episodes = self.counters.env_steps, self.counters.episodes
        record: dict[str, Any] = {
            "time_s": round(self.elapsed_s(), 3),
            "env_steps": steps,
            "updates": self.counters.updates,
            "updates_per_s": round(updates_per_s, 3),
            "replay_sizes": self._sizes(),
            "policy_version": self.counters.weights_version,
            "episodes": episodes,
        }
        record.update(metrics)
        self.learner_log.write(record)
        scalars = {f"learner/{k}": float(v) for k, v in metrics.items()}
        scalars["learner/updates_per_s"] = updates_per_s
        scalars["learner/updates"] = float(self.counters.updates)
        for name, size in record["replay_sizes"].items():
            scalars[f"replay/{name}"] = float(size)
        self.tb.log_many(scalars, steps)

    def _say(self, text: str) -> None:
        self.out.write(f"learner: {text}\n")
        self.out.flush()

    def close(self, endpoint: Endpoint | None = None) -> None:
        """Stop the sampler and the transport, close the logs."""
        self.sampler.close()
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
    """``hilrl learner``: train until stopped; returns why it stopped."""
    with open_learner(cfg, resume=resume, local_actors=local_actors) as (learner, endpoint):
        return learner.train(endpoint, stop)
