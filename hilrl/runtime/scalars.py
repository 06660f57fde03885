"""Scalar logging for a run: TensorBoard always, Weights & Biases when configured.

Both backends receive exactly the same ``(tag, value, env_steps)`` triples, so a W&B
dashboard shows the metrics TensorBoard shows. W&B is optional: ``pip install wandb``;
``run.wandb_mode: offline`` logs locally without a network (``wandb sync`` later).
"""

from __future__ import annotations

import importlib
from dataclasses import is_dataclass
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from hilrl.config.loader import ConfigError, redact_secrets
from hilrl.config.root import RunConfig


class ScalarLogger:
    """``log(tag, value, step)`` to TensorBoard and, optionally, W&B."""

    def __init__(
        self, tensorboard_dir: Path, run_cfg: RunConfig, config: Any = None, name: str = ""
    ) -> None:
        self.tb = SummaryWriter(str(tensorboard_dir))
        self.wandb_run: Any = None
        if run_cfg.wandb:
            self.wandb_run = _start_wandb(run_cfg, config, name, tensorboard_dir.parent)

    def log(self, tag: str, value: float, step: int) -> None:
        self.tb.add_scalar(tag, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({tag: value, "env_steps": step})

    def log_many(self, values: dict[str, float], step: int) -> None:
        for tag, value in values.items():
            self.tb.add_scalar(tag, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log({**values, "env_steps": step})

    def close(self) -> None:
        self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def _start_wandb(run_cfg: RunConfig, config: Any, name: str, run_dir: Path) -> Any:
    try:
        wandb = importlib.import_module("wandb")
    except ImportError as exc:
        raise ConfigError(
            "run.wandb", True, "Weights & Biases is not installed: pip install 'hilrl[wandb]'"
        ) from exc
    # Never the token: W&B keeps the config on its servers and under <run>/wandb.
    plain = redact_secrets(config) if config is not None and is_dataclass(config) else {}
    run = wandb.init(
        project=run_cfg.wandb_project,
        entity=run_cfg.wandb_entity,
        mode=run_cfg.wandb_mode,
        name=name or None,
        dir=str(run_dir),
        config=plain,
    )
    # plot everything against env steps, like the TensorBoard scalars
    run.define_metric("env_steps")
    run.define_metric("*", step_metric="env_steps")
    return run
