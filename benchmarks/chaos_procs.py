"""The child processes of bench_chaos.py (a learner, actors) and its freezable loopback proxy.

Run by bench_chaos.py, not by hand:

    python benchmarks/chaos_procs.py learner --port P --dir D [--checkpoint-s 1.5]
    python benchmarks/chaos_procs.py actor --port PROXY --actor-id chaos-0 --dir D [--batch 10]

Both use hilrl's real gRPC transport (:class:`LearnerServer`, :class:`ActorClient`) and are
killed with SIGKILL at random moments by the chaos driver; SIGTERM asks them to finish
cleanly (see each ``*_main``). Everything they tell the driver goes through files in
their folder, each rewritten atomically (write, then ``os.replace``):

Learner folder:

* ``checkpoint.npz``: ``replay`` (int64 rows ``actor index, episode, frame``: every
  transition delivered, in order) and ``transport`` (the :meth:`LearnerServer.state_dict`
  as JSON bytes), both taken under ``ingest_paused()``, fsynced, then ``mark_durable``;
  restored at start when present, as a learner restarted after a crash does;
* ``status.json``: pid, port, replay length, checkpoints, peak RSS (VmHWM), the
  server's per-actor counters; rewritten every second.

Actor folder:

* ``put.log``: one line ``episode first_frame count`` per batch, appended (and flushed)
  *before* ``put_transitions``: every key ever handed to the transport;
* ``received.log``: the same lines plus the wall time, appended and fsynced once
  ``flush()`` returned True (the learner acknowledged receiving them);
* ``spool/``: the ActorClient's spool; ``status.json``: its stats, every second.

A restarted actor continues numbering above the highest episode in its ``put.log``, so
every key (actor, episode, frame) is produced once over the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from hilrl.fsutil import atomic_write_bytes

RUN_ID = "chaos"
IMAGE = (32, 32, 3)
CAMERAS = ("front", "wrist")
STATE_DIM = 6
EPISODE_LENGTH = 50


# ---------------------------------------------------------------------- shared helpers


def chaos_config(port: int, spool_dir: str = "", batch: int = 10) -> Any:
    """Loopback transport settings for both ends: short deadlines, every copy on disk.

    ``memory_backlog_messages = max_inflight_messages = 1``: at most one message payload
    lives in the actor's memory, the rest of what the learner has not confirmed durable
    is in the spool (fsynced at once with ``spool_sync_after_s = 0``).
    """
    from hilrl.config.transport import TransportConfig

    return TransportConfig(
        port=port,
        spool_dir=spool_dir,
        batch_size=batch,
        flush_interval_s=0.05,
        handshake_timeout_s=2.0,
        ack_timeout_s=4.0,
        keepalive_time_s=2.0,
        keepalive_timeout_s=2.0,
        backoff_initial_s=0.1,
        backoff_max_s=1.0,
        close_timeout_s=10.0,
        memory_backlog_messages=1,
        max_inflight_messages=1,
        spool_sync_after_s=0.0,
    )


def write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj).encode(), sync=False)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def memory_kib() -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of this process, in KiB (Linux)."""
    out = {"vmhwm_kib": 0, "vmrss_kib": 0}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key = "vmhwm_kib" if line.startswith("VmHWM") else "vmrss_kib"
                out[key] = int(line.split()[1])
    return out


def actor_index(actor_id: str) -> int:
    return int(actor_id.rsplit("-", 1)[1])


def parse_log(path: Path) -> list[tuple[int, int, int, float]]:
    """Lines ``episode first_frame count [time]`` of put.log / received.log (a torn last
    line, possible after a SIGKILL, is skipped)."""
    rows: list[tuple[int, int, int, float]] = []
    try:
        text = path.read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            t = float(parts[3]) if len(parts) > 3 else 0.0
            rows.append((int(parts[0]), int(parts[1]), int(parts[2]), t))
        except ValueError:
            continue
    return rows


def install_stop_flag() -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


# ---------------------------------------------------------------------------- learner


