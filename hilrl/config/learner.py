"""Learning configuration: observation encoder, SAC, replay buffers and checkpoints.

Defaults follow the HIL-SERL recipe (RLPD-style SAC, see docs/REFERENCE): Adam 3e-4,
tau 0.005, initial temperature 0.01, target entropy -|A|/2, batch 256, UTD 2, half of
every batch from demonstrations + interventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hilrl.config.loader import ConfigError

ENCODER_TYPES = ("small_cnn", "resnet10")
ACTIVATIONS = ("relu", "silu", "tanh", "gelu")
DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("fp32", "bf16", "auto")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclass
class EncoderConfig:
    type: str = "small_cnn"
    """Image backbone: 'small_cnn' (fast, trainable, for CPU runs) or 'resnet10' (HIL-SERL's)."""
    pretrained: str | None = None
    """ResNet-10 weights: a local .safetensors file or a Hugging Face repo id looked up in the local cache (never downloaded). None: random init."""
    freeze_backbone: bool = True
    """Freeze the ResNet-10 backbone (requires_grad False, always in eval mode), as in HIL-SERL."""
    small_cnn_channels: tuple[int, ...] = (16, 32, 32)
    """Small CNN channels: a patchify conv (kernel = stride = small_cnn_patch), then stride-2 3x3 convs."""
    small_cnn_patch: int = 4
    """Kernel and stride of the small CNN's first conv (4: 128x128 -> 32x32 at a fraction of the cost)."""
    spatial_features: int = 8
    """Learned spatial embedding: features per backbone channel (HIL-SERL uses 8)."""
    image_latent_dim: int = 256
    """Per-camera latent size after Linear -> LayerNorm -> tanh."""
    state_latent_dim: int = 64
    """State latent size after Linear -> LayerNorm -> tanh (0: use the raw state)."""
    channels_last: bool = True
    """Run convolutions in channels-last memory layout (faster on CPU and tensor cores)."""

    def validate(self) -> None:
        if self.type not in ENCODER_TYPES:
            raise ConfigError("type", self.type, f"choose one of {ENCODER_TYPES}")
        if not self.small_cnn_channels or any(c <= 0 for c in self.small_cnn_channels):
            raise ConfigError(
                "small_cnn_channels", self.small_cnn_channels, "need positive channel counts"
            )
        if self.small_cnn_patch <= 0:
            raise ConfigError("small_cnn_patch", self.small_cnn_patch, "must be positive")
        if self.spatial_features <= 0:
            raise ConfigError("spatial_features", self.spatial_features, "must be positive")
        if self.image_latent_dim <= 0:
            raise ConfigError("image_latent_dim", self.image_latent_dim, "must be positive")
        if self.state_latent_dim < 0:
            raise ConfigError("state_latent_dim", self.state_latent_dim, "must be >= 0")


@dataclass
class SACConfig:
    discount: float = 0.99
    """Discount factor per environment step (HIL-SERL uses 0.97-0.99)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critic ensemble and the shared encoder."""
    temperature_lr: float = 3e-4
    """Adam learning rate of the log-temperature."""
    grasp_critic_lr: float = 3e-4
    """Adam learning rate of the discrete grasp critic."""
    tau: float = 0.005
    """Polyak factor of the target networks: target += tau * (online - target)."""
    initial_temperature: float = 0.01
    """Initial entropy temperature; HIL-SERL found 1.0 trains badly."""
    target_entropy: float | None = None
    """Target entropy of the continuous actor; None: -|A|/2 with |A| the continuous action dims."""
    num_critics: int = 2
    """Critic ensemble size N (RLPD uses 10)."""
    num_target_critics: int | None = None
    """REDQ-style subset size M: the target is the min over M random target critics (None: all N)."""
    hidden_dims: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor, critics and grasp critic MLPs."""
    activation: str = "relu"
    """Hidden activation of the MLPs: relu, silu, tanh or gelu."""
    critic_layer_norm: bool = True
    """LayerNorm after every hidden critic layer (RLPD: keeps Q from diverging at high UTD)."""
    utd_ratio: int = 2
    """Critic updates per actor update (the sampler delivers utd_ratio x batch_size rows)."""
    policy_update_freq: int = 1
    """Update the actor and temperature on every k-th update() call."""
    grad_clip_norm: float = 10.0
    """Max global gradient norm per optimiser (0 disables clipping)."""
    backup_entropy: bool = True
    """Subtract alpha * log pi(a'|s') in the critic target (standard SAC)."""
    n_step: int = 1
    """n-step returns for the critic targets (1: ordinary one-step TD)."""
    log_std_min: float = -5.0
    """Lower bound of the actor's log standard deviation."""
    log_std_max: float = 2.0
    """Upper bound of the actor's log standard deviation."""
    use_grasp_critic: bool = True
    """Learn the gripper with a discrete double-DQN grasp critic when the env has a gripper."""
    fused_optimizer: bool = True
    """Use fused Adam kernels (CPU and CUDA) instead of the per-tensor loop."""
    precision: str = "fp32"
    """Forward/backward precision: 'fp32', 'bf16' autocast (weights, losses and optimiser stay fp32; fast on GPUs and CPUs with AMX, slow on other CPUs), or 'auto': bf16 where it is fast (a CUDA device with bf16, a CPU with AMX), else fp32."""
    compile: bool = False
    """torch.compile each whole update call (every critic step and the actor step, each with its forward, gradients, clipping, Adam and Polyak update: one graph); costs ~20-60 s of compiling at the first update."""
    compile_mode: str = "default"
    """torch.compile mode when compile is on: 'default', 'reduce-overhead', 'max-autotune' or 'max-autotune-no-cudagraphs'."""
    retain_freed_memory: bool = True
    """On the CPU, raise glibc malloc's trim/mmap thresholds so freed tensor memory is reused instead of page-faulted back in every step (process-wide)."""

    def validate(self) -> None:
        if not 0.0 < self.discount <= 1.0:
            raise ConfigError("discount", self.discount, "must be in (0, 1]")
        for name in ("actor_lr", "critic_lr", "temperature_lr", "grasp_critic_lr"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "must be positive")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError("tau", self.tau, "must be in (0, 1]")
        if self.initial_temperature <= 0:
            raise ConfigError("initial_temperature", self.initial_temperature, "must be positive")
        if self.num_critics < 1:
            raise ConfigError("num_critics", self.num_critics, "must be >= 1")
        if (
            self.num_target_critics is not None
            and not 1 <= self.num_target_critics <= self.num_critics
        ):
            raise ConfigError(
                "num_target_critics",
                self.num_target_critics,
                f"must be in [1, num_critics={self.num_critics}]",
            )
        if not self.hidden_dims or any(h <= 0 for h in self.hidden_dims):
            raise ConfigError("hidden_dims", self.hidden_dims, "need positive layer sizes")
        if self.activation not in ACTIVATIONS:
            raise ConfigError("activation", self.activation, f"choose one of {ACTIVATIONS}")
        if self.utd_ratio < 1:
            raise ConfigError("utd_ratio", self.utd_ratio, "must be >= 1")
        if self.policy_update_freq < 1:
            raise ConfigError("policy_update_freq", self.policy_update_freq, "must be >= 1")
        if self.grad_clip_norm < 0:
            raise ConfigError("grad_clip_norm", self.grad_clip_norm, "must be >= 0 (0 disables)")
        if self.n_step < 1:
            raise ConfigError("n_step", self.n_step, "must be >= 1")
        if self.precision not in PRECISIONS:
            raise ConfigError("precision", self.precision, f"choose one of {PRECISIONS}")
        if self.compile_mode not in COMPILE_MODES:
            raise ConfigError("compile_mode", self.compile_mode, f"choose one of {COMPILE_MODES}")
        if self.log_std_min >= self.log_std_max:
            raise ConfigError(
                "log_std_min", self.log_std_min, f"must be below log_std_max={self.log_std_max}"
            )


@dataclass
class ReplayConfig:
    capacity: int = 100_000
    """Online buffer size in transitions (ring: the oldest are overwritten)."""
    demo_capacity: int = 100_000
    """Demonstration buffer size in transitions."""
    intervention_capacity: int = 100_000
    """Intervention buffer size in transitions."""
    batch_size: int = 256
    """Rows per critic update; a sample holds utd_ratio x batch_size rows."""
    online_ratio: float = 0.5
    """Share of each batch drawn from online data; the rest from demos + interventions (RLPD: 0.5)."""
    intervention_ratio: float | None = None
    """Share of the offline part drawn from interventions; None: demos and interventions pooled by size."""
    storage_device: str = "cpu"
    """Where the buffers live: 'cpu', 'cuda' or 'auto' (cuda when available)."""
    augment: bool = True
    """DrQ random-shift augmentation of images at sample time."""
    augment_pad: int = 4
    """DrQ shift: pixels of replicate padding before the random crop (HIL-SERL: 4)."""
    prefetch: int = 2
    """Batches prepared ahead by a background thread (0: sample on the training thread)."""
    explicit_next_fraction: float = 0.05
    """Initial size of the explicit next-observation pool as a fraction of capacity (it grows when needed)."""
    seed: int = 0
    """Seed of the sampler's random generator (batch rows and DrQ shifts); the learner mixes it with run.seed, so runs with different seeds sample differently."""

    def validate(self) -> None:
        for name in ("capacity", "demo_capacity", "intervention_capacity", "batch_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(name, getattr(self, name), "must be positive")
        if not 0.0 <= self.online_ratio <= 1.0:
            raise ConfigError("online_ratio", self.online_ratio, "must be in [0, 1]")
        if self.intervention_ratio is not None and not 0.0 <= self.intervention_ratio <= 1.0:
            raise ConfigError(
                "intervention_ratio", self.intervention_ratio, "must be in [0, 1] or null"
            )
        if self.storage_device not in DEVICES:
            raise ConfigError("storage_device", self.storage_device, f"choose one of {DEVICES}")
        if self.augment_pad < 0:
            raise ConfigError("augment_pad", self.augment_pad, "must be >= 0")
        if self.prefetch < 0:
            raise ConfigError("prefetch", self.prefetch, "must be >= 0")
        if not 0.0 < self.explicit_next_fraction <= 1.0:
            raise ConfigError(
                "explicit_next_fraction", self.explicit_next_fraction, "must be in (0, 1]"
            )


@dataclass
class CheckpointConfig:
    """Checkpoint cadence; checkpoints go to <run.output_dir>/checkpoints."""

    every_steps: int = 5000
    """Save every k optimisation steps (0: only at the end)."""
    keep_last: int = 3
    """Complete checkpoints to keep; older ones are deleted after a new one is complete."""
    save_buffers: bool = True
    """Include replay buffers (needed for an exact resume; large with images)."""

    def validate(self) -> None:
        if self.every_steps < 0:
            raise ConfigError("every_steps", self.every_steps, "must be >= 0")
        if self.keep_last < 1:
            raise ConfigError("keep_last", self.keep_last, "must be >= 1")


@dataclass
class LearningConfig:
    algorithm: str = "sac"
    """Learning algorithm, by name: 'sac' (HIL-SERL); others are registered in hilrl.runtime.trainers."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """Observation encoder shared by actor, critics and grasp critic."""
    sac: SACConfig = field(default_factory=SACConfig)
    """Soft actor-critic hyper-parameters."""
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    """Replay buffers and batch mixing."""
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    """Checkpoint folder and cadence."""
    device: str = "auto"
    """Training device: 'cpu', 'cuda' or 'auto' (cuda when available)."""

    def validate(self) -> None:
        if not self.algorithm or not self.algorithm.replace("_", "").isalnum():
            raise ConfigError("algorithm", self.algorithm, "must be a name (letters, digits, _)")
        if self.device not in DEVICES:
            raise ConfigError("device", self.device, f"choose one of {DEVICES}")
