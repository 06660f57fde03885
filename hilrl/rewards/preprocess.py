"""The one preprocessing step from frames to classifier inputs, shared by training and inference.

The reference implementation normalised images while training but fed raw ones at
inference, so its deployed classifier saw inputs it was never trained on. Here
both paths call :func:`prepare_inputs` (select the classifier's cameras and state, check
dtype and size, stack into tensors on the model's device); the network's own first step
(:class:`~hilrl.policies.encoder.ObservationEncoder`: uint8 -> float, ImageNet
normalisation) is part of the saved model. Nothing is resized: a camera whose size
differs from training is an error, not a silent interpolation.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from hilrl.policies.encoder import ObservationSpec
from hilrl.types import IMAGE_PREFIX, STATE_KEY

PREPROCESSING = {
    "images": "uint8 RGB, HWC, no resize or crop beyond the env's own",
    "normalisation": "x / 255, then ImageNet mean / std, inside the model",
    "state": "float32 observation.state, unnormalised",
}
"""What the saved metadata records about the inputs (for people reading it)."""


class RewardInputError(ValueError):
    """Frames that the classifier cannot score: a camera missing or of the wrong size."""


def camera_key(name: str) -> str:
    """``front`` -> ``observation.images.front`` (full keys pass through)."""
    return name if name.startswith(IMAGE_PREFIX) else IMAGE_PREFIX + name


def _shape(arr: object) -> tuple[int, ...]:
    shape = getattr(arr, "shape", None)
    return tuple(int(d) for d in shape) if shape is not None else ()


def _is_uint8(arr: object) -> bool:
    dtype = getattr(arr, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype == torch.uint8
    return dtype is not None and np.dtype(dtype) == np.uint8


def check_frames(
    frames: Mapping[str, np.ndarray | torch.Tensor], spec: ObservationSpec, batched: bool
) -> None:
    """Raise :class:`RewardInputError` naming the key when a frame does not fit ``spec``."""
    missing = [k for k in spec.keys if k not in frames]
    if missing:
        have = sorted(k for k in frames if k == STATE_KEY or k.startswith(IMAGE_PREFIX))
        raise RewardInputError(
            f"the reward classifier needs {missing}, which the observation lacks "
            f"(it has {have}); train a classifier for these cameras or enable them"
        )
    lead = 1 if batched else 0
    for key, shape in spec.image_shapes:
        arr = frames[key]
        got = _shape(arr)[lead:]
        if got != shape:
            raise RewardInputError(
                f"{key} has image shape {got}, but the reward classifier was trained on "
                f"{shape} (H, W, C); crop / resize the camera as during training"
            )
        if not _is_uint8(arr):
            raise RewardInputError(f"{key} must be uint8 RGB, got {getattr(arr, 'dtype', None)}")
    if spec.state_dim:
        got = _shape(frames[STATE_KEY])[lead:]
        if got != (spec.state_dim,):
            raise RewardInputError(
                f"{STATE_KEY} has shape {got}, the reward classifier expects ({spec.state_dim},)"
            )


def prepare_inputs(
    frames: Mapping[str, np.ndarray | torch.Tensor],
    spec: ObservationSpec,
    device: torch.device | str,
    *,
    batched: bool = True,
) -> dict[str, torch.Tensor]:
    """Frames (``(N, ...)`` arrays, or one observation with ``batched=False``) -> model inputs.

    Images stay uint8 ``(N, H, W, 3)``; the state becomes float32 ``(N, D)``. Keys the
    classifier does not use are ignored.
    """
    check_frames(frames, spec, batched)
    out: dict[str, torch.Tensor] = {}
    for key in spec.image_keys:
        t = torch.as_tensor(frames[key], device=device)
        out[key] = t if batched else t.unsqueeze(0)
    if spec.state_dim:
        t = torch.as_tensor(frames[STATE_KEY], dtype=torch.float32, device=device)
        out[STATE_KEY] = t if batched else t.unsqueeze(0)
    return out
