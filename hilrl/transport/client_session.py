"""The actor client's session: handshake, the data stream, acknowledgements, reconnects.

The sender thread (:meth:`Session._send_loop`) connects with backoff and jitter, names a
TLS mismatch at once, resumes from the learner's watermarks, sends the window of
messages and applies the acknowledgements; errors a retry cannot fix become the client's
fatal error, raised by the next call of the control loop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import grpc

from hilrl.transport import codec
from hilrl.transport.client_outbox import Outbox
from hilrl.transport.client_state import (
    _PROBE_INTERVAL_S,
    _TICK_S,
    _Event,
    _Link,
    _requests,
    channel_options,
)
from hilrl.transport.diagnose import tls_mismatch
from hilrl.transport.errors import (
    AuthenticationError,
    HandshakeRefused,
    LearnerUnreachable,
    TransportError,
)
from hilrl.transport.framing import SEND_DATA_METHOD
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import (
    ACTOR_HEADER,
    AUTH_HEADER,
    SESSION_HEADER,
    bearer,
)

log = logging.getLogger("hilrl.transport.client")


class Session(Outbox):
    """The sender thread: session set-up, sending and acknowledgements."""

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
