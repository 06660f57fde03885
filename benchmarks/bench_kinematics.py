"""Speed of hilrl.kinematics: FK, batched FK, Jacobian and IK on the built-in arms.

Baselines measured in the same run: a naive FK that builds each joint's 4x4 transform from the
spec on every call (what a straightforward URDF walker does), and a loop of single FK calls for
the batched version. Run: ``.venv/bin/python benchmarks/bench_kinematics.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np

from hilrl.kinematics import KinematicChain, get_chain_spec
from hilrl.kinematics.spec import ChainSpec
from hilrl.kinematics.transforms import make_pose, rotation_about_axis


def naive_fk(spec: ChainSpec, q: np.ndarray) -> np.ndarray:
    """Reference FK: rebuild every transform from the spec on each call."""
    T = np.eye(4)
    for joint, angle in zip(spec.joints, q):
        R = np.eye(4)
        R[:3, :3] = rotation_about_axis(joint.axis, float(angle))
        T = T @ make_pose(joint.origin_xyz, joint.origin_rpy) @ R
    return T @ make_pose(spec.tool_xyz, spec.tool_rpy)


def per_call_us(fn: Callable[[], object], min_seconds: float = 0.5) -> float:
    """Mean microseconds per call over at least ``min_seconds`` (after a warm-up)."""
    for _ in range(10):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        n += 100
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / n * 1e6


def main() -> None:
    figures: dict[str, float] = {}
    chain = KinematicChain(get_chain_spec("so100"))
    rng = np.random.default_rng(0)
    q = rng.uniform(chain.lower, chain.upper)

    fk_us = per_call_us(lambda: chain.fk(q))
    naive_us = per_call_us(lambda: naive_fk(chain.spec, q))
    jac_us = per_call_us(lambda: chain.jacobian(q))
    figures["fk_us"] = fk_us
    figures["naive_fk_us"] = naive_us
    figures["fk_speedup_vs_naive"] = naive_us / fk_us
    figures["jacobian_us"] = jac_us

    qs = rng.uniform(chain.lower, chain.upper, size=(1000, chain.dof))
    batch_us = per_call_us(lambda: chain.fk_batch(qs)) / len(qs)
    figures["fk_batch_us_per_config_n1000"] = batch_us
    figures["fk_batch_speedup_vs_fk_loop"] = fk_us / batch_us

    # IK, control-loop case: a small step from the current configuration.
    starts = rng.uniform(chain.lower + 0.1, chain.upper - 0.1, size=(300, chain.dof))
    targets = [chain.fk(s + rng.normal(0.0, 0.02, chain.dof)) for s in starts]
    t0 = time.perf_counter()
    tracked = [chain.ik(T, s) for T, s in zip(targets, starts)]
    figures["ik_tracking_ms"] = (time.perf_counter() - t0) / len(starts) * 1e3
    figures["ik_tracking_success"] = float(np.mean([r.success for r in tracked]))
    figures["ik_tracking_mean_iters"] = float(np.mean([r.iterations for r in tracked]))

    # IK, global case: random target pose, random start (restarts kick in).
    for name in ("so100", "koch"):
        ch = KinematicChain(get_chain_spec(name))
        truths = rng.uniform(ch.lower, ch.upper, size=(200, ch.dof))
        starts = rng.uniform(ch.lower, ch.upper, size=(200, ch.dof))
        t0 = time.perf_counter()
        results = [ch.ik(ch.fk(t), s) for t, s in zip(truths, starts)]
        figures[f"ik_random_pose_ms_{name}"] = (time.perf_counter() - t0) / len(truths) * 1e3
        figures[f"ik_random_pose_success_{name}"] = float(np.mean([r.success for r in results]))

    for key, value in figures.items():
        print(f"{key:34s} {value:10.3f}")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
