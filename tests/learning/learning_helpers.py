"""Shared helpers for the learning-core tests: tiny specs, configs and batches."""

from __future__ import annotations

import torch

from hilrl.config.learner import EncoderConfig, SACConfig
from hilrl.policies.encoder import ObservationSpec
from hilrl.types import Batch

CAM = "observation.images.front"
STATE = "observation.state"


def tiny_spec(images: bool = True, state_dim: int = 3, size: int = 16) -> ObservationSpec:
    shapes = ((CAM, (size, size, 3)),) if images else ()
    return ObservationSpec(state_dim, shapes)


def tiny_encoder_cfg(**kw: object) -> EncoderConfig:
    base: dict[str, object] = {
        "small_cnn_channels": (4, 4),
        "small_cnn_patch": 2,
        "spatial_features": 2,
        "image_latent_dim": 8,
        "state_latent_dim": 8,
    }
    base.update(kw)
    return EncoderConfig(**base)  # type: ignore[arg-type]


def tiny_sac_cfg(**kw: object) -> SACConfig:
    base: dict[str, object] = {"hidden_dims": (16, 16), "utd_ratio": 2}
    base.update(kw)
    return SACConfig(**base)  # type: ignore[arg-type]


def random_batch(spec: ObservationSpec, rows: int, action_dim: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)

    def obs() -> dict[str, torch.Tensor]:
        out = {}
        if spec.state_dim:
            out[STATE] = torch.randn(rows, spec.state_dim, generator=g)
        for key, shape in spec.image_shapes:
            out[key] = torch.randint(0, 256, (rows, *shape), generator=g, dtype=torch.uint8)
        return out

    return Batch(
        observations=obs(),
        actions=torch.rand(rows, action_dim, generator=g) * 2 - 1,
        rewards=torch.randn(rows, generator=g),
        next_observations=obs(),
        terminated=(torch.rand(rows, generator=g) < 0.1).float(),
        discrete_penalties=-0.02 * (torch.rand(rows, generator=g) < 0.5).float(),
        is_intervention=torch.zeros(rows),
    )
