"""Encoders, critic ensemble, actor distribution and actor-side weight loading."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from learning_helpers import CAM, STATE, random_batch, tiny_encoder_cfg, tiny_sac_cfg, tiny_spec
from safetensors.torch import save_file

from hilrl.algorithms.sac import SAC
from hilrl.policies.backbones import ResNet10, load_backbone_weights, resolve_weights_file
from hilrl.policies.encoder import ObservationEncoder, ObservationSpec
from hilrl.policies.networks import (
    CriticEnsemble,
    EnsembleLayerNorm,
    EnsembleLinear,
    TanhGaussianActor,
)
from hilrl.policies.sac_policy import BACKBONE_HASH_KEY, ActionSpec, SACPolicy


def test_ensemble_batched_equals_per_head_computation() -> None:
    torch.manual_seed(0)
    critic = CriticEnsemble(5, 2, (7, 6), num=4, act="relu", layer_norm=True)
    latents, actions = torch.randn(9, 5), torch.randn(9, 2)
    per_head = critic(latents, actions)
    critic.batched = True
    batched = critic(latents, actions)
    assert batched.shape == per_head.shape == (4, 9)
    assert torch.allclose(batched, per_head, atol=1e-5)
    x0 = torch.cat([latents, actions], -1)
    for head in range(4):
        x = x0
        for layer in critic.net:
            if isinstance(layer, EnsembleLinear):
                x = F.linear(x, layer.weight[head].T, layer.bias[head, 0])
            elif isinstance(layer, EnsembleLayerNorm):
                x = F.layer_norm(x, (layer.dim,), layer.weight[head, 0], layer.bias[head, 0])
            else:
                x = layer(x)
        assert torch.allclose(batched[head], x.squeeze(-1), atol=1e-5)
    # heads are initialised independently
    assert not torch.allclose(batched[0], batched[1])


def test_tanh_gaussian_log_prob_matches_change_of_variables() -> None:
    torch.manual_seed(1)
    actor = TanhGaussianActor(4, 3, (8,), "relu", -5.0, 2.0)
    latents = torch.randn(6, 4)
    torch.manual_seed(2)
    action, log_prob = actor.sample(latents)
    torch.manual_seed(2)
    mean, log_std = actor(latents)
    u = mean + log_std.exp() * torch.randn_like(mean)
    base = torch.distributions.Normal(mean, log_std.exp()).log_prob(u).sum(-1)
    expected = base - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    assert torch.allclose(action, torch.tanh(u), atol=1e-6)
    assert torch.allclose(log_prob, expected, atol=1e-4)
    assert torch.all(log_std >= -5.0) and torch.all(log_std <= 2.0)
    assert torch.allclose(actor.mode(latents), torch.tanh(mean))


def test_encoder_output_and_imagenet_normalisation() -> None:
    spec = tiny_spec()
    enc = ObservationEncoder(spec, tiny_encoder_cfg())
    batch = random_batch(spec, 5, 2)
    out = enc(batch.observations)
    assert out.shape == (5, enc.out_dim) == (5, 16)
    assert torch.all(out.abs() <= 1.0)  # tanh latents
    # an image equal to the ImageNet mean becomes all zeros before the backbone
    mean_img = (torch.tensor([0.485, 0.456, 0.406]) * 255).expand(1, 16, 16, 3)
    x = mean_img.permute(0, 3, 1, 2)
    assert torch.allclose((x - enc.mean) * enc.inv_std, torch.zeros_like(x), atol=1e-6)


def _resnet_weights(path: Path, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    net = ResNet10()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    weights = {f"backbone.{k}": v.clone() for k, v in net.state_dict().items()}
    save_file(weights, str(path))
    return {k.removeprefix("backbone."): v for k, v in weights.items()}


def test_resnet10_loads_local_file_and_hf_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _resnet_weights(tmp_path / "r10.safetensors", seed=3)
    net = ResNet10()
    load_backbone_weights(net, str(tmp_path / "r10.safetensors"))
    for k, v in net.state_dict().items():
        assert torch.equal(v, expected[k]), k
    snap = tmp_path / "hub" / "models--org--resnet10" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes((tmp_path / "r10.safetensors").read_bytes())
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_weights_file("org/resnet10") == snap / "model.safetensors"
    with pytest.raises(FileNotFoundError, match=r"models--org--missing"):
        resolve_weights_file("org/missing")
    with pytest.raises(FileNotFoundError, match=r"nothere\.safetensors"):
        resolve_weights_file(str(tmp_path / "nothere.safetensors"))
    save_file({"conv1.weight": torch.zeros(64, 3, 5, 5)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(KeyError, match="missing backbone tensors"):
        load_backbone_weights(ResNet10(), str(tmp_path / "bad.safetensors"))


@pytest.mark.parametrize("compiled", [False, True])
def test_frozen_resnet_stays_bitwise_unchanged_and_in_eval_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """Also through the compiled steps (traced with the fast aot_eager backend)."""
    real = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    _resnet_weights(tmp_path / "r10.safetensors", seed=4)
    spec = ObservationSpec(3, ((CAM, (16, 16, 3)),))
    enc_cfg = tiny_encoder_cfg(type="resnet10", pretrained=str(tmp_path / "r10.safetensors"))
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(compile=compiled), enc_cfg)
    backbone = sac.nets.encoder.backbone
    assert backbone is not None
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    assert all(not p.requires_grad for p in backbone.parameters())
    sac.nets.train()
    assert not backbone.training and all(not m.training for m in backbone.modules())
    head_before = sac.nets.encoder.cameras["front"].get_parameter("1.0.weight").clone()
    for i in range(3):
        sac.update(random_batch(spec, 8, 3, seed=i))
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k  # includes BN running stats and num_batches_tracked
    assert not backbone.training
    assert not torch.equal(
        sac.nets.encoder.cameras["front"].get_parameter("1.0.weight"), head_before
    )  # the head trains
    # the frozen pretrained backbone is not sent; its hash is, and a different one is refused
    weights = sac.policy_weights()
    assert not any(k.startswith("encoder.backbone.") for k in weights)
    policy = SACPolicy(spec, ActionSpec(3, True), enc_cfg, tiny_sac_cfg())
    policy.load_weights(weights, 1)
    _resnet_weights(tmp_path / "other.safetensors", seed=5)
    other = SACPolicy(
        spec,
        ActionSpec(3, True),
        tiny_encoder_cfg(type="resnet10", pretrained=str(tmp_path / "other.safetensors")),
        tiny_sac_cfg(),
    )
    with pytest.raises(ValueError, match=BACKBONE_HASH_KEY):
        other.load_weights(weights, 1)


def test_every_parameter_has_exactly_one_optimiser() -> None:
    spec = tiny_spec()
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    owners: dict[int, list[str]] = {}
    for name, opt in sac._optimizers().items():
        for group in opt.param_groups:
            for p in group["params"]:
                owners.setdefault(id(p), []).append(name)
    trainable = [p for m in (sac.nets, sac.critic) for p in m.parameters() if p.requires_grad] + [
        sac.log_alpha
    ]
    assert sorted(owners) == sorted(id(p) for p in trainable)
    assert all(len(v) == 1 for v in owners.values())
    encoder_ids = {id(p) for p in sac.nets.encoder.parameters()}
    assert all(owners[i] == ["critic"] for i in encoder_ids)


def test_policy_acts_and_loads_learner_weights() -> None:
    spec = tiny_spec()
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    sac.update(random_batch(spec, 8, 3))
    policy = SACPolicy(spec, ActionSpec(3, True), tiny_encoder_cfg(), tiny_sac_cfg())
    policy.load_weights(sac.policy_weights(), version=7)
    assert policy.version == 7
    obs: dict[str, np.ndarray] = {
        STATE: np.ones(3, np.float32),
        CAM: np.full((16, 16, 3), 100, np.uint8),
    }
    action = policy.act(obs, deterministic=True)
    assert action.shape == (3,) and action.dtype == np.float32
    assert action[-1] in (-1.0, 0.0, 1.0)  # gripper: a discrete choice
    batch = {STATE: torch.ones(1, 3), CAM: torch.full((1, 16, 16, 3), 100, dtype=torch.uint8)}
    with torch.no_grad():
        expected = sac.nets.act_batch(batch, deterministic=True)[0].numpy()
    assert np.allclose(action, expected, atol=1e-6)
    assert not np.allclose(policy.act(obs), policy.act(obs))  # stochastic mode samples


def test_policy_load_weights_names_the_mismatch() -> None:
    spec = tiny_spec()
    policy = SACPolicy(spec, ActionSpec(3, True), tiny_encoder_cfg(), tiny_sac_cfg())
    weights = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg()).policy_weights()
    bad = dict(weights)
    bad["actor.out.weight"] = np.zeros((5, 16), np.float32)
    with pytest.raises(ValueError, match=r"actor\.out\.weight.*\(5, 16\)"):
        policy.load_weights(bad, 1)
    missing = {k: v for k, v in weights.items() if k != "grasp_critic.out.bias"}
    with pytest.raises(KeyError, match=r"grasp_critic\.out\.bias"):
        policy.load_weights(missing, 1)
    nan = dict(weights)
    nan["actor.out.bias"] = np.full_like(weights["actor.out.bias"], math.nan)
    with pytest.raises(ValueError, match="NaN"):
        policy.load_weights(nan, 1)
    assert policy.version == 0  # nothing was loaded
    with pytest.raises(ValueError, match=r"observation\.state"):
        wrong: dict[str, np.ndarray] = {
            STATE: np.ones(4, np.float32),
            CAM: np.zeros((16, 16, 3), np.uint8),
        }
        policy.act(wrong)


def test_sac_does_what_the_learner_loop_asks_of_an_algorithm() -> None:
    """The Algorithm contract, exercised rather than matched by method names: ``update``
    returns finite float metrics and trains the policy; ``policy_weights`` load into the
    actor's policy, which then acts as the learner's networks do; ``state_dict`` restores
    a differently initialised learner to the same weights and architecture."""
    spec = tiny_spec()
    torch.manual_seed(0)
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    before = sac.policy_weights()
    metrics = sac.update(random_batch(spec, 8, 3))
    assert {"critic_loss", "actor_loss", "temperature"} <= set(metrics)
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
    weights = sac.policy_weights()
    assert weights.keys() == before.keys()
    assert not all(np.array_equal(weights[k], before[k]) for k in weights)
    policy = SACPolicy(spec, ActionSpec(3, True), tiny_encoder_cfg(), tiny_sac_cfg())
    policy.load_weights(weights, 1)
    obs: dict[str, np.ndarray] = {
        STATE: np.ones(3, np.float32),
        CAM: np.full((16, 16, 3), 9, np.uint8),
    }
    batch = {STATE: torch.ones(1, 3), CAM: torch.full((1, 16, 16, 3), 9, dtype=torch.uint8)}
    with torch.no_grad():
        expected = sac.nets.act_batch(batch, deterministic=True)[0].numpy()
    assert np.allclose(policy.act(obs, deterministic=True), expected, atol=1e-6)
    torch.manual_seed(1)
    other = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    other.load_state_dict(sac.state_dict())
    assert other.architecture() == sac.architecture()
    restored = other.policy_weights()
    assert all(np.array_equal(restored[k], weights[k]) for k in weights)
    assert other.critic_steps == sac.critic_steps == 2


def test_protocols_and_observation_spec() -> None:
    from hilrl.core import Policy

    spec = tiny_spec()
    assert isinstance(
        SACPolicy(spec, ActionSpec(3, True), tiny_encoder_cfg(), tiny_sac_cfg()), Policy
    )
    obs: dict[str, np.ndarray] = {
        STATE: np.zeros(3, np.float32),
        CAM: np.zeros((16, 16, 3), np.uint8),
    }
    assert ObservationSpec.from_observation(obs) == spec
    assert ObservationSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ValueError, match="uint8"):
        ObservationSpec.from_observation({CAM: np.zeros((16, 16, 3), np.float32)})
    with pytest.raises(ValueError, match="unknown observation key"):
        ObservationSpec.from_observation({"observation.depth": np.zeros(3)})
