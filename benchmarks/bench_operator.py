"""The simulated operator on randomised sim episodes (state-only env, no cameras).

Figures, per task (pick_cube, push_cube), all through ``make_env`` with the default
EnvConfig (20 s episodes at 10 Hz, end-effector deltas) and the default SimOperatorConfig:

(a) the scripted expert alone (the operator in ``drive_always`` mode, with its default
    noise): success rate (target >= 95% on pick_cube) and mean episode length;
(b) a uniformly random policy with the operator watching: success rate (target >= 80% on
    pick_cube), intervention rate (intervention steps / steps), takeovers by reason, and
    the operator's trust at the end;
(c) the expert as the agent with the operator watching: intervention rate (should be 0:
    a good agent is left alone);
(d) baseline in the same run: the random policy without the operator (its success rate).

    .venv/bin/python benchmarks/bench_operator.py [--episodes 200] [--push-episodes 100]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from hilrl.config.env import EnvConfig
from hilrl.config.operator import SimOperatorConfig
from hilrl.envs import make_env
from hilrl.runtime.sim_operator_env import make_operated_env
from hilrl.teleop.sim_operator_expert import ActionLayout, make_task_expert
from hilrl.teleop.sim_operator_skill import SkilledExpert


def _env_cfg(task: str) -> EnvConfig:
    cfg = EnvConfig(use_cameras=False)
    cfg.robot = replace(cfg.robot, task=task, cameras=())
    cfg.validate()
    return cfg


def _episodes(env, act: Callable[[int], np.ndarray], n: int, seed0: int) -> dict[str, float]:
    """Run ``n`` episodes (seeds seed0..); success rate, intervention rate, mean length."""
    successes = steps = interventions = 0
    for k in range(n):
        env.reset(seed=seed0 + k)
        t = 0
        while True:
            _, _, terminated, truncated, info = env.step(act(t))
            t += 1
            interventions += int(info["is_intervention"])
            if terminated or truncated:
                break
        steps += t
        successes += int(bool(info["success"]))
    return {
        "success": successes / n,
        "intervention_rate": interventions / max(steps, 1),
        "mean_length": steps / n,
    }


def _random_actor(dim: int, seed: int) -> Callable[[int], np.ndarray]:
    rng = np.random.default_rng(seed)
    return lambda t: rng.uniform(-1.0, 1.0, dim).astype(np.float32)


def bench_task(task: str, n: int, seed0: int) -> dict[str, float]:
    cfg = _env_cfg(task)
    dim = ActionLayout.from_env_config(cfg).dim
    out: dict[str, float] = {}

    start = time.perf_counter()
    env, _, _ = make_operated_env(cfg, SimOperatorConfig(seed=1, drive_always=True))
    expert = _episodes(env, _random_actor(dim, 0), n, seed0)  # the operator drives every tick
    env.close()
    out[f"{task}_expert_success"] = expert["success"]
    out[f"{task}_expert_mean_length"] = expert["mean_length"]

    env, _, operator = make_operated_env(cfg, SimOperatorConfig(seed=2))
    helped = _episodes(env, _random_actor(dim, 1), n, seed0)
    operator.reset()  # let it learn from the last episode
    env.close()
    out[f"{task}_random_with_operator_success"] = helped["success"]
    out[f"{task}_random_with_operator_intervention_rate"] = helped["intervention_rate"]
    out[f"{task}_random_with_operator_mean_length"] = helped["mean_length"]
    out[f"{task}_random_with_operator_final_trust"] = operator.trust
    reasons: Counter[str] = operator.takeovers
    for reason, count in sorted(reasons.items()):
        out[f"{task}_takeovers_{reason}_per_episode"] = count / n

    env, robot, operator = make_operated_env(cfg, SimOperatorConfig(seed=3))
    layout = ActionLayout.from_env_config(cfg)
    hands = SkilledExpert(make_task_expert(task, layout), layout, rng=np.random.default_rng(4))

    def expert_agent(t: int) -> np.ndarray:
        if t == 0:
            hands.reset()
        hands.observe(robot.task_state())
        return hands.act()

    agent = _episodes(env, expert_agent, min(n, 50), seed0)
    operator.reset()
    env.close()
    out[f"{task}_expert_agent_intervention_rate"] = agent["intervention_rate"]
    out[f"{task}_expert_agent_success"] = agent["success"]
    out[f"{task}_expert_agent_final_trust"] = operator.trust

    env = make_env(cfg)
    alone = _episodes(env, _random_actor(dim, 5), min(n, 30), seed0)
    env.close()
    out[f"{task}_random_alone_success"] = alone["success"]
    out[f"{task}_seconds"] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="pick_cube episodes per run")
    parser.add_argument("--push-episodes", type=int, default=100, help="push_cube episodes")
    parser.add_argument("--seed", type=int, default=10_000, help="first env seed")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    for task, n in (("pick_cube", args.episodes), ("push_cube", args.push_episodes)):
        if n <= 0:
            continue
        result = bench_task(task, n, args.seed)
        print(f"--- {task}: {n} randomised episodes")
        for key, value in result.items():
            print(f"  {key:55s} {value:8.3f}")
        figures.update(result)
    if "pick_cube_expert_success" in figures:
        ok_expert = figures["pick_cube_expert_success"] >= 0.95
        ok_helped = figures["pick_cube_random_with_operator_success"] >= 0.80
        print(f"target expert >= 95%: {'met' if ok_expert else 'MISSED'}")
        print(f"target random + operator >= 80%: {'met' if ok_helped else 'MISSED'}")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
