"""Calibration files (round trip, validation) and the interactive routine on a simulated arm."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from real_servo_sim import FakeServo, FakeServoPort, so100_calibration

from hilrl.cli.calibrate import positive_direction_hints, run_calibration
from hilrl.config.robot import RobotConfig
from hilrl.robots.calibration import (
    CalibrationError,
    calibrate,
    calibration_to_dict,
    describe_calibration,
    joint_setups,
    load_calibration,
    save_calibration,
)
from hilrl.robots.dynamixel import DynamixelBus
from hilrl.robots.feetech import FeetechBus
from hilrl.robots.motor_bus import MotorBus
from hilrl.robots.serial_arm import ARM_LAYOUTS, SerialArm

K = 2 * math.pi / 4096
NAMES = ARM_LAYOUTS["so100"].joint_names


# ------------------------------------------------------------------------- file
def test_file_round_trip(tmp_path: Path) -> None:
    cal = so100_calibration()
    path = tmp_path / "sub" / "arm.json"
    save_calibration(cal, path)
    assert json.loads(path.read_text())["format"] == "hilrl-calibration"
    assert load_calibration(path, joint_names=NAMES, motor_family="feetech") == cal
    assert [p.name for p in path.parent.iterdir()] == ["arm.json"]  # no temp file left
    assert "shoulder_lift" in describe_calibration(cal)


def _broken(mutate: Callable[[dict], None]) -> dict:
    data = copy.deepcopy(calibration_to_dict(so100_calibration()))
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "joint", "words"),
    [
        (lambda d: d["joints"]["elbow_flex"].pop("zero"), "elbow_flex", "missing field 'zero'"),
        (lambda d: d["joints"]["wrist_flex"].update(direction=0), "wrist_flex", "direction"),
        (lambda d: d["joints"]["shoulder_pan"].update(range_min=3500), "shoulder_pan", "range_min"),
        (lambda d: d["joints"]["shoulder_pan"].update(range_max=4096), "shoulder_pan", "range_max"),
        (lambda d: d["joints"]["wrist_roll"].update(id=2), "wrist_roll", "also used by"),
        (lambda d: d["joints"]["gripper"].update(zero=2000.0), "gripper", "closed end"),
        (lambda d: d["joints"]["elbow_flex"].update(unit="deg"), "elbow_flex", "unit"),
        (lambda d: d["joints"]["elbow_flex"].update(id="3"), "elbow_flex", "must be int"),
        (lambda d: d["joints"]["elbow_flex"].update(speed=3), "elbow_flex", "unknown fields"),
        (lambda d: d["joints"]["elbow_flex"].update(range_min=3480), "elbow_flex", "not moved"),
        (lambda d: d.update(version=7), None, "unsupported version"),
    ],
)
def test_validation_errors_name_file_and_joint(
    tmp_path: Path, mutate: Callable[[dict], None], joint: str | None, words: str
) -> None:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(_broken(mutate)))
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    assert str(path) in str(info.value)
    assert info.value.joint == joint
    if joint:
        assert repr(joint) in str(info.value)
    assert words in str(info.value)


def test_file_must_fit_the_robot(tmp_path: Path) -> None:
    path = tmp_path / "cal.json"
    save_calibration(so100_calibration(), path)
    with pytest.raises(CalibrationError, match="dynamixel"):
        load_calibration(path, motor_family="dynamixel")
    with pytest.raises(CalibrationError, match="do not match"):
        load_calibration(path, joint_names=NAMES[:-1])
    with pytest.raises(CalibrationError, match="unknown motor model 'sts3215'"):
        load_calibration(path, known_models=["xl330-m288"])
    with pytest.raises(CalibrationError, match="file not found"):
        load_calibration(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        load_calibration(tmp_path / "bad.json")


# ----------------------------------------------------------- interactive routine
class PhysicalArm:
    """A true arm behind the fake motors: joint angle -> encoder ticks, unknown to the routine."""

    def __init__(self, port: FakeServoPort) -> None:
        self.port = port
        # encoder reading at q = 0, and whether ticks grow with the angle
        self.a0 = [2048, 3900, 200, 1000, 3000]
        self.sign = [1, -1, 1, -1, 1]
        self.limits = [(-1.5, 1.5), (-0.2, 2.8), (-2.5, 0.3), (-1.5, 1.5), (-math.pi, math.pi)]
        self.g0, self.gsign, self.gspan = 1500, -1, 900
        self.q = np.zeros(5)
        self.grip = 0.0
        self.apply()

    def apply(self) -> None:
        for k in range(5):
            ticks = self.a0[k] + self.sign[k] * self.q[k] / K
            self.port.servos[k + 1].actual = round(ticks) % 4096
        self.port.servos[6].actual = round(self.g0 + self.gsign * self.grip * self.gspan) % 4096

    def moves(self, k: int, target: float, step: float = 0.05) -> list[Callable[[], None]]:
        """Steps that take joint k (5: the gripper) to ``target``, one poll apart."""
        start = self.grip if k == 5 else float(self.q[k])
        n = max(1, math.ceil(abs(target - start) / step))
        out: list[Callable[[], None]] = []
        for i in range(1, n + 1):
            value = start + (target - start) * i / n

            def act(value: float = value) -> None:
                if k == 5:
                    self.grip = value
                else:
                    self.q[k] = value
                self.apply()

            out.append(act)
        return out


class ScriptedIO:
    """Each phase: the moves made while the routine polls, then Enter."""

    def __init__(self, phases: list[list[Callable[[], None]]]) -> None:
        self.phases = phases
        self.messages: list[str] = []

    def say(self, text: str) -> None:
        self.messages.append(text)

    def enter_pressed(self, timeout_s: float) -> bool:
        assert self.phases, "the routine asked for more than the script holds"
        if self.phases[0]:
            self.phases[0].pop(0)()
            return False
        self.phases.pop(0)
        return True


def script(arm: PhysicalArm) -> list[list[Callable[[], None]]]:
    phases: list[list[Callable[[], None]]] = [[]]  # reference pose: as it is
    phases.append([])  # shoulder_pan not moved at first: the routine must ask again
    for k in range(5):
        phases.append(arm.moves(k, 0.3 if k != 1 else 0.25))
    phases.append(arm.moves(5, 0.3))
    sweep: list[Callable[[], None]] = []
    for k in range(5):
        lo, hi = arm.limits[k]
        sweep += arm.moves(k, lo) + arm.moves(k, hi) + arm.moves(k, 0.0)
    sweep += arm.moves(5, 0.0) + arm.moves(5, 1.0)
    phases.append(sweep)
    return phases


def fake_bus(protocol: str) -> tuple[MotorBus, FakeServoPort]:
    if protocol == "feetech":
        port = FakeServoPort("feetech", [FakeServo(i, 777, "feetech") for i in range(1, 7)])
        bus: MotorBus = FeetechBus(port.port, timeout_s=0.005, port_factory=lambda *a: port)
    else:
        models = (1060, 1060, 1200, 1200, 1200, 1200)
        port = FakeServoPort(
            "dynamixel", [FakeServo(i + 1, m, "dynamixel") for i, m in enumerate(models)]
        )
        bus = DynamixelBus(port.port, timeout_s=0.005, port_factory=lambda *a: port)
    return bus, port


@pytest.mark.parametrize("protocol", ["feetech", "dynamixel"])
def test_interactive_calibration_recovers_the_true_joint_angles(protocol: str) -> None:
    bus, port = fake_bus(protocol)
    for servo in port.servos.values():  # leftovers from an earlier calibration
        servo.mem[31 if protocol == "feetech" else 20] = 77
    arm = PhysicalArm(port)
    io = ScriptedIO(script(arm))
    bus.open()
    cal = calibrate(
        bus, joint_setups(NAMES, range(1, 7)), io, robot_type="so100", reference_pose=[0.0] * 5
    )
    assert not io.phases, "the whole script was used"
    assert any("moved only 0 ticks" in m for m in io.messages)
    assert not any(s.torque for s in port.servos.values()), "torque stays off"
    # the true signs; the gripper's ticks fall as it opens
    assert [j.direction for j in cal.joints.values()] == [1, -1, 1, -1, 1, -1]
    # calibrated travel = the physical limits (the roll turns fully)
    for k, name in enumerate(NAMES[:4]):
        lo, hi = cal.joints[name].limits
        assert lo == pytest.approx(arm.limits[k][0], abs=2 * K)
        assert hi == pytest.approx(arm.limits[k][1], abs=2 * K)

    # an arm built on this calibration reads the true angles anywhere in the travel
    robot = SerialArm(bus, cal, gripper_max_effort=None)
    robot.connect()
    rng = np.random.default_rng(3)
    for _ in range(20):
        arm.q = np.array([rng.uniform(lo + 0.01, hi - 0.01) for lo, hi in arm.limits])
        arm.grip = float(rng.uniform(0, 1))
        arm.apply()
        q = robot.read_joint_positions()
        np.testing.assert_allclose(q[:5], arm.q, atol=2 * K)
        assert q[5] == pytest.approx(arm.grip, abs=0.005)
    robot.disconnect()


def test_direction_hints_follow_the_kinematic_chain() -> None:
    from hilrl.kinematics import KinematicChain, get_chain_spec

    pose = np.array([0.0, 1.45, -1.21, 0.98, 0.0])
    hints = positive_direction_hints("so100", pose.tolist())
    assert set(hints) == set(NAMES[:5])
    chain = KinematicChain(get_chain_spec("so100"))
    for k, name in enumerate(NAMES[1:4], start=1):
        dq = pose.copy()
        dq[k] += 0.1
        dz = chain.fk(dq)[2, 3] - chain.fk(pose)[2, 3]
        if abs(dz) > 0.005:  # the vertical part of the tip motion is named with its sign
            assert ("up " if dz > 0 else "down ") + f"{abs(dz) * 1000:.0f} mm" in hints[name]
    assert "left" in hints["shoulder_pan"] or "right" in hints["shoulder_pan"]
    assert "as seen looking at it from its tip" in hints["wrist_roll"]


def test_run_calibration_writes_the_file_and_keeps_a_backup(tmp_path: Path) -> None:
    _, port = fake_bus("feetech")
    arm = PhysicalArm(port)
    out = tmp_path / "cal.json"
    out.write_text("old")
    cfg = RobotConfig(type="so100", port="/dev/fake", calibration_file=str(out), cameras=())
    cal = run_calibration(cfg, out, ScriptedIO(script(arm)), port_factory=lambda *a: port)
    assert load_calibration(out) == cal
    assert (tmp_path / "cal.json.bak").read_text() == "old"
    assert port.closed
