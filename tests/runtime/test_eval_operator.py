"""``evaluate()`` / ``hilrl eval`` with an operator: events count, actions never reach the arm.

Quit stops the evaluation with a partial result; a failure / success event ends the
episode as such (it counts); a pause holds the arm (the safety watchdog) until pause is
pressed again, and that episode is excluded; a takeover attempt ends the episode,
flagged and excluded. Without an operator (the launcher's final evaluation) no
controller is built, whatever ``teleop.device`` says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from eval_helpers import make_run, tiny_env_cfg, tiny_root

import hilrl.envs
import hilrl.runtime.evaluate as evaluate_module
import hilrl.teleop
from hilrl.cli.main import main
from hilrl.config.env import EnvConfig
from hilrl.config.operator import SimOperatorConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.core import InputController, TeleopCommand, TeleopEvents
from hilrl.envs.safety import SafetyWrapper
from hilrl.envs.wrappers.intervention import EventsOnlyController
from hilrl.runtime.evaluate import (
    HOLD_TICK_S,
    OPERATOR_QUIT,
    EvalResult,
    eval_seed,
    evaluate,
    evaluate_checkpoint,
    operator_by_default,
)
from hilrl.runtime.teleop_session import find_wrapper
from hilrl.types import Observation

pytest.importorskip("hilrl.robots.sim.arm")
pytestmark = pytest.mark.timeout(120)

EPISODE = 10  # steps of an episode of env_cfg() (1 s at 10 Hz); a still arm never succeeds
OPERATOR_ACTION = 0.3
SEED = 7


def env_cfg() -> EnvConfig:
    """State-only pick_cube, 10-step episodes, a watchdog that holds after 10 ms."""
    cfg = tiny_env_cfg(episode_time_s=1.0)
    return replace(cfg, safety=replace(cfg.safety, hold_timeout_s=0.01))


class StillPolicy:
    """A :class:`hilrl.core.Policy` that keeps the arm still."""

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        assert deterministic
        return np.zeros(4, dtype=np.float32)

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None: ...

    @property
    def version(self) -> int:
        return 0


class ScriptedOperator:
    """Events and takeovers at given polls: ``script[(episode, poll)]`` (polls count from 1
    at each reset, also while the evaluation holds a pause); ``always`` intervenes on
    every poll with its own action."""

    def __init__(self, script: dict[tuple[int, int], str] | None = None, always: bool = False):
        self.script = dict(script or {})
        self.always = always
        self.episode = -1
        self.poll_count = 0
        self.polls: list[tuple[int, int, float]] = []
        self.started = self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def reset(self) -> None:
        self.episode += 1
        self.poll_count = 0

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        self.poll_count += 1
        self.polls.append((self.episode, self.poll_count, time.monotonic()))
        what = self.script.get((self.episode, self.poll_count))
        takeover = self.always or what == "takeover"
        events = TeleopEvents(**({what: True} if what not in (None, "takeover") else {}))
        action = np.full(4, OPERATOR_ACTION, np.float32) if takeover else None
        return TeleopCommand(takeover, action, events)


class Recorder(gym.Wrapper[Any, Any, Any, Any]):
    """Outermost wrapper: reset seeds, and each step's info with its time."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        self.seeds: list[int | None] = []
        self.steps: list[tuple[dict[str, Any], float]] = []

    def reset(self, **kwargs: Any) -> Any:
        self.seeds.append(kwargs.get("seed"))
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.steps.append((dict(out[4]), time.monotonic()))
        return out


