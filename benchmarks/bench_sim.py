"""Robot-level speed of the MuJoCo desk arm, pinned to one CPU core.

One control tick = send joint targets + advance(0.1 s) + read joint positions (10 Hz).
Measured: ticks/s state-only (arm moving, cube resting; and while holding the cube, the
contact-heaviest phase), ticks/s when also rendering two 128x128 cameras, ms per rendered
frame, state-only ticks/s at coarser physics steps, and raw ``mj_step`` as the baseline the
robot API overhead is reported against. Ends with one JSON line.

    .venv/bin/python benchmarks/bench_sim.py [--ticks 2000] [--all-cores]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from hilrl.config.robot import RobotConfig
from hilrl.kinematics import SIM_ARM, KinematicChain
from hilrl.robots.sim import SimArm
from hilrl.robots.sim.scripted import pick_waypoints, run_waypoints

DT = 0.1


def _targets(arm: SimArm, n: int, seed: int) -> np.ndarray:
    """A smooth random walk of joint targets around home, clipped to the limits."""
    rng = np.random.default_rng(seed)
    lower, upper = arm.joint_limits
    steps = rng.normal(0.0, 0.05, size=(n, len(lower)))
    steps[:, -1] = rng.choice([-0.07, 0.07], size=n)
    walk = arm.home_joint_positions + np.cumsum(steps, axis=0) * 0.3
    return np.clip(walk, lower, upper)


def ticks_per_second(arm: SimArm, ticks: int, cameras: bool) -> float:
    targets = _targets(arm, ticks, seed=0)
    arm.reset_task(0)
    start = time.perf_counter()
    for k in range(ticks):
        if k % 100 == 0 and k:
            arm.reset_task(k)
        arm.send_joint_targets(targets[k])
        arm.advance(DT)
        arm.read_joint_positions()
        if cameras:
            arm.read_cameras()
    return ticks / (time.perf_counter() - start)


def grasping_ticks_per_second(arm: SimArm, ticks: int) -> float:
    """Ticks/s while the cube is held (finger, cube contacts active), with small arm moves."""
    chain = KinematicChain(SIM_ARM)
    arm.reset_task(1)
    run_waypoints(arm, chain, pick_waypoints(arm.task_state()))
    held = arm.read_joint_positions()
    held[-1] = 0.0
    wiggle = 0.03 * np.sin(np.arange(ticks) * 0.3)
    start = time.perf_counter()
    for k in range(ticks):
        target = held.copy()
        target[0] += wiggle[k]
        arm.send_joint_targets(target)
        arm.advance(DT)
        arm.read_joint_positions()
    rate = ticks / (time.perf_counter() - start)
    if not arm.task_success():
        raise RuntimeError("the cube slipped out of the gripper during the benchmark")
    return rate


def raw_physics_ticks_per_second(arm: SimArm, ticks: int) -> float:
    """Baseline: mj_step with the same number of substeps, no robot API around it."""
    mujoco, model, data = arm.mujoco, arm.model, arm.data
    nstep = round(DT / model.opt.timestep)
    arm.reset_task(0)
    start = time.perf_counter()
    for _ in range(ticks):
        mujoco.mj_step(model, data, nstep=nstep)
    return ticks / (time.perf_counter() - start)


def ms_per_frame(arm: SimArm, calls: int) -> float:
    arm.read_cameras()  # warm up the GL context
    start = time.perf_counter()
    for _ in range(calls):
        arm.read_cameras()
    return (time.perf_counter() - start) * 1000.0 / (calls * len(arm.camera_names))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ticks", type=int, default=2000, help="control ticks per state-only measurement"
    )
    parser.add_argument(
        "--all-cores", action="store_true", help="do not pin the process to one core"
    )
    args = parser.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    ticks = args.ticks
    results: dict[str, float] = {}

    state_arm = SimArm(RobotConfig(cameras=()))
    state_arm.connect()
    results["raw_physics_ticks_per_s"] = raw_physics_ticks_per_second(state_arm, ticks)
    results["ticks_per_s_state"] = ticks_per_second(state_arm, ticks, cameras=False)
    results["api_overhead_ratio"] = (
        results["raw_physics_ticks_per_s"] / results["ticks_per_s_state"]
    )
    results["ticks_per_s_state_grasping"] = grasping_ticks_per_second(state_arm, ticks)
    print(
        f"physics_dt 0.002 (50 substeps/tick): raw mj_step {results['raw_physics_ticks_per_s']:.0f} ticks/s"
    )
    print(
        f"  state-only {results['ticks_per_s_state']:.0f} ticks/s "
        f"(robot API costs x{results['api_overhead_ratio']:.2f} raw physics)"
    )
    print(
        f"  state-only while holding the cube {results['ticks_per_s_state_grasping']:.0f} ticks/s"
    )

    for dt in (0.004, 0.005):
        arm = SimArm(RobotConfig(cameras=(), physics_dt=dt))
        arm.connect()
        key = f"ticks_per_s_state_dt{dt}"
        results[key] = ticks_per_second(arm, ticks, cameras=False)
        results[f"ticks_per_s_state_grasping_dt{dt}"] = grasping_ticks_per_second(arm, ticks)
        print(
            f"physics_dt {dt} ({round(DT / dt)} substeps/tick): state-only {results[key]:.0f} ticks/s, "
            f"holding the cube {results[f'ticks_per_s_state_grasping_dt{dt}']:.0f} ticks/s"
        )

    cam_arm = SimArm(RobotConfig(cameras=("front", "wrist"), camera_height=128, camera_width=128))
    cam_arm.connect()
    results["ms_per_frame_128"] = ms_per_frame(cam_arm, max(ticks // 10, 50))
    results["ticks_per_s_cameras"] = ticks_per_second(cam_arm, max(ticks // 4, 100), cameras=True)
    print(
        f"two 128x128 cameras ({os.environ.get('MUJOCO_GL', '?')}): {results['ms_per_frame_128']:.2f} ms/frame, "
        f"{results['ticks_per_s_cameras']:.0f} ticks/s with both cameras"
    )
    print(json.dumps({k: round(v, 3) for k, v in results.items()}))


if __name__ == "__main__":
    main()
