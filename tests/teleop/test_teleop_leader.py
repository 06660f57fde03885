"""Leader arm: joint-count check before anything moves, and the follower mirroring it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from env_fakes import GRIPPER_LIMITS, FakeRobot

from hilrl.config.env import ActionConfig, EnvConfig
from hilrl.config.robot import RobotConfig
from hilrl.envs import make_env
from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import SIM_ARM
from hilrl.teleop.base import LatchedController
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.leader import LeaderArmController
from hilrl.types import GRIPPER_CLOSE, GRIPPER_OPEN, GRIPPER_STAY, gripper_index


class Trigger(LatchedController):
    """A key-toggled trigger without a device; records start / stop."""

    def __init__(self) -> None:
        super().__init__(intervention_mode="toggle", gripper=False, show_hint=False)
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1


class SmallArm(FakeRobot):
    """A leader with one joint fewer than the follower (no wrist roll)."""

    def __init__(self) -> None:
        super().__init__(cameras=())
        self.joint_names = (*self.joint_names[:4], "gripper")
        self._q = np.delete(self._q, 4)

    def send_joint_targets(self, targets: np.ndarray) -> None:
        raise AssertionError("the leader must never be commanded")


def leader_at(q: np.ndarray) -> FakeRobot:
    leader = FakeRobot(cameras=())
    leader.set_joint_positions(q)
    return leader


def controller(leader: FakeRobot, follower: FakeRobot, **kw: object) -> LeaderArmController:
    kw.setdefault("out", io.StringIO())
    return LeaderArmController(leader, follower, Trigger(), **kw)  # type: ignore[arg-type]


def intervene(ctrl: LeaderArmController) -> None:
    trigger = ctrl.trigger
    assert isinstance(trigger, Trigger)
    trigger.tap("intervene")


def test_joint_count_mismatch_errors_before_anything_moves() -> None:
    follower = FakeRobot(cameras=())
    leader = SmallArm()
    ctrl = controller(leader, follower)
    with pytest.raises(TeleopError) as info:
        ctrl.start()
    message = str(info.value)
    assert "leader arm has 5 joints" in message and "follower has 6" in message
    assert "same joint count" in message
    assert follower.sent == []
    assert isinstance(ctrl.trigger, Trigger) and ctrl.trigger.started == 0
    assert not leader.is_connected  # connected for the check, released after it
    with pytest.raises(TeleopError, match="before start"):
        ctrl.poll({}, {})


def test_per_joint_calibration_must_match_the_joint_count() -> None:
    ctrl = controller(FakeRobot(cameras=()), FakeRobot(cameras=()), joint_offsets=[0.0] * 5)
    with pytest.raises(TeleopError, match="joint_offsets has 5 values but the arms have 6"):
        ctrl.start()
    ctrl = controller(FakeRobot(cameras=()), FakeRobot(cameras=()), mode="ee_delta")
    with pytest.raises(TeleopError, match="needs the follower's kinematic chain"):
        ctrl.start()


def test_joint_absolute_action_maps_back_to_the_leader_pose() -> None:
    follower = FakeRobot(cameras=())
    lower, upper = follower.joint_limits
    rng = np.random.default_rng(0)
    q = rng.uniform(lower, upper)
    ctrl = controller(leader_at(q), follower)
    ctrl.start()
    assert ctrl.poll({}, {}).action is None  # not intervening yet
    intervene(ctrl)
    cmd = ctrl.poll({}, {})
    assert cmd.is_intervening and cmd.action is not None
    assert cmd.action.shape == (6,) and cmd.action.dtype == np.float32
    recovered = lower[:5] + (cmd.action[:5] + 1.0) / 2.0 * (upper[:5] - lower[:5])
    np.testing.assert_allclose(recovered, q[:5], atol=1e-5)
    ctrl.stop()


@pytest.mark.parametrize(
    ("gap", "command"),
    [(GRIPPER_LIMITS[0], GRIPPER_CLOSE), (GRIPPER_LIMITS[1], GRIPPER_OPEN), (0.035, GRIPPER_STAY)],
)
def test_leader_gripper_becomes_close_stay_open(gap: float, command: int) -> None:
    follower = FakeRobot(cameras=())
    q = follower.home_joint_positions()
    q[-1] = gap
    ctrl = controller(leader_at(q), follower)
    ctrl.start()
    intervene(ctrl)
    action = ctrl.poll({}, {}).action
    assert action is not None and int(gripper_index(action[-1])) == command


def test_signs_and_offsets_calibrate_the_leader() -> None:
    follower = FakeRobot(cameras=())
    q = follower.home_joint_positions()
    signs = [1, -1, 1, 1, 1, 1]
    offsets = [0.1, 0.0, 0.0, 0.0, 0.0, 0.0]
    ctrl = controller(leader_at(q), follower, joint_signs=signs, joint_offsets=offsets)
    ctrl.start()
    np.testing.assert_allclose(ctrl.targets(), q * signs + offsets)


def test_joint_delta_steps_toward_the_leader() -> None:
    follower = FakeRobot(cameras=())
    q = follower.home_joint_positions()
    target = q.copy()
    target[0] += 0.05
    target[2] -= 1.0  # far: clipped to one full step
    ctrl = controller(leader_at(target), follower, mode="joint_delta", joint_step_rad=0.1)
    ctrl.start()
    intervene(ctrl)
    a = ctrl.poll({}, {}).action
    assert a is not None
    np.testing.assert_allclose(a[:5], [0.5, 0.0, -1.0, 0.0, 0.0], atol=1e-6)


def env_config(mode: str) -> EnvConfig:
    cfg = EnvConfig(
        robot=RobotConfig(camera_height=48, camera_width=64),
        use_cameras=False,
        action=ActionConfig(control_mode=mode),
    )
    cfg.validate()
    return cfg


def test_follower_mirrors_the_leader_through_the_env() -> None:
    follower = FakeRobot(cameras=())
    q = follower.home_joint_positions()
    q[:5] += (0.4, -0.3, 0.2, 0.5, -0.6)  # more than one safety-limited step away
    q[-1] = GRIPPER_LIMITS[0]  # leader's gripper closed
    ctrl = controller(leader_at(q), follower)
    env = make_env(env_config("joint_absolute"), robot=follower, controller=ctrl)
    ctrl.start()
    env.reset(seed=0)
    policy = np.zeros(6, dtype=np.float32)
    _, _, _, _, info = env.step(policy)
    assert not info["is_intervention"]
    intervene(ctrl)
    for _ in range(5):
        _, _, _, _, info = env.step(policy)
        assert info["is_intervention"]
    np.testing.assert_allclose(follower.read_joint_positions()[:5], q[:5], atol=1e-5)
    assert follower.read_joint_positions()[-1] == pytest.approx(GRIPPER_LIMITS[0])
    ctrl.stop()


def test_ee_delta_follower_tool_reaches_the_leader_tool() -> None:
    chain = KinematicChain(SIM_ARM)
    follower = FakeRobot(cameras=())
    q = follower.home_joint_positions()
    q[:4] += (0.25, 0.1, -0.15, 0.1)
    target = chain.fk(q[:5])[:3, 3]
    cfg = env_config("ee_delta")
    low, high = np.array(cfg.workspace.low), np.array(cfg.workspace.high)
    assert np.all(target > low) and np.all(target < high)
    ctrl = controller(leader_at(q), follower, mode="ee_delta", chain=chain)
    env = make_env(cfg, robot=follower, controller=ctrl)
    ctrl.start()
    env.reset(seed=0)
    intervene(ctrl)
    for _ in range(20):
        env.step(np.zeros(4, dtype=np.float32))
    reached = chain.fk(follower.read_joint_positions()[:5])[:3, 3]
    np.testing.assert_allclose(reached, target, atol=2e-3)


def test_stop_disconnects_a_leader_it_connected_and_stops_the_trigger() -> None:
    leader = FakeRobot(cameras=())
    ctrl = controller(leader, FakeRobot(cameras=()))
    ctrl.start()
    assert leader.is_connected
    ctrl.stop()
    assert not leader.is_connected
    assert isinstance(ctrl.trigger, Trigger) and ctrl.trigger.stopped == 1


def test_masked_joints_shrink_the_joint_action() -> None:
    follower = FakeRobot(cameras=())
    ctrl = controller(
        leader_at(follower.home_joint_positions()),
        follower,
        arm_joints=("shoulder_pan", "shoulder_lift", "elbow_flex"),
    )
    ctrl.start()
    intervene(ctrl)
    a = ctrl.poll({}, {}).action
    assert a is not None and a.shape == (4,)
