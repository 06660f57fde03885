"""What the Feetech and Dynamixel servo buses share: the port, errors, registers, retries.

A motor bus is a half-duplex serial line with several servos on it. The host sends an
instruction packet; the addressed servo answers with a status packet (sync writes get no
answer). :class:`MotorBus` does the timing, retries and register (de)coding; a protocol
subclass (:class:`~hilrl.robots.feetech.FeetechBus`,
:class:`~hilrl.robots.dynamixel.DynamixelBus`) only frames packets and knows its control
table. Every error names the port and the motor id, so a loose cable is found fast::

    bus = FeetechBus("/dev/ttyACM0", 1_000_000)
    bus.open()
    raw = bus.sync_read("present_position", [1, 2, 3])
    bus.sync_write("goal_position", {1: 2048, 2: 2100})
    bus.close()

Values are raw register integers (signed where the register is signed); units are the
callers' business (see :class:`MotorModel` for the scales).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

_T = TypeVar("_T")

BROADCAST_ID = 0xFE
MAX_MOTOR_ID = 252


class SerialPort(Protocol):
    """The part of ``serial.Serial`` (pyserial) a bus uses; tests pass a simulated bus."""

    def write(self, data: bytes, /) -> int | None: ...

    def read(self, size: int = 1, /) -> bytes:
        """Up to ``size`` bytes; fewer (maybe none) when the port's read timeout passes."""
        ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


PortFactory = Callable[[str, int, float], SerialPort]
"""``(port, baudrate, read_timeout_s) -> open port``."""


class MotorBusError(RuntimeError):
    """A bus transaction failed; names the port and, when known, the motor id."""

    def __init__(self, port: str, motor_id: int | None, message: str) -> None:
        self.port = port
        self.motor_id = motor_id
        self.message = message
        where = f"{port}: motor id {motor_id}" if motor_id is not None else port
        super().__init__(f"{where}: {message}")


class MotorTimeoutError(MotorBusError):
    """No (complete) status packet arrived in time: unpowered motor, wrong id or baud rate."""


class MotorChecksumError(MotorBusError):
    """A status packet arrived corrupted (checksum / CRC mismatch or malformed)."""


class MotorStatusError(MotorBusError):
    """The motor answered but reported that it refused or failed the instruction."""


def open_serial_port(port: str, baudrate: int, timeout_s: float) -> SerialPort:
    """Open ``port`` with pyserial (8N1, ``timeout_s`` read timeout), naming it on failure."""
    try:  # start-up: pyserial loads only when a real port opens (sims and fakes never do)
        import serial
    except ImportError as exc:  # pragma: no cover - pyserial is a dependency
        raise MotorBusError(port, None, "pyserial is not installed (pip install pyserial)") from exc
    try:
        return serial.Serial(port=port, baudrate=baudrate, timeout=timeout_s, write_timeout=1.0)  # type: ignore[no-any-return]
    except (serial.SerialException, OSError, ValueError) as exc:
        raise MotorBusError(
            port,
            None,
            f"cannot open the serial port ({exc}); check the cable and the port name "
            "(docs/real_robot.md: 'Finding the port'), and that you may use it "
            "(Linux: add yourself to the 'dialout' group)",
        ) from exc


@dataclass(frozen=True)
class Register:
    """One control-table entry: ``size`` bytes at ``address``, little-endian.

    ``sign_bit`` set: sign-magnitude encoding with that sign bit (Feetech); ``signed``
    without ``sign_bit``: two's complement (Dynamixel).
    """

    address: int
    size: int
    signed: bool = False
    sign_bit: int | None = None
    eeprom: bool = False
    """Lives in EEPROM: persistent, and writable only with torque off (Feetech: unlocked)."""

    def encode(self, value: int) -> bytes:
        """The register bytes for ``value``; ValueError when it does not fit."""
        value = int(value)
        bits = 8 * self.size
        if self.sign_bit is not None:
            limit = (1 << self.sign_bit) - 1
            if abs(value) > limit:
                raise ValueError(f"{value} does not fit a sign-magnitude field of +-{limit}")
            word = (abs(value) | (1 << self.sign_bit)) if value < 0 else value
        elif self.signed:
            if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
                raise ValueError(f"{value} does not fit a signed {bits}-bit field")
            word = value & ((1 << bits) - 1)
        else:
            if not 0 <= value < (1 << bits):
                raise ValueError(f"{value} does not fit an unsigned {bits}-bit field")
            word = value
        return word.to_bytes(self.size, "little")

    def decode(self, data: bytes) -> int:
        word = int.from_bytes(data[: self.size], "little")
        if self.sign_bit is not None:
            magnitude = word & ((1 << self.sign_bit) - 1)
            return -magnitude if word & (1 << self.sign_bit) else magnitude
        if self.signed and word & (1 << (8 * self.size - 1)):
            return word - (1 << (8 * self.size))
        return word


@dataclass(frozen=True)
class MotorModel:
    """A servo model: how to recognise it and what its raw units mean."""

    name: str
    model_number: int
    ticks_per_rev: int
    velocity_unit: float
    """rad/s per raw velocity unit."""
    current_unit: float
    """Amperes per raw current unit (an estimate where the motor only reports load)."""
    current_register: str = "present_current"
    """The register read as the motor's current."""
    supports_current_position: bool = False
    """Has a current-limited position mode (used for the gripper)."""


