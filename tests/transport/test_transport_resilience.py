"""Failures of the real world against a real gRPC server on loopback.

A killed actor, a restarted learner, a stalled link, a learner that is down while the
actor runs: none of them may hang the actor, lose data, or deliver anything twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from transport_testlib import (
    Collector,
    StallingProxy,
    fast_config,
    free_port,
    make_episode,
    wait_until,
)

from hilrl.transport import ActorClient, LearnerServer, SpoolLocked

pytestmark = pytest.mark.timeout(90)
HERE = Path(__file__).parent


@pytest.fixture
def collector() -> Collector:
    return Collector()


def start_server(collector: Collector, port: int = 0, **overrides: object) -> LearnerServer:
    cfg = fast_config(port, **overrides)  # type: ignore[arg-type]
    return LearnerServer(cfg, collector.on_transitions, collector.on_episode, run_id="run").start()


def spawn_actor(port: int, actor_id: str, spool: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    args = [sys.executable, str(HERE / "transport_actor_proc.py"), str(port), actor_id, str(spool)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, text=True, env=env)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.mark.slow
def test_killed_actor_process_frees_its_slot_for_a_new_one(
    collector: Collector, tmp_path: Path, procs: list[subprocess.Popen[str]]
) -> None:
    server = start_server(collector, max_actors=1)
    second: ActorClient | None = None
    try:
        first = spawn_actor(server.port, "first", tmp_path / "spool")
        procs.append(first)
        assert wait_until(lambda: collector.count("first") >= 20, 60.0), (
            "first actor never delivered"
        )
        first.send_signal(signal.SIGKILL)  # mid-stream: no goodbye, no flush
        first.wait(timeout=10)
        # The dead actor's session must not hold the only slot: a new actor gets in.
        second = ActorClient(fast_config(server.port, str(tmp_path / "spool")), "second", "run")
        second.connect(5.0)
        second.put_transitions(make_episode(2, 0, 10))
        assert second.flush(10.0)
        assert collector.keys("second") == [(0, f) for f in range(10)]
        stats = server.actor_stats()
        assert not stats["first"].connected and stats["second"].connected
        assert collector.duplicates("first") == 0
    finally:
        if second is not None:
            second.close(2.0)
        server.stop()


def test_learner_restart_delivers_every_transition_exactly_once(
    collector: Collector, tmp_path: Path
) -> None:
    port = free_port()
    server = start_server(collector, port)
    n_actors, episodes, length = 3, 6, 25
    clients = [
        ActorClient(fast_config(port, str(tmp_path / "spool")), f"actor-{i}", "run")
        for i in range(n_actors)
    ]
    halfway = threading.Barrier(n_actors + 1)
    restarted = threading.Event()

    def run(i: int) -> None:
        for ep in range(episodes):
            if ep == episodes // 2:
                halfway.wait(timeout=30)
                restarted.wait(timeout=30)  # keep producing while the learner is away, too
            for step in make_episode(i, ep, length):
                clients[i].put_transitions([step])
                time.sleep(0.001)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_actors)]
    for t in threads:
        t.start()
    halfway.wait(timeout=30)
    time.sleep(0.2)  # some messages are in flight, unacknowledged, when it goes down
    server.stop()
    state = server.state_dict()  # what a learner checkpoint would hold
    assert wait_until(lambda: not any(c.stats().connected for c in clients), 10.0)
    for i in range(n_actors):  # data produced during the outage lands in the spool
        clients[i].put_transitions(make_episode(i, 99, 5))
    assert wait_until(lambda: all(c.stats().messages_spooled > 0 for c in clients), 10.0)
    restarted.set()
    server = LearnerServer(
        fast_config(port), collector.on_transitions, collector.on_episode, run_id="run"
    )
    server.load_state_dict(state)
    server.start()
    try:
        for t in threads:
            t.join(timeout=60)
        assert all(c.flush(30.0) for c in clients)
        for i in range(n_actors):
            aid = f"actor-{i}"
            expected = {(ep, f) for ep in range(episodes) for f in range(length)} | {
                (99, f) for f in range(5)
            }
            keys = collector.keys(aid)
            assert collector.duplicates(aid) == 0
            assert set(keys) == expected and len(keys) == len(expected)
        assert sum(c.stats().handshakes for c in clients) >= 2 * n_actors
    finally:
        for c in clients:
            c.close(5.0)
        server.stop()


def test_stalled_link_does_not_hang_and_recovers(collector: Collector, tmp_path: Path) -> None:
    server = start_server(collector)
    proxy = StallingProxy(server.port)
    client = ActorClient(
        fast_config(
            proxy.port, str(tmp_path / "spool"), ack_timeout_s=1.0, handshake_timeout_s=0.5
        ),
        "a",
        "run",
    )
    try:
        client.connect(10.0)
        client.put_transitions(make_episode(0, 0, 30))
        assert client.flush(10.0)
        proxy.paused.set()  # the Wi-Fi drops: no byte moves, no connection closes
        client.put_transitions(make_episode(0, 1, 30))  # must return at once
        assert not client.flush(0.5)
        assert wait_until(lambda: not client.stats().connected, 10.0), "stall never detected"
        # Reconnect attempts fail on their deadline instead of hanging.
        assert wait_until(
            lambda: any(w in client.stats().last_error.upper() for w in ("DEADLINE", "TIMED OUT")),
            10.0,
        )
        client.put_transitions(make_episode(0, 2, 30))
        proxy.paused.clear()
        assert client.flush(20.0)
        keys = collector.keys("a")
        assert collector.duplicates("a") == 0
        assert set(keys) == {(ep, f) for ep in range(3) for f in range(30)}
    finally:
        client.close(2.0)
        proxy.close()
        server.stop()


def test_actor_started_before_learner_spools_and_survives_its_own_restart(
    collector: Collector, tmp_path: Path
) -> None:
    port = free_port()
    spool = str(tmp_path / "spool")
    first = ActorClient(fast_config(port, spool), "a", "run")
    first.put_transitions(make_episode(0, 0, 20))
    assert not first.flush(0.3)  # nobody listens yet
    assert not first.close(0.2)  # closes anyway: the data stays on disk
    assert first.spool_dir is not None and any(first.spool_dir.glob("*.safetensors"))
    server = start_server(collector, port)
    second = ActorClient(fast_config(port, spool), "a", "run")
    try:
        second.put_transitions(make_episode(0, 1, 20))
        assert second.flush(20.0)
        assert sorted(collector.keys("a")) == sorted((ep, f) for ep in range(2) for f in range(20))
        # Received is not durable: the spooled copies stay until a checkpoint is confirmed.
        assert second.spool_dir is not None and any(second.spool_dir.glob("*.safetensors"))
        server.mark_durable(server.state_dict())
        assert second.wait_durable(10.0)
        assert not any(second.spool_dir.glob("*.safetensors"))
    finally:
        second.close(2.0)
        server.stop()


def test_two_processes_cannot_share_one_actor_spool(tmp_path: Path) -> None:
    cfg = fast_config(free_port(), str(tmp_path / "spool"))
    a = ActorClient(cfg, "same", "run", start=False)
    with pytest.raises(SpoolLocked, match="actor_id"):
        ActorClient(cfg, "same", "run", start=False)
    a.close()


def test_stalled_learner_backpressures_without_blocking_the_actor(tmp_path: Path) -> None:
    slow = Collector(delay_s=0.01)
    server = LearnerServer(
        fast_config(0, ingest_queue_messages=2), slow.on_transitions, slow.on_episode, run_id="run"
    ).start()
    client = ActorClient(
        fast_config(
            server.port, str(tmp_path / "spool"), memory_backlog_messages=4, max_inflight_messages=2
        ),
        "a",
        "run",
    )
    try:
        client.connect(5.0)
        steps = make_episode(0, 0, 200)
        with server.ingest_paused():  # the learner takes nothing at all meanwhile
            for k in range(0, 200, 8):
                client.put_transitions(steps[k : k + 8])  # every put returns regardless
            # The learner's queue and the actor's window are full; the rest went to disk.
            assert wait_until(lambda: client.stats().messages_spooled > 0, 10.0)
            assert client.stats().inflight_messages <= 2
            assert slow.count("a") == 0
        assert client.flush(30.0)
        assert slow.keys("a") == [(0, f) for f in range(200)]
    finally:
        client.close(2.0)
        server.stop()


def test_restarted_actor_numbers_above_messages_still_queued_at_the_learner(
    collector: Collector,
) -> None:
    server = start_server(collector)
    try:
        with server.ingest_paused():  # accepted, not yet delivered (e.g. a busy learner)
            lost = ActorClient(fast_config(server.port), "a", "run")  # no spool: like a kill -9
            lost.put_transitions(make_episode(0, 0, 24))
            assert wait_until(
                lambda: (
                    server.actor_stats().get("a") is not None
                    and server.actor_stats()["a"].messages == 3
                ),
                10.0,
            )
            lost.close(0.1)
            fresh = ActorClient(fast_config(server.port), "a", "run")
            fresh.connect(5.0)
            fresh.put_transitions(make_episode(0, 1, 16))
            assert not fresh.flush(0.3)
        assert fresh.flush(10.0)
        fresh.close(1.0)
        # The new process's messages were not mistaken for duplicates of the queued ones.
        assert sorted(collector.keys("a")) == sorted(
            (ep, f) for ep, n in ((0, 24), (1, 16)) for f in range(n)
        )
        assert server.actor_stats()["a"].duplicates == 0
    finally:
        server.stop()


def test_spool_of_an_unreachable_learner_reaches_the_disk_after_sync_after_s(
    tmp_path: Path,
) -> None:
    """While the learner is away the actor spools every message; its sender loop fsyncs
    each file once it has waited spool_sync_after_s, not at write time."""
    cfg = fast_config(free_port(), str(tmp_path / "spool"), spool_sync_after_s=0.3)
    client = ActorClient(cfg, "away", "run")
    try:
        client.put_transitions(make_episode(0, 0, 16))
        assert wait_until(lambda: client.stats().messages_spooled >= 2, 10.0)
        spool = client._spool
        assert spool is not None
        assert wait_until(lambda: spool.files_synced >= 2 and spool.unsynced == 0, 10.0)
    finally:
        client.close(0.5)
