"""Actor, critic ensemble and grasp critic heads. They all read encoder latents.

The critic ensemble stores its weights stacked along a leading head dimension (one
tensor per layer, whatever N is). It evaluates head by head: on a CPU, per head
``addmm`` (bias fused) and ``layer_norm`` with its affine transform fused beat one
batched matmul followed by separate broadcast affine ops by ~25% (measured at N=2 and
N=10, batch 256, hidden 256); the extra dispatches cost less than the extra passes.
Compiled (``sac.compile``), where those affine ops fuse, the batched form wins (~5%).
Every layer computes the same way eager and compiled (no branch on the mode).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hilrl.types import GRIPPER_THRESHOLD

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
}
LOG2 = math.log(2.0)


def activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def mlp(in_dim: int, hidden: tuple[int, ...], act: str, layer_norm: bool) -> nn.Sequential:
    """Hidden layers only (Linear [-> LayerNorm] -> activation); callers add their output."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers.append(nn.Linear(in_dim, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(activation(act))
        in_dim = h
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """N independent linear layers applied in one batched matmul.

    Input ``(B, in)`` (shared by all heads) or ``(N, B, in)``; output ``(N, B, out)``.
    Each head is initialised like ``nn.Linear`` (uniform in +-1/sqrt(in)).
    """

    def __init__(self, num: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(num, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return torch.matmul(x, self.weight) + self.bias
        return torch.baddbmm(self.bias, x, self.weight)

    def head(self, x: torch.Tensor, h: int) -> torch.Tensor:
        """Head ``h`` alone: ``(B, in)`` -> ``(B, out)``."""
        return torch.addmm(self.bias[h], x, self.weight[h])


class EnsembleLayerNorm(nn.Module):
    """LayerNorm with a separate affine transform per head: ``(N, B, D)``."""

    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num, 1, dim))
        self.bias = nn.Parameter(torch.zeros(num, 1, dim))
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.bias, F.layer_norm(x, (self.dim,)), self.weight)

    def head(self, x: torch.Tensor, h: int) -> torch.Tensor:
        """Head ``h`` alone: ``(B, D)``, normalisation and affine in one kernel."""
        return F.layer_norm(x, (self.dim,), self.weight[h, 0], self.bias[h, 0])


class CriticEnsemble(nn.Module):
    """Q(s, a) for N heads at once: latents ``(B, F)`` + actions ``(B, A)`` -> ``(N, B)``."""

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        num: int,
        act: str,
        layer_norm: bool,
    ) -> None:
        super().__init__()
        self.num = num
        layers: list[nn.Module] = []
        d = in_dim + action_dim
        for h in hidden:
            layers.append(EnsembleLinear(num, d, h))
            if layer_norm:
                layers.append(EnsembleLayerNorm(num, h))
            layers.append(activation(act))
            d = h
        layers.append(EnsembleLinear(num, d, 1))
        self.net = nn.Sequential(*layers)
        self.batched = False
        """All heads as batched matmuls (faster once compiled, where the separate affine
        ops fuse); False: head by head (faster in eager CPU mode, see the module doc)."""

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([latents, actions], dim=-1)
        if self.batched:
            return self.net(x).squeeze(-1)  # type: ignore[no-any-return]
        return torch.stack([self.head(x, h) for h in range(self.num)])

    def head(self, x: torch.Tensor, h: int) -> torch.Tensor:
        """Q of head ``h`` for inputs ``x = [latents, actions]``: ``(B,)``."""
        for layer in self.net:
            if isinstance(layer, (EnsembleLinear, EnsembleLayerNorm)):
                x = layer.head(x, h)
            else:
                x = layer(x)
        return x.squeeze(-1)


class TanhGaussianActor(nn.Module):
    """Gaussian policy squashed by tanh into [-1, 1]; the mode is tanh(mean)."""

    def __init__(
        self,
        in_dim: int,
        action_dim: int,
        hidden: tuple[int, ...],
        act: str,
        log_std_min: float,
        log_std_max: float,
    ) -> None:
        super().__init__()
        self.trunk = mlp(in_dim, hidden, act, layer_norm=False)
        self.out = nn.Linear(hidden[-1] if hidden else in_dim, 2 * action_dim)
        self.action_dim = action_dim
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_std) of the pre-tanh Gaussian; log_std smoothly bounded."""
        mean, raw = self.out(self.trunk(latents)).float().chunk(2, dim=-1)  # fp32 under autocast
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            torch.tanh(raw) + 1.0
        )
        return mean, log_std

    def sample(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised action in (-1, 1) and its log-probability ``(B,)``."""
        mean, log_std = self(latents)
        std = log_std.exp()
        eps = torch.randn_like(mean)
        u = mean + std * eps
        # log N(u; mean, std) - sum log(1 - tanh(u)^2), the latter in a stable form.
        log_prob = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2.0 * (LOG2 - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def mode(self, latents: torch.Tensor) -> torch.Tensor:
        mean, _ = self(latents)
        return torch.tanh(mean)


class GraspCritic(nn.Module):
    """Q-values of the three gripper choices (close, stay, open) from latents: ``(B, 3)``."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], act: str, layer_norm: bool) -> None:
        super().__init__()
        self.trunk = mlp(in_dim, hidden, act, layer_norm)
        self.out = nn.Linear(hidden[-1] if hidden else in_dim, 3)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(latents))  # type: ignore[no-any-return]


def gripper_index_torch(command: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`hilrl.types.gripper_index` (close 0, stay 1, open 2)."""
    return 1 + (command > GRIPPER_THRESHOLD).long() - (command < -GRIPPER_THRESHOLD).long()