class MotorBus(abc.ABC):
    """Base of a servo bus: open/close, ping, read/write, sync read/write, with retries.

    Reads (and writes that wait for a status) are retried ``retries`` times after a
    timeout or a corrupt answer, flushing the input between attempts; then the last
    error is raised. Sync writes get no answer, so they are sent once.
    """

    family: str = ""
    registers: Mapping[str, Register] = {}
    models: Mapping[int, MotorModel] = {}
    max_homing_offset: int = 0
    """Largest magnitude the homing offset register holds."""
    homing_subtracts: bool = True
    """The firmware reports ``actual - homing_offset`` (Feetech) instead of ``actual + offset``."""

    def __init__(
        self,
        port: str,
        baudrate: int = 1_000_000,
        *,
        timeout_s: float = 0.05,
        retries: int = 2,
        port_factory: PortFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"{port}: bus timeout must be positive, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"{port}: retries must be >= 0, got {retries}")
        self.port = port
        self.baudrate = baudrate
        self.timeout_s = timeout_s
        self.retries = retries
        self._port_factory: PortFactory = port_factory or open_serial_port
        self._clock = clock
        self._serial: SerialPort | None = None
        self.alerts: dict[int, str] = {}
        """Hardware alerts the motors reported (overload, overheating, voltage), by id."""

    # ---------------------------------------------------------------- connection
    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is None:
            self._serial = self._port_factory(self.port, self.baudrate, self.timeout_s)

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            finally:
                self._serial = None

    def __enter__(self) -> MotorBus:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- public ops
    def model_of(self, model_number: int, motor_id: int) -> MotorModel:
        """The :class:`MotorModel` for a number read from ``motor_id``, or an error naming both."""
        model = self.models.get(model_number)
        if model is None:
            known = ", ".join(f"{m.name} ({n})" for n, m in self.models.items())
            raise MotorBusError(
                self.port,
                motor_id,
                f"reports model number {model_number}, not a supported {self.family} "
                f"motor ({known}); is this the right bus?",
            )
        return model

    def model_by_name(self, name: str) -> MotorModel:
        for model in self.models.values():
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models.values())
        raise ValueError(f"unknown {self.family} motor model {name!r}; known: {known}")

    @abc.abstractmethod
    def ping(self, motor_id: int) -> int:
        """The model number of ``motor_id``; :class:`MotorTimeoutError` when it is silent."""

    def read(self, register: str, motor_id: int) -> int:
        reg = self._register(register)
        self._check_id(motor_id)
        data = self._with_retries(
            motor_id, lambda: self._read_bytes(motor_id, reg.address, reg.size)
        )
        return reg.decode(data)

    def write(self, register: str, motor_id: int, value: int) -> None:
        """Write one register and wait for the motor's acknowledgement."""
        reg = self._register(register)
        self._check_id(motor_id)
        payload = self._encode(reg, register, motor_id, value)
        self._with_retries(motor_id, lambda: self._write_bytes(motor_id, reg.address, payload))

    def sync_read(self, register: str, motor_ids: Sequence[int]) -> list[int]:
        """One register of several motors in one transaction, in ``motor_ids`` order."""
        reg = self._register(register)
        blocks = self.sync_read_span(reg.address, reg.size, motor_ids)
        return [reg.decode(block) for block in blocks]

    def sync_read_registers(
        self, registers: Sequence[str], motor_ids: Sequence[int]
    ) -> dict[str, list[int]]:
        """Several registers of several motors in one transaction (the span covering them)."""
        regs = [self._register(r) for r in registers]
        start = min(r.address for r in regs)
        end = max(r.address + r.size for r in regs)
        blocks = self.sync_read_span(start, end - start, motor_ids)
        return {
            name: [
                reg.decode(b[reg.address - start : reg.address - start + reg.size]) for b in blocks
            ]
            for name, reg in zip(registers, regs)
        }

    def sync_read_span(self, address: int, size: int, motor_ids: Sequence[int]) -> list[bytes]:
        """``size`` raw bytes from ``address`` of each motor, in ``motor_ids`` order."""
        ids = [int(i) for i in motor_ids]
        for i in ids:
            self._check_id(i)
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.port}: sync read with repeated motor ids {ids}")
        if not ids:
            return []
        first = ids[0] if len(ids) == 1 else None
        return self._with_retries(first, lambda: self._sync_read_bytes(address, size, ids))

    def sync_write(self, register: str, values: Mapping[int, int]) -> None:
        """One register of several motors in one packet (no acknowledgement)."""
        reg = self._register(register)
        if not values:
            return
        payloads: dict[int, bytes] = {}
        for motor_id, value in values.items():
            self._check_id(motor_id)
            payloads[int(motor_id)] = self._encode(reg, register, motor_id, value)
        self._send(self._sync_write_packet(reg.address, reg.size, payloads))

    def homing_offset_for(self, actual: int, present: int) -> int:
        """The homing offset that makes encoder position ``actual`` read as ``present``."""
        return actual - present if self.homing_subtracts else present - actual

    @abc.abstractmethod
    def write_eeprom(self, register: str, motor_id: int, value: int) -> None:
        """Write a persistent register (torque off) and check that it kept the value."""

    @abc.abstractmethod
    def prepare_position_control(
        self, motor_id: int, model: MotorModel, max_effort: float | None
    ) -> None:
        """Put a motor (torque off) in position control; ``max_effort`` in (0, 1] caps its
        torque (the gripper's squeeze), None leaves it at full strength."""

    # ------------------------------------------------------ protocol-specific parts
    @abc.abstractmethod
    def _read_bytes(self, motor_id: int, address: int, size: int) -> bytes: ...

    @abc.abstractmethod
    def _write_bytes(self, motor_id: int, address: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def _sync_read_bytes(self, address: int, size: int, motor_ids: list[int]) -> list[bytes]: ...

    @abc.abstractmethod
    def _sync_write_packet(
        self, address: int, size: int, payloads: Mapping[int, bytes]
    ) -> bytes: ...

    # ------------------------------------------------------------------ plumbing
    @abc.abstractmethod
    def _read_status(self, deadline: float, motor_id: int | None) -> tuple[int, int, bytes]:
        """(answering id, error byte, parameters) of the next status packet."""

    @abc.abstractmethod
    def _status_error(self, motor_id: int, error: int) -> None:
        """Record or raise the protocol's error byte of a status packet."""

    def _status(self, motor_id: int, size: int) -> bytes:
        """The parameters of ``motor_id``'s status packet, checked for sender and size."""
        answer_id, error, params = self._read_status(self._deadline(), motor_id)
        if answer_id != motor_id:
            raise MotorChecksumError(
                self.port, motor_id, f"answer came from motor id {answer_id} instead"
            )
        self._status_error(motor_id, error)
        if len(params) != size:
            raise MotorChecksumError(
                self.port, motor_id, f"status carries {len(params)} bytes, expected {size}"
            )
        return params

    def _sync_statuses(self, motor_ids: list[int], size: int) -> list[bytes]:
        """The ``size``-byte answers of every motor to a sync read, in ``motor_ids`` order."""
        deadline = self._deadline()
        got: dict[int, bytes] = {}
        while len(got) < len(motor_ids):
            missing = [i for i in motor_ids if i not in got]
            motor_id, error, params = self._read_status(deadline, missing[0])
            if motor_id not in missing:
                raise MotorChecksumError(
                    self.port, motor_id, f"unexpected answer to a sync read of ids {motor_ids}"
                )
            self._status_error(motor_id, error)
            if len(params) != size:
                raise MotorChecksumError(
                    self.port, motor_id, f"sync read returned {len(params)} bytes, expected {size}"
                )
            got[motor_id] = params
        return [got[i] for i in motor_ids]

    def _register(self, name: str) -> Register:
        reg = self.registers.get(name)
        if reg is None:
            raise KeyError(
                f"{self.family} bus has no register {name!r}; known: {sorted(self.registers)}"
            )
        return reg

    def _check_id(self, motor_id: int) -> None:
        if not 0 <= int(motor_id) <= MAX_MOTOR_ID:
            raise ValueError(
                f"{self.port}: motor id must be in [0, {MAX_MOTOR_ID}], got {motor_id}"
            )

    def _encode(self, reg: Register, name: str, motor_id: int, value: int) -> bytes:
        try:
            return reg.encode(value)
        except ValueError as exc:
            raise MotorBusError(
                self.port, motor_id, f"cannot write {name} = {value}: {exc}"
            ) from exc

    def _require_port(self) -> SerialPort:
        if self._serial is None:
            raise MotorBusError(self.port, None, "bus is not open; call open() first")
        return self._serial

    def _send(self, packet: bytes) -> None:
        port = self._require_port()
        port.reset_input_buffer()
        port.write(packet)

    def _read_exact(self, n: int, deadline: float, motor_id: int | None) -> bytes:
        """``n`` bytes, or :class:`MotorTimeoutError` once ``deadline`` passes."""
        port = self._require_port()
        buf = bytearray()
        while len(buf) < n:
            chunk = port.read(n - len(buf))
            if chunk:
                buf.extend(chunk)
            elif self._clock() >= deadline:
                got = f" ({len(buf)} of {n} bytes arrived)" if buf else ""
                raise MotorTimeoutError(
                    self.port,
                    motor_id,
                    f"no answer within {self.timeout_s * 1000:.0f} ms{got}; is it powered, "
                    f"on this bus, and set to {self.baudrate} baud?",
                )
        return bytes(buf)

    def _deadline(self) -> float:
        return self._clock() + self.timeout_s

    def _with_retries(self, motor_id: int | None, op: Callable[[], _T]) -> _T:
        last: MotorBusError | None = None
        for _ in range(self.retries + 1):
            try:
                return op()
            except (MotorTimeoutError, MotorChecksumError) as exc:
                last = exc
                if self._serial is not None:
                    self._serial.reset_input_buffer()
        assert last is not None
        raise last
