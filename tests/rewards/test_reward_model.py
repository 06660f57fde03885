"""Gradients reach exactly the trainable parameters; a frozen backbone never changes;
save -> load gives the same outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from reward_helpers import STATE_DIM, synthetic_frame, tiny_model_cfg, tiny_train_cfg

from hilrl.config.learner import EncoderConfig
from hilrl.config.reward import RewardModelConfig
from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards.model import ClassifierMeta, RewardClassifier, load_classifier, save_classifier
from hilrl.rewards.preprocess import prepare_inputs
from hilrl.rewards.train import RewardTrainer
from hilrl.types import IMAGE_PREFIX, STATE_KEY

SIZE = 32


def _spec(size: int = SIZE, state: bool = False) -> ObservationSpec:
    shapes = tuple((IMAGE_PREFIX + c, (size, size, 3)) for c in ("front", "wrist"))
    return ObservationSpec(STATE_DIM if state else 0, shapes)


def _resnet_cfg(**kw: object) -> RewardModelConfig:
    enc = EncoderConfig(
        type="resnet10",
        pretrained=None,
        freeze_backbone=True,
        spatial_features=2,
        image_latent_dim=16,
        state_latent_dim=8,
    )
    return RewardModelConfig(encoder=enc, hidden_dims=(16,), dropout=0.0, **kw)  # type: ignore[arg-type]


def _batch(
    spec: ObservationSpec, n: int, seed: int = 0
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    frames = [synthetic_frame(rng, bool(y), spec.image_shapes[0][1][0]) for y in labels]
    stacked = {k: np.stack([f[k] for f in frames]) for k in frames[0]}
    return prepare_inputs(stacked, spec, "cpu"), torch.as_tensor(labels)


CONFIGS = {
    "small_cnn": lambda: tiny_model_cfg(),
    "small_cnn_state_multiclass": lambda: tiny_model_cfg(use_state=True, num_classes=3),
    "resnet10_frozen": lambda: _resnet_cfg(),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_one_step_gives_every_trainable_parameter_a_gradient(name: str) -> None:
    cfg = CONFIGS[name]()
    spec = _spec(state=cfg.use_state)
    torch.manual_seed(0)
    model = RewardClassifier(spec, cfg)
    trainer = RewardTrainer(
        model, tiny_train_cfg(), np.array([8, 8, 8][: cfg.num_classes]), torch.device("cpu")
    )
    inputs, labels = _batch(spec, 16)
    if cfg.num_classes == 3:
        labels = torch.arange(16) % 3
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.step(inputs, labels)
    for n, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{n} got no gradient"
            assert torch.count_nonzero(p.grad) > 0, f"{n} got an all-zero gradient"
            assert not torch.equal(p.detach(), trainable[n]), f"{n} did not change"
        else:
            assert p.grad is None, f"frozen {n} got a gradient"
            assert torch.equal(p.detach(), frozen[n]), f"frozen {n} changed"
    for n, b in model.named_buffers():
        assert torch.equal(b, buffers[n]), f"buffer {n} (e.g. BatchNorm statistics) changed"
    if name == "resnet10_frozen":
        assert frozen, "the resnet backbone should be frozen"
        assert model.encoder.backbone is not None
        assert all(not m.training for m in model.encoder.backbone.modules())
        assert model.head.training  # the rest of the model did train
        # spatial embeddings and projections train (the reference kept them frozen)
        assert any(n.startswith("encoder.cameras.") for n in trainable)
    else:
        assert not frozen


@pytest.mark.parametrize("name", list(CONFIGS))
def test_save_load_gives_identical_outputs(name: str, tmp_path: Path) -> None:
    cfg = CONFIGS[name]()
    spec = _spec(state=cfg.use_state)
    torch.manual_seed(1)
    model = RewardClassifier(spec, cfg)
    trainer = RewardTrainer(model, tiny_train_cfg(), np.ones(cfg.num_classes), torch.device("cpu"))
    inputs, labels = _batch(spec, 8)
    if cfg.num_classes == 3:
        labels = torch.arange(8) % 3
    trainer.step(inputs, labels)  # weights differ from any fresh initialisation
    model.eval()
    with torch.no_grad():
        before = model(inputs)
    meta = ClassifierMeta(spec=spec, model=cfg, threshold=0.37, metrics={"roc_auc": float("nan")})
    save_classifier(model, meta, tmp_path / "clf")
    torch.manual_seed(99)
    loaded, meta2 = load_classifier(tmp_path / "clf")
    with torch.no_grad():
        after = loaded(inputs)
    assert torch.equal(before, after)
    assert meta2.threshold == 0.37 and meta2.spec == spec and meta2.model == cfg
    assert meta2.class_names == cfg.names
    assert np.isnan(meta2.metrics["roc_auc"])
    assert not loaded.training


def test_load_rejects_tensors_of_another_model(tmp_path: Path) -> None:
    spec = _spec()
    model = RewardClassifier(spec, tiny_model_cfg())
    save_classifier(
        model, ClassifierMeta(spec=spec, model=tiny_model_cfg(), threshold=0.5), tmp_path
    )
    other = RewardClassifier(spec, tiny_model_cfg(hidden_dims=(8,)))
    save_classifier(
        other,
        ClassifierMeta(spec=spec, model=tiny_model_cfg(hidden_dims=(8,)), threshold=0.5),
        tmp_path / "o",
    )
    (tmp_path / "model.safetensors").write_bytes(
        (tmp_path / "o" / "model.safetensors").read_bytes()
    )
    with pytest.raises(ValueError, match="has shape"):
        load_classifier(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a reward classifier folder"):
        load_classifier(tmp_path / "nowhere")


def test_success_scores_follow_the_success_class() -> None:
    spec = _spec(state=True)
    x, _ = _batch(spec, 4)
    for success_class in (0, 1):
        torch.manual_seed(0)
        m = RewardClassifier(
            spec, tiny_model_cfg(use_state=True, success_class=success_class)
        ).eval()
        with torch.no_grad():
            logits = m(x)
            probs = m.probabilities(logits)
            assert torch.allclose(m.success_scores(logits), probs[:, success_class])
    assert STATE_KEY in x
