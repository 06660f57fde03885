"""SAC loss terms, one small pure function each (no optimiser steps, no side effects).

Shapes: ``B`` batch rows, ``N`` critic heads. ``discount`` is the per-row bootstrap
discount (gamma, or gamma**k for an n-step return that ended after k steps).
Only ``terminated`` stops bootstrapping: a time-limit truncation bootstraps from the
stored next observation (reference defect 7).
"""

from __future__ import annotations

import torch


def critic_target(
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    rewards: torch.Tensor,
    terminated: torch.Tensor,
    discount: torch.Tensor | float,
    alpha: torch.Tensor,
    backup_entropy: bool,
) -> torch.Tensor:
    """TD target ``(B,)``: r + discount * (1 - terminated) * (min_i Q'_i - alpha * log pi).

    ``next_q`` ``(M, B)`` holds the target critics already chosen for the minimum (all N,
    or a random REDQ subset of M).
    """
    v = next_q.min(dim=0).values
    if backup_entropy:
        v = v - alpha * next_log_prob
    return rewards + discount * (1.0 - terminated) * v


def critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared TD error over heads and rows; ``q`` ``(N, B)``, ``target`` ``(B,)``."""
    return (q - target.unsqueeze(0)).pow(2).mean()


def actor_loss(log_prob: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """E[alpha * log pi(a|s) - mean_i Q_i(s, a)] with a ~ pi (reparameterised)."""
    return (alpha * log_prob - q.mean(dim=0)).mean()


def temperature_loss(
    log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float
) -> torch.Tensor:
    """-alpha * (log pi + target entropy): raises alpha while entropy is below target."""
    return -(log_alpha.exp() * (log_prob.detach() + target_entropy)).mean()


def grasp_critic_target(
    next_q_online: torch.Tensor,
    next_q_target: torch.Tensor,
    rewards: torch.Tensor,
    penalties: torch.Tensor,
    terminated: torch.Tensor,
    discount: torch.Tensor | float,
) -> torch.Tensor:
    """Double-DQN target ``(B,)``; the reward includes the gripper penalty of every row.

    The online grasp critic picks a' = argmax Q(s', .), the target network evaluates it.
    (Reference defect 2: the penalty was dropped from some batches.)
    """
    best = next_q_online.argmax(dim=-1, keepdim=True)
    v = next_q_target.gather(-1, best).squeeze(-1)
    return rewards + penalties + discount * (1.0 - terminated) * v


def grasp_critic_loss(
    q: torch.Tensor, gripper_index: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """MSE between Q(s, g) of the taken gripper choice ``g`` and the target."""
    taken = q.gather(-1, gripper_index.unsqueeze(-1)).squeeze(-1)
    return (taken - target).pow(2).mean()
