"""Learning algorithms the learner and actor loops can run, by name (``learning.algorithm``).

Each entry makes the two halves of one algorithm from the run config:

* ``make_trainer(cfg, obs_spec, act_spec, device)``: the :class:`hilrl.core.Trainer` the
  learner loop drives (networks, optimisers, the replay and the sampler it needs);
* ``make_policy(cfg, obs_spec, act_spec)``: the actor's :class:`hilrl.core.Policy` (CPU
  inference) and the architecture hash the learner checks at the handshake.

``sac`` is built in; :func:`register_algorithm` adds another (a test registers a toy one)::

    register_algorithm("bc", AlgorithmEntry(make_bc_trainer, make_bc_policy))
"""

from __future__ import annotations

import torch

from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.core import Policy, Trainer
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec
from hilrl.runtime.trainers.entry import AlgorithmEntry, PolicyFactory, TrainerFactory
from hilrl.runtime.trainers.sac import SAC_ENTRY

__all__ = [
    "AlgorithmEntry",
    "PolicyFactory",
    "TrainerFactory",
    "algorithm",
    "algorithm_names",
    "make_policy",
    "make_trainer",
    "register_algorithm",
]

_ALGORITHMS: dict[str, AlgorithmEntry] = {"sac": SAC_ENTRY}


def register_algorithm(name: str, entry: AlgorithmEntry) -> None:
    """Make ``learning.algorithm: <name>`` available (a later registration replaces one)."""
    if not name or not name.replace("_", "").isalnum():
        raise ValueError(f"algorithm name {name!r} must be letters, digits and _")
    _ALGORITHMS[name] = entry


def algorithm_names() -> list[str]:
    return sorted(_ALGORITHMS)


def algorithm(cfg: RootConfig) -> AlgorithmEntry:
    """The entry of ``cfg.learning.algorithm``; a ConfigError naming the field if unknown."""
    name = cfg.learning.algorithm
    entry = _ALGORITHMS.get(name)
    if entry is None:
        raise ConfigError(
            "learning.algorithm", name, f"unknown algorithm; choose one of {algorithm_names()}"
        )
    return entry


def make_trainer(
    cfg: RootConfig, obs_spec: ObservationSpec, act_spec: ActionSpec, device: torch.device
) -> Trainer:
    return algorithm(cfg).make_trainer(cfg, obs_spec, act_spec, device)


def make_policy(
    cfg: RootConfig, obs_spec: ObservationSpec, act_spec: ActionSpec
) -> tuple[Policy, str]:
    return algorithm(cfg).make_policy(cfg, obs_spec, act_spec)
