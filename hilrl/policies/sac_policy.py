"""The actor side of SAC: encoder + actor + grasp critic, and weight exchange.

The learner's :class:`hilrl.algorithms.sac.SAC` owns a :class:`PolicyNetworks` and sends
:func:`policy_weights` to actors; an actor builds the same :class:`PolicyNetworks` from
the same config inside :class:`SACPolicy` and loads them. A frozen pretrained backbone
is not sent (every process loads it from its own local file); a SHA-256 of its tensors
travels instead, so an actor with different backbone weights fails loudly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hilrl.config.learner import EncoderConfig, SACConfig
from hilrl.policies.encoder import ObservationEncoder, ObservationSpec, observation_to_batch
from hilrl.policies.networks import GraspCritic, TanhGaussianActor
from hilrl.types import Observation

BACKBONE_HASH_KEY = "encoder.backbone_sha256"


@dataclass(frozen=True)
class ActionSpec:
    """Action layout: ``dim`` components in [-1, 1], the gripper last when present."""

    dim: int
    has_gripper: bool = False

    def __post_init__(self) -> None:
        if self.dim < 1 or (self.has_gripper and self.dim < 2):
            raise ValueError(f"action dim {self.dim} too small (has_gripper={self.has_gripper})")


class PolicyNetworks(nn.Module):
    """What an actor needs to act: the shared encoder, the actor, the grasp critic."""

    def __init__(
        self,
        obs_spec: ObservationSpec,
        action_spec: ActionSpec,
        enc_cfg: EncoderConfig,
        sac_cfg: SACConfig,
    ) -> None:
        super().__init__()
        self.obs_spec = obs_spec
        self.action_spec = action_spec
        self.uses_grasp_critic = action_spec.has_gripper and sac_cfg.use_grasp_critic
        self.continuous_dim = action_spec.dim - int(self.uses_grasp_critic)
        self.encoder = ObservationEncoder(obs_spec, enc_cfg)
        hidden = tuple(sac_cfg.hidden_dims)
        self.actor = TanhGaussianActor(
            self.encoder.out_dim,
            self.continuous_dim,
            hidden,
            sac_cfg.activation,
            sac_cfg.log_std_min,
            sac_cfg.log_std_max,
        )
        self.grasp_critic: GraspCritic | None = None
        if self.uses_grasp_critic:
            self.grasp_critic = GraspCritic(
                self.encoder.out_dim, hidden, sac_cfg.activation, sac_cfg.critic_layer_norm
            )
        self.send_backbone = not (self.encoder.frozen and enc_cfg.pretrained)

    def act_batch(self, obs: Mapping[str, torch.Tensor], deterministic: bool) -> torch.Tensor:
        """Full actions ``(B, dim)`` in [-1, 1]; the gripper (if any) is the grasp critic's argmax."""
        latents = self.encoder(obs)
        cont = self.actor.mode(latents) if deterministic else self.actor.sample(latents)[0]
        if self.grasp_critic is None:
            return cont
        grip = self.grasp_critic(latents).argmax(-1, keepdim=True).to(cont.dtype) - 1.0
        return torch.cat([cont, grip], dim=-1)

    def backbone_hash(self) -> np.ndarray:
        """SHA-256 (as 32 uint8) of the backbone tensors, in a fixed order."""
        h = hashlib.sha256()
        if self.encoder.backbone is not None:
            for name, t in sorted(self.encoder.backbone.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return np.frombuffer(h.digest(), dtype=np.uint8).copy()


def policy_weights(nets: PolicyNetworks) -> dict[str, np.ndarray]:
    """Everything an actor's :class:`PolicyNetworks` needs, as numpy arrays by name."""
    out: dict[str, np.ndarray] = {}
    for name, t in nets.state_dict().items():
        if not nets.send_backbone and name.startswith("encoder.backbone."):
            continue
        out[name] = t.detach().cpu().numpy().copy()
    if not nets.send_backbone:
        out[BACKBONE_HASH_KEY] = nets.backbone_hash()
    return out


def expected_weight_shapes(nets: PolicyNetworks) -> dict[str, tuple[int, ...]]:
    """Names and shapes that :func:`policy_weights` of identically built networks yields."""
    shapes = {
        name: tuple(t.shape)
        for name, t in nets.state_dict().items()
        if nets.send_backbone or not name.startswith("encoder.backbone.")
    }
    if not nets.send_backbone:
        shapes[BACKBONE_HASH_KEY] = (32,)
    return shapes


class SACPolicy:
    """:class:`hilrl.core.Policy` for SAC: acts on one observation dict, loads weights."""

    def __init__(
        self,
        obs_spec: ObservationSpec,
        action_spec: ActionSpec,
        enc_cfg: EncoderConfig,
        sac_cfg: SACConfig,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.nets = PolicyNetworks(obs_spec, action_spec, enc_cfg, sac_cfg).to(self.device)
        self.nets.eval()
        self._version = 0
        self._shapes = expected_weight_shapes(self.nets)
        self._backbone_hash = self.nets.backbone_hash()

    @property
    def version(self) -> int:
        return self._version

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        batch = observation_to_batch(observation, self.nets.obs_spec, self.device)
        with torch.inference_mode():
            action = self.nets.act_batch(batch, deterministic)
        return action[0].cpu().numpy().astype(np.float32)

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None:
        """Replace the weights; validates every name and shape first (all or nothing)."""
        missing = sorted(set(self._shapes) - set(weights))
        unexpected = sorted(set(weights) - set(self._shapes))
        if missing or unexpected:
            raise KeyError(
                f"policy weights do not match this policy: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        for name, shape in self._shapes.items():
            got = tuple(np.shape(weights[name]))
            if got != shape:
                raise ValueError(
                    f"policy weight '{name}' has shape {got}, this policy expects {shape}"
                )
            if not np.all(np.isfinite(weights[name])):
                raise ValueError(f"policy weight '{name}' contains NaN or inf")
        if BACKBONE_HASH_KEY in weights and not np.array_equal(
            np.asarray(weights[BACKBONE_HASH_KEY]), self._backbone_hash
        ):
            raise ValueError(
                f"'{BACKBONE_HASH_KEY}' differs: the learner's frozen backbone weights are not this "
                "actor's (check encoder.pretrained points to the same file on both machines)"
            )
        state = {
            name: torch.as_tensor(np.asarray(arr))
            for name, arr in weights.items()
            if name != BACKBONE_HASH_KEY
        }
        self.nets.load_state_dict(state, strict=False)
        self._version = int(version)
