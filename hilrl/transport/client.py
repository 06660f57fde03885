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
import queue
import random
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc

from hilrl.config.transport import TransportConfig
from hilrl.transport import codec
from hilrl.transport.diagnose import tls_mismatch
from hilrl.transport.errors import (
    AuthenticationError,
    HandshakeRefused,
    LearnerUnreachable,
    ProtocolError,
    TransportError,
)
from hilrl.transport.framing import SEND_DATA_METHOD, Reassembler, encode_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import (
    ACTOR_HEADER,
    AUTH_HEADER,
    SESSION_HEADER,
    bearer,
    channel_credentials,
)
from hilrl.transport.spool import Spool, foreign_spools, spool_root
from hilrl.types import EpisodeStats, LearnerProgress, PolicyUpdate, Transition

log = logging.getLogger("hilrl.transport.client")

_ACTOR_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_TICK_S = 0.05
_PROBE_INTERVAL_S = 10.0
"""At most one TLS diagnosis (a direct handshake with the learner's port) per this interval."""
_EVICT_LOG_INTERVAL_S = 10.0
"""At most one warning per this interval about dropped copies (with the count since)."""
_TLS_HINTS = (
    "socket closed",
    "ssl",
    "tls",
    "handshake",
    "wrong_version",
    "connection reset",
    "certificate",
)


