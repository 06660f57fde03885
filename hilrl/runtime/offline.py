"""``hilrl train-offline``: SAC updates on a recorded dataset only, then a checkpoint.

Offline training is "fill the demo buffer, run updates with ``online_ratio=0``": the
dataset's transitions go into the demo buffer (checked against the env's observation
and action layout, which the networks are built for), the sampler draws every row from
it, and the result is an ordinary checkpoint in ``<run.output_dir>/checkpoints``. An
actor, ``hilrl eval``, or ``hilrl train --resume`` (online fine-tuning, keeping the
demo buffer when it was saved) can start from it.

As in the online learner, only real updates count (``--updates`` is the number of update
calls; one whose batches were all skipped or whose values came out non-finite is
counted in ``skipped_batches`` / ``nonfinite_losses`` instead), after
``train.max_consecutive_skips`` such calls in a row the run stops with
:class:`~hilrl.runtime.learner.LearnerFailed`, and a checkpoint is never written with
non-finite networks.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

import torch
from tqdm import tqdm

from hilrl.config.loader import ConfigError, save_config
from hilrl.config.root import RootConfig
from hilrl.devices import resolve_device
from hilrl.runtime.checkpoint import latest_checkpoint, save_checkpoint
from hilrl.runtime.demos import is_dataset
from hilrl.runtime.learner import (
    Counters,
    LearnerFailed,
    MetricsAverage,
    json_safe,
    nonfinite_tensors,
)
from hilrl.runtime.run_dir import JsonlWriter, prepare_run
from hilrl.runtime.specs import specs_from_config
from hilrl.runtime.trainers import make_trainer


@dataclass
class OfflineResult:
    """What an offline run did."""

    updates: int
    demo_episodes: int
    demo_transitions: int
    checkpoint: Path
    wall_s: float
    interrupted: bool = False
    """Ctrl-C stopped the updates early (the checkpoint holds what was done)."""


def train_offline(
    cfg: RootConfig,
    dataset: str | Path,
    updates: int,
    *,
    progress: bool = True,
    out: TextIO | None = None,
) -> OfflineResult:
    """Load ``dataset`` into the demo buffer, run ``updates`` updates, checkpoint."""

    out = out if out is not None else sys.stderr
    if updates < 1:
        raise ConfigError("--updates", updates, "must be >= 1")
    path = Path(dataset).expanduser()
    if not is_dataset(path):
        raise ConfigError("--dataset", str(path), "no LeRobot dataset there (meta/info.json)")
    run = prepare_run(cfg.run.output_dir, resume=False)
    save_config(cfg, run.config)
    if cfg.train.learner_torch_threads:
        torch.set_num_threads(cfg.train.learner_torch_threads)
    torch.manual_seed(cfg.run.seed)
    obs_spec, act_spec = specs_from_config(cfg)
    device = resolve_device(cfg.learning.device)
    # every batch from the dataset: no online data exists
    replay_cfg = replace(cfg.learning.replay, online_ratio=0.0)
    trainer = make_trainer(
        replace(cfg, learning=replace(cfg.learning, replay=replay_cfg)), obs_spec, act_spec, device
    )
    episodes, count = trainer.load_demos(str(path))
    if count == 0:
        raise ConfigError("--dataset", str(path), "the dataset holds no transitions")
    out.write(f"train-offline: {episodes} episodes, {count} transitions from {path}\n")
    counters = Counters(demo_transitions=count)
    ck = cfg.learning.checkpoint
    started = time.monotonic()
    next_log = started + cfg.run.log_every_s
    last_log, last_updates = started, 0
    metrics = MetricsAverage()

    def checkpoint() -> Path | None:
        bad = nonfinite_tensors(trainer.algorithm.state_dict())
        if bad:
            out.write(
                f"train-offline: checkpoint not saved: non-finite values in {len(bad)} tensors "
                f"({', '.join(bad[:3])})\n"
            )
            return None
        data = asdict(counters)
        data["elapsed_s"] = time.monotonic() - started
        data["offline_dataset"] = str(path)
        return save_checkpoint(
            run.checkpoints,
            counters.updates,
            trainer.algorithm,
            buffers=trainer.replay if ck.save_buffers else None,
            sampler=trainer.sampler,
            config=cfg,
            counters=data,
            keep_last=ck.keep_last,
        )

    with JsonlWriter(run.learner_jsonl) as log:

        def log_line(now: float) -> None:
            rate = (counters.updates - last_updates) / max(now - last_log, 1e-9)
            record = {
                "time_s": round(now - started, 3),
                "env_steps": 0,
                "updates": counters.updates,
                "updates_per_s": round(rate, 3),
                "replay_sizes": trainer.replay_sizes(),
                "policy_version": -1,
                "skipped_batches": counters.skipped_batches,
                "nonfinite_losses": counters.nonfinite_losses,
            }
            values, nonfinite = metrics.take_with_counts()
            counters.nonfinite_metrics += sum(nonfinite.values())
            record["nonfinite_metrics"] = counters.nonfinite_metrics
            record.update(values)
            record.update({f"nonfinite/{k}": n for k, n in sorted(nonfinite.items())})
            log.write(json_safe(record))

        interrupted = False
        failure = ""
        bad_in_row = 0
        limit = cfg.train.max_consecutive_skips
        try:
            bar = tqdm(
                total=updates, desc="train-offline", unit="upd", file=out, disable=not progress
            )
            with bar:
                for _ in range(updates):
                    result = trainer.step()
                    metrics.add(result.metrics)
                    counters.skipped_batches += result.skipped
                    if not all(map(math.isfinite, result.metrics.values())):
                        counters.nonfinite_losses += 1
                    bar.update(1)
                    if result.real:
                        bad_in_row = 0
                        counters.updates += 1
                        if ck.every_steps and counters.updates % ck.every_steps == 0:
                            checkpoint()
                    else:
                        bad_in_row += 1
                        if limit and bad_in_row >= limit:
                            failure = (
                                f"training failed: {bad_in_row} update calls in a row made no "
                                f"real update (train.max_consecutive_skips={limit}): "
                                f"{counters.skipped_batches} skipped batches (non-finite "
                                f"dataset values), {counters.nonfinite_losses} non-finite "
                                "losses / values"
                            )
                            break
                    now = time.monotonic()
                    if now >= next_log:
                        log_line(now)
                        next_log, last_log, last_updates = (
                            now + cfg.run.log_every_s,
                            now,
                            counters.updates,
                        )
        except KeyboardInterrupt:
            interrupted = True
        finally:
            trainer.close()
        log_line(time.monotonic())
    final = checkpoint()
    if failure:
        last = str(final) if final is not None else latest_checkpoint_text(run.checkpoints)
        raise LearnerFailed(f"{failure}; last good checkpoint: {last}")
    if final is None:
        raise LearnerFailed(
            "the networks came out non-finite: no checkpoint saved "
            f"(last good checkpoint: {latest_checkpoint_text(run.checkpoints)})"
        )
    wall = time.monotonic() - started
    out.write(f"train-offline: {counters.updates} updates in {wall:.1f} s; checkpoint {final}\n")
    return OfflineResult(counters.updates, episodes, count, final, wall, interrupted)


def latest_checkpoint_text(root: Path) -> str:
    last = latest_checkpoint(root)
    return str(last) if last is not None else "none"
