"""The learner's fast paths against their references: torch's Adam driven on explicit
tensors, chunked UTD steps, bf16 weight freshness, the compiled update (one graph, the
same function as eager; guards that follow modes and hyperparameters) and the per-head
critic."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from learning_helpers import STATE, random_batch, tiny_encoder_cfg, tiny_sac_cfg, tiny_spec
from torch import nn

from hilrl.algorithms import cpu_memory, sac_step
from hilrl.algorithms.optim import (
    AdamFlags,
    adam_implementation,
    adam_state,
    adam_step,
    adam_tensors,
    clip_grads,
)
from hilrl.algorithms.sac import SAC, _slice_batch, compile_options
from hilrl.config.learner import COMPILE_MODES
from hilrl.policies.sac_policy import ActionSpec


@pytest.fixture
def aot_eager(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[torch.fx.GraphModule]]:
    """``torch.compile`` with the fast aot_eager backend, on a fresh dynamo cache; yields
    the graphs it compiles (one per compiled variant of the update)."""
    real: Callable[..., Any] = torch.compile
    graphs: list[torch.fx.GraphModule] = []

    def backend(gm: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Any:
        graphs.append(gm)
        return torch._dynamo.backends.debugging.aot_eager(gm, inputs)

    monkeypatch.setattr(torch, "compile", lambda fn, **_: real(fn, backend=backend, dynamic=False))
    torch._dynamo.reset()
    yield graphs
    torch._dynamo.reset()


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7), nn.LayerNorm(7), nn.ReLU(), nn.Linear(7, 2))


@pytest.mark.parametrize(
    "flags",
    [
        adam_implementation(torch.device("cpu"), compiled=False, fused=True),  # fused
        adam_implementation(torch.device("cpu"), compiled=False, fused=False),  # foreach
        adam_implementation(torch.device("cpu"), compiled=True, fused=True),  # per tensor
    ],
)
def test_adam_step_on_tensors_is_torch_adam_step(flags: AdamFlags) -> None:
    """``adam_step`` on explicit gradients is ``opt.step()`` bitwise, for each
    implementation a learner uses, with weight decay and an lr changed midway; the state
    it updates is the optimiser's own (a ``state_dict`` sees it)."""
    torch.manual_seed(0)
    ref = _net()
    net = copy.deepcopy(ref)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2, weight_decay=0.01, **flags._asdict())
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=0.01, **flags._asdict())
    params = list(net.parameters())
    tensors = adam_tensors(opt)
    for step in range(5):
        if step == 3:
            opt_ref.param_groups[0]["lr"] = opt.param_groups[0]["lr"] = 3e-3
        x = torch.randn(16, 5) * (10.0 if step % 2 else 0.1)  # clipping on odd steps only
        opt_ref.zero_grad(set_to_none=True)
        ref(x).pow(2).sum().backward()
        norm_ref = nn.utils.clip_grad_norm_(ref.parameters(), 1.0)
        opt_ref.step()
        grads = list(torch.autograd.grad(net(x).pow(2).sum(), params))
        norm = clip_grads(grads, 1.0)
        adam_step(adam_state(opt, tensors), grads)
        assert torch.allclose(norm_ref, norm, rtol=1e-6), step
        for a, b in zip(ref.parameters(), net.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-7), step
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.allclose(
                    opt_ref.state[a][key], opt.state[b][key], rtol=1e-6, atol=1e-9
                ), (step, key)
    assert norm_ref > 1.0  # the clipping branch was exercised
    assert int(opt.state_dict()["state"][0]["step"]) == 5


def test_clip_grads_off_reports_zero_and_leaves_gradients() -> None:
    grads = [torch.full((3,), 100.0)]
    assert float(clip_grads(grads, 0.0)) == 0.0 and torch.equal(grads[0], torch.full((3,), 100.0))
    assert float(clip_grads([], 1.0)) == 0.0


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


def test_actor_step_moves_only_the_actor_and_the_temperature() -> None:
    """The actor step differentiates through the critic (to the action) but trains only
    the actor and log alpha: critic, encoder, grasp critic and targets stay put."""
    spec = tiny_spec()
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(utd_ratio=1), tiny_encoder_cfg())
    sac.update(random_batch(spec, 8, 3))
    before = _params(sac)
    latents = sac.nets.encoder({STATE: torch.randn(8, 3), **_images(spec, 8)}).detach()
    with torch.no_grad():
        values = sac_step.actor_step(sac.model, sac._optimisers(), latents, sac.settings)
    assert values.shape == (len(sac_step.ACTOR_METRICS),) and torch.isfinite(values).all()
    moved = {k for k, v in sac._network_tensors().items() if not torch.equal(v, before[k])}
    actor = {k for k in before if k.startswith("nets.actor.")}
    assert moved <= actor | {"log_alpha"} and "log_alpha" in moved and moved & actor


