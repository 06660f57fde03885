"""In-process twin of the gRPC transport: same interfaces, bounded queues, no sockets.

For tests and single-process runs (actor and learner threads in one process)::

    learner = InProcLearner(on_transitions=ingest, on_episode=log_episode).start()
    actor = learner.connect("sim-0")          # an ActorEndpoint, like ActorClient
    ...                                        # the same actor and learner loops
    actor.close(); learner.stop()

Like the gRPC server, callbacks run on one ingest thread, in order per actor, the
per-actor delivered counts form :meth:`InProcLearner.state_dict`, and
:meth:`InProcLearner.mark_durable` moves the durable watermarks (``actor_stats()``,
``InProcActor.wait_durable``) exactly as there, with the same ``durable_acks`` switch.
What it does not do is keep copies for a resend: in one process a learner crash ends the
actors too, and a restored learner gets new actor endpoints, so nothing could be resent
(the gRPC actors keep their copies because they outlive a learner crash). Unlike the
gRPC client,
``put_transitions`` waits when the bounded queue is full: in one process, backpressure on
the actor is what keeps a slow learner from being buried (there is no network to absorb
it and nothing to spool). Data is copied at ``put``, as the wire would, so an actor that
reuses its observation buffers cannot change what the learner received.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hilrl.transport import codec
from hilrl.transport.errors import TransportError
from hilrl.transport.server import (
    ActorStats,
    EpisodeCallback,
    IngestItem,
    TransitionsCallback,
    deliver,
)
from hilrl.transport.state import make_state, parse_state
from hilrl.types import EpisodeStats, LearnerProgress, Observation, PolicyUpdate, Transition

log = logging.getLogger("hilrl.transport.inproc")

_STOP = object()
_POLL_S = 0.1


def _copy_transitions(transitions: Sequence[Transition]) -> list[Transition]:
    """Deep-copy arrays, keeping shared observations shared (as the codec does)."""
    memo: dict[int, Observation] = {}

    def obs(o: Observation) -> Observation:
        key = id(o)
        if key not in memo:
            memo[key] = {k: np.array(v, copy=True) for k, v in o.items()}
        return memo[key]

    return [
        replace(
            t,
            observation=obs(t.observation),
            next_observation=obs(t.next_observation),
            action=np.array(t.action, dtype=np.float32, copy=True).reshape(-1),
        )
        for t in transitions
    ]


class InProcLearner:
    """Learner endpoint over a bounded in-process queue (see the module docstring)."""

    def __init__(
        self,
        on_transitions: TransitionsCallback,
        on_episode: EpisodeCallback,
        *,
        queue_messages: int = 64,
        put_timeout_s: float = 60.0,
        durable_acks: bool = True,
    ) -> None:
        if queue_messages < 1:
            raise ValueError(f"queue_messages must be >= 1, got {queue_messages}")
        self._on_transitions = on_transitions
        self._on_episode = on_episode
        self._put_timeout_s = put_timeout_s
        self.durable_acks = durable_acks
        """As ``TransportConfig.durable_acks``: False makes delivered data durable at once."""
        self._queue: queue.Queue[IngestItem | object] = queue.Queue(maxsize=queue_messages)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ingest_gate = threading.Lock()
        self._stats: dict[str, ActorStats] = {}
        self._sent: dict[str, int] = {}
        self._delivered: dict[str, int] = {}
        self._durable: dict[str, int] = {}
        self._weights: PolicyUpdate | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> InProcLearner:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._ingest_loop, name="hilrl-inproc-ingest", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Deliver everything queued, then stop the ingest thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def __enter__(self) -> InProcLearner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def connect(self, actor_id: str) -> InProcActor:
        """A new actor endpoint; a reconnecting actor id resumes its sequence numbers."""
        with self._lock:
            stats = self._stats.setdefault(actor_id, ActorStats(actor_id))
            stats.handshakes += 1
            stats.connected = True
            stats.last_seen = time.time()
            self._sent.setdefault(actor_id, self._delivered.get(actor_id, 0))
        return InProcActor(self, actor_id)

    # ---------------------------------------------------------------- learner API

    def publish_weights(
        self,
        weights: Mapping[str, np.ndarray],
        version: int,
        progress: LearnerProgress | None = None,
    ) -> None:
        """Make read-only copies of ``weights`` the latest version (versions must increase)."""
        frozen = {}
        for name, arr in weights.items():
            copy = np.array(arr, copy=True)
            copy.flags.writeable = False
            frozen[name] = copy
        with self._lock:
            if self._weights is not None and version <= self._weights.version:
                raise ValueError(
                    f"weights version {version} is not newer than {self._weights.version}"
                )
            self._weights = PolicyUpdate(version, frozen, progress or LearnerProgress())
            self._changed.notify_all()

    def state_dict(self) -> dict[str, Any]:
        """Per-actor delivered counts (take it under :meth:`ingest_paused`, as for gRPC)."""
        with self._lock:
            return make_state("", self._delivered)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore saved watermarks (received = durable = saved), before actors connect."""
        acked = parse_state(state)
        with self._lock:
            for actor_id, seq in acked.items():
                self._delivered[actor_id] = self._sent[actor_id] = self._durable[actor_id] = seq
                stats = self._stats.setdefault(actor_id, ActorStats(actor_id))
                stats.acked_through = stats.durable_through = seq

    def mark_durable(self, state: Mapping[str, Any]) -> None:
        """Confirm a saved checkpoint holding ``state``: same rules as the gRPC server's."""
        acked = parse_state(state)
        if not self.durable_acks:
            return
        with self._lock:
            for actor_id, seq in acked.items():
                if actor_id not in self._delivered:
                    continue
                mark = min(seq, self._delivered[actor_id])
                if mark > self._durable.get(actor_id, 0):
                    self._durable[actor_id] = mark
            self._changed.notify_all()

    def actor_stats(self) -> dict[str, ActorStats]:
        with self._lock:
            return {
                aid: replace(
                    s,
                    acked_through=self._delivered.get(aid, 0),
                    durable_through=self._durable.get(aid, 0),
                )
                for aid, s in self._stats.items()
            }

    @contextlib.contextmanager
    def ingest_paused(self) -> Iterator[None]:
        with self._ingest_gate:
            yield

    def wait_idle(self, timeout_s: float) -> bool:
        return self._wait(
            lambda: all(self._delivered.get(a, 0) >= s for a, s in self._sent.items()), timeout_s
        )

    def _wait(self, done: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, _POLL_S))
        return True

    def _wait_durable(self, actor_id: str, timeout_s: float) -> bool:
        return self._wait(
            lambda: self._durable.get(actor_id, 0) >= self._sent.get(actor_id, 0), timeout_s
        )

    # ----------------------------------------------------------------- internals

    def _put(self, actor_id: str, payload: list[Transition] | EpisodeStats) -> None:
        if self._thread is None:
            raise TransportError("InProcLearner is not running: call start() first")
        with self._lock:
            self._sent[actor_id] += 1
            item = IngestItem(actor_id, self._sent[actor_id], payload)
            stats = self._stats[actor_id]
            stats.messages += 1
            stats.last_seen = time.time()
            if isinstance(payload, list):
                stats.transitions += len(payload)
            else:
                stats.episodes += 1
        try:
            self._queue.put(item, timeout=self._put_timeout_s)
        except queue.Full as exc:
            raise TransportError(
                f"learner ingest did not take data for {self._put_timeout_s:.0f} s (is its callback stuck?)"
            ) from exc

    def _latest(self) -> PolicyUpdate | None:
        with self._lock:
            return self._weights

    def _disconnect(self, actor_id: str) -> None:
        with self._lock:
            self._stats[actor_id].connected = False

    def _ingest_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, IngestItem)
            with self._ingest_gate:
                error = deliver(item, self._on_transitions, self._on_episode)
                with self._lock:  # under the gate, as in the gRPC server
                    aid = item.actor_id
                    self._delivered[aid] = max(self._delivered.get(aid, 0), item.sequence)
                    if not self.durable_acks:
                        self._durable[aid] = self._delivered[aid]
                    if error:  # counted as in the gRPC server (no actor to tell here)
                        self._stats[aid].ingest_errors += 1
                        self._stats[aid].rejected += 1
                    self._changed.notify_all()


