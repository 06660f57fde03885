"""Behaviour shared by the gRPC transport and its in-process twin (parametrised)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from transport_testlib import Collector, episode_stats, fast_config, make_episode

from hilrl.core import ParameterSource, TransitionSink
from hilrl.transport import (
    ActorClient,
    ActorEndpoint,
    InProcLearner,
    LearnerEndpoint,
    LearnerServer,
)
from hilrl.types import LearnerProgress

pytestmark = pytest.mark.timeout(60)


@dataclass
class Setup:
    kind: str
    collector: Collector
    learner: LearnerEndpoint
    connect: Callable[[str], ActorEndpoint]


@pytest.fixture(params=["inproc", "grpc"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    collector = Collector()
    actors: list[ActorEndpoint] = []
    if request.param == "inproc":
        inproc = InProcLearner(
            collector.on_transitions, collector.on_episode, queue_messages=8
        ).start()

        def connect_inproc(actor_id: str) -> ActorEndpoint:
            actors.append(inproc.connect(actor_id))
            return actors[-1]

        yield Setup("inproc", collector, inproc, connect_inproc)
        for a in actors:
            a.close(5.0)
        inproc.stop()
    else:
        server = LearnerServer(
            fast_config(0), collector.on_transitions, collector.on_episode, run_id="run"
        ).start()

        def connect_grpc(actor_id: str) -> ActorEndpoint:
            actors.append(
                ActorClient(fast_config(server.port, str(tmp_path / "spool")), actor_id, "run")
            )
            return actors[-1]

        yield Setup("grpc", collector, server, connect_grpc)
        for a in actors:
            a.close(5.0)
        server.stop()


def test_endpoints_satisfy_the_core_protocols(setup: Setup) -> None:
    actor = setup.connect("a")
    assert isinstance(actor, TransitionSink) and isinstance(actor, ParameterSource)
    assert isinstance(setup.learner, LearnerEndpoint)


def test_many_actors_deliver_everything_once_in_order(setup: Setup) -> None:
    n_actors, episodes, length = 5, 3, 20
    actors = [setup.connect(f"actor-{i}") for i in range(n_actors)]

    def run(i: int) -> None:
        for ep in range(episodes):
            steps = make_episode(i, ep, length)
            for k in range(0, length, 3):  # uneven puts, as a control loop would
                actors[i].put_transitions(steps[k : k + 3])
            actors[i].put_episode(episode_stats(ep, length))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a.flush(20.0) for a in actors)
    c = setup.collector
    for i in range(n_actors):
        aid = f"actor-{i}"
        expected = [(ep, f) for ep in range(episodes) for f in range(length)]
        assert c.keys(aid) == expected  # all, once, in order
        assert [e.episode_index for e in c.episodes[aid]] == list(range(episodes))
        assert all(e.actor_id == aid for e in c.episodes[aid])
        # Each episode's summary comes after that episode's transitions.
        order = "".join(c.order[aid])
        assert order == ("t" * length + "e") * episodes
    assert setup.learner.state_dict()["acked"].keys() == {f"actor-{i}" for i in range(n_actors)}


def test_received_data_equals_sent_data(setup: Setup) -> None:
    actor = setup.connect("a")
    steps = make_episode(7, 0, 11)
    actor.put_transitions(steps)
    assert actor.flush(10.0)
    got = setup.collector.transitions["a"]
    for sent, recv in zip(steps, got, strict=True):
        for key in sent.observation:
            assert np.array_equal(sent.observation[key], recv.observation[key])
            assert np.array_equal(sent.next_observation[key], recv.next_observation[key])
        assert np.array_equal(sent.action, recv.action) and sent.reward == recv.reward


def test_weights_latest_wins_and_reach_every_actor(setup: Setup) -> None:
    actors = [setup.connect(f"w{i}") for i in range(3)]
    assert all(a.latest(-1) is None for a in actors)
    for version in range(5):
        setup.learner.publish_weights({"w": np.full((4, 4), version, np.float32)}, version)
    for a in actors:
        got = a.wait_for_weights(3, 10.0)
        assert got is not None and got.version == 4
        assert np.array_equal(got.weights["w"], np.full((4, 4), 4, np.float32))
        assert a.latest(4) is None
    with pytest.raises(ValueError, match="not newer"):
        setup.learner.publish_weights({"w": np.zeros(1, np.float32)}, 4)


def test_state_dict_round_trips_and_resumes_numbering(setup: Setup) -> None:
    actor = setup.connect("a")
    actor.put_transitions(make_episode(0, 0, 10))
    assert actor.flush(10.0)
    state = setup.learner.state_dict()
    assert state["acked"]["a"] >= 1
    setup.learner.load_state_dict(state)
    assert setup.learner.state_dict() == state
    with pytest.raises(ValueError):
        setup.learner.load_state_dict({"schema_version": 999, "acked": {}})


def test_ingest_runs_on_one_thread_and_can_be_paused(setup: Setup) -> None:
    actor = setup.connect("a")
    with setup.learner.ingest_paused():
        actor.put_transitions(make_episode(0, 0, 3))
        actor.flush(0.3)
        assert setup.collector.count("a") == 0  # nothing delivered while paused
    assert actor.flush(10.0)
    assert setup.collector.count("a") == 3
    assert (
        len(setup.collector.threads) == 1
        and threading.current_thread().name not in setup.collector.threads
    )


def test_bad_transition_is_refused_at_put(setup: Setup) -> None:
    actor = setup.connect("a")
    step = make_episode(0, 0, 1)[0]
    step.observation["observation.state"] = step.observation["observation.state"].astype(np.float64)
    with pytest.raises(ValueError, match="float32"):
        actor.put_transitions([step])


def test_the_learners_progress_travels_with_its_weights(setup: Setup) -> None:
    actor = setup.connect("p")
    progress = LearnerProgress(updates=77, env_steps=1234, step_allowance=56)
    setup.learner.publish_weights({"w": np.zeros(3, np.float32)}, 0, progress)
    got = actor.wait_for_weights(-1, 10.0)
    assert got is not None and got.progress == progress
    assert set(got.weights) == {"w"}  # no pseudo-tensors among the weights