def _images(spec: Any, rows: int) -> dict[str, torch.Tensor]:
    return {k: torch.randint(0, 256, (rows, *s), dtype=torch.uint8) for k, s in spec.image_shapes}


@pytest.mark.parametrize("compiled", [False, True])
def test_list_of_batches_skips_only_the_bad_one(
    aot_eager: list[torch.fx.GraphModule], compiled: bool
) -> None:
    """Also compiled, where a call with fewer good chunks or without the actor step is
    another specialisation of the one compiled update."""
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
    assert len(aot_eager) == (2 if compiled else 0)  # (1 chunk, no actor), (2 chunks, actor)


def _run(sac: SAC, batches: list[Any]) -> tuple[list[dict[str, float]], dict[str, torch.Tensor]]:
    metrics = [sac.update(b) for b in batches]
    tensors = sac.state_dict()["tensors"]
    assert isinstance(tensors, dict)
    return metrics, {k: v.clone() for k, v in tensors.items()}


def _assert_same_run(
    eager: tuple[list[dict[str, float]], dict[str, torch.Tensor]],
    compiled: tuple[list[dict[str, float]], dict[str, torch.Tensor]],
) -> None:
    """Metrics of every call, every network tensor and every optimiser moment agree."""
    (m_e, s_e), (m_c, s_c) = eager, compiled
    assert len(m_e) == len(m_c)
    for a, b in zip(m_e, m_c):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
    assert s_e.keys() == s_c.keys()
    for k in s_e:
        assert torch.allclose(s_e[k].float(), s_c[k].float(), rtol=1e-4, atol=1e-6), k


@pytest.mark.parametrize(
    ("backend", "redq"), [("aot_eager", False), ("aot_eager", True), ("inductor", False)]
)
def test_compiled_update_matches_eager(
    monkeypatch: pytest.MonkeyPatch, backend: str, redq: bool
) -> None:
    """``sac.compile`` compiles the very function the eager learner runs
    (:func:`sac_step.sac_update`: losses, torch.func gradients, clipping, torch's Adam,
    Polyak) into one graph per call variant, with no graph break. Traced with the fast
    aot_eager backend, and once through inductor's real code generation with the
    learner's own options (tiny networks keep it to seconds), it must agree with the
    eager learner: metrics, every network tensor and every optimiser moment. Sampling
    noise comes from torch's generator in both (inductor's ``fallback_random``), so the
    runs draw the same actions."""
    real: Callable[..., Any] = torch.compile
    compiled_fns: list[Any] = []
    graphs: list[torch.fx.GraphModule] = []
    options: dict[str, Any] = {}

    def count(gm: torch.fx.GraphModule, inputs: list[Any]) -> Any:
        graphs.append(gm)
        if backend == "inductor":
            with torch._inductor.config.patch(options):
                return torch._inductor.compile(gm, inputs)
        return torch._dynamo.backends.debugging.aot_eager(gm, inputs)

    def quick(fn: Callable[..., Any], **kwargs: Any) -> Any:
        compiled_fns.append(fn)
        options.update(kwargs.get("options", {}))
        return real(fn, backend=count, dynamic=False)

    monkeypatch.setattr(torch, "compile", quick)
    torch._dynamo.reset()
    spec = tiny_spec()
    batches = [random_batch(spec, 16, 3, seed=s) for s in range(3)]
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        cfg = tiny_sac_cfg(compile=compiled, num_critics=3, num_target_critics=2 if redq else None)
        runs[compiled] = _run(SAC(spec, ActionSpec(3, True), cfg, tiny_encoder_cfg()), batches)
    assert compiled_fns == [sac_step.sac_update]  # the eager learner's own function
    assert len(graphs) == 1  # every call has 2 chunks and the actor step: one graph
    _assert_same_run(runs[False], runs[True])
    torch._dynamo.reset()


