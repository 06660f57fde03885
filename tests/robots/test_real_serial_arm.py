"""SerialArm over a simulated servo bus: units, clipping, torque safety, tick timing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from camera_fakes import FakeCamera
from fake_clock import FakeClock
from real_servo_sim import (
    FakeServoPort,
    dynamixel_arm,
    feetech_arm,
    koch_calibration,
    so100_calibration,
)

from hilrl.core import Robot
from hilrl.robots import serial_arm as serial_arm_module
from hilrl.robots.dynamixel import DynamixelBus
from hilrl.robots.feetech import FeetechBus
from hilrl.robots.motor_bus import MotorBusError
from hilrl.robots.serial_arm import SerialArm

K = 2 * math.pi / 4096


def so100(port: FakeServoPort | None = None, **kwargs) -> tuple[SerialArm, FakeServoPort]:  # type: ignore[no-untyped-def]
    port = port or feetech_arm()
    bus = FeetechBus(port.port, timeout_s=0.005, port_factory=lambda *a: port)
    return SerialArm(bus, so100_calibration(), **kwargs), port


def test_is_a_robot_with_calibrated_names_units_and_limits() -> None:
    arm, _ = so100()
    assert isinstance(arm, Robot)
    assert arm.joint_names[-1] == "gripper" and len(arm.joint_names) == 6
    assert arm.joint_units == ("rad",) * 5 + ("fraction",)
    lower, upper = arm.joint_limits
    np.testing.assert_allclose(lower[0], -math.pi / 2) and np.testing.assert_allclose(
        upper[0], math.pi / 2
    )
    # shoulder_lift runs backwards: raw 3100 is its lower end
    np.testing.assert_allclose([lower[1], upper[1]], [-(3100 - 2900) * K, (2900 - 1000) * K])
    np.testing.assert_allclose([lower[5], upper[5]], [0.0, 1.0])


def test_connect_applies_calibration_and_holds_the_pose_without_a_jump() -> None:
    arm, port = so100()
    actual = {1: 2000, 2: 2500, 3: 3000, 4: 100, 5: 4000, 6: 2700}
    for i, a in actual.items():
        port.servos[i].actual = a
        port.servos[i].mem[42:44] = (3000).to_bytes(2, "little")  # a stale goal elsewhere
    arm.connect()
    cal = so100_calibration()
    for j in cal.joints.values():
        servo = port.servos[j.id]
        assert servo.homing_offset == j.homing_offset
        assert servo.limits() == (j.range_min, j.range_max)
        assert servo.torque
        assert servo.actual == actual[j.id], "enabling torque must not move the arm"
    assert port.servos[6]._get(48, 2) == 500  # gripper torque capped at 50 %
    assert port.servos[1]._get(48, 2) == 1000
    arm.disconnect()


def test_positions_velocities_currents_from_raw_ticks() -> None:
    arm, port = so100()
    arm.connect()
    actual = {1: 2048, 2: 2000, 3: 3300, 4: 1500, 5: 100, 6: 2410}
    for i, a in actual.items():
        port.servos[i].actual = a
    port.servos[2].velocity = 100  # steps/s
    port.servos[1].current = 20  # 6.5 mA units
    q = arm.read_joint_positions()
    cal = so100_calibration()
    # oracle: present = (actual - offset) mod 4096 (datasheet), q = dir * (present - zero) * 2pi/4096
    expected = []
    for name, j in cal.joints.items():
        present = (actual[j.id] - j.homing_offset) % 4096
        scale = K if name != "gripper" else 1 / (j.range_max - j.range_min)
        expected.append(j.direction * (present - j.zero) * scale)
    np.testing.assert_allclose(q, expected)
    assert q[0] == 0.0 and q[2] == pytest.approx((3300 - 500 - 3300) * K)
    assert q[5] == pytest.approx(-(2400 - 2800) / 1000)
    v = arm.read_joint_velocities()
    assert v[1] == pytest.approx(-100 * K)  # shoulder_lift's direction is -1
    assert np.all(v[[0, 2, 3, 4, 5]] == 0)
    assert arm.read_joint_currents()[0] == pytest.approx(0.13)
    arm.disconnect()


def test_targets_are_converted_back_to_ticks_and_round_trip() -> None:
    arm, port = so100()
    arm.connect()
    rng = np.random.default_rng(0)
    lower, upper = arm.joint_limits
    for _ in range(5):
        q = rng.uniform(lower, upper)
        arm.send_joint_targets(q)
        cal = so100_calibration()
        for k, j in enumerate(cal.joints.values()):
            scale = K if j.unit == "rad" else 1 / (j.range_max - j.range_min)
            assert port.servos[j.id].goal == round(j.zero + j.direction * q[k] / scale)
        np.testing.assert_allclose(arm.read_joint_positions()[:5], q[:5], atol=K)
        assert abs(arm.read_joint_positions()[5] - q[5]) <= 1e-3
    arm.disconnect()


def test_targets_outside_the_travel_are_clipped() -> None:
    arm, port = so100()
    arm.connect()
    lower, upper = arm.joint_limits
    arm.send_joint_targets(np.array([5.0, -5.0, 9.0, -9.0, 0.0, 1.5]))
    q = arm.read_joint_positions()
    np.testing.assert_allclose(q[:4], [upper[0], lower[1], upper[2], lower[3]], atol=K)
    assert q[5] == pytest.approx(1.0)
    for j in so100_calibration().joints.values():
        assert j.range_min <= port.servos[j.id].goal <= j.range_max
    with pytest.raises(ValueError, match="finite"):
        arm.send_joint_targets(np.array([np.nan, 0, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        arm.send_joint_targets(np.zeros(5))
    arm.disconnect()


def test_max_relative_target_caps_each_step_from_the_measured_pose() -> None:
    clock = FakeClock()
    arm, _ = so100(max_relative_target=0.1, clock=clock, sleep=clock.sleep)
    arm.connect()
    start = arm.read_joint_positions()
    far = start.copy()
    far[0] += 1.0
    far[3] -= 1.0
    far[5] = 1.0  # the gripper (a fraction) is not capped
    arm.send_joint_targets(far)
    clock.now += 1.0
    q = arm.read_joint_positions()
    assert q[0] == pytest.approx(start[0] + 0.1, abs=K)
    assert q[3] == pytest.approx(start[3] - 0.1, abs=K)
    assert q[5] == pytest.approx(1.0)
    arm.disconnect()


def test_disconnect_releases_torque_and_closes_the_port_twice_safely() -> None:
    cam = FakeCamera("front")
    arm, port = so100(cameras={"front": cam})
    arm.connect()
    assert cam.started and arm.read_cameras()["front"].shape == (96, 128, 3)
    arm.disconnect()
    assert not any(s.torque for s in port.servos.values())
    assert port.closed and not arm.is_connected and not cam.started
    arm.disconnect()
    with pytest.raises(RuntimeError, match="not connected"):
        arm.read_joint_positions()


def test_an_exception_in_the_control_loop_releases_torque() -> None:
    arm, port = so100()
    with pytest.raises(ZeroDivisionError), arm:
        arm.send_joint_targets(arm.read_joint_positions())
        assert all(s.torque for s in port.servos.values())
        _ = 1 / 0
    assert not any(s.torque for s in port.servos.values())
    assert port.closed


def test_atexit_guard_releases_torque_if_nobody_disconnects(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    registered: list = []
    monkeypatch.setattr(serial_arm_module.atexit, "register", registered.append)
    monkeypatch.setattr(serial_arm_module.atexit, "unregister", registered.remove)
    arm, port = so100()
    arm.connect()
    assert len(registered) == 1
    registered[0]()  # what the interpreter would run at exit
    assert not any(s.torque for s in port.servos.values()) and port.closed
    assert registered == []


def test_a_failed_torque_release_warns_loudly() -> None:
    arm, port = so100()
    arm.connect()
    port.write = lambda data: (_ for _ in ()).throw(OSError("cable pulled"))  # type: ignore[method-assign]
    with pytest.warns(RuntimeWarning, match="could not release torque"):
        arm.disconnect()
    assert not arm.is_connected


def test_wrong_motor_model_is_refused_before_torque_goes_on() -> None:
    port = feetech_arm()
    port.servos[3].mem[3:5] = (2825).to_bytes(2, "little")  # an sts3250 where an sts3215 belongs
    arm, _ = so100(port)
    with pytest.raises(MotorBusError) as info:
        arm.connect()
    msg = str(info.value)
    assert "elbow_flex" in msg and "motor id 3" in msg and "sts3250" in msg
    assert not any(s.torque for s in port.servos.values()) and port.closed


def test_missing_motor_names_port_and_id() -> None:
    port = feetech_arm()
    port.silent.add(4)
    arm, _ = so100(port)
    with pytest.raises(MotorBusError, match=r"/dev/fake: motor id 4"):
        arm.connect()
    assert port.closed


def test_advance_keeps_a_drift_free_tick_schedule() -> None:
    clock = FakeClock()
    arm, _ = so100(clock=clock, sleep=clock.sleep)
    arm.connect()
    arm.advance(0.1)  # the first call anchors the schedule
    start = clock.now
    work = [0.01, 0.03, 0.0, 0.07, 0.02] * 4
    for w in work:
        clock.now += w  # the control loop's own work
        arm.advance(0.1)
    assert clock.now == pytest.approx(start + 0.1 * len(work))  # ticks land exactly on schedule
    assert len(clock.sleeps) == len(work) + 1
    assert arm.overruns == 0
    clock.now += 0.35  # a long stall: restart the schedule instead of bursting
    arm.advance(0.1)
    assert arm.overruns == 1
    before = clock.now
    arm.advance(0.1)
    assert clock.now == pytest.approx(before + 0.1)
    arm.disconnect()


def test_koch_on_dynamixel_unwraps_readings_past_the_encoder_turn() -> None:
    port = dynamixel_arm()
    bus = DynamixelBus(port.port, timeout_s=0.005, port_factory=lambda *a: port)
    arm = SerialArm(bus, koch_calibration(), gripper_max_effort=0.4)
    arm.connect()
    assert port.servos[6]._get(11, 1) == 5  # XL330 gripper: current-based position mode
    assert port.servos[6]._get(102, 2) == round(0.4 * 1750)
    assert port.servos[1]._get(11, 1) == 3
    # joint 1: offset 1948; encoder at 3950 (just below the wrap) reads 3950 + 1948 = 5898,
    # which is 1802 one turn down: q = (1802 - 2048) * K
    port.servos[1].actual = 3950
    port.servos[3].actual = 2000
    port.servos[3].current = 300  # mA on an XL330
    q = arm.read_joint_positions()
    assert q[0] == pytest.approx((1802 - 2048) * K)
    assert q[2] == pytest.approx((2000 - 1000) * K)
    assert arm.read_joint_currents()[2] == pytest.approx(0.3)
    arm.send_joint_targets(q)
    assert port.servos[1].actual == 3950  # commanding the measured pose does not move it
    arm.disconnect()
    assert not any(s.torque for s in port.servos.values())


def test_a_leader_arm_stays_limp_and_refuses_targets() -> None:
    arm, port = so100(torque_on_connect=False)
    arm.connect()
    assert not any(s.torque for s in port.servos.values())
    port.servos[1].actual = 2148  # moved by hand
    assert arm.read_joint_positions()[0] == pytest.approx(100 * K)
    with pytest.raises(RuntimeError, match="torque is off"):
        arm.send_joint_targets(arm.read_joint_positions())
    arm.enable_torque()
    assert all(s.torque for s in port.servos.values()) and port.servos[1].actual == 2148
    arm.release_torque()
    assert not any(s.torque for s in port.servos.values())
    arm.disconnect()
