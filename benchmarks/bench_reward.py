"""Reward classifier on pick_cube: label sim frames, train on ~200 / ~1,000, score held-out frames.

Steps, all on the CPU (torch on one thread: the machine is shared):

1. ``hilrl label-sim``'s labeller records a pool of episodes (cameras front + wrist at
   ``--size`` x ``--size``, 128 by default) into a LeRobot dataset (``--storage``: 'video'
   as recorded datasets usually are, so training sees decoded frames);
2. from the pool, ``--positives`` success and ``--negatives`` failure frames are drawn and
   split by episode (80 / 20) into training and validation (early stopping, threshold);
3. the small-CNN classifier trains (``train_on_frames``: balanced sampler, early stopping,
   threshold calibrated for F1 on validation);
4. ``--heldout`` frames of new episodes (other seeds), never written to disk, are scored
   one step at a time through ``load_reward_fn`` (the env hook) against the sim's ground
   truth: accuracy (target >= 97%), precision, recall, F1, ROC-AUC, and the hook's latency
   per step (target <= 5 ms). Baseline in the same run: always predicting the majority
   class of the held-out frames.

ROC and confusion PNGs (validation and held-out) are written under ``--out``.

    .venv/bin/python benchmarks/bench_reward.py [--size 128] [--storage video]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hilrl.config.loader import load_config
from hilrl.config.reward import RewardModelConfig, RewardTrainConfig
from hilrl.config.root import RootConfig
from hilrl.rewards import metrics as M
from hilrl.rewards.data import load_labelled_frames, split_by_episode
from hilrl.rewards.hook import load_reward_fn
from hilrl.rewards.label import MemorySink, SimLabeller, label_sim_dataset, open_label_env
from hilrl.rewards.plots import confusion_figure, roc_figure, save_figure
from hilrl.rewards.train import train_on_frames
from hilrl.types import IMAGE_PREFIX


def _root_cfg(args: argparse.Namespace, dataset: Path, episodes: int, seed: int) -> RootConfig:
    return load_config(
        RootConfig,
        None,
        [
            "--env.robot.task=pick_cube",
            f"--env.robot.camera_height={args.size}",
            f"--env.robot.camera_width={args.size}",
            f"--dataset.root={dataset}",
            f"--dataset.image_storage={args.storage}",
            f"--reward.label.num_episodes={episodes}",
            f"--reward.label.seed={seed}",
            f"--teleop.sim.seed={seed}",
        ],
    )


def _heldout(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """``--heldout`` raw frames of fresh episodes (seeds far from the pool's), in memory."""
    cfg = _root_cfg(args, Path("unused"), 1, 100_000)
    env, robot, expert = open_label_env(cfg)
    sink = MemorySink()
    labeller = SimLabeller(env, robot, expert, replace(cfg.reward.label, seed=100_000))
    try:
        i = 0
        expert.start()
        while len(sink.frames) < args.heldout:
            labeller.episode(sink, 100_000 + i, "heldout")
            i += 1
    finally:
        env.close()
    data = sink.arrays()
    return {k: v[: args.heldout] for k, v in data.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="camera height = width")
    parser.add_argument("--storage", choices=("video", "image"), default="video")
    parser.add_argument("--pool-episodes", type=int, default=90)
    parser.add_argument("--positives", type=int, default=200)
    parser.add_argument("--negatives", type=int, default=1000)
    parser.add_argument("--heldout", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="outputs/bench_reward")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    # 1. label the pool into a LeRobot dataset
    t0 = time.perf_counter()
    pool_cfg = _root_cfg(args, out / "pool", args.pool_episodes, 0)
    root, stats = label_sim_dataset(pool_cfg, progress=False)
    label_s = time.perf_counter() - t0
    print(
        f"label-sim: {stats.episodes} episodes {dict(stats.kinds)}, {stats.frames} frames "
        f"({stats.successes} success) at {args.size}x{args.size}, {args.storage}: {label_s:.1f} s "
        f"({1000 * label_s / stats.frames:.2f} ms/frame)"
    )

    # 2. draw ~200 / ~1,000 frames, split by episode
    model_cfg = RewardModelConfig()
    train_cfg = RewardTrainConfig(epochs=args.epochs, device="cpu", seed=0)
    frames = load_labelled_frames(root, model_cfg)
    rng = np.random.default_rng(0)
    pos = np.flatnonzero(frames.labels == 1)
    neg = np.flatnonzero(frames.labels == 0)
    if pos.size < args.positives or neg.size < args.negatives:
        raise SystemExit(
            f"pool too small: {pos.size} success / {neg.size} failure frames; raise --pool-episodes"
        )
    chosen = np.sort(
        np.r_[
            rng.choice(pos, args.positives, replace=False),
            rng.choice(neg, args.negatives, replace=False),
        ]
    )
    used = frames.subset(chosen)
    tr, va = split_by_episode(used, 1, 0.2, 0)
    train, val = used.subset(tr), used.subset(va)
    print(
        f"train: {int(train.labels.sum())} success / {int((train.labels == 0).sum())} failure; "
        f"validation: {int(val.labels.sum())} / {int((val.labels == 0).sum())}"
    )

    # 3. train
    t0 = time.perf_counter()
    outcome = train_on_frames(
        train, val, model_cfg, train_cfg, out / "classifier", dataset=str(root), progress=False
    )
    train_s = time.perf_counter() - t0
    fit = outcome.fit
    print(
        f"trained {len(fit.history)} epochs (best {fit.best_epoch}, early stop "
        f"{fit.stopped_early}) in {train_s:.1f} s; threshold {outcome.meta.threshold:.3f}; "
        f"validation accuracy {outcome.val_metrics['accuracy']:.4f}, "
        f"ROC-AUC {outcome.val_metrics['roc_auc']:.4f}"
    )

    # 4. held-out frames through the env hook, one step at a time
    held = _heldout(args)
    y = held["next.reward"].astype(np.int64)
    fn = load_reward_fn(out / "classifier", "cpu")
    obs_keys = [k for k in held if k.startswith(IMAGE_PREFIX) or k == "observation.state"]
    for i in range(20):  # warm-up
        fn({k: held[k][i] for k in obs_keys}, {})
    scores = np.zeros(len(y))
    pred = np.zeros(len(y), dtype=bool)
    times = np.zeros(len(y))
    for i in range(len(y)):
        obs = {k: held[k][i] for k in obs_keys}
        t = time.perf_counter()
        _, success = fn(obs, {})
        times[i] = time.perf_counter() - t
        scores[i] = fn.last_score
        pred[i] = success
    m = M.binary_metrics(y, scores, fn.threshold)
    assert np.array_equal(pred, scores >= fn.threshold)
    majority = max(y.mean(), 1 - y.mean())
    ms = 1000 * times
    save_figure(roc_figure(y, scores, fn.threshold, "held-out ROC"), out / "heldout_roc.png")
    cm = M.confusion_matrix(y, pred.astype(np.int64), 2)
    save_figure(
        confusion_figure(cm, ("failure", "success"), f"held-out, threshold {fn.threshold:.3f}"),
        out / "heldout_confusion.png",
    )
    print(f"held-out: {len(y)} frames ({int(y.sum())} success) from new episodes, raw sim frames")
    print(
        f"  accuracy {m['accuracy']:.4f} (target >= 0.97; majority-class baseline "
        f"{majority:.4f}, error ratio {(1 - m['accuracy']) / max(1 - majority, 1e-9):.3f})"
    )
    print(
        f"  precision {m['precision']:.4f}, recall {m['recall']:.4f}, F1 {m['f1']:.4f}, "
        f"ROC-AUC {m['roc_auc']:.4f}; tp {int(m['tp'])} fp {int(m['fp'])} tn {int(m['tn'])} "
        f"fn {int(m['fn'])}"
    )
    print(
        f"  hook latency per step: median {np.median(ms):.3f} ms, p95 "
        f"{np.percentile(ms, 95):.3f} ms (target <= 5 ms; CPU, 1 torch thread)"
    )
    print(
        f"  plots: {out / 'classifier'}/{{roc,confusion}}.png, {out}/heldout_{{roc,confusion}}.png"
    )
    result = {
        "image_size": args.size,
        "storage": args.storage,
        "pool_frames": stats.frames,
        "train_success_frames": int(train.labels.sum()),
        "train_failure_frames": int((train.labels == 0).sum()),
        "val_frames": len(val),
        "epochs_run": len(fit.history),
        "train_s": round(train_s, 2),
        "label_ms_per_frame": round(1000 * label_s / stats.frames, 3),
        "threshold": round(outcome.meta.threshold, 4),
        "val_accuracy": round(outcome.val_metrics["accuracy"], 4),
        "heldout_frames": len(y),
        "heldout_success_frames": int(y.sum()),
        "heldout_accuracy": round(m["accuracy"], 4),
        "heldout_precision": round(m["precision"], 4),
        "heldout_recall": round(m["recall"], 4),
        "heldout_f1": round(m["f1"], 4),
        "heldout_roc_auc": round(m["roc_auc"], 4),
        "majority_baseline_accuracy": round(float(majority), 4),
        "hook_ms_median": round(float(np.median(ms)), 3),
        "hook_ms_p95": round(float(np.percentile(ms, 95)), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
