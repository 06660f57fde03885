"""The whole configuration of a run: one file serves every verb (train, learner, actor, ...).

Sections: ``env`` (robot, cameras, wrappers), ``learning`` (encoders, SAC, replay,
checkpoints), ``transport`` (actor <-> learner gRPC), and ``run`` (output folder, seed,
logging). Each verb reads the sections it needs.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from hilrl.config.dataset import DatasetConfig
from hilrl.config.env import EnvConfig
from hilrl.config.learner import LearningConfig
from hilrl.config.loader import ConfigError
from hilrl.config.reward import RewardClassifierConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.config.train import TrainConfig
from hilrl.config.transport import TransportConfig


@dataclass
class RunConfig:
    output_dir: str = "runs/default"
    """Folder for this run's checkpoints, logs, plots and videos."""
    seed: int = 0
    """Seed for the env resets, network initialisation and sampling."""
    total_env_steps: int = 20_000
    """Stop after this many environment steps (summed over actors)."""
    log_every_s: float = 5.0
    """Seconds between console status lines and TensorBoard scalars."""
    wandb: bool = False
    """Also log every TensorBoard scalar to Weights & Biases (needs: pip install 'hilrl[wandb]')."""
    wandb_project: str = "hilrl"
    """W&B project name."""
    wandb_entity: str | None = None
    """W&B entity (user or team); null: your default entity."""
    wandb_mode: str = "online"
    """W&B mode: 'online', 'offline' (log locally, 'wandb sync' later) or 'disabled'."""

    def validate(self) -> None:
        if not self.output_dir:
            raise ConfigError("output_dir", self.output_dir, "must not be empty")
        if self.total_env_steps <= 0:
            raise ConfigError("total_env_steps", self.total_env_steps, "must be positive")
        if self.log_every_s <= 0:
            raise ConfigError("log_every_s", self.log_every_s, "must be positive")
        if self.wandb_mode not in ("online", "offline", "disabled"):
            raise ConfigError("wandb_mode", self.wandb_mode, "choose online, offline or disabled")
        if self.wandb and importlib.util.find_spec("wandb") is None:
            raise ConfigError(
                "wandb", True, "Weights & Biases is not installed: pip install 'hilrl[wandb]'"
            )


@dataclass
class RootConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    """The environment: robot (sim or real), cameras and wrapper stack."""
    learning: LearningConfig = field(default_factory=LearningConfig)
    """The learner: encoders, SAC, replay buffers, checkpoints."""
    transport: TransportConfig = field(default_factory=TransportConfig)
    """Actor <-> learner transport (gRPC address, TLS, token, timeouts)."""
    run: RunConfig = field(default_factory=RunConfig)
    """Output folder, seed, run length and logging cadence."""
    teleop: TeleopConfig = field(default_factory=TeleopConfig)
    """The human operator's input device (keyboard, gamepad, HID, leader arm) or 'sim' / 'none'."""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    """Recorded datasets: name / folder, task text, episode count, storage, Hub upload."""
    reward: RewardClassifierConfig = field(default_factory=RewardClassifierConfig)
    """Learned reward classifier: model, training (train-reward), sim labelling (label-sim), use as the env reward (path)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training run layout: actor count, warm-up, weight publishing, checkpoints, demos, evaluation."""
