"""The interfaces that the layers of hilrl meet at. Each docstring shows its loop.

Nothing here imports another hilrl module except :mod:`hilrl.types`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from hilrl.types import EpisodeStats, Observation, PolicyUpdate, Transition


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

    action = policy.act(obs, deterministic=False)
    """

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray: ...

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None: ...

    @property
    def version(self) -> int: ...


@runtime_checkable
class Algorithm(Protocol):
    """A learning algorithm. The learner loop::

    metrics = algorithm.update(sampler.next())
    if publish_due: source.publish(algorithm.policy_weights())
    """

    def update(self, batch: object) -> dict[str, float]: ...

    def policy_weights(self) -> dict[str, np.ndarray]: ...

    def state_dict(self) -> dict[str, object]: ...

    def load_state_dict(self, state: Mapping[str, object]) -> None: ...


@runtime_checkable
class TransitionSink(Protocol):
    """Where an actor puts its experience: an in-process queue or a gRPC stream."""

    def put_transitions(self, transitions: Sequence[Transition]) -> None: ...

    def put_episode(self, stats: EpisodeStats) -> None: ...


@runtime_checkable
class ParameterSource(Protocol):
    """Where an actor gets new policy weights from; ``None`` when nothing newer exists."""

    def latest(self, newer_than: int) -> PolicyUpdate | None: ...
