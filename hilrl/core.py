"""The interfaces that the layers of hilrl meet at. Each docstring shows its loop.

Nothing here imports another hilrl module except :mod:`hilrl.types`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np

from hilrl.types import EpisodeStats, Observation, PolicyUpdate, StepResult, Transition


@runtime_checkable
class Robot(Protocol):
    """A manipulator with cameras: real hardware or the MuJoCo sim.

    Units: joint positions in radians (the gripper too: its joint's native unit is
    documented by ``joint_units``), velocities in rad/s, currents in amperes on real
    motors (the sim reports actuator torque in N·m as the stand-in), images uint8 HxWx3.
    The gripper, when present, is the last joint.

    The environment drives it like this::

        robot.connect()
        while running:
            q = robot.read_joint_positions()
            frames = robot.read_cameras()
            robot.send_joint_targets(next_q)
            robot.advance(1.0 / fps)   # sim: step physics; real: wait for the tick
        robot.disconnect()
    """

    joint_names: tuple[str, ...]
    joint_units: tuple[str, ...]
    camera_names: tuple[str, ...]

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) position limits of every joint, in the joint's units."""
        ...

    @property
    def is_connected(self) -> bool: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None:
        """Release torque / close ports. Safe to call twice and after an error."""
        ...

    def read_joint_positions(self) -> np.ndarray: ...

    def read_joint_velocities(self) -> np.ndarray: ...

    def read_joint_currents(self) -> np.ndarray: ...

    def read_cameras(self) -> dict[str, np.ndarray]: ...

    def send_joint_targets(self, targets: np.ndarray) -> None:
        """Command joint position targets (the motors' position controllers track them)."""
        ...

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of robot time pass (sim: physics substeps)."""
        ...


@runtime_checkable
class SimTask(Protocol):
    """What a simulated robot adds: randomised resets and ground truth.

    The simulated operator and sim rewards use it; real robots do not have it.
    """

    def reset_task(self, seed: int | None = None) -> None:
        """Put objects at randomised poses and the arm at its home pose."""
        ...

    def task_success(self) -> bool: ...

    def task_state(self) -> dict[str, np.ndarray]:
        """Ground-truth object and end-effector poses (for operators and rewards)."""
        ...


@dataclass
class TeleopEvents:
    """Episode events from a human or simulated operator, latched until consumed."""

    success: bool = False
    failure: bool = False
    rerecord: bool = False
    pause: bool = False
    quit: bool = False


@dataclass
class TeleopCommand:
    """One control tick of operator input."""

    is_intervening: bool
    action: np.ndarray | None = None
    """End-effector delta action in [-1, 1] with the gripper command last; None when idle."""
    events: TeleopEvents = field(default_factory=TeleopEvents)


@runtime_checkable
class InputController(Protocol):
    """A keyboard, gamepad, leader arm or simulated operator.

    The intervention wrapper calls it once per control tick::

        cmd = controller.poll(observation, info)
        action = cmd.action if cmd.is_intervening else policy_action
    """

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None:
        """Called at each episode start."""
        ...

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand: ...


@runtime_checkable
class Policy(Protocol):
    """Acts from an observation. The actor loop::

    actions = policy.act(obs, deterministic=False)

    ``act`` returns one action, shape ``(A,)``, or a chunk of the next actions, shape
    ``(H, A)`` (an action-chunk policy); the actor executes the first
    ``train.chunk_execute_steps`` of a chunk (all of it with 0) before it asks again, and
    drops the rest when the operator takes over.
    """

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray: ...

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None: ...

    @property
    def version(self) -> int: ...


class Stateful(Protocol):
    """Something a checkpoint saves: ``state_dict()`` is ``{"tensors": {name: torch
    tensor}, "meta": JSON-able}``; ``load_state_dict`` restores it strictly."""

    def state_dict(self) -> dict[str, object]: ...

    def load_state_dict(self, state: Mapping[str, object]) -> None: ...


class TrainableAlgorithm(Stateful, Protocol):
    """The networks and optimisers of an algorithm, as a checkpoint sees them."""

    def architecture(self) -> dict[str, list[int]]:
        """Name -> shape of every network tensor (a checkpoint must match it)."""
        ...

    def architecture_config(self) -> dict[str, object]:
        """Settings that shape the networks without always changing a tensor shape."""
        ...


BatchT = TypeVar("BatchT", contravariant=True)


@runtime_checkable
class Algorithm(TrainableAlgorithm, Protocol[BatchT]):
    """A learning algorithm over batches of type ``BatchT`` (SAC: :class:`hilrl.types.Batch`).

    A :class:`Trainer` drives it::

        metrics = algorithm.update(sampler.next())
        weights = algorithm.policy_weights()
    """

    def update(self, batch: BatchT) -> dict[str, float]: ...

    def policy_weights(self) -> dict[str, np.ndarray]: ...


@runtime_checkable
class Trainer(Protocol):
    """One learning algorithm with the data it learns from: what the learner loop drives.

    The learner loop knows nothing else of the algorithm (SAC, supervised flow matching,
    ...); what the algorithm needs of its data (n-step windows, action chunks, episode
    filters) is the trainer's own business::

        trainer.add_transitions(ts)              # ingest thread; bad data: ValueError
        trainer.add_episode(actor_id, stats)     # episode outcomes, after their transitions
        if trainer.ready(warmup):
            result = trainer.step()              # training thread: sample + update
        publish(trainer.policy_weights())
        save_checkpoint(trainer.algorithm, buffers=trainer.replay, sampler=trainer.sampler)
    """

    @property
    def algorithm(self) -> TrainableAlgorithm: ...

    @property
    def replay(self) -> Stateful:
        """The training data (replay buffers), saved in checkpoints with ``save_buffers``."""
        ...

    @property
    def sampler(self) -> Stateful:
        """The sampler's own state (random generators), saved in every checkpoint."""
        ...

    @property
    def arch_hash(self) -> str:
        """Hash of the policy architecture the actors must run."""
        ...

    @property
    def compiles_next(self) -> bool:
        """The next :meth:`step` compiles (the learner says so; it may take a minute)."""
        ...

    def add_transitions(self, transitions: Sequence[Transition]) -> None:
        """Store one actor message, or raise ValueError (one line, naming the transition
        and field) and store none of it."""
        ...

    def add_episode(self, actor_id: str, stats: EpisodeStats) -> None: ...

    def load_demos(self, path: str) -> tuple[int, int]:
        """Add a LeRobot dataset of demonstrations; returns (episodes, transitions)."""
        ...

    def ready(self, warmup_transitions: int) -> bool:
        """Enough data to train on."""
        ...

    def step(self) -> StepResult:
        """Sample and make one update (the update-to-data ratio is the trainer's)."""
        ...

    def policy_weights(self) -> dict[str, np.ndarray]: ...

    def replay_sizes(self) -> dict[str, int]: ...

    def close(self) -> None: ...


@runtime_checkable
class TransitionSink(Protocol):
    """Where an actor puts its experience: an in-process queue or a gRPC stream."""

    def put_transitions(self, transitions: Sequence[Transition]) -> None: ...

    def put_episode(self, stats: EpisodeStats) -> None: ...


@runtime_checkable
class ParameterSource(Protocol):
    """Where an actor gets new policy weights from; ``None`` when nothing newer exists."""

    def latest(self, newer_than: int) -> PolicyUpdate | None: ...
