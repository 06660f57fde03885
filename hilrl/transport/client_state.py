"""The parts of an actor client: settings, counters, queued messages, the link.

Shared by the modules of :class:`hilrl.transport.client.ActorClient`.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from hilrl.config.transport import TransportConfig
from hilrl.transport.errors import (
    TransportError,
)
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.spool import Spool
from hilrl.types import EpisodeStats, PolicyUpdate, Transition

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


class _ClientState:
    """The state one actor client shares between its parts (see :class:`ActorClient`).

    Set by :meth:`ActorClient.__init__`. ``_lock`` guards the intake, the events, the
    counters and the link; the backlog, in-flight and retained queues and the spool belong
    to the sender thread.
    """

    config: TransportConfig
    actor_id: str
    run_id: str
    arch_hash: str
    _client_info: str
    _token: str
    _creds: grpc.ChannelCredentials | None
    _lock: threading.Lock
    _wake: threading.Condition
    _intake: list[Transition | EpisodeStats]
    _intake_count: int
    _first_pending_at: float | None
    _flush_requested: bool
    _closing: bool
    _events: list[_Event]
    _outstanding: int
    _obs_keys: list[str] | None
    _backlog: deque[_OutMsg]
    _inflight: deque[_OutMsg]
    _retained: deque[_OutMsg]
    _received_through: int
    _evicted_unlogged: int
    _evict_logged_at: float
    _next_seq: int | None
    _last_progress: float
    _backoff: Backoff
    _generation: int
    _session_id: str
    _probed_at: float
    _spool: Spool | None
    _link: _Link | None
    _fatal: TransportError | None
    _stats: ActorClientStats
    _weights: PolicyUpdate | None
    _threads: list[threading.Thread]
    _started: bool

    @property
    def spool_dir(self) -> Path | None:
        """This actor's spool folder (None: no spool, or not opened yet)."""
        return self._spool.root if self._spool is not None else None
