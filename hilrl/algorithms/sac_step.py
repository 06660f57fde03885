"""One SAC update as a pure function of parameters, optimiser state and batches.

In the spirit of rlpd's ``update``, one function computes a whole learner update::

    sac_update(model, optimisers, chunks, discounts, actor, settings)
        for each chunk:                                  (utd_ratio critic steps)
            latents  = encoder(obs)                      (the critic optimiser owns it)
            latents' = encoder(next_obs)                 (no gradients)
            critic loss: target = min over M of N target critics, entropy backup
            grasp loss:  double DQN on detached latents; reward + gripper penalty
            gradients (torch.autograd.grad), clipping, Adam (torch's), Polyak update
        if actor:                                        (every policy_update_freq calls)
            actor + temperature losses on the last chunk's detached latents (DrQ: the
            actor never moves the encoder), gradients, clipping, Adam

Its state is explicit: the networks (``model``), each optimiser's parameters and Adam
state (``optimisers``), the batches and the step's constants (``settings``); it returns
the metrics and updates parameters, moments and targets in place. Gradients come from
``torch.autograd.grad`` with respect to the optimiser's own parameters (never ``.grad``
fields), so nothing but the listed parameters is differentiated.

The learner (:class:`hilrl.algorithms.sac.SAC`) calls this function as it is (eager) or
compiled into one graph (``sac.compile``, with dynamo tracing ``torch.autograd.grad``:
:data:`COMPILE_CONFIG`): the same code, with no branch on the mode. It is called under
``torch.no_grad()``, so a compiled graph is an inference graph that updates its inputs
in place; each loss enables gradients for itself. Each step's losses are disjoint in
their parameters (critic + encoder vs. grasp critic; actor vs. log alpha), so one
backward pass serves two optimisers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from hilrl.algorithms import losses
from hilrl.algorithms.optim import AdamState, adam_step, clip_grads
from hilrl.policies.networks import CriticEnsemble, gripper_index_torch
from hilrl.policies.sac_policy import PolicyNetworks
from hilrl.types import Batch

CRITIC_METRICS = ("critic_loss", "q_mean", "target_mean", "critic_grad_norm")
GRASP_METRICS = ("grasp_critic_loss", "grasp_q_mean", "grasp_grad_norm")
ACTOR_METRICS = ("actor_loss", "actor_grad_norm", "entropy", "temperature_loss", "temperature")

COMPILE_CONFIG: dict[str, Any] = {"trace_autograd_ops": True}
"""Dynamo settings that compiling :func:`sac_update` needs: trace ``torch.autograd.grad``
into the graph (otherwise each step is split at it)."""


class SACModel(nn.Module):
    """Every network tensor of the learner under one root (``nets.actor.trunk.0.weight``,
    ``critic.net.0.weight``, ``critic_target...``, ``log_alpha``): what a step runs on."""

    def __init__(self, nets: PolicyNetworks, critic: CriticEnsemble, log_alpha: float) -> None:
        super().__init__()
        self.nets = nets
        self.critic = critic
        self.critic_target = copy.deepcopy(critic).requires_grad_(False)
        self.grasp_target: nn.Module | None = None
        if nets.grasp_critic is not None:
            self.grasp_target = copy.deepcopy(nets.grasp_critic).requires_grad_(False)
        device = next(critic.parameters()).device
        self.log_alpha = nn.Parameter(torch.tensor(log_alpha, device=device))

    def polyak_pairs(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(targets, online sources) of the Polyak update, tensor by tensor."""
        targets: list[torch.Tensor] = list(self.critic_target.parameters())
        sources: list[torch.Tensor] = list(self.critic.parameters())
        if self.grasp_target is not None and self.nets.grasp_critic is not None:
            targets += list(self.grasp_target.parameters())
            sources += list(self.nets.grasp_critic.parameters())
        return targets, sources


class Settings(NamedTuple):
    """The constants of a step (of the graph, when compiled)."""

    tau: float
    grad_clip_norm: float
    backup_entropy: bool
    target_entropy: float
    num_critics: int
    num_target_critics: int
    continuous_dim: int
    device_type: str
    bf16: bool