class ChaosLearner:
    """A LearnerServer whose "replay" is the key of every transition delivered."""

    def __init__(self, port: int, folder: Path) -> None:
        from hilrl.transport import LearnerServer

        self.folder = folder
        self.checkpoint_path = folder / "checkpoint.npz"
        self.status_path = folder / "status.json"
        self.lock = threading.Lock()
        self.chunks: list[np.ndarray] = []
        self.length = 0
        self.restored = 0
        self.checkpoints = 0
        self.last_checkpoint_s = 0.0
        self.server = LearnerServer(
            chaos_config(port), self.on_transitions, self.on_episode, run_id=RUN_ID
        )
        if self.checkpoint_path.exists():
            with np.load(self.checkpoint_path) as saved:
                replay = np.asarray(saved["replay"], dtype=np.int64).reshape(-1, 3)
                state = json.loads(bytes(saved["transport"]).decode())
            self.server.load_state_dict(state)
            self.chunks = [replay]
            self.length = self.restored = len(replay)

    def on_transitions(self, actor_id: str, transitions: list[Any]) -> None:
        index = actor_index(actor_id)
        keys = np.array(
            [(index, t.episode_index, t.frame_index) for t in transitions], dtype=np.int64
        ).reshape(-1, 3)
        with self.lock:
            self.chunks.append(keys)
            self.length += len(keys)

    def on_episode(self, _actor_id: str, _stats: Any) -> None:
        pass

    def start(self, timeout_s: float = 30.0) -> None:
        """Bind the fixed port (retried: the killed incarnation's socket may linger)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.server.start()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def checkpoint(self) -> None:
        """Replay + transport state from one instant, saved atomically, then confirmed."""
        t0 = time.monotonic()
        with self.server.ingest_paused():
            state = self.server.state_dict()
            with self.lock:
                replay = np.concatenate(self.chunks) if self.chunks else np.zeros((0, 3), np.int64)
                self.chunks = [replay]
        buf = io.BytesIO()
        np.savez(
            buf,
            replay=replay,
            transport=np.frombuffer(json.dumps(state).encode(), dtype=np.uint8),
        )
        atomic_write_bytes(self.checkpoint_path, buf.getvalue(), sync=True)
        self.server.mark_durable(state)
        self.checkpoints += 1
        self.last_checkpoint_s = time.monotonic() - t0

    def write_status(self, final: bool = False) -> None:
        actors = {
            aid: {
                "connected": s.connected,
                "handshakes": s.handshakes,
                "messages": s.messages,
                "transitions": s.transitions,
                "duplicates": s.duplicates,
                "missing": s.missing,
                "rejected": s.rejected,
                "ingest_errors": s.ingest_errors,
                "refused_handshakes": s.refused_handshakes,
                "acked_through": s.acked_through,
                "durable_through": s.durable_through,
            }
            for aid, s in self.server.actor_stats().items()
        }
        with self.lock:
            length = self.length
        write_json(
            self.status_path,
            {
                "pid": os.getpid(),
                "port": self.server.port,
                "time": time.time(),
                "replay": length,
                "restored": self.restored,
                "checkpoints": self.checkpoints,
                "last_checkpoint_s": round(self.last_checkpoint_s, 4),
                "final": final,
                "actors": actors,
                **memory_kib(),
            },
        )


def learner_main(args: argparse.Namespace) -> None:
    """Serve, checkpoint every ``--checkpoint-s``, status every second; SIGTERM: stop the
    server (it delivers what it accepted), take a last checkpoint, exit 0."""
    stop = install_stop_flag()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    learner = ChaosLearner(args.port, folder)
    learner.start()
    learner.write_status()
    print(
        f"learner pid {os.getpid()} on port {learner.server.port}, restored "
        f"{learner.restored} transitions",
        flush=True,
    )
    next_checkpoint = time.monotonic() + args.checkpoint_s
    next_status = time.monotonic() + 1.0
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_checkpoint:
            learner.checkpoint()
            next_checkpoint = now + args.checkpoint_s
        if now >= next_status:
            learner.write_status()
            next_status = now + 1.0
        stop.wait(max(0.01, min(next_checkpoint, next_status) - time.monotonic()))
    learner.server.stop(grace_s=2.0)
    learner.checkpoint()
    learner.write_status(final=True)
    print(f"learner stopped: {learner.length} transitions in the replay", flush=True)


# ------------------------------------------------------------------------------ actor


def make_batch(
    pool: list[dict[str, np.ndarray]], episode: int, first: int, count: int
) -> list[Any]:
    """``count`` chained steps of ``episode`` from ``first``; the episode's last step truncates."""
    from hilrl.types import Transition

    obs = [pool[(episode * 7 + first + i) % len(pool)] for i in range(count + 1)]
    return [
        Transition(
            observation=obs[i],
            action=np.full(4, ((first + i) % 7) / 7.0, dtype=np.float32),
            reward=float(first + i),
            next_observation=obs[i + 1],
            terminated=False,
            truncated=first + i == EPISODE_LENGTH - 1,
            episode_index=episode,
            frame_index=first + i,
        )
        for i in range(count)
    ]


