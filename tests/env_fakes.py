"""Test doubles for the env and teleop tests: a kinematic robot and a scripted operator.

:class:`FakeRobot` has the sim arm's joints (the 5 joints of ``SIM_ARM`` plus a gripper)
and follows every command instantly, so tests can check the wrappers against exact
kinematics without physics; its camera frames encode pixel coordinates so crops can be
checked by content. :class:`ScriptedController` plays back operator commands by step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hilrl.core import TeleopCommand, TeleopEvents
from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import SIM_ARM, ChainSpec
from hilrl.types import Observation

GRIPPER_LIMITS = (0.0, 0.07)
"""The fake gripper's (closed, open) limits in metres, like the sim's finger gap."""


class FakeRobot:
    """A kinematic :class:`~hilrl.core.Robot` and :class:`~hilrl.core.SimTask`.

    Joint targets are reached within one ``advance`` (clipped to the limits). The task:
    bring the tool point within ``success_radius`` of a goal drawn at each reset.
    Camera frame pixel ``(r, c)`` is ``(r % 256, c % 256, k)`` with ``k`` the camera's
    index times 40 plus the number of ``advance`` calls (mod 256).
    """

    def __init__(
        self,
        cameras: tuple[str, ...] = ("front", "wrist"),
        image_shape: tuple[int, int] = (48, 64),
        spec: ChainSpec = SIM_ARM,
        success_radius: float = 0.02,
        gripper_limits: tuple[float, float] = GRIPPER_LIMITS,
    ) -> None:
        self.spec = spec
        self.chain = KinematicChain(spec)
        self.joint_names = (*spec.joint_names, "gripper")
        self.joint_units = ("rad",) * spec.dof + ("m",)
        self.camera_names = tuple(cameras)
        self.image_shape = image_shape
        self.success_radius = success_radius
        self._lower = np.append(self.chain.lower, gripper_limits[0])
        self._upper = np.append(self.chain.upper, gripper_limits[1])
        self._q = self.home_joint_positions()
        self._target = self._q.copy()
        self._velocity = np.zeros_like(self._q)
        self._connected = False
        self._ticks = 0
        self.time_s = 0.0
        self.goal = np.array([0.22, 0.0, 0.1])
        self.sent: list[np.ndarray] = []
        """Every joint target command received, in order (for assertions)."""
        rows = np.arange(image_shape[0]) % 256
        cols = np.arange(image_shape[1]) % 256
        self._base_frame = np.zeros((*image_shape, 3), dtype=np.uint8)
        self._base_frame[..., 0] = rows[:, None]
        self._base_frame[..., 1] = cols[None, :]

    # ------------------------------------------------------------------ Robot
    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        return self._lower.copy(), self._upper.copy()

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def read_joint_positions(self) -> np.ndarray:
        return self._q.copy()

    def read_joint_velocities(self) -> np.ndarray:
        return self._velocity.copy()

    def read_joint_currents(self) -> np.ndarray:
        """A deterministic stand-in: proportional to the velocity plus a gravity-like offset."""
        return 0.5 * self._velocity + 0.1 * np.sin(self._q)

    def read_cameras(self) -> dict[str, np.ndarray]:
        frames = {}
        for k, name in enumerate(self.camera_names):
            frame = self._base_frame.copy()
            frame[..., 2] = (40 * k + self._ticks) % 256
            frames[name] = frame
        return frames

    def send_joint_targets(self, targets: np.ndarray) -> None:
        t = np.asarray(targets, dtype=float)
        if t.shape != self._q.shape:
            raise ValueError(f"targets must have shape {self._q.shape}, got {t.shape}")
        self.sent.append(t.copy())
        self._target = np.clip(t, self._lower, self._upper)

    def advance(self, dt: float) -> None:
        previous = self._q
        self._q = self._target.copy()
        self._velocity = (self._q - previous) / dt if dt > 0 else np.zeros_like(self._q)
        self._ticks += 1
        self.time_s += dt

    # ------------------------------------------------------------------ sim extras
    def home_joint_positions(self) -> np.ndarray:
        """Arm bent over the table, gripper open."""
        q = np.zeros(self.spec.dof + 1)
        q[1:4] = (0.3, 1.2, 1.2)[: min(3, self.spec.dof - 1)]
        q[-1] = self._upper[-1]
        return np.clip(q, self._lower, self._upper)

    def set_joint_positions(self, q: np.ndarray) -> None:
        """Teleport (the sim's reset path)."""
        self._q = np.clip(np.asarray(q, dtype=float), self._lower, self._upper)
        self._target = self._q.copy()
        self._velocity = np.zeros_like(self._q)

    # ------------------------------------------------------------------ SimTask
    def reset_task(self, seed: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.set_joint_positions(self.home_joint_positions())
        self.goal = rng.uniform((0.15, -0.1, 0.05), (0.28, 0.1, 0.15))
        self._ticks = 0

    def ee_position(self) -> np.ndarray:
        return self.chain.fk(self._q[: self.spec.dof])[:3, 3]

    def task_success(self) -> bool:
        return bool(np.linalg.norm(self.ee_position() - self.goal) < self.success_radius)

    def task_state(self) -> dict[str, np.ndarray]:
        return {"ee_pos": self.ee_position(), "goal_pos": self.goal.copy()}


class ScriptedController:
    """An :class:`~hilrl.core.InputController` that intervenes on chosen steps.

    ``actions[i]`` is the operator action at step ``i`` of each episode (counted from the
    last ``reset``); steps without an entry are not interventions. ``events[i]`` are
    episode events reported at step ``i``.
    """

    def __init__(
        self,
        actions: Mapping[int, np.ndarray] | None = None,
        events: Mapping[int, TeleopEvents] | None = None,
    ) -> None:
        self.actions = {k: np.asarray(v, dtype=np.float32) for k, v in (actions or {}).items()}
        self.events = dict(events or {})
        self.step = 0
        self.started = False
        self.resets = 0
        self.polled: list[Observation] = []

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def reset(self) -> None:
        self.step = 0
        self.resets += 1

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        self.polled.append(observation)
        i = self.step
        self.step += 1
        action = self.actions.get(i)
        events = self.events.get(i, TeleopEvents())
        return TeleopCommand(is_intervening=action is not None, action=action, events=events)
