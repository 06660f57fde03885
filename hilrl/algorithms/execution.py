"""How a learner step executes on its device: precision and ``torch.compile`` options."""

from __future__ import annotations

from typing import Any

import torch


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> 'bf16' where bf16 matmuls are fast (CUDA with bf16, a CPU with AMX tiles),
    else 'fp32'; 'fp32' and 'bf16' stay as they are.

    A CPU with AVX-512 BF16 but no AMX (e.g. AMD Zen 4/5) gets fp32: its bf16 matmuls
    and the casts around them were measured slower than fp32.
    """
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private; absent: assume none
    return "bf16" if device.type == "cpu" and amx is not None and amx() else "fp32"


def compile_options(mode: str, device: torch.device) -> dict[str, Any]:
    """Inductor options of ``sac.compile_mode`` plus those the update graph wants.

    ``fallback_random``: sampling noise comes from torch's own generator (as eager), not
    inductor's per-element Philox, whose loop over the 3-wide action rows cost ~0.2 ms
    per step on a CPU; it also makes compiled and eager steps draw the same numbers.
    ``size_asserts``/``alignment_asserts`` off: the wrapper otherwise checks every input
    and intermediate buffer in Python on each call (~0.2 ms); the inputs here are the
    learner's own tensors, built once. On a CPU, ``cpp_wrapper``: the graph's ~500
    buffer and kernel calls run from C++ instead of Python (state obs: ~+6% updates/s;
    a few seconds more of compiling).
    """
    options: dict[str, Any] = dict(torch._inductor.list_mode_options(mode))
    options.update(fallback_random=True, size_asserts=False, alignment_asserts=False)
    if device.type == "cpu":
        options["cpp_wrapper"] = True
    return options
