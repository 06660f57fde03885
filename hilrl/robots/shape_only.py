"""A real arm's joints and cameras without the hardware, for reading an env's spaces.

The learner usually runs on another machine than the robot, yet needs the env's
observation and action spaces to build its networks (:func:`hilrl.runtime.specs.specs_from_config`).
:class:`ShapeOnlyArm` has the arm's kinematic chain plus a gripper and the configured
cameras at the configured size, opens no serial port or camera, and never moves: the env
built over it has the same spaces as the one over the real arm. It is not a simulator
(no :class:`~hilrl.core.SimTask`): what needs the sim's ground truth is refused as it
would be on the real arm.
"""

from __future__ import annotations

import numpy as np

from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import ChainSpec

GRIPPER_FRACTION = (0.0, 1.0)
"""Real arms report the gripper as an opening fraction: 0 closed, 1 open."""


class ShapeOnlyArm:
    """A :class:`~hilrl.core.Robot` with ``spec``'s joints and a gripper, standing still.

    Joint positions are the middle of the chain's limits (the gripper half open), velocities
    and currents zero; every camera frame is black, ``image_shape`` (height, width) in size.
    Commands are accepted and ignored.
    """

    def __init__(
        self,
        spec: ChainSpec,
        cameras: tuple[str, ...] = (),
        image_shape: tuple[int, int] = (480, 640),
        gripper_limits: tuple[float, float] = GRIPPER_FRACTION,
    ) -> None:
        chain = KinematicChain(spec)
        self.joint_names: tuple[str, ...] = (*spec.joint_names, "gripper")
        self.joint_units: tuple[str, ...] = ("rad",) * spec.dof + ("fraction",)
        self.camera_names: tuple[str, ...] = tuple(cameras)
        self._lower = np.append(chain.lower, gripper_limits[0]).astype(np.float64)
        self._upper = np.append(chain.upper, gripper_limits[1]).astype(np.float64)
        self._frame = np.zeros((*image_shape, 3), dtype=np.uint8)
        self._connected = False

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
        return (self._lower + self._upper) / 2

    def read_joint_velocities(self) -> np.ndarray:
        return np.zeros_like(self._lower)

    def read_joint_currents(self) -> np.ndarray:
        return np.zeros_like(self._lower)

    def read_cameras(self) -> dict[str, np.ndarray]:
        return {name: self._frame.copy() for name in self.camera_names}

    def send_joint_targets(self, targets: np.ndarray) -> None:
        pass

    def advance(self, dt: float) -> None:
        pass
