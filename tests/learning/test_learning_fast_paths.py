"""The learner's fast paths against their references: optimiser kernels, chunked UTD
steps, bf16 weight freshness, the compiled loss path and the per-head critic."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from learning_helpers import STATE, random_batch, tiny_encoder_cfg, tiny_sac_cfg, tiny_spec
from torch import nn

from hilrl.algorithms.cpu_memory import retain_freed_memory
from hilrl.algorithms.optim import (
    adam_slots,
    adam_step,
    adam_update,
    clip_grads,
    drop_grads,
)
from hilrl.algorithms.sac import SAC, _slice_batch, compile_options
from hilrl.config.learner import COMPILE_MODES
from hilrl.policies.sac_policy import ActionSpec


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.ReLU(), nn.Linear(7, 2))


def test_adam_step_and_clip_are_bitwise_torch() -> None:
    torch.manual_seed(0)
    ref = _net()
    fast = copy.deepcopy(ref)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2, fused=True)
    opt_fast = torch.optim.Adam(fast.parameters(), lr=1e-2, fused=True)
    for step in range(4):
        x = torch.randn(16, 5) * (10.0 if step % 2 else 0.1)  # clipping on odd steps only
        opt_ref.zero_grad(set_to_none=True)
        ref(x).pow(2).sum().backward()
        norm_ref = nn.utils.clip_grad_norm_(ref.parameters(), 1.0, foreach=True)
        opt_ref.step()
        drop_grads(list(fast.parameters()))
        fast(x).pow(2).sum().backward()
        norm_fast = clip_grads([p.grad for p in fast.parameters() if p.grad is not None], 1.0)
        adam_step(opt_fast)
        assert torch.equal(norm_ref, norm_fast), step
        for a, b in zip(ref.parameters(), fast.parameters()):
            assert torch.equal(a, b), step
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(opt_ref.state[a][key], opt_fast.state[b][key]), (step, key)
    assert norm_ref > 1.0  # the clipping branch was exercised


def _params(sac: SAC) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in sac._network_tensors().items()}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_utd_chunks_equal_sequential_single_steps(precision: str) -> None:
    """A UTD-2 call is two critic steps in a row; the second sees the first's weights.

    (bf16: autocast caches each weight's bf16 copy until its context exits; a context
    around the whole call would run the second step on stale weights.)
    """
    spec = tiny_spec()
    action = ActionSpec(3, True)
    batch = random_batch(spec, 16, 3)
    kw: dict[str, Any] = {"precision": precision, "policy_update_freq": 100}
    torch.manual_seed(0)
    chunked = SAC(spec, action, tiny_sac_cfg(utd_ratio=2, **kw), tiny_encoder_cfg())
    torch.manual_seed(0)
    single = SAC(spec, action, tiny_sac_cfg(utd_ratio=1, **kw), tiny_encoder_cfg())
    torch.manual_seed(1)
    chunked.update(batch)
    torch.manual_seed(1)
    single.update(_slice_batch(batch, 0, 8))
    single.update(_slice_batch(batch, 8, 16))
    a, b = _params(chunked), _params(single)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_actor_step_leaves_critic_gradients_alone() -> None:
    spec = tiny_spec(images=False)
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(utd_ratio=1), tiny_encoder_cfg())
    sac.update(random_batch(spec, 8, 3))
    grads = [p.grad.clone() for p in sac.critic.parameters() if p.grad is not None]
    assert len(grads) == len(list(sac.critic.parameters()))
    actor_before = [p.clone() for p in sac.nets.actor.parameters()]
    latents = sac.nets.encoder({STATE: torch.randn(8, 3)}).detach()
    sac._actor_step(latents, [])
    for g, p in zip(grads, sac.critic.parameters()):
        assert p.grad is not None and torch.equal(g, p.grad)
    assert any(not torch.equal(a, p) for a, p in zip(actor_before, sac.nets.actor.parameters()))


@pytest.mark.parametrize("compiled", [False, True])
def test_list_of_batches_skips_only_the_bad_one(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """Also compiled (aot_eager), where a call with fewer good chunks or without the actor
    step is another specialisation of the one compiled update."""
    real: Callable[..., Any] = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    spec = tiny_spec()
    cfg = tiny_sac_cfg(utd_ratio=2, compile=compiled, policy_update_freq=2)
    sac = SAC(spec, ActionSpec(3, True), cfg, tiny_encoder_cfg())
    good, bad = random_batch(spec, 4, 3), random_batch(spec, 4, 3, seed=1)
    bad.next_observations[STATE][2, 1] = float("inf")
    m = sac.update([good, bad])
    assert m["skipped_batches"] == 1.0 and sac.critic_steps == 1 and sac.actor_steps == 0
    assert "actor_loss" not in m and np.isfinite(m["critic_loss"])
    m = sac.update([good, good])
    assert sac.critic_steps == 3 and sac.actor_steps == 1 and np.isfinite(m["actor_loss"])
    m = sac.update([bad, bad])
    assert m["skipped_batches"] == 2.0 and sac.critic_steps == 3 and "critic_loss" not in m
    for p in sac.critic.parameters():
        assert torch.isfinite(p).all()


@pytest.mark.parametrize(
    ("backend", "redq"), [("aot_eager", False), ("aot_eager", True), ("inductor", False)]
)
def test_compiled_steps_match_eager(
    monkeypatch: pytest.MonkeyPatch, backend: str, redq: bool
) -> None:
    """``sac.compile`` turns each whole step (losses, torch.func gradients, clipping, Adam,
    Polyak) into one graph. Traced with the fast aot_eager backend, and once through
    inductor's real code generation with the learner's own options (tiny networks keep it
    to seconds), it must agree with the eager autograd + fused-Adam steps: metrics, every
    network tensor and every optimiser moment. Sampling noise comes from torch's generator
    in both (inductor's ``fallback_random``), so the runs draw the same actions."""
    real: Callable[..., Any] = torch.compile
    compiled_fns: list[Any] = []

    def quick(fn: Callable[..., Any], **kwargs: Any) -> Any:
        compiled_fns.append(fn)
        if backend == "inductor":
            return real(fn, **kwargs)
        return real(fn, backend="aot_eager", dynamic=False)

    monkeypatch.setattr(torch, "compile", quick)
    spec = tiny_spec()
    batches = [random_batch(spec, 16, 3, seed=s) for s in range(3)]
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        cfg = tiny_sac_cfg(compile=compiled, num_critics=3, num_target_critics=2 if redq else None)
        sac = SAC(spec, ActionSpec(3, True), cfg, tiny_encoder_cfg())
        metrics = [sac.update(b) for b in batches]
        state = sac.state_dict()
        runs[compiled] = (metrics, _params(sac), state["tensors"])
    assert len(compiled_fns) == 1  # the whole update call
    (m_e, p_e, s_e), (m_c, p_c, s_c) = runs[False], runs[True]
    for a, b in zip(m_e, m_c):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    for k in p_e:
        assert torch.allclose(p_e[k], p_c[k], atol=1e-5), k
    assert s_e.keys() == s_c.keys()
    for k in s_e:
        if k.startswith("optim."):
            assert torch.allclose(s_e[k].float(), s_c[k].float(), rtol=1e-4, atol=1e-7), k


def test_compiled_update_with_a_new_batch_layout_is_not_a_warm_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Warm calls skip dynamo's guards; a batch of another size, a new discount or the
    call without the actor step must still get (or compile) their own graph, so a run
    mixing them matches the eager learner step for step."""
    real: Callable[..., Any] = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    spec = tiny_spec()
    sizes = [16, 16, 8, 16, 8]
    batches = [random_batch(spec, n, 3, seed=i) for i, n in enumerate(sizes)]
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        cfg = tiny_sac_cfg(compile=compiled, policy_update_freq=2)
        sac = SAC(spec, ActionSpec(3, True), cfg, tiny_encoder_cfg())
        runs[compiled] = [sac.update(b) for b in batches]
        assert sac.critic_steps == 2 * len(sizes) and sac.actor_steps == 2
    for a, b in zip(runs[False], runs[True]):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k


def test_compiled_update_past_dynamos_cache_limit_keeps_its_guards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Learners share one compiled function's cache; past its limit dynamo runs the
    update eagerly, and a warm call must then fall back to guarded calls, not fail."""
    real: Callable[..., Any] = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    torch._dynamo.reset()
    spec = tiny_spec()
    batch = random_batch(spec, 8, 3)
    learners = [
        SAC(
            spec,
            ActionSpec(3, True),
            tiny_sac_cfg(compile=True, hidden_dims=(h, h)),
            tiny_encoder_cfg(),
        )
        for h in (8, 16)
    ]
    with torch._dynamo.config.patch(recompile_limit=1):
        for sac in learners:
            for _ in range(3):
                assert np.isfinite(sac.update(batch)["critic_loss"])
            assert sac.critic_steps == 6
    assert learners[0]._skip_guards and not learners[1]._skip_guards
    torch._dynamo.reset()


@pytest.mark.parametrize("compiled", [False, True])
def test_an_lr_set_on_the_optimiser_takes_effect(
    monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """The compiled update bakes each lr into its graph and skips guards on warm calls:
    an lr changed on ``critic_opt.param_groups`` must still apply from the next call
    (lr 0 freezes the critic; the actor keeps learning)."""
    real: Callable[..., Any] = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    spec = tiny_spec()
    batch = random_batch(spec, 8, 3)
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(compile=compiled), tiny_encoder_cfg())
    for _ in range(2):
        sac.update(batch)
    sac.critic_opt.param_groups[0]["lr"] = 0.0
    critic = [p.detach().clone() for p in sac.critic.parameters()]
    actor = [p.detach().clone() for p in sac.nets.actor.parameters()]
    for _ in range(2):
        sac.update(batch)
    assert all(torch.equal(a, p) for a, p in zip(critic, sac.critic.parameters()))
    assert not all(torch.equal(a, p) for a, p in zip(actor, sac.nets.actor.parameters()))
    sac.critic_opt.param_groups[0]["lr"] = 1e-3  # and back: the critic moves again
    sac.update(batch)
    assert not all(torch.equal(a, p) for a, p in zip(critic, sac.critic.parameters()))


@pytest.mark.parametrize("mode", COMPILE_MODES)
def test_compile_options_are_inductor_options(mode: str) -> None:
    options = compile_options(mode, torch.device("cpu"))
    known = torch._inductor.config.get_config_copy()
    assert set(options) <= set(known), set(options) - set(known)
    assert options["fallback_random"] is True and options["size_asserts"] is False


def test_adam_update_matches_torch_adam() -> None:
    torch.manual_seed(0)
    ref = _net()
    fused = copy.deepcopy(ref)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=0.01)
    opt_new = torch.optim.Adam(fused.parameters(), lr=1e-2, weight_decay=0.01, fused=True)
    for step in range(5):
        x = torch.randn(16, 5) * (10.0 if step % 2 else 0.1)
        opt_ref.zero_grad(set_to_none=True)
        ref(x).pow(2).sum().backward()
        norm_ref = nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        opt_ref.step()
        params = list(fused.parameters())
        grads = list(torch.autograd.grad(fused(x).pow(2).sum(), params))
        norm = clip_grads(grads, 1.0)
        adam_update(adam_slots(opt_new), grads)
        assert torch.allclose(norm_ref, norm, rtol=1e-5), step
        for a, b in zip(ref.parameters(), fused.parameters()):
            assert torch.allclose(a, b, atol=1e-5), step
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.allclose(
                    opt_ref.state[a][key], opt_new.state[b][key], rtol=1e-4, atol=1e-7
                )
    # The state it keeps is the optimiser's own: a checkpoint round trip sees it.
    assert int(opt_new.state_dict()["state"][0]["step"]) == 5


def test_retain_freed_memory_is_idempotent_on_glibc() -> None:
    first = retain_freed_memory()
    assert retain_freed_memory() == first
    import platform

    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first
