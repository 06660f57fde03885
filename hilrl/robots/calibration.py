"""Joint calibration of a servo arm: the JSON file, its checks, and the interactive routine.

A calibration says, per joint (in the robot's joint order, gripper last): which motor
(``id``, ``model``), the ``homing_offset`` written into the motor so that the middle of the
joint's travel reads half a turn, the raw travel ``range_min`` .. ``range_max`` (motor
ticks as the motor reports them with that offset), the ``direction`` (+1 when the raw
value grows with the joint angle) and ``zero``, the raw reading at joint value 0::

    value = direction * (raw - zero) * scale        scale = 2*pi / ticks_per_rev   (unit 'rad')
                                                    scale = 1 / (range_max - range_min)  ('fraction')

The gripper's unit is the opening fraction: 0 closed (``zero`` is the closed end of its
range), 1 fully open.

File format (``version`` 1)::

    {"format": "hilrl-calibration", "version": 1, "robot_type": "so100",
     "motor_family": "feetech",
     "joints": {"shoulder_pan": {"id": 1, "model": "sts3215", "unit": "rad",
                                 "homing_offset": 12, "range_min": 810, "range_max": 3300,
                                 "direction": 1, "zero": 2048.0}, ...}}

:func:`calibrate` is the interactive routine behind ``hilrl calibrate``. It talks to the
person only through a :class:`CalibrationIO` (so tests script it) and never powers a
motor: torque stays off throughout.
"""

from __future__ import annotations

import json
import math
import queue
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from hilrl.fsutil import atomic_write_json
from hilrl.robots.motor_bus import MotorBus

FORMAT = "hilrl-calibration"
VERSION = 1
UNITS = ("rad", "fraction")
GRIPPER = "gripper"
TICKS_PER_REV = 4096
MIN_SPAN_TICKS = 60
"""A joint must travel at least this far (about 5 degrees) during the range sweep."""
MIN_DIRECTION_TICKS = 40
"""The 'turn it a little' step must move a joint at least this far (about 3.5 degrees)."""


class CalibrationError(ValueError):
    """A calibration file or value is wrong; names the file and the joint."""

    def __init__(self, path: str | Path, joint: str | None, reason: str) -> None:
        self.path = str(path)
        self.joint = joint
        self.reason = reason
        where = f"joint {joint!r}: " if joint else ""
        super().__init__(f"calibration file {self.path}: {where}{reason}")


@dataclass(frozen=True)
class JointCalibration:
    """One joint's motor and raw-to-unit mapping (see the module docstring)."""

    id: int
    model: str
    unit: str
    homing_offset: int
    range_min: int
    range_max: int
    direction: int
    zero: float

    @property
    def scale(self) -> float:
        """Joint units per raw tick (without the direction)."""
        if self.unit == "fraction":
            return 1.0 / (self.range_max - self.range_min)
        return 2.0 * math.pi / TICKS_PER_REV

    def to_unit(self, raw: np.ndarray | float) -> np.ndarray:
        return np.asarray(
            self.direction * (np.asarray(raw, dtype=np.float64) - self.zero) * self.scale
        )

    def to_raw(self, value: np.ndarray | float) -> np.ndarray:
        return np.asarray(
            self.zero + self.direction * np.asarray(value, dtype=np.float64) / self.scale
        )

    @property
    def limits(self) -> tuple[float, float]:
        """(lower, upper) of the calibrated travel in joint units."""
        a, b = float(self.to_unit(self.range_min)), float(self.to_unit(self.range_max))
        return (a, b) if a <= b else (b, a)


@dataclass(frozen=True)
class ArmCalibration:
    robot_type: str
    motor_family: str
    joints: dict[str, JointCalibration]
    """In the robot's joint order (gripper last)."""

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.joints)


# ---------------------------------------------------------------------------- file I/O
def calibration_to_dict(cal: ArmCalibration) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "robot_type": cal.robot_type,
        "motor_family": cal.motor_family,
        "joints": {name: asdict(j) for name, j in cal.joints.items()},
    }


def save_calibration(cal: ArmCalibration, path: str | Path) -> None:
    """Write ``cal`` as JSON, atomically (a crash leaves the old file or the new one)."""
    validate_calibration(cal, path)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, calibration_to_dict(cal), indent=2)


