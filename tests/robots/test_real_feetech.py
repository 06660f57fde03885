"""Feetech SCS/STS protocol against a simulated bus: framing, round trips, errors, retries."""

from __future__ import annotations

import pytest
from real_servo_sim import FakeServo, FakeServoPort, feetech_arm

from hilrl.robots.feetech import (
    FEETECH_REGISTERS,
    PING,
    FeetechBus,
    checksum,
    instruction_packet,
)
from hilrl.robots.motor_bus import (
    MotorBusError,
    MotorChecksumError,
    MotorTimeoutError,
    Register,
    open_serial_port,
)


def make_bus(port: FakeServoPort, retries: int = 2) -> FeetechBus:
    bus = FeetechBus(port.port, timeout_s=0.005, retries=retries, port_factory=lambda *a: port)
    bus.open()
    return bus


def test_packet_framing_matches_the_protocol_document() -> None:
    # PING to id 1: FF FF 01 02 01 FB (checksum = ~(1 + 2 + 1))
    assert instruction_packet(1, PING) == bytes.fromhex("ffff010201fb")
    # READ 2 bytes at 56 from id 1: FF FF 01 04 02 38 02 BE
    assert instruction_packet(1, 0x02, bytes([56, 2])) == bytes.fromhex("ffff0104023802be")
    assert checksum(bytes([1, 4, 2, 56, 2])) == 0xBE


@pytest.mark.parametrize(
    ("value", "bit", "word"),
    [
        (0, 15, 0),
        (5, 15, 5),
        (-5, 15, 0x8005),
        (-3, 11, 0x803),
        (2047, 11, 2047),
        (-600, 10, 0x658),
    ],
)
def test_sign_magnitude_fields(value: int, bit: int, word: int) -> None:
    reg = Register(0, 2, signed=True, sign_bit=bit)
    assert reg.encode(value) == word.to_bytes(2, "little")
    assert reg.decode(word.to_bytes(2, "little")) == value


def test_sign_magnitude_field_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="2048"):
        FEETECH_REGISTERS["homing_offset"].encode(2048)


def test_ping_read_write_round_trips() -> None:
    port = feetech_arm(ids=(1, 2, 3))
    bus = make_bus(port)
    assert bus.ping(2) == 777
    assert bus.model_of(777, 2).name == "sts3215"
    port.servos[2].actual = 3000
    assert bus.read("present_position", 2) == 3000
    bus.write("torque_enable", 2, 1)
    bus.write("goal_position", 2, 1234)
    assert port.servos[2].goal == 1234
    assert bus.read("goal_position", 2) == 1234
    assert port.servos[2].actual == 1234  # torque on: the fake servo tracks its goal


def test_sync_read_and_write_round_trip_in_the_requested_order() -> None:
    port = feetech_arm(ids=(1, 2, 3, 4))
    for k, servo in enumerate(port.servos.values()):
        servo.actual = 1000 + 100 * k
        servo.velocity = -(k + 1) * 7
        servo.current = 10 * k
    bus = make_bus(port)
    assert bus.sync_read("present_position", [3, 1, 4]) == [1200, 1000, 1300]
    block = bus.sync_read_registers(
        ["present_position", "present_velocity", "present_current"], [1, 2, 3, 4]
    )
    assert block["present_position"] == [1000, 1100, 1200, 1300]
    assert block["present_velocity"] == [-7, -14, -21, -28]
    assert block["present_current"] == [0, 10, 20, 30]
    sync = [p for p in port.instructions if p[1] == 0x82]
    assert len(sync) == 2  # one packet per sync read, however many registers

    bus.sync_write("goal_position", {1: 100, 3: 300, 4: -5})
    assert [port.servos[i].goal for i in (1, 2, 3, 4)] == [100, 0, 300, -5]
    assert port.instructions[-1][0] == 0xFE  # broadcast, no status expected


def test_homing_offset_is_subtracted_by_the_motor() -> None:
    port = feetech_arm(ids=(1,))
    bus = make_bus(port)
    port.servos[1].actual = 100
    bus.write_eeprom("homing_offset", 1, -1948)
    # present = actual - offset = 100 + 1948
    assert bus.read("present_position", 1) == 2048
    assert bus.homing_offset_for(100, 2048) == -1948


def test_eeprom_writes_need_the_unlock_that_write_eeprom_does() -> None:
    port = feetech_arm(ids=(1,))
    bus = make_bus(port)
    bus.write("min_position_limit", 1, 500)  # the fake ignores it: EEPROM is locked
    assert bus.read("min_position_limit", 1) == 0
    bus.write_eeprom("min_position_limit", 1, 500)
    assert bus.read("min_position_limit", 1) == 500
    assert bus.read("lock", 1) == 1  # locked again afterwards


def test_corrupt_answer_is_retried_then_reported() -> None:
    port = feetech_arm(ids=(1, 2))
    port.servos[2].actual = 777
    bus = make_bus(port, retries=2)
    port.corrupt_next = 2
    assert bus.read("present_position", 2) == 777  # third attempt is clean
    port.corrupt_next = 3
    with pytest.raises(MotorChecksumError) as info:
        bus.read("present_position", 2)
    assert "/dev/fake" in str(info.value) and "motor id 2" in str(info.value)
    assert "checksum" in str(info.value)


def test_silent_motor_times_out_naming_port_and_id() -> None:
    port = feetech_arm(ids=(1, 2, 3))
    port.silent.add(3)
    bus = make_bus(port, retries=1)
    with pytest.raises(MotorTimeoutError) as info:
        bus.ping(3)
    assert info.value.port == "/dev/fake" and info.value.motor_id == 3
    assert "motor id 3" in str(info.value)
    with pytest.raises(MotorTimeoutError) as info:
        bus.sync_read("present_position", [1, 2, 3])
    assert info.value.motor_id == 3  # the missing answer is named
    assert bus.sync_read("present_position", [1, 2]) == [2048, 2048]


def test_dropped_answer_is_retried() -> None:
    port = feetech_arm(ids=(1,))
    bus = make_bus(port, retries=1)
    port.drop_next = 1
    assert bus.ping(1) == 777


def test_bytes_before_the_header_are_skipped() -> None:
    port = feetech_arm(ids=(1,))
    port.servos[1].actual = 42
    bus = make_bus(port)
    port.garbage = b"\x00\x13\xff"
    assert bus.read("present_position", 1) == 42


def test_hardware_error_bits_become_alerts_not_failures() -> None:
    port = FakeServoPort("feetech", [FakeServo(1, 777, "feetech", error=0x20)])
    bus = make_bus(port)
    assert bus.read("present_position", 1) == 2048
    assert bus.alerts == {1: "overload"}
    port.servos[1].error = 0
    bus.read("present_position", 1)
    assert bus.alerts == {}


def test_unopened_bus_and_bad_values_are_refused() -> None:
    bus = FeetechBus("/dev/nothing", port_factory=lambda *a: feetech_arm())
    with pytest.raises(MotorBusError, match="not open"):
        bus.read("present_position", 1)
    bus.open()
    with pytest.raises(KeyError, match="no register"):
        bus.read("warp_drive", 1)
    with pytest.raises(MotorBusError, match="cannot write goal_position"):
        bus.write("goal_position", 1, 40000)
    with pytest.raises(ValueError, match="motor id"):
        bus.read("present_position", 300)


def test_opening_a_missing_port_names_it() -> None:
    with pytest.raises(MotorBusError) as info:
        open_serial_port("/dev/hilrl-no-such-port", 1_000_000, 0.01)
    assert "/dev/hilrl-no-such-port" in str(info.value)