def observation_pool(seed: int, n: int = 16) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "observation.state": rng.standard_normal(STATE_DIM).astype(np.float32),
            **{
                f"observation.images.{c}": rng.integers(0, 256, IMAGE, dtype=np.uint8)
                for c in CAMERAS
            },
        }
        for _ in range(n)
    ]


def actor_main(args: argparse.Namespace) -> None:
    """Produce batches until SIGTERM; then flush, wait until durable, close, exit 0.

    Loop: log the batch's keys to put.log, ``put_transitions``, ``flush``; when flush
    returns True every batch put so far is logged to received.log (fsynced).
    """
    from hilrl.transport import ActorClient

    stop = install_stop_flag()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    put_path, received_path = folder / "put.log", folder / "received.log"
    produced = parse_log(put_path)
    episode = max((row[0] for row in produced), default=-1) + 1
    frame = 0
    pool = observation_pool(args.seed)
    client = ActorClient(
        chaos_config(args.port, str(folder / "spool"), args.batch), args.actor_id, RUN_ID
    )
    print(f"actor {args.actor_id} pid {os.getpid()} starts at episode {episode}", flush=True)
    batches = confirmed = flush_timeouts = 0
    pending: list[str] = []
    next_status = 0.0

    def status(final: dict[str, Any] | None = None) -> None:
        write_json(
            folder / "status.json",
            {
                "pid": os.getpid(),
                "time": time.time(),
                "batches_put": batches,
                "batches_confirmed": confirmed,
                "pending_batches": len(pending),
                "flush_timeouts": flush_timeouts,
                "stats": asdict(client.stats()),
                "final": final,
            },
        )

    def confirm() -> None:
        nonlocal confirmed
        now = time.time()
        received.write("".join(f"{line} {now:.3f}\n" for line in pending))
        received.flush()
        os.fsync(received.fileno())
        confirmed += len(pending)
        pending.clear()

    with open(put_path, "a") as put_log, open(received_path, "a") as received:
        while not stop.is_set():
            count = min(args.batch, EPISODE_LENGTH - frame)
            line = f"{episode} {frame} {count}"
            put_log.write(line + "\n")
            put_log.flush()
            client.put_transitions(make_batch(pool, episode, frame, count))
            batches += 1
            pending.append(line)
            frame += count
            if frame >= EPISODE_LENGTH:
                episode, frame = episode + 1, 0
            if client.flush(args.flush_timeout):
                confirm()
            else:
                flush_timeouts += 1
            if time.monotonic() >= next_status:
                status()
                next_status = time.monotonic() + 1.0
            if args.pause_s:
                stop.wait(args.pause_s)
        # Settle: everything put reaches the learner and a confirmed checkpoint.
        flushed = client.flush(args.settle_timeout)
        if flushed and pending:
            confirm()
        durable = client.wait_durable(args.settle_timeout) if flushed else False
        closed = client.close(10.0)
        status({"flushed": flushed, "durable": durable, "closed": closed})
    print(
        f"actor {args.actor_id} stopped: flushed={flushed} durable={durable} closed={closed}",
        flush=True,
    )