def load_calibration(
    path: str | Path,
    *,
    joint_names: Sequence[str] | None = None,
    motor_family: str | None = None,
    known_models: Sequence[str] | None = None,
) -> ArmCalibration:
    """Read and check a calibration file; every error names the file (and the joint).

    ``joint_names`` / ``motor_family`` / ``known_models``, when given, must match the robot
    the file is loaded for (order included).
    """
    p = Path(path)
    if not p.is_file():
        raise CalibrationError(p, None, "file not found; run 'hilrl calibrate --config ...' first")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(p, None, f"not valid JSON: {exc}") from exc
    cal = calibration_from_dict(data, p)
    if motor_family is not None and cal.motor_family != motor_family:
        raise CalibrationError(
            p, None, f"made for {cal.motor_family} motors, this robot has {motor_family} motors"
        )
    validate_calibration(cal, p, known_models=known_models)
    if joint_names is not None and cal.joint_names != tuple(joint_names):
        raise CalibrationError(
            p, None, f"joints {list(cal.joint_names)} do not match the robot's {list(joint_names)}"
        )
    return cal


def calibration_from_dict(data: object, path: str | Path = "<memory>") -> ArmCalibration:
    if not isinstance(data, dict):
        raise CalibrationError(path, None, "top level must be a JSON object")
    if data.get("format") != FORMAT:
        raise CalibrationError(
            path, None, f"'format' must be {FORMAT!r}, got {data.get('format')!r}"
        )
    if data.get("version") != VERSION:
        raise CalibrationError(
            path, None, f"unsupported version {data.get('version')!r} (this hilrl reads {VERSION})"
        )
    for key in ("robot_type", "motor_family"):
        if not isinstance(data.get(key), str):
            raise CalibrationError(path, None, f"'{key}' must be a string")
    joints_raw = data.get("joints")
    if not isinstance(joints_raw, dict) or not joints_raw:
        raise CalibrationError(path, None, "'joints' must be a non-empty object")
    fields = {
        "id": int,
        "model": str,
        "unit": str,
        "homing_offset": int,
        "range_min": int,
        "range_max": int,
        "direction": int,
        "zero": float,
    }
    joints: dict[str, JointCalibration] = {}
    for name, entry in joints_raw.items():
        if not isinstance(entry, dict):
            raise CalibrationError(path, name, "must be an object")
        unknown = sorted(set(entry) - set(fields))
        if unknown:
            raise CalibrationError(path, name, f"unknown fields {unknown}")
        values: dict[str, Any] = {}
        for key, typ in fields.items():
            if key not in entry:
                raise CalibrationError(path, name, f"missing field '{key}'")
            value = entry[key]
            ok = (
                isinstance(value, (int, float)) and not isinstance(value, bool)
                if typ is float
                else isinstance(value, typ) and not isinstance(value, bool)
            )
            if not ok:
                raise CalibrationError(path, name, f"'{key}' must be {typ.__name__}, got {value!r}")
            values[key] = float(value) if typ is float else value
        joints[name] = JointCalibration(**values)
    return ArmCalibration(data["robot_type"], data["motor_family"], joints)


def validate_calibration(
    cal: ArmCalibration, path: str | Path = "<memory>", *, known_models: Sequence[str] | None = None
) -> None:
    """Check ranges, ids and units; raise :class:`CalibrationError` naming the joint."""
    seen: dict[int, str] = {}
    names = list(cal.joints)
    for name, j in cal.joints.items():
        if not 0 <= j.id <= 252:
            raise CalibrationError(path, name, f"motor id {j.id} is outside [0, 252]")
        if j.id in seen:
            raise CalibrationError(path, name, f"motor id {j.id} is also used by {seen[j.id]!r}")
        seen[j.id] = name
        if known_models is not None and j.model not in known_models:
            raise CalibrationError(
                path, name, f"unknown motor model {j.model!r}; known: {list(known_models)}"
            )
        if j.unit not in UNITS:
            raise CalibrationError(path, name, f"unit must be one of {UNITS}, got {j.unit!r}")
        if (name == GRIPPER) != (j.unit == "fraction"):
            raise CalibrationError(
                path, name, "the joint named 'gripper' (and only it) has unit 'fraction'"
            )
        if name == GRIPPER and name != names[-1]:
            raise CalibrationError(path, name, "the gripper must be the last joint")
        if j.direction not in (-1, 1):
            raise CalibrationError(path, name, f"direction must be 1 or -1, got {j.direction}")
        if not 0 <= j.range_min < j.range_max < TICKS_PER_REV:
            raise CalibrationError(
                path,
                name,
                f"needs 0 <= range_min < range_max < {TICKS_PER_REV}, "
                f"got [{j.range_min}, {j.range_max}]",
            )
        if j.range_max - j.range_min < MIN_SPAN_TICKS:
            raise CalibrationError(
                path,
                name,
                f"range [{j.range_min}, {j.range_max}] is under {MIN_SPAN_TICKS} ticks: the "
                "joint was not moved through its travel during calibration",
            )
        if not math.isfinite(j.zero):
            raise CalibrationError(path, name, f"zero must be finite, got {j.zero}")
        if j.unit == "fraction":
            closed = j.range_min if j.direction > 0 else j.range_max
            if j.zero != closed:
                raise CalibrationError(
                    path, name, f"gripper zero {j.zero} must be its closed end {closed}"
                )


