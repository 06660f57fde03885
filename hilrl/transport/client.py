"""The actor's side of the gRPC transport: a TransitionSink and ParameterSource.

The actor loop uses it like this::

    client = ActorClient(cfg.transport, actor_id="robot-1", run_id=run_id, arch_hash=h)
    client.connect(timeout_s=30)                 # optional: fail early on a bad setup
    while running:
        if (new := client.latest(policy.version)) is not None:
            policy.load_weights(new.weights, new.version)     # new.progress: the learner's
        ...
        client.put_transitions([transition])     # returns at once, never blocks
        if done:
            client.put_episode(stats)
    client.close()                               # flushes, spools the rest

One background thread batches transitions (every ``batch_size`` steps, every
``flush_interval_s`` or at an episode end), numbers the messages and sends them on a
bidirectional stream. The learner acknowledges them twice: *received* (delivered to its
ingest callbacks: no need to resend them in this session) and later *durable* (inside a
checkpoint it saved and confirmed). Only durable messages are deleted; until then a copy
stays, in memory up to ``memory_backlog_messages`` and then in the disk spool, so that a
learner killed and restored from its last checkpoint gets everything after that
checkpoint again (its handshake reports the restored watermarks). When the learner is
unreachable the thread reconnects with exponential backoff and jitter, and meanwhile
writes messages to the spool, from which they are resent, exactly once, after a
reconnect or even after the actor process restarts. A second thread keeps a server
stream of weights open and keeps only the newest version.

Bounds: the spool never exceeds ``spool_max_bytes``. When it is full, the copies of
received-but-not-durable messages go first (counted in ``stats().retained_evicted``, with
a warning: they are lost only if the learner crashes before its next checkpoint), then
the oldest unsent messages (``transitions_dropped``). A learner that never confirms
checkpoints therefore costs disk writes but no unbounded growth; give it
``durable_acks: false`` so received means durable, as before.

Errors that a retry cannot fix (wrong token, schema / architecture / run mismatch) stop
the retries and are raised by the next call of the control loop, with what to fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from hilrl.config.transport import TransportConfig
from hilrl.transport import codec
from hilrl.transport.client_session import Session
from hilrl.transport.client_state import (
    _ACTOR_ID,
    _TICK_S,
    _TLS_HINTS,
    ActorClientStats,
    Backoff,
    _Event,
    _Link,
    _OutMsg,
    channel_options,
)
from hilrl.transport.client_weights import WeightStream
from hilrl.transport.errors import (
    LearnerUnreachable,
    TransportError,
)
from hilrl.transport.security import (
    channel_credentials,
)
from hilrl.transport.spool import Spool
from hilrl.types import EpisodeStats, PolicyUpdate, Transition

log = logging.getLogger("hilrl.transport.client")

__all__ = ["ActorClient", "ActorClientStats", "Backoff", "channel_options"]


class ActorClient(Session, WeightStream):
    """gRPC client of one actor (see the module docstring for the loop that drives it).

    Its parts: :class:`~hilrl.transport.client_outbox.Outbox` (batching, spool, bounds),
    :class:`~hilrl.transport.client_session.Session` (the sender thread: handshake,
    stream, acks), :class:`~hilrl.transport.client_weights.WeightStream` (weights).
    """

    def __init__(
        self,
        config: TransportConfig,
        actor_id: str,
        run_id: str = "",
        arch_hash: str = "",
        *,
        client_info: str = "",
        start: bool = True,
    ) -> None:
        config.validate()
        if config.port == 0:
            raise ValueError(
                "transport.port must name the learner's port on the actor (0 is for the learner only)"
            )
        if not _ACTOR_ID.match(actor_id):
            raise ValueError(f"actor_id {actor_id!r} must be 1-128 characters of A-Z a-z 0-9 _ . -")
        self.config = config
        self.actor_id = actor_id
        self.run_id = run_id
        self.arch_hash = arch_hash
        self._client_info = client_info
        self._token = config.read_token()
        self._creds = channel_credentials(config)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # Intake (control loop -> sender thread), guarded by _lock.
        self._intake: list[Transition | EpisodeStats] = []
        self._intake_count = 0
        self._first_pending_at: float | None = None
        self._flush_requested = False
        self._closing = False
        self._events: list[_Event] = []
        self._outstanding = 0
        """Transitions + episodes put but neither acknowledged nor dropped yet."""
        self._obs_keys: list[str] | None = None
        # Owned by the sender thread.
        self._backlog: deque[_OutMsg] = deque()
        """Numbered (or not yet numbered) messages to send, in order."""
        self._inflight: deque[_OutMsg] = deque()
        """Sent on the current stream, not yet acknowledged as received."""
        self._retained: deque[_OutMsg] = deque()
        """Received by the learner, not yet durable: copies kept to resend after its crash."""
        self._received_through = 0
        self._evicted_unlogged = 0
        self._evict_logged_at = -float("inf")
        self._next_seq: int | None = None
        self._last_progress = 0.0
        self._backoff = Backoff(
            config.backoff_initial_s, config.backoff_max_s, config.backoff_jitter
        )
        self._generation = 0
        self._session_id = ""
        """The last session this client held (sent at the next handshake to resume it)."""
        self._probed_at = -float("inf")
        self._spool: Spool | None = None
        if config.spool_dir and run_id:
            self._open_spool(run_id)
        # Shared state, guarded by _lock.
        self._link: _Link | None = None
        self._fatal: TransportError | None = None
        self._stats = ActorClientStats(backlog_messages=len(self._backlog))
        self._weights: PolicyUpdate | None = None
        self._threads: list[threading.Thread] = []
        self._started = False
        if start:
            self.start()

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for target, name in ((self._send_loop, "send"), (self._param_loop, "params")):
            thread = threading.Thread(
                target=target, name=f"hilrl-actor-{name}-{self.actor_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def connect(self, timeout_s: float | None = None) -> None:
        """Wait for a session with the learner; raise what went wrong if none comes.

        Not needed before putting data (that never blocks); useful at startup, so a
        wrong address, token or certificate fails now with a message that says what to fix.
        """
        timeout = self.config.handshake_timeout_s * 3 if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._link is None and self._fatal is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LearnerUnreachable(self._unreachable_message(timeout))
                self._wake.wait(min(left, _TICK_S * 4))
            if self._fatal is not None:
                raise self._fatal

    def _unreachable_message(self, waited: float) -> str:
        err = self._stats.last_error or "no answer"
        msg = f"no session with the learner at {self.config.address} after {waited:.1f} s: {err}."
        lowered = err.lower()
        if "connection refused" in lowered:
            msg += " Is the learner running, and are host and port right?"
        elif any(h in lowered for h in _TLS_HINTS):
            msg += (
                " The learner closed the connection during setup: TLS settings probably differ. If the "
                "learner uses TLS, set transport.tls: true and transport.tls_ca (plus tls_cert/tls_key "
                "when it requires client certificates); if it does not, set transport.tls: false."
            )
        elif "deadline" in lowered or "timed out" in lowered:
            msg += " The link may be stalled: check the network between actor and learner."
        return msg

    def flush(self, timeout_s: float) -> bool:
        """Send everything put so far and wait until the learner received it; False on timeout."""
        return self._wait(timeout_s, durable=False)

    def wait_durable(self, timeout_s: float) -> bool:
        """Like :meth:`flush`, then wait until a confirmed learner checkpoint holds it all.

        That takes until the learner's next checkpoint; False on timeout. Returns True at
        once after a flush when the learner runs with ``durable_acks: false``.
        """
        return self._wait(timeout_s, durable=True)

    def _wait(self, timeout_s: float, durable: bool) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._flush_requested = True
            self._wake.notify_all()
            while (
                self._outstanding
                or self._stats.backlog_messages
                or self._stats.inflight_messages
                or (durable and self._stats.retained_messages)
            ):
                if self._fatal is not None or not self._started:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, _TICK_S * 4))
            return True

    def close(self, timeout_s: float | None = None) -> bool:
        """Flush (up to ``timeout_s``, default ``close_timeout_s``), then spool the rest and stop.

        The spool keeps both the unsent messages and the copies of received-but-not-yet
        durable ones, for the next run. Returns True when the learner received everything.
        """
        if not self._started:
            if self._spool is not None:
                self._spool.close()
            return True
        with self._lock:
            if self._closing:
                return False
        timeout = self.config.close_timeout_s if timeout_s is None else timeout_s
        done = self.flush(timeout) if self._fatal is None else False
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=max(5.0, 2 * self.config.handshake_timeout_s))
        self._started = False
        return done

    def __enter__(self) -> ActorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_fatal(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def put_transitions(self, transitions: Sequence[Transition]) -> None:
        """Queue transitions for sending and return at once (never blocks on the network).

        Raises ValueError for a transition that breaks the data contract (keys, dtypes,
        non-finite values) and the stored fatal error after a refusal by the learner.
        When ``max_pending_transitions`` are already waiting, the new ones are dropped
        and counted (this happens only when the sender thread is starved).
        """
        self._raise_fatal()
        if not transitions:
            return
        keys = self._obs_keys
        for i, t in enumerate(transitions):
            keys = codec.check_transition(t, keys, f"transitions[{i}]")
        with self._lock:
            self._obs_keys = keys
            self._stats.transitions_put += len(transitions)
            room = self.config.max_pending_transitions - self._intake_count
            if room < len(transitions):
                dropped = len(transitions) - max(room, 0)
                self._stats.transitions_dropped += dropped
                log.warning("actor %r: intake full, dropped %d transitions", self.actor_id, dropped)
                transitions = transitions[: max(room, 0)]
            if not transitions:
                return
            if self._first_pending_at is None:
                self._first_pending_at = time.monotonic()
            self._intake.extend(transitions)
            self._intake_count += len(transitions)
            self._outstanding += len(transitions)
            if self._intake_count >= self.config.batch_size:
                self._wake.notify_all()

    def put_episode(self, stats: EpisodeStats) -> None:
        """Queue an episode summary; it is sent right after that episode's transitions."""
        self._raise_fatal()
        with self._lock:
            self._intake.append(stats)
            self._outstanding += 1
            self._wake.notify_all()

    def latest(self, newer_than: int) -> PolicyUpdate | None:
        """The newest weights if their version is above ``newer_than``, else None."""
        self._raise_fatal()
        with self._lock:
            if self._weights is not None and self._weights.version > newer_than:
                return self._weights
        return None

    def wait_for_weights(self, newer_than: int, timeout_s: float) -> PolicyUpdate | None:
        """Block until weights newer than ``newer_than`` arrive (e.g. at actor startup)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._weights is None or self._weights.version <= newer_than:
                self._raise_fatal()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._wake.wait(min(left, _TICK_S * 4))
            return self._weights

    def stats(self) -> ActorClientStats:
        with self._lock:
            return replace(self._stats)
