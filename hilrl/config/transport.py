"""Actor <-> learner transport settings: address, security, deadlines, batching, spooling.

One config serves both ends: the learner binds to ``host:port`` and the actor connects to
it. Defaults are safe for one machine (loopback only, no exposure); to run the actor on a
robot computer and the learner on a GPU box, set ``host`` and turn on TLS and/or a token.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from hilrl.config.loader import ConfigError

MIB = 1024 * 1024


@dataclass
class TransportConfig:
    host: str = "127.0.0.1"
    """Learner: address to bind (0.0.0.0 exposes it on every interface). Actor: learner's address."""
    port: int = 50051
    """TCP port of the learner's gRPC service (learner only: 0 picks a free port, see LearnerServer.port)."""
    tls: bool = False
    """Encrypt the connection with TLS (needed whenever the learner is reachable beyond loopback)."""
    tls_cert: str = ""
    """PEM certificate of this process: the learner's server certificate, or the actor's client certificate for mutual TLS."""
    tls_key: str = ""
    """PEM private key that belongs to tls_cert."""
    tls_ca: str = ""
    """PEM CA bundle to verify the peer: the actor checks the learner with it; on the learner it turns on mutual TLS (client certificates required)."""
    tls_server_name: str = ""
    """Actor: host name to expect in the learner's certificate when it differs from host (e.g. 'localhost')."""
    token: str = ""
    """Shared secret every call must carry; prefer token_file so it stays out of shell history."""
    token_file: str = ""
    """File holding the shared token (first line, whitespace stripped)."""
    actor_tokens_file: str = ""
    """Learner: file of per-actor credentials, one 'actor_id token' pair per line ('#' comments). An actor id listed there must present its own token (the shared token does not speak for it), and one actor's token never speaks for another; ids not listed need the shared token (refused when none is set)."""
    tls_bind_actor_id: bool = False
    """Learner with mutual TLS (tls_ca set): an actor's client certificate must name its actor id (certificate common name or a DNS subject alternative name), so one robot's certificate cannot speak for another."""
    allow_insecure: bool = False
    """Let the learner listen beyond loopback with neither TLS nor a token (anyone on the network can then feed it data)."""
    handshake_timeout_s: float = 5.0
    """Deadline of the handshake call; a stalled or missing learner fails fast and is retried."""
    ack_timeout_s: float = 15.0
    """Actor: if sent messages stay unacknowledged this long, drop the stream and reconnect."""
    keepalive_time_s: float = 10.0
    """Interval of HTTP/2 keepalive pings on both ends (detects dead Wi-Fi links)."""
    keepalive_timeout_s: float = 5.0
    """A connection whose keepalive ping is not answered within this time is closed."""
    chunk_bytes: int = 4 * MIB
    """Payloads larger than this travel in several frames of at most this many bytes."""
    max_message_bytes: int = 8 * MIB
    """gRPC cap on one received frame; must exceed chunk_bytes plus the header."""
    max_payload_bytes: int = 256 * MIB
    """Hard cap on a reassembled payload (a transition batch or a weight set); larger ones are refused."""
    batch_size: int = 32
    """Actor: send a batch as soon as this many transitions are waiting (each observation travels once per batch, so larger batches cost fewer bytes)."""
    flush_interval_s: float = 1.0
    """Actor: send waiting transitions at least this often, even if the batch is not full."""
    max_inflight_messages: int = 8
    """Actor: messages sent but not yet acknowledged before it waits for acks (flow control window)."""
    memory_backlog_messages: int = 64
    """Actor: messages kept in memory (not yet received by the learner, or received but not yet durable); older ones go to the disk spool."""
    max_pending_transitions: int = 20_000
    """Actor: transitions waiting to be batched; beyond this put_transitions drops (and counts) them instead of blocking the control loop."""
    spool_dir: str = "~/.cache/hilrl/spool"
    """Actor: folder for messages not yet durable at the learner (resent after a reconnect, a restart of either side, or a learner crash); empty keeps them in memory only."""
    spool_max_bytes: int = 4096 * MIB
    """Actor: disk cap of the spool; past it the copies of received-but-not-durable messages are dropped first (stats.retained_evicted), then the oldest unsent ones (stats.transitions_dropped)."""
    spool_write_ahead: bool = True
    """Actor: write every message to the spool when it is made (into the OS page cache; fsynced after spool_sync_after_s), not only when the memory backlog overflows: an actor killed at any moment then loses nothing that may have reached the learner, even if the learner also crashes before its next checkpoint. False: messages stay in memory until the backlog overflows (less disk traffic; such a double crash loses the in-memory copies)."""
    spool_sync_after_s: float = 2.0
    """Actor: fsync a spooled message once it has stayed this long in the spool (most overflow bursts are resent and deleted sooner, never touching the disk); close() syncs the rest. 0: fsync every write. A power cut of the actor's computer loses at most this much spooled data."""
    backoff_initial_s: float = 0.2
    """Actor: first reconnection delay; it doubles after each failure."""
    backoff_max_s: float = 5.0
    """Actor: longest reconnection delay."""
    backoff_jitter: float = 0.2
    """Actor: random fraction added to or removed from each delay, so many actors do not reconnect in step."""
    close_timeout_s: float = 10.0
    """Actor: how long close() waits for acknowledgements before spooling the rest."""
    durable_acks: bool = True
    """Learner: data counts as durable only once a checkpoint holding it is confirmed with LearnerServer.mark_durable; until then actors keep a copy (bounded by memory_backlog_messages and spool_max_bytes) to resend after a learner crash. False (for a learner that never checkpoints): durable once received, as in wire schema v1; a learner crash then loses what it received since its last checkpoint."""
    ingest_queue_messages: int = 64
    """Learner: received messages waiting for the ingest thread; when full, readers stop reading (backpressure)."""
    max_actors: int = 16
    """Learner: actors served at once; more are refused with a retryable reason."""
    sequence_window: int = 65536
    """Learner: a message numbered more than this above an actor's accepted watermark is rejected without moving the watermark (a forged or corrupt sequence number cannot make the learner drop the actor's later data). Legitimate jumps are data an actor lost before sending it (a crash), far fewer messages than this."""
    max_unfinished_bytes: int = 1024 * MIB
    """Learner: memory for messages in transit, over all actors together: frames of messages not yet complete plus complete ones waiting for the ingest thread. Beyond it a stream is refused with RESOURCE_EXHAUSTED (the actor keeps its data and retries), so the learner's memory stays bounded whatever clients send."""
    max_unproven_bytes: int = 64 * MIB
    """Learner: the same budget for one session that has not yet delivered a valid message (a client must prove itself with a small message before it may hold more)."""

    def validate(self) -> None:
        if not self.host:
            raise ConfigError("host", self.host, "must not be empty")
        if not 0 <= self.port < 65536:
            raise ConfigError("port", self.port, "must be in 0..65535")
        if self.token and self.token_file:
            raise ConfigError("token", "<hidden>", "set token or token_file, not both")
        if self.token_file and not Path(self.token_file).expanduser().is_file():
            raise ConfigError("token_file", self.token_file, "file not found")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError(
                "tls_key" if self.tls_cert else "tls_cert", "", "tls_cert and tls_key go together"
            )
        for name in ("tls_cert", "tls_key", "tls_ca"):
            path = getattr(self, name)
            if path and not self.tls:
                raise ConfigError(name, path, "set tls: true to use TLS files")
            if path and not Path(path).expanduser().is_file():
                raise ConfigError(name, path, "file not found")
        positive = (
            "handshake_timeout_s",
            "ack_timeout_s",
            "keepalive_time_s",
            "keepalive_timeout_s",
            "flush_interval_s",
            "backoff_initial_s",
            "backoff_max_s",
            "close_timeout_s",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(name, getattr(self, name), "must be > 0")
        if self.spool_sync_after_s < 0:
            raise ConfigError("spool_sync_after_s", self.spool_sync_after_s, "must be >= 0")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ConfigError("backoff_max_s", self.backoff_max_s, "must be >= backoff_initial_s")
        if not 0 <= self.backoff_jitter < 1:
            raise ConfigError("backoff_jitter", self.backoff_jitter, "must be in [0, 1)")
        counts = (
            "batch_size",
            "max_inflight_messages",
            "memory_backlog_messages",
            "max_pending_transitions",
            "ingest_queue_messages",
            "max_actors",
            "sequence_window",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        if self.chunk_bytes < 1024:
            raise ConfigError("chunk_bytes", self.chunk_bytes, "must be >= 1024")
        if self.max_message_bytes < self.chunk_bytes + 64 * 1024:
            raise ConfigError(
                "max_message_bytes",
                self.max_message_bytes,
                "must be >= chunk_bytes + 65536 (room for the header)",
            )
        if self.max_payload_bytes < self.chunk_bytes:
            raise ConfigError("max_payload_bytes", self.max_payload_bytes, "must be >= chunk_bytes")
        if self.max_unfinished_bytes < self.max_payload_bytes:
            raise ConfigError(
                "max_unfinished_bytes",
                self.max_unfinished_bytes,
                "must be >= max_payload_bytes (room for one whole message)",
            )
        if not self.chunk_bytes <= self.max_unproven_bytes <= self.max_unfinished_bytes:
            raise ConfigError(
                "max_unproven_bytes",
                self.max_unproven_bytes,
                "must be in chunk_bytes..max_unfinished_bytes",
            )
        if self.actor_tokens_file and not Path(self.actor_tokens_file).expanduser().is_file():
            raise ConfigError("actor_tokens_file", self.actor_tokens_file, "file not found")
        if self.tls_bind_actor_id and not self.tls_ca:
            raise ConfigError(
                "tls_bind_actor_id", True, "needs mutual TLS: set tls_ca (client certificates)"
            )
        if self.spool_max_bytes < 1:
            raise ConfigError("spool_max_bytes", self.spool_max_bytes, "must be >= 1")
        if self.memory_backlog_messages < self.max_inflight_messages:
            raise ConfigError(
                "memory_backlog_messages",
                self.memory_backlog_messages,
                "must be >= max_inflight_messages",
            )

    @property
    def is_loopback(self) -> bool:
        """True when ``host`` names this machine only (127.0.0.0/8, ::1 or localhost)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def address(self) -> str:
        """``host:port`` as gRPC expects it (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def read_actor_tokens(self) -> dict[str, str]:
        """Per-actor tokens from ``actor_tokens_file`` (actor id -> token); empty when unset."""
        if not self.actor_tokens_file:
            return {}
        path = Path(self.actor_tokens_file).expanduser()
        tokens: dict[str, str] = {}
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) != 2:
                raise ConfigError(
                    "actor_tokens_file",
                    self.actor_tokens_file,
                    f"line {number}: want 'actor_id token', got {len(parts)} fields",
                )
            actor_id, token = parts
            if actor_id in tokens:
                raise ConfigError(
                    "actor_tokens_file",
                    self.actor_tokens_file,
                    f"line {number}: {actor_id!r} twice",
                )
            tokens[actor_id] = token
        if not tokens:
            raise ConfigError("actor_tokens_file", self.actor_tokens_file, "file has no tokens")
        return tokens

    def read_token(self) -> str:
        """The shared token from ``token`` or ``token_file``; empty when auth is off."""
        if self.token_file:
            lines = Path(self.token_file).expanduser().read_text().splitlines()
            token = lines[0].strip() if lines else ""
            if not token:
                raise ConfigError("token_file", self.token_file, "file is empty")
            return token
        return self.token