# ----------------------------------------------------------------- motor settings
def apply_motor_settings(
    bus: MotorBus, cal: ArmCalibration, *, gripper_max_effort: float | None = None
) -> None:
    """Make the motors match ``cal`` (torque must be off): homing offset, position limits
    (the calibrated travel), position mode, no return delay; the gripper's torque capped
    at ``gripper_max_effort``. Registers are written only when they differ (EEPROM wear).
    """
    for name, j in cal.joints.items():
        model = bus.model_by_name(j.model)
        wanted = {
            "homing_offset": j.homing_offset,
            "min_position_limit": j.range_min,
            "max_position_limit": j.range_max,
            "return_delay_time": 0,
        }
        for register, value in wanted.items():
            if bus.read(register, j.id) != value:
                bus.write_eeprom(register, j.id, value)
        effort = gripper_max_effort if name == GRIPPER else None
        bus.prepare_position_control(j.id, model, effort)


# ------------------------------------------------------------------ interactive
class CalibrationIO(Protocol):
    """How :func:`calibrate` talks to the person: messages out, Enter presses in."""

    def say(self, text: str) -> None: ...

    def enter_pressed(self, timeout_s: float) -> bool:
        """Whether Enter was pressed within ``timeout_s`` (the routine polls the motors between)."""
        ...


class TerminalIO:
    """:class:`CalibrationIO` on a terminal: prints, and reads lines on a background thread."""

    def __init__(self, stream: TextIO | None = None, out: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._out = out or sys.stdout
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def say(self, text: str) -> None:
        print(text, file=self._out, flush=True)

    def enter_pressed(self, timeout_s: float) -> bool:
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, daemon=True, name="calib-input")
            self._thread.start()
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return False
        if line is None:
            raise EOFError("input closed during calibration")
        return True

    def _reader(self) -> None:
        for line in self._stream:
            self._lines.put(line)
        self._lines.put(None)


@dataclass(frozen=True)
class JointSetup:
    """A joint to calibrate: its name, motor id, and the hint on its positive direction."""

    name: str
    motor_id: int
    positive_hint: str = ""


def _wrap(delta: np.ndarray) -> np.ndarray:
    """Ticks wrapped into [-half turn, half turn)."""
    half = TICKS_PER_REV // 2
    return (np.asarray(delta) + half) % TICKS_PER_REV - half


class _Tracker:
    """Continuous (unwrapped) joint positions from polled single-turn encoder readings."""

    def __init__(self, raw: np.ndarray) -> None:
        self.prev = raw.astype(np.int64)
        self.pos = self.prev.astype(np.float64)
        self.lo = self.pos.copy()
        self.hi = self.pos.copy()

    def update(self, raw: np.ndarray) -> None:
        raw = raw.astype(np.int64)
        self.pos = self.pos + _wrap(raw - self.prev)
        self.prev = raw
        self.lo = np.minimum(self.lo, self.pos)
        self.hi = np.maximum(self.hi, self.pos)


