"""The scripted experts and their human-like skill model, through the real env stack."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.config.operator import SimOperatorConfig
from hilrl.envs import make_env
from hilrl.teleop.sim_operator_expert import (
    ActionLayout,
    ExpertPlan,
    make_task_expert,
    plan_action,
)
from hilrl.teleop.sim_operator_skill import SkilledExpert


def _env_cfg(task: str, **action: Any) -> EnvConfig:
    cfg = EnvConfig(use_cameras=False)
    cfg.robot = replace(cfg.robot, task=task, cameras=())
    if action:
        cfg.action = replace(cfg.action, **action)
    cfg.validate()
    return cfg


def _run_expert(
    cfg: EnvConfig, seeds: range, hands_kwargs: dict[str, Any], warmup_random: int = 0
) -> list[bool]:
    """Episodes driven by the expert alone (optionally after random actions); success each."""
    env = make_env(cfg)
    layout = ActionLayout.from_env_config(cfg)
    hands = SkilledExpert(
        make_task_expert(cfg.robot.task, layout),
        layout,
        rng=np.random.default_rng(0),
        **hands_kwargs,
    )
    robot = env.unwrapped.robot  # type: ignore[attr-defined]
    rng = np.random.default_rng(1)
    results = []
    for seed in seeds:
        env.reset(seed=seed)
        hands.reset()
        info: dict[str, object] = {"success": False}
        for t in range(cfg.max_episode_steps or 200):
            hands.observe(robot.task_state())
            if t < warmup_random:
                action = rng.uniform(-1, 1, layout.dim).astype(np.float32)
            else:
                action = hands.act()
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        results.append(bool(info["success"]))
    env.close()
    return results


@pytest.mark.parametrize("task", ["pick_cube", "push_cube"])
def test_expert_solves_random_layouts_through_make_env(task: str) -> None:
    results = _run_expert(_env_cfg(task), range(6), {"noise_std": 0.05})
    assert all(results), results


def test_expert_recovers_from_whatever_random_actions_left_behind() -> None:
    """Reactive plans: gripper closed, tool low, cube nudged: the expert still finishes."""
    results = _run_expert(_env_cfg("pick_cube"), range(20, 24), {}, warmup_random=15)
    assert all(results), results


def test_expert_with_reaction_delay_and_sloppiness_still_solves_pick() -> None:
    hands = {"noise_std": 0.1, "delay_ticks": 1, "sloppiness": 1.0}
    results = _run_expert(_env_cfg("pick_cube"), range(40, 44), hands)
    assert all(results), results


def test_expert_aligns_yaw_when_the_env_has_rotation_actions() -> None:
    cfg = _env_cfg("pick_cube", ee_rotation=True)
    assert ActionLayout.from_env_config(cfg).dim == 7
    assert all(_run_expert(cfg, range(2), {}))


def test_layout_rejects_joint_control_and_pick_without_gripper() -> None:
    with pytest.raises(ConfigError, match="control_mode"):
        ActionLayout.from_env_config(_env_cfg("pick_cube", control_mode="joint_delta"))
    layout = ActionLayout.from_env_config(_env_cfg("pick_cube", use_gripper=False))
    assert layout.dim == 3
    with pytest.raises(ConfigError, match="use_gripper"):
        make_task_expert("pick_cube", layout)


def _state(ee: tuple[float, float, float]) -> dict[str, np.ndarray]:
    return {
        "ee_pos": np.array(ee),
        "cube_pos": np.array([0.17, 0.0, 0.015]),
        "cube_quat": np.array([1.0, 0.0, 0.0, 0.0]),
        "gripper_opening": np.array([0.07]),
        "cube_grasped": np.array([0.0]),
        "cube_lift": np.array([0.0]),
    }


def test_plan_action_moves_straight_at_the_subgoal_within_bounds() -> None:
    layout = ActionLayout(step_m=np.array([0.02, 0.01, 0.04]))
    goal = np.array([0.2, -0.05, 0.03])
    plan = ExpertPlan("approach", (goal,), 1.0)
    ee = np.array([0.14, 0.0, 0.12])
    action = plan_action(plan, {"ee_pos": ee}, layout)
    move = action[:3] * layout.step_m
    cos = float(move @ (goal - ee)) / (np.linalg.norm(move) * np.linalg.norm(goal - ee))
    assert cos == pytest.approx(1.0, abs=1e-5)  # straight line, though the steps differ per axis
    assert np.max(np.abs(action[:3])) == pytest.approx(1.0)
    assert action[3] == 1.0
    near = plan_action(plan, {"ee_pos": goal - 0.001}, layout)
    np.testing.assert_allclose(near[:3] * layout.step_m, 0.001, atol=1e-6)  # deadbeat when close


def test_pick_plan_phases_follow_the_state() -> None:
    expert = make_task_expert("pick_cube", ActionLayout(step_m=np.full(3, 0.02)))
    off = np.zeros(2)
    assert expert.plan(_state((0.14, 0.0, 0.12)), off).phase == "approach"
    assert expert.plan(_state((0.17, 0.0, 0.06)), off).phase == "descend"
    closing = expert.plan(_state((0.17, 0.0, 0.018)), off)
    assert closing.phase == "close" and closing.gripper == -1.0 and closing.hold
    held = {**_state((0.17, 0.0, 0.018)), "cube_grasped": np.array([1.0])}
    assert expert.plan(held, off).phase == "lift"
    half_shut = {**_state((0.17, 0.0, 0.05)), "gripper_opening": np.array([0.03])}
    waiting = expert.plan(half_shut, off)
    assert waiting.phase == "descend" and waiting.hold and waiting.gripper == 1.0


def test_skilled_expert_acts_on_the_state_seen_delay_ticks_ago() -> None:
    layout = ActionLayout(step_m=np.full(3, 0.02))
    expert = make_task_expert("pick_cube", layout)
    hands = SkilledExpert(expert, layout, delay_ticks=2)
    hands.reset()
    states = [_state((0.14, 0.0, 0.12)), _state((0.15, 0.0, 0.1)), _state((0.16, 0.0, 0.09))]
    for s in states:
        hands.observe(s)
    oldest = states[0]
    expected = plan_action(expert.plan(oldest, np.zeros(2)), oldest, layout, gain=1.0 / 3.0)
    np.testing.assert_allclose(hands.act(), expected)
    hands.observe(_state((0.17, 0.0, 0.08)))
    expected = plan_action(expert.plan(states[1], np.zeros(2)), states[1], layout, gain=1.0 / 3.0)
    np.testing.assert_allclose(hands.act(), expected)


def test_skilled_expert_noise_has_the_configured_spread() -> None:
    layout = ActionLayout(step_m=np.full(3, 0.02))
    hands = SkilledExpert(
        make_task_expert("pick_cube", layout),
        layout,
        noise_std=0.1,
        rng=np.random.default_rng(3),
    )
    hands.reset()
    state = {**_state((0.17, 0.0, 0.018)), "cube_grasped": np.array([1.0])}
    hands.observe(state)
    clean = plan_action(hands.plan(state), state, layout)
    noisy = np.stack([hands.act() for _ in range(2000)])
    spread = (noisy - clean)[:, :2].std(axis=0)  # x, y: not clipped at +-1
    np.testing.assert_allclose(spread, 0.1, rtol=0.1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("action_noise_std", -0.1),
        ("gain", 3.0),
        ("stall_ticks", 0),
        ("initial_trust", 1.5),
        ("corridor_m", 0.0),
        ("reaction_delay_ticks", -1),
    ],
)
def test_config_validation_names_the_bad_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        kwargs: dict[str, Any] = {field: value}
        replace(SimOperatorConfig(), **kwargs).validate()
    assert err.value.field == field
