"""SAC losses against hand-computed oracles, update mechanics, and a learning check."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from learning_helpers import STATE, random_batch, tiny_encoder_cfg, tiny_sac_cfg, tiny_spec

from hilrl.algorithms import losses
from hilrl.algorithms.sac import SAC, resolve_precision
from hilrl.policies.networks import EnsembleLinear
from hilrl.policies.sac_policy import ActionSpec
from hilrl.types import Batch


def test_critic_target_bootstraps_truncations_and_stops_at_terminations() -> None:
    next_q = torch.tensor([[1.0, 5.0, 2.0], [3.0, 4.0, -1.0]])  # 2 heads x 3 rows
    log_prob = torch.tensor([0.5, -1.0, 0.0])
    rewards = torch.tensor([1.0, 0.0, 2.0])
    terminated = torch.tensor([0.0, 0.0, 1.0])  # row 1 may be a time-limit end: still bootstraps
    target = losses.critic_target(
        next_q, log_prob, rewards, terminated, 0.9, torch.tensor(0.1), backup_entropy=True
    )
    expected = [1.0 + 0.9 * (1.0 - 0.05), 0.0 + 0.9 * (4.0 + 0.1), 2.0]
    assert torch.allclose(target, torch.tensor(expected))
    plain = losses.critic_target(
        next_q,
        log_prob,
        rewards,
        terminated,
        torch.tensor([0.5, 0.25, 1.0]),
        torch.tensor(0.1),
        False,
    )
    assert torch.allclose(plain, torch.tensor([1.0 + 0.5 * 1.0, 0.25 * 4.0, 2.0]))


def test_grasp_critic_target_includes_penalty_and_uses_double_dqn() -> None:
    online = torch.tensor([[0.0, 1.0, 0.5], [2.0, 0.0, 0.0]])  # argmax: stay, close
    target_net = torch.tensor([[9.0, 3.0, 7.0], [4.0, 8.0, 8.0]])  # evaluates the online choice
    rewards = torch.tensor([1.0, 0.0])
    penalties = torch.tensor([-0.02, 0.0])
    terminated = torch.tensor([0.0, 0.0])
    target = losses.grasp_critic_target(online, target_net, rewards, penalties, terminated, 0.5)
    # by hand: row 0: 1 - 0.02 + 0.5 * 3 ; row 1: 0 + 0 + 0.5 * 4
    assert torch.allclose(target, torch.tensor([2.48, 2.0]))
    q = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    loss = losses.grasp_critic_loss(q, torch.tensor([2, 0]), target)
    assert torch.isclose(loss, ((3.0 - 2.48) ** 2 + (4.0 - 2.0) ** 2) / torch.tensor(2.0))


def test_actor_and_temperature_losses() -> None:
    log_prob = torch.tensor([-1.0, 0.0])
    q = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    assert torch.isclose(
        losses.actor_loss(log_prob, q, torch.tensor(0.5)),
        torch.tensor(((-0.5 - 2.0) + (0.0 - 1.0)) / 2),
    )
    log_alpha = torch.tensor(0.0, requires_grad=True)
    loss = losses.temperature_loss(log_alpha, log_prob, target_entropy=-2.0)
    loss.backward()
    # entropy 0.5 > target -2: the gradient must push alpha down (positive d loss / d log alpha)
    assert log_alpha.grad is not None and float(log_alpha.grad) > 0


def test_update_runs_utd_critic_steps_then_one_actor_step() -> None:
    spec = tiny_spec()
    sac = SAC(
        spec,
        ActionSpec(3, True),
        tiny_sac_cfg(utd_ratio=3, policy_update_freq=2),
        tiny_encoder_cfg(),
    )
    assert sac.temperature == pytest.approx(0.01)
    assert sac.target_entropy == -1.0  # -|A|/2 over the 2 continuous dims
    m1 = sac.update(random_batch(spec, 12, 3))
    assert (sac.critic_steps, sac.actor_steps) == (3, 0)  # freq 2: no actor step on call 1
    m2 = sac.update([random_batch(spec, 4, 3, seed=s) for s in range(2)])
    assert (sac.critic_steps, sac.actor_steps) == (5, 1)
    assert "actor_loss" not in m1 and "actor_loss" in m2
    assert all(isinstance(v, float) for v in m2.values())
    with pytest.raises(ValueError, match="multiple of utd_ratio"):
        sac.update(random_batch(spec, 10, 3))


def test_target_networks_follow_by_polyak_averaging() -> None:
    spec = tiny_spec(images=False)
    sac = SAC(spec, ActionSpec(2), tiny_sac_cfg(utd_ratio=1, tau=0.25), tiny_encoder_cfg())
    target_before = [p.clone() for p in sac.critic_target.parameters()]
    sac.update(random_batch(spec, 8, 2))
    for tb, t, online in zip(
        target_before, sac.critic_target.parameters(), sac.critic.parameters()
    ):
        assert torch.allclose(t, 0.75 * tb + 0.25 * online, atol=1e-6)


def test_non_finite_batch_is_skipped_and_counted() -> None:
    spec = tiny_spec()
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(utd_ratio=2), tiny_encoder_cfg())
    bad = random_batch(spec, 8, 3)
    bad.rewards[1] = float("nan")  # lands in the first UTD chunk only
    params = {k: v.clone() for k, v in sac._network_tensors().items()}
    m = sac.update(bad)
    assert m["skipped_batches"] == 1.0 and sac.skipped_batches == 1
    assert sac.critic_steps == 1  # the finite chunk still trains
    all_bad = random_batch(spec, 8, 3)
    all_bad.observations[STATE][0, 0] = float("inf")
    all_bad.next_observations[STATE][7, 0] = float("nan")
    before = {k: v.clone() for k, v in sac._network_tensors().items()}
    m = sac.update(all_bad)
    assert m["skipped_batches"] == 2.0 and m["skipped_batches_total"] == 3.0
    for k, v in sac._network_tensors().items():
        assert torch.equal(v, before[k]), k  # nothing moved
        assert torch.isfinite(v).all(), k
    assert any(not torch.equal(v, params[k]) for k, v in before.items())


def _constant_target_critics(sac: SAC, values: list[float]) -> None:
    """Make target critic head i output ``values[i]`` whatever its input."""
    last = sac.critic_target.net[-1]
    assert isinstance(last, EnsembleLinear)
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(values).view(-1, 1, 1))


def _target_probe(sac: SAC, rows: int, discount: torch.Tensor | None) -> Batch:
    """A batch whose TD target is ``discount * min(chosen target heads)``: no reward, no
    termination (and no entropy backup in the config)."""
    b = random_batch(tiny_spec(images=False), rows, 2)
    b = b._replace(rewards=torch.zeros(rows), terminated=torch.zeros(rows))
    return b if discount is None else b._replace(bootstrap_discount=discount)


def test_redq_target_is_the_min_over_a_random_subset_of_target_critics() -> None:
    """With N=5 target heads outputting 0, 10, 20, 30, 40 and M=2, each step's target is
    the smaller of two distinct random heads: 0, 10, 20 or 30 (40 never; with all five
    heads it would always be 0), each as often as the subsets give it."""
    spec = tiny_spec(images=False)
    cfg = tiny_sac_cfg(
        num_critics=5, num_target_critics=2, utd_ratio=1, backup_entropy=False, tau=1e-12
    )
    torch.manual_seed(0)
    sac = SAC(spec, ActionSpec(2), cfg, tiny_encoder_cfg())
    _constant_target_critics(sac, [0.0, 10.0, 20.0, 30.0, 40.0])
    gamma = 0.5
    seen = []
    for _ in range(200):
        m = sac.update(_target_probe(sac, 4, torch.full((4,), gamma)))
        seen.append(round(m["target_mean"] / gamma, 3))
    counts = {v: seen.count(v) for v in sorted(set(seen))}
    assert set(counts) == {0.0, 10.0, 20.0, 30.0}, counts
    # P(min = head k) = C(4 - k, 1) / C(5, 2): 0.4, 0.3, 0.2, 0.1
    for value, p in zip((0.0, 10.0, 20.0, 30.0), (0.4, 0.3, 0.2, 0.1)):
        assert abs(counts[value] / len(seen) - p) < 0.1, counts
    # Without REDQ the minimum is over all heads.
    full_cfg = dataclasses.replace(cfg, num_target_critics=None)
    full = SAC(spec, ActionSpec(2), full_cfg, tiny_encoder_cfg())
    _constant_target_critics(full, [0.0, 10.0, 20.0, 30.0, 40.0])
    for _ in range(5):
        m = full.update(_target_probe(full, 4, torch.full((4,), gamma)))
        assert m["target_mean"] == pytest.approx(0.0, abs=1e-6)


def test_bootstrap_discount_scales_the_target_as_gamma_to_the_k() -> None:
    """An n-step batch's per-row ``bootstrap_discount`` (gamma**k for a return that ended
    after k steps) multiplies that row's bootstrapped value; without it the config's
    one-step discount does, and an n-step config refuses a batch that lacks it."""
    spec = tiny_spec(images=False)
    cfg = tiny_sac_cfg(num_critics=3, utd_ratio=1, backup_entropy=False, tau=1e-12)
    sac = SAC(spec, ActionSpec(2), cfg, tiny_encoder_cfg())
    _constant_target_critics(sac, [6.0, 8.0, 9.0])  # min over the heads: 6
    gamma = 0.9
    k = torch.tensor([1.0, 2.0, 3.0, 3.0])
    m = sac.update(_target_probe(sac, 4, gamma**k))
    assert m["target_mean"] == pytest.approx(6.0 * float((gamma**k).mean()), rel=1e-6)
    m = sac.update(_target_probe(sac, 4, torch.full((4,), gamma**3)))
    assert m["target_mean"] == pytest.approx(6.0 * gamma**3, rel=1e-6)
    m = sac.update(_target_probe(sac, 4, None))
    assert m["target_mean"] == pytest.approx(6.0 * cfg.discount, rel=1e-6)
    n_step = SAC(spec, ActionSpec(2), tiny_sac_cfg(n_step=3, utd_ratio=1), tiny_encoder_cfg())
    with pytest.raises(ValueError, match="bootstrap_discount"):
        n_step.update(_target_probe(n_step, 4, None))


def _bandit_batch(rows: int, rng: np.random.Generator) -> Batch:
    """One-step task: state s in [-1, 1]; reward -(a0 - s/2)^2 + (1 if gripper opens) - penalty."""
    s = rng.uniform(-1, 1, (rows, 1)).astype(np.float32)
    a = rng.uniform(-1, 1, (rows, 2)).astype(np.float32)
    grip_open = a[:, 1] > 1 / 3
    grip_close = a[:, 1] < -1 / 3
    reward = -((a[:, 0] - s[:, 0] / 2) ** 2)
    penalty = np.where(grip_close, -0.5, 0.0).astype(np.float32)  # learned only through the penalty
    reward = reward + grip_open.astype(np.float32) * 0.3
    obs = {STATE: torch.from_numpy(s)}
    return Batch(
        obs,
        torch.from_numpy(a),
        torch.from_numpy(reward.astype(np.float32)),
        {STATE: torch.from_numpy(s)},
        torch.ones(rows),
        torch.from_numpy(penalty),
        torch.zeros(rows),
    )


def test_learns_a_one_step_task_with_a_known_optimum() -> None:
    torch.manual_seed(0)
    spec = tiny_spec(images=False, state_dim=1)
    cfg = tiny_sac_cfg(
        hidden_dims=(32, 32), utd_ratio=1, actor_lr=3e-3, critic_lr=3e-3, grasp_critic_lr=3e-3
    )
    sac = SAC(spec, ActionSpec(2, has_gripper=True), cfg, tiny_encoder_cfg(state_latent_dim=16))
    rng = np.random.default_rng(0)
    for _ in range(400):
        sac.update(_bandit_batch(64, rng))
    s = torch.linspace(-0.9, 0.9, 7).unsqueeze(1)
    with torch.no_grad():
        latents = sac.nets.encoder({STATE: s})
        best = sac.nets.actor.mode(latents)[:, 0]
        q_opt = sac.critic(latents, (s / 2)).mean(0)
        q_off = sac.critic(latents, (s / 2 + 0.8).clamp(-1, 1)).mean(0)
        grasp_q = sac.nets.grasp_critic(latents)  # type: ignore[misc]
    assert torch.allclose(best, s[:, 0] / 2, atol=0.15), best
    assert torch.all(q_opt > q_off)  # the critic ranks actions by the true reward
    assert torch.allclose(
        q_opt, torch.full_like(q_opt, 0.1), atol=0.1
    )  # r = 0 + E[open bonus] = 0.3 / 3
    # grasp critic: open is worth ~0.3 more than stay, close ~0.5 less (the penalty)
    gap_open = (grasp_q[:, 2] - grasp_q[:, 1]).mean()
    gap_close = (grasp_q[:, 0] - grasp_q[:, 1]).mean()
    assert abs(float(gap_open) - 0.3) < 0.1 and abs(float(gap_close) + 0.5) < 0.1
    assert torch.all(grasp_q.argmax(-1) == 2)


def test_bf16_autocast_trains_with_fp32_weights_and_metrics() -> None:
    spec = tiny_spec()
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(precision="bf16"), tiny_encoder_cfg())
    before = {k: v.clone() for k, v in sac._network_tensors().items()}
    m = sac.update(random_batch(spec, 8, 3))
    assert all(np.isfinite(v) for v in m.values())
    for k, v in sac._network_tensors().items():
        assert v.dtype == before[k].dtype, k  # master weights stay fp32
    assert not torch.equal(sac.critic.get_parameter("net.0.weight"), before["critic.net.0.weight"])


def test_auto_precision_picks_bf16_only_where_it_is_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_precision("auto", cpu) == "fp32"  # private probe gone: the safe choice
    sac = SAC(tiny_spec(), ActionSpec(3, True), tiny_sac_cfg(precision="auto"), tiny_encoder_cfg())
    assert sac.precision == "fp32" and not sac.settings.bf16
