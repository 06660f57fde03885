"""SAC sanity benchmark: learn gymnasium's Pendulum-v1 from state on the CPU.

    .venv/bin/python benchmarks/bench_pendulum.py [--out outputs/bench_pendulum] [--steps 20000]

Pass: mean return >= -200 over 10 deterministic evaluation episodes within 20,000 env
steps. The evaluation runs through the actor-side path (``SACPolicy.load_weights`` of
``SAC.policy_weights()``), and training samples through the replay buffer and mixer, so
the whole learning core is exercised. Saves the learning curve as a PNG and ends with
one JSON line of figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from hilrl.algorithms.sac import SAC
from hilrl.config.learner import EncoderConfig, ReplayConfig, SACConfig
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec, SACPolicy
from hilrl.types import STATE_KEY, Transition

PASS_RETURN = -200.0
ACTION_SCALE = 2.0  # Pendulum torques are in [-2, 2]; our actions in [-1, 1]


def as_obs(x: np.ndarray) -> dict[str, np.ndarray]:
    return {STATE_KEY: np.asarray(x, np.float32)}


def evaluate(policy: SACPolicy, episodes: int, seed: int) -> float:
    env = gym.make("Pendulum-v1")
    returns = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            action = policy.act(as_obs(obs), deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action * ACTION_SCALE)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def train(args: argparse.Namespace) -> dict[str, object]:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    spec = ObservationSpec(3)
    action = ActionSpec(1)
    sac_cfg = SACConfig(utd_ratio=args.utd, discount=0.99, hidden_dims=(256, 256))
    enc_cfg = EncoderConfig(state_latent_dim=64)
    sac = SAC(spec, action, sac_cfg, enc_cfg, device="cpu")
    policy = SACPolicy(spec, action, enc_cfg, sac_cfg)
    rcfg = ReplayConfig(
        capacity=args.steps, batch_size=args.batch, prefetch=0, augment=False, seed=args.seed
    )
    buffers = ReplayBuffers(spec, action.dim, rcfg)
    sampler = MixedSampler(buffers, rcfg, chunks=args.utd)

    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=args.seed)
    curve: list[tuple[int, float]] = []
    first_pass: int | None = None
    t0 = time.perf_counter()
    update_time = 0.0
    for step in range(1, args.steps + 1):
        if step <= args.random_steps:
            act = rng.uniform(-1, 1, 1).astype(np.float32)
        else:
            if step % args.sync_every == 0:  # the actor's weights lag like a real actor's
                policy.load_weights(sac.policy_weights(), step)
            act = policy.act(as_obs(obs), deterministic=False)
        nxt, reward, terminated, truncated, _ = env.step(act * ACTION_SCALE)
        buffers.add(Transition(as_obs(obs), act, float(reward), as_obs(nxt), terminated, truncated))
        obs = nxt
        if terminated or truncated:
            obs, _ = env.reset()
        if step >= args.random_steps:
            u0 = time.perf_counter()
            sac.update(sampler.next())
            update_time += time.perf_counter() - u0
        if step % args.eval_every == 0:
            policy.load_weights(sac.policy_weights(), step)
            ret = evaluate(policy, args.eval_episodes, seed=10_000)
            curve.append((step, ret))
            print(
                f"step {step:6d}  eval return {ret:9.1f}  temperature {sac.temperature:.4f}",
                flush=True,
            )
            if first_pass is None and ret >= PASS_RETURN:
                first_pass = step
                if not args.full:
                    break
    env.close()
    wall = time.perf_counter() - t0
    return {
        "curve": curve,
        "first_pass_step": first_pass,
        "wall_s": wall,
        "updates_per_s": sac.critic_steps / max(update_time, 1e-9),
        "critic_steps": sac.critic_steps,
    }


def plot(curve: list[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if curve:
        steps, rets = zip(*curve)
        ax.plot(steps, rets, marker="o", label="SAC (hilrl)")
    ax.axhline(PASS_RETURN, color="gray", linestyle="--", label=f"pass ({PASS_RETURN:.0f})")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("mean return, 10 deterministic episodes")
    ax.set_title("Pendulum-v1")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--out", default="outputs/bench_pendulum", help="folder for the learning-curve PNG"
    )
    ap.add_argument("--steps", type=int, default=20_000, help="env step budget")
    ap.add_argument(
        "--random-steps", type=int, default=1000, help="uniform random actions before learning"
    )
    ap.add_argument("--utd", type=int, default=1, help="critic updates per env step")
    ap.add_argument("--batch", type=int, default=256, help="batch size per critic update")
    ap.add_argument("--eval-every", type=int, default=1000, help="env steps between evaluations")
    ap.add_argument(
        "--eval-episodes", type=int, default=10, help="deterministic episodes per evaluation"
    )
    ap.add_argument(
        "--sync-every", type=int, default=10, help="env steps between actor weight syncs"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for these small nets)"
    )
    ap.add_argument("--full", action="store_true", help="keep training after the first pass")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = train(args)
    curve = result["curve"]
    assert isinstance(curve, list)
    plot(curve, out / "learning_curve.png")
    final = curve[-1][1] if curve else float("nan")
    best = max((r for _, r in curve), default=float("nan"))
    figures = {
        "passed": result["first_pass_step"] is not None,
        "first_pass_step": result["first_pass_step"],
        "final_eval_return": round(final, 1),
        "best_eval_return": round(best, 1),
        "critic_steps": result["critic_steps"],
        "updates_per_s": round(float(result["updates_per_s"]), 1),  # type: ignore[arg-type]
        "wall_s": round(float(result["wall_s"]), 1),  # type: ignore[arg-type]
        "curve_png": str(out / "learning_curve.png"),
    }
    for k, v in figures.items():
        print(f"{k:20s} {v}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
