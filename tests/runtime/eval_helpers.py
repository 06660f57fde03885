"""Shared helpers for the eval / policy-loading tests: a tiny SAC saved into a fake run folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hilrl.algorithms.sac import SAC
from hilrl.config.env import EnvConfig
from hilrl.config.learner import EncoderConfig, LearningConfig, SACConfig
from hilrl.config.root import RootConfig, RunConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec
from hilrl.runtime.checkpoint import save_checkpoint
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Batch

PICK_STATE_DIM = 9
"""observation.state of state-only pick_cube: 6 joints (gripper last) + ee position."""
PICK_ACTION = ActionSpec(4, has_gripper=True)
"""ee_delta x, y, z + gripper."""
STEP = 7
COUNTERS = {"env_steps": 123, "weights_version": 3, "updates": 7}


def tiny_env_cfg(**kw: object) -> EnvConfig:
    """State-only pick_cube, 4 steps per episode, small render size for videos."""
    cfg = EnvConfig(use_cameras=False, episode_time_s=0.4, fps=10)
    cfg = replace(cfg, robot=replace(cfg.robot, camera_height=48, camera_width=64))
    return replace(cfg, **kw)  # type: ignore[arg-type]


def tiny_learning() -> LearningConfig:
    return LearningConfig(
        encoder=EncoderConfig(
            small_cnn_channels=(4, 4),
            small_cnn_patch=2,
            spatial_features=2,
            image_latent_dim=8,
            state_latent_dim=8,
        ),
        sac=SACConfig(hidden_dims=(16, 16), utd_ratio=1, fused_optimizer=False),
        device="cpu",
    )


def tiny_root(env: EnvConfig | None = None) -> RootConfig:
    return RootConfig(
        env=env or tiny_env_cfg(),
        learning=tiny_learning(),
        run=RunConfig(output_dir="runs/test"),
        teleop=TeleopConfig(device="none"),
    )


def random_obs(spec: ObservationSpec, rows: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    if spec.state_dim:
        out[STATE_KEY] = torch.randn(rows, spec.state_dim, generator=g)
    for key, shape in spec.image_shapes:
        out[key] = torch.randint(0, 256, (rows, *shape), generator=g, dtype=torch.uint8)
    return out


def train_a_bit(sac: SAC, seed: int) -> None:
    """One update, so the weights are not the fresh init any rebuild would also get."""
    rows = 16
    g = torch.Generator().manual_seed(seed)
    batch = Batch(
        observations=random_obs(sac.obs_spec, rows, seed),
        actions=torch.rand(rows, sac.action_spec.dim, generator=g) * 2 - 1,
        rewards=torch.randn(rows, generator=g),
        next_observations=random_obs(sac.obs_spec, rows, seed + 1),
        terminated=torch.zeros(rows),
        discrete_penalties=torch.zeros(rows),
        is_intervention=torch.zeros(rows),
    )
    sac.update(batch)
    with torch.no_grad():  # move every actor-side weight, not only the ones one step touches
        for p in sac.nets.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def image_spec() -> ObservationSpec:
    return ObservationSpec(3, ((IMAGE_PREFIX + "front", (16, 16, 3)),))


def make_sac(spec: ObservationSpec, action: ActionSpec = PICK_ACTION, seed: int = 0) -> SAC:
    torch.manual_seed(seed)
    learning = tiny_learning()
    sac = SAC(spec, action, learning.sac, learning.encoder)
    train_a_bit(sac, seed)
    return sac


def make_run(
    root: Path,
    spec: ObservationSpec | None = None,
    *,
    config: RootConfig | None = None,
    with_config: bool = True,
    step: int = STEP,
) -> tuple[Path, SAC]:
    """``root/run`` with one checkpoint of a freshly trained tiny SAC in checkpoints/."""
    run = root / "run"
    sac = make_sac(spec or ObservationSpec(PICK_STATE_DIM))
    save_checkpoint(
        run / "checkpoints",
        step,
        sac,
        config=(config or tiny_root()) if with_config else None,
        counters=COUNTERS,
    )
    return run, sac


def oracle_actions(sac: SAC, obs: dict[str, torch.Tensor]) -> np.ndarray:
    """The algorithm's own deterministic actions for a batch of observations."""
    was = sac.nets.training
    sac.nets.eval()
    with torch.no_grad():
        out = sac.nets.act_batch(obs, deterministic=True).numpy()
    sac.nets.train(was)
    return out
