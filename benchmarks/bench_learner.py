"""Learner throughput: SAC critic updates per second and replay bytes per transition.

    .venv/bin/python benchmarks/bench_learner.py [--seconds 10] [--threads 1] [--no-compile]

Cases, each at batch 256 and UTD 2 on the CPU:
  (a) state observations (18-D state, 4-D action with a gripper: grasp critic on);
  (b) the same plus two 128x128 cameras through the small CNN.
Each case runs in several learner configurations, side by side:
  reference  the default config (fp32, eager): what a run gets without tuning;
  bf16       ``sac.precision=bf16`` (autocast: matmuls on AMX where the CPU has it);
  optimised  ``sac.precision=bf16`` + ``sac.compile`` (each whole step, gradients, Adam
             and the target update included, is one compiled graph; its compile time
             is reported separately).
Each is timed on ready batches (the learner's own cost); reference and optimised also
end-to-end with the prefetching replay sampler (gather + DrQ shift in a thread).
Rates are critic steps per wall-clock second; the load average is printed because the
machine may be shared (the same run's ratios are the meaningful figures).
Replay memory: bytes held per transition by a full buffer of 100-step episodes with two
128x128 cameras, against the uint8 size of one observation.

Baseline: LeRobot 0.4.4 HIL-SERL, measured on this machine class with two 128x128
cameras at batch 256 / UTD 2: 0.064 critic updates/s (docs/REFERENCE). Ends with one
JSON line of all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from hilrl.algorithms.sac import SAC
from hilrl.config.learner import EncoderConfig, ReplayConfig, SACConfig
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.data.replay import ReplayBuffer
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec

LEROBOT_IMAGE_UPDATES_PER_S = 0.064
STATE_DIM = 18
ACTION = ActionSpec(4, has_gripper=True)
CAMERAS = ("observation.images.front", "observation.images.wrist")


def spec(images: bool) -> ObservationSpec:
    shapes = tuple((k, (128, 128, 3)) for k in CAMERAS) if images else ()
    return ObservationSpec(STATE_DIM, shapes)


def fill(
    online: ReplayBuffer,
    demos: ReplayBuffer,
    s: ObservationSpec,
    steps: int,
    rng: np.random.Generator,
) -> None:
    """Episodes of 100 steps (every third one terminates, the others time out) in chunks of
    50 like an actor sends them; the first quarter go to the demo buffer."""
    frames = {
        k: rng.integers(0, 256, (steps + 1, *shape), dtype=np.uint8) for k, shape in s.image_shapes
    }
    state = rng.normal(size=(steps + 1, s.state_dim)).astype(np.float32)
    for start in range(0, steps, 50):
        rows = np.arange(start, min(start + 50, steps))
        obs: dict[str, np.ndarray] = {k: f[rows] for k, f in frames.items()}
        nxt: dict[str, np.ndarray] = {k: f[rows + 1] for k, f in frames.items()}
        obs["observation.state"], nxt["observation.state"] = state[rows], state[rows + 1]
        done = (rows % 100) == 99
        acts = rng.uniform(-1, 1, (len(rows), ACTION.dim)).astype(np.float32)
        rew = rng.normal(size=len(rows)).astype(np.float32)
        target = demos if start < steps // 4 else online
        target.add_batch(
            obs, acts, rew, nxt, done & (rows % 300 == 299), done & (rows % 300 != 299)
        )


def time_updates(sac: SAC, batches: list, seconds: float) -> float:  # type: ignore[type-arg]
    """Critic updates per second of ``sac.update`` on ready batches."""
    sac.update(batches[1 % len(batches)])  # warm-up (allocator, fused kernels)
    steps0, t0, i = sac.critic_steps, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 2:
        sac.update(batches[i % len(batches)])
        i += 1
    return (sac.critic_steps - steps0) / (time.perf_counter() - t0)


def time_end_to_end(sac: SAC, sampler: MixedSampler, seconds: float) -> float:
    sac.update(sampler.next())
    steps0, t0, i = sac.critic_steps, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 2:
        sac.update(sampler.next())
        i += 1
    rate = (sac.critic_steps - steps0) / (time.perf_counter() - t0)
    sampler.close()
    return rate


VARIANTS: dict[str, dict[str, object]] = {
    "reference": {},
    "bf16": {"precision": "bf16"},
    "optimised": {"precision": "bf16", "compile": True},
}


def bench_case(
    images: bool, seconds: float, variant: str, with_sampler: bool, prefetch: int = 2
) -> dict[str, float]:
    torch.manual_seed(0)
    s = spec(images)
    sac_cfg = SACConfig(utd_ratio=2, **VARIANTS[variant])  # type: ignore[arg-type]
    sac = SAC(s, ACTION, sac_cfg, EncoderConfig(type="small_cnn"), device="cpu")
    rcfg = ReplayConfig(
        capacity=4000,
        demo_capacity=2000,
        intervention_capacity=100,
        batch_size=256,
        prefetch=prefetch,
    )
    bufs = ReplayBuffers(s, ACTION.dim, rcfg)
    fill(bufs.online, bufs.demos, s, 3000, np.random.default_rng(0))
    sampler = MixedSampler(bufs, rcfg, device="cpu", chunks=sac_cfg.utd_ratio)
    batches = [sampler.sample() for _ in range(2)]
    tag = ("image" if images else "state") + f"_{variant}"
    t0 = time.perf_counter()
    for _ in range(3):
        sampler.sample()
    sample_ms = (time.perf_counter() - t0) / 3 * 1000
    t0 = time.perf_counter()
    sac.update(batches[0])  # the first call compiles when sac.compile is on
    out = {f"{tag}_first_update_s": time.perf_counter() - t0}
    out[f"{tag}_updates_per_s"] = time_updates(sac, batches, seconds)
    if with_sampler:
        out[f"{tag}_updates_per_s_with_sampler"] = time_end_to_end(sac, sampler, seconds)
        out[f"{tag}_sample_ms_per_call"] = sample_ms
    else:
        sampler.close()
    return out


def bytes_per_transition() -> dict[str, float]:
    s = spec(True)
    buf = ReplayBuffer(s, ACTION.dim, capacity=3000)
    fill(buf, buf, s, 6000, np.random.default_rng(1))  # wraps the ring twice
    per = buf.nbytes() / buf.capacity
    obs_bytes = s.image_bytes()
    return {
        "replay_bytes_per_transition": per,
        "observation_uint8_bytes": float(obs_bytes),
        "replay_bytes_ratio": per / obs_bytes,
        "lerobot_bytes_per_transition_on_wire": 400_000.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timing window per measurement")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (1: on a shared 2-core box a 2nd OpenMP thread made updates ~40x slower)",
    )
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the compiled (optimised) variant"
    )
    ap.add_argument(
        "--prefetch",
        type=int,
        default=2,
        help="replay.prefetch of the end-to-end runs (0: sample on the training thread; on 2 "
        "cores that avoids the sampler's and the update's threads contending)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    figures: dict[str, float] = {
        "torch_threads": float(torch.get_num_threads()),
        "load_average_1min_start": os.getloadavg()[0],
    }
    variants = ["reference", "bf16"] + ([] if args.no_compile else ["optimised"])
    for images in (False, True):
        for variant in variants:
            figures.update(
                bench_case(images, args.seconds, variant, variant != "bf16", args.prefetch)
            )
        case = "image" if images else "state"
        for variant in variants[1:]:
            figures[f"{case}_{variant}_speedup_vs_reference"] = (
                figures[f"{case}_{variant}_updates_per_s"]
                / figures[f"{case}_reference_updates_per_s"]
            )
    best = "optimised" if "optimised" in variants else "bf16"
    figures["state_updates_per_s"] = figures[f"state_{best}_updates_per_s"]
    figures["image_updates_per_s"] = figures[f"image_{best}_updates_per_s"]
    figures["image_speedup_vs_lerobot"] = (
        figures["image_updates_per_s"] / LEROBOT_IMAGE_UPDATES_PER_S
    )
    figures.update(bytes_per_transition())
    figures["load_average_1min_end"] = os.getloadavg()[0]
    targets = {
        "state_updates_per_s": 350.0,
        "image_updates_per_s": 0.64,
    }
    for k, v in figures.items():
        mark = ""
        if k in targets:
            mark = "  (target >= {}: {})".format(targets[k], "ok" if v >= targets[k] else "MISSED")
        if k == "replay_bytes_ratio":
            mark = "  (target <= 1.1: {})".format("ok" if v <= 1.1 else "MISSED")
        print(f"{k:40s} {v:12.3f}{mark}")
    print(json.dumps({k: round(v, 4) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
