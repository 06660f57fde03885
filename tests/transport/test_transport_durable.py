"""Exactly once across a learner crash: received vs durable acknowledgements.

The invariant checked throughout: what the learner's last checkpoint held, plus what
reaches the restored learner afterwards, is everything the actor produced, each exactly
once, however much the learner had received (and acknowledged) after that checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transport_testlib import Collector, fast_config, free_port, make_episode, wait_until

from hilrl.transport import ActorClient, InProcLearner, LearnerServer, codec

pytestmark = pytest.mark.timeout(90)
HERE = Path(__file__).parent
LENGTH = 16


def keys(episodes: range | list[int], length: int = LENGTH) -> list[tuple[int, int]]:
    return [(ep, f) for ep in episodes for f in range(length)]


def put_episodes(client: ActorClient, episodes: range | list[int], pause_s: float = 0.0) -> None:
    for ep in episodes:
        for step in make_episode(0, ep, LENGTH):
            client.put_transitions([step])
            if pause_s:
                time.sleep(pause_s)


class Checkpointed:
    """A learner whose "replay" is a collector, checkpointed the way a real learner does."""

    def __init__(self, port: int, state: dict[str, Any] | None = None, **overrides: Any) -> None:
        self.collector = Collector()
        self.server = LearnerServer(
            fast_config(port, **overrides),
            self.collector.on_transitions,
            self.collector.on_episode,
            run_id="run",
        )
        self.held: list[tuple[int, int]] = []
        if state is not None:
            self.server.load_state_dict(state["transport"])
            self.held = list(state["replay"])
        self.server.start()

    def snapshot(self) -> dict[str, Any]:
        """Replay + transport state from one instant (not yet confirmed)."""
        with self.server.ingest_paused():
            return {
                "transport": self.server.state_dict(),
                "replay": self.held + self.collector.keys("a"),
            }

    def checkpoint(self) -> dict[str, Any]:
        state = self.snapshot()
        self.server.mark_durable(state["transport"])
        return state

    def replay(self) -> list[tuple[int, int]]:
        return self.held + self.collector.keys("a")


def assert_exactly_once(got: list[tuple[int, int]], expected: list[tuple[int, int]]) -> None:
    twice = [k for k, n in Counter(got).items() if n > 1]
    assert not twice, f"delivered more than once: {twice[:5]}"
    missing = sorted(set(expected) - set(got))
    assert not missing, f"lost: {missing[:5]} ({len(missing)} in all)"
    assert sorted(got) == sorted(expected)


# ------------------------------------------------------------------ a real kill -9


class LearnerProcess:
    """tests/transport/transport_learner_proc.py, driven over stdin / stdout."""

    def __init__(self, port: int, checkpoint: Path) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }
        args = [sys.executable, str(HERE / "transport_learner_proc.py"), str(port), str(checkpoint)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._answer(60.0) == "ready"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())

    def _answer(self, timeout_s: float = 20.0) -> str:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"learner process silent for {timeout_s} s") from None

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def stats(self) -> dict[str, Any]:
        answer = self.ask("stats")
        assert answer.startswith("stats ")
        return dict(json.loads(answer[len("stats ") :]))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def learners() -> Iterator[list[LearnerProcess]]:
    started: list[LearnerProcess] = []
    yield started
    for learner in started:
        learner.kill()


@pytest.mark.slow
def test_sigkilled_learner_restored_from_its_checkpoint_gets_everything_exactly_once(
    tmp_path: Path, learners: list[LearnerProcess]
) -> None:
    port, checkpoint = free_port(), tmp_path / "checkpoint.json"
    learners.append(LearnerProcess(port, checkpoint))
    client = ActorClient(fast_config(port, str(tmp_path / "spool")), "a", "run")
    try:
        put_episodes(client, range(2))
        assert client.flush(20.0)
        answer = learners[0].ask("checkpoint")
        durable = json.loads(answer.split(" ", 1)[1])["a"]
        assert durable >= 1
        assert wait_until(lambda: client.stats().durable_through == durable, 10.0)

        # The actor keeps producing through the crash and the restart.
        producer = threading.Thread(target=put_episodes, args=(client, range(2, 8), 0.002))
        producer.start()
        assert wait_until(lambda: client.stats().acked_through >= durable + 3, 20.0)
        before = learners[0].stats()
        # The learner has received (and acknowledged) data that no checkpoint holds ...
        assert before["a"]["acked_through"] > before["a"]["durable_through"] == durable
        assert before["replay"] > 2 * LENGTH
        # ... and the actor still keeps copies of it.
        assert client.stats().retained_messages > 0
        learners[0].kill()  # kill -9: its memory, replay and acks since the checkpoint are gone

        learners.append(LearnerProcess(port, checkpoint))  # restored from the checkpoint
        producer.join(timeout=60)
        assert client.flush(30.0)
        learners[1].ask("checkpoint")
        assert client.wait_durable(10.0)
        dump = tmp_path / "replay.json"
        assert learners[1].ask(f"dump {dump}") == "dumped"
        replay = [tuple(k) for k in json.loads(dump.read_text())]
        assert_exactly_once(replay, keys(range(8)))  # type: ignore[arg-type]
        after = learners[1].stats()["a"]
        assert after["missing"] == 0
        assert client.stats().handshakes >= 2 and client.stats().retained_evicted == 0
        assert client.spool_dir is not None and not any(client.spool_dir.glob("*.safetensors"))
    finally:
        client.close(2.0)


# ----------------------------------------- the same story in one process (fast, exact)


def test_crash_after_receiving_rolls_back_to_the_checkpoint_without_loss(tmp_path: Path) -> None:
    port = free_port()
    first = Checkpointed(port)
    client = ActorClient(fast_config(port, str(tmp_path / "spool")), "a", "run")
    try:
        put_episodes(client, range(2))
        assert client.flush(10.0)
        saved = first.checkpoint()
        assert client.wait_durable(10.0)
        put_episodes(client, range(2, 4))
        assert client.flush(10.0)  # received, acknowledged, in no checkpoint
        assert client.stats().retained_messages > 0
        assert client.spool_dir is not None
        first.server.stop()  # "crash": everything after `saved` is forgotten below
        put_episodes(client, [4])  # produced while the learner is away
        second = Checkpointed(port, saved)
        try:
            assert client.flush(20.0)
            assert_exactly_once(second.replay(), keys(range(5)))
            stats = second.server.actor_stats()["a"]
            assert stats.missing == 0 and stats.duplicates == 0
            second.checkpoint()
            assert client.wait_durable(10.0)
            assert client.stats().retained_messages == 0
            assert not any(client.spool_dir.glob("*.safetensors"))
        finally:
            client.close(2.0)
            second.server.stop()
    finally:
        first.server.stop()


def test_crash_between_saving_and_confirming_a_checkpoint(tmp_path: Path) -> None:
    """The newest checkpoint was saved but mark_durable never ran: restore from it."""
    port = free_port()
    first = Checkpointed(port)
    client = ActorClient(fast_config(port, str(tmp_path / "spool")), "a", "run")
    try:
        put_episodes(client, range(2))
        assert client.flush(10.0)
        first.checkpoint()
        assert client.wait_durable(10.0)
        put_episodes(client, range(2, 4))
        assert client.flush(10.0)
        unconfirmed = first.snapshot()  # saved, then the learner died before confirming
        put_episodes(client, range(4, 6))
        assert client.flush(10.0)
        first.server.stop()
        second = Checkpointed(port, unconfirmed)
        try:
            # Nothing was put since: flush() alone could return before the reconnect.
            assert wait_until(lambda: client.stats().handshakes >= 2, 20.0)
            assert client.flush(20.0)
            # The actor held copies from the older confirmed checkpoint on: it resends
            # only what lies above the restored one.
            assert_exactly_once(second.replay(), keys(range(6)))
            assert second.server.actor_stats()["a"].duplicates == 0
        finally:
            client.close(2.0)
            second.server.stop()
    finally:
        first.server.stop()


def test_actor_restart_keeps_unconfirmed_copies_for_a_later_learner_crash(tmp_path: Path) -> None:
    port, spool = free_port(), str(tmp_path / "spool")
    first = Checkpointed(port)
    saved = first.checkpoint()  # empty
    old = ActorClient(fast_config(port, spool), "a", "run")
    put_episodes(old, range(3))
    assert old.flush(10.0)
    assert old.close(2.0)  # received, not durable: the copies go to the spool
    assert old.spool_dir is not None and any(old.spool_dir.glob("m-*.safetensors"))
    first.server.stop()
    second = Checkpointed(port, saved)  # the learner crashed too, back to the empty state
    new = ActorClient(fast_config(port, spool), "a", "run")
    try:
        put_episodes(new, [3])
        assert new.flush(20.0)
        assert_exactly_once(second.replay(), keys(range(4)))
    finally:
        new.close(2.0)
        second.server.stop()


def test_no_checkpoints_keeps_memory_bounded_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    learner = Checkpointed(0)
    cfg = fast_config(learner.server.port, memory_backlog_messages=4, max_inflight_messages=2)
    client = ActorClient(cfg, "a", "run")  # no spool: copies live in memory only
    try:
        with caplog.at_level(logging.WARNING, "hilrl.transport.client"):
            for ep in range(12):  # two messages each: unsent data always fits in memory
                put_episodes(client, [ep])
                assert client.flush(10.0)
                assert client.stats().retained_messages <= 4
        stats = client.stats()
        assert stats.retained_evicted > 0 and stats.transitions_dropped == 0
        assert stats.durable_acks and stats.messages_durable == 0
        assert any("not confirmed in a checkpoint" in r.getMessage() for r in caplog.records)
        assert_exactly_once(learner.replay(), keys(range(12)))
    finally:
        client.close(2.0)
        learner.server.stop()


def test_no_checkpoints_keeps_the_spool_within_its_cap(tmp_path: Path) -> None:
    learner = Checkpointed(0)
    message_bytes = len(codec.encode_transitions(make_episode(0, 0, 8)))  # one batch
    cap = 5 * message_bytes
    cfg = fast_config(
        learner.server.port,
        str(tmp_path / "spool"),
        memory_backlog_messages=2,
        max_inflight_messages=2,
        spool_max_bytes=cap,
    )
    client = ActorClient(cfg, "a", "run")
    try:
        for ep in range(10):  # two messages each: unsent data always fits in memory
            put_episodes(client, [ep])
            assert client.flush(10.0)
            assert client.spool_dir is not None
            used = sum(p.stat().st_size for p in client.spool_dir.glob("*.safetensors"))
            assert used <= cap
        stats = client.stats()
        assert stats.retained_evicted > 0 and stats.transitions_dropped == 0
        assert stats.messages_spooled > 0
        assert_exactly_once(learner.replay(), keys(range(10)))
        # Once the learner confirms a checkpoint, the remaining copies go away.
        learner.checkpoint()
        assert client.wait_durable(10.0)
        assert not any(client.spool_dir.glob("*.safetensors"))  # type: ignore[union-attr]
    finally:
        client.close(2.0)
        learner.server.stop()


def test_durable_acks_off_drops_copies_at_receipt(tmp_path: Path) -> None:
    learner = Checkpointed(0, durable_acks=False)
    client = ActorClient(fast_config(learner.server.port, str(tmp_path / "spool")), "a", "run")
    try:
        put_episodes(client, range(3))
        assert client.flush(10.0)
        assert client.wait_durable(0.5)  # received is durable here
        stats = client.stats()
        assert not stats.durable_acks and stats.retained_messages == 0
        assert stats.durable_through == stats.acked_through > 0
        assert client.spool_dir is not None and not any(client.spool_dir.glob("*.safetensors"))
        learner.server.mark_durable(learner.server.state_dict())  # harmless no-op
    finally:
        client.close(2.0)
        learner.server.stop()


# ------------------------------------------------------- mark_durable, both transports


@pytest.mark.parametrize("kind", ["inproc", "grpc"])
def test_mark_durable_moves_the_durable_watermark_forward_only(kind: str, tmp_path: Path) -> None:
    collector = Collector()
    if kind == "inproc":
        learner: InProcLearner | LearnerServer = InProcLearner(
            collector.on_transitions, collector.on_episode
        ).start()
        actor: Any = learner.connect("a")  # type: ignore[union-attr]
    else:
        learner = LearnerServer(
            fast_config(0), collector.on_transitions, collector.on_episode, run_id="run"
        ).start()
        actor = ActorClient(fast_config(learner.port, str(tmp_path / "spool")), "a", "run")
    try:
        actor.put_transitions(make_episode(0, 0, 8))
        assert actor.flush(10.0)
        with learner.ingest_paused():
            early = learner.state_dict()
        actor.put_transitions(make_episode(0, 1, 8))
        assert actor.flush(10.0)
        assert not actor.wait_durable(0.2)  # nothing confirmed yet
        assert learner.actor_stats()["a"].durable_through == 0
        late = learner.state_dict()
        learner.mark_durable(late)
        assert actor.wait_durable(10.0)
        assert learner.actor_stats()["a"].durable_through == late["acked"]["a"]
        learner.mark_durable(early)  # an older checkpoint does not move it back
        assert learner.actor_stats()["a"].durable_through == late["acked"]["a"]
        # A state claiming more than was delivered is clamped; unknown actors ignored.
        learner.mark_durable({**late, "acked": {"a": 10**6, "ghost": 5}})
        stats = learner.actor_stats()
        assert stats["a"].durable_through == late["acked"]["a"] and "ghost" not in stats
        for bad in ({"schema_version": 99, "acked": {}}, {**late, "acked": {"a": -1}}):
            with pytest.raises(ValueError):
                learner.mark_durable(bad)
    finally:
        actor.close(2.0)
        learner.stop()


def test_state_of_schema_v1_still_loads() -> None:
    learner = InProcLearner(lambda *_: None, lambda *_: None)
    learner.load_state_dict({"schema_version": 1, "run_id": "", "acked": {"a": 7}})
    assert learner.actor_stats()["a"].durable_through == 7
    assert learner.state_dict()["acked"] == {"a": 7}


@pytest.mark.parametrize("kind", ["inproc", "grpc"])
def test_state_taken_while_paused_counts_exactly_the_delivered_messages(
    kind: str, tmp_path: Path
) -> None:
    """The replay and the watermark of a snapshot agree, even with data streaming in."""
    calls = {"n": 0}

    def on_transitions(_actor: str, _ts: list[Any]) -> None:
        calls["n"] += 1  # one call per message: sequence numbers run 1, 2, 3 ...

    if kind == "inproc":
        learner: InProcLearner | LearnerServer = InProcLearner(
            on_transitions, lambda *_: None
        ).start()
        actor: Any = learner.connect("a")  # type: ignore[union-attr]
    else:
        learner = LearnerServer(
            fast_config(0), on_transitions, lambda *_: None, run_id="run"
        ).start()
        actor = ActorClient(fast_config(learner.port, str(tmp_path / "spool")), "a", "run")
    steps = make_episode(0, 0, 400)
    producer = threading.Thread(
        target=lambda: [actor.put_transitions(steps[k : k + 2]) for k in range(0, 400, 2)]
    )
    try:
        producer.start()
        snapshots = 0
        while producer.is_alive() or snapshots < 20:
            with learner.ingest_paused():
                acked = learner.state_dict()["acked"].get("a", 0)
                assert acked == calls["n"]
            snapshots += 1
            time.sleep(0.001)
        producer.join()
        assert actor.flush(10.0)
    finally:
        actor.close(2.0)
        learner.stop()


ACTOR_TWO_BATCHES = """
import sys, time
sys.path.insert(0, {here!r})
from transport_testlib import fast_config, make_episode
from hilrl.transport import ActorClient
client = ActorClient(fast_config({port}, {spool!r}), "a", "run")
for episode in (0, 1):
    client.put_transitions(make_episode(0, episode, {length}))
    assert client.flush(20.0)
    print("confirmed", episode, flush=True)
time.sleep(60)
"""


def test_actor_killed_then_learner_crashed_loses_no_confirmed_message(tmp_path: Path) -> None:
    """A double fault: the actor is SIGKILLed right after the learner confirmed receipt,
    then the learner crashes before any checkpoint holds the data. The messages were on
    the actor's disk before they were sent (write-ahead), so the next actor resends them."""
    port, spool = free_port(), str(tmp_path / "spool")
    first = Checkpointed(port)
    saved = first.checkpoint()  # empty, confirmed
    code = ACTOR_TWO_BATCHES.format(here=str(HERE), port=port, spool=spool, length=LENGTH)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert lines == ["confirmed 0", "confirmed 1"]
        assert sorted(first.replay()) == sorted(keys(range(2)))  # both received
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    first.server.stop()  # the learner crashes too: back to its empty checkpoint
    second = Checkpointed(port, saved)
    again = ActorClient(fast_config(port, spool), "a", "run")
    try:
        put_episodes(again, [2])
        assert again.flush(20.0)
        assert_exactly_once(second.replay(), keys(range(3)))
        assert second.server.actor_stats()["a"].missing == 0
    finally:
        again.close(2.0)
        second.server.stop()
