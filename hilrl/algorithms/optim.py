"""Optimiser steps on explicit tensors, with torch's own Adam.

A learner step computes its gradients as tensors (``torch.autograd.grad``), not as
``.grad`` fields, so it calls torch's functional Adam (:func:`torch.optim.adam.adam`,
the function ``torch.optim.Adam.step`` itself calls) on the optimiser's own state
tensors. The
optimiser object stays a ``torch.optim.Adam``: its ``state_dict`` format, its
hyperparameters (``param_groups``, read afresh on every step) and its implementation
flags (``fused``/``foreach``) are torch's. The same code runs eagerly and inside
``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch.optim.adam import adam as torch_adam


class AdamState(NamedTuple):
    """One ``torch.optim.Adam`` group: its tensors and, as they are now, its settings."""

    params: list[torch.Tensor]
    """The parameters (updated in place, without gradient tracking)."""
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    fused: bool
    foreach: bool
    capturable: bool


class AdamFlags(NamedTuple):
    """Which of torch's Adam implementations a ``torch.optim.Adam`` group uses."""

    fused: bool
    foreach: bool
    capturable: bool


def adam_implementation(device: torch.device, compiled: bool, fused: bool) -> AdamFlags:
    """``fused``/``foreach``/``capturable`` flags of a ``torch.optim.Adam`` on ``device``
    for an eager or a compiled learner step.

    Eager, the fused kernel (one call per group) is the fastest on CPUs and GPUs
    (``fused=False``, i.e. ``sac.fused_optimizer`` off: ``foreach``). Dynamo does not
    trace into the fused kernel (it is ``torch.compiler.disable``d: a graph break), so a
    compiled step uses an implementation it traces and inductor fuses: on a GPU the
    capturable ``foreach`` one (what a compiled ``opt.step()`` switches to itself); on a
    CPU the per-tensor one, as capturable is refused there eagerly (a step that dynamo
    runs eagerly, e.g. past its recompile limit, must still work) and the plain
    ``foreach`` one does not trace on a CPU in torch 2.13.
    """
    if compiled:
        if device.type == "cuda":
            return AdamFlags(fused=False, foreach=True, capturable=True)
        return AdamFlags(fused=False, foreach=False, capturable=False)
    use_fused = fused and device.type in ("cpu", "cuda")
    return AdamFlags(fused=use_fused, foreach=not use_fused, capturable=False)


def set_adam_implementation(opt: torch.optim.Optimizer, flags: AdamFlags) -> None:
    """Re-apply implementation flags, e.g. after ``opt.load_state_dict`` copied a saved
    group's (they say how to compute, not what: a checkpoint must not choose them)."""
    for group in opt.param_groups:
        group.update(flags._asdict())


def init_adam_state(opt: torch.optim.Optimizer) -> None:
    """Create the state ``opt.step()`` would create lazily (zero moments, step 0).

    As torch's ``Adam._init_group``: the step count is a float32 scalar tensor, on the
    parameter's device for the fused and capturable implementations, else on the CPU.
    """
    for group in opt.param_groups:
        on_device = bool(group.get("fused")) or bool(group.get("capturable"))
        for p in group["params"]:
            if opt.state.get(p):
                continue
            opt.state[p] = {
                "step": torch.zeros(
                    (), dtype=torch.float32, device=p.device if on_device else "cpu"
                ),
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }


class AdamTensors(NamedTuple):
    """A one-group ``torch.optim.Adam``'s parameters and state tensors, in order."""

    params: list[torch.Tensor]
    exp_avgs: list[torch.Tensor]
    exp_avg_sqs: list[torch.Tensor]
    steps: list[torch.Tensor]


def adam_tensors(opt: torch.optim.Optimizer) -> AdamTensors:
    """The optimiser's parameters and its own state tensors, its state created first.

    Build them again after ``opt.load_state_dict``, which replaces the state tensors.
    """
    if not isinstance(opt, torch.optim.Adam) or len(opt.param_groups) != 1:
        raise ValueError("adam_tensors needs a torch.optim.Adam with one parameter group")
    init_adam_state(opt)
    params = list(opt.param_groups[0]["params"])
    states = [opt.state[p] for p in params]
    return AdamTensors(
        params,
        [s["exp_avg"] for s in states],
        [s["exp_avg_sq"] for s in states],
        [s["step"] for s in states],
    )


def adam_state(opt: torch.optim.Optimizer, tensors: AdamTensors) -> AdamState:
    """:class:`AdamState` of ``tensors`` (from :func:`adam_tensors`) with the group's
    settings as they are now (an lr set on ``opt.param_groups`` applies at once)."""
    group = opt.param_groups[0]
    for flag in ("amsgrad", "maximize", "decoupled_weight_decay", "differentiable"):
        if group.get(flag):
            raise ValueError(f"Adam with {flag}=True is not supported here")
    beta1, beta2 = group["betas"]
    return AdamState(
        *tensors,
        lr=float(group["lr"]),
        beta1=float(beta1),
        beta2=float(beta2),
        eps=float(group["eps"]),
        weight_decay=float(group["weight_decay"]),
        fused=bool(group.get("fused")),
        foreach=bool(group.get("foreach")),
        capturable=bool(group.get("capturable")),
    )


def adam_step(state: AdamState, grads: Sequence[torch.Tensor]) -> None:
    """One Adam step of ``state`` with ``grads``: what ``opt.step()`` computes (without
    gradient tracking, as ``opt.step()``)."""
    with torch.no_grad():
        torch_adam(
            state.params,
            list(grads),
            state.exp_avgs,
            state.exp_avg_sqs,
            [],
            state.steps,
            foreach=state.foreach,
            fused=state.fused,
            capturable=state.capturable,
            amsgrad=False,
            beta1=state.beta1,
            beta2=state.beta2,
            lr=state.lr,
            weight_decay=state.weight_decay,
            eps=state.eps,
            maximize=False,
        )


def clip_grads(grads: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` in place so that their global L2 norm is at most ``max_norm``;
    return the norm before scaling (0 with ``max_norm`` 0 or no gradients).

    The arithmetic of ``nn.utils.clip_grad_norm_``: coefficient ``max_norm / (norm +
    1e-6)`` clamped at 1. The norm is taken tensor by tensor (a reduction that inductor
    fuses into the kernel producing each gradient; ``_foreach_norm`` it does not lower
    on a CPU).
    """
    if max_norm <= 0 or not grads:
        return torch.zeros((), device=grads[0].device if grads else None)
    grads = list(grads)
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    torch._foreach_mul_(grads, coef)
    return total
