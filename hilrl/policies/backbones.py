"""Image backbones: HIL-SERL's ResNet-10 and a small CNN for CPU runs.

Both take float images in NCHW already normalised and return a feature map
``(N, C, h, w)``. The ResNet-10 follows torchvision's layout and parameter names
(``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.0.downsample.1``) so that weights
exported from a torchvision-style ResNet load by name. Weights are read from local
safetensors files only: a path, or a Hugging Face repo id resolved in the local cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

RESNET10_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet10(nn.Module):
    """ResNet-10: conv7x7/64 s2, BN, ReLU, maxpool, then one BasicBlock per stage."""

    def __init__(self, widths: tuple[int, ...] = RESNET10_WIDTHS) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch = widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            self.add_module(f"layer{i + 1}", nn.Sequential(BasicBlock(in_ch, width, stride)))
            in_ch = width
        self.out_channels = widths[-1]
        self.num_stages = len(widths)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


class SmallCNN(nn.Module):
    """A patchify conv then stride-2 3x3 convs, ReLU: cheap enough to train on a CPU.

    The first conv (kernel = stride = ``patch``) cuts the resolution 4x at once: on a
    128x128 image it costs ~0.4 MFLOP instead of ~7 for a stride-2 3x3 conv to 32
    channels, which dominated the CPU update time.
    """

    def __init__(self, channels: tuple[int, ...], patch: int = 4) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels[0], patch, patch), nn.ReLU(inplace=True)]
        in_ch = channels[0]
        for ch in channels[1:]:
            layers += [nn.Conv2d(in_ch, ch, 3, 2, 1), nn.ReLU(inplace=True)]
            in_ch = ch
        self.net = nn.Sequential(*layers)
        self.out_channels = in_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache folder (``HF_HUB_CACHE`` / ``HF_HOME`` respected)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache", "huggingface"
    )
    return Path(home) / "hub"


def resolve_weights_file(source: str) -> Path:
    """A local safetensors file for ``source``: a path, or a repo id in the HF cache.

    Never downloads: the learner and actor must run on machines without internet, and a
    silent download would make two processes load different weights.
    """
    path = Path(source).expanduser()
    if path.suffix == ".safetensors" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"encoder weights file not found: {path}")
        return path
    if source.count("/") != 1:
        raise FileNotFoundError(
            f"encoder.pretrained={source!r} is neither an existing file nor an 'org/name' repo id"
        )
    org, name = source.split("/")
    repo_dir = hf_cache_dir() / f"models--{org}--{name}" / "snapshots"
    found = sorted(repo_dir.glob("*/model.safetensors"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"encoder weights for repo {source!r} not in the local Hugging Face cache: "
            f"expected {repo_dir}/<revision>/model.safetensors (download it once with "
            "`huggingface-cli download` on a machine with internet; hilrl never downloads)"
        )
    return found[-1]


def load_backbone_weights(module: nn.Module, source: str) -> Path:
    """Load a backbone's parameters and BN statistics by name from ``source``.

    A common prefix such as ``backbone.`` or ``encoder.`` in the file is stripped; missing
    or mis-shaped tensors raise naming the tensor (no partial, silent loading).
    """
    path = resolve_weights_file(source)
    tensors = load_file(str(path))
    expected = module.state_dict()
    tensors = _strip_prefix(tensors, set(expected))
    missing = [k for k in expected if k not in tensors and not k.endswith("num_batches_tracked")]
    if missing:
        raise KeyError(f"{path}: missing backbone tensors {missing[:5]} (of {len(missing)})")
    for key, value in expected.items():
        if key in tensors and tuple(tensors[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{path}: tensor '{key}' has shape {tuple(tensors[key].shape)}, "
                f"the backbone expects {tuple(value.shape)}"
            )
    module.load_state_dict({k: tensors[k] for k in expected if k in tensors}, strict=False)
    return path


def _strip_prefix(tensors: dict[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    if any(k in wanted for k in tensors):
        return tensors
    for key in tensors:
        for target in wanted:
            if key.endswith("." + target):
                prefix = key[: -len(target)]
                return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    return tensors
