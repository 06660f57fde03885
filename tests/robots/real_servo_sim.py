"""A simulated servo bus for the real-robot tests: a fake serial port full of fake motors.

:class:`FakeServoPort` implements the serial-port calls a bus makes (write / read /
reset_input_buffer / close). Each write must be one instruction packet; the port decodes
it with its own framing code (written from the protocol documents, independently of
``hilrl.robots``), applies it to per-motor register memories and queues the status
packets a real bus would return. Motors follow the datasheets where the tests care:

* Feetech STS: present = (actual - homing_offset) mod 4096, sign-magnitude fields, EEPROM
  (addresses < 40) writable only while ``lock`` is 0, goals clamped to the position limits;
* Dynamixel X (protocol 2.0): present = actual + homing_offset, two's complement, EEPROM
  (addresses < 64) writable only with torque off (else status error 7).

With torque on, a motor is an ideal position servo: it jumps to its goal. ``actual`` is
the encoder (0..4095); tests move joints "by hand" by setting it. Faults: ``silent`` ids
never answer, ``drop_next`` swallows that many answers, ``corrupt_next`` breaks that many
checksums, ``garbage`` is sent before the next answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TICKS = 4096


def feetech_checksum(body: bytes) -> int:
    return 0xFF - (sum(body) & 0xFF)


def dxl_crc(data: bytes) -> int:
    """Bit-by-bit CRC-16/BUYPASS (the library uses a table; this is the oracle)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def _sm_encode(value: int, bit: int) -> int:
    return (abs(value) | (1 << bit)) if value < 0 else value


def _sm_decode(word: int, bit: int) -> int:
    mag = word & ((1 << bit) - 1)
    return -mag if word & (1 << bit) else mag


