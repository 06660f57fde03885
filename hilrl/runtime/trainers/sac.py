"""SAC with the HIL-SERL recipe as a :class:`hilrl.core.Trainer`: SAC, its replay, its sampler.

The replay routes actor data (online; intervention steps also to their own buffer) and
holds the demonstrations; the sampler mixes the buffers (RLPD-style), draws ``utd_ratio``
chunks per step with n-step windows, and applies DrQ: all of it SAC's business, none of
it the learner loop's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from hilrl.algorithms.sac import SAC
from hilrl.config.root import RootConfig
from hilrl.core import Policy
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec, SACPolicy
from hilrl.runtime.demos import load_demos
from hilrl.runtime.specs import policy_arch_hash
from hilrl.runtime.trainers.entry import AlgorithmEntry
from hilrl.types import EpisodeStats, StepResult, Transition

SKIP_KEYS = ("skipped_batches", "skipped_batches_total")
"""Keys of ``SAC.update``'s result that count skipped chunks (not averaged metrics)."""


class SACTrainer:
    """SAC, the HIL-SERL replay buffers and the mixing sampler of one learner."""

    def __init__(
        self,
        cfg: RootConfig,
        obs_spec: ObservationSpec,
        act_spec: ActionSpec,
        device: torch.device,
    ) -> None:
        self.cfg = cfg
        self.obs_spec, self.act_spec = obs_spec, act_spec
        sac_cfg = cfg.learning.sac
        self.algorithm = SAC(obs_spec, act_spec, sac_cfg, cfg.learning.encoder, device)
        self.replay = ReplayBuffers(obs_spec, act_spec.dim, cfg.learning.replay)
        self.sampler = MixedSampler(
            self.replay,
            cfg.learning.replay,
            device,
            chunks=sac_cfg.utd_ratio,
            n_step=sac_cfg.n_step,
            discount=sac_cfg.discount,
            run_seed=cfg.run.seed,
        )
        self.arch_hash = policy_arch_hash(self.algorithm.nets, cfg.learning)
        self._compiled = not sac_cfg.compile

    @property
    def compiles_next(self) -> bool:
        return not self._compiled

    def add_transitions(self, transitions: Sequence[Transition]) -> None:
        """Checked in the storage dtypes first (keys, shapes, finite in float32), then added."""
        self.replay.add_arrays(self.replay.check_transitions(transitions))

    def add_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        """SAC learns from every transition: episode outcomes change nothing here."""

    def load_demos(self, path: str) -> tuple[int, int]:
        return load_demos(self.replay, Path(path), self.obs_spec, self.act_spec.dim)

    def ready(self, warmup_transitions: int) -> bool:
        online = len(self.replay.online)
        if online < warmup_transitions:
            return False
        return online + len(self.replay.demos) + len(self.replay.interventions) > 0

    def step(self) -> StepResult:
        result = self.algorithm.update(self.sampler.next())
        self._compiled = True
        metrics = {k: float(v) for k, v in result.items() if k not in SKIP_KEYS}
        skipped = int(result.get("skipped_batches", 0))
        # SAC reports its losses only when it stepped (critic_loss is always among them)
        return StepResult(metrics, int("critic_loss" in metrics), skipped)

    def policy_weights(self) -> dict[str, np.ndarray]:
        return self.algorithm.policy_weights()

    def replay_sizes(self) -> dict[str, int]:
        return {name: len(buf) for name, buf in self.replay.by_name().items()}

    def close(self) -> None:
        self.sampler.close()


def make_sac_policy(
    cfg: RootConfig, obs_spec: ObservationSpec, act_spec: ActionSpec
) -> tuple[Policy, str]:
    policy = SACPolicy(obs_spec, act_spec, cfg.learning.encoder, cfg.learning.sac, "cpu")
    return policy, policy_arch_hash(policy.nets, cfg.learning)


SAC_ENTRY = AlgorithmEntry(SACTrainer, make_sac_policy)