# ------------------------------------------------------------------------------ proxy


class FreezableProxy:
    """A TCP proxy on loopback that can freeze: nothing moves either way, nothing closes.

    While frozen, connections stay open and new ones are accepted (and connected
    upstream), exactly what a stalled Wi-Fi link looks like to both ends until their
    timeouts fire. Two pump threads per connection; both sockets are closed when both
    pumps have ended.

    When the target is down a new connection is refused the closest way a user-space
    proxy can: ``refuse="reset"`` (the default) resets it (RST, as a closed port answers);
    ``"close"`` closes it normally (FIN, what ``ssh -L`` or docker-proxy do). The latter
    makes the actor's TLS diagnosis (hilrl.transport.diagnose) mistake the closed
    connection for a TLS learner and stop for good (see bench_chaos.py --proxy-refuse).
    """

    def __init__(self, target_port: int, port: int = 0, refuse: str = "reset") -> None:
        if refuse not in ("reset", "close"):
            raise ValueError(f"refuse must be 'reset' or 'close', not {refuse!r}")
        self.target_port = target_port
        self.refuse = refuse
        self._frozen = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", port))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.connections = 0
        self.refused = 0
        self.bytes = 0
        self._thread = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)
        self._thread.start()

    @property
    def frozen(self) -> bool:
        return self._frozen.is_set()

    def freeze(self) -> None:
        self._frozen.set()

    def unfreeze(self) -> None:
        self._frozen.clear()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=1.0)
            except OSError:
                self.refused += 1
                if self.refuse == "reset":
                    with contextlib.suppress(OSError):
                        client.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                client.close()
                continue
            for s in (client, upstream):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.update((client, upstream))
                self.connections += 1
            ends = [2]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pump, args=(a, b, ends), name="proxy-pump", daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, ends: list[int]) -> None:
        try:
            while not self._stop.is_set():
                if self._frozen.is_set():
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready or self._frozen.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                self.bytes += len(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            with self._lock:
                ends[0] -= 1
                if ends[0] == 0:
                    for s in (src, dst):
                        self._open.discard(s)
                        s.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(timeout=2.0)
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.close()
            self._open.clear()


# ------------------------------------------------------------------------------- main


def die_with_parent() -> None:
    """Linux: get SIGKILLed when the chaos driver dies, so no child outlives a crashed run."""
    expected = os.environ.get("CHAOS_PARENT_PID")
    if not expected or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != int(expected):  # the driver died before prctl took effect
        os._exit(3)


def main(argv: list[str] | None = None) -> None:
    die_with_parent()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    lp = sub.add_parser("learner", help="the learner (gRPC server + checkpoints)")
    lp.add_argument("--port", type=int, required=True, help="fixed port to listen on")
    lp.add_argument("--dir", required=True, help="folder of its checkpoint and status")
    lp.add_argument("--checkpoint-s", type=float, default=1.5, help="checkpoint period")
    ap = sub.add_parser("actor", help="one actor (ActorClient + logs)")
    ap.add_argument("--port", type=int, required=True, help="port to connect to (the proxy)")
    ap.add_argument("--actor-id", required=True, help="chaos-<index>")
    ap.add_argument("--dir", required=True, help="folder of its logs, spool and status")
    ap.add_argument("--batch", type=int, default=10, help="transitions per put / message")
    ap.add_argument("--pause-s", type=float, default=0.05, help="pause between batches")
    ap.add_argument("--flush-timeout", type=float, default=1.0, help="flush() wait per batch")
    ap.add_argument("--settle-timeout", type=float, default=60.0, help="final flush / durable")
    ap.add_argument("--seed", type=int, default=0, help="seed of the observation pool")
    args = parser.parse_args(argv)
    if args.role == "learner":
        learner_main(args)
    else:
        actor_main(args)


if __name__ == "__main__":
    main()