@dataclass
class FakeServo:
    """One motor: a 256-byte register memory plus the encoder position ``actual``."""

    motor_id: int
    model_number: int
    protocol: str
    actual: int = 2048
    velocity: int = 0
    current: int = 0
    error: int = 0
    """Hardware error bits put in every status packet this motor sends."""
    mem: bytearray = field(default_factory=lambda: bytearray(256))
    writes: list[tuple[int, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.protocol == "feetech":
            self._put(3, self.model_number, 2)
            self._put(5, self.motor_id, 1)
            self._put(7, 250, 1)
            self._put(11, 4095, 2)
            self._put(55, 1, 1)  # EEPROM locked
        else:
            self._put(0, self.model_number, 2)
            self._put(7, self.motor_id, 1)
            self._put(9, 250, 1)
            self._put(11, 3, 1)
            self._put(38, 1750, 2)
            self._put(48, 4095, 4)
            self._put(52, 0, 4)

    # ------------------------------------------------------------ raw memory
    def _put(self, addr: int, value: int, size: int) -> None:
        self.mem[addr : addr + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def _get(self, addr: int, size: int) -> int:
        return int.from_bytes(self.mem[addr : addr + size], "little")

    # ------------------------------------------------------------ semantics
    @property
    def torque(self) -> bool:
        return bool(self.mem[40 if self.protocol == "feetech" else 64])

    @property
    def homing_offset(self) -> int:
        if self.protocol == "feetech":
            return _sm_decode(self._get(31, 2), 11)
        word = self._get(20, 4)
        return word - (1 << 32) if word & (1 << 31) else word

    @property
    def present(self) -> int:
        if self.protocol == "feetech":
            return (self.actual - self.homing_offset) % TICKS
        return self.actual % TICKS + self.homing_offset

    @property
    def goal(self) -> int:
        if self.protocol == "feetech":
            return _sm_decode(self._get(42, 2), 15)
        word = self._get(116, 4)
        return word - (1 << 32) if word & (1 << 31) else word

    def limits(self) -> tuple[int, int]:
        if self.protocol == "feetech":
            return self._get(9, 2), self._get(11, 2)
        return self._get(52, 4), self._get(48, 4)

    def _refresh(self) -> None:
        """Write the present-state registers from ``actual`` / ``velocity`` / ``current``."""
        if self.protocol == "feetech":
            self._put(56, _sm_encode(self.present, 15), 2)
            self._put(58, _sm_encode(self.velocity, 15), 2)
            self._put(69, _sm_encode(self.current, 15), 2)
        else:
            self._put(126, self.current, 2)
            self._put(128, self.velocity, 4)
            self._put(132, self.present, 4)

    def _track_goal(self) -> None:
        if not self.torque:
            return
        lo, hi = self.limits()
        goal = min(max(self.goal, lo), hi)
        if self.protocol == "feetech":
            self.actual = (goal + self.homing_offset) % TICKS
        else:
            self.actual = (goal - self.homing_offset) % TICKS

    def read(self, addr: int, size: int) -> bytes:
        self._refresh()
        return bytes(self.mem[addr : addr + size])

    def write(self, addr: int, data: bytes) -> int:
        """Apply a write; returns a protocol-2.0 error code (0: fine)."""
        self.writes.append((addr, bytes(data)))
        if self.protocol == "feetech":
            if addr < 40 and self.mem[55] != 0:
                return 0  # locked EEPROM: silently ignored
        elif addr < 64 and self.torque:
            return 7
        was_torque = self.torque
        self.mem[addr : addr + len(data)] = data
        if self.torque and (not was_torque or addr in (42, 116)):
            self._track_goal()
        return 0


class FakeServoPort:
    """A serial port with simulated motors behind it (see the module docstring)."""

    def __init__(self, protocol: str, servos: list[FakeServo], port: str = "/dev/fake") -> None:
        assert protocol in ("feetech", "dynamixel")
        self.protocol = protocol
        self.servos = {s.motor_id: s for s in servos}
        self.port = port
        self.closed = False
        self.silent: set[int] = set()
        self.drop_next = 0
        self.corrupt_next = 0
        self.garbage = b""
        self.sent: list[bytes] = []
        self.instructions: list[tuple[int, int, bytes]] = []
        self._out = bytearray()

    # ------------------------------------------------------- serial-port calls
    def write(self, data: bytes) -> int:
        assert not self.closed, "write on a closed port"
        self.sent.append(bytes(data))
        if self.protocol == "feetech":
            self._feetech(bytes(data))
        else:
            self._dynamixel(bytes(data))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        out = bytes(self._out[:size])
        del self._out[:size]
        return out

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        self.closed = True

    # -------------------------------------------------------------- answering
    def _answer(self, motor_id: int, packet: bytes) -> None:
        if motor_id in self.silent:
            return
        if self.drop_next:
            self.drop_next -= 1
            return
        if self.corrupt_next:
            self.corrupt_next -= 1
            packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
        self._out.extend(self.garbage + packet)
        self.garbage = b""

    # ---------------------------------------------------------------- feetech
    def _feetech_status(self, motor_id: int, params: bytes = b"", error: int = 0) -> None:
        error |= self.servos[motor_id].error
        body = bytes([motor_id, len(params) + 2, error]) + params
        self._answer(motor_id, b"\xff\xff" + body + bytes([feetech_checksum(body)]))

    def _feetech(self, data: bytes) -> None:
        assert data[:2] == b"\xff\xff", data.hex()
        motor_id, length, instr = data[2], data[3], data[4]
        params = data[5 : 3 + length]
        assert len(data) == length + 4, "one packet per write"
        if feetech_checksum(data[2:-1]) != data[-1]:
            return  # a motor ignores a corrupt packet
        self.instructions.append((motor_id, instr, params))
        if instr == 0x83:  # SYNC_WRITE
            addr, size = params[0], params[1]
            for k in range(2, len(params), size + 1):
                servo = self.servos.get(params[k])
                if servo is not None:
                    servo.write(addr, params[k + 1 : k + 1 + size])
            return
        if instr == 0x82:  # SYNC_READ
            addr, size = params[0], params[1]
            for i in params[2:]:
                if i in self.servos:
                    self._feetech_status(i, self.servos[i].read(addr, size))
            return
        servo = self.servos.get(motor_id)
        if servo is None:
            return
        if instr == 0x01:
            self._feetech_status(motor_id)
        elif instr == 0x02:
            self._feetech_status(motor_id, servo.read(params[0], params[1]))
        elif instr == 0x03:
            servo.write(params[0], params[1:])
            self._feetech_status(motor_id)
        else:
            raise AssertionError(f"unexpected feetech instruction 0x{instr:02x}")

    # -------------------------------------------------------------- dynamixel
    @staticmethod
    def _dxl_stuff(payload: bytes) -> bytes:
        out = bytearray()
        for b in payload:
            out.append(b)
            if out[-3:] == b"\xff\xff\xfd":
                out.append(0xFD)
        return bytes(out)

    @staticmethod
    def _dxl_unstuff(payload: bytes) -> bytes:
        return payload.replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")

    def _dxl_status(self, motor_id: int, params: bytes = b"", error: int = 0) -> None:
        error |= self.servos[motor_id].error
        payload = self._dxl_stuff(bytes([0x55, error]) + params)
        length = len(payload) + 2
        packet = b"\xff\xff\xfd\x00" + bytes([motor_id, length & 0xFF, length >> 8]) + payload
        crc = dxl_crc(packet)
        self._answer(motor_id, packet + bytes([crc & 0xFF, crc >> 8]))

    def _dynamixel(self, data: bytes) -> None:
        assert data[:4] == b"\xff\xff\xfd\x00", data.hex()
        motor_id = data[4]
        length = data[5] | (data[6] << 8)
        assert len(data) == 7 + length, "one packet per write"
        crc = data[-2] | (data[-1] << 8)
        if dxl_crc(data[:-2]) != crc:
            if motor_id in self.servos:
                self._dxl_status(motor_id, error=3)
            return
        payload = self._dxl_unstuff(data[7:-2])
        instr, params = payload[0], payload[1:]
        self.instructions.append((motor_id, instr, params))
        if instr == 0x83:
            addr = params[0] | (params[1] << 8)
            size = params[2] | (params[3] << 8)
            for k in range(4, len(params), size + 1):
                servo = self.servos.get(params[k])
                if servo is not None:
                    servo.write(addr, params[k + 1 : k + 1 + size])
            return
        if instr == 0x82:
            addr = params[0] | (params[1] << 8)
            size = params[2] | (params[3] << 8)
            for i in params[4:]:
                if i in self.servos:
                    self._dxl_status(i, self.servos[i].read(addr, size))
            return
        servo = self.servos.get(motor_id)
        if servo is None:
            return
        if instr == 0x01:
            self._dxl_status(
                motor_id, bytes([servo.model_number & 0xFF, servo.model_number >> 8, 52])
            )
        elif instr == 0x02:
            addr = params[0] | (params[1] << 8)
            size = params[2] | (params[3] << 8)
            self._dxl_status(motor_id, servo.read(addr, size))
        elif instr == 0x03:
            addr = params[0] | (params[1] << 8)
            self._dxl_status(motor_id, error=servo.write(addr, params[2:]))
        else:
            raise AssertionError(f"unexpected dynamixel instruction 0x{instr:02x}")


def feetech_arm(ids: tuple[int, ...] = (1, 2, 3, 4, 5, 6), model: int = 777) -> FakeServoPort:
    return FakeServoPort("feetech", [FakeServo(i, model, "feetech") for i in ids])


def dynamixel_arm(models: tuple[int, ...] = (1060, 1060, 1200, 1200, 1200, 1200)) -> FakeServoPort:
    return FakeServoPort(
        "dynamixel", [FakeServo(i + 1, m, "dynamixel") for i, m in enumerate(models)]
    )


# --------------------------------------------------------------------- calibrations
def _joint(i: int, model: str, unit: str, off: int, lo: int, hi: int, d: int, zero: float):  # type: ignore[no-untyped-def]
    from hilrl.robots.calibration import JointCalibration

    return JointCalibration(i, model, unit, off, lo, hi, d, zero)


def so100_calibration():  # type: ignore[no-untyped-def]
    """A hand-made SO-100 calibration with offsets, both directions and a full-turn roll."""
    from hilrl.robots.calibration import ArmCalibration

    m = "sts3215"
    joints = {
        "shoulder_pan": _joint(1, m, "rad", 0, 1024, 3072, 1, 2048.0),
        "shoulder_lift": _joint(2, m, "rad", -300, 1000, 3100, -1, 2900.0),
        "elbow_flex": _joint(3, m, "rad", 500, 600, 3500, 1, 3300.0),
        "wrist_flex": _joint(4, m, "rad", 1000, 700, 3400, 1, 2048.0),
        "wrist_roll": _joint(5, m, "rad", -2047, 1, 4095, -1, 2048.0),
        "gripper": _joint(6, m, "fraction", 10, 1800, 2800, -1, 2800.0),
    }
    return ArmCalibration("so100", "feetech", joints)


def koch_calibration():  # type: ignore[no-untyped-def]
    """A hand-made Koch calibration (Dynamixel: XL430 shoulder, XL330 elsewhere)."""
    from hilrl.robots.calibration import ArmCalibration

    a, b = "xl430-w250", "xl330-m288"
    joints = {
        "shoulder_pan": _joint(1, a, "rad", 1948, 1000, 3100, 1, 2048.0),
        "shoulder_lift": _joint(2, a, "rad", -500, 1024, 3072, -1, 1500.0),
        "elbow_flex": _joint(3, b, "rad", 0, 900, 3000, 1, 1000.0),
        "wrist_flex": _joint(4, b, "rad", 10, 1000, 3000, 1, 2048.0),
        "wrist_roll": _joint(5, b, "rad", 0, 1, 4095, 1, 2048.0),
        "gripper": _joint(6, b, "fraction", 0, 2000, 2600, 1, 2000.0),
    }
    return ArmCalibration("koch", "dynamixel", joints)
