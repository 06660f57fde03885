"""Leader-arm teleoperation: a second arm, moved by hand, whose joints the follower mirrors.

The leader is any :class:`~hilrl.core.Robot` (its torque off, so it can be moved by
hand; this controller only reads it and never sends it targets). Its joint positions
(times ``joint_signs``, plus ``joint_offsets``) are the follower's joint targets, turned
into an action for the env's control mode:

* ``joint_absolute`` (the natural fit): each arm joint's target mapped affinely from the
  follower's limits to [-1, 1] (the env's ``joint_absolute`` action);
* ``joint_delta``: (target - follower's measured position) / ``joint_step_rad``, clipped;
* ``ee_delta``: needs the follower's kinematic chain; (FK(target) - FK(measured)) /
  ``ee_step_m``, clipped (translation only: the env must not use ``ee_rotation``).

The gripper (last joint, named 'gripper') becomes close / stay / open from where the
leader's gripper sits in its range: the closed third closes, the open third opens.

Intervention and episode events come from a *trigger*: any
:class:`~hilrl.core.InputController` (a keyboard: space toggles; a gamepad or HID device
such as a USB foot pedal: its 'intervene' button), whose motion is ignored.

``start()`` connects the leader and checks that it has as many joints as the follower,
raising :class:`~hilrl.teleop.errors.TeleopError` before anything moves.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

import numpy as np

from hilrl.core import InputController, Robot, TeleopCommand
from hilrl.kinematics import KinematicChain
from hilrl.teleop.errors import TeleopError
from hilrl.types import Observation, gripper_command, gripper_index

LEADER_MODES = ("joint_absolute", "joint_delta", "ee_delta")
GRIPPER_NAME = "gripper"


class LeaderArmController:
    """Mirrors a leader arm onto the follower while the trigger says 'intervene'."""

    def __init__(
        self,
        leader: Robot,
        follower: Robot,
        trigger: InputController,
        *,
        mode: str = "joint_absolute",
        arm_joints: Sequence[str] | None = None,
        gripper: bool = True,
        gripper_close_at_lower: bool = True,
        joint_offsets: Sequence[float] | None = None,
        joint_signs: Sequence[float] | None = None,
        joint_step_rad: float = 0.1,
        chain: KinematicChain | None = None,
        ee_step_m: Sequence[float] = (0.02, 0.02, 0.02),
        show_hint: bool = True,
        out: TextIO | None = None,
    ) -> None:
        if mode not in LEADER_MODES:
            raise ValueError(f"leader mode must be one of {LEADER_MODES}, got {mode!r}")
        self.leader = leader
        self.follower = follower
        self.trigger = trigger
        self.mode = mode
        self.requested_arm_joints = None if arm_joints is None else tuple(arm_joints)
        self.gripper = gripper
        self.gripper_close_at_lower = gripper_close_at_lower
        self.joint_offsets = joint_offsets
        self.joint_signs = joint_signs
        self.joint_step_rad = float(joint_step_rad)
        self.chain = chain
        self.ee_step_m = np.asarray(ee_step_m, dtype=np.float64)
        self.show_hint = show_hint
        self.out = out
        self._connected_leader = False
        self._started = False
        self._n = 0
        self._arm_index = np.zeros(0, dtype=np.int64)
        self._chain_index = np.zeros(0, dtype=np.int64)
        self._gripper_index: int | None = None
        self._offsets = np.zeros(0)
        self._signs = np.zeros(0)
        self._lower = np.zeros(0)
        self._upper = np.zeros(0)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect the leader and check it against the follower; nothing moves here."""
        if self._started:
            return
        if not self.leader.is_connected:
            self.leader.connect()
            self._connected_leader = True
        try:
            self._check_and_plan()
            if self.show_hint:
                print(self.hint(), file=self.out or sys.stderr, flush=True)
            self.trigger.start()
        except BaseException:
            self._disconnect_leader()
            raise
        self._started = True

    def stop(self) -> None:
        if self._started:
            self.trigger.stop()
        self._started = False
        self._disconnect_leader()

    def reset(self) -> None:
        self.trigger.reset()

    def hint(self) -> str:
        return (
            f"Leader-arm teleop ({self.mode}, {self._n} joints): move the leader arm by hand; "
            "the follower mirrors it only while you intervene. Intervention and episode "
            "events come from the trigger device (its controls below; its motion keys are "
            "ignored)."
        )

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        if not self._started:
            raise TeleopError("leader arm: poll() before start(); call start() first")
        cmd = self.trigger.poll(observation, info)
        if not cmd.is_intervening:
            return TeleopCommand(is_intervening=False, action=None, events=cmd.events)
        return TeleopCommand(is_intervening=True, action=self.action(), events=cmd.events)

    # ------------------------------------------------------------------ mapping
    def targets(self) -> np.ndarray:
        """The follower joint targets the leader's pose asks for (all joints)."""
        q = np.asarray(self.leader.read_joint_positions(), dtype=np.float64)
        if q.shape != (self._n,):
            raise TeleopError(f"leader arm: read {q.shape} joint positions, expected ({self._n},)")
        return q * self._signs + self._offsets

    def action(self) -> np.ndarray:
        """The env action ([-1, 1], gripper last) that moves the follower to :meth:`targets`."""
        target = self.targets()
        arm = self._arm_index
        if self.mode == "joint_absolute":
            lo, hi = self._lower[arm], self._upper[arm]
            values = 2.0 * (target[arm] - lo) / (hi - lo) - 1.0
        else:
            measured = np.asarray(self.follower.read_joint_positions(), dtype=np.float64)
            if self.mode == "joint_delta":
                values = (target[arm] - measured[arm]) / self.joint_step_rad
            else:
                assert self.chain is not None
                ci = self._chain_index
                delta = self.chain.fk(target[ci])[:3, 3] - self.chain.fk(measured[ci])[:3, 3]
                values = delta / self.ee_step_m
        out = list(np.clip(values, -1.0, 1.0))
        if self.gripper:
            out.append(self._gripper_value(target))
        return np.asarray(out, dtype=np.float32)

    def _gripper_value(self, target: np.ndarray) -> float:
        g = self._gripper_index
        assert g is not None
        lo, hi = self._lower[g], self._upper[g]
        opened = (target[g] - lo) / (hi - lo)  # 0 at the lower limit
        if not self.gripper_close_at_lower:
            opened = 1.0 - opened
        # [0, 1] opening -> [-1, 1] command: the closed third closes, the open third opens.
        return float(gripper_command(gripper_index(2.0 * np.clip(opened, 0.0, 1.0) - 1.0)))

    # ------------------------------------------------------------------ checks
    def _check_and_plan(self) -> None:
        leader_names = tuple(self.leader.joint_names)
        follower_names = tuple(self.follower.joint_names)
        if len(leader_names) != len(follower_names):
            raise TeleopError(
                f"leader arm has {len(leader_names)} joints {leader_names} but the follower "
                f"has {len(follower_names)} {follower_names}; the leader's joints are mirrored "
                "one to one, so use a leader of the follower's model (same joint count)"
            )
        n = len(follower_names)
        q = np.asarray(self.leader.read_joint_positions(), dtype=np.float64)
        if q.shape != (n,):
            raise TeleopError(
                f"leader arm reports {q.shape[0] if q.ndim == 1 else q.shape} joint positions "
                f"but declares {n} joints {leader_names}; check the leader robot's driver"
            )
        self._n = n
        self._offsets = self._per_joint(self.joint_offsets, 0.0, "joint_offsets", follower_names)
        self._signs = self._per_joint(self.joint_signs, 1.0, "joint_signs", follower_names)
        if not np.all(np.isin(self._signs, (-1.0, 1.0))):
            raise TeleopError(f"leader arm: joint_signs must be +1 or -1, got {self.joint_signs}")
        lower, upper = self.follower.joint_limits
        self._lower = np.asarray(lower, dtype=np.float64)
        self._upper = np.asarray(upper, dtype=np.float64)
        has_gripper = follower_names[-1] == GRIPPER_NAME
        self._gripper_index = n - 1 if has_gripper else None
        if self.gripper and not has_gripper:
            raise TeleopError(
                f"leader arm: the follower has no joint named '{GRIPPER_NAME}' (last of "
                f"{follower_names}) to command; set env.action.use_gripper=false"
            )
        arm_names = tuple(
            name for name in follower_names if not (has_gripper and name == GRIPPER_NAME)
        )
        if self.requested_arm_joints is not None:
            unknown = [j for j in self.requested_arm_joints if j not in arm_names]
            if unknown:
                raise TeleopError(
                    f"leader arm: joints {unknown} are not follower arm joints {arm_names}"
                )
            arm_names = self.requested_arm_joints
        self._arm_index = np.array([follower_names.index(j) for j in arm_names], dtype=np.int64)
        if self.mode == "ee_delta":
            if self.chain is None:
                raise TeleopError(
                    "leader arm: mode 'ee_delta' needs the follower's kinematic chain; pass "
                    "chain=..., or run the env with env.action.control_mode=joint_absolute"
                )
            missing = [j for j in self.chain.spec.joint_names if j not in follower_names]
            if missing:
                raise TeleopError(
                    f"leader arm: chain '{self.chain.spec.name}' joints {missing} are not "
                    f"follower joints {follower_names}"
                )
            self._chain_index = np.array(
                [follower_names.index(j) for j in self.chain.spec.joint_names], dtype=np.int64
            )
            if self.ee_step_m.shape != (3,) or np.any(self.ee_step_m <= 0):
                raise TeleopError(
                    f"leader arm: ee_step_m must be 3 positive steps, got {self.ee_step_m}"
                )
        if np.any(self._upper <= self._lower):
            raise TeleopError(
                f"leader arm: follower joint limits must have upper > lower, got "
                f"{self._lower} / {self._upper}"
            )

    def _per_joint(
        self, values: Sequence[float] | None, default: float, name: str, names: tuple[str, ...]
    ) -> np.ndarray:
        if values is None:
            return np.full(len(names), default)
        arr = np.asarray(values, dtype=np.float64)
        if arr.shape != (len(names),):
            raise TeleopError(
                f"leader arm: {name} has {arr.size} values but the arms have {len(names)} "
                f"joints {names}; give one per joint"
            )
        return arr

    def _disconnect_leader(self) -> None:
        if self._connected_leader:
            self._connected_leader = False
            self.leader.disconnect()

    @property
    def action_dim(self) -> int:
        arms = len(self._arm_index) if self.mode != "ee_delta" else 3
        return arms + int(self.gripper)
