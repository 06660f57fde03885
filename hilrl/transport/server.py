"""The learner's gRPC service: many actors in, weights out, each message delivered once.

The learner process runs it like this::

    server = LearnerServer(cfg.transport, on_transitions=ingest, on_episode=log_episode,
                           run_id=run_id, arch_hash=arch_hash)
    server.load_state_dict(checkpoint["transport"])   # when resuming
    server.start()
    while training:
        metrics = algorithm.update(sampler.next())
        if publish_due:
            server.publish_weights(algorithm.policy_weights(), version)
        if checkpoint_due:
            with server.ingest_paused():           # replay + ack state from one instant
                state = server.state_dict()
                snapshot = replay_buffer.state_dict()
            save(snapshot, state)                  # ingest may go on meanwhile
            server.mark_durable(state)             # actors may now delete that data
    server.stop()

Threads: gRPC handler threads only read, check and decode; the callbacks run on one ingest
thread that the training thread never waits on. The bounded ingest queue is the
backpressure: when it is full, readers stop reading, gRPC flow control stops the actors'
streams, and the actors hold (and spool) their data instead of the learner growing.

Exactly once, even across a learner crash: every actor numbers its messages, and the
learner acknowledges them (cumulatively) at two levels:

* *received*: the message's callback returned. The actor stops resending it in this
  session; duplicates (resends after a reconnect) are recognised by (actor id, sequence
  number) and dropped.
* *durable*: a checkpoint that holds it is saved, and the learner said so with
  :meth:`LearnerServer.mark_durable`. Only now may the actor delete its copy.

The per-actor received watermarks are the :meth:`LearnerServer.state_dict`; taken under
:meth:`LearnerServer.ingest_paused` with the replay buffer, they match what that replay
holds. A learner killed at any point and restored from its last checkpoint reports that
checkpoint's watermarks at the next handshake, and every actor resends what lies above
them from the copies it kept: nothing lost, nothing twice. With ``durable_acks: false``
(a learner that never checkpoints) data counts as durable once received, as in v1.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field, replace
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hilrl.config.transport import TransportConfig
from hilrl.transport import codec
from hilrl.transport.budget import MemoryBudget
from hilrl.transport.errors import ProtocolError
from hilrl.transport.framing import Message, Reassembler, make_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import (
    SESSION_HEADER,
    ActorCredentials,
    TokenInterceptor,
    check_exposure,
    server_credentials,
)
from hilrl.transport.state import make_state, parse_state
from hilrl.types import EpisodeStats, LearnerProgress, Transition

log = logging.getLogger("hilrl.transport.server")

TransitionsCallback = Callable[[str, list[Transition]], None]
"""``on_transitions(actor_id, transitions)``: called on the ingest thread, in order per actor."""
EpisodeCallback = Callable[[str, EpisodeStats], None]
"""``on_episode(actor_id, stats)``: called on the ingest thread after that episode's transitions."""

SERVICE_NAME = "hilrl.transport.v1.Learner"
ACTOR_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
MAX_SEQUENCE = 1 << 62
_POLL_S = 0.25
_HANDSHAKE_GRACE_S = 10.0
"""A session counts as live this long after its handshake, before its stream opens."""


@dataclass
class ActorStats:
    """What the learner knows about one actor (a snapshot; safe to keep)."""

    actor_id: str
    connected: bool = False
    peer: str = ""
    session_id: str = ""
    handshakes: int = 0
    messages: int = 0
    transitions: int = 0
    episodes: int = 0
    bytes_received: int = 0
    duplicates: int = 0
    rejected: int = 0
    missing: int = 0
    """Sequence numbers skipped by the actor (data it lost before sending, e.g. a kill -9)."""
    ingest_errors: int = 0
    """Messages the learner's ingest callback refused (e.g. a value that is not finite in
    the learner's storage dtype); rejected back to the actor with the reason."""
    refused_handshakes: int = 0
    """Handshakes for this id refused because another session of it was live, or its
    credentials did not match the id."""
    acked_through: int = 0
    """Received watermark: every message up to here was delivered to the callbacks."""
    durable_through: int = 0
    """Durable watermark: every message up to here is in a confirmed checkpoint."""
    last_seen: float = 0.0
    """time.time() of the last handshake or message."""


