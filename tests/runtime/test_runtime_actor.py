"""The actor loop over the in-process transport: what it sends is what the env did."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runtime_helpers import Sink, StepRecorder, tiny_config

from hilrl.policies.sac_policy import policy_weights
from hilrl.runtime.actor import ActorLoop, ActorOptions, open_actor
from hilrl.runtime.stopping import StopFlag
from hilrl.transport import InProcLearner
from hilrl.types import LearnerProgress

pytestmark = pytest.mark.timeout(60)


class BlockWatch:
    """An actor endpoint that reports when the actor blocks for newer weights than it has.

    The actor asks for weights newer than the ones it runs only when its step allowance is
    used up; from then on it takes no step until the learner publishes.
    """

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint
        self.blocked = threading.Event()

    def wait_for_weights(self, newer_than: int, timeout_s: float) -> Any:
        if newer_than >= 0:
            self.blocked.set()
        return self._endpoint.wait_for_weights(newer_than, timeout_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._endpoint, name)


def _same_obs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _run(
    tmp_path: Path,
    options: ActorOptions,
    allowance: int = -1,
    publish_when_blocked: bool = False,
    **train: Any,
) -> tuple[Sink, StepRecorder]:
    cfg = tiny_config(tmp_path / "run", train={"eval_episodes": 1, **train})
    sink = Sink()
    learner = InProcLearner(sink.on_transitions, sink.on_episode).start()
    try:
        with open_actor(cfg) as (env, policy, _arch):
            recorder = StepRecorder(env)
            weights = policy_weights(policy.nets)
            learner.publish_weights(weights, 0, LearnerProgress(step_allowance=allowance))
            endpoint = BlockWatch(learner.connect(options.actor_id))
            loop = ActorLoop(recorder, policy, endpoint, options)
            if not publish_when_blocked:
                loop.run()
            else:
                thread = threading.Thread(target=loop.run, daemon=True)
                thread.start()
                assert endpoint.blocked.wait(30), "the actor never waited for the learner"
                sent_before = loop.summary.steps
                learner.publish_weights(weights, 1, LearnerProgress(step_allowance=-1))
                thread.join(timeout=30)
                assert not thread.is_alive()
                recorder.sent_before_publish = sent_before  # type: ignore[attr-defined]
            endpoint.close()
    finally:
        learner.stop()
    return sink, recorder


def test_transitions_carry_true_next_obs_executed_action_and_flags(tmp_path: Path) -> None:
    options = ActorOptions("actor-0", actor_index=0, max_steps=40, seed=3)
    sink, rec = _run(tmp_path, options)
    ts = sink.transitions
    assert len(ts) == 40 == len(rec.steps)
    resets = iter(rec.resets)
    prev_obs = next(resets)
    ends = 0
    for t, (obs, reward, terminated, truncated, info, _) in zip(ts, rec.steps):
        assert _same_obs(t.observation, prev_obs)
        assert _same_obs(t.next_observation, obs)  # what step returned, also at episode ends
        np.testing.assert_array_equal(t.action, info["teleop_action"])
        assert t.is_intervention == info["is_intervention"]
        assert t.discrete_penalty == pytest.approx(info["discrete_penalty"])
        # a success on the time limit's last tick is a termination (no bootstrap)
        assert (t.reward, t.terminated) == (reward, terminated)
        assert t.truncated == (truncated and not terminated)
        assert t.policy_version == 0
        if terminated or truncated:
            ends += 1
            prev_obs = next(resets, None)  # type: ignore[arg-type]
            if prev_obs is not None:  # the reset is not the stored successor
                assert not _same_obs(t.next_observation, prev_obs)
        else:
            prev_obs = obs
    # 1 s episodes at 10 Hz: both endings occur (the operator finishes some, time cuts others)
    assert ends >= 3
    assert any(t.truncated for t in ts)
    assert any(t.is_intervention for t in ts)
    # episode summaries match the steps they cover (the last episode may be cut by the budget)
    assert len(sink.episodes) == ends
    start = 0
    for stats in sink.episodes:
        steps = rec.steps[start : start + stats.length]
        start += stats.length
        assert steps[-1].terminated or steps[-1].truncated
        assert stats.success == steps[-1].info["success"]
        assert stats.intervention_steps == sum(s.info["is_intervention"] for s in steps)
        assert stats.episode_return == pytest.approx(sum(s[1] for s in steps))
    assert [s.episode_index for s in sink.episodes] == list(range(ends))
    frames = [t.frame_index for t in ts[: sink.episodes[0].length]]
    assert frames == list(range(sink.episodes[0].length))


def test_actor_waits_when_the_learner_step_allowance_is_used(tmp_path: Path) -> None:
    options = ActorOptions("actor-0", max_steps=20, seed=1)
    sink, rec = _run(tmp_path, options, allowance=6, publish_when_blocked=True)
    assert rec.sent_before_publish == 6  # type: ignore[attr-defined]
    assert len(sink.transitions) == 20
    versions = [t.policy_version for t in sink.transitions]
    assert versions[:6] == [0] * 6 and versions[6:] == [1] * 14


def test_eval_episodes_run_without_operator_and_send_no_steps(tmp_path: Path) -> None:
    options = ActorOptions("actor-0", max_steps=25, seed=2, eval_every_episodes=1)
    sink, rec = _run(tmp_path, options)
    evals = [e for e in sink.episodes if e.is_eval]
    train = [e for e in sink.episodes if not e.is_eval]
    assert len(sink.transitions) == 25
    assert evals and len(evals) == len(train)
    assert all(e.intervention_steps == 0 for e in evals)
    eval_steps = sum(e.length for e in evals)
    assert len(rec.steps) == 25 + eval_steps
    # the operator is back for the training episodes after an evaluation
    assert sum(e.intervention_steps for e in train[1:]) > 0


def test_stop_flag_ends_the_loop_at_a_step_boundary(tmp_path: Path) -> None:
    stop = StopFlag(watch_parent=False)
    cfg = tiny_config(tmp_path / "run")
    sink = Sink()
    learner = InProcLearner(sink.on_transitions, sink.on_episode).start()
    try:
        with open_actor(cfg) as (env, policy, _arch):
            learner.publish_weights(policy_weights(policy.nets), 0)
            endpoint = learner.connect("a")
            loop = ActorLoop(env, policy, endpoint, ActorOptions("a"), stop)
            thread = threading.Thread(target=loop.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 20
            while loop.summary.steps < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            stop.set("test")
            thread.join(timeout=10)
            assert not thread.is_alive()
            assert loop.summary.reason == "test"
            endpoint.close()
    finally:
        learner.stop()
    assert len(sink.transitions) == loop.summary.steps >= 5


def test_episode_seeds_are_reproducible_and_decorrelated_across_run_seeds() -> None:
    """Run seeds 0 and 1 must not replay the same layouts shifted by one episode."""
    from hilrl.runtime.actor import episode_seed

    a = [episode_seed(0, "train", 0, e) for e in range(200)]
    assert a == [episode_seed(0, "train", 0, e) for e in range(200)]
    b = [episode_seed(1, "train", 0, e) for e in range(200)]
    assert not set(a) & set(b)
    evals = [episode_seed(0, "eval", 0, e) for e in range(200)]
    other_actor = [episode_seed(0, "train", 1, e) for e in range(200)]
    assert not set(a) & set(evals) and not set(a) & set(other_actor)
    assert all(0 <= s < 2**32 for s in a + b)
