"""Optimiser steps without ``torch.optim``'s per-call Python bookkeeping.

A SAC update makes six optimiser steps and three gradient clips on small networks; on a
CPU each ``Adam.step()`` spent ~0.2 ms in Python (hooks, grouping tensors by device and
dtype, state checks) around one fused kernel, and ``clip_grad_norm_`` ran one extra norm
op per parameter. These helpers issue the same kernels with the same arguments, so the
results are bitwise identical to ``opt.step()`` / ``clip_grad_norm_(foreach=True)``;
the optimiser objects (and so their ``state_dict`` format) stay torch's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn


def clip_grads(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` in place so their global L2 norm is at most ``max_norm``; return
    the norm before scaling.

    Eager, the arithmetic of ``nn.utils.clip_grad_norm_(..., foreach=True)`` on one
    device (coefficient ``max_norm / (norm + 1e-6)`` clamped at 1), bitwise.
    """
    if torch.compiler.is_compiling():
        # Inductor does not lower _foreach_norm on the CPU (it runs one eager norm per
        # tensor); a sum of squares fuses into the kernels that produce the gradients.
        total = torch.stack([g.pow(2).sum() for g in grads]).sum().sqrt()
    else:
        total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(grads))))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(list(grads), coef)
    return total


class AdamSlots(NamedTuple):
    """A torch Adam's per-parameter state as parallel lists (what :func:`adam_update` mutates)."""

    params: list[torch.Tensor]
    """Detached aliases of the parameters (updated in place)."""
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float


def adam_slots(opt: torch.optim.Optimizer) -> AdamSlots:
    """The optimiser's state as :class:`AdamSlots`, creating it as ``opt.step()`` would.

    The tensors are the optimiser's own, so a checkpoint of ``opt`` sees every update.
    Call it again after ``opt.load_state_dict`` (which replaces the state tensors).
    """
    if len(opt.param_groups) != 1 or not isinstance(opt, torch.optim.Adam):
        raise ValueError("adam_slots needs a torch.optim.Adam with one parameter group")
    group = opt.param_groups[0]
    if group.get("amsgrad") or group.get("maximize") or isinstance(group["lr"], torch.Tensor):
        raise ValueError("adam_slots covers Adam without amsgrad/maximize and a float lr")
    params = list(group["params"])
    for p in params:
        if p not in opt.state or not opt.state[p]:
            # As torch's Adam._init_group does for fused/capturable Adam.
            opt.state[p] = {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }
    states = [opt.state[p] for p in params]
    beta1, beta2 = group["betas"]
    return AdamSlots(
        [p.detach() for p in params],
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [s["step"] for s in states],
        float(group["lr"]),
        float(beta1),
        float(beta2),
        float(group["eps"]),
        float(group["weight_decay"]),
    )


def adam_update(slots: AdamSlots, grads: Sequence[torch.Tensor]) -> None:
    """One Adam step written as plain tensor ops, so ``torch.compile`` can fuse it.

    The arithmetic of ``torch.optim.Adam`` (bias-corrected moments, eps outside the
    square root, L2 weight decay added to the gradient); agrees with its kernels to float
    rounding.
    """
    params, grads = slots.params, list(grads)
    if slots.weight_decay:
        grads = torch._foreach_add(grads, params, alpha=slots.weight_decay)
    torch._foreach_add_(slots.steps, 1)
    torch._foreach_lerp_(slots.exp_avgs, grads, 1 - slots.beta1)
    torch._foreach_mul_(slots.exp_avg_sqs, slots.beta2)
    torch._foreach_addcmul_(slots.exp_avg_sqs, grads, grads, 1 - slots.beta2)
    for p, m, v, step in zip(params, slots.exp_avgs, slots.exp_avg_sqs, slots.steps):
        bias1 = 1 - slots.beta1**step
        bias2_sqrt = (1 - slots.beta2**step).sqrt()
        p.sub_((slots.lr / bias1) * m / (v.sqrt() / bias2_sqrt + slots.eps))


def drop_grads(params: Sequence[nn.Parameter]) -> None:
    """``zero_grad(set_to_none=True)`` for a known parameter list."""
    for p in params:
        p.grad = None


def _fast_path_ok(opt: torch.optim.Optimizer, group: dict[str, object]) -> bool:
    return (
        isinstance(opt, torch.optim.Adam)
        and bool(group.get("fused"))
        and not group.get("amsgrad")
        and not group.get("decoupled_weight_decay")
        and not group.get("differentiable")
        and not isinstance(group.get("lr"), torch.Tensor)
    )


def adam_step(opt: torch.optim.Optimizer) -> None:
    """``opt.step()`` for a fused Adam as one kernel call per parameter group.

    Falls back to ``opt.step()`` for the first step (which creates the moment buffers),
    for parameters without state, and for configurations it does not cover.
    """
    calls = []
    for group in opt.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        if not _fast_path_ok(opt, group) or any(p not in opt.state for p in params):
            opt.step()
            return
        calls.append((group, params))
    for group, params in calls:
        states = [opt.state[p] for p in params]
        steps = [s["step"] for s in states]
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            [p.grad for p in params],
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            grad_scale=None,
            found_inf=None,
        )