@dataclass
class _Actor:
    stats: ActorStats
    accepted: int = 0
    delivered: int = 0
    durable: int = 0
    streams: int = 0
    handshake_at: float = 0.0
    proven: bool = False
    """The current session delivered a valid message (it may then use the full budget)."""
    rejections: list[tuple[int, str]] = field(default_factory=list)
    enqueue_lock: threading.Lock = field(default_factory=threading.Lock)

    def live(self, now: float) -> bool:
        if not self.stats.session_id:
            return False
        return self.streams > 0 or now - self.handshake_at < _HANDSHAKE_GRACE_S


@dataclass
class IngestItem:
    """One accepted message on its way to the learner's callbacks (gRPC and in-process)."""

    actor_id: str
    sequence: int
    payload: list[Transition] | EpisodeStats | None
    """None for a rejected message: it only advances the high-water mark, in order."""
    nbytes: int = 0
    """Bytes of the learner's transit budget this message holds until it is delivered."""


_STOP = object()


@dataclass
class _Weights:
    version: int
    frames: list[pb.Frame]


@dataclass
class _StreamState:
    done: bool = False
    error: tuple[grpc.StatusCode, str] | None = None


def server_options(cfg: TransportConfig) -> list[tuple[str, Any]]:
    """gRPC server options: message caps and keepalive that tolerates the actors' pings."""
    keepalive_ms = int(cfg.keepalive_time_s * 1000)
    return [
        ("grpc.max_receive_message_length", cfg.max_message_bytes),
        ("grpc.max_send_message_length", cfg.max_message_bytes),
        ("grpc.keepalive_time_ms", keepalive_ms),
        ("grpc.keepalive_timeout_ms", int(cfg.keepalive_timeout_s * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", max(100, keepalive_ms // 2)),
        ("grpc.http2.min_ping_interval_without_data_ms", max(100, keepalive_ms // 2)),
        ("grpc.http2.max_ping_strikes", 0),
        ("grpc.so_reuseport", 0),
        ("grpc.http2.bdp_probe", 0),
    ]


def deliver(
    item: IngestItem, on_transitions: TransitionsCallback, on_episode: EpisodeCallback
) -> str:
    """Hand one message's payload to the learner's callback; why it failed, or "".

    A callback refuses a message by raising (``ValueError`` for data that breaks the
    learner's contract, e.g. a reward that is not finite in float32; anything else is a
    learner bug and logged with its traceback). The caller turns the reason into a
    counted rejection that goes back to the actor: the message is never reported as
    received, and ingest moves on (resending it would fail the same way forever).
    """
    try:
        if isinstance(item.payload, EpisodeStats):
            on_episode(item.actor_id, item.payload)
        elif item.payload is not None:
            on_transitions(item.actor_id, item.payload)
    except ValueError as exc:
        log.warning("learner refused message %d of actor %r: %s", item.sequence, item.actor_id, exc)
        return f"refused by the learner: {exc}"[:500]
    except Exception as exc:
        log.exception(
            "ingest callback failed on message %d of actor %r", item.sequence, item.actor_id
        )
        return f"the learner failed to ingest it: {exc!r}"[:500]
    return ""


def _frame_or_none(data: bytes) -> pb.Frame | None:
    """Request deserialiser of the data stream: None for bytes that are not a Frame.

    With the generated one an undecodable frame kills the stream inside gRPC; this way
    it is one counted rejection and the stream goes on.
    """
    try:
        return pb.Frame.FromString(data)
    except Exception:
        return None


class LearnerServer:
    """gRPC learner endpoint serving up to ``config.max_actors`` actors at once.

    ``run_id`` and ``arch_hash`` are checked at the handshake (empty accepts any). Port 0
    in the config picks a free port; read it back from :attr:`port` after :meth:`start`.
    """

    def __init__(
        self,
        config: TransportConfig,
        on_transitions: TransitionsCallback,
        on_episode: EpisodeCallback,
        *,
        run_id: str = "",
        arch_hash: str = "",
        max_transitions_per_message: int = codec.MAX_TRANSITIONS_PER_MESSAGE,
    ) -> None:
        config.validate()
        check_exposure(config)
        self.config = config
        self.run_id = run_id
        self.arch_hash = arch_hash
        self._on_transitions = on_transitions
        self._on_episode = on_episode
        self._max_transitions = max_transitions_per_message
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._actors: dict[str, _Actor] = {}
        self._sessions: dict[str, str] = {}
        self._weights: _Weights | None = None
        self._queue: queue.Queue[IngestItem | object] = queue.Queue(
            maxsize=config.ingest_queue_messages
        )
        self._ingest_gate = threading.Lock()
        self._stopping = threading.Event()
        self._ingest_thread: threading.Thread | None = None
        self._grpc: grpc.Server | None = None
        self._health: health.HealthServicer | None = None
        self._port = 0
        self._credentials = ActorCredentials.from_config(config)
        self.budget = MemoryBudget(config.max_unfinished_bytes)
        """Bytes held for messages in transit (partial, or waiting for the ingest thread)."""
        self.protocol_errors = 0
        """Messages or frames refused before any session owned them (e.g. fuzz, bad sessions)."""

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (the configured one, or the free one picked for port 0)."""
        return self._port

    def start(self) -> LearnerServer:
        if self._grpc is not None:
            raise RuntimeError("LearnerServer already started")
        cfg = self.config
        rpcs = 3 * cfg.max_actors + 4
        tokens = self._credentials.tokens
        interceptors = [TokenInterceptor(tokens)] if tokens else []
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=rpcs, thread_name_prefix="hilrl-grpc"),
            options=server_options(cfg),
            interceptors=interceptors,
            maximum_concurrent_rpcs=rpcs,
        )
        server.add_generic_rpc_handlers((_handlers(_Servicer(self)),))
        self._health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        creds = server_credentials(cfg)
        try:
            port = (
                server.add_secure_port(cfg.address, creds)
                if creds
                else server.add_insecure_port(cfg.address)
            )
        except RuntimeError as exc:
            raise OSError(f"learner cannot listen on {cfg.address}: {exc} (port in use?)") from exc
        if port == 0:
            raise OSError(f"learner cannot listen on {cfg.address} (port in use?)")
        self._port = port
        self._stopping.clear()
        self._ingest_thread = threading.Thread(
            target=self._ingest_loop, name="hilrl-ingest", daemon=True
        )
        self._ingest_thread.start()
        server.start()
        self._grpc = server
        for name in ("", SERVICE_NAME):
            self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "learner listening on %s:%d (tls=%s, token=%s)",
            cfg.host,
            port,
            cfg.tls,
            bool(interceptors),
        )
        return self

    def stop(self, grace_s: float = 2.0) -> None:
        """Stop serving, then deliver everything already accepted (the ack state stays exact)."""
        if self._grpc is None:
            return
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        self._stopping.set()
        with self._lock:
            self._changed.notify_all()
        self._grpc.stop(grace_s).wait(grace_s + 5.0)
        self._grpc = None
        self._queue.put(_STOP)
        if self._ingest_thread is not None:
            self._ingest_thread.join()
            self._ingest_thread = None
        with self._lock:
            for actor in self._actors.values():
                actor.stats.connected = False
                actor.stats.session_id = ""
            self._sessions.clear()

    def __enter__(self) -> LearnerServer:
        if self._grpc is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- public API

    def publish_weights(
        self,
        weights: Mapping[str, np.ndarray],
        version: int,
        progress: LearnerProgress | None = None,
    ) -> None:
        """Make ``weights`` the latest; every connected actor receives them once (no backlog).

        Versions must increase. Encoding happens here, once, for all actors. ``progress``
        (the learner's updates, env steps and the actors' step allowance) travels with them.
        """
        payload = codec.encode_weights(weights, version)
        record = codec.encode_progress(progress or LearnerProgress())
        if len(payload) > self.config.max_payload_bytes:
            raise ValueError(
                f"weights of {len(payload)} bytes exceed transport.max_payload_bytes={self.config.max_payload_bytes}"
            )
        frames = make_frames(pb.KIND_WEIGHTS, payload, version, "", self.config.chunk_bytes, record)
        with self._lock:
            if self._weights is not None and version <= self._weights.version:
                raise ValueError(
                    f"weights version {version} is not newer than {self._weights.version}"
                )
            self._weights = _Weights(version, frames)
            self._changed.notify_all()

    def state_dict(self) -> dict[str, Any]:
        """Per-actor delivered sequence numbers: save them with the replay buffer.

        Take it under :meth:`ingest_paused`, together with the replay snapshot, so both
        describe the same instant; after saving them, pass it to :meth:`mark_durable`.
        """
        with self._lock:
            return make_state(self.run_id, {aid: a.delivered for aid, a in self._actors.items()})

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the watermarks of a checkpoint (before actors reconnect).

        A loaded state is a saved checkpoint, hence durable: received and durable
        watermarks both start there, and actors resend whatever lies above them.
        """
        acked = parse_state(state, self.run_id)
        with self._lock:
            for actor_id, seq in acked.items():
                actor = self._actor(actor_id)
                actor.accepted = actor.delivered = actor.durable = seq
                actor.stats.acked_through = actor.stats.durable_through = seq

    def mark_durable(self, state: Mapping[str, Any]) -> None:
        """Confirm that a checkpoint holding ``state`` (a :meth:`state_dict`) is saved.

        Actors then delete their copies of every message up to its watermarks. Call it
        after the checkpoint is safely on disk, never before: the copies are what makes a
        crash before that point lossless. Watermarks only move forward (an older state is
        ignored) and never past what was delivered. With ``durable_acks: false`` data is
        durable once delivered, and this only checks ``state``.
        """
        acked = parse_state(state, self.run_id)
        if not self.config.durable_acks:
            return
        with self._lock:
            for actor_id, seq in acked.items():
                actor = self._actors.get(actor_id)
                if actor is None:
                    continue
                mark = min(seq, actor.delivered)
                if mark > actor.durable:
                    actor.durable = actor.stats.durable_through = mark
            self._changed.notify_all()

    def actor_stats(self) -> dict[str, ActorStats]:
        with self._lock:
            now = time.time()
            out = {}
            for aid, a in self._actors.items():
                out[aid] = replace(
                    a.stats,
                    connected=a.live(now),
                    acked_through=a.delivered,
                    durable_through=a.durable,
                )
            return out

    @contextlib.contextmanager
    def ingest_paused(self) -> Iterator[None]:
        """Hold the ingest thread between two callbacks (for a consistent checkpoint).

        Inside it, :meth:`state_dict` counts exactly the messages whose callbacks ran.
        """
        with self._ingest_gate:
            yield

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every accepted message has been delivered; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while any(a.delivered < a.accepted for a in self._actors.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, _POLL_S))
        return True

    # ------------------------------------------------------------------- ingest

    def _ingest_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, IngestItem)
            with self._ingest_gate:
                error = deliver(item, self._on_transitions, self._on_episode)
                self.budget.release(item.nbytes)
                # Still under the gate: a state_dict() taken in ingest_paused() must count
                # every message whose callback ran, or a restore would take it again.
                with self._lock:
                    actor = self._actors[item.actor_id]
                    if error:
                        # In the same ack as the watermark that passes it: the actor drops
                        # it as rejected (counted), never as received.
                        actor.stats.ingest_errors += 1
                        actor.stats.rejected += 1
                        actor.rejections.append((item.sequence, error))
                    actor.delivered = max(actor.delivered, item.sequence)
                    if not self.config.durable_acks:
                        actor.durable = actor.stats.durable_through = actor.delivered
                    self._changed.notify_all()

    # ------------------------------------------------------------- session logic

    def _actor(self, actor_id: str) -> _Actor:
        actor = self._actors.get(actor_id)
        if actor is None:
            actor = self._actors[actor_id] = _Actor(ActorStats(actor_id))
        return actor

    def handshake(
        self,
        request: pb.HandshakeRequest,
        peer: str,
        metadata: Mapping[str, Any] | None = None,
        auth_context: Mapping[str, Any] | None = None,
    ) -> pb.HandshakeReply:
        """Open a session for ``request.actor_id`` (or say why not, as what to fix).

        ``metadata`` and ``auth_context`` are the call's (token, client certificate): with
        per-actor tokens or certificate binding they must speak for this actor id. While
        a session of the id is live, only the client holding it (it sends its id as
        ``previous_session_id``) may replace it: another client cannot take the id over.
        """

        def refuse(reason: str, retryable: bool = False) -> pb.HandshakeReply:
            log.warning("refused actor %r from %s: %s", request.actor_id[:140], peer, reason)
            return pb.HandshakeReply(
                accepted=False,
                reason=reason,
                retryable=retryable,
                learner_run_id=self.run_id,
                schema_version=codec.SCHEMA_VERSION,
            )

        if not ACTOR_ID_PATTERN.match(request.actor_id):
            return refuse(
                f"actor id {request.actor_id!r:.140} must be 1-128 characters of A-Z a-z 0-9 _ . -"
            )
        if request.schema_version != codec.SCHEMA_VERSION:
            return refuse(
                f"the actor speaks wire schema v{request.schema_version}, the learner v{codec.SCHEMA_VERSION}: "
                "run the same hilrl version on both machines"
            )
        if self.arch_hash and request.arch_hash != self.arch_hash:
            return refuse(
                f"policy architecture differs (actor {request.arch_hash[:16]!r}, learner {self.arch_hash[:16]!r}): "
                "start the actor with the same policy config as the learner"
            )
        if self.run_id and request.run_id and request.run_id != self.run_id:
            return refuse(
                f"the actor belongs to run {request.run_id!r} but the learner runs {self.run_id!r}: "
                "start the actor with the learner's run id (its spool holds data of the other run)"
            )
        denied = self._credentials.refusal(request.actor_id, metadata or {}, auth_context or {})
        if denied:
            with self._lock:
                self._actor(request.actor_id).stats.refused_handshakes += 1
            return refuse(denied)
        with self._lock:
            now = time.time()
            actor = self._actors.get(request.actor_id)
            if (
                actor is not None
                and actor.live(now)
                and request.previous_session_id != actor.stats.session_id
            ):
                actor.stats.refused_handshakes += 1
                return refuse(
                    f"actor id {request.actor_id!r} already has a live session (from "
                    f"{actor.stats.peer}); a second client with the same id is refused until that "
                    "session ends (give every actor its own id; a restarted actor gets in within "
                    "seconds, once the old connection is gone)",
                    retryable=True,
                )
            live = sum(a.live(now) for aid, a in self._actors.items() if aid != request.actor_id)
            if live >= self.config.max_actors:
                return refuse(
                    f"the learner already serves {live} actors (transport.max_actors={self.config.max_actors})",
                    retryable=True,
                )
            actor = self._actor(request.actor_id)
            if actor.stats.session_id:
                self._sessions.pop(actor.stats.session_id, None)
                if actor.live(now):
                    log.info(
                        "actor %r reconnected from %s; its previous session ends",
                        request.actor_id,
                        peer,
                    )
            session_id = secrets.token_hex(16)
            self._sessions[session_id] = request.actor_id
            actor.stats.session_id = session_id
            actor.stats.peer = peer
            actor.stats.handshakes += 1
            actor.stats.last_seen = now
            actor.handshake_at = now
            actor.proven = False
            self._changed.notify_all()
            last, accepted, durable = actor.delivered, actor.accepted, actor.durable
        log.info(
            "actor %r connected from %s (resumes after message %d, durable through %d)",
            request.actor_id,
            peer,
            last,
            durable,
        )
        return pb.HandshakeReply(
            accepted=True,
            session_id=session_id,
            learner_run_id=self.run_id,
            schema_version=codec.SCHEMA_VERSION,
            last_acked_sequence=last,
            last_accepted_sequence=accepted,
            durable_sequence=durable,
            durable_acks=self.config.durable_acks,
            max_payload_bytes=self.config.max_payload_bytes,
            chunk_bytes=self.config.chunk_bytes,
        )

    def session_actor(self, context: grpc.ServicerContext) -> tuple[str, str]:
        """(actor id, session id) of the call; aborts the call when the session is unknown."""
        metadata = dict(context.invocation_metadata())
        session = str(metadata.get(SESSION_HEADER, ""))
        with self._lock:
            actor_id = self._sessions.get(session)
            if actor_id is None:
                self.protocol_errors += 1
        if actor_id is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "unknown or superseded session: handshake again",
            )
        assert actor_id is not None
        denied = self._credentials.refusal(actor_id, metadata, _auth_context(context))
        if denied:
            with self._lock:
                self.protocol_errors += 1
            context.abort(grpc.StatusCode.PERMISSION_DENIED, denied)
        return actor_id, session

    def _current(self, actor_id: str, session_id: str) -> bool:
        return self._actors[actor_id].stats.session_id == session_id

    def stream_parameters(
        self, request: pb.ParameterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Frame]:
        actor_id, session_id = self.session_actor(context)
        sent = request.have_version
        while True:
            with self._lock:
                self._changed.wait_for(
                    lambda sent=sent: (
                        self._stopping.is_set()  # type: ignore[misc]
                        or not self._current(actor_id, session_id)
                        or (self._weights is not None and self._weights.version > sent)
                    ),
                    timeout=_POLL_S,
                )
                weights = self._weights
                current = self._current(actor_id, session_id)
            if self._stopping.is_set() or not current or not context.is_active():
                return
            if weights is not None and weights.version > sent:
                yield from weights.frames
                sent = weights.version

    def send_data(
        self, request_iterator: Iterator[pb.Frame], context: grpc.ServicerContext
    ) -> Iterator[pb.Ack]:
        actor_id, session_id = self.session_actor(context)
        with self._lock:
            actor = self._actors[actor_id]
            actor.streams += 1
            actor.stats.connected = True
        state = _StreamState()
        reader = threading.Thread(
            target=self._read_stream,
            args=(actor_id, session_id, request_iterator, context, state),
            name=f"hilrl-read-{actor_id}",
            daemon=True,
        )
        reader.start()
        sent = sent_durable = -1
        try:
            while True:
                with self._lock:
                    self._changed.wait_for(
                        lambda sent=sent, sent_durable=sent_durable: (
                            actor.delivered != sent  # type: ignore[misc]
                            or actor.durable != sent_durable  # type: ignore[misc]
                            or bool(actor.rejections)
                            or state.done
                            or self._stopping.is_set()
                            or not self._current(actor_id, session_id)
                        ),
                        timeout=_POLL_S,
                    )
                    current = self._current(actor_id, session_id)
                    through, durable = actor.delivered, actor.durable
                    rejections, actor.rejections = (
                        (actor.rejections, []) if current else ([], actor.rejections)
                    )
                    # Read with the watermarks: the reader sets `done` under this lock after
                    # its last accept, so a stale `done` cannot end the stream before the
                    # ack of the last message went out.
                    finished = state.done and actor.delivered >= actor.accepted
                if current and (through != sent or durable != sent_durable or rejections):
                    yield pb.Ack(
                        acked_through=through,
                        durable_through=durable,
                        rejected=[pb.Rejection(sequence=s, reason=r) for s, r in rejections],
                    )
                    sent, sent_durable = through, durable
                if state.error is not None:
                    code, detail = state.error
                    context.abort(code, detail)
                if not current:
                    context.abort(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        "session superseded by a newer handshake",
                    )
                if self._stopping.is_set() or not context.is_active() or finished:
                    return
        finally:
            state.done = True
            with self._lock:
                actor.streams -= 1
                if actor.streams == 0 and self._current(actor_id, session_id):
                    actor.stats.connected = False
                    actor.handshake_at = 0.0

    def _read_stream(
        self,
        actor_id: str,
        session_id: str,
        frames: Iterator[pb.Frame | None],
        context: grpc.ServicerContext,
        state: _StreamState,
    ) -> None:
        reassembler = Reassembler(
            self.config.max_payload_bytes,
            self.config.chunk_bytes,
            (pb.KIND_TRANSITIONS, pb.KIND_EPISODE),
            actor_id,
        )
        held = 0
        """Budget bytes of the message being put together (handed on with it when complete)."""
        reported: list[int] = []
        try:
            for frame in frames:
                if self._stopping.is_set() or state.done:
                    break
                if frame is None:
                    self.budget.release(held)
                    held = 0
                    reassembler.reset()
                    self._reject_frame(
                        actor_id, 0, "undecodable frame (not a hilrl Frame)", reported
                    )
                    continue
                refused = self._reserve(actor_id, held, len(frame.data))
                if refused:
                    log.warning("refused the stream of actor %r: %s", actor_id, refused)
                    state.error = (grpc.StatusCode.RESOURCE_EXHAUSTED, refused)
                    break
                held += len(frame.data)
                try:
                    msg = reassembler.feed(frame)
                except ProtocolError as exc:
                    self.budget.release(held)
                    held = 0
                    self._reject_frame(
                        actor_id, frame.sequence, f"malformed frame: {exc}", reported
                    )
                    continue
                if msg is None:
                    continue
                nbytes, held = held, 0
                if not self._accept(actor_id, session_id, msg, context, state, nbytes):
                    break
        except grpc.RpcError:
            pass  # the actor went away; its session stays for the resume
        except Exception as exc:
            log.warning("stream of actor %r failed: %r", actor_id, exc)
        finally:
            self.budget.release(held)
            with self._lock:
                state.done = True
                self._changed.notify_all()

    def _reserve(self, actor_id: str, held: int, nbytes: int) -> str:
        """Reserve a frame's bytes in the transit budget; why not, or ""."""
        cfg = self.config
        with self._lock:
            proven = self._actors[actor_id].proven
        if not proven and held + nbytes > cfg.max_unproven_bytes:
            return (
                "a session must deliver a valid message before one of its messages may hold more "
                f"than transport.max_unproven_bytes={cfg.max_unproven_bytes} bytes at the learner"
            )
        if not self.budget.try_reserve(nbytes):
            return (
                "the learner's memory for messages in transit (transport.max_unfinished_bytes="
                f"{cfg.max_unfinished_bytes}) is used up; the actor keeps its data and retries"
            )
        return ""

    def _reject_frame(self, actor_id: str, seq: int, reason: str, reported: list[int]) -> None:
        """Count a frame that breaks the framing; the stream goes on with the next message.

        The actor hears the reason once per message (by its sequence number, when the
        header carries a plausible one) and drops that message as rejected.
        """
        with self._lock:
            actor = self._actors[actor_id]
            actor.stats.rejected += 1
            if 0 < seq < MAX_SEQUENCE and seq not in reported:
                reported[:] = [seq]
                actor.rejections.append((seq, reason[:500]))
                log.warning("rejected a frame of actor %r: %s", actor_id, reason[:300])
            self._changed.notify_all()

    def _accept(
        self,
        actor_id: str,
        session_id: str,
        msg: Message,
        context: grpc.ServicerContext,
        state: _StreamState,
        nbytes: int = 0,
    ) -> bool:
        """Dedupe, decode and enqueue one message; False when the stream must end.

        ``nbytes`` of the transit budget go with the message to the ingest thread, or are
        released here when it is not enqueued.
        """
        enqueued = False
        try:
            enqueued = self._admit(actor_id, session_id, msg, context, state, nbytes)
            return enqueued or self._current(actor_id, session_id)
        finally:
            if not enqueued:
                self.budget.release(nbytes)

    def _admit(
        self,
        actor_id: str,
        session_id: str,
        msg: Message,
        context: grpc.ServicerContext,
        state: _StreamState,
        nbytes: int,
    ) -> bool:
        """The work of :meth:`_accept`; True only when the message was enqueued."""
        seq = msg.sequence
        with self._lock:
            actor = self._actors[actor_id]
            actor.stats.last_seen = time.time()
            actor.stats.bytes_received += len(msg.payload)
            if not self._current(actor_id, session_id):
                return False
            if 0 < seq <= actor.accepted:
                actor.stats.duplicates += 1
                self._changed.notify_all()  # re-ack: the actor may wait for it
                return False
            ceiling = min(actor.accepted + self.config.sequence_window, MAX_SEQUENCE - 1)
        in_window = 0 < seq <= ceiling
        payload: list[Transition] | EpisodeStats | None = None
        try:
            if not in_window:
                # Rejected without moving the watermark: a forged or corrupt number must
                # not make the learner take the actor's next messages for duplicates.
                raise ProtocolError(
                    f"sequence number {seq} outside 1..{ceiling} (at most "
                    f"transport.sequence_window={self.config.sequence_window} above the "
                    f"accepted {ceiling - self.config.sequence_window})"
                )
            msg.verify()
            if msg.kind == pb.KIND_TRANSITIONS:
                payload = codec.decode_transitions(msg.payload, self._max_transitions)
            else:
                payload = codec.decode_episode(msg.payload, actor_id)
        except ProtocolError as exc:
            log.warning("rejected message %d of actor %r: %s", seq, actor_id, exc)
            with self._lock:
                actor.stats.rejected += 1
                actor.rejections.append((seq, str(exc)[:500]))
                self._changed.notify_all()
            if not in_window:
                return False
        with actor.enqueue_lock:
            with self._lock:
                if not self._current(actor_id, session_id):
                    return False
                if seq <= actor.accepted:
                    actor.stats.duplicates += 1
                    return False
                previous = actor.accepted
                actor.stats.missing += seq - previous - 1
                actor.accepted = seq
                if payload is not None:
                    actor.proven = True
                    actor.stats.messages += 1
                if isinstance(payload, list):
                    actor.stats.transitions += len(payload)
                elif payload is not None:
                    actor.stats.episodes += 1
            item = IngestItem(actor_id, seq, payload, nbytes)
            while True:
                try:
                    self._queue.put(item, timeout=_POLL_S)
                    return True
                except queue.Full:
                    if self._stopping.is_set() or state.done or not context.is_active():
                        # Not queued: roll the mark back so a resend is not taken for a duplicate.
                        with self._lock:
                            if actor.accepted == seq:
                                actor.accepted = previous
                        return False


def _auth_context(context: grpc.ServicerContext) -> dict[str, Any]:
    """The call's TLS facts (client certificate names); empty without TLS."""
    try:
        return dict(context.auth_context())
    except Exception:
        return {}


def _handlers(servicer: _Servicer) -> grpc.GenericRpcHandler:
    """The service's method handlers (as the generated code, with a lenient frame reader)."""
    methods = {
        "Handshake": grpc.unary_unary_rpc_method_handler(
            servicer.Handshake,
            request_deserializer=pb.HandshakeRequest.FromString,
            response_serializer=pb.HandshakeReply.SerializeToString,
        ),
        "StreamParameters": grpc.unary_stream_rpc_method_handler(
            servicer.StreamParameters,
            request_deserializer=pb.ParameterRequest.FromString,
            response_serializer=pb.Frame.SerializeToString,
        ),
        "SendData": grpc.stream_stream_rpc_method_handler(
            servicer.SendData,
            request_deserializer=_frame_or_none,
            response_serializer=pb.Ack.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, methods)


class _Servicer(pb_grpc.LearnerServicer):
    """Thin gRPC adapter; the logic lives in :class:`LearnerServer`."""

    def __init__(self, server: LearnerServer) -> None:
        self._server = server

    def Handshake(
        self, request: pb.HandshakeRequest, context: grpc.ServicerContext
    ) -> pb.HandshakeReply:
        return self._server.handshake(
            request,
            context.peer(),
            dict(context.invocation_metadata()),
            _auth_context(context),
        )

    def StreamParameters(
        self, request: pb.ParameterRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.Frame]:
        return self._server.stream_parameters(request, context)

    def SendData(
        self, request_iterator: Iterator[pb.Frame], context: grpc.ServicerContext
    ) -> Iterator[pb.Ack]:
        return self._server.send_data(request_iterator, context)
