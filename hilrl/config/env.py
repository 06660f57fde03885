"""Environment configuration: control rate, observation features, action mode, safety.

:func:`hilrl.envs.make_env` turns one :class:`EnvConfig` into a wrapped gymnasium env.
Static checks (shapes, bounds, names) run in ``validate()``; the reset pose is also
checked against the arm's joint limits and, when given as an end-effector position,
solved by inverse kinematics here, so an unreachable pose fails before anything moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hilrl.config.loader import ConfigError
from hilrl.config.robot import RobotConfig
from hilrl.kinematics import KinematicChain, get_chain_spec

ENV_MODES = ("record", "replay", "train")
CONTROL_MODES = ("ee_delta", "joint_delta", "joint_absolute")
INTERPOLATIONS = ("area", "nearest")

KINEMATIC_CHAINS = {"sim": "sim_arm", "so100": "so100", "so101": "so100", "koch": "koch"}
"""Which kinematic chain (``hilrl.kinematics.get_chain_spec`` name) each robot type uses."""

Vec3 = tuple[float, float, float]


@dataclass
class WorkspaceConfig:
    """An axis-aligned box for the end effector, in the robot base frame (metres)."""

    low: Vec3 = (0.08, -0.14, 0.012)
    """Lower corner (x, y, z) of the end-effector box (default: the sim's table area, tool just above it)."""
    high: Vec3 = (0.28, 0.14, 0.2)
    """Upper corner (x, y, z) of the end-effector box."""

    def validate(self) -> None:
        for name in ("low", "high"):
            value = getattr(self, name)
            if len(value) != 3 or not all(math.isfinite(v) for v in value):
                raise ConfigError(name, value, "needs three finite numbers (x, y, z)")
        if any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ConfigError("high", self.high, f"must exceed low = {self.low} on every axis")


@dataclass
class ImageConfig:
    """Per-camera crop, then one common resize (done on uint8 images, cheaply)."""

    crops: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    """Per camera name: (top, left, height, width) in pixels of the rendered image."""
    resize: tuple[int, int] | None = None
    """(height, width) every camera image is resized to after cropping; null keeps the size."""
    interpolation: str = "area"
    """Resize filter: 'area' (box average; exact for integer factors) or 'nearest'."""

    def validate(self) -> None:
        for cam, crop in self.crops.items():
            if len(crop) != 4:
                raise ConfigError(f"crops.{cam}", crop, "needs (top, left, height, width)")
            top, left, height, width = crop
            if top < 0 or left < 0 or height <= 0 or width <= 0:
                raise ConfigError(f"crops.{cam}", crop, "offsets must be >= 0, sizes > 0")
        if self.resize is not None and (len(self.resize) != 2 or min(self.resize) <= 0):
            raise ConfigError("resize", self.resize, "needs a positive (height, width)")
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError(
                "interpolation", self.interpolation, f"choose one of {INTERPOLATIONS}"
            )


@dataclass
class StateConfig:
    """What ``observation.state`` holds, in this order: joints, then each enabled extra."""

    joint_velocities: bool = False
    """Append joint velocities (rad/s) after the joint positions."""
    joint_currents: bool = False
    """Append motor currents (A; the sim reports actuator torque) after the velocities."""
    ee_pose: bool = True
    """Append the end-effector position, normalised so the workspace box maps to [-1, 1]."""
    ee_orientation: bool = False
    """With ee_pose: also append the tool orientation as the first two rotation-matrix columns."""
    object_state: bool = False
    """Sim only: append the ground-truth cube position and yaw (and the target position for push_cube), normalised by the workspace box, so a state-only policy can see where the randomised cube is. Real robots have no such signal: use cameras."""


@dataclass
class ActionConfig:
    """How a policy action in [-1, 1]^k (gripper command last) becomes joint targets."""

    control_mode: str = "ee_delta"
    """'ee_delta' (end-effector steps via IK), 'joint_delta' (per-joint steps) or 'joint_absolute' (action spans each joint's limits)."""
    ee_step_m: Vec3 = (0.02, 0.02, 0.02)
    """ee_delta: metres moved along x, y, z per step at action +-1."""
    ee_rotation: bool = False
    """ee_delta: add three rotation components (roll, pitch, yaw about the base axes)."""
    ee_step_rad: float = 0.1
    """ee_delta with ee_rotation: radians turned per step at action +-1."""
    ik_iterations: int = 8
    """ee_delta: most IK iterations per step (warm-started at the current joints)."""
    ik_tolerance_m: float = 1e-4
    """ee_delta: IK stops once the tool is this close to its target (metres)."""
    joint_step_rad: float = 0.1
    """joint_delta: radians moved per step at action +-1."""
    masked_joints: tuple[str, ...] = ()
    """Arm joints held fixed at their reset value (removed from joint-mode actions)."""
    use_gripper: bool = True
    """The last action component commands the gripper: close / stay / open."""
    gripper_penalty: float = -0.02
    """info['discrete_penalty'] when a command changes the gripper state (not added to the reward)."""
    gripper_close_at_lower: bool = True
    """The gripper joint's lower limit is closed (else its upper limit is)."""

    def validate(self) -> None:
        if self.control_mode not in CONTROL_MODES:
            raise ConfigError("control_mode", self.control_mode, f"choose one of {CONTROL_MODES}")
        if len(self.ee_step_m) != 3 or any(not 0 < s <= 0.2 for s in self.ee_step_m):
            raise ConfigError("ee_step_m", self.ee_step_m, "needs three steps in (0, 0.2] metres")
        if not 0 < self.ee_step_rad <= 1.0:
            raise ConfigError("ee_step_rad", self.ee_step_rad, "must be in (0, 1] radians")
        if not 0 < self.joint_step_rad <= 1.0:
            raise ConfigError("joint_step_rad", self.joint_step_rad, "must be in (0, 1] radians")
        if not 1 <= self.ik_iterations <= 200:
            raise ConfigError("ik_iterations", self.ik_iterations, "must be in [1, 200]")
        if not 0 < self.ik_tolerance_m <= 0.01:
            raise ConfigError("ik_tolerance_m", self.ik_tolerance_m, "must be in (0, 0.01] metres")
        if len(set(self.masked_joints)) != len(self.masked_joints):
            raise ConfigError("masked_joints", self.masked_joints, "joint names must be unique")
        if self.gripper_penalty > 0:
            raise ConfigError("gripper_penalty", self.gripper_penalty, "must be <= 0")


@dataclass
class ResetConfig:
    """Where the arm goes at every reset, and how long it takes."""

    joint_positions: tuple[float, ...] | None = None
    """Arm joint positions (radians; optionally the gripper last); null: the robot's home pose."""
    ee_position: Vec3 | None = None
    """Alternative to joint_positions: an end-effector position (metres) solved by IK."""
    reset_time_s: float = 2.0
    """Real robots interpolate to the reset pose over this time; the sim teleports."""
    settle_time_s: float = 0.2
    """Time the sim runs after teleporting, so contacts and controllers settle."""

    def validate(self) -> None:
        if self.joint_positions is not None and self.ee_position is not None:
            raise ConfigError(
                "ee_position", self.ee_position, "give joint_positions or ee_position, not both"
            )
        if self.reset_time_s < 0:
            raise ConfigError("reset_time_s", self.reset_time_s, "must be >= 0")
        if self.settle_time_s < 0:
            raise ConfigError("settle_time_s", self.settle_time_s, "must be >= 0")


@dataclass
class SafetyConfig:
    """Per-step command limits; they shrink a step, never abort the run."""

    enabled: bool = True
    """Apply the limits. Always on for real robots (only the sim may switch it off)."""
    max_joint_step_rad: float = 0.3
    """Largest change of an arm joint target from the measured position in one step."""
    max_ee_step_m: float = 0.05
    """Largest end-effector displacement a single step may command."""
    hold_timeout_s: float = 0.5
    """With no command for this long, the watchdog re-sends the current joints (hold)."""

    def validate(self) -> None:
        if self.max_joint_step_rad <= 0:
            raise ConfigError("max_joint_step_rad", self.max_joint_step_rad, "must be > 0")
        if self.max_ee_step_m <= 0:
            raise ConfigError("max_ee_step_m", self.max_ee_step_m, "must be > 0")
        if self.hold_timeout_s <= 0:
            raise ConfigError("hold_timeout_s", self.hold_timeout_s, "must be > 0")


@dataclass
class EnvConfig:
    """One environment: a robot (or any gymnasium id) plus the wrappers make_env adds."""

    robot: RobotConfig = field(default_factory=RobotConfig)
    """The robot (sim or real) and its cameras."""
    gym_id: str | None = None
    """Wrap this registered gymnasium id (e.g. 'Pendulum-v1') instead of the robot; only the generic wrappers apply."""
    mode: str = "train"
    """'record' (an operator drives and episodes are saved), 'replay' (actions come from a dataset) or 'train'."""
    fps: int = 10
    """Control rate in Hz: each step lets 1 / fps seconds of robot time pass."""
    episode_time_s: float | None = 20.0
    """Episodes are truncated (never terminated) after this long; null: no limit."""
    use_cameras: bool = True
    """Put the robot's cameras in the observation (off: state only, nothing rendered)."""
    state: StateConfig = field(default_factory=StateConfig)
    """Contents of observation.state."""
    images: ImageConfig = field(default_factory=ImageConfig)
    """Crop and resize of the camera images."""
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    """End-effector box: clips targets and normalises the pose in the state."""
    action: ActionConfig = field(default_factory=ActionConfig)
    """Action space and its conversion to joint targets."""
    reset: ResetConfig = field(default_factory=ResetConfig)
    """Reset pose and timing."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    """Per-step command limits and the hold watchdog."""
    terminate_on_success: bool = True
    """End the episode (terminated) when the task succeeds: sim ground truth or the reward model."""

    @property
    def max_episode_steps(self) -> int | None:
        """The time limit in steps (``episode_time_s * fps``, rounded up)."""
        if self.episode_time_s is None:
            return None
        return max(1, math.ceil(self.episode_time_s * self.fps - 1e-9))

    @property
    def chain_name(self) -> str | None:
        """The kinematic chain of this robot, or None for gymnasium ids / unknown arms."""
        if self.gym_id is not None:
            return None
        return KINEMATIC_CHAINS.get(self.robot.type)

    def validate(self) -> None:
        if self.mode not in ENV_MODES:
            raise ConfigError("mode", self.mode, f"unknown mode; choose one of {ENV_MODES}")
        if self.fps <= 0:
            raise ConfigError("fps", self.fps, "must be positive")
        if self.episode_time_s is not None and self.episode_time_s <= 0:
            raise ConfigError("episode_time_s", self.episode_time_s, "must be positive or null")
        if self.gym_id is not None:
            if not self.gym_id:
                raise ConfigError(
                    "gym_id", self.gym_id, "must be a registered gymnasium id or null"
                )
            return
        if self.state.object_state and self.robot.type != "sim":
            raise ConfigError(
                "state.object_state",
                True,
                f"ground-truth object state exists only in the sim, not on robot.type={self.robot.type!r}; use cameras",
            )
        if not self.safety.enabled and self.robot.type != "sim":
            raise ConfigError(
                "safety.enabled", False, "the safety layer is always on for real robots"
            )
        self._validate_images()
        self._validate_joints()

    def _validate_images(self) -> None:
        h, w = self.robot.camera_height, self.robot.camera_width
        for cam, (top, left, height, width) in self.images.crops.items():
            if cam not in self.robot.cameras:
                raise ConfigError(
                    f"images.crops.{cam}",
                    cam,
                    f"no such camera; robot cameras are {self.robot.cameras}",
                )
            if top + height > h or left + width > w:
                raise ConfigError(
                    f"images.crops.{cam}",
                    (top, left, height, width),
                    f"crop leaves the {h}x{w} image",
                )

    def _validate_joints(self) -> None:
        name = self.chain_name
        if name is None:
            return
        spec = get_chain_spec(name)
        for joint in self.action.masked_joints:
            if joint not in spec.joint_names:
                raise ConfigError(
                    "action.masked_joints",
                    joint,
                    f"not an arm joint; choose from {spec.joint_names}",
                )
        if self.action.control_mode != "ee_delta" and len(self.action.masked_joints) == spec.dof:
            raise ConfigError(
                "action.masked_joints", self.action.masked_joints, "every arm joint is masked"
            )
        q = self.reset.joint_positions
        if q is not None:
            if len(q) not in (spec.dof, spec.dof + 1):
                raise ConfigError(
                    "reset.joint_positions",
                    q,
                    f"needs {spec.dof} arm joint positions {spec.joint_names} (optionally the gripper last)",
                )
            for js, value in zip(spec.joints, q):
                if not js.lower <= value <= js.upper:
                    raise ConfigError(
                        "reset.joint_positions",
                        q,
                        f"{js.name} = {value} is outside its limits [{js.lower}, {js.upper}]",
                    )
        if self.reset.ee_position is not None:
            chain = KinematicChain(spec)
            q0 = np.clip(np.zeros(spec.dof), chain.lower, chain.upper)
            result = chain.ik(
                np.asarray(self.reset.ee_position, dtype=float), q0, position_only=True
            )
            if not result.success:
                raise ConfigError(
                    "reset.ee_position",
                    self.reset.ee_position,
                    f"unreachable by the {name} arm (IK error {result.position_error:.4f} m)",
                )
