"""The actor client's outbox: batching, numbering, the disk spool and the bounds.

Messages wait in the backlog (numbered once the learner said where to start), travel in
flight, and are kept as retained copies once received until a learner checkpoint holds
them (durable). Every message is written to the spool before it is sent
(``transport.spool_write_ahead``); memory holds at most ``memory_backlog_messages``
payloads; the spool at most ``spool_max_bytes``. Owned by the sender thread.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from hilrl.transport import codec
from hilrl.transport.client_state import (
    _EVICT_LOG_INTERVAL_S,
    _ClientState,
    _OutMsg,
)
from hilrl.transport.framing import encode_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.spool import Spool, foreign_spools, spool_root
from hilrl.types import EpisodeStats, Transition

log = logging.getLogger("hilrl.transport.client")


class Outbox(_ClientState):
    """Batching, numbering, spooling and bounding of an actor's messages."""

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
