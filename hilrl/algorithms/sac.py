"""Soft actor-critic with the HIL-SERL recipe (RLPD-style), as an :class:`Algorithm`.

One ``update(batch)`` call::

    for each of the utd_ratio chunks of the batch (non-finite chunks are skipped):
        latents  = encoder(obs)            (gradients: critic optimiser owns the encoder)
        latents' = encoder(next_obs)       (no gradients)
        critic step      (target: min over M of N target critics, entropy backup)
        grasp step       (double DQN on detached latents; reward + gripper penalty)
        polyak update of the target critics / target grasp critic
    every policy_update_freq calls: actor step + temperature step on the last chunk's
    detached latents (DrQ: the actor never moves the encoder)

Each step is one forward pass (a small function per loss) and one backward pass for
losses whose parameter sets are disjoint (critic + grasp critic; actor + temperature).
Eager steps use autograd and torch's fused Adam (:mod:`hilrl.algorithms.optim`). With
``sac.compile`` the whole call (each step's loss functions run through ``torch.func``
gradients, then clipping, Adam written as tensor ops, and the Polyak update; every critic
step and the actor step) is one compiled graph: on a CPU that removes most per-op
dispatch (state obs, two threads, bf16: ~290 vs ~135 critic steps/s eager), on a GPU
most kernel launches.
Metrics are accumulated as tensors and turned into floats once per call, so the GPU
is never synchronised per step. The module does no logging.

CPU cost at batch 256, UTD 2, hidden (256, 256), state observations (one thread): ~1.5
GFLOP of matmuls per call, i.e. ~7.5 ms at the ~195 GFLOP/s fp32 peak of one AVX-512
core, so fp32 caps out near 270 critic steps/s before any elementwise work; with tiny
layers the dispatch, autograd and optimiser bookkeeping alone cost ~2.5 ms per step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from hilrl.algorithms import losses
from hilrl.algorithms.cpu_memory import retain_freed_memory
from hilrl.algorithms.optim import (
    AdamSlots,
    adam_slots,
    adam_step,
    adam_update,
    clip_grads,
    drop_grads,
)
from hilrl.algorithms.state import (
    TensorState,
    load_module_tensors,
    load_optimizer_tensors,
    module_tensors,
    optimizer_tensors,
)
from hilrl.config.learner import EncoderConfig, SACConfig
from hilrl.config.loader import to_dict
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.networks import CriticEnsemble, gripper_index_torch
from hilrl.policies.sac_policy import ActionSpec, PolicyNetworks, policy_weights
from hilrl.types import Batch

CRITIC_METRICS = ("critic_loss", "q_mean", "target_mean", "critic_grad_norm")
GRASP_METRICS = ("grasp_critic_loss", "grasp_q_mean", "grasp_grad_norm")
ACTOR_METRICS = ("actor_loss", "actor_grad_norm", "entropy", "temperature_loss", "temperature")


class ChunkLosses(NamedTuple):
    """What the forward pass of one critic step yields (losses carry gradients)."""

    latents: torch.Tensor
    critic_loss: torch.Tensor
    q_mean: torch.Tensor
    target_mean: torch.Tensor
    grasp_loss: torch.Tensor | None
    grasp_q_mean: torch.Tensor | None


class ActorLosses(NamedTuple):
    actor_loss: torch.Tensor
    temperature_loss: torch.Tensor
    entropy: torch.Tensor


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' -> 'bf16' where bf16 matmuls are fast (CUDA with bf16, a CPU with AMX tiles),
    else 'fp32'; 'fp32' and 'bf16' stay as they are."""
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
    per step on a CPU. ``size_asserts``/``alignment_asserts`` off: the wrapper otherwise
    checks every input and intermediate buffer in Python on each call (~0.2 ms); the
    inputs here are the learner's own tensors, built once. On a CPU, ``cpp_wrapper``:
    the graph's ~500 buffer and kernel calls run from C++ instead of Python (state obs:
    ~+6% updates/s; a few seconds more of compiling).
    """
    options: dict[str, Any] = dict(torch._inductor.list_mode_options(mode))
    options.update(fallback_random=True, size_asserts=False, alignment_asserts=False)
    if device.type == "cpu":
        options["cpp_wrapper"] = True
    return options


class SAC:
    """SAC learner: networks, target networks, optimisers, temperature, counters."""

    def __init__(
        self,
        obs_spec: ObservationSpec,
        action_spec: ActionSpec,
        cfg: SACConfig | None = None,
        encoder_cfg: EncoderConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.cfg = cfg = cfg or SACConfig()
        self.encoder_cfg = encoder_cfg = encoder_cfg or EncoderConfig()
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.obs_spec = obs_spec
        self.action_spec = action_spec
        self.precision = resolve_precision(cfg.precision, self.device)
        """'fp32' or 'bf16': what ``sac.precision`` means on this device."""
        self.nets = PolicyNetworks(obs_spec, action_spec, encoder_cfg, cfg).to(self.device)
        self.cont_dim = self.nets.continuous_dim
        latent = self.nets.encoder.out_dim
        hidden = tuple(cfg.hidden_dims)
        self.critic = CriticEnsemble(
            latent, self.cont_dim, hidden, cfg.num_critics, cfg.activation, cfg.critic_layer_norm
        ).to(self.device)
        self.critic.batched = cfg.compile
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.grasp_target = None
        if self.nets.grasp_critic is not None:
            self.grasp_target = copy.deepcopy(self.nets.grasp_critic).requires_grad_(False)
        self.log_alpha = nn.Parameter(
            torch.tensor(math.log(cfg.initial_temperature), device=self.device)
        )
        self.target_entropy = (
            cfg.target_entropy if cfg.target_entropy is not None else -self.cont_dim / 2.0
        )
        self.num_target = cfg.num_target_critics or cfg.num_critics

        # Each parameter belongs to exactly one optimiser (reference defect 6): the critic
        # optimiser owns the shared encoder; actor and grasp critic see detached latents.
        self._critic_params = self.nets.encoder.trainable_parameters() + list(
            self.critic.parameters()
        )
        self._actor_params = list(self.nets.actor.parameters())
        self._grasp_params = (
            list(self.nets.grasp_critic.parameters()) if self.nets.grasp_critic else []
        )
        self.critic_opt = self._adam(self._critic_params, cfg.critic_lr)
        self.actor_opt = self._adam(self._actor_params, cfg.actor_lr)
        self.temperature_opt = self._adam([self.log_alpha], cfg.temperature_lr)
        self.grasp_opt = (
            self._adam(self._grasp_params, cfg.grasp_critic_lr) if self._grasp_params else None
        )
        self._targets: list[torch.Tensor] = list(self.critic_target.parameters())
        self._sources: list[torch.Tensor] = list(self.critic.parameters())
        if self.grasp_target is not None:
            self._targets += list(self.grasp_target.parameters())
            self._sources += self._grasp_params

        # Where the Polyak sources sit among the critic optimiser's parameters.
        critic_pos = {id(p): i for i, p in enumerate(self._critic_params)}
        self._critic_source_index = [critic_pos[id(p)] for p in self.critic.parameters()]
        # With sac.compile each whole step (forward, gradients, clipping, Adam, Polyak)
        # becomes one compiled graph; eager steps use autograd and torch's fused Adam.
        self._bundle = _Bundle(nets=self.nets, critic=self.critic)
        names = {id(p): n for n, p in self._bundle.named_parameters()}
        self._critic_names = [names[id(p)] for p in self._critic_params]
        self._grasp_names = [names[id(p)] for p in self._grasp_params]
        self._actor_names = [names[id(p)] for p in self._actor_params]
        # Detached aliases of every network parameter (they only change in place, also on
        # restore): what the compiled update reads, each storage as one graph input.
        self._param_data = {n: p.detach() for n, p in self._bundle.named_parameters()}
        self._slot_cache: dict[str, AdamSlots] | None = None
        self._slot_hyper: tuple[tuple[object, ...], ...] = ()
        self._fused_update_fn: Callable[..., Any] | None = None
        self._compiled_signatures: set[tuple[object, ...]] = set()
        self._skip_guards = True
        if cfg.compile:
            self._fused_update_fn = self._compiled(self._fused_update)
        if self.device.type == "cpu" and cfg.retain_freed_memory:
            retain_freed_memory()

        self.update_calls = 0
        self.critic_steps = 0
        self.actor_steps = 0
        self.skipped_batches = 0
        self.nets.train()
        self.critic.train()

    def _adam(self, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
        fused = self.cfg.fused_optimizer and self.device.type in ("cpu", "cuda")
        if fused:
            return torch.optim.Adam(params, lr=lr, fused=True)
        return torch.optim.Adam(params, lr=lr, foreach=True)

    def _compiled(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        if not self.cfg.compile:
            return fn
        options = compile_options(self.cfg.compile_mode, self.device)
        return torch.compile(fn, dynamic=False, options=options)  # type: ignore[no-any-return]

    def _hyperparameters(self) -> tuple[tuple[object, ...], ...]:
        """Each optimiser's lr, betas, eps and weight decay, as they are now."""
        return tuple(
            tuple(opt.param_groups[0][k] for k in ("lr", "betas", "eps", "weight_decay"))
            for opt in self._optimizers().values()
        )

    def _slots(self) -> dict[str, AdamSlots]:
        """Each optimiser's state as :class:`AdamSlots` (cached; a restore or a changed
        hyperparameter, e.g. an lr set on ``critic_opt.param_groups``, rebuilds it).

        Their parameter lists are the tensors of ``_param_data`` (log alpha: its own
        detached alias), so the compiled update sees each parameter as one input.
        """
        hyper = self._hyperparameters()
        if self._slot_cache is None or self._slot_hyper != hyper:
            self._slot_hyper = hyper
            alias = {id(p): self._param_data[n] for n, p in self._bundle.named_parameters()}
            cache = {}
            for name, opt in self._optimizers().items():
                slots = adam_slots(opt)
                own = [
                    alias.get(id(p), d) for p, d in zip(opt.param_groups[0]["params"], slots.params)
                ]
                cache[name] = slots._replace(params=own)
            self._slot_cache = cache
        return self._slot_cache

    @property
    def temperature(self) -> float:
        return float(self.log_alpha.detach().exp())

    # ------------------------------------------------------------------ update

    def update(self, batch: object) -> dict[str, float]:
        """utd_ratio critic steps, then (every policy_update_freq calls) one actor step.

        ``batch``: one batch of ``utd_ratio x B`` rows (split into utd_ratio chunks) or a
        sequence of batches (one critic step each).
        """
        chunks = self._chunks(batch)
        finite = self._finite_flags(batch, chunks)
        good = [chunk for chunk, ok in zip(chunks, finite) if ok]
        skipped = len(chunks) - len(good)
        self.skipped_batches += skipped
        self.update_calls += 1
        actor = bool(good) and self.update_calls % self.cfg.policy_update_freq == 0
        acc: list[tuple[tuple[str, ...], torch.Tensor]] = []
        if self._fused_update_fn is not None:
            if good:
                self._run_compiled_update(good, actor, acc)
        else:
            latents = None
            for chunk in good:
                latents = self._critic_step(chunk, acc)
            if actor:
                assert latents is not None
                self._actor_step(latents.detach(), acc)
        metrics = _reduce(acc)
        metrics["skipped_batches"] = float(skipped)
        metrics["skipped_batches_total"] = float(self.skipped_batches)
        metrics["temperature"] = metrics.get("temperature", self.temperature)
        return metrics

    def _autocast(self) -> torch.autocast:
        """bf16 autocast when configured: matmuls/convs in bf16, the rest in fp32.

        Entered once per loss computation, never around an optimiser step: autocast
        caches the bf16 copy of each weight until its outermost context exits, so a
        context spanning two steps would run the second one on stale weights.
        """
        return torch.autocast(
            self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"
        )

    def _chunks(self, batch: object) -> list[Any]:
        if isinstance(batch, Sequence) and not isinstance(batch, tuple):
            return list(batch)
        rows = int(batch.actions.shape[0])  # type: ignore[attr-defined]
        n = self.cfg.utd_ratio
        if rows % n:
            raise ValueError(f"batch has {rows} rows, not a multiple of utd_ratio={n}")
        if n == 1:
            return [batch]
        size = rows // n
        return [_slice_batch(batch, i * size, (i + 1) * size) for i in range(n)]

    def _finite_flags(self, batch: object, chunks: list[Any]) -> list[bool]:
        """Per chunk: are all float inputs finite? One host sync for the whole call.

        A single batch is checked whole (rows viewed as ``chunks x rows/chunk``), which
        costs two ops per field instead of two per field and chunk.
        """
        if isinstance(batch, Sequence) and not isinstance(batch, tuple):
            flags = torch.cat([_finite_rows(c, 1) for c in chunks])
        else:
            flags = _finite_rows(batch, len(chunks))
        return [bool(f) for f in flags.cpu().tolist()]

    def _discount(self, b: Any) -> torch.Tensor | float:
        disc = getattr(b, "bootstrap_discount", None)
        if disc is not None:
            return disc  # type: ignore[no-any-return]
        if self.cfg.n_step > 1:
            raise ValueError(
                f"sac.n_step={self.cfg.n_step} needs batches with bootstrap_discount (sample with n_step)"
            )
        return self.cfg.discount

    def _target_subset(self) -> torch.Tensor | None:
        """REDQ: indices of the M target critics whose minimum makes this step's target."""
        if self.num_target >= self.cfg.num_critics:
            return None
        return torch.randperm(self.cfg.num_critics)[: self.num_target].to(self.device)

    def _critic_step(
        self, b: Batch, acc: list[tuple[tuple[str, ...], torch.Tensor]]
    ) -> torch.Tensor:
        """One optimisation step of the critic ensemble + encoder and of the grasp critic.

        Both losses come out of one forward pass and go back in one backward pass: their
        parameters are disjoint (the grasp critic reads detached latents), so each
        optimiser receives exactly the gradient of its own loss.
        """
        out = self._chunk_losses(b, self._discount(b), self._target_subset(), self.log_alpha)
        drop_grads(self._critic_params)
        drop_grads(self._grasp_params)
        total = out.critic_loss if out.grasp_loss is None else out.critic_loss + out.grasp_loss
        total.backward()
        gnorm = self._clip(_grads(self._critic_params))
        adam_step(self.critic_opt)
        values = [out.critic_loss.detach(), out.q_mean, out.target_mean, gnorm]
        names: tuple[str, ...] = CRITIC_METRICS
        if self.grasp_opt is not None and out.grasp_loss is not None:
            assert out.grasp_q_mean is not None
            grasp_gnorm = self._clip(_grads(self._grasp_params))
            adam_step(self.grasp_opt)
            values += [out.grasp_loss.detach(), out.grasp_q_mean, grasp_gnorm]
            names = CRITIC_METRICS + GRASP_METRICS
        acc.append((names, torch.stack(values).float()))
        torch._foreach_lerp_(self._targets, self._sources, self.cfg.tau)
        self.critic_steps += 1
        return out.latents

    def _chunk_losses(
        self,
        b: Batch,
        discount: torch.Tensor | float,
        subset: torch.Tensor | None,
        log_alpha: torch.Tensor,
    ) -> ChunkLosses:
        """Forward pass of one critic step: encoder, TD target, critic and grasp losses."""
        with self._autocast():
            latents, next_latents = self.nets.encoder.forward_pair(
                b.observations, b.next_observations
            )
            with torch.no_grad():
                target = self._td_target(b, next_latents, discount, subset, log_alpha)
            q = self.critic(latents, b.actions[:, : self.cont_dim]).float()
            grasp_loss = grasp_q_mean = None
            if self.nets.grasp_critic is not None:
                grasp_loss, grasp_q_mean = self._grasp_loss(
                    b, latents.detach(), next_latents, discount
                )
        return ChunkLosses(
            latents,
            losses.critic_loss(q, target),
            q.detach().mean(),
            target.mean(),
            grasp_loss,
            grasp_q_mean,
        )

    def _td_target(
        self,
        b: Batch,
        next_latents: torch.Tensor,
        discount: torch.Tensor | float,
        subset: torch.Tensor | None,
        log_alpha: torch.Tensor,
    ) -> torch.Tensor:
        """Soft TD target from the target critics and a fresh action of the current actor."""
        next_actions, next_log_prob = self.nets.actor.sample(next_latents)
        next_q = self.critic_target(next_latents, next_actions).float()
        if subset is not None:
            next_q = next_q.index_select(0, subset)
        alpha = log_alpha.detach().exp()
        return losses.critic_target(
            next_q,
            next_log_prob,
            b.rewards,
            b.terminated,
            discount,
            alpha,
            self.cfg.backup_entropy,
        )

    def _grasp_loss(
        self,
        b: Batch,
        latents: torch.Tensor,
        next_latents: torch.Tensor,
        discount: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Double-DQN loss of the grasp critic on detached latents, and its mean Q."""
        assert self.nets.grasp_critic is not None and self.grasp_target is not None
        with torch.no_grad():
            target = losses.grasp_critic_target(
                self.nets.grasp_critic(next_latents).float(),
                self.grasp_target(next_latents).float(),
                b.rewards,
                b.discrete_penalties,
                b.terminated,
                discount,
            )
        q = self.nets.grasp_critic(latents).float()
        loss = losses.grasp_critic_loss(q, gripper_index_torch(b.actions[:, -1]), target)
        return loss, q.detach().mean()

    def _actor_step(
        self, latents: torch.Tensor, acc: list[tuple[tuple[str, ...], torch.Tensor]]
    ) -> None:
        """Actor and temperature step on detached latents: one backward for both losses.

        The critic is evaluated with detached weights, so the backward pass reaches only
        the actor (through the action) and log alpha (their parameter sets are disjoint).
        """
        out = self._actor_losses(latents, self.log_alpha)
        drop_grads(self._actor_params)
        drop_grads([self.log_alpha])
        (out.actor_loss + out.temperature_loss).backward()
        gnorm = self._clip(_grads(self._actor_params))
        adam_step(self.actor_opt)
        adam_step(self.temperature_opt)
        self.actor_steps += 1
        values = [
            out.actor_loss.detach(),
            gnorm,
            out.entropy,
            out.temperature_loss.detach(),
            self.log_alpha.detach().exp(),
        ]
        acc.append((ACTOR_METRICS, torch.stack(values).float()))

    def _actor_losses(self, latents: torch.Tensor, log_alpha: torch.Tensor) -> ActorLosses:
        with self._autocast():
            actions, log_prob = self.nets.actor.sample(latents)
            q = torch.func.functional_call(
                self.critic, self._frozen_critic_params(), (latents, actions)
            ).float()
        alpha = log_alpha.detach().exp()
        return ActorLosses(
            losses.actor_loss(log_prob, q, alpha),
            losses.temperature_loss(log_alpha, log_prob, self.target_entropy),
            -log_prob.detach().mean(),
        )

    # ------------------------------------------------------------ fused (compiled) steps

    def _run_compiled_update(
        self, chunks: list[Any], actor: bool, acc: list[tuple[tuple[str, ...], torch.Tensor]]
    ) -> None:
        """Eager side of the compiled update: gather the optimiser state, count, collect."""
        assert self._fused_update_fn is not None
        slots = self._slots()
        discounts = [self._discount(b) for b in chunks]
        # Dynamo's guards re-check every input tensor on each call (~0.15-0.3 ms for the
        # ~200 here). Once a call with the same signature (batch layouts, discounts,
        # actor flag, grad and autocast modes) has run, nothing they check can differ,
        # so only the guards that tell the compiled variants apart run.
        # If no compiled variant matches anyway (dynamo ran the first call eagerly, e.g.
        # past its per-function cache limit of 8 variants, which many learners in one
        # process reach), dynamo refuses before running anything: call again with guards,
        # and keep them on for this learner.
        # The hyperparameters are constants of the graph: a new lr is a new signature.
        key = (_call_signature(chunks, discounts, actor), self._slot_hyper)
        skip = self._skip_guards and key in self._compiled_signatures
        args = (chunks, discounts, actor, slots, self._param_data)
        try:
            with torch.compiler.set_stance("default", skip_guard_eval_unsafe=skip):
                critic_values, actor_values = self._fused_update_fn(*args)
            self._compiled_signatures.add(key)
        except RuntimeError as err:
            if not skip or "skip_guard_eval_unsafe" not in str(err):
                raise
            self._skip_guards = False
            critic_values, actor_values = self._fused_update_fn(*args)
        names = CRITIC_METRICS + GRASP_METRICS if "grasp" in slots else CRITIC_METRICS
        acc.extend((names, v) for v in critic_values.unbind(0))
        self.critic_steps += len(chunks)
        if actor_values is not None:
            acc.append((ACTOR_METRICS, actor_values))
            self.actor_steps += 1

    def _fused_update(
        self,
        chunks: list[Any],
        discounts: list[torch.Tensor | float],
        actor: bool,
        slots: dict[str, AdamSlots],
        params: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A whole ``update`` call as one pure function of tensors (what ``sac.compile``
        compiles into one graph): a critic step per chunk, then the actor step.

        ``params`` holds every network parameter (detached); the optimiser slots hold the
        same tensor objects, so each storage enters the graph once and is updated in place.
        """
        values = []
        latents = None
        for b, discount in zip(chunks, discounts):
            latents, v = self._fused_critic_step(
                b,
                discount,
                self._target_subset(),
                slots["critic"],
                slots.get("grasp"),
                slots["temperature"].params[0],
                params,
            )
            values.append(v)
        actor_values = None
        if actor:
            assert latents is not None
            actor_values = self._fused_actor_step(
                latents, slots["actor"], slots["temperature"], params
            )
        return torch.stack(values), actor_values

    def _fused_critic_step(
        self,
        b: Batch,
        discount: torch.Tensor | float,
        subset: torch.Tensor | None,
        critic: AdamSlots,
        grasp: AdamSlots | None,
        log_alpha: torch.Tensor,
        consts: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One critic + grasp step as a pure function of tensors (part of the compiled update).

        Same losses as the eager step (:meth:`_chunk_losses`, run on the parameters in
        ``critic``/``grasp`` through ``torch.func``), gradients from ``torch.func.grad``,
        then clipping, Adam (:func:`adam_update`) and the Polyak update, all in place.
        Every network tensor comes in ``consts`` (detached): no input of the graph
        requires gradients, so it compiles as an inference graph that updates its inputs
        in place (a tensor requiring grad would make it a training graph that copies
        every mutated input back afterwards).
        """
        names = self._critic_names + (self._grasp_names if grasp is not None else [])
        primals = critic.params + (grasp.params if grasp is not None else [])

        def loss(params: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ChunkLosses]:
            out = torch.func.functional_call(
                self._bundle,
                {**consts, **params},
                (self._chunk_losses, b, discount, subset, log_alpha),
            )
            total = out.critic_loss if out.grasp_loss is None else out.critic_loss + out.grasp_loss
            return total, out

        grads, (_, out) = torch.func.grad_and_value(loss, has_aux=True)(dict(zip(names, primals)))
        with torch.no_grad():
            critic_grads = [grads[n] for n in self._critic_names]
            gnorm = self._clip(critic_grads)
            adam_update(critic, critic_grads)
            values = [out.critic_loss, out.q_mean, out.target_mean, gnorm]
            if grasp is not None and out.grasp_loss is not None:
                assert out.grasp_q_mean is not None
                grasp_grads = [grads[n] for n in self._grasp_names]
                grasp_gnorm = self._clip(grasp_grads)
                adam_update(grasp, grasp_grads)
                values += [out.grasp_loss, out.grasp_q_mean, grasp_gnorm]
            sources = [critic.params[i] for i in self._critic_source_index]
            if grasp is not None:
                sources += grasp.params
            torch._foreach_lerp_(self._targets, sources, self.cfg.tau)
        return out.latents.detach(), torch.stack([v.detach() for v in values]).float()

    def _fused_actor_step(
        self,
        latents: torch.Tensor,
        actor: AdamSlots,
        temperature: AdamSlots,
        consts: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """Actor + temperature step as a pure function of tensors (see :meth:`_fused_critic_step`)."""
        names = self._actor_names

        def loss(
            params: dict[str, torch.Tensor], log_alpha: torch.Tensor
        ) -> tuple[torch.Tensor, ActorLosses]:
            out = torch.func.functional_call(
                self._bundle, {**consts, **params}, (self._actor_losses, latents, log_alpha)
            )
            return out.actor_loss + out.temperature_loss, out

        (grads, alpha_grad), (_, out) = torch.func.grad_and_value(
            loss, argnums=(0, 1), has_aux=True
        )(dict(zip(names, actor.params)), temperature.params[0])
        with torch.no_grad():
            actor_grads = [grads[n] for n in names]
            gnorm = self._clip(actor_grads)
            adam_update(actor, actor_grads)
            adam_update(temperature, [alpha_grad])
            values = [
                out.actor_loss,
                gnorm,
                out.entropy,
                out.temperature_loss,
                temperature.params[0].exp(),
            ]
        return torch.stack([v.detach() for v in values]).float()

    def _clip(self, grads: Sequence[torch.Tensor]) -> torch.Tensor:
        """Scale ``grads`` to the global norm ``sac.grad_clip_norm`` at most; their norm
        before clipping (0 with clipping off or no gradients)."""
        if self.cfg.grad_clip_norm > 0 and grads:
            return clip_grads(grads, self.cfg.grad_clip_norm)
        return torch.zeros((), device=self.device)

    def _frozen_critic_params(self) -> dict[str, torch.Tensor]:
        """The critic's weights as constants: gradients stop at them."""
        return {k: v.detach() for k, v in self.critic.named_parameters()}

    # ------------------------------------------------------------ weights / state

    def policy_weights(self) -> dict[str, np.ndarray]:
        """Only what the actor needs (encoder, actor, grasp critic), as numpy arrays."""
        return policy_weights(self.nets)

    def architecture(self) -> dict[str, list[int]]:
        """Name -> shape of every network tensor: what a checkpoint must match."""
        return {k: list(v.shape) for k, v in self._network_tensors().items()}

    def architecture_config(self) -> dict[str, object]:
        """Config and specs that shape the networks without always changing tensor shapes."""
        structural = (
            "hidden_dims",
            "activation",
            "critic_layer_norm",
            "num_critics",
            "use_grasp_critic",
        )
        sac = {k: v for k, v in to_dict(self.cfg).items() if k in structural}
        enc = to_dict(self.encoder_cfg)
        enc.pop("pretrained", None)
        enc.pop("channels_last", None)
        return {
            "sac": sac,
            "encoder": enc,
            "obs_spec": self.obs_spec.to_json(),
            "action_spec": {
                "dim": self.action_spec.dim,
                "has_gripper": self.action_spec.has_gripper,
            },
        }

    def _network_tensors(self) -> TensorState:
        tensors = module_tensors(self.nets, "nets.")
        tensors.update(module_tensors(self.critic, "critic."))
        tensors.update(module_tensors(self.critic_target, "critic_target."))
        if self.grasp_target is not None:
            tensors.update(module_tensors(self.grasp_target, "grasp_target."))
        tensors["log_alpha"] = self.log_alpha.detach()
        return tensors

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        opts = {
            "critic": self.critic_opt,
            "actor": self.actor_opt,
            "temperature": self.temperature_opt,
        }
        if self.grasp_opt is not None:
            opts["grasp"] = self.grasp_opt
        return opts

    def state_dict(self) -> dict[str, object]:
        """``{"tensors": {...}, "meta": {...}}``: networks, optimisers, counters, config."""
        tensors = self._network_tensors()
        opt_meta = {}
        for name, opt in self._optimizers().items():
            t, m = optimizer_tensors(opt, f"optim.{name}.")
            tensors.update(t)
            opt_meta[name] = m
        meta = {
            "counters": {
                "update_calls": self.update_calls,
                "critic_steps": self.critic_steps,
                "actor_steps": self.actor_steps,
                "skipped_batches": self.skipped_batches,
            },
            "optimizers": opt_meta,
            "architecture": self.architecture(),
            "config": {"sac": to_dict(self.cfg), "encoder": to_dict(self.encoder_cfg)},
            "obs_spec": self.obs_spec.to_json(),
            "action_spec": {
                "dim": self.action_spec.dim,
                "has_gripper": self.action_spec.has_gripper,
            },
        }
        return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Strict restore; raises naming the first mismatching tensor or counter."""
        tensors = state["tensors"]
        meta = state["meta"]
        assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
        own = self.architecture()
        saved = meta.get("architecture", {})
        for name in sorted(set(own) | set(saved)):
            if name not in saved:
                raise KeyError(
                    f"parameter '{name}' is missing from the saved state (architecture differs)"
                )
            if name not in own:
                raise KeyError(
                    f"saved parameter '{name}' does not exist in this model (architecture differs)"
                )
            if list(saved[name]) != own[name]:
                raise ValueError(
                    f"parameter '{name}' has shape {saved[name]} in the saved state but {own[name]} here"
                )
        load_module_tensors(self.nets, tensors, "nets.")
        load_module_tensors(self.critic, tensors, "critic.")
        load_module_tensors(self.critic_target, tensors, "critic_target.")
        if self.grasp_target is not None:
            load_module_tensors(self.grasp_target, tensors, "grasp_target.")
        with torch.no_grad():
            self.log_alpha.copy_(tensors["log_alpha"])
        for name, opt in self._optimizers().items():
            load_optimizer_tensors(opt, tensors, meta["optimizers"][name], f"optim.{name}.")
        self._slot_cache = None  # the optimisers' state tensors were replaced
        counters = meta["counters"]
        self.update_calls = int(counters["update_calls"])
        self.critic_steps = int(counters["critic_steps"])
        self.actor_steps = int(counters["actor_steps"])
        self.skipped_batches = int(counters["skipped_batches"])
        self.nets.train()


class _Bundle(nn.Module):
    """The learner's trained modules under one root, so ``torch.func.functional_call``
    can run any method on parameters given by name (``nets.actor.trunk.0.weight``, ...)."""

    def __init__(self, **modules: nn.Module) -> None:
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)


def _grads(params: Sequence[nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad for p in params if p.grad is not None]


def _slice_batch(b: Any, start: int, stop: int) -> Any:
    """Rows [start, stop) of a Batch-like NamedTuple (dict fields sliced per key)."""
    fields: list[object] = []
    for value in b:
        if isinstance(value, dict):
            fields.append({k: v[start:stop] for k, v in value.items()})
        elif isinstance(value, torch.Tensor):
            fields.append(value[start:stop])
        else:
            fields.append(value)
    return type(b)(*fields)


def _tensor_signature(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return (tuple(value.shape), value.stride(), value.dtype, value.device, value.requires_grad)
    if isinstance(value, dict):
        return tuple((k, _tensor_signature(v)) for k, v in sorted(value.items()))
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value), value)
    return (type(value), id(value))  # unknown: never taken as seen before


def _call_signature(
    chunks: Sequence[Any], discounts: Sequence[torch.Tensor | float], actor: bool
) -> tuple[object, ...]:
    """Everything about a compiled update's inputs that its guards could tell apart,
    besides the learner's own parameter and optimiser tensors (fixed for its lifetime)."""
    return (
        tuple(tuple(_tensor_signature(v) for v in b) for b in chunks),
        tuple(_tensor_signature(d) for d in discounts),
        actor,
        torch.is_grad_enabled(),
        torch.is_inference_mode_enabled(),
        torch.is_autocast_enabled("cpu"),
        torch.is_autocast_enabled("cuda"),
        torch.get_default_dtype(),
    )


def _finite_rows(b: Any, n: int) -> torch.Tensor:
    """``(n,)`` bools: are all float inputs of each of the ``n`` equal row blocks finite?"""
    parts = [b.actions, b.rewards, b.terminated, b.discrete_penalties]
    parts += [t for t in b.observations.values() if t.is_floating_point()]
    parts += [t for t in b.next_observations.values() if t.is_floating_point()]
    disc = getattr(b, "bootstrap_discount", None)
    if disc is not None:
        parts.append(disc)
    return torch.stack([torch.isfinite(p).reshape(n, -1).all(1) for p in parts]).all(0)


def _reduce(acc: list[tuple[tuple[str, ...], torch.Tensor]]) -> dict[str, float]:
    """Mean of each metric over the steps that reported it, with one device-to-host copy.

    Each step reports its metrics as one stacked vector under a tuple of names.
    """
    groups: dict[tuple[str, ...], list[torch.Tensor]] = {}
    for names, values in acc:
        groups.setdefault(names, []).append(values)
    if not groups:
        return {}
    means = torch.cat([torch.stack(v).mean(0) for v in groups.values()]).cpu().tolist()
    out: dict[str, float] = {}
    for name, mean in zip((n for names in groups for n in names), means):
        out.setdefault(name, mean)
    return out
