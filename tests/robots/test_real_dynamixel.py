"""Dynamixel protocol 2.0 against a simulated bus: CRC, stuffing, round trips, errors."""

from __future__ import annotations

import numpy as np
import pytest
from real_servo_sim import dxl_crc, dynamixel_arm

from hilrl.robots.dynamixel import (
    PING,
    READ,
    DynamixelBus,
    crc16,
    instruction_packet,
    stuff,
    unstuff,
)
from hilrl.robots.motor_bus import MotorChecksumError, MotorStatusError, MotorTimeoutError


def make_bus(port, retries: int = 2) -> DynamixelBus:  # type: ignore[no-untyped-def]
    bus = DynamixelBus(port.port, timeout_s=0.005, retries=retries, port_factory=lambda *a: port)
    bus.open()
    return bus


def test_packets_match_the_protocol_manual_examples() -> None:
    # ROBOTIS e-manual, protocol 2.0: ping id 1, and read 4 bytes at 132 from id 1.
    assert instruction_packet(1, PING) == bytes.fromhex("fffffd0001030001194e")
    assert instruction_packet(1, READ, bytes([0x84, 0, 4, 0])) == bytes.fromhex(
        "fffffd0001070002840004001d15"
    )


def test_crc_table_matches_a_bitwise_crc() -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 64, 300):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc16(data) == dxl_crc(data)


def test_byte_stuffing_round_trip_and_length_field() -> None:
    raw = b"\x01\xff\xff\xfd\x02\xff\xff\xfd\xfd"
    stuffed = stuff(raw)
    assert stuffed == b"\x01\xff\xff\xfd\xfd\x02\xff\xff\xfd\xfd\xfd"
    assert unstuff(stuffed) == raw
    rng = np.random.default_rng(1)
    for _ in range(50):
        data = bytes(rng.choice([0xFF, 0xFD, 0x00, 0x12], size=30).astype(np.uint8))
        assert unstuff(stuff(data)) == data
        assert b"\xff\xff\xfd\x00" not in stuff(data)
    # a write whose parameters contain FF FF FD: the length counts the stuffed payload
    packet = instruction_packet(1, 0x03, bytes([116, 0, 0xFF, 0xFF, 0xFD, 0x00]))
    length = packet[5] | (packet[6] << 8)
    assert len(packet) == 7 + length
    assert crc16(packet[:-2]) == packet[-2] | (packet[-1] << 8)


def test_ping_read_write_round_trips() -> None:
    port = dynamixel_arm()
    bus = make_bus(port)
    assert [bus.ping(i) for i in (1, 3)] == [1060, 1200]
    assert bus.model_of(1200, 3).name == "xl330-m288"
    port.servos[4].actual = 3071
    assert bus.read("present_position", 4) == 3071
    bus.write("torque_enable", 4, 1)
    bus.write("goal_position", 4, 1000)
    assert port.servos[4].goal == 1000 and port.servos[4].actual == 1000


def test_goal_position_with_stuffable_bytes_survives() -> None:
    port = dynamixel_arm()
    bus = make_bus(port)
    value = int.from_bytes(b"\xff\xff\xfd\x00", "little")  # 0x00FDFFFF
    bus.write("profile_velocity", 2, value)
    assert bus.read("profile_velocity", 2) == value


def test_sync_read_and_write_round_trip() -> None:
    port = dynamixel_arm()
    for k, servo in enumerate(port.servos.values()):
        servo.actual = 500 * (k + 1)
        servo.velocity = -3 * k
        servo.current = 5 * k
    bus = make_bus(port)
    assert bus.sync_read("present_position", [6, 2]) == [3000, 1000]
    block = bus.sync_read_registers(
        ["present_position", "present_velocity", "present_current"], [1, 2, 3]
    )
    assert block == {
        "present_position": [500, 1000, 1500],
        "present_velocity": [0, -3, -6],
        "present_current": [0, 5, 10],
    }
    bus.sync_write("goal_position", {1: -20, 5: 4000})
    assert port.servos[1].goal == -20 and port.servos[5].goal == 4000


def test_homing_offset_is_added_by_the_motor() -> None:
    port = dynamixel_arm()
    bus = make_bus(port)
    port.servos[1].actual = 100
    bus.write_eeprom("homing_offset", 1, 1948)
    assert bus.read("present_position", 1) == 2048
    assert bus.homing_offset_for(100, 2048) == 1948


def test_status_error_raises_naming_the_motor() -> None:
    port = dynamixel_arm()
    bus = make_bus(port)
    bus.write("torque_enable", 2, 1)
    with pytest.raises(MotorStatusError) as info:
        bus.write("homing_offset", 2, 10)  # EEPROM while torque is on
    assert info.value.motor_id == 2 and "access error" in str(info.value)


def test_alert_bit_is_kept_as_an_alert() -> None:
    port = dynamixel_arm()
    port.servos[3].error = 0x80
    bus = make_bus(port)
    assert bus.read("present_position", 3) == 2048
    assert 3 in bus.alerts


def test_crc_errors_are_retried_then_reported() -> None:
    port = dynamixel_arm()
    bus = make_bus(port, retries=1)
    port.corrupt_next = 1
    assert bus.read("present_position", 1) == 2048
    port.corrupt_next = 2
    with pytest.raises(MotorChecksumError, match=r"/dev/fake: motor id 1: status CRC mismatch"):
        bus.read("present_position", 1)


def test_silent_motor_times_out_naming_port_and_id() -> None:
    port = dynamixel_arm()
    port.silent.add(5)
    bus = make_bus(port, retries=0)
    with pytest.raises(MotorTimeoutError, match=r"/dev/fake: motor id 5: no answer"):
        bus.ping(5)
    with pytest.raises(MotorTimeoutError) as info:
        bus.sync_read("present_position", [4, 5, 6])
    assert info.value.motor_id == 5
