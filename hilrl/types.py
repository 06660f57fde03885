"""Typed records that cross module and process borders.

Observations are dicts with LeRobot key names:

* ``observation.state``: float32, shape ``(D,)``;
* ``observation.images.<camera>``: uint8, shape ``(H, W, 3)`` (HWC, RGB).

Images stay uint8 everywhere outside the network forward pass (env, replay, wire,
datasets); encoders convert to float on the training device.

Actions are float32 vectors in ``[-1, 1]``. When the env has a gripper, the last action
component is the gripper command and is quantised by :func:`gripper_index` into one of
:data:`GRIPPER_CLOSE`, :data:`GRIPPER_STAY`, :data:`GRIPPER_OPEN` (the discrete choice the
grasp critic learns, as in HIL-SERL).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:  # torch only for annotations: robots and tools import this module too
    import torch

Observation = dict[str, np.ndarray]

STATE_KEY = "observation.state"
IMAGE_PREFIX = "observation.images."

GRIPPER_CLOSE = 0
GRIPPER_STAY = 1
GRIPPER_OPEN = 2
GRIPPER_THRESHOLD = 1.0 / 3.0
"""Commands below ``-threshold`` close, above ``+threshold`` open, otherwise stay."""


def gripper_index(command: float | np.ndarray) -> np.ndarray:
    """Quantise gripper command(s) in [-1, 1] to close(0) / stay(1) / open(2)."""
    c = np.asarray(command, dtype=np.float32)
    out = np.full(c.shape, GRIPPER_STAY, dtype=np.int64)
    out[c < -GRIPPER_THRESHOLD] = GRIPPER_CLOSE
    out[c > GRIPPER_THRESHOLD] = GRIPPER_OPEN
    return out


def gripper_command(index: int | np.ndarray) -> np.ndarray:
    """Inverse of :func:`gripper_index`: close -> -1, stay -> 0, open -> +1."""
    return np.asarray(index, dtype=np.float32) - 1.0


def image_keys(obs: Observation) -> list[str]:
    """Camera keys of an observation, sorted for a stable order."""
    return sorted(k for k in obs if k.startswith(IMAGE_PREFIX))


@dataclass
class Transition:
    """One environment step, as the actor sends it and the replay buffer stores it.

    ``next_observation`` is always the true successor of ``observation``, including at a
    termination or a time-limit truncation (defect 1 of the reference systems).
    """

    observation: Observation
    action: np.ndarray
    reward: float
    next_observation: Observation
    terminated: bool
    truncated: bool
    is_intervention: bool = False
    discrete_penalty: float = 0.0
    policy_version: int = 0
    episode_index: int = 0
    frame_index: int = 0

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


class EpisodeKind(enum.IntEnum):
    """What an episode was for (the wire's ``EpisodeKind`` enum has the same numbers)."""

    TRAIN = 1
    """A training episode: its transitions went to the learner."""
    EVAL = 2
    """An evaluation episode: the policy alone, deterministic; no transitions sent."""


@dataclass
class EpisodeStats:
    """Summary of one finished episode, sent by the actor to the learner."""

    episode_index: int
    length: int
    episode_return: float
    success: bool
    intervention_steps: int
    policy_version: int
    actor_id: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    """Further named, finite figures (at most 32 on the wire)."""
    kind: EpisodeKind = EpisodeKind.TRAIN
    interrupted: bool = False
    """Cut short by the operator (a pause, or a takeover during evaluation)."""
    operator_takeover: bool = False
    """The operator tried to take over during an evaluation episode (which ended there)."""

    @property
    def intervention_rate(self) -> float:
        return self.intervention_steps / max(self.length, 1)

    @property
    def is_eval(self) -> bool:
        return self.kind == EpisodeKind.EVAL


@dataclass
class StepResult:
    """What one training step of a :class:`hilrl.core.Trainer` did."""

    metrics: dict[str, float]
    """Losses and other figures of the step (averaged over its optimisation steps)."""
    steps: int
    """Optimisation steps taken; 0 when every batch was skipped."""
    skipped: int = 0
    """Batches skipped because they held non-finite values."""

    @property
    def real(self) -> bool:
        """A real update: at least one optimisation step, and every figure finite."""
        return self.steps > 0 and all(np.isfinite(v) for v in self.metrics.values())


@dataclass(frozen=True)
class LearnerProgress:
    """Where the learner stands, sent with each weight publication."""

    updates: int = 0
    env_steps: int = 0
    """Training env steps received from all actors."""
    step_allowance: int = -1
    """Env steps all actors together may take until the next publication; -1: no limit."""


@dataclass(frozen=True)
class PolicyUpdate:
    """One weight publication as an actor receives it."""

    version: int
    weights: dict[str, np.ndarray]
    progress: LearnerProgress = field(default_factory=LearnerProgress)


class Batch(NamedTuple):
    """A training batch. Tensors live on the training device; images stay uint8 here.

    ``observations`` / ``next_observations`` map the observation keys to tensors with a
    leading batch dimension. ``terminated`` is 1.0 only for true terminations: time-limit
    truncations bootstrap from ``next_observations``. With n-step returns, ``rewards`` holds
    the discounted k-step sum and ``bootstrap_discount`` the matching gamma^k per row.
    """

    observations: dict[str, torch.Tensor]
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: dict[str, torch.Tensor]
    terminated: torch.Tensor
    discrete_penalties: torch.Tensor
    is_intervention: torch.Tensor
    bootstrap_discount: torch.Tensor | None = None
    """Per-row discount of the bootstrap term (gamma^k for k-step returns); None: one step."""
