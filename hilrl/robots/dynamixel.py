"""Dynamixel X-series servos (Koch's XL330 / XL430) over protocol 2.0.

Packets (little-endian fields)::

    instruction: FF FF FD 00 id len_l len_h instr params... crc_l crc_h
    status:      FF FF FD 00 id len_l len_h 55 error params... crc_l crc_h
    len = (bytes from instr / 0x55 through crc), crc = CRC-16 (poly 0x8005, init 0)
          over everything before it

Byte stuffing: inside the instruction and parameters, every ``FF FF FD`` is followed by an
extra ``FD`` (counted in ``len``), so the header never appears in a payload.

Instructions used: PING (0x01; the answer carries the model number), READ (0x02),
WRITE (0x03), SYNC_READ (0x82), SYNC_WRITE (0x83). Status errors 1-7 (result fail,
instruction, CRC, data range, data length, data limit, access) raise
:class:`MotorStatusError`; the hardware-alert bit (0x80: overload, overheating, voltage)
is kept in :attr:`MotorBus.alerts`. Signed registers are two's complement. The firmware
reports ``present = actual + homing_offset``.
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
    MotorStatusError,
    Register,
)

PING = 0x01
READ = 0x02
WRITE = 0x03
STATUS = 0x55
SYNC_READ = 0x82
SYNC_WRITE = 0x83

HEADER = b"\xff\xff\xfd\x00"
ALERT_BIT = 0x80
MAX_HOMING_OFFSET = 1_044_479
STATUS_ERRORS = {
    1: "result fail",
    2: "instruction error",
    3: "CRC error (the motor received a corrupt packet)",
    4: "data range error",
    5: "data length error",
    6: "data limit error",
    7: "access error (read-only register, or EEPROM while torque is on)",
}

DYNAMIXEL_REGISTERS: dict[str, Register] = {
    "model_number": Register(0, 2),
    "id": Register(7, 1, eeprom=True),
    "baud_rate": Register(8, 1, eeprom=True),
    "return_delay_time": Register(9, 1, eeprom=True),
    "drive_mode": Register(10, 1, eeprom=True),
    "operating_mode": Register(11, 1, eeprom=True),
    "homing_offset": Register(20, 4, signed=True, eeprom=True),
    "current_limit": Register(38, 2, eeprom=True),
    "max_position_limit": Register(48, 4, eeprom=True),
    "min_position_limit": Register(52, 4, eeprom=True),
    "torque_enable": Register(64, 1),
    "goal_current": Register(102, 2, signed=True),
    "goal_velocity": Register(104, 4, signed=True),
    "profile_velocity": Register(112, 4),
    "goal_position": Register(116, 4, signed=True),
    "present_current": Register(126, 2, signed=True),
    "present_velocity": Register(128, 4, signed=True),
    "present_position": Register(132, 4, signed=True),
    "present_temperature": Register(146, 1),
}
"""The X-series control table (protocol 2.0). On the XL430, address 126 is the load (0.1 %)."""

POSITION_MODE = 3
CURRENT_POSITION_MODE = 5
"""Current-based position control: the position loop, with the torque capped by goal_current."""

_RPM = 2.0 * math.pi / 60.0
DYNAMIXEL_MODELS: dict[int, MotorModel] = {
    1190: MotorModel("xl330-m077", 1190, 4096, 0.229 * _RPM, 0.001, supports_current_position=True),
    1200: MotorModel("xl330-m288", 1200, 4096, 0.229 * _RPM, 0.001, supports_current_position=True),
    # The XL430 reports load in 0.1 % of its stall torque; 0.1 % of its ~1.4 A stall current
    # is used as the (approximate) ampere scale.
    1060: MotorModel("xl430-w250", 1060, 4096, 0.229 * _RPM, 0.0014),
}
"""Model number -> model. Velocities in units of 0.229 rpm; XL330 currents in mA."""


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16 of protocol 2.0 (polynomial 0x8005, initial value 0, not reflected)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(data: bytes) -> bytes:
    """Insert ``FD`` after every ``FF FF FD`` (protocol 2.0 byte stuffing)."""
    out = bytearray()
    for byte in data:
        out.append(byte)
        if len(out) >= 3 and out[-3:] == b"\xff\xff\xfd":
            out.append(0xFD)
    return bytes(out)


def unstuff(data: bytes) -> bytes:
    """Drop the ``FD`` that follows every ``FF FF FD`` (inverse of :func:`stuff`)."""
    out = bytearray()
    i = 0
    while i < len(data):
        out.append(data[i])
        if (
            len(out) >= 3
            and out[-3:] == b"\xff\xff\xfd"
            and i + 1 < len(data)
            and data[i + 1] == 0xFD
        ):
            i += 1
        i += 1
    return bytes(out)


def instruction_packet(motor_id: int, instruction: int, params: bytes = b"") -> bytes:
    payload = stuff(bytes([instruction]) + params)
    length = len(payload) + 2
    packet = HEADER + bytes([motor_id, length & 0xFF, length >> 8]) + payload
    crc = crc16(packet)
    return packet + bytes([crc & 0xFF, crc >> 8])


class DynamixelBus(MotorBus):
    """A bus of Dynamixel X-series servos (protocol 2.0)."""

    family = "dynamixel"
    registers = DYNAMIXEL_REGISTERS
    models = DYNAMIXEL_MODELS
    max_homing_offset = MAX_HOMING_OFFSET
    homing_subtracts = False

    def ping(self, motor_id: int) -> int:
        self._check_id(motor_id)

        def op() -> bytes:
            self._send(instruction_packet(motor_id, PING))
            return self._status(motor_id, 3)

        params = self._with_retries(motor_id, op)
        return int.from_bytes(params[:2], "little")

    def _read_bytes(self, motor_id: int, address: int, size: int) -> bytes:
        params = address.to_bytes(2, "little") + size.to_bytes(2, "little")
        self._send(instruction_packet(motor_id, READ, params))
        return self._status(motor_id, size)

    def _write_bytes(self, motor_id: int, address: int, data: bytes) -> None:
        self._send(instruction_packet(motor_id, WRITE, address.to_bytes(2, "little") + data))
        self._status(motor_id, 0)

    def _sync_read_bytes(self, address: int, size: int, motor_ids: list[int]) -> list[bytes]:
        params = address.to_bytes(2, "little") + size.to_bytes(2, "little") + bytes(motor_ids)
        self._send(instruction_packet(BROADCAST_ID, SYNC_READ, params))
        return self._sync_statuses(motor_ids, size)

    def _sync_write_packet(self, address: int, size: int, payloads: Mapping[int, bytes]) -> bytes:
        params = bytearray(address.to_bytes(2, "little") + size.to_bytes(2, "little"))
        for motor_id, data in payloads.items():
            params.append(motor_id)
            params.extend(data)
        return instruction_packet(BROADCAST_ID, SYNC_WRITE, bytes(params))

    # ------------------------------------------------------------------ framing
    def _read_status(self, deadline: float, motor_id: int | None) -> tuple[int, int, bytes]:
        """(id, error, params) of the next status packet, skipping bytes before its header."""
        window = b""
        while window != HEADER:
            window = (window + self._read_exact(1, deadline, motor_id))[-4:]
        head = self._read_exact(3, deadline, motor_id)
        answer_id, length = head[0], head[1] | (head[2] << 8)
        if length < 4:
            raise MotorChecksumError(self.port, motor_id, f"malformed status (length {length})")
        rest = self._read_exact(length, deadline, motor_id)
        crc = rest[-2] | (rest[-1] << 8)
        computed = crc16(HEADER + head + rest[:-2])
        if crc != computed:
            raise MotorChecksumError(
                self.port,
                motor_id,
                f"status CRC mismatch (got 0x{crc:04x}, computed 0x{computed:04x})",
            )
        payload = unstuff(rest[:-2])
        if payload[0] != STATUS:
            raise MotorChecksumError(
                self.port, motor_id, f"expected a status packet, got instruction 0x{payload[0]:02x}"
            )
        return answer_id, payload[1], payload[2:]

    def _status_error(self, motor_id: int, error: int) -> None:
        if error & ALERT_BIT:
            self.alerts[motor_id] = "hardware alert (read hardware_error_status; reboot clears it)"
        else:
            self.alerts.pop(motor_id, None)
        code = error & 0x7F
        if code:
            raise MotorStatusError(
                self.port, motor_id, STATUS_ERRORS.get(code, f"unknown status error {code}")
            )

    def prepare_position_control(
        self, motor_id: int, model: MotorModel, max_effort: float | None
    ) -> None:
        capped = max_effort is not None and model.supports_current_position
        mode = CURRENT_POSITION_MODE if capped else POSITION_MODE
        if self.read("operating_mode", motor_id) != mode:
            self.write_eeprom("operating_mode", motor_id, mode)
        if capped:
            assert max_effort is not None
            limit = self.read("current_limit", motor_id)
            self.write("goal_current", motor_id, max(1, round(max_effort * limit)))

    def write_eeprom(self, register: str, motor_id: int, value: int) -> None:
        """Write a persistent register (torque must be off) and check that it kept the value."""
        self.write(register, motor_id, value)
        if self.read(register, motor_id) != value:
            raise MotorBusError(self.port, motor_id, f"{register} did not keep the value {value}")
