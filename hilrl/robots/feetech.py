"""Feetech STS serial bus servos (SO-100 / SO-101's STS3215): the SCS protocol.

Packets (little-endian register values on STS models)::

    instruction: FF FF id len instr params... checksum     len = len(params) + 2
    status:      FF FF id len error params... checksum     len = len(params) + 2
    checksum = ~(id + len + instr_or_error + sum(params)) & 0xFF

Instructions used: PING (0x01), READ (0x02: address, size), WRITE (0x03: address, bytes),
SYNC_READ (0x82 to the broadcast id: address, size, ids...; each motor answers in turn),
SYNC_WRITE (0x83 to the broadcast id: address, size, then id + bytes per motor; no answer).

The status error byte carries hardware conditions (voltage, angle sensor, overheating,
over-current, overload); they are kept in :attr:`MotorBus.alerts` rather than raised,
because the data in the packet is still valid. Signed registers use sign-magnitude:
bit 11 for the homing offset, bit 15 for positions and speeds, bit 10 for the load. The
firmware reports ``present = actual - homing_offset``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hilrl.robots.motor_bus import (
    BROADCAST_ID,
    MotorBus,
    MotorBusError,
    MotorChecksumError,
    MotorModel,
    Register,
)

PING = 0x01
READ = 0x02
WRITE = 0x03
SYNC_READ = 0x82
SYNC_WRITE = 0x83

HEADER = b"\xff\xff"
MAX_HOMING_OFFSET = 2047
"""The homing offset is sign-magnitude with its sign at bit 11."""

ERROR_BITS = {
    0x01: "input voltage out of range",
    0x02: "angle sensor error",
    0x04: "overheating",
    0x08: "over-current",
    0x20: "overload",
}

FEETECH_REGISTERS: dict[str, Register] = {
    "model_number": Register(3, 2),
    "id": Register(5, 1, eeprom=True),
    "baud_rate": Register(6, 1, eeprom=True),
    "return_delay_time": Register(7, 1, eeprom=True),
    "min_position_limit": Register(9, 2, eeprom=True),
    "max_position_limit": Register(11, 2, eeprom=True),
    "p_coefficient": Register(21, 1, eeprom=True),
    "homing_offset": Register(31, 2, signed=True, sign_bit=11, eeprom=True),
    "operating_mode": Register(33, 1, eeprom=True),
    "torque_enable": Register(40, 1),
    "acceleration": Register(41, 1),
    "goal_position": Register(42, 2, signed=True, sign_bit=15),
    "goal_speed": Register(46, 2, signed=True, sign_bit=15),
    "torque_limit": Register(48, 2),
    "lock": Register(55, 1),
    "present_position": Register(56, 2, signed=True, sign_bit=15),
    "present_velocity": Register(58, 2, signed=True, sign_bit=15),
    "present_load": Register(60, 2, signed=True, sign_bit=10),
    "present_voltage": Register(62, 1),
    "present_temperature": Register(63, 1),
    "moving": Register(66, 1),
    "present_current": Register(69, 2, signed=True, sign_bit=15),
}

POSITION_MODE = 0
"""``operating_mode`` value of the position servo mode."""
TORQUE_LIMIT_FULL = 1000
"""``torque_limit`` is in 0.1 % of the maximum torque."""

_STEP_RAD_S = 2.0 * math.pi / 4096.0  # one encoder step per second
FEETECH_MODELS: dict[int, MotorModel] = {
    777: MotorModel("sts3215", 777, 4096, _STEP_RAD_S, 0.0065),
    2825: MotorModel("sts3250", 2825, 4096, _STEP_RAD_S, 0.0065),
}
"""Model number -> model. Speeds are in encoder steps/s; currents in units of 6.5 mA."""


def checksum(body: bytes) -> int:
    """The SCS checksum of the bytes after the header (id through the last parameter)."""
    return (~sum(body)) & 0xFF


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    body = bytes([motor_id, len(params) + 2, instruction]) + params
    return HEADER + body + bytes([checksum(body)])


def describe_error(error: int) -> str:
    names = [name for bit, name in ERROR_BITS.items() if error & bit]
    rest = error & ~sum(ERROR_BITS)
    if rest:
        names.append(f"unknown error bits 0x{rest:02x}")
    return ", ".join(names)


class FeetechBus(MotorBus):
    """A bus of Feetech STS servos (protocol 0, little-endian)."""

    family = "feetech"
    registers = FEETECH_REGISTERS
    models = FEETECH_MODELS
    max_homing_offset = MAX_HOMING_OFFSET

    # --------------------------------------------------------------- operations
    def ping(self, motor_id: int) -> int:
        self._check_id(motor_id)

        def op() -> None:
            self._send(instruction_packet(motor_id, PING))
            self._status(motor_id, 0)

        self._with_retries(motor_id, op)
        return self.read("model_number", motor_id)

    def _read_bytes(self, motor_id: int, address: int, size: int) -> bytes:
        self._send(instruction_packet(motor_id, READ, bytes([address, size])))
        return self._status(motor_id, size)

    def _write_bytes(self, motor_id: int, address: int, data: bytes) -> None:
        self._send(instruction_packet(motor_id, WRITE, bytes([address]) + data))
        self._status(motor_id, 0)

    def _sync_read_bytes(self, address: int, size: int, motor_ids: list[int]) -> list[bytes]:
        self._send(instruction_packet(BROADCAST_ID, SYNC_READ, bytes([address, size, *motor_ids])))
        return self._sync_statuses(motor_ids, size)

    def _sync_write_packet(self, address: int, size: int, payloads: Mapping[int, bytes]) -> bytes:
        params = bytearray([address, size])
        for motor_id, data in payloads.items():
            params.append(motor_id)
            params.extend(data)
        return instruction_packet(BROADCAST_ID, SYNC_WRITE, bytes(params))

    # ------------------------------------------------------------------ framing
    def _read_status(self, deadline: float, motor_id: int | None) -> tuple[int, int, bytes]:
        """(id, error, params) of the next status packet, skipping bytes before its header."""
        window = b""
        while window != HEADER:
            window = (window + self._read_exact(1, deadline, motor_id))[-2:]
        answer_id = self._read_exact(1, deadline, motor_id)[0]
        while answer_id == 0xFF:  # a longer run of 0xFF before the id
            answer_id = self._read_exact(1, deadline, motor_id)[0]
        length = self._read_exact(1, deadline, motor_id)[0]
        if length < 2:
            raise MotorChecksumError(self.port, motor_id, f"malformed status (length {length})")
        rest = self._read_exact(length, deadline, motor_id)
        error, params, check = rest[0], rest[1:-1], rest[-1]
        body = bytes([answer_id, length]) + rest[:-1]
        if checksum(body) != check:
            raise MotorChecksumError(
                self.port,
                motor_id,
                f"status checksum mismatch (got 0x{check:02x}, computed 0x{checksum(body):02x})",
            )
        return answer_id, error, params

    def _status_error(self, motor_id: int, error: int) -> None:
        if error:
            self.alerts[motor_id] = describe_error(error)
        else:
            self.alerts.pop(motor_id, None)

    # --------------------------------------------------------------- motor setup
    def prepare_position_control(
        self, motor_id: int, model: MotorModel, max_effort: float | None
    ) -> None:
        if self.read("operating_mode", motor_id) != POSITION_MODE:
            self.write_eeprom("operating_mode", motor_id, POSITION_MODE)
        limit = TORQUE_LIMIT_FULL if max_effort is None else round(max_effort * TORQUE_LIMIT_FULL)
        self.write("torque_limit", motor_id, max(1, min(TORQUE_LIMIT_FULL, limit)))

    def write_eeprom(self, register: str, motor_id: int, value: int) -> None:
        """Write a persistent register: unlock, write, lock again (torque must be off)."""
        self.write("lock", motor_id, 0)
        try:
            self.write(register, motor_id, value)
        finally:
            self.write("lock", motor_id, 1)
        if self.read(register, motor_id) != value:
            raise MotorBusError(
                self.port, motor_id, f"{register} did not keep the value {value} (EEPROM locked?)"
            )
