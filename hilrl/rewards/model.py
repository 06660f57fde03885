"""The reward classifier network and its on-disk form (safetensors weights + JSON metadata).

Network: the shared :class:`~hilrl.policies.encoder.ObservationEncoder` (backbone,
learned spatial embedding, Linear -> LayerNorm -> tanh per camera; a frozen pretrained
backbone stays in eval mode) and an MLP head giving one logit (binary) or one per class.
Unlike the reference implementation, the spatial embeddings and projections train too:
they are the part that adapts a frozen backbone's features to the task.

A saved classifier is a folder::

    model.safetensors          every tensor, the frozen backbone included
    reward_classifier.json     config, cameras and image sizes, preprocessing, threshold,
                               class names, validation metrics

Loading never unpickles anything and needs no pretrained-weights file (the backbone's
tensors are in ``model.safetensors``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from hilrl.config.loader import ConfigError, build, to_dict
from hilrl.config.reward import RewardModelConfig
from hilrl.fsutil import atomic_write_bytes, atomic_write_json
from hilrl.policies.encoder import ObservationEncoder, ObservationSpec
from hilrl.rewards.preprocess import PREPROCESSING

WEIGHTS_FILE = "model.safetensors"
META_FILE = "reward_classifier.json"
FORMAT = "hilrl.reward_classifier/1"


class RewardClassifier(nn.Module):
    """Observation batch (uint8 images, float state) -> logits ``(B,)`` or ``(B, K)``."""

    def __init__(self, spec: ObservationSpec, cfg: RewardModelConfig) -> None:
        super().__init__()
        self.spec = spec
        self.cfg = cfg
        self.encoder = ObservationEncoder(spec, cfg.encoder)
        layers: list[nn.Module] = []
        in_dim = self.encoder.out_dim
        for width in cfg.hidden_dims:
            layers += [nn.Linear(in_dim, width), nn.ReLU()]
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
            in_dim = width
        self.binary = cfg.num_classes == 2
        layers.append(nn.Linear(in_dim, 1 if self.binary else cfg.num_classes))
        self.head = nn.Sequential(*layers)

    def train(self, mode: bool = True) -> RewardClassifier:
        super().train(mode)
        self.encoder.train(mode)  # keeps a frozen backbone in eval mode
        return self

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.encoder(inputs))
        return logits.squeeze(-1) if self.binary else logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(B, K)`` (K = 2 for binary: failure, success)."""
        if self.binary:
            p = torch.sigmoid(logits)
            return torch.stack([1.0 - p, p], dim=-1)
        return torch.softmax(logits, dim=-1)

    def success_scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Probability of the success class, ``(B,)``."""
        if self.binary:
            p = torch.sigmoid(logits)
            return p if self.cfg.success_index == 1 else 1.0 - p
        return torch.softmax(logits, dim=-1)[..., self.cfg.success_index]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


@dataclass
class ClassifierMeta:
    """Everything besides the weights that inference needs, and what training found."""

    spec: ObservationSpec
    model: RewardModelConfig
    threshold: float
    """Success when the success probability is >= threshold (calibrated on validation)."""
    threshold_metric: str = "f1"
    metrics: dict[str, float] = field(default_factory=dict)
    """Validation metrics at the threshold."""
    dataset: str = ""
    label_key: str = "next.reward"
    label_offset: int = 0

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.names

    @property
    def cameras(self) -> tuple[str, ...]:
        return self.spec.image_keys

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "observation": self.spec.to_json(),
            "cameras": list(self.cameras),
            "image_sizes": {k: list(s) for k, s in self.spec.image_shapes},
            "preprocessing": dict(PREPROCESSING),
            "class_names": list(self.class_names),
            "success_class": self.model.success_index,
            "threshold": self.threshold,
            "threshold_metric": self.threshold_metric,
            "metrics": {k: (None if v != v else v) for k, v in self.metrics.items()},
            "dataset": self.dataset,
            "label_key": self.label_key,
            "label_offset": self.label_offset,
            "model": to_dict(self.model),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str) -> ClassifierMeta:
        if data.get("format") != FORMAT:
            raise ValueError(
                f"{source}: not a hilrl reward classifier (format {data.get('format')!r})"
            )
        try:
            model = build(RewardModelConfig, data["model"], prefix="model")
            spec = ObservationSpec.from_json(data["observation"])
            threshold = float(data["threshold"])
        except (KeyError, TypeError, AssertionError, ConfigError) as exc:
            raise ValueError(f"{source}: bad reward classifier metadata ({exc})") from exc
        metrics = {
            k: float("nan") if v is None else float(v) for k, v in data.get("metrics", {}).items()
        }
        return cls(
            spec=spec,
            model=model,
            threshold=threshold,
            threshold_metric=str(data.get("threshold_metric", "f1")),
            metrics=metrics,
            dataset=str(data.get("dataset", "")),
            label_key=str(data.get("label_key", "next.reward")),
            label_offset=int(data.get("label_offset", 0)),
        )


def save_classifier(model: RewardClassifier, meta: ClassifierMeta, folder: str | Path) -> Path:
    """Write weights and metadata into ``folder`` (created); each file appears atomically."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write_bytes(out / WEIGHTS_FILE, save(tensors, metadata={"format": FORMAT}))
    atomic_write_json(out / META_FILE, meta.to_json(), indent=2)
    return out


def load_classifier(
    folder: str | Path, device: torch.device | str = "cpu"
) -> tuple[RewardClassifier, ClassifierMeta]:
    """The saved classifier in eval mode on ``device``, and its metadata."""
    root = Path(folder).expanduser()
    meta_path, weights_path = root / META_FILE, root / WEIGHTS_FILE
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {root} is not a reward classifier folder "
                f"(hilrl train-reward writes {META_FILE} and {WEIGHTS_FILE})"
            )
    try:
        data = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: cannot parse JSON ({exc})") from exc
    meta = ClassifierMeta.from_json(data, str(meta_path))
    # The backbone's tensors are in the weights file: do not look for pretrained ones.
    model_cfg = replace(meta.model, encoder=replace(meta.model.encoder, pretrained=None))
    model = RewardClassifier(meta.spec, model_cfg)
    model.cfg = meta.model
    tensors = load_file(str(weights_path))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"{weights_path}: tensors do not match the model of {meta_path} "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    for key, value in expected.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise ValueError(
                f"{weights_path}: tensor '{key}' has shape {tuple(tensors[key].shape)}, "
                f"the model expects {tuple(value.shape)}"
            )
    model.load_state_dict(tensors)
    model.to(device)
    model.eval()
    return model, meta