def test_every_call_variant_gets_its_own_graph(aot_eager: list[torch.fx.GraphModule]) -> None:
    """A batch of another size or the call without the actor step gets (or reuses) its
    own graph, so a run mixing them matches the eager learner step for step."""
    spec = tiny_spec()
    sizes = [16, 16, 8, 16, 8]
    batches = [random_batch(spec, n, 3, seed=i) for i, n in enumerate(sizes)]
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        cfg = tiny_sac_cfg(compile=compiled, policy_update_freq=2)
        sac = SAC(spec, ActionSpec(3, True), cfg, tiny_encoder_cfg())
        runs[compiled] = _run(sac, batches)
        assert sac.critic_steps == 2 * len(sizes) and sac.actor_steps == 2
    _assert_same_run(runs[False], runs[True])
    # Calls (rows, actor step): (16, -), (16, A), (8, -), (16, A), (8, -): three variants.
    assert len(aot_eager) == 3


def test_compiled_update_follows_train_and_eval_mode(
    aot_eager: list[torch.fx.GraphModule],
) -> None:
    """Switching a module between train and eval mode after warm compiled calls changes
    what the compiled update computes, as it does eagerly: the mode is one of the
    compiled step's guards (a dropout layer in the actor makes the mode matter)."""
    spec = tiny_spec()
    batches = [random_batch(spec, 16, 3, seed=i) for i in range(6)]
    runs = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(compile=compiled), tiny_encoder_cfg())
        sac.nets.actor.trunk.append(nn.Dropout(0.5))  # no parameters: names unchanged
        metrics = [sac.update(b) for b in batches[:2]]
        sac.model.eval()
        metrics += [sac.update(b) for b in batches[2:4]]
        sac.model.train()
        metrics += [sac.update(b) for b in batches[4:]]
        tensors = sac.state_dict()["tensors"]
        assert isinstance(tensors, dict)
        runs[compiled] = (metrics, {k: v.clone() for k, v in tensors.items()})
    _assert_same_run(runs[False], runs[True])
    assert len(aot_eager) == 2  # train and eval: one graph each, the train one reused

    # And the mode matters: the same eval-mode calls in train mode give other results.
    torch.manual_seed(0)
    sac = SAC(spec, ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    sac.nets.actor.trunk.append(nn.Dropout(0.5))
    train_only = [sac.update(b) for b in batches[:4]]
    assert train_only[2]["actor_loss"] != runs[True][0][2]["actor_loss"]


@pytest.mark.parametrize("compiled", [False, True])
def test_an_lr_set_on_the_optimiser_takes_effect(
    aot_eager: list[torch.fx.GraphModule], compiled: bool
) -> None:
    """An lr changed on ``critic_opt.param_groups`` applies from the next call, also to
    warm compiled calls (lr 0 freezes the critic; the actor keeps learning)."""
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


def test_compiled_update_past_dynamos_recompile_limit_still_trains(
    aot_eager: list[torch.fx.GraphModule],
) -> None:
    """Learners share the compiled function's cache; past its limit dynamo runs the
    update eagerly, which must still work (the compiled learner's Adam implementation
    runs eagerly too)."""
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
            before = _params(sac)
            for _ in range(3):
                assert np.isfinite(sac.update(batch)["critic_loss"])
            assert sac.critic_steps == 6
            assert not torch.equal(
                before["critic.net.0.weight"], sac.critic.get_parameter("net.0.weight")
            )
    assert len(aot_eager) == 1  # the second learner ran eagerly


@pytest.mark.parametrize("mode", COMPILE_MODES)
def test_compile_options_are_inductor_options(mode: str) -> None:
    options = compile_options(mode, torch.device("cpu"))
    known = torch._inductor.config.get_config_copy()
    assert set(options) <= set(known), set(options) - set(known)
    assert options["fallback_random"] is True and options["size_asserts"] is False


def test_networks_have_no_compile_only_branches() -> None:
    """Layers and optimiser helpers compute the same way eager and compiled."""
    import inspect

    from hilrl.algorithms import optim
    from hilrl.policies import encoder, networks

    for module in (networks, encoder, optim, sac_step):
        assert "is_compiling" not in inspect.getsource(module), module.__name__


def test_retain_freed_memory_is_idempotent_and_not_a_learners_business(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The process-wide malloc setting is made by whoever calls it, never by a learner."""
    import platform

    first = cpu_memory.retain_freed_memory()
    assert cpu_memory.retain_freed_memory() == first
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first
    calls: list[str] = []
    monkeypatch.setattr(cpu_memory, "_done", False)
    monkeypatch.setattr(cpu_memory.ctypes, "CDLL", lambda name: calls.append(name))
    SAC(tiny_spec(), ActionSpec(3, True), tiny_sac_cfg(), tiny_encoder_cfg())
    assert calls == []