def channel_options(cfg: TransportConfig) -> list[tuple[str, Any]]:
    """gRPC channel options: message caps, keepalive pings, and fast channel reconnects."""
    opts: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.keepalive_time_ms", int(cfg.keepalive_time_s * 1000)),
        ("grpc.keepalive_timeout_ms", int(cfg.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.initial_reconnect_backoff_ms", int(cfg.backoff_initial_s * 1000)),
        ("grpc.min_reconnect_backoff_ms", int(cfg.backoff_initial_s * 1000)),
        ("grpc.max_reconnect_backoff_ms", int(cfg.backoff_max_s * 1000)),
        ("grpc.enable_retries", 0),
    ]
    if cfg.tls_server_name:
        opts.append(("grpc.ssl_target_name_override", cfg.tls_server_name))
    return opts


class Backoff:
    """Exponential delays with jitter: initial, 2x, 4x ... up to the maximum, each +-jitter."""

    def __init__(
        self, initial_s: float, max_s: float, jitter: float, seed: int | None = None
    ) -> None:
        self.initial_s, self.max_s, self.jitter = initial_s, max_s, jitter
        self._failures = 0
        self._rng = random.Random(seed)

    def next(self) -> float:
        base = min(self.max_s, self.initial_s * (2.0 ** min(self._failures, 30)))
        self._failures += 1
        return base * (1.0 + self.jitter * self._rng.uniform(-1.0, 1.0))

    def reset(self) -> None:
        self._failures = 0


@dataclass
class ActorClientStats:
    """Counters of one actor client (a snapshot)."""

    connected: bool = False
    session_id: str = ""
    learner_run_id: str = ""
    last_error: str = ""
    handshakes: int = 0
    transitions_put: int = 0
    transitions_acked: int = 0
    transitions_dropped: int = 0
    """Lost on purpose: the intake or the spool was full, or the learner rejected them."""
    messages_sent: int = 0
    messages_acked: int = 0
    messages_rejected: int = 0
    messages_spooled: int = 0
    """Messages written to the disk spool so far."""
    messages_durable: int = 0
    """Messages the learner confirmed inside a checkpoint (their copies are deleted)."""
    retained_messages: int = 0
    """Copies of messages received by the learner but not yet durable (kept for a crash)."""
    retained_evicted: int = 0
    """Such copies dropped to respect memory_backlog_messages / spool_max_bytes: lost only
    if the learner crashes before its next checkpoint."""
    acked_through: int = 0
    """Received watermark last heard from the learner."""
    durable_through: int = 0
    """Durable watermark last heard from the learner."""
    durable_acks: bool = True
    """The learner's mode: False when it counts data as durable once received."""
    bytes_sent: int = 0
    backlog_messages: int = 0
    inflight_messages: int = 0
    weights_version: int = -1
    weights_received: int = 0


@dataclass
class _OutMsg:
    kind: int
    seq: int | None
    payload: bytes | None
    """None while the message lives only in the spool."""
    path: Path | None
    transitions: int
    """-1 when unknown (a message spooled by an earlier run)."""
    nbytes: int
    items: int = 0
    """Transitions + episodes put in this run that this message carries (for flush)."""
    received: bool = False
    """Acknowledged as received once (counted once, even if a learner restore makes us resend it)."""


@dataclass
class _Link:
    """One live session: a channel, its handshake, and the open data stream."""

    generation: int
    channel: grpc.Channel
    stub: pb_grpc.LearnerStub
    session_id: str
    metadata: tuple[tuple[str, str], ...]
    chunk_bytes: int
    requests: queue.Queue[bytes | None]
    """Serialised frames (see :func:`encode_frames`); None ends the stream."""
    call: Any = None
    param_call: Any = None
    closed: bool = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.requests.put(None)
        for call in (self.call, self.param_call):
            if call is not None:
                call.cancel()
        self.channel.close()


@dataclass
class _Event:
    generation: int
    acked_through: int = -1
    durable_through: int = -1
    rejected: list[tuple[int, str]] = field(default_factory=list)
    error: grpc.RpcError | None = None
    ended: bool = False


def _requests(q: queue.Queue[bytes | None]) -> Iterator[bytes]:
    while True:
        frame = q.get()
        if frame is None:
            return
        yield frame


class ActorClient:
    """gRPC client of one actor (see the module docstring for the loop that drives it)."""

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

    def _open_spool(self, run_id: str) -> None:
        """Open this actor's spool of ``run_id``: its messages go first in the backlog.

        Spools are bound to a run: messages recorded for one learner run never reach
        another. Spools of this actor id left by other runs are reported and kept aside.
        """
        base = Path(self.config.spool_dir).expanduser()
        root = spool_root(base, run_id, self.actor_id)
        self._spool = Spool(root, self.config.spool_max_bytes, self.config.spool_sync_after_s)
        entries = [
            _OutMsg(e.kind, e.sequence, None, e.path, -1, e.nbytes) for e in self._spool.entries()
        ]
        self._backlog.extendleft(reversed(entries))
        if entries:
            log.info(
                "actor %r: %d unacknowledged messages in %s will be resent",
                self.actor_id,
                len(entries),
                root,
            )
        for other in foreign_spools(base, self.actor_id, run_id):
            log.warning(
                "actor %r: the spool %s holds %d messages (%.1f MB) of %s; kept aside, never sent "
                "to this run (%r). Delete the folder when you no longer need that data.",
                self.actor_id,
                other.path,
                other.messages,
                other.nbytes / 1e6,
                f"run {other.run_id!r}" if other.run_id else "an actor started without a run id",
                run_id,
            )

    # ------------------------------------------------------------------ lifecycle

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

    # ------------------------------------------------------ TransitionSink / Source

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

    @property
    def spool_dir(self) -> Path | None:
        return self._spool.root if self._spool is not None else None

    # ---------------------------------------------------------------- sender thread

    def _send_loop(self) -> None:
        next_attempt = 0.0
        try:
            while True:
                with self._lock:
                    closing = self._closing
                self._collect(force=closing)
                if closing:
                    break
                now = time.monotonic()
                can_try = self._link is None and self._fatal is None and now >= next_attempt
                if can_try and not self._connect():
                    next_attempt = time.monotonic() + self._backoff.next()
                if self._link is not None:
                    if not self._handle_events():
                        next_attempt = time.monotonic() + self._backoff.next()
                    elif self._inflight and now - self._last_progress > self.config.ack_timeout_s:
                        self._drop_link(f"no acknowledgement for {self.config.ack_timeout_s:.1f} s")
                        next_attempt = time.monotonic() + self._backoff.next()
                    else:
                        self._send_window()
                self._bound_memory()
                if self._spool is not None:
                    self._spool.sync_due()
                self._publish_counts()
                with self._lock:
                    if not self._closing and not self._events and not self._ready_to_batch():
                        self._wake.wait(_TICK_S)
        except Exception:
            log.exception("actor %r: sender thread failed", self.actor_id)
            with self._lock:
                self._fatal = TransportError("the actor's sender thread failed; see the log above")
        finally:
            self._shutdown()

    def _ready_to_batch(self) -> bool:
        if self._flush_requested and (self._intake or self._intake_count):
            return True
        return self._intake_count >= self.config.batch_size or any(
            isinstance(x, EpisodeStats) for x in self._intake
        )

    def _collect(self, force: bool) -> None:
        """Turn waiting transitions / episodes into numbered messages (full batches first)."""
        cfg = self.config
        with self._lock:
            if not self._intake:
                self._flush_requested = False
                return
            now = time.monotonic()
            timed_out = (
                self._first_pending_at is not None
                and now - self._first_pending_at >= cfg.flush_interval_s
            )
            take_all = force or self._flush_requested or timed_out
            if take_all:
                cut = len(self._intake)
            else:
                # Up to the last episode end, then whole batches only: full batches cost
                # the fewest bytes per transition (each observation is sent once per batch).
                last_episode = max(
                    (i for i, x in enumerate(self._intake) if isinstance(x, EpisodeStats)),
                    default=-1,
                )
                tail = len(self._intake) - last_episode - 1
                cut = last_episode + 1 + (tail // cfg.batch_size) * cfg.batch_size
                if cut == 0:
                    return
            items = self._intake[:cut]
            self._intake = self._intake[cut:]
            self._intake_count = sum(1 for x in self._intake if isinstance(x, Transition))
            self._first_pending_at = now if self._intake_count else None
            self._flush_requested = False
        batch: list[Transition] = []
        for item in [*items, None]:
            if isinstance(item, Transition):
                batch.append(item)
                if len(batch) < cfg.batch_size:
                    continue
            if batch:
                self._enqueue(pb.KIND_TRANSITIONS, codec.encode_transitions(batch), len(batch))
                batch = []
            if isinstance(item, EpisodeStats):
                self._enqueue(pb.KIND_EPISODE, codec.encode_episode(item), 0)

    def _enqueue(self, kind: int, payload: bytes, transitions: int) -> None:
        """Append a new message to the backlog (numbered once the learner told us where to start)."""
        seq = None
        if self._next_seq is not None:
            seq = self._next_seq
            self._next_seq += 1
        items = transitions if kind == pb.KIND_TRANSITIONS else 1
        msg = _OutMsg(kind, seq, payload, None, transitions, len(payload), items)
        if self._spool is not None and (self._link is None or self.config.spool_write_ahead):
            # On disk before it is ever sent (write-ahead; the learner away: only there).
            # An actor killed at any moment then loses nothing that may have reached the
            # learner, even if the learner crashes too before its next checkpoint.
            self._spill(msg, keep_payload=self._link is not None)
        self._backlog.append(msg)

    def _spill(self, msg: _OutMsg, kept: bool = False, keep_payload: bool = False) -> bool:
        """Move a message's payload to the spool; False when the spool is full or absent.

        Room is made by evicting the oldest spooled copies of received messages first
        (the learner has those; only its crash could need them), and, unless ``msg`` is
        such a kept copy itself, then by dropping the oldest spooled unsent messages.
        ``keep_payload``: write it but keep the bytes in memory too (write-ahead).
        """
        spool = self._spool
        if spool is None or msg.nbytes > spool.max_bytes:
            return False
        if msg.path is not None:  # written ahead: already on disk
            if not keep_payload:
                msg.payload = None
            return True
        if msg.payload is None:
            return False
        why = f"spool over transport.spool_max_bytes={spool.max_bytes}"
        while spool.total_bytes + msg.nbytes > spool.max_bytes:
            copy = next((m for m in self._retained if m.path is not None), None)
            if copy is not None:
                self._retained.remove(copy)
                self._evict(copy, why)
                continue
            if kept:
                return False
            victim = next((m for m in self._backlog if m.path is not None), None)
            if victim is None:
                return False
            self._backlog.remove(victim)
            self._drop(victim, why)
        msg.path = spool.write(msg.kind, msg.payload, msg.seq)
        if not keep_payload:
            msg.payload = None
        with self._lock:
            self._stats.messages_spooled += 1
        return True

    def _evict(self, msg: _OutMsg, why: str) -> None:
        """Drop the kept copy of a received, not yet durable message (a bound was hit)."""
        if msg.path is not None and self._spool is not None:
            self._spool.delete(msg.path)
        msg.path = msg.payload = None
        with self._lock:
            self._stats.retained_evicted += 1
        self._evicted_unlogged += 1
        now = time.monotonic()
        if now - self._evict_logged_at >= _EVICT_LOG_INTERVAL_S:
            log.warning(
                "actor %r: %s: dropped the kept copies of %d messages (up to #%s) that the "
                "learner received but has not confirmed in a checkpoint yet; they are lost "
                "only if the learner crashes before its next checkpoint. Is the learner "
                "checkpointing (mark_durable)? If it never does, set transport.durable_acks: "
                "false on the learner; otherwise raise spool_max_bytes or checkpoint more often.",
                self.actor_id,
                why,
                self._evicted_unlogged,
                msg.seq,
            )
            self._evicted_unlogged = 0
            self._evict_logged_at = now

    def _drop(self, msg: _OutMsg, why: str) -> None:
        if msg.path is not None and self._spool is not None:
            self._spool.delete(msg.path)
        with self._lock:
            self._stats.transitions_dropped += max(msg.transitions, 0)
            self._outstanding -= msg.items
        log.warning("actor %r: dropped message %s (%s)", self.actor_id, msg.seq, why)

    def _bound_memory(self) -> None:
        """Keep at most ``memory_backlog_messages`` payloads in memory; spill or drop older ones.

        Kept copies of received messages go to disk first (or, with no room there, are
        evicted), so unsent data stays in memory longest.
        """
        queues = (self._retained, self._inflight, self._backlog)
        excess = sum(m.payload is not None for q in queues for m in q)
        excess -= self.config.memory_backlog_messages
        if excess <= 0:
            return
        for msg in list(self._retained):
            if excess <= 0:
                break
            if msg.payload is None:
                continue
            if not self._spill(msg, kept=True):
                self._retained.remove(msg)
                self._evict(msg, "memory_backlog_messages reached and no room in a spool")
            excess -= 1
        for msg in list(self._backlog):
            if excess <= 0:
                break
            if msg.payload is None:
                continue
            if not self._spill(msg):
                self._backlog.remove(msg)
                self._drop(msg, "memory backlog full and no room in a spool")
            excess -= 1

    def _publish_counts(self) -> None:
        with self._lock:
            self._stats.backlog_messages = len(self._backlog)
            self._stats.inflight_messages = len(self._inflight)
            self._stats.retained_messages = len(self._retained)
            self._wake.notify_all()

    # ------------------------------------------------------------ session handling

    def _metadata(self, session_id: str = "") -> tuple[tuple[str, str], ...]:
        md = [(ACTOR_HEADER, self.actor_id)]
        if self._token:
            md.append((AUTH_HEADER, bearer(self._token)))
        if session_id:
            md.append((SESSION_HEADER, session_id))
        return tuple(md)

    def _connect(self) -> bool:
        cfg = self.config
        if self._creds is not None:
            channel = grpc.secure_channel(cfg.address, self._creds, options=channel_options(cfg))
        else:
            channel = grpc.insecure_channel(cfg.address, options=channel_options(cfg))
        stub = pb_grpc.LearnerStub(channel)
        request = pb.HandshakeRequest(
            actor_id=self.actor_id,
            run_id=self.run_id,
            schema_version=codec.SCHEMA_VERSION,
            arch_hash=self.arch_hash,
            client_info=self._client_info,
            previous_session_id=self._session_id,
        )
        try:
            reply = stub.Handshake(
                request, timeout=cfg.handshake_timeout_s, metadata=self._metadata()
            )
            if not reply.accepted:
                raise HandshakeRefused(reply.reason, reply.retryable)
        except grpc.RpcError as exc:
            channel.close()
            code, detail = exc.code(), exc.details() or ""  # type: ignore[attr-defined]
            if code == grpc.StatusCode.UNAUTHENTICATED:
                self._set_fatal(
                    AuthenticationError(
                        f"learner at {cfg.address} refused the credentials: {detail}"
                    )
                )
            elif problem := self._tls_problem(code, detail):
                self._set_fatal(LearnerUnreachable(problem))
            else:
                self._note_error(f"{code.name}: {detail}")
            return False
        except HandshakeRefused as exc:
            channel.close()
            if exc.retryable:
                self._note_error(str(exc))
            else:
                self._set_fatal(exc)
            return False
        if self._spool is None and cfg.spool_dir:
            # Started without a run id: this actor's data belongs to the run of the first
            # learner it reached; a learner of another run refuses it from now on.
            self.run_id = reply.learner_run_id
            self._open_spool(self.run_id or "_no_run")
        self._start_session(channel, stub, reply)
        return True

    def _tls_problem(self, code: grpc.StatusCode, detail: str) -> str:
        """A TLS mismatch named from a failed handshake (probing at most every few seconds)."""
        if code != grpc.StatusCode.UNAVAILABLE:
            return ""
        now = time.monotonic()
        if now - self._probed_at < _PROBE_INTERVAL_S:
            return ""
        self._probed_at = now
        return tls_mismatch(self.config, detail, timeout_s=self.config.handshake_timeout_s)

    def _set_fatal(self, exc: TransportError) -> None:
        log.error("actor %r: %s", self.actor_id, exc)
        with self._lock:
            self._fatal = exc
            self._stats.last_error = str(exc)
            self._wake.notify_all()

    def _note_error(self, text: str) -> None:
        with self._lock:
            changed = text != self._stats.last_error
            self._stats.last_error = text
        if changed:  # one line per new reason, not one per retry
            log.info("actor %r: learner not reachable yet (%s); retrying", self.actor_id, text)

    def _reconcile(self, received: int, durable: int) -> None:
        """Line up what we hold with the learner's watermarks from a handshake.

        Unacknowledged messages go back in front of the backlog. Kept copies above the
        received watermark mean the learner lost them (it was restored from a checkpoint
        after a crash): they go back in front too, before everything newer, to be resent.
        Backlog messages up to the received watermark are ones the learner already has
        (e.g. spooled by an earlier run, or acks lost with the connection): kept, not resent.
        """
        self._backlog.extendleft(reversed(self._inflight))
        self._inflight.clear()
        kept = sorted(self._retained, key=lambda m: m.seq or 0)
        lost = [m for m in kept if (m.seq or 0) > received]
        self._retained = deque(m for m in kept if (m.seq or 0) <= received)
        self._backlog.extendleft(reversed(lost))
        if received < self._received_through:
            log.warning(
                "actor %r: the learner now has messages up to #%d only, after acknowledging up "
                "to #%d (restored from a checkpoint?); resending %d kept messages from there",
                self.actor_id,
                received,
                self._received_through,
                len(lost),
            )
        self._received_through = received
        backlog, self._backlog = self._backlog, deque()
        for msg in backlog:
            if msg.seq is not None and msg.seq <= received:
                self._received(msg)
            else:
                self._backlog.append(msg)
        self._retained = deque(sorted(self._retained, key=lambda m: m.seq or 0))
        self._release_durable(durable)
        with self._lock:
            self._stats.acked_through = received
            self._stats.durable_through = durable

    def _start_session(
        self, channel: grpc.Channel, stub: pb_grpc.LearnerStub, reply: pb.HandshakeReply
    ) -> None:
        last = int(reply.last_acked_sequence)
        durable = min(int(reply.durable_sequence), last)
        self._reconcile(last, durable)
        # Number above everything the learner accepted (some of it may still sit in its
        # ingest queue, to be acknowledged later) and above everything we ever numbered.
        floor = max(last, int(reply.last_accepted_sequence))
        if self._next_seq is None:
            highest = max((m.seq for m in self._backlog if m.seq is not None), default=0)
            self._next_seq = max(floor, highest) + 1
            for msg in self._backlog:
                if msg.seq is None:
                    msg.seq = self._next_seq
                    self._next_seq += 1
                    if msg.path is not None and self._spool is not None:
                        msg.path = self._spool.number(msg.path, msg.kind, msg.seq)
        else:
            self._next_seq = max(self._next_seq, floor + 1)
        self._generation += 1
        self._session_id = reply.session_id
        chunk = min(self.config.chunk_bytes, int(reply.chunk_bytes) or self.config.chunk_bytes)
        link = _Link(
            generation=self._generation,
            channel=channel,
            stub=stub,
            session_id=reply.session_id,
            metadata=self._metadata(reply.session_id),
            chunk_bytes=chunk,
            requests=queue.Queue(),
        )
        # Frames are serialised by encode_frames (one copy of each chunk), so this call
        # takes bytes as they are instead of the stub's Frame.SerializeToString.
        send_data = channel.stream_stream(
            SEND_DATA_METHOD, request_serializer=None, response_deserializer=pb.Ack.FromString
        )
        link.call = send_data(_requests(link.requests), metadata=link.metadata)
        threading.Thread(
            target=self._read_acks,
            args=(link,),
            name=f"hilrl-actor-acks-{self.actor_id}",
            daemon=True,
        ).start()
        self._backoff.reset()
        self._last_progress = time.monotonic()
        with self._lock:
            self._link = link
            self._stats.connected = True
            self._stats.session_id = reply.session_id
            self._stats.learner_run_id = reply.learner_run_id
            self._stats.handshakes += 1
            self._stats.last_error = ""
            self._stats.durable_acks = bool(reply.durable_acks)
            # Counts with the handshake, so a flush() right after it sees the resends.
            self._stats.backlog_messages = len(self._backlog)
            self._stats.inflight_messages = len(self._inflight)
            self._stats.retained_messages = len(self._retained)
            self._wake.notify_all()
        log.info(
            "actor %r: session with learner %s, resuming after message %d (durable through %d)",
            self.actor_id,
            self.config.address,
            last,
            durable,
        )

    def _read_acks(self, link: _Link) -> None:
        event: _Event
        try:
            for ack in link.call:
                event = _Event(
                    link.generation,
                    int(ack.acked_through),
                    int(ack.durable_through),
                    [(r.sequence, r.reason) for r in ack.rejected],
                )
                with self._lock:
                    self._events.append(event)
                    self._wake.notify_all()
            event = _Event(link.generation, ended=True)
        except grpc.RpcError as exc:
            event = _Event(link.generation, error=exc)
        with self._lock:
            self._events.append(event)
            self._wake.notify_all()

    def _handle_events(self) -> bool:
        """Apply acks and stream ends of the current link; False when the link was dropped."""
        link = self._link
        assert link is not None
        with self._lock:
            events, self._events = self._events, []
        for event in events:
            if event.generation != link.generation:
                continue
            if event.error is not None or event.ended:
                err = event.error
                code = err.code() if err is not None else None  # type: ignore[attr-defined]
                detail = (err.details() if err is not None else "") or "stream ended"  # type: ignore[attr-defined]
                if code == grpc.StatusCode.UNAUTHENTICATED:
                    self._drop_link(detail)
                    self._set_fatal(
                        AuthenticationError(f"learner refused the credentials: {detail}")
                    )
                else:
                    self._drop_link(f"{code.name if code else 'END'}: {detail}")
                return False
            rejected = dict(event.rejected)
            for msg in list(self._inflight):
                if msg.seq in rejected:
                    self._inflight.remove(msg)
                    with self._lock:
                        self._stats.messages_rejected += 1
                    self._drop(msg, f"rejected by the learner: {rejected[msg.seq]}")
            while self._inflight and (self._inflight[0].seq or 0) <= event.acked_through:
                self._received(self._inflight.popleft())
                self._last_progress = time.monotonic()
            self._received_through = max(self._received_through, event.acked_through)
            self._release_durable(min(event.durable_through, event.acked_through))
            with self._lock:
                self._stats.acked_through = self._received_through
                self._stats.durable_through = max(
                    self._stats.durable_through, event.durable_through
                )
        return True

    def _received(self, msg: _OutMsg) -> None:
        """The learner has it: stop resending, keep a copy until it is durable."""
        if not msg.received:
            msg.received = True
            with self._lock:
                self._outstanding -= msg.items
                self._stats.messages_acked += 1
                self._stats.transitions_acked += max(msg.transitions, 0)
            msg.items = 0
        self._retained.append(msg)

    def _release_durable(self, through: int) -> None:
        """Delete the copies of messages a confirmed learner checkpoint now holds."""
        released = 0
        while self._retained and (self._retained[0].seq or 0) <= through:
            msg = self._retained.popleft()
            if msg.path is not None and self._spool is not None:
                self._spool.delete(msg.path)
            released += 1
        if released:
            with self._lock:
                self._stats.messages_durable += released

    def _send_window(self) -> None:
        link = self._link
        assert link is not None
        while self._backlog and len(self._inflight) < self.config.max_inflight_messages:
            msg = self._backlog[0]
            assert msg.seq is not None
            if msg.payload is not None:
                payload = msg.payload
            else:
                assert msg.path is not None and self._spool is not None
                try:
                    payload = self._spool.read(msg.path)
                except OSError as exc:
                    self._backlog.popleft()
                    self._drop(msg, f"spool file unreadable: {exc}")
                    continue
            for frame in encode_frames(msg.kind, payload, msg.seq, self.actor_id, link.chunk_bytes):
                link.requests.put(frame)
            self._backlog.popleft()
            if not self._inflight:
                self._last_progress = time.monotonic()
            self._inflight.append(msg)
            with self._lock:
                self._stats.messages_sent += 1
                self._stats.bytes_sent += len(payload)

    def _drop_link(self, why: str) -> None:
        link = self._link
        if link is None:
            return
        log.warning(
            "actor %r: connection to the learner lost (%s); reconnecting", self.actor_id, why
        )
        link.close()
        self._backlog.extendleft(reversed(self._inflight))
        self._inflight.clear()
        with self._lock:
            self._link = None
            self._stats.connected = False
            self._stats.session_id = ""
            self._stats.last_error = why
            self._wake.notify_all()

    def _shutdown(self) -> None:
        """Stop the session; keep whatever is unacknowledged in the spool for the next run."""
        if self._link is not None:
            self._link.close()
            with self._lock:
                self._link = None
                self._stats.connected = False
        self._backlog.extendleft(reversed(self._inflight))
        self._inflight.clear()
        lost = 0
        for msg in self._backlog:
            if msg.payload is not None and not self._spill(msg):
                lost += 1
        for msg in list(self._retained):
            if msg.payload is not None and not self._spill(msg, kept=True):
                self._retained.remove(msg)
                self._evict(msg, "closing with no room in a spool")
        if lost:
            log.warning(
                "actor %r: %d unacknowledged messages lost at close (no spool)", self.actor_id, lost
            )
        elif self._backlog:
            log.warning(
                "actor %r: %d unacknowledged messages kept in %s for the next run",
                self.actor_id,
                len(self._backlog),
                self.spool_dir,
            )
        if self._retained:
            log.info(
                "actor %r: copies of %d received messages not yet in a learner checkpoint "
                "kept in %s for the next run",
                self.actor_id,
                len(self._retained),
                self.spool_dir,
            )
        if self._spool is not None:
            self._spool.close()
        self._publish_counts()

    # ---------------------------------------------------------------- weights thread

    def _param_loop(self) -> None:
        seen_generation = -1
        while True:
            with self._lock:
                while not self._closing and (
                    self._link is None or self._link.generation == seen_generation
                ):
                    self._wake.wait(_TICK_S * 4)
                if self._closing:
                    return
                link = self._link
                have = self._weights.version if self._weights is not None else -1
            assert link is not None
            seen_generation = link.generation
            try:
                self._stream_weights(link, have)
            except grpc.RpcError as exc:
                if not link.closed:
                    code = exc.code()  # type: ignore[attr-defined]
                    log.info("actor %r: weight stream ended (%s)", self.actor_id, code)
                    if code != grpc.StatusCode.FAILED_PRECONDITION:
                        seen_generation = -1  # same session: reopen after a pause
                        time.sleep(self.config.backoff_initial_s)
            except ProtocolError as exc:
                log.error("actor %r: invalid weights from the learner: %s", self.actor_id, exc)
                seen_generation = -1
                time.sleep(self.config.backoff_initial_s)

    def _stream_weights(self, link: _Link, have: int) -> None:
        request = pb.ParameterRequest(have_version=have)
        call = link.stub.StreamParameters(request, metadata=link.metadata)
        link.param_call = call
        if link.closed:
            call.cancel()
            return
        reassembler = Reassembler(
            self.config.max_payload_bytes,
            self.config.max_message_bytes,
            (pb.KIND_WEIGHTS,),
            None,
        )
        for frame in call:
            msg = reassembler.feed(frame)
            if msg is None:
                continue
            msg.verify()
            version, weights = codec.decode_weights(msg.payload)
            if version != msg.sequence:
                raise ProtocolError(f"weights say version {version}, their frame {msg.sequence}")
            progress = (
                codec.decode_progress(msg.progress)
                if msg.progress is not None
                else LearnerProgress()
            )
            with self._lock:
                if self._weights is None or version > self._weights.version:
                    self._weights = PolicyUpdate(version, weights, progress)
                    self._stats.weights_version = version
                    self._stats.weights_received += 1
                    self._wake.notify_all()
