"""The actor under an operator's events and restarts.

Evaluation honours the operator's events (quit, pause, success, failure) but never their
actions; a takeover ends the evaluation episode, flagged. A pause ends the episode as a
truncation and a new one starts (no transition starts from the pre-pause observation).
A restarted actor continues its episode indices and seeds from its state file.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runtime_helpers import Sink, StepRecorder, tiny_config

from hilrl import seeds
from hilrl.core import TeleopCommand, TeleopEvents
from hilrl.envs.wrappers import InterventionWrapper
from hilrl.policies.sac_policy import policy_weights
from hilrl.runtime.actor import (
    ActorLoop,
    ActorOptions,
    ActorState,
    open_actor,
    read_actor_state,
    write_actor_state,
)
from hilrl.runtime.stopping import StopFlag
from hilrl.runtime.teleop_session import find_wrapper
from hilrl.transport import InProcLearner
from hilrl.types import Observation

pytestmark = pytest.mark.timeout(60)

EPISODE = 10  # steps of a tiny-config episode (1 s at 10 Hz), nobody ends one earlier
OPERATOR_ACTION = 0.3


class ScriptedOperator:
    """An input controller driven by the test: events and takeovers on demand."""

    def __init__(self, action_dim: int) -> None:
        self.action_dim = action_dim
        self.intervening = False
        self.polls = 0
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None: ...

    def raise_event(self, name: str) -> None:
        with self._lock:
            self._pending.add(name)

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        with self._lock:
            self.polls += 1
            events = TeleopEvents(**{name: True for name in self._pending})
            self._pending.clear()
        action = np.full(self.action_dim, OPERATOR_ACTION, np.float32) if self.intervening else None
        return TeleopCommand(self.intervening, action, events)


class HookedPolicy:
    """The real policy; ``hook(deterministic, count)`` runs before each act (count from 1)."""

    def __init__(self, inner: Any, hook: Callable[[bool, int], None] | None) -> None:
        self.inner = inner
        self.hook = hook
        self.calls: list[tuple[bool, np.ndarray]] = []
        self.counts = {True: 0, False: 0}

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        self.counts[deterministic] += 1
        if self.hook is not None:
            self.hook(deterministic, self.counts[deterministic])
        action = self.inner.act(observation, deterministic)
        self.calls.append((deterministic, np.asarray(action, np.float32).copy()))
        return action

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None:
        self.inner.load_weights(weights, version)

    @property
    def version(self) -> int:
        return int(self.inner.version)


class Run:
    def __init__(
        self, sink: Sink, rec: StepRecorder, loop: ActorLoop, policy: HookedPolicy
    ) -> None:
        self.sink, self.rec, self.loop, self.policy = sink, rec, loop, policy


def run_actor(
    tmp_path: Path,
    options: ActorOptions,
    *,
    operator: bool = True,
    hook: Callable[[ScriptedOperator, ActorLoop, bool, int], None] | None = None,
    during: Callable[[ScriptedOperator, ActorLoop], None] | None = None,
    stop: StopFlag | None = None,
    fail_on_reset: int | None = None,
) -> Run:
    """One actor over the in-process transport, with the scripted operator attached.

    ``during(operator, loop)`` runs in a thread while the loop runs.
    """
    cfg = tiny_config(tmp_path / "run", teleop={"device": "none"})
    sink = Sink()
    learner = InProcLearner(sink.on_transitions, sink.on_episode).start()
    try:
        with open_actor(cfg) as (env, policy, _arch):
            hook_wrapper = find_wrapper(env, InterventionWrapper)
            assert hook_wrapper is not None
            shape = env.action_space.shape
            assert shape is not None
            op = ScriptedOperator(shape[0])
            if operator:
                hook_wrapper.controller = op
            rec = StepRecorder(env, fail_on_reset)
            learner.publish_weights(policy_weights(policy.nets), 0)
            endpoint = learner.connect(options.actor_id)
            holder: list[ActorLoop] = []
            hooked = HookedPolicy(
                policy,
                None if hook is None else lambda det, n: hook(op, holder[0], det, n),
            )
            loop = ActorLoop(rec, hooked, endpoint, options, stop)
            holder.append(loop)
            helper = None
            if during is not None:
                helper = threading.Thread(target=during, args=(op, loop), daemon=True)
                helper.start()
            try:
                loop.run()
            finally:
                if helper is not None:
                    helper.join(timeout=10)
                endpoint.close()
    finally:
        learner.stop()
    return Run(sink, rec, loop, hooked)


def at(deterministic: bool, count: int, do: Callable[[ScriptedOperator], None]) -> Any:
    """A hook that runs ``do(operator)`` before the ``count``-th (eval or train) act."""

    def hook(op: ScriptedOperator, loop: ActorLoop, det: bool, n: int) -> None:
        if det == deterministic and n == count:
            do(op)

    return hook


def _wait_until(done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the actor never got there")
        time.sleep(0.005)


class ResumeAfterPause:
    """``during``: once the loop is paused and has polled the operator ``polls`` more times
    (it holds the arm and polls while paused), press ``then`` (or set ``stop``).

    ``steps_while_paused`` counts the env steps taken meanwhile: none, when pausing works.
    """

    def __init__(self, polls: int = 3, then: str = "pause", stop: StopFlag | None = None) -> None:
        self.polls, self.then, self.stop = polls, then, stop
        self.steps_while_paused: int | None = None

    def __call__(self, op: ScriptedOperator, loop: ActorLoop) -> None:
        rec = loop.env
        assert isinstance(rec, StepRecorder)
        _wait_until(lambda: getattr(loop.summary, "pauses", 0) >= 1)
        steps, polled = len(rec.steps), op.polls
        _wait_until(lambda: op.polls >= polled + self.polls)
        self.steps_while_paused = len(rec.steps) - steps
        if self.stop is not None:
            self.stop.set("test stop")
        else:
            op.raise_event(self.then)


# ------------------------------------------------------------------ evaluation and the operator


def test_quit_during_an_evaluation_episode_stops_the_actor(tmp_path: Path) -> None:
    options = ActorOptions("actor-0", max_steps=100, seed=1, eval_every_episodes=1)
    run = run_actor(tmp_path, options, hook=at(True, 3, lambda op: op.raise_event("quit")))
    assert run.loop.summary.reason == "operator quit"
    evals = run.sink.evals()
    assert len(evals) == 1 and evals[0].length == 3  # it ended on the tick of the quit
    assert len(run.sink.transitions) == EPISODE  # nothing after the first training episode


@pytest.mark.parametrize(("event", "success"), [("failure", False), ("success", True)])
def test_failure_and_success_events_end_an_evaluation_episode(
    tmp_path: Path, event: str, success: bool
) -> None:
    options = ActorOptions("actor-0", max_steps=3 * EPISODE, seed=2, eval_every_episodes=1)
    run = run_actor(tmp_path, options, hook=at(True, 2, lambda op: op.raise_event(event)))
    evals = run.sink.evals()
    assert evals[0].length == 2 and evals[0].success is success
    assert evals[1].length == EPISODE and not evals[1].success  # the next one runs normally
    assert len(run.sink.transitions) == 3 * EPISODE  # training went on


def test_pause_during_an_evaluation_episode_holds_the_actor(tmp_path: Path) -> None:
    options = ActorOptions("actor-0", max_steps=2 * EPISODE, seed=3, eval_every_episodes=1)
    run = run_actor(
        tmp_path,
        options,
        hook=at(True, 2, lambda op: op.raise_event("pause")),
        during=(paused := ResumeAfterPause()),
    )
    assert run.loop.summary.pauses == 1
    assert paused.steps_while_paused == 0  # the actor held still while paused
    first_eval = run.sink.evals()[0]
    assert first_eval.length == 2 and first_eval.interrupted
    assert len(run.sink.transitions) == 2 * EPISODE


def test_a_takeover_during_evaluation_is_ignored_ends_the_episode_and_is_flagged(
    tmp_path: Path,
) -> None:
    def take_over(op: ScriptedOperator) -> None:
        op.intervening = True  # and the operator keeps the controls from here on

    options = ActorOptions(
        "actor-0", max_steps=3 * EPISODE, seed=4, eval_every_episodes=1, eval_episodes=2
    )
    run = run_actor(tmp_path, options, hook=at(True, 2, take_over))
    evals = run.sink.evals()
    assert evals[0].length == 2
    assert evals[0].operator_takeover and evals[0].interrupted
    assert all(e.intervention_steps == 0 for e in evals)
    # every executed evaluation action was the policy's, never the operator's
    assert len(run.policy.calls) == len(run.rec.steps)
    for (deterministic, action), step in zip(run.policy.calls, run.rec.steps):
        info = step.info
        if deterministic:
            assert not info["is_intervention"]
            np.testing.assert_allclose(info["teleop_action"], np.clip(action, -1, 1), atol=1e-6)
    # the rest of that evaluation round was skipped: training (where the operator drives) goes on
    kinds = [e.is_eval for e in run.sink.episodes]
    assert not any(a and b for a, b in itertools.pairwise(kinds))
    assert run.loop.summary.eval_takeovers == len(evals) >= 2
    assert len(run.sink.transitions) == 3 * EPISODE
    assert all(t.is_intervention for t in run.sink.transitions[EPISODE:])


# ------------------------------------------------------------------ pause


def test_a_pause_truncates_the_episode_and_the_next_one_starts_from_a_reset(
    tmp_path: Path,
) -> None:
    options = ActorOptions("actor-0", max_steps=2 * EPISODE, seed=5)
    run = run_actor(
        tmp_path,
        options,
        hook=at(False, 3, lambda op: op.raise_event("pause")),
        during=(paused := ResumeAfterPause()),
    )
    ts = run.sink.transitions
    assert run.loop.summary.pauses == 1 and paused.steps_while_paused == 0
    # the step that carried the pause ends the episode as a truncation (it still bootstraps)
    assert ts[2].truncated and not ts[2].terminated
    assert run.sink.episodes[0].length == 3 and run.sink.episodes[0].interrupted
    # the next transition starts from a fresh reset, not from the observation before the pause
    assert len(run.rec.resets) >= 2
    fresh = run.rec.resets[1]
    assert all(np.array_equal(ts[3].observation[k], fresh[k]) for k in fresh)
    assert (ts[3].episode_index, ts[3].frame_index) == (1, 0)
    assert len(ts) == 2 * EPISODE


@pytest.mark.parametrize("how", ["quit", "stop"])
def test_a_pause_ends_with_quit_or_stop_under_the_right_reason(tmp_path: Path, how: str) -> None:
    stop = StopFlag(watch_parent=False)
    options = ActorOptions("actor-0", max_steps=100, seed=6)
    run = run_actor(
        tmp_path,
        options,
        hook=at(False, 2, lambda op: op.raise_event("pause")),
        during=ResumeAfterPause(then="quit", stop=stop if how == "stop" else None),
        stop=stop,
    )
    assert run.loop.summary.reason == ("operator quit" if how == "quit" else "test stop")
    assert len(run.sink.transitions) == 2


# ------------------------------------------------------------------ restarts


def test_a_restarted_actor_continues_its_episode_indices_and_seeds(tmp_path: Path) -> None:
    state = tmp_path / "run" / "actors" / "actor-1.json"

    def options(first_episode: int = 0) -> ActorOptions:
        return ActorOptions(
            "actor-1",
            actor_index=1,
            max_steps=15,
            seed=7,
            eval_every_episodes=1,
            first_episode=first_episode,
            state_file=state,
        )

    first = run_actor(tmp_path / "a", options(), operator=False)
    train = seeds.actor_stream("train", 1)
    evals = seeds.actor_stream("eval", 1)
    # train 0, eval 0, then train 1, cut by the step budget after 5 of its steps
    assert first.rec.seeds == [
        seeds.episode_seed(7, train, 0),
        seeds.episode_seed(7, evals, 0),
        seeds.episode_seed(7, train, 1),
    ]
    saved = read_actor_state(state)
    assert saved == ActorState("actor-1", 1, next_episode=2, next_eval_episode=1, steps=15)

    second = run_actor(tmp_path / "b", options(first_episode=0), operator=False)
    assert second.rec.seeds[:2] == [
        seeds.episode_seed(7, train, 2),
        seeds.episode_seed(7, evals, 1),
    ]
    assert not set(first.rec.seeds) & set(second.rec.seeds)
    before = {t.episode_index for t in first.sink.transitions}
    after = {t.episode_index for t in second.sink.transitions}
    assert before == {0, 1} and min(after) == 2
    assert [e.episode_index for e in second.sink.evals()] == [1]


def test_an_episode_index_is_reserved_before_the_reset_so_a_crash_leaves_a_gap(
    tmp_path: Path,
) -> None:
    state = tmp_path / "actors" / "actor-0.json"
    options = ActorOptions("actor-0", max_steps=100, seed=8, state_file=state)
    with pytest.raises(RuntimeError, match="fell over"):
        run_actor(tmp_path / "a", options, operator=False, fail_on_reset=2)
    saved = read_actor_state(state)
    assert saved is not None and saved.next_episode == 2  # episode 1 is gone, never reused
    again = run_actor(
        tmp_path / "b",
        ActorOptions("actor-0", max_steps=5, seed=8, state_file=state),
        operator=False,
    )
    assert {t.episode_index for t in again.sink.transitions} == {2}


def test_the_state_file_survives_sigkill_at_any_moment(tmp_path: Path) -> None:
    path = tmp_path / "actors" / "a.json"
    writer = (
        "import itertools, sys\n"
        "from hilrl.runtime.actor import ActorState, write_actor_state\n"
        "for i in itertools.count(1):\n"
        f"    write_actor_state({str(path)!r}, ActorState('a', 0, next_episode=i, steps=i))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", writer])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = read_actor_state(path)
            if state is not None and state.next_episode > 200:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the writer never got going")
    finally:
        proc.kill()  # SIGKILL, somewhere in a write
        proc.wait()
    state = read_actor_state(path)
    assert state is not None and state.next_episode > 200 and state.steps == state.next_episode
    # a new write after the crash replaces it cleanly (a leftover temporary file is harmless)
    write_actor_state(path, ActorState("a", 0, next_episode=state.next_episode + 1))
    assert read_actor_state(path) == ActorState("a", 0, next_episode=state.next_episode + 1)
