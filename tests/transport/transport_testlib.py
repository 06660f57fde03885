"""Shared helpers of the transport tests: synthetic transitions, a collector, a TCP proxy."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from hilrl.config.transport import TransportConfig
from hilrl.types import EpisodeStats, Observation, Transition

IMAGE_SHAPE = (16, 16, 3)


def fast_config(port: int, spool_dir: str = "", **overrides: object) -> TransportConfig:
    """Loopback config with short deadlines and backoff, so failure paths run in seconds."""
    base = TransportConfig(
        port=port,
        spool_dir=spool_dir,
        batch_size=8,
        flush_interval_s=0.05,
        handshake_timeout_s=1.0,
        ack_timeout_s=2.0,
        keepalive_time_s=1.0,
        keepalive_timeout_s=1.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.3,
        close_timeout_s=5.0,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def make_obs(actor: int, frame: int, image_shape: tuple[int, ...] = IMAGE_SHAPE) -> Observation:
    rng = np.random.default_rng(actor * 1_000_003 + frame)
    return {
        "observation.state": rng.standard_normal(6).astype(np.float32),
        "observation.images.front": rng.integers(0, 256, image_shape, dtype=np.uint8),
        "observation.images.wrist": rng.integers(0, 256, image_shape, dtype=np.uint8),
    }


def make_episode(
    actor: int,
    episode: int,
    length: int,
    start_frame: int = 0,
    image_shape: tuple[int, ...] = IMAGE_SHAPE,
) -> list[Transition]:
    """``length`` chained steps (next obs of t is obs of t+1); the last one truncates."""
    obs = [
        make_obs(actor, episode * 100_000 + start_frame + i, image_shape) for i in range(length + 1)
    ]
    return [
        Transition(
            observation=obs[i],
            action=np.full(4, (start_frame + i) % 7 / 7.0, dtype=np.float32),
            reward=float(start_frame + i),
            next_observation=obs[i + 1],
            terminated=False,
            truncated=i == length - 1,
            is_intervention=(start_frame + i) % 3 == 0,
            discrete_penalty=-0.02 * (i % 2),
            policy_version=episode,
            episode_index=episode,
            frame_index=start_frame + i,
        )
        for i in range(length)
    ]


def episode_stats(episode: int, length: int) -> EpisodeStats:
    return EpisodeStats(
        episode, length, float(length), episode % 2 == 0, length // 3, episode, extra={"x": 1.5}
    )


class Collector:
    """Thread-safe ingest callbacks that record what arrived, per actor, in order."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.lock = threading.Lock()
        self.transitions: dict[str, list[Transition]] = {}
        self.episodes: dict[str, list[EpisodeStats]] = {}
        self.order: dict[str, list[str]] = {}
        self.threads: set[str] = set()
        self.delay_s = delay_s

    def on_transitions(self, actor_id: str, transitions: list[Transition]) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)
        with self.lock:
            self.transitions.setdefault(actor_id, []).extend(transitions)
            self.order.setdefault(actor_id, []).extend("t" * len(transitions))
            self.threads.add(threading.current_thread().name)

    def on_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        with self.lock:
            self.episodes.setdefault(actor_id, []).append(stats)
            self.order.setdefault(actor_id, []).append("e")

    def keys(self, actor_id: str) -> list[tuple[int, int]]:
        with self.lock:
            return [(t.episode_index, t.frame_index) for t in self.transitions.get(actor_id, [])]

    def count(self, actor_id: str) -> int:
        with self.lock:
            return len(self.transitions.get(actor_id, []))

    def duplicates(self, actor_id: str) -> int:
        return sum(c - 1 for c in Counter(self.keys(actor_id)).values() if c > 1)


def wait_until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StallingProxy:
    """A loopback TCP proxy that can stop forwarding bytes (a stalled Wi-Fi link).

    While paused, connections stay open and new ones are accepted, but no byte moves in
    either direction: exactly what a dead link looks like to both ends until timeouts.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.paused = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=1.0)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                t = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                t.start()
                self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                if self.paused.is_set():
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for s in self._sockets:
            s.close()
        for t in self._threads:
            t.join(timeout=1.0)