class InProcActor:
    """Actor endpoint of an :class:`InProcLearner` (TransitionSink + ParameterSource)."""

    def __init__(self, learner: InProcLearner, actor_id: str) -> None:
        self._learner = learner
        self.actor_id = actor_id
        self._keys: list[str] | None = None
        self._closed = False

    def put_transitions(self, transitions: Sequence[Transition]) -> None:
        """Copy and queue transitions; waits only while the learner's queue is full."""
        if self._closed:
            raise TransportError(f"actor {self.actor_id!r} is closed")
        if not transitions:
            return
        for i, t in enumerate(transitions):
            self._keys = codec.check_transition(t, self._keys, f"transitions[{i}]")
        self._learner._put(self.actor_id, _copy_transitions(transitions))

    def put_episode(self, stats: EpisodeStats) -> None:
        if self._closed:
            raise TransportError(f"actor {self.actor_id!r} is closed")
        self._learner._put(
            self.actor_id, replace(stats, actor_id=self.actor_id, extra=dict(stats.extra))
        )

    def latest(self, newer_than: int) -> PolicyUpdate | None:
        update = self._learner._latest()
        return update if update is not None and update.version > newer_than else None

    def wait_for_weights(self, newer_than: int, timeout_s: float) -> PolicyUpdate | None:
        deadline = time.monotonic() + timeout_s
        while (got := self.latest(newer_than)) is None and time.monotonic() < deadline:
            with self._learner._changed:
                self._learner._changed.wait(_POLL_S)
        return got

    def flush(self, timeout_s: float) -> bool:
        """Wait until the learner delivered everything this actor put."""
        return self._learner.wait_idle(timeout_s)

    def wait_durable(self, timeout_s: float) -> bool:
        """Wait until a confirmed learner checkpoint holds everything this actor put."""
        return self._learner._wait_durable(self.actor_id, timeout_s)

    def close(self, timeout_s: float | None = None) -> bool:
        if self._closed:
            return True
        done = self.flush(10.0 if timeout_s is None else timeout_s)
        self._closed = True
        self._learner._disconnect(self.actor_id)
        return done

    def __enter__(self) -> InProcActor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
