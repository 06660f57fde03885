"""Which torch device a setting such as ``learning.device: auto`` means."""

from __future__ import annotations

import torch


def resolve_device(name: str | torch.device) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; any other name or device as given.

    A CUDA device on a machine without CUDA raises here, with the setting named, rather
    than at the first tensor moved there.
    """
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(name)!r} requested but CUDA is not available")
    return device