def calibrate(
    bus: MotorBus,
    joints: Sequence[JointSetup],
    io: CalibrationIO,
    *,
    robot_type: str,
    reference_pose: Sequence[float],
    poll_s: float = 0.02,
) -> ArmCalibration:
    """Interactively calibrate the arm on ``bus`` (opened by the caller); torque stays off.

    1. Ping every motor (model check), release torque, clear the homing offsets.
    2. The person puts the arm in ``reference_pose`` (radians per arm joint) with the
       gripper closed and presses Enter.
    3. Per arm joint: turn it a little in its positive direction, Enter (gives the sign);
       then open the gripper a little, Enter.
    4. Move every joint through its whole travel, end to end, Enter.

    Positions are polled every ``poll_s`` the whole time, so joints that pass the encoder's
    wrap point are followed. The new offsets and limits are written to the motors.
    """
    names = [j.name for j in joints]
    arm = [j for j in joints if j.name != GRIPPER]
    if len(reference_pose) != len(arm):
        raise ValueError(
            f"reference pose has {len(reference_pose)} values for the {len(arm)} arm joints {[j.name for j in arm]}"
        )
    ids = [j.motor_id for j in joints]
    models = {}
    for j in joints:
        models[j.name] = bus.model_of(bus.ping(j.motor_id), j.motor_id)
    bus.sync_write("torque_enable", {i: 0 for i in ids})
    for i in ids:
        if bus.read("homing_offset", i) != 0:
            bus.write_eeprom("homing_offset", i, 0)

    def poll() -> np.ndarray:
        return np.array(bus.sync_read("present_position", ids), dtype=np.int64) % TICKS_PER_REV

    def wait(tracker: _Tracker | None) -> np.ndarray:
        while not io.enter_pressed(poll_s):
            if tracker is not None:
                tracker.update(poll())
        raw = poll()
        if tracker is not None:
            tracker.update(raw)
        return raw

    io.say(
        "Torque is off: the arm moves freely. Put it in the reference pose "
        f"({', '.join(f'{j.name}={q:+.2f} rad' for j, q in zip(arm, reference_pose))}) "
        "with the gripper closed, then press Enter."
    )
    tracker = _Tracker(wait(None))
    ref = tracker.pos.copy()
    directions = np.ones(len(joints), dtype=np.int64)
    for k, j in enumerate(joints):
        if j.name == GRIPPER:
            prompt = "Open the gripper a little, keep the rest still, then press Enter."
        else:
            hint = f" ({j.positive_hint})" if j.positive_hint else ""
            prompt = (
                f"Turn {j.name} a little in its POSITIVE direction{hint}, keep the rest "
                "still, then press Enter."
            )
        while True:
            io.say(prompt)
            wait(tracker)
            delta = tracker.pos[k] - ref[k]
            if abs(delta) >= MIN_DIRECTION_TICKS:
                directions[k] = 1 if delta > 0 else -1
                break
            io.say(f"{j.name} moved only {abs(delta):.0f} ticks; turn it a bit further.")
    io.say(
        "Now move EVERY joint slowly through its whole travel, from one end stop to the "
        "other (the gripper from closed to fully open), then press Enter."
    )
    wait(tracker)

    cal_joints: dict[str, JointCalibration] = {}
    half = TICKS_PER_REV // 2
    for k, j in enumerate(joints):
        lo, hi = float(tracker.lo[k]), float(tracker.hi[k])
        if hi - lo < MIN_SPAN_TICKS:
            raise CalibrationError(
                "<interactive>", j.name, f"moved only {hi - lo:.0f} ticks during the range sweep"
            )
        if hi - lo > TICKS_PER_REV - 2:  # a full turn (wrist roll): centre it on the reference
            lo, hi = ref[k] - (half - 1), ref[k] + (half - 1)
        mid = round((lo + hi) / 2)
        present_mid = half
        offset = bus.homing_offset_for(mid % TICKS_PER_REV, present_mid)
        if abs(offset) > bus.max_homing_offset:  # e.g. -2048 on Feetech: shift by a tick
            step = 1 if offset < 0 else -1
            offset += step
            present_mid += -step if bus.homing_subtracts else step

        def present(u: float, mid: int = mid, present_mid: int = present_mid) -> float:
            return u - mid + present_mid

        range_min = max(0, math.ceil(present(lo)))
        range_max = min(TICKS_PER_REV - 1, math.floor(present(hi)))
        if j.name == GRIPPER:
            zero = float(range_min if directions[k] > 0 else range_max)
            unit = "fraction"
        else:
            q_ref = float(reference_pose[[a.name for a in arm].index(j.name)])
            zero = present(ref[k]) - directions[k] * q_ref * TICKS_PER_REV / (2 * math.pi)
            unit = "rad"
        cal_joints[j.name] = JointCalibration(
            id=j.motor_id,
            model=models[j.name].name,
            unit=unit,
            homing_offset=int(offset),
            range_min=int(range_min),
            range_max=int(range_max),
            direction=int(directions[k]),
            zero=float(zero),
        )
    cal = ArmCalibration(robot_type, bus.family, {n: cal_joints[n] for n in names})
    validate_calibration(cal, "<interactive>")
    apply_motor_settings(bus, cal)
    io.say("Calibration done.")
    return cal


def describe_calibration(cal: ArmCalibration) -> str:
    """A table of the calibrated joints (limits in joint units), for the terminal."""
    lines = [f"{'joint':<15}{'id':>4}  {'model':<12}{'unit':<10}{'lower':>9}{'upper':>9}  dir"]
    for name, j in cal.joints.items():
        lo, hi = j.limits
        lines.append(
            f"{name:<15}{j.id:>4}  {j.model:<12}{j.unit:<10}{lo:>9.3f}{hi:>9.3f}  {j.direction:+d}"
        )
    return "\n".join(lines)


def joint_setups(
    names: Sequence[str], motor_ids: Sequence[int], hints: Mapping[str, str] | None = None
) -> list[JointSetup]:
    if len(names) != len(motor_ids):
        raise ValueError(f"{len(motor_ids)} motor ids for the {len(names)} joints {list(names)}")
    hints = hints or {}
    return [JointSetup(n, int(i), hints.get(n, "")) for n, i in zip(names, motor_ids)]