@pytest.fixture
def envs(monkeypatch: pytest.MonkeyPatch) -> list[Recorder]:
    """Every env ``evaluate`` builds, seen from outside its intervention hook."""
    made: list[Recorder] = []
    real = hilrl.envs.make_env

    def make(*args: Any, **kwargs: Any) -> Any:
        made.append(Recorder(real(*args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(evaluate_module, "make_env", make)
    return made


def run(op: InputController | TeleopConfig | None, episodes: int) -> tuple[EvalResult, list[str]]:
    notes: list[str] = []
    result = evaluate(
        StillPolicy(), env_cfg(), episodes=episodes, seed=SEED, operator=op, notify=notes.append
    )
    return result, notes


def assert_only_the_policy_acted(rec: Recorder) -> None:
    for info, _ in rec.steps:
        assert not info["is_intervention"]
        np.testing.assert_array_equal(info["teleop_action"], np.zeros(4, np.float32))


# ------------------------------------------------------------------------------ quit


def test_quit_mid_evaluation_stops_with_a_partial_result(envs: list[Recorder]) -> None:
    op = ScriptedOperator({(1, 3): "quit"})
    result, notes = run(op, episodes=4)
    assert result.stopped == OPERATOR_QUIT
    assert [e.index for e in result.episodes] == [0]  # the episodes done so far
    assert result.episodes[0].length == EPISODE and result.episodes[0].interrupted is None
    (cut,) = result.interrupted
    assert (cut.index, cut.length, cut.interrupted) == (1, 3, "quit")
    (rec,) = envs
    assert rec.seeds == [eval_seed(SEED, 0), eval_seed(SEED, 1)]  # nothing after the quit
    assert len(rec.steps) == EPISODE + 3
    summary = result.summary()
    assert summary["episodes"] == 1 and summary["interrupted"] == 1
    assert summary["requested_episodes"] == 4 and summary["stopped"] == OPERATOR_QUIT
    assert any("quit" in note and "partial" in note for note in notes)
    assert op.started == op.stopped == 0  # a controller passed in is its caller's to start


# ------------------------------------------------------------------- success / failure


@pytest.mark.parametrize(("event", "success"), [("failure", False), ("success", True)])
def test_a_failure_or_success_event_ends_the_episode_and_it_counts(
    envs: list[Recorder], event: str, success: bool
) -> None:
    result, notes = run(ScriptedOperator({(0, 2): event}), episodes=2)
    assert not notes
    first, second = result.episodes
    assert (first.length, first.terminated, first.success) == (2, True, success)
    assert first.interrupted is None
    assert (second.length, second.success, second.terminated) == (EPISODE, False, False)
    assert result.successes == int(success) and not result.interrupted
    assert result.stopped is None


# ----------------------------------------------------------------------------- pause


def test_a_pause_holds_the_arm_until_resumed_and_the_episode_is_excluded(
    envs: list[Recorder],
) -> None:
    op = ScriptedOperator({(0, 2): "pause", (0, 6): "pause"})  # resumed on the 4th hold poll
    result, notes = run(op, episodes=2)
    (paused,) = result.interrupted
    assert (paused.index, paused.length, paused.interrupted) == (0, 2, "pause")
    assert [(e.index, e.length) for e in result.episodes] == [(1, EPISODE)]
    assert result.summary()["episodes"] == 1 and result.summary()["interrupted"] == 1
    assert result.stopped is None
    (rec,) = envs
    assert rec.seeds == [eval_seed(SEED, 0), eval_seed(SEED, 1)]  # the next one from a reset
    assert len(rec.steps) == 2 + EPISODE
    # nothing stepped while paused: 4 polls, HOLD_TICK_S apart, between steps 2 and 3
    hold_polls = [t for ep, n, t in op.polls if ep == 0 and n > 2]
    assert len(hold_polls) == 4
    assert rec.steps[2][1] - rec.steps[1][1] >= 3 * HOLD_TICK_S
    assert rec.steps[1][1] < hold_polls[0] and hold_polls[-1] < rec.steps[2][1]
    safety = find_wrapper(rec, SafetyWrapper)
    assert safety is not None and safety.holds >= 1  # the watchdog held the arm
    assert any("paused" in note for note in notes)


def test_quit_while_paused_stops_the_evaluation(envs: list[Recorder]) -> None:
    result, notes = run(ScriptedOperator({(0, 2): "pause", (0, 4): "quit"}), episodes=3)
    assert result.stopped == OPERATOR_QUIT and "quit" in notes[-1]
    assert not result.episodes
    assert [e.interrupted for e in result.interrupted] == ["pause"]
    assert len(envs[0].seeds) == 1


# -------------------------------------------------------------------------- takeover


def test_a_takeover_ends_the_episode_flagged_and_excluded(envs: list[Recorder]) -> None:
    result, notes = run(ScriptedOperator({(1, 2): "takeover"}), episodes=3)
    (taken,) = result.interrupted
    assert (taken.index, taken.length) == (1, 2)
    assert taken.operator_takeover and taken.interrupted == "operator_takeover"
    assert taken.intervention_steps == 0
    assert [(e.index, e.length) for e in result.episodes] == [(0, EPISODE), (2, EPISODE)]
    assert result.operator_takeovers == 1 and result.summary()["operator_takeovers"] == 1
    assert result.stopped is None
    assert_only_the_policy_acted(envs[0])
    assert any("took over" in note for note in notes)


def test_no_operator_action_ever_reaches_the_env(envs: list[Recorder]) -> None:
    """An operator who holds the controls all along: every step runs the policy's action."""
    op = ScriptedOperator({(1, 1): "success"}, always=True)
    result, notes = run(op, episodes=3)
    assert len(notes) == 3
    (rec,) = envs
    assert len(rec.steps) == 3  # each episode ended at its first step, taken over
    assert_only_the_policy_acted(rec)
    assert all(e.operator_takeover and e.length == 1 for e in result.interrupted)
    assert len(result.interrupted) == 3 and not result.episodes
    assert result.interrupted[1].success  # the event counted, the takeover still excludes it


# ---------------------------------------------------------------- the simulated operator


def test_a_simulated_operator_only_watches(
    envs: list[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Built from teleop config: started, watching (no takeover, no trust update), stopped."""
    built: list[Any] = []
    real = hilrl.teleop.make_controller

    def make(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        seen: list[bool] = []
        poll = built[-1].poll
        built[-1].seen = seen

        def watched_poll(obs: Observation, info: Mapping[str, object]) -> TeleopCommand:
            seen.append(built[-1].watching)
            return poll(obs, info)

        built[-1].poll = watched_poll
        return built[-1]

    monkeypatch.setattr(evaluate_module, "make_controller", make)
    # A timid operator that would take over at once in training, and labels timeouts.
    sim = SimOperatorConfig(label_failure_on_timeout=True)
    result, notes = run(TeleopConfig(device="sim", sim=sim), episodes=2)
    assert not notes
    (op,) = built
    assert op.seen and all(op.seen)
    assert not op.watching and not op._started  # given back, stopped
    assert op.episodes == 0 and not op.takeovers  # its trust learnt nothing
    assert not result.interrupted and result.operator_takeovers == 0
    # its failure label on the last tick ended each episode as a failure
    assert [(e.length, e.terminated, e.success) for e in result.episodes] == [
        (EPISODE, True, False)
    ] * 2
    assert_only_the_policy_acted(envs[0])


def test_an_operator_without_a_device_is_refused() -> None:
    with pytest.raises(ValueError, match=r"teleop\.device"):
        evaluate(StillPolicy(), env_cfg(), episodes=1, operator=TeleopConfig(device="none"))


def test_events_only_controller_gives_the_watching_flag_back() -> None:
    op = ScriptedOperator({(0, 1): "pause"}, always=True)
    op.watching = False  # type: ignore[attr-defined]
    seen = EventsOnlyController(op)
    assert op.watching  # type: ignore[attr-defined]
    seen.reset()
    cmd = seen.poll({}, {})
    assert (cmd.is_intervening, cmd.action, cmd.events.pause) == (False, None, True)
    assert seen.takeover
    seen.reset()
    assert not seen.takeover
    seen.close()
    assert not op.watching  # type: ignore[attr-defined]


# --------------------------------------------------------------- the launcher's default


def test_evaluate_checkpoint_builds_no_operator_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher's final evaluation (no operator argument) stays operator-free."""
    made: list[Any] = []

    def make(*args: Any, **kwargs: Any) -> ScriptedOperator:
        made.append(ScriptedOperator({(0, 2): "failure"}))
        return made[-1]

    monkeypatch.setattr(evaluate_module, "make_controller", make)
    cfg = replace(tiny_root(), teleop=TeleopConfig(device="sim"))
    run_dir, _ = make_run(tmp_path, config=cfg)
    default = evaluate_checkpoint(run_dir, episodes=2, seed=1, video=False)
    auto = evaluate_checkpoint(run_dir, episodes=2, seed=1, video=False, operator=None)
    assert not made  # neither the default nor sim's auto builds one
    assert default.entry["operator"] is None and default.entry["interrupted"] == 0
    asked = evaluate_checkpoint(run_dir, episodes=2, seed=1, video=False, operator=True)
    assert len(made) == 1 and made[0].started == made[0].stopped == 1
    assert asked.entry["operator"] == "sim"
    assert asked.result.episodes[0].length == 2  # its failure event counted
    assert [e.length for e in default.result.episodes] == [e.length for e in auto.result.episodes]


def test_the_default_is_the_device_on_a_real_robot_only() -> None:
    root = tiny_root()
    real = replace(root.env, robot=replace(root.env.robot, type="so101"))
    keyboard = TeleopConfig(device="keyboard")
    assert operator_by_default(replace(root, env=real, teleop=keyboard))
    assert not operator_by_default(replace(root, env=real))  # device none
    assert not operator_by_default(replace(root, teleop=keyboard))  # sim
    assert not operator_by_default(replace(root, env=replace(real, gym_id="Pendulum-v1")))


# ------------------------------------------------------------------------------- CLI


def test_cli_help_documents_the_operator(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--operator" in out and "--no-operator" in out
    for word in ("quit", "pause", "takeover", "real robot"):
        assert word in out


def test_cli_quit_prints_the_partial_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        evaluate_module,
        "make_controller",
        lambda *a, **k: ScriptedOperator({(0, 2): "takeover", (2, 1): "quit"}),
    )
    run_dir, _ = make_run(tmp_path)
    args = ["eval", "--checkpoint", str(run_dir), "--episodes", "5", "--no-video"]
    assert main([*args, "--no-progress", "--operator", "--teleop.device=keyboard"]) == 0
    captured = capsys.readouterr()
    assert "stopped: operator quit after 3 of 5 episodes; partial result" in captured.out
    assert "not counted: 2 episode(s)" in captured.out and "1 takeover" in captured.out
    assert "success rate 0.0% (0/1)" in captured.out
    assert "took over" in captured.err
    (line,) = (run_dir / "metrics" / "eval.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["stopped"] == OPERATOR_QUIT and entry["episodes"] == 1
    assert [e["interrupted"] for e in entry["interrupted_episodes"]] == [
        "operator_takeover",
        "quit",
    ]


def test_cli_operator_without_a_device_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = make_run(tmp_path)
    assert main(["eval", "--checkpoint", str(run_dir), "--no-video", "--operator"]) == 1
    assert "teleop.device" in capsys.readouterr().err
