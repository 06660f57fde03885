"""Attacks and misuse a hostile tester found: stale spools, forged identities and sequence
numbers, refused ingest, and memory held by unfinished messages. Each runs against a real
gRPC learner on a free port."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from transport_testlib import Collector, fast_config, make_episode, wait_until

from hilrl.config.transport import MIB, TransportConfig
from hilrl.transport import ActorClient, HandshakeRefused, LearnerServer, codec
from hilrl.transport.framing import make_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import (
    ACTOR_HEADER,
    AUTH_HEADER,
    SESSION_HEADER,
    bearer,
    generate_dev_certificates,
)
from hilrl.transport.spool import Spool, foreign_spools, remove_run_spools, spool_root
from hilrl.types import EpisodeStats, Transition

pytestmark = pytest.mark.timeout(90)
HERE = Path(__file__).parent


@pytest.fixture
def clients() -> Iterator[list[ActorClient]]:
    made: list[ActorClient] = []
    yield made
    for c in made:
        c.close(1.0)


def serve(cfg: TransportConfig, collector: Collector, run_id: str = "run") -> LearnerServer:
    return LearnerServer(cfg, collector.on_transitions, collector.on_episode, run_id=run_id).start()


def raw_handshake(
    port: int, actor_id: str, token: str = "", previous: str = ""
) -> tuple[grpc.Channel, pb.HandshakeReply, tuple[tuple[str, str], ...]]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    md: tuple[tuple[str, str], ...] = ((ACTOR_HEADER, actor_id),)
    if token:
        md += ((AUTH_HEADER, bearer(token)),)
    reply = pb_grpc.LearnerStub(channel).Handshake(
        pb.HandshakeRequest(
            actor_id=actor_id,
            run_id="run",
            schema_version=codec.SCHEMA_VERSION,
            previous_session_id=previous,
        ),
        timeout=5,
        metadata=md,
    )
    return channel, reply, (*md, (SESSION_HEADER, reply.session_id))


# ---------------------------------------------------------------- 1. stale spools


def test_spool_of_an_earlier_run_never_reaches_a_new_learner(
    tmp_path: Path, clients: list[ActorClient], caplog: pytest.LogCaptureFixture
) -> None:
    spool = str(tmp_path / "spool")
    first = Collector()
    server = serve(fast_config(0), first, run_id="run-a")
    # The documented default: an actor started without a run id.
    old = ActorClient(fast_config(server.port, spool), "arm")
    old.put_transitions(make_episode(0, 0, 8))
    assert old.flush(10.0)  # received, never made durable: copies stay in the spool
    old.close(2.0)
    server.stop()
    assert first.count("arm") == 8
    kept = spool_root(Path(spool), "run-a", "arm")
    assert len(list(kept.glob("m-*.safetensors"))) == 1

    fresh = Collector()
    server = serve(fast_config(0), fresh, run_id="run-b")
    try:
        with caplog.at_level(logging.WARNING, logger="hilrl.transport.client"):
            new = ActorClient(fast_config(server.port, spool), "arm")
            clients.append(new)
            new.put_transitions(make_episode(0, 1, 8))
            assert new.flush(10.0)
        assert fresh.keys("arm") == [(1, f) for f in range(8)]  # none of run-a's data
        assert "kept aside" in caplog.text and "run-a" in caplog.text
        assert len(list(kept.glob("m-*.safetensors"))) == 1  # kept, not deleted
        found = foreign_spools(Path(spool), "arm", "run-b")
        assert [(s.run_id, s.messages) for s in found] == [("run-a", 1)]
    finally:
        server.stop()


def test_finished_run_spools_are_removed_unless_an_actor_holds_them(tmp_path: Path) -> None:
    base = tmp_path / "spool"
    for actor in ("a", "b"):
        s = Spool(spool_root(base, "run-1", actor), 1 << 20)
        s.write(1, b"x" * 100, 1)
        s.close()
    other = Spool(spool_root(base, "run-2", "a"), 1 << 20)
    other.write(1, b"y" * 10, 1)
    other.close()
    busy = Spool(spool_root(base, "run-3", "a"), 1 << 20)  # an actor still running
    busy.write(1, b"z", 1)

    removed = remove_run_spools(base, "run-1")
    assert sorted((r.path.name, r.messages) for r in removed) == [("a", 1), ("b", 1)]
    assert not (base / "run-1").exists()
    assert spool_root(base, "run-2", "a").is_dir()  # another run's spool is untouched
    assert remove_run_spools(base, "run-3") == []
    assert len(busy.entries()) == 1
    busy.close()


# ------------------------------------------------------------ 2. forged identity


def test_second_client_cannot_take_over_a_live_actor_id(clients: list[ActorClient]) -> None:
    collector = Collector()
    server = serve(fast_config(0), collector)
    try:
        real = ActorClient(fast_config(server.port), "arm", "run")
        clients.append(real)
        real.connect(5.0)
        real.put_transitions(make_episode(0, 0, 8))
        assert real.flush(10.0)

        channel, reply, _ = raw_handshake(server.port, "arm")
        channel.close()
        assert not reply.accepted and reply.retryable
        assert "already has a live session" in reply.reason
        assert server.actor_stats()["arm"].refused_handshakes == 1

        real.put_transitions(make_episode(0, 1, 8))  # the real actor was not cut off
        assert real.flush(10.0)
        assert collector.count("arm") == 16 and real.stats().handshakes == 1
    finally:
        server.stop()


def test_forged_sequence_number_does_not_move_the_watermark(
    clients: list[ActorClient],
) -> None:
    collector = Collector()
    server = serve(fast_config(0), collector)
    try:
        # While the real actor is away, a client holding a session for its id sends one
        # sound message numbered far above the watermark.
        channel, reply, md = raw_handshake(server.port, "arm")
        assert reply.accepted
        payload = codec.encode_transitions(make_episode(9, 9, 2))
        forged = (1 << 62) - 5
        stub = pb_grpc.LearnerStub(channel)
        acks = list(
            stub.SendData(iter(make_frames(pb.KIND_TRANSITIONS, payload, forged, "arm", 1 << 20)),
                          metadata=md, timeout=10)
        )  # fmt: skip
        channel.close()
        reasons = [r.reason for a in acks for r in a.rejected if r.sequence == forged]
        assert reasons and "sequence_window" in reasons[0]
        assert collector.count("arm") == 0
        assert server.state_dict()["acked"]["arm"] == 0

        # The real actor then gets in and every one of its messages is taken.
        real = ActorClient(fast_config(server.port), "arm", "run")
        clients.append(real)
        real.put_transitions(make_episode(0, 0, 24))
        assert real.flush(15.0)
        assert collector.keys("arm") == [(0, f) for f in range(24)]
        assert real.stats().messages_rejected == 0
    finally:
        server.stop()


def test_each_actor_speaks_only_with_its_own_token(
    tmp_path: Path, clients: list[ActorClient]
) -> None:
    tokens = tmp_path / "actor_tokens"
    tokens.write_text("# actor id, token\nleft tok-left\nright tok-right\n")
    collector = Collector()
    server = serve(fast_config(0, actor_tokens_file=str(tokens)), collector)
    try:
        left = ActorClient(fast_config(server.port, token="tok-left"), "left", "run")
        clients.append(left)
        left.put_transitions(make_episode(0, 0, 8))
        assert left.flush(10.0) and collector.count("left") == 8

        for actor_id, token, why in (
            ("right", "tok-left", "has its own token"),  # one robot's token for another
            ("stranger", "tok-left", "not listed"),  # an id with no token of its own
        ):
            c = ActorClient(fast_config(server.port, token=token), actor_id, "run")
            clients.append(c)
            with pytest.raises(HandshakeRefused, match=why):
                c.connect(5.0)
        # A session of 'left' used with the token of 'right' is refused too.
        channel, reply, _ = raw_handshake(server.port, "left", "tok-left", previous="")
        assert not reply.accepted  # 'left' is live: no second session
        channel.close()
        left_md = (
            (ACTOR_HEADER, "left"),
            (AUTH_HEADER, bearer("tok-right")),
            (SESSION_HEADER, left.stats().session_id),
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        with pytest.raises(grpc.RpcError) as err:
            list(
                pb_grpc.LearnerStub(channel).StreamParameters(
                    pb.ParameterRequest(have_version=-1), metadata=left_md, timeout=5
                )
            )
        channel.close()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert collector.count("right") == 0 and collector.count("stranger") == 0
    finally:
        server.stop()


def test_client_certificate_must_name_the_actor_id(
    tmp_path: Path, clients: list[ActorClient]
) -> None:
    pytest.importorskip("cryptography")
    certs = generate_dev_certificates(tmp_path / "certs", client_name="robot-1")
    collector = Collector()
    server = serve(
        fast_config(
            0,
            tls=True,
            tls_cert=str(certs.server_cert),
            tls_key=str(certs.server_key),
            tls_ca=str(certs.ca_cert),
            tls_bind_actor_id=True,
        ),
        collector,
    )
    actor_cfg = fast_config(
        server.port,
        tls=True,
        tls_ca=str(certs.ca_cert),
        tls_cert=str(certs.client_cert),
        tls_key=str(certs.client_key),
    )
    try:
        good = ActorClient(actor_cfg, "robot-1", "run")
        clients.append(good)
        good.put_transitions(make_episode(0, 0, 8))
        assert good.flush(10.0) and collector.count("robot-1") == 8
        other = ActorClient(actor_cfg, "robot-2", "run")
        clients.append(other)
        with pytest.raises(HandshakeRefused, match="does not name actor id 'robot-2'"):
            other.connect(5.0)
    finally:
        server.stop()


# ----------------------------------------------- 3 and 6. refused ingest is rejected


def test_message_the_learner_refuses_is_rejected_not_acknowledged(
    clients: list[ActorClient],
) -> None:
    collector = Collector()

    def ingest(actor_id: str, transitions: list[Transition]) -> None:
        rewards = np.asarray([t.reward for t in transitions], np.float64)
        with np.errstate(over="ignore"):
            finite = np.isfinite(rewards.astype(np.float32)).all()
        if not finite:
            raise ValueError("reward is not finite in float32")
        collector.on_transitions(actor_id, transitions)

    server = LearnerServer(fast_config(0), ingest, collector.on_episode, run_id="run").start()
    try:
        c = ActorClient(fast_config(server.port), "arm", "run")
        clients.append(c)
        c.put_transitions(make_episode(0, 0, 8))
        assert c.flush(10.0)
        bad = make_episode(0, 1, 8)
        bad[3].reward = 1e39  # finite as a float64, inf in the learner's float32 replay
        c.put_transitions(bad)
        assert c.flush(10.0)
        c.put_transitions(make_episode(0, 2, 8))
        assert c.flush(10.0)

        stats = c.stats()
        assert stats.messages_rejected == 1
        assert stats.transitions_acked == 16  # the refused batch is not counted as received
        assert stats.transitions_dropped == 8
        learner_side = server.actor_stats()["arm"]
        assert learner_side.ingest_errors == 1 and learner_side.rejected == 1
        assert [k[0] for k in collector.keys("arm")] == [0] * 8 + [2] * 8
    finally:
        server.stop()


# --------------------------------------------------------- 5. memory in transit

BUDGET_LEARNER = """
import sys, time
sys.path.insert(0, {here!r})
from transport_testlib import fast_config
from hilrl.transport import LearnerServer
cfg = fast_config(0, chunk_bytes=1 << 20, max_message_bytes=2 << 20,
                  max_payload_bytes=64 << 20, max_unfinished_bytes={budget},
                  max_unproven_bytes=2 << 20)