class Optimisers(NamedTuple):
    """Each optimiser's parameters and state (:class:`AdamState`), and the Polyak pairs."""

    critic: AdamState
    """Critic ensemble and the trainable encoder."""
    actor: AdamState
    temperature: AdamState
    grasp: AdamState | None
    polyak: tuple[list[torch.Tensor], list[torch.Tensor]]
    """(targets, online sources) of the Polyak update."""


class CriticLosses(NamedTuple):
    """What the forward pass of one critic step yields (losses carry gradients)."""

    latents: torch.Tensor
    critic_loss: torch.Tensor
    q_mean: torch.Tensor
    target_mean: torch.Tensor
    grasp_loss: torch.Tensor
    """0 without a grasp critic (a tensor either way: one shape of output for the graph)."""
    grasp_q_mean: torch.Tensor


class ActorLosses(NamedTuple):
    actor_loss: torch.Tensor
    temperature_loss: torch.Tensor
    entropy: torch.Tensor


# ---------------------------------------------------------------- the update


def sac_update(
    model: SACModel,
    opts: Optimisers,
    chunks: Sequence[Batch],
    discounts: Sequence[torch.Tensor | float],
    actor: bool,
    s: Settings,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A whole learner update: a critic step per chunk, then (``actor``) the actor step.

    Returns each critic step's metrics ``(steps, len(CRITIC_METRICS [+ GRASP_METRICS]))``
    and the actor step's ``(len(ACTOR_METRICS),)`` or None. Call it under
    ``torch.no_grad()``: only the losses record gradients (each step enables them).
    """
    values = []
    latents = None
    for b, discount in zip(chunks, discounts):
        latents, v = critic_step(model, opts, b, discount, s)
        values.append(v)
    actor_values = None
    if actor:
        assert latents is not None, "the actor step needs a critic step's latents"
        actor_values = actor_step(model, opts, latents, s)
    return torch.stack(values), actor_values


def critic_step(
    model: SACModel,
    opts: Optimisers,
    b: Batch,
    discount: torch.Tensor | float,
    s: Settings,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the critic ensemble + encoder and of the grasp critic, and the Polyak
    update of their targets. Returns the detached latents and the step's metrics."""
    subset = target_subset(s, model.log_alpha.device)
    critic, grasp = opts.critic, opts.grasp
    params = critic.params + (grasp.params if grasp is not None else [])
    with torch.enable_grad():
        out = critic_losses(model, b, discount, subset, s)
        total = out.critic_loss if grasp is None else out.critic_loss + out.grasp_loss
        grads = torch.autograd.grad(total, params)
    n = len(critic.params)
    values = [out.critic_loss, out.q_mean, out.target_mean, _optimise(critic, grads[:n], s)]
    if grasp is not None:
        values += [out.grasp_loss, out.grasp_q_mean, _optimise(grasp, grads[n:], s)]
    targets, sources = opts.polyak
    torch._foreach_lerp_(targets, sources, s.tau)
    return out.latents.detach(), torch.stack([v.detach().float() for v in values])


def actor_step(
    model: SACModel, opts: Optimisers, latents: torch.Tensor, s: Settings
) -> torch.Tensor:
    """Actor and temperature step on detached latents: one backward pass for both losses.

    Only the actor's parameters and log alpha are differentiated: the critic passes the
    gradient on to the action and keeps its own weights.
    """
    actor, temperature = opts.actor, opts.temperature
    with torch.enable_grad():
        out = actor_losses(model, latents, s)
        grads = torch.autograd.grad(
            out.actor_loss + out.temperature_loss, actor.params + temperature.params
        )
    n = len(actor.params)
    gnorm = _optimise(actor, grads[:n], s)
    _optimise(temperature, grads[n:], s, clip=False)
    values = [out.actor_loss, gnorm, out.entropy, out.temperature_loss, model.log_alpha.exp()]
    return torch.stack([v.detach().float() for v in values])


def _optimise(
    adam: AdamState, grads: Sequence[torch.Tensor], s: Settings, clip: bool = True
) -> torch.Tensor:
    """Clip the gradients (``sac.grad_clip_norm``), then the Adam step; returns their norm
    before clipping."""
    norm = clip_grads(grads, s.grad_clip_norm if clip else 0.0)
    adam_step(adam, grads)
    return norm


def target_subset(s: Settings, device: torch.device) -> torch.Tensor | None:
    """REDQ: indices of the M target critics whose minimum makes this step's target."""
    if s.num_target_critics >= s.num_critics:
        return None
    return torch.randperm(s.num_critics)[: s.num_target_critics].to(device)


# ---------------------------------------------------------------- losses (forward passes)


def _autocast(s: Settings) -> torch.autocast:
    """bf16 autocast when configured: matmuls/convs in bf16, the rest in fp32.

    Entered once per loss computation, never around an optimiser step: autocast
    caches the bf16 copy of each weight until its outermost context exits, so a
    context spanning two steps would run the second one on stale weights.
    """
    return torch.autocast(s.device_type, dtype=torch.bfloat16, enabled=s.bf16)


def critic_losses(
    m: SACModel,
    b: Batch,
    discount: torch.Tensor | float,
    subset: torch.Tensor | None,
    s: Settings,
) -> CriticLosses:
    """Forward pass of one critic step: encoder, TD target, critic and grasp losses."""
    with _autocast(s):
        latents, next_latents = m.nets.encoder.forward_pair(b.observations, b.next_observations)
        with torch.no_grad():
            target = td_target(m, b, next_latents, discount, subset, s)
        q = m.critic(latents, b.actions[:, : s.continuous_dim]).float()
        if m.nets.grasp_critic is not None:
            grasp_loss, grasp_q_mean = grasp_losses(m, b, latents.detach(), next_latents, discount)
        else:
            grasp_loss = grasp_q_mean = q.new_zeros(())
    return CriticLosses(
        latents,
        losses.critic_loss(q, target),
        q.detach().mean(),
        target.mean(),
        grasp_loss,
        grasp_q_mean,
    )


def td_target(
    m: SACModel,
    b: Batch,
    next_latents: torch.Tensor,
    discount: torch.Tensor | float,
    subset: torch.Tensor | None,
    s: Settings,
) -> torch.Tensor:
    """Soft TD target from the target critics and a fresh action of the current actor."""
    next_actions, next_log_prob = m.nets.actor.sample(next_latents)
    next_q = m.critic_target(next_latents, next_actions).float()
    if subset is not None:
        next_q = next_q.index_select(0, subset)
    return losses.critic_target(
        next_q,
        next_log_prob,
        b.rewards,
        b.terminated,
        discount,
        m.log_alpha.detach().exp(),
        s.backup_entropy,
    )


def grasp_losses(
    m: SACModel,
    b: Batch,
    latents: torch.Tensor,
    next_latents: torch.Tensor,
    discount: torch.Tensor | float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Double-DQN loss of the grasp critic on detached latents, and its mean Q."""
    grasp, grasp_target = m.nets.grasp_critic, m.grasp_target
    assert grasp is not None and grasp_target is not None
    with torch.no_grad():
        target = losses.grasp_critic_target(
            grasp(next_latents).float(),
            grasp_target(next_latents).float(),
            b.rewards,
            b.discrete_penalties,
            b.terminated,
            discount,
        )
    q = grasp(latents).float()
    loss = losses.grasp_critic_loss(q, gripper_index_torch(b.actions[:, -1]), target)
    return loss, q.detach().mean()


def actor_losses(m: SACModel, latents: torch.Tensor, s: Settings) -> ActorLosses:
    """Actor loss against the critic ensemble, temperature loss, and the entropy."""
    with _autocast(s):
        actions, log_prob = m.nets.actor.sample(latents)
        q = m.critic(latents, actions).float()
    alpha = m.log_alpha.detach().exp()
    return ActorLosses(
        losses.actor_loss(log_prob, q, alpha),
        losses.temperature_loss(m.log_alpha, log_prob, s.target_entropy),
        -log_prob.detach().mean(),
    )
