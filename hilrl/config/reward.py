"""Reward classifier configuration: the model, its training, sim labelling and its use as reward.

Real tasks have no reward signal; HIL-SERL learns one from ~200 success and ~1,000
failure frames. ``hilrl label-sim`` records labelled frames in simulation,
``hilrl train-reward`` trains a classifier on a labelled LeRobot dataset and
``hilrl eval-reward`` scores one; with ``reward.path`` set, the env's reward comes from
the trained classifier (optionally AND-ed with simple conditions on the state).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from hilrl.config.learner import DEVICES, EncoderConfig
from hilrl.config.loader import ConfigError

BALANCE_MODES = ("sampler", "loss", "none")
THRESHOLD_METRICS = ("f1", "accuracy", "balanced_accuracy")
MONITOR_METRICS = ("loss", "roc_auc", "f1", "balanced_accuracy")
STATE_CONDITION = re.compile(
    r"^\s*state\[\s*(\d+)\s*\]\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
"""``state[<index>] <op> <number>`` with op one of > >= < <=."""


@dataclass
class RewardModelConfig:
    """The classifier network: the shared observation encoder plus an MLP head."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Vision encoder (backbone, spatial embedding, projection). A frozen pretrained ResNet-10 (type resnet10, pretrained set) is HIL-SERL's choice on real robots; small_cnn trains from scratch on a CPU."""
    cameras: tuple[str, ...] = ()
    """Camera names the classifier looks at (e.g. [front]); empty: every camera of the training dataset."""
    use_state: bool = False
    """Also feed observation.state to the classifier (off: images only, so the label cannot be read off the joints)."""
    hidden_dims: tuple[int, ...] = (256,)
    """Hidden layer sizes of the MLP head on top of the encoder latent."""
    dropout: float = 0.1
    """Dropout after every hidden layer of the head (training only)."""
    num_classes: int = 2
    """2: binary success / failure (one logit, sigmoid); more: softmax over classes."""
    class_names: tuple[str, ...] = ()
    """Names of the classes in label order; empty: ('failure', 'success') for 2 classes, else class_<i>."""
    success_class: int | None = None
    """Which class counts as success; null: the last class (label 1 for binary)."""

    def validate(self) -> None:
        if self.num_classes < 2:
            raise ConfigError("num_classes", self.num_classes, "must be >= 2")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ConfigError(
                "class_names", self.class_names, f"needs {self.num_classes} names (num_classes)"
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise ConfigError("class_names", self.class_names, "names must be unique")
        if self.success_class is not None and not 0 <= self.success_class < self.num_classes:
            raise ConfigError(
                "success_class", self.success_class, f"must be in [0, {self.num_classes})"
            )
        if not self.hidden_dims or any(h <= 0 for h in self.hidden_dims):
            raise ConfigError("hidden_dims", self.hidden_dims, "need positive layer sizes")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout", self.dropout, "must be in [0, 1)")
        if len(set(self.cameras)) != len(self.cameras) or any(not c for c in self.cameras):
            raise ConfigError("cameras", self.cameras, "camera names must be unique and non-empty")

    @property
    def names(self) -> tuple[str, ...]:
        """The class names, defaults filled in."""
        if self.class_names:
            return self.class_names
        if self.num_classes == 2:
            return ("failure", "success")
        return tuple(f"class_{i}" for i in range(self.num_classes))

    @property
    def success_index(self) -> int:
        return self.num_classes - 1 if self.success_class is None else self.success_class


@dataclass
class RewardTrainConfig:
    """Training of the classifier on a labelled LeRobot dataset."""

    dataset: str | None = None
    """Labelled LeRobot dataset folder; null: the dataset section's folder (dataset.root or datasets/<dataset.repo_id>)."""
    label_key: str = "next.reward"
    """Column holding the labels: for 2 classes a value >= 0.5 is success; for more, integer class indices."""
    label_offset: int = 0
    """Frame i is labelled with the value stored at frame i + label_offset of its episode (frames without one are dropped). 0 for hilrl label-sim datasets (labels describe their own frame); -1 for hilrl record datasets, whose next.reward[i] is the outcome of the step after frame i."""
    output_dir: str = "outputs/reward_classifier"
    """Folder for the trained classifier (model.safetensors + reward_classifier.json), plots and TensorBoard logs."""
    val_fraction: float = 0.2
    """Share of episodes held out for validation (split by episode to avoid leakage between near-identical frames; stratified by whether an episode has successes)."""
    val_episodes: tuple[int, ...] = ()
    """Explicit validation episode indices; non-empty overrides val_fraction."""
    epochs: int = 30
    """Most passes over the training frames."""
    batch_size: int = 64
    """Frames per optimisation step."""
    lr: float = 3e-4
    """AdamW learning rate of the trainable parameters (head, spatial embeddings, projections; the backbone too unless frozen)."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    balance: str = "sampler"
    """Class balancing: 'sampler' (draw frames with probability 1 / class count), 'loss' (class-weighted loss) or 'none'."""
    augment_pad: int = 4
    """Random-shift augmentation of training images by up to this many pixels (0: none; never applied to validation or inference)."""
    monitor: str = "loss"
    """Validation figure for early stopping and the kept checkpoint: 'loss' (lower is better), 'roc_auc', 'f1' or 'balanced_accuracy'."""
    patience: int = 5
    """Stop after this many epochs without improvement of the monitored figure (0: never stop early)."""
    threshold_metric: str = "f1"
    """The success threshold is the one maximising this on validation data: 'f1', 'accuracy' or 'balanced_accuracy'."""
    seed: int = 0
    """Seed of the split, initialisation, sampling and augmentation."""
    device: str = "auto"
    """Training device: 'cpu', 'cuda' or 'auto' (cuda when available)."""
    tensorboard: bool = True
    """Write TensorBoard scalars to <output_dir>/tensorboard."""

    def validate(self) -> None:
        if self.dataset is not None and not self.dataset.strip():
            raise ConfigError("dataset", self.dataset, "must be a folder path or null")
        if not self.label_key:
            raise ConfigError("label_key", self.label_key, "must name a dataset column")
        if not self.output_dir:
            raise ConfigError("output_dir", self.output_dir, "must not be empty")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("val_fraction", self.val_fraction, "must be in (0, 1)")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "must be positive")
        if self.lr <= 0:
            raise ConfigError("lr", self.lr, "must be positive")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", self.weight_decay, "must be >= 0")
        if self.balance not in BALANCE_MODES:
            raise ConfigError("balance", self.balance, f"choose one of {BALANCE_MODES}")
        if self.augment_pad < 0:
            raise ConfigError("augment_pad", self.augment_pad, "must be >= 0")
        if self.monitor not in MONITOR_METRICS:
            raise ConfigError("monitor", self.monitor, f"choose one of {MONITOR_METRICS}")
        if self.patience < 0:
            raise ConfigError("patience", self.patience, "must be >= 0")
        if self.threshold_metric not in THRESHOLD_METRICS:
            raise ConfigError(
                "threshold_metric", self.threshold_metric, f"choose one of {THRESHOLD_METRICS}"
            )
        if self.device not in DEVICES:
            raise ConfigError("device", self.device, f"choose one of {DEVICES}")


@dataclass
class SimLabelConfig:
    """``hilrl label-sim``: frames labelled with the sim's ground-truth success.

    Each episode is one of: a random-action episode; an expert episode (the simulated
    operator solves the task, holds the result for hold_ticks, then random actions follow,
    which often undo it); or an expert episode that gives up early (near misses).
    """

    num_episodes: int = 60
    """Episodes to record."""
    random_episode_fraction: float = 0.2
    """Share of episodes driven by random actions only (mostly failures: arm anywhere, cube on the table)."""
    give_up_fraction: float = 0.25
    """Share of expert episodes where the expert stops at a random tick before success and random actions follow (near misses)."""
    hold_ticks: int = 5
    """Ticks the expert keeps going after the first success (success frames)."""
    after_ticks: int = 10
    """Random-action ticks after the hold or the give-up (the cube is often dropped: hard failures)."""
    random_ticks: int = 30
    """Length of a random-action episode."""
    max_ticks: int = 100
    """Most ticks of an expert episode before it ends anyway."""
    random_smoothing: float = 0.6
    """Random actions are a smoothed walk a <- s * a + (1 - s) * noise, so the arm travels instead of jittering."""
    seed: int = 0
    """Seed of the episode kinds, random actions and resets."""

    def validate(self) -> None:
        if self.num_episodes <= 0:
            raise ConfigError("num_episodes", self.num_episodes, "must be positive")
        for name in ("random_episode_fraction", "give_up_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(name, value, "must be in [0, 1]")
        for name in ("hold_ticks", "after_ticks"):
            if getattr(self, name) < 0:
                raise ConfigError(name, getattr(self, name), "must be >= 0")
        for name in ("random_ticks", "max_ticks"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "must be positive")
        if not 0.0 <= self.random_smoothing < 1.0:
            raise ConfigError("random_smoothing", self.random_smoothing, "must be in [0, 1)")


@dataclass
class RewardClassifierConfig:
    """A learned reward: the classifier, its training and labelling, and its use in the env."""

    path: str | None = None
    """Trained classifier folder (from hilrl train-reward) whose output replaces the env's reward; null: the env's own reward."""
    device: str = "cpu"
    """Where the classifier runs during rollouts: 'cpu', 'cuda' or 'auto'."""
    threshold: float | None = None
    """Success when the success probability is >= this; null: the threshold calibrated on validation data and saved with the model."""
    state_conditions: tuple[str, ...] = ()
    """Extra conditions on observation.state that must all hold for success, each 'state[<index>] <op> <value>' with op >, >=, < or <= (e.g. 'state[8] > 0.2' for a height)."""
    success_reward: float = 1.0
    """Reward of a step judged successful."""
    failure_reward: float = 0.0
    """Reward of any other step."""
    model: RewardModelConfig = field(default_factory=RewardModelConfig)
    """The network trained by hilrl train-reward."""
    train: RewardTrainConfig = field(default_factory=RewardTrainConfig)
    """Training data, optimisation, early stopping and threshold calibration."""
    label: SimLabelConfig = field(default_factory=SimLabelConfig)
    """hilrl label-sim: how labelled sim frames are generated."""

    def validate(self) -> None:
        if self.path is not None and not self.path.strip():
            raise ConfigError("path", self.path, "must be a classifier folder or null")
        if self.device not in DEVICES:
            raise ConfigError("device", self.device, f"choose one of {DEVICES}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError("threshold", self.threshold, "must be in [0, 1] or null")
        for i, cond in enumerate(self.state_conditions):
            if not STATE_CONDITION.match(cond):
                raise ConfigError(
                    f"state_conditions[{i}]",
                    cond,
                    "expected 'state[<index>] <op> <value>' with op one of > >= < <=",
                )
