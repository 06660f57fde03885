"""What one learning algorithm provides to the loops: its trainer and its actor policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from hilrl.config.root import RootConfig
from hilrl.core import Policy, Trainer
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec

TrainerFactory = Callable[[RootConfig, ObservationSpec, ActionSpec, torch.device], Trainer]
PolicyFactory = Callable[[RootConfig, ObservationSpec, ActionSpec], tuple[Policy, str]]


@dataclass(frozen=True)
class AlgorithmEntry:
    make_trainer: TrainerFactory
    make_policy: PolicyFactory
