"""A real servo arm (SO-100 / SO-101 on Feetech, Koch on Dynamixel) as a :class:`hilrl.core.Robot`.

Joint order and units come from the calibration file (:mod:`hilrl.robots.calibration`):
the five arm joints in radians in their kinematic chain's convention, then the gripper as
an opening fraction (0 closed, 1 open). Readings go through one sync read of position,
velocity and current per tick; targets are clipped to the calibrated travel (and, with
``max_relative_target``, to a step from the measured position) and sent in one sync write.

Safety: torque goes on at :meth:`connect` (unless ``torque_on_connect`` is off, as for a
leader arm moved by hand) and is released by :meth:`disconnect`, when a ``with arm:`` block exits (also by
an exception), and at interpreter exit if neither ran (an ``atexit`` guard). Enabling
torque first sets every goal to the measured position, so nothing jumps at connect.

``advance(dt)`` keeps the control rate (:class:`hilrl.pacing.Pacer`): it sleeps until the
next tick deadline on the monotonic clock, deadlines spaced exactly ``dt`` apart (no
drift); after an overrun longer than a tick the schedule restarts from now rather than
bursting to catch up.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from hilrl.pacing import Pacer
from hilrl.robots.calibration import GRIPPER, TICKS_PER_REV, ArmCalibration, apply_motor_settings
from hilrl.robots.cameras import Camera
from hilrl.robots.motor_bus import MotorBus, MotorBusError, MotorModel

STATE_REGISTERS = ("present_position", "present_velocity")
CACHE_S = 0.005
"""A state read this recent answers the velocity / current reads of the same tick."""
TORQUE_OFF_ATTEMPTS = 3


@dataclass(frozen=True)
class ArmLayout:
    """What a robot type is made of: its motor family, kinematic chain and joint names."""

    robot_type: str
    family: str
    chain: str
    joint_names: tuple[str, ...]
    default_models: tuple[str, ...]
    """The motor model of each joint in a standard build (shown in the docs; the
    calibration records what the motors actually report)."""


_ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
ARM_LAYOUTS: dict[str, ArmLayout] = {
    "so100": ArmLayout("so100", "feetech", "so100", (*_ARM_JOINTS, GRIPPER), ("sts3215",) * 6),
    "so101": ArmLayout("so101", "feetech", "so100", (*_ARM_JOINTS, GRIPPER), ("sts3215",) * 6),
    "koch": ArmLayout(
        "koch",
        "dynamixel",
        "koch",
        (*_ARM_JOINTS, GRIPPER),
        ("xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288"),
    ),
}


class SerialArm:
    """A calibrated servo arm with optional cameras. Use it as a context manager::

    with SerialArm(bus, calibration, cameras=cams) as arm:
        q = arm.read_joint_positions()
        arm.send_joint_targets(q)
        arm.advance(0.1)
    # torque released here, even after an exception
    """

    def __init__(
        self,
        bus: MotorBus,
        calibration: ArmCalibration,
        *,
        cameras: Mapping[str, Camera] | None = None,
        max_relative_target: float | None = None,
        gripper_max_effort: float | None = 0.5,
        torque_on_connect: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calibration.motor_family != bus.family:
            raise ValueError(
                f"calibration is for {calibration.motor_family} motors but the bus on "
                f"{bus.port} is {bus.family}"
            )
        if max_relative_target is not None and not max_relative_target > 0:
            raise ValueError(f"max_relative_target must be positive, got {max_relative_target}")
        self.bus = bus
        self.calibration = calibration
        self.cameras: dict[str, Camera] = dict(cameras or {})
        self.max_relative_target = max_relative_target
        self.gripper_max_effort = gripper_max_effort
        self.torque_on_connect = torque_on_connect
        self._clock = clock
        self._pacer = Pacer(clock, sleep)

        joints = list(calibration.joints.values())
        self.joint_names: tuple[str, ...] = calibration.joint_names
        self.joint_units: tuple[str, ...] = tuple(j.unit for j in joints)
        self.camera_names: tuple[str, ...] = tuple(self.cameras)
        self._ids = [j.id for j in joints]
        self._models: list[MotorModel] = [bus.model_by_name(j.model) for j in joints]
        self._dir = np.array([j.direction for j in joints], dtype=np.float64)
        self._zero = np.array([j.zero for j in joints], dtype=np.float64)
        self._scale = np.array([j.scale for j in joints], dtype=np.float64)
        self._raw_min = np.array([j.range_min for j in joints], dtype=np.float64)
        self._raw_max = np.array([j.range_max for j in joints], dtype=np.float64)
        self._centre = (self._raw_min + self._raw_max) / 2.0
        limits = np.array([j.limits for j in joints], dtype=np.float64)
        self._lower, self._upper = limits[:, 0].copy(), limits[:, 1].copy()
        self._revolute = np.array([j.unit == "rad" for j in joints])
        self._vel_unit = np.array([m.velocity_unit for m in self._models])
        self._cur_unit = np.array([m.current_unit for m in self._models])
        self._current_registers = sorted({m.current_register for m in self._models})

        self._connected = False
        self._torque_on = False
        self._state: dict[str, np.ndarray] | None = None
        self._state_time = -np.inf

    # ------------------------------------------------------------ Robot interface
    @property
    def overruns(self) -> int:
        """Ticks whose deadline had already passed by more than a tick when advance() ran."""
        return self._pacer.overruns

    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper): the calibrated travel; radians, and the gripper fraction [0, 1]."""
        return self._lower.copy(), self._upper.copy()

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def torque_enabled(self) -> bool:
        return self._torque_on

    def connect(self) -> None:
        """Open the bus, check every motor, apply the calibration, hold the current pose."""
        if self._connected:
            return
        self.bus.open()
        atexit.register(self._release_at_exit)
        try:
            for name, motor_id, model in zip(self.joint_names, self._ids, self._models):
                number = self.bus.ping(motor_id)
                if number != model.model_number:
                    found = self.bus.models.get(number)
                    raise MotorBusError(
                        self.bus.port,
                        motor_id,
                        f"joint {name!r} expects a {model.name} (model {model.model_number}) "
                        f"but the motor reports {found.name if found else number}; wrong "
                        "calibration file or motor id?",
                    )
            self.bus.sync_write("torque_enable", {i: 0 for i in self._ids})
            apply_motor_settings(
                self.bus, self.calibration, gripper_max_effort=self.gripper_max_effort
            )
            if self.torque_on_connect:
                self._hold_current_pose()
            for cam in self.cameras.values():
                cam.start()
        except BaseException:
            self._shutdown()
            raise
        self._connected = True
        self._pacer.restart()

    def disconnect(self) -> None:
        """Release torque, stop the cameras, close the port. Safe to call twice."""
        if not self._connected and not self.bus.is_open:
            return
        self._shutdown()

    def read_joint_positions(self) -> np.ndarray:
        self._require_connected()
        return self._to_units(self._read_state()["present_position"])

    def read_joint_velocities(self) -> np.ndarray:
        """rad/s for arm joints; the gripper in fractions of its travel per second."""
        self._require_connected()
        raw = self._cached_state()["present_velocity"]
        ticks_per_s = raw * self._vel_unit * TICKS_PER_REV / (2 * np.pi)
        return self._dir * ticks_per_s * self._scale

    def read_joint_currents(self) -> np.ndarray:
        """Motor currents in amperes (unsigned magnitude as the motors report it)."""
        self._require_connected()
        state = self._cached_state()
        raw = np.array(
            [state[m.current_register][k] for k, m in enumerate(self._models)], dtype=np.float64
        )
        return raw * self._cur_unit

    def read_cameras(self) -> dict[str, np.ndarray]:
        self._require_connected()
        return {name: cam.read() for name, cam in self.cameras.items()}

    def send_joint_targets(self, targets: np.ndarray) -> None:
        """Command targets (joint units), clipped to the travel and to max_relative_target."""
        self._require_connected()
        if not self._torque_on:
            raise RuntimeError(
                f"arm on {self.bus.port}: torque is off (a leader arm, or released); "
                "call enable_torque() before sending targets"
            )
        q = np.asarray(targets, dtype=np.float64)
        if q.shape != (len(self.joint_names),):
            raise ValueError(
                f"joint targets: expected shape ({len(self.joint_names)},), got {q.shape}"
            )
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint targets must be finite, got {q}")
        q = np.clip(q, self._lower, self._upper)
        if self.max_relative_target is not None:
            measured = self._to_units(self._cached_state(max_age=0.2)["present_position"])
            step = self.max_relative_target
            q = np.where(self._revolute, np.clip(q, measured - step, measured + step), q)
        raw = np.clip(
            np.round(self._zero + self._dir * q / self._scale), self._raw_min, self._raw_max
        )
        self.bus.sync_write("goal_position", {i: int(r) for i, r in zip(self._ids, raw)})

    def advance(self, dt: float) -> None:
        """Sleep until the next tick deadline (``dt`` after the previous one)."""
        self._require_connected()
        if not dt > 0:
            raise ValueError(f"advance: dt must be positive, got {dt}")
        self._pacer.wait(dt)

    # -------------------------------------------------------------- extras
    def enable_torque(self) -> None:
        """Hold the measured pose (goals first, then torque: nothing jumps)."""
        self._require_connected()
        self._hold_current_pose()

    def release_torque(self) -> None:
        """Let the arm go limp (the motors stay connected)."""
        self._require_connected()
        self.bus.sync_write("torque_enable", {i: 0 for i in self._ids})
        self._torque_on = False

    def __enter__(self) -> SerialArm:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.disconnect()

    # ------------------------------------------------------------- internals
    def _require_connected(self) -> None:
        if not self._connected:
            raise RuntimeError(f"arm on {self.bus.port} is not connected; call connect() first")

    def _hold_current_pose(self) -> None:
        raw = self._read_raw_positions()
        self.bus.sync_write("goal_position", {i: int(r) for i, r in zip(self._ids, np.round(raw))})
        self.bus.sync_write("torque_enable", {i: 1 for i in self._ids})
        self._torque_on = True

    def _unwrap(self, raw: np.ndarray) -> np.ndarray:
        """Raw readings unwrapped into the calibrated travel's turn (firmware may wrap)."""
        half = TICKS_PER_REV / 2
        return self._centre + (raw - self._centre + half) % TICKS_PER_REV - half

    def _to_units(self, raw: np.ndarray) -> np.ndarray:
        return self._dir * (raw - self._zero) * self._scale

    def _read_raw_positions(self) -> np.ndarray:
        raw = np.array(self.bus.sync_read("present_position", self._ids), dtype=np.float64)
        return self._unwrap(raw)

    def _read_state(self) -> dict[str, np.ndarray]:
        names = [*STATE_REGISTERS, *self._current_registers]
        values = self.bus.sync_read_registers(names, self._ids)
        state = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        state["present_position"] = self._unwrap(state["present_position"])
        self._state = state
        self._state_time = self._clock()
        return state

    def _cached_state(self, max_age: float = CACHE_S) -> dict[str, np.ndarray]:
        if self._state is not None and self._clock() - self._state_time <= max_age:
            return self._state
        return self._read_state()

    def _shutdown(self) -> None:
        """Torque off (retried), cameras stopped, port closed; warns if torque stayed on."""
        failure: BaseException | None = None
        if self.bus.is_open:
            for _ in range(TORQUE_OFF_ATTEMPTS):
                try:
                    self.bus.sync_write("torque_enable", {i: 0 for i in self._ids})
                    failure = None
                    break
                except Exception as exc:
                    failure = exc
        for cam in self.cameras.values():
            try:
                cam.stop()
            except Exception as exc:
                warnings.warn(
                    f"camera {cam.name}: stop failed: {exc}", RuntimeWarning, stacklevel=2
                )
        try:
            self.bus.close()
        finally:
            self._connected = False
            self._torque_on = False
            self._state = None
            atexit.unregister(self._release_at_exit)
        if failure is not None:
            warnings.warn(
                f"{self.bus.port}: could not release torque ({failure}); the arm may still "
                "be holding its pose - switch its power off",
                RuntimeWarning,
                stacklevel=2,
            )

    def _release_at_exit(self) -> None:
        """The atexit guard: release torque if the program ends without disconnecting."""
        with contextlib.suppress(Exception):
            self._shutdown()