count = {{}}
def on_transitions(actor, ts):
    count[actor] = count.get(actor, 0) + len(ts)
    print("delivered", actor, count[actor], flush=True)
server = LearnerServer(cfg, on_transitions, lambda a, s: None, run_id="run").start()
print("port", server.port, flush=True)
sys.stdin.read()
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_unfinished_messages_of_many_clients_stay_within_the_memory_budget() -> None:
    budget = 64 * MIB
    attackers = 6
    proc = subprocess.Popen(
        [sys.executable, "-c", BUDGET_LEARNER.format(here=str(HERE), budget=budget)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        # Fixed malloc settings, so the figure is the bytes held, not glibc's per-thread
        # arena slack (without them the same run peaks anywhere from 140 to 330 MB).
        env={
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "MALLOC_ARENA_MAX": "2",
            "MALLOC_MMAP_THRESHOLD_": str(512 * 1024),
        },
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        port = int(proc.stdout.readline().split()[1])
        before = peak_rss_mb(proc.pid)
        chunk = 1 << 20
        announced = 64 << 20  # each client announces a 64 MB message and never finishes it
        data = bytes(chunk)
        small = codec.encode_transitions(make_episode(0, 0, 2))
        codes: list[grpc.StatusCode | None] = []

        def attack(i: int) -> None:
            channel, reply, md = raw_handshake(port, f"greedy-{i}")
            assert reply.accepted

            def frames() -> Iterator[pb.Frame]:
                # One valid small message first: the session proves itself and may then
                # use the global budget, not only the small per-session one.
                yield from make_frames(pb.KIND_TRANSITIONS, small, 1, f"greedy-{i}", chunk)
                for k in range(announced // chunk - 1):  # the last chunk never comes
                    yield pb.Frame(
                        kind=pb.KIND_TRANSITIONS,
                        schema_version=codec.SCHEMA_VERSION,
                        actor_id=f"greedy-{i}",
                        sequence=2,
                        payload_length=announced,
                        checksum=0,
                        chunk_index=k,
                        chunk_count=announced // chunk,
                        data=data,
                    )
                time.sleep(3)  # hold the partial message open

            try:
                list(pb_grpc.LearnerStub(channel).SendData(frames(), metadata=md, timeout=60))
                codes.append(None)
            except grpc.RpcError as exc:
                codes.append(exc.code())
            channel.close()

        threads = [threading.Thread(target=attack, args=(i,)) for i in range(attackers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(70)
        grown = peak_rss_mb(proc.pid) - before
        # At most one stream can keep its partial message (it fits the budget alone).
        assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) >= attackers - 1
        # 6 x 64 MB were announced (held, they alone would be 384 MB); the budget is 64 MB,
        # plus gRPC's own buffers of the frames in flight, which vary with the machine's
        # load (measured: 142-190 MB in all with the budget, 464 MB without it).
        assert grown < 64 + 160, f"learner peak RSS grew by {grown:.0f} MB"

        # The learner still serves: a real actor gets its data through.
        real = ActorClient(fast_config(port), "real", "run")
        real.put_transitions(make_episode(1, 0, 8))
        assert real.flush(15.0)
        real.close(2.0)
        # (flush() returned True: the learner's ingest already printed the line)
        assert "delivered real 8" in _lines_until(proc, "delivered real ")
    finally:
        proc.stdin.close()
        proc.kill()
        proc.wait(10)


def _lines_until(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if text in line:
            return line
    return ""


def test_unproven_session_gets_only_the_small_budget() -> None:
    collector = Collector()
    cfg = fast_config(
        0,
        chunk_bytes=1 << 20,
        max_message_bytes=2 << 20,
        max_payload_bytes=64 << 20,
        max_unfinished_bytes=64 << 20,
        max_unproven_bytes=2 << 20,
    )
    server = serve(cfg, collector)
    try:
        channel, _, md = raw_handshake(server.port, "new")
        frames = [
            pb.Frame(
                kind=pb.KIND_TRANSITIONS,
                schema_version=codec.SCHEMA_VERSION,
                actor_id="new",
                sequence=1,
                payload_length=32 << 20,
                checksum=0,
                chunk_index=k,
                chunk_count=32,
                data=bytes(1 << 20),
            )
            for k in range(4)
        ]
        with pytest.raises(grpc.RpcError) as err:
            list(pb_grpc.LearnerStub(channel).SendData(iter(frames), metadata=md, timeout=10))
        channel.close()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "max_unproven_bytes" in (err.value.details() or "")
        assert wait_until(lambda: server.budget.used_bytes == 0, 5.0)  # all given back
    finally:
        server.stop()


def test_episode_callback_refusal_is_counted_too(clients: list[ActorClient]) -> None:
    collector = Collector()

    def on_episode(actor_id: str, stats: EpisodeStats) -> None:
        raise ValueError("episode index goes backwards")

    server = LearnerServer(fast_config(0), collector.on_transitions, on_episode, run_id="run")
    server.start()
    try:
        c = ActorClient(fast_config(server.port), "arm", "run")
        clients.append(c)
        c.put_episode(EpisodeStats(0, 1, 1.0, True, 0, 0))
        assert c.flush(10.0)
        assert c.stats().messages_rejected == 1
        assert server.actor_stats()["arm"].ingest_errors == 1
    finally:
        server.stop()


def test_a_peer_of_the_previous_wire_schema_is_refused_naming_both_versions() -> None:
    collector = Collector()
    server = serve(fast_config(0), collector)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        reply = pb_grpc.LearnerStub(channel).Handshake(
            pb.HandshakeRequest(actor_id="old", run_id="run", schema_version=2), timeout=5
        )
        channel.close()
        assert not reply.accepted and not reply.retryable
        assert "v2" in reply.reason and f"v{codec.SCHEMA_VERSION}" in reply.reason
        assert "same hilrl version" in reply.reason
    finally:
        server.stop()
