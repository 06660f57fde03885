"""The observation encoder shared by actor, critics and grasp critic (HIL-SERL layout).

Per camera: uint8 HWC image -> float, ImageNet normalisation -> backbone -> learned
spatial embedding (each channel reduced from h x w to a few learned features) ->
Linear -> LayerNorm -> tanh. State: Linear -> LayerNorm -> tanh. The latents are
concatenated. One backbone serves all cameras (cameras of equal size run as one batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hilrl.config.learner import EncoderConfig
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ObservationSpec:
    """Keys and shapes of an observation: what the networks are built for."""

    state_dim: int
    """Length of ``observation.state`` (0: no state)."""
    image_shapes: tuple[tuple[str, tuple[int, int, int]], ...] = ()
    """(key, (H, W, 3)) for every camera, sorted by key."""

    @property
    def image_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.image_shapes)

    @property
    def keys(self) -> tuple[str, ...]:
        return ((STATE_KEY,) if self.state_dim else ()) + self.image_keys

    def image_bytes(self) -> int:
        """uint8 bytes of the images of one observation."""
        return sum(int(np.prod(s)) for _, s in self.image_shapes)

    def observation_bytes(self) -> int:
        """Bytes of one observation: uint8 images plus float32 state."""
        return self.image_bytes() + 4 * self.state_dim

    @classmethod
    def from_observation(cls, obs: Observation) -> ObservationSpec:
        """Read the spec off one observation dict, validating dtypes and shapes."""
        state_dim = 0
        if STATE_KEY in obs:
            state = np.asarray(obs[STATE_KEY])
            if state.ndim != 1:
                raise ValueError(f"{STATE_KEY} must have shape (D,), got {state.shape}")
            state_dim = int(state.shape[0])
        shapes = []
        for key in sorted(obs):
            if key == STATE_KEY:
                continue
            if not key.startswith(IMAGE_PREFIX):
                raise ValueError(
                    f"unknown observation key {key!r} (expected {STATE_KEY} or {IMAGE_PREFIX}<camera>)"
                )
            img = np.asarray(obs[key])
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"{key} must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
            shapes.append((key, (int(img.shape[0]), int(img.shape[1]), 3)))
        if not state_dim and not shapes:
            raise ValueError("observation has neither state nor images")
        return cls(state_dim, tuple(shapes))

    def to_json(self) -> dict[str, object]:
        return {
            "state_dim": self.state_dim,
            "image_shapes": [[k, list(s)] for k, s in self.image_shapes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ObservationSpec:
        shapes = data.get("image_shapes", [])
        assert isinstance(shapes, list)
        state_dim = data["state_dim"]
        assert isinstance(state_dim, int)
        return cls(state_dim, tuple((str(k), (int(s[0]), int(s[1]), int(s[2]))) for k, s in shapes))


class SpatialLearnedEmbedding(nn.Module):
    """Per channel, ``features`` learned weightings of the h x w map (HIL-SERL pooling).

    Keeps where things are (unlike global average pooling) with few parameters.
    """

    def __init__(self, channels: int, height: int, width: int, features: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(
            torch.randn(channels, height, width, features) / (height * width) ** 0.5
        )
        self.out_dim = channels * features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("bchw,chwf->bcf", x, self.kernel)
        return out.flatten(1)


def _projection(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.Tanh())


def camera_name(key: str) -> str:
    """``observation.images.front`` -> ``front`` (module names cannot contain dots)."""
    return key[len(IMAGE_PREFIX) :].replace(".", "_")


class ObservationEncoder(nn.Module):
    """Batched observation dict -> latent vector ``(B, out_dim)``."""

    mean: torch.Tensor
    inv_std: torch.Tensor

    def __init__(self, spec: ObservationSpec, cfg: EncoderConfig) -> None:
        super().__init__()
        from hilrl.policies.backbones import ResNet10, SmallCNN, load_backbone_weights

        self.spec = spec
        self.cfg = cfg
        self.frozen = False
        self.channels_last = cfg.channels_last
        self.backbone: nn.Module | None = None
        self.cameras = nn.ModuleDict()
        out_dim = 0
        if spec.image_shapes:
            if cfg.type == "resnet10":
                self.backbone = ResNet10()
                if cfg.pretrained:
                    load_backbone_weights(self.backbone, cfg.pretrained)
                self.frozen = cfg.freeze_backbone
            else:
                self.backbone = SmallCNN(tuple(cfg.small_cnn_channels), cfg.small_cnn_patch)
            if self.frozen:
                self.backbone.requires_grad_(False)
                self.backbone.eval()
            if self.channels_last:
                self.backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.register_buffer(
                "mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0, persistent=False
            )
            self.register_buffer(
                "inv_std",
                1.0 / (torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0),
                persistent=False,
            )
            for key, (h, w, _) in spec.image_shapes:
                c, fh, fw = self._feature_shape(h, w)
                pool = SpatialLearnedEmbedding(c, fh, fw, cfg.spatial_features)
                self.cameras[camera_name(key)] = nn.Sequential(
                    pool, _projection(pool.out_dim, cfg.image_latent_dim)
                )
                out_dim += cfg.image_latent_dim
        self.state_proj: nn.Module | None = None
        if spec.state_dim:
            if cfg.state_latent_dim:
                self.state_proj = _projection(spec.state_dim, cfg.state_latent_dim)
                out_dim += cfg.state_latent_dim
            else:
                out_dim += spec.state_dim
        self.out_dim = out_dim

    def _feature_shape(self, h: int, w: int) -> tuple[int, int, int]:
        assert self.backbone is not None
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            out = self.backbone(torch.zeros(1, 3, h, w))
        self.backbone.train(was_training and not self.frozen)
        return int(out.shape[1]), int(out.shape[2]), int(out.shape[3])

    def train(self, mode: bool = True) -> ObservationEncoder:
        """Keep a frozen backbone in eval mode: its BatchNorm statistics must never move.

        (Reference defect 5: a "frozen" backbone left in train mode gives the learner and
        the actor different features.)
        """
        super().train(mode)
        if self.frozen and self.backbone is not None:
            self.backbone.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # --------------------------------------------------------------------- forward

    def image_features(self, obs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Backbone feature maps per camera; cameras of equal size share one call."""
        assert self.backbone is not None
        groups: dict[tuple[int, int], list[str]] = {}
        for key, (h, w, _) in self.spec.image_shapes:
            groups.setdefault((h, w), []).append(key)
        out: dict[str, torch.Tensor] = {}
        for keys in groups.values():
            imgs = torch.cat([obs[k] for k in keys]) if len(keys) > 1 else obs[keys[0]]
            x = imgs.permute(0, 3, 1, 2).float()  # NHWC storage == channels_last NCHW
            if not self.channels_last:
                x = x.contiguous()
            x = x.sub_(self.mean).mul_(self.inv_std)
            if self.frozen:
                with torch.no_grad():
                    feats = self.backbone(x)
            else:
                feats = self.backbone(x)
            for k, f in zip(keys, feats.chunk(len(keys))):
                out[k] = f
        return out

    def head(
        self, obs: Mapping[str, torch.Tensor], feature_maps: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """Trainable part: spatial embeddings, projections and the state projection."""
        parts = [self.cameras[camera_name(k)](feature_maps[k]) for k in self.spec.image_keys]
        if self.spec.state_dim:
            state = obs[STATE_KEY].float()
            parts.append(self.state_proj(state) if self.state_proj is not None else state)
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        maps = self.image_features(obs) if self.spec.image_shapes else {}
        return self.head(obs, maps)

    def forward_pair(
        self, obs: Mapping[str, torch.Tensor], next_obs: Mapping[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents of ``obs`` (with gradients) and of ``next_obs`` (without).

        With a frozen backbone both go through it in a single batched call.
        """
        if self.frozen and self.spec.image_shapes:
            both = {k: torch.cat([obs[k], next_obs[k]]) for k in self.spec.image_keys}
            maps = self.image_features(both)
            n = obs[self.spec.image_keys[0]].shape[0]
            cur = {k: m[:n] for k, m in maps.items()}
            nxt = {k: m[n:] for k, m in maps.items()}
            feats = self.head(obs, cur)
            with torch.no_grad():
                next_feats = self.head(next_obs, nxt)
            return feats, next_feats
        feats = self.forward(obs)
        with torch.no_grad():
            next_feats = self.forward(next_obs)
        return feats, next_feats


def observation_to_batch(
    obs: Observation, spec: ObservationSpec, device: torch.device
) -> dict[str, torch.Tensor]:
    """One observation dict (numpy) -> a batch of one on ``device``, validating keys/shapes."""
    out: dict[str, torch.Tensor] = {}
    for key in spec.keys:
        if key not in obs:
            raise KeyError(f"observation lacks {key!r} (has {sorted(obs)})")
        arr = np.asarray(obs[key])
        if key == STATE_KEY:
            if arr.shape != (spec.state_dim,):
                raise ValueError(
                    f"{key} has shape {arr.shape}, the policy expects ({spec.state_dim},)"
                )
            out[key] = torch.as_tensor(arr, dtype=torch.float32, device=device).unsqueeze(0)
        else:
            expected = dict(spec.image_shapes)[key]
            if arr.shape != expected or arr.dtype != np.uint8:
                raise ValueError(
                    f"{key} is {arr.dtype} {arr.shape}, the policy expects uint8 {expected}"
                )
            out[key] = torch.as_tensor(arr, device=device).unsqueeze(0)
    return out
