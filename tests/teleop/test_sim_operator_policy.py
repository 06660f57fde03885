"""The simulated operator's intervention policy, trust and events, through make_env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.config.operator import SimOperatorConfig
from hilrl.core import InputController
from hilrl.robots.sim import SimArm
from hilrl.runtime.sim_operator_env import make_operated_env
from hilrl.teleop.sim_operator import SimulatedOperator, make_sim_operator
from hilrl.teleop.sim_operator_expert import ActionLayout, make_task_expert
from hilrl.teleop.sim_operator_monitor import Thresholds, TrustModel
from hilrl.teleop.sim_operator_skill import SkilledExpert

Agent = Callable[[int], np.ndarray]
"""An agent under test: tick -> action (it may read the robot through a closure)."""


def _env_cfg(task: str = "pick_cube", **kw: Any) -> EnvConfig:
    cfg = replace(EnvConfig(use_cameras=False), **kw)
    cfg.robot = replace(cfg.robot, task=task, cameras=())
    cfg.validate()
    return cfg


@dataclass
class Episode:
    success: bool
    interventions: list[bool] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    infos: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminated: bool = False

    @property
    def rate(self) -> float:
        return sum(self.interventions) / max(1, len(self.interventions))


def _run(
    env_cfg: EnvConfig,
    op_cfg: SimOperatorConfig,
    make_agent: Callable[[SimArm], Agent],
    seeds: range,
) -> tuple[list[Episode], SimulatedOperator]:
    env, robot, operator = make_operated_env(env_cfg, op_cfg)
    assert isinstance(robot, SimArm)
    agent = make_agent(robot)
    episodes = []
    for seed in seeds:
        env.reset(seed=seed)
        ep = Episode(success=False)
        for t in range(10_000):
            _, reward, terminated, truncated, info = env.step(agent(t))
            ep.interventions.append(bool(info["is_intervention"]))
            ep.reasons.append(operator.last_reason)
            ep.infos.append(info)
            ep.rewards.append(float(reward))
            if terminated or truncated:
                ep.terminated = bool(terminated)
                break
        ep.success = bool(info["success"])
        episodes.append(ep)
    env.close()
    return episodes, operator


def _random_agent(seed: int = 0) -> Callable[[SimArm], Agent]:
    rng = np.random.default_rng(seed)
    return lambda robot: lambda t: rng.uniform(-1, 1, 4).astype(np.float32)


def _expert_agent(task: str = "pick_cube", noise: float = 0.0) -> Callable[[SimArm], Agent]:
    def make(robot: SimArm) -> Agent:
        cfg = _env_cfg(task)
        layout = ActionLayout.from_env_config(cfg)
        hands = SkilledExpert(
            make_task_expert(task, layout), layout, noise_std=noise, rng=np.random.default_rng(7)
        )

        def act(t: int) -> np.ndarray:
            if t == 0:
                hands.reset()
            hands.observe(robot.task_state())
            return hands.act()

        return act

    return make


def _still_agent(robot: SimArm) -> Agent:
    return lambda t: np.array([0.0, 0.0, 0.0, 0.0], dtype=np.float32)


def test_operator_is_an_input_controller() -> None:
    cfg = _env_cfg()
    robot = SimArm(cfg.robot)
    assert isinstance(make_sim_operator(SimOperatorConfig(), robot, cfg), InputController)


def test_random_agent_gets_taken_over_and_episodes_still_succeed() -> None:
    episodes, operator = _run(_env_cfg(), SimOperatorConfig(seed=0), _random_agent(), range(5))
    assert all(ep.success for ep in episodes)
    for ep in episodes:
        assert any(ep.interventions) and not all(ep.interventions)
        # what the wrapper executed while intervening is the operator's action
        acted = [i for i, on in enumerate(ep.interventions) if on]
        assert all(np.all(np.abs(ep.infos[i]["teleop_action"]) <= 1.0) for i in acted)
    assert set(operator.takeovers) <= {"stall", "corridor", "regress", "drop", "edge", "rescue"}


def test_random_agent_on_push_is_rescued_most_of_the_time() -> None:
    episodes, _ = _run(_env_cfg("push_cube"), SimOperatorConfig(seed=0), _random_agent(1), range(5))
    assert sum(ep.success for ep in episodes) >= 4
    assert all(any(ep.interventions) for ep in episodes)


@pytest.mark.parametrize("task", ["pick_cube", "push_cube"])
def test_no_takeover_when_the_agent_is_the_expert(task: str) -> None:
    op_cfg = SimOperatorConfig(seed=0, trust_rate=0.5)
    episodes, operator = _run(_env_cfg(task), op_cfg, _expert_agent(task), range(6))
    assert all(ep.success for ep in episodes)
    assert not any(any(ep.interventions) for ep in episodes)
    operator.reset()  # learns from the last episode too
    assert operator.episodes == 6
    # unaided successes (inferred: the env ends right after the solving step) build trust
    assert operator.trust == pytest.approx(1 - 0.5**6)


def test_hands_back_after_the_configured_number_of_steps() -> None:
    op_cfg = SimOperatorConfig(seed=0, takeover_steps=3, rescue=False, budget_steps=10_000)
    episodes, operator = _run(_env_cfg(episode_time_s=6.0), op_cfg, _random_agent(2), range(3))
    runs = []
    for ep in episodes:
        length = 0
        for i, on in enumerate(ep.interventions):
            if on:
                length += 1
            elif length:
                if ep.reasons[i - 1] != "edge":  # an edge takeover waits for the cube
                    runs.append(length)
                length = 0
    assert len(runs) >= 5
    assert set(runs) == {3}
    assert sum(operator.takeovers.values()) >= len(runs)


def test_stall_takes_over_after_stall_ticks() -> None:
    op_cfg = SimOperatorConfig(seed=0, stall_ticks=6, takeover_steps=4, rescue=False)
    episodes, operator = _run(_env_cfg(), op_cfg, _still_agent, range(1))
    ep = episodes[0]
    first = ep.interventions.index(True)
    assert first == 6  # polls 0..6 span six ticks without motion: the 7th step is the operator's
    assert ep.reasons[first] == "stall"
    assert operator.takeovers["stall"] >= 1


def test_corridor_takeover_when_the_agent_heads_away() -> None:
    away = lambda robot: lambda t: np.array([-1.0, 0.0, 0.0, 1.0], dtype=np.float32)  # noqa: E731
    op_cfg = SimOperatorConfig(seed=0, rescue=False)
    episodes, _ = _run(_env_cfg(), op_cfg, away, range(1))
    first = episodes[0].interventions.index(True)
    assert episodes[0].reasons[first] in ("corridor", "regress")
    assert first <= 4


def test_drop_takes_over_when_a_lifted_cube_is_released() -> None:
    def make(robot: SimArm) -> Agent:
        expert = _expert_agent()(robot)
        dropped = {"done": False}

        def act(t: int) -> np.ndarray:
            action = expert(t)
            state = robot.task_state()
            if state["cube_lift"][0] > 0.02 and not dropped["done"]:
                dropped["done"] = True
                action[-1] = 1.0  # open
            return action

        return act

    op_cfg = SimOperatorConfig(seed=0, rescue=False)
    episodes, operator = _run(_env_cfg(), op_cfg, make, range(1))
    assert operator.takeovers["drop"] == 1
    assert episodes[0].success


def test_intervention_rate_falls_as_trust_rises() -> None:
    rates = []
    for trust in (0.0, 1.0):
        op_cfg = SimOperatorConfig(seed=0, initial_trust=trust, trust_rate=0.0)
        episodes, _ = _run(_env_cfg(), op_cfg, _expert_agent(noise=0.8), range(4))
        assert all(ep.success for ep in episodes)
        rates.append(float(np.mean([ep.rate for ep in episodes])))
    assert rates[1] < rates[0]


def test_thresholds_widen_with_trust_and_trust_follows_outcomes() -> None:
    base = Thresholds(8, 0.005, 0.03, 2, 0.03)
    wide = base.scaled(TrustModel(initial=1.0, slack=1.0).factor)
    assert (wide.stall_ticks, wide.drift_ticks) == (16, 4)
    assert wide.corridor_m == pytest.approx(0.06) and wide.regress_m == pytest.approx(0.06)
    assert wide.stall_distance_m == base.stall_distance_m
    trust = TrustModel(initial=0.0, rate=0.25)
    for _ in range(4):
        trust.update(1.0)
    assert trust.trust == pytest.approx(1 - 0.75**4)
    trust.update(0.0)
    assert trust.trust == pytest.approx(0.75 * (1 - 0.75**4))


def test_random_agent_does_not_earn_trust() -> None:
    op_cfg = SimOperatorConfig(seed=0, trust_rate=0.5)
    _, operator = _run(_env_cfg(), op_cfg, _random_agent(3), range(4))
    operator.reset()
    assert operator.trust < 0.3


def test_success_event_is_sent_once_and_ends_the_episode() -> None:
    cfg = _env_cfg(terminate_on_success=False)
    episodes, _ = _run(cfg, SimOperatorConfig(seed=0), _expert_agent(), range(1))
    ep = episodes[0]
    flags = [bool(info["event_success"]) for info in ep.infos]
    assert flags.count(True) == 1 and flags[-1]
    assert ep.terminated and ep.rewards[-1] == 1.0 and ep.success


def test_failure_event_on_the_last_tick_of_a_timed_out_episode() -> None:
    cfg = _env_cfg(episode_time_s=1.0)
    op_cfg = SimOperatorConfig(seed=0, rescue=False, budget_steps=0, label_failure_on_timeout=True)
    episodes, operator = _run(cfg, op_cfg, _still_agent, range(1))
    ep = episodes[0]
    assert len(ep.infos) == cfg.max_episode_steps
    assert [bool(i["event_failure"]) for i in ep.infos] == [False] * 9 + [True]
    assert not any(ep.interventions)  # budget 0: no corrective takeovers
    assert ep.terminated and not ep.success and operator.failure_reason == "timeout"


def test_events_are_latched_until_one_poll_consumes_them() -> None:
    cfg = _env_cfg()
    robot = SimArm(cfg.robot)
    robot.connect()
    operator = make_sim_operator(SimOperatorConfig(seed=0), robot, cfg)
    operator.reset()
    operator.raise_event("pause")
    operator.raise_event("rerecord")
    first = operator.poll({}, {})
    second = operator.poll({}, {})
    assert first.events.pause and first.events.rerecord
    assert not (second.events.pause or second.events.rerecord)
    with pytest.raises(ValueError, match="unknown event"):
        operator.raise_event("explode")


def test_drive_always_drives_every_tick() -> None:
    episodes, operator = _run(
        _env_cfg(), SimOperatorConfig(seed=0, drive_always=True), _random_agent(4), range(2)
    )
    assert all(ep.success and all(ep.interventions) for ep in episodes)
    assert sum(operator.takeovers.values()) == 0


def test_rescue_near_the_time_limit_keeps_control_to_the_end() -> None:
    cfg = _env_cfg(episode_time_s=4.0)
    op_cfg = SimOperatorConfig(seed=0, budget_steps=0)  # only the rescue may act
    episodes, operator = _run(cfg, op_cfg, _still_agent, range(1))
    ep = episodes[0]
    first = ep.interventions.index(True)
    assert ep.reasons[first] == "rescue" and operator.takeovers == {"rescue": 1}
    assert all(ep.interventions[first:]) and ep.success


def test_make_sim_operator_checks_the_env() -> None:
    cfg = _env_cfg()
    robot = SimArm(cfg.robot)
    joint = _env_cfg()
    joint.action = replace(joint.action, control_mode="joint_delta")
    with pytest.raises(ConfigError, match="ee_delta"):
        make_sim_operator(SimOperatorConfig(), robot, joint)
    with pytest.raises(ConfigError, match="task"):
        make_sim_operator(SimOperatorConfig(), robot, _env_cfg("push_cube"))
    with pytest.raises(ConfigError, match="trust"):
        make_sim_operator(SimOperatorConfig(initial_trust=2.0), robot, cfg)


def test_timeout_stays_a_truncation_by_default() -> None:
    """Off by default: a time limit must bootstrap, not teach the critic a zero."""
    cfg = _env_cfg(episode_time_s=1.0)
    op_cfg = SimOperatorConfig(seed=0, rescue=False, budget_steps=0)
    episodes, _ = _run(cfg, op_cfg, _still_agent, range(1))
    ep = episodes[0]
    assert not any(bool(i["event_failure"]) for i in ep.infos)
    assert not ep.terminated


def test_a_watching_operator_never_takes_over_and_keeps_its_trust() -> None:
    """Evaluation: the simulated operator watches the policy alone, as a person would."""
    env, robot, operator = make_operated_env(
        _env_cfg(), SimOperatorConfig(seed=0, initial_trust=0.5, trust_rate=0.5)
    )
    agent = _random_agent(3)(robot)
    operator.watching = True
    for seed in range(2):
        env.reset(seed=seed)
        for t in range(10_000):
            _, _, terminated, truncated, info = env.step(agent(t))
            assert not info["is_intervention"]  # a random agent is taken over when trained
            if terminated or truncated:
                break
    operator.watching = False
    env.reset(seed=5)  # the watched episode ends: the trust must not have moved
    assert operator.trust == pytest.approx(0.5) and sum(operator.takeovers.values()) == 0
    env.step(agent(0))
    for t in range(1, 200):
        _, _, terminated, truncated, info = env.step(agent(t))
        if info["is_intervention"] or terminated or truncated:
            break
    assert info["is_intervention"]  # back in training, it takes over again
    env.close()
