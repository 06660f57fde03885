"""Gamepad mapping files: which stick axis or button drives which control.

One YAML format serves both gamepad backends. A pygame joystick names inputs by index;
a raw HID device names them by byte offset into the input report::

    name: Xbox 360 pad (Linux xpad)
    axes:                      # x, y, z, rx, ry, rz
      x: {index: 1, sign: -1}            # pygame axis 1, pushed up = +x
      y: {index: 0, sign: -1, scale: 0.8, deadzone: 0.15}
      z: {byte: 4, format: u8, sign: -1} # HID: byte 4, unsigned 8 bit, centre 127.5
    buttons:                   # intervene, gripper_open/close, events, x+ ... rz-
      intervene: 5                       # pygame button 5
      gripper_close: {axis: 2, threshold: 0.5}  # analog trigger past 0.5
      z+: {hat: 0, direction: up}        # d-pad up
      success: {byte: 5, bit: 5}         # HID: bit 5 of byte 5
      rerecord: {byte: 5, mask: 15, value: 6}   # HID: low nibble of byte 5 equals 6
      gripper_open: [1, {axis: 5, threshold: 0.5}]  # several inputs for one control
    labels: {intervene: RB}    # optional names shown in the console hint
    hid: {vendor_id: 0x046d, product_id: 0xc216, report_length: 8}   # HID only

Every mistake (bad YAML, unknown control, malformed entry) raises
:class:`~hilrl.teleop.errors.TeleopError` naming the file and the entry; indices are
checked against the connected device when it starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hilrl.teleop.controls import BUTTON_ACTIONS, INTERVENE, MOTION_AXES
from hilrl.teleop.errors import TeleopError

HAT_DIRECTIONS = ("up", "down", "left", "right")
HID_FORMATS: dict[str, tuple[int, bool, str]] = {
    "u8": (1, False, "little"),
    "i8": (1, True, "little"),
    "u16le": (2, False, "little"),
    "i16le": (2, True, "little"),
    "u16be": (2, False, "big"),
    "i16be": (2, True, "big"),
}
"""Axis field format -> (bytes, signed, byte order)."""

_TOP_KEYS = ("name", "axes", "buttons", "labels", "hid")
_AXIS_KEYS = ("index", "byte", "format", "sign", "scale", "deadzone", "min", "max")
_HID_KEYS = ("vendor_id", "product_id", "report_id", "report_length", "serial")


@dataclass(frozen=True)
class AxisSpec:
    """One analog input driving a motion axis: a joystick axis or a HID report field."""

    index: int | None = None
    byte: int | None = None
    format: str = "u8"
    sign: float = 1.0
    scale: float = 1.0
    deadzone: float | None = None
    raw_min: float | None = None
    raw_max: float | None = None

    @property
    def is_hid(self) -> bool:
        return self.byte is not None

    def raw_range(self) -> tuple[float, float]:
        """HID: the raw field values that map to -1 and +1 (format's full range by default)."""
        size, signed, _ = HID_FORMATS[self.format]
        bits = 8 * size
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        return (
            float(lo if self.raw_min is None else self.raw_min),
            float(hi if self.raw_max is None else self.raw_max),
        )

    def describe(self) -> str:
        return f"byte {self.byte} ({self.format})" if self.is_hid else f"axis {self.index}"


@dataclass(frozen=True)
class ButtonSpec:
    """One digital input: a button, an axis past a threshold, a hat direction or HID bits."""

    kind: str
    """'button' | 'axis' | 'hat' (joystick) or 'bit' | 'value' (HID report)."""
    index: int = 0
    """Button / axis / hat index, or the HID byte offset."""
    threshold: float = 0.5
    direction: str = "up"
    bit: int = 0
    mask: int = 0xFF
    value: int = 0

    @property
    def is_hid(self) -> bool:
        return self.kind in ("bit", "value")

    def describe(self) -> str:
        if self.kind == "button":
            return f"button {self.index}"
        if self.kind == "axis":
            cmp = ">" if self.threshold >= 0 else "<"
            return f"axis {self.index} {cmp} {self.threshold:g}"
        if self.kind == "hat":
            return f"hat {self.index} {self.direction}"
        if self.kind == "bit":
            return f"byte {self.index} bit {self.bit}"
        return f"byte {self.index} & {self.mask:#x} == {self.value}"


@dataclass(frozen=True)
class HidDeviceSpec:
    """Which USB HID device to open (hidapi), and what its reports look like."""

    vendor_id: int
    product_id: int
    report_id: int | None = None
    """When set, only reports whose first byte equals it are parsed."""
    report_length: int = 64
    """Bytes to read per report (at least the largest offset used)."""
    serial: str | None = None


@dataclass(frozen=True)
class GamepadMapping:
    """A parsed mapping file."""

    source: str
    """File path (or '<built-in ...>'), named in every error."""
    name: str = ""
    axes: dict[str, AxisSpec] = field(default_factory=dict)
    buttons: dict[str, tuple[ButtonSpec, ...]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    hid: HidDeviceSpec | None = None

    def error(self, entry: str, problem: str) -> TeleopError:
        return TeleopError(f"gamepad mapping {self.source}: {entry}: {problem}")

    def label(self, control: str) -> str:
        """How the hint names the input(s) of ``control``."""
        if control in self.labels:
            return self.labels[control]
        if control in self.axes:
            return self.axes[control].describe()
        return " or ".join(s.describe() for s in self.buttons.get(control, ()))

    @property
    def is_hid(self) -> bool:
        return self.hid is not None

    def check_for_joystick(
        self, *, name: str, num_axes: int, num_buttons: int, num_hats: int
    ) -> None:
        """Every entry is a joystick input that exists on the connected joystick ``name``."""
        have = f"joystick '{name}' has {num_axes} axes, {num_buttons} buttons, {num_hats} hats"
        for axis, spec in self.axes.items():
            if spec.is_hid:
                raise self.error(f"axes.{axis}", _HID_FOR_JOYSTICK)
            assert spec.index is not None
            if spec.index >= num_axes:
                raise self.error(f"axes.{axis}", f"axis index {spec.index} is out of range: {have}")
        counts = {
            "button": (num_buttons, "button"),
            "axis": (num_axes, "axis"),
            "hat": (num_hats, "hat"),
        }
        for control, specs in self.buttons.items():
            for button in specs:
                if button.is_hid:
                    raise self.error(f"buttons.{control}", _HID_FOR_JOYSTICK)
                count, what = counts[button.kind]
                if button.index >= count:
                    raise self.error(
                        f"buttons.{control}",
                        f"{what} index {button.index} is out of range: {have}",
                    )

    def check_for_hid(self) -> HidDeviceSpec:
        """Every entry is a HID report field inside ``hid.report_length``; returns the device."""
        if self.hid is None:
            if self.axes or self.buttons:
                raise self.error(
                    "hid",
                    "missing: this mapping names joystick indices (a pygame gamepad); set "
                    "teleop.device=gamepad, or write a HID mapping with byte offsets and a "
                    "hid: {vendor_id, product_id} section",
                )
            raise self.error(
                "hid",
                "missing: a HID mapping needs 'hid: {vendor_id: ..., product_id: ...}' "
                "(find them with hid.enumerate() or your OS's USB device list)",
            )
        length = self.hid.report_length
        for axis, spec in self.axes.items():
            if not spec.is_hid:
                raise self.error(f"axes.{axis}", _JOYSTICK_FOR_HID)
            assert spec.byte is not None
            end = spec.byte + HID_FORMATS[spec.format][0]
            if end > length:
                raise self.error(
                    f"axes.{axis}",
                    f"bytes {spec.byte}..{end - 1} lie past hid.report_length = {length}",
                )
        for control, specs in self.buttons.items():
            for button in specs:
                if not button.is_hid:
                    raise self.error(f"buttons.{control}", _JOYSTICK_FOR_HID)
                if button.index >= length:
                    raise self.error(
                        f"buttons.{control}",
                        f"byte {button.index} lies past hid.report_length = {length}",
                    )
        return self.hid


_HID_FOR_JOYSTICK = (
    "uses HID byte offsets, but the device is a pygame joystick; use 'index' / 'axis' / "
    "'hat' entries, or set teleop.device=hid"
)
_JOYSTICK_FOR_HID = (
    "uses a joystick index, but the device is a raw HID gamepad; use 'byte' entries, or "
    "set teleop.device=gamepad"
)


# ----------------------------------------------------------------------------- loading


def load_mapping(path: str | Path) -> GamepadMapping:
    """Read and validate a mapping file; every error names the file and the entry."""
    p = Path(path)
    if not p.is_file():
        raise TeleopError(
            f"gamepad mapping {p}: file not found; set teleop.mapping_file to an existing "
            "YAML file (examples in configs/gamepad_mappings/)"
        )
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise TeleopError(f"gamepad mapping {p}: not valid YAML: {exc}") from exc
    return parse_mapping(data, str(p))


def parse_mapping(data: object, source: str) -> GamepadMapping:
    """Validate plain data (a parsed YAML document) into a :class:`GamepadMapping`."""

    def fail(entry: str, problem: str) -> TeleopError:
        return TeleopError(f"gamepad mapping {source}: {entry}: {problem}")

    if not isinstance(data, dict):
        raise fail("<top level>", f"expected a mapping with keys {_TOP_KEYS}, got {data!r}")
    for key in data:
        if key not in _TOP_KEYS:
            raise fail(str(key), f"unknown key; allowed keys are {_TOP_KEYS}")
    axes_data = _section(data, "axes", fail)
    buttons_data = _section(data, "buttons", fail)
    labels_data = _section(data, "labels", fail)
    axes: dict[str, AxisSpec] = {}
    for axis, entry in axes_data.items():
        if axis not in MOTION_AXES:
            raise fail(f"axes.{axis}", f"unknown axis; axes are {MOTION_AXES}")
        axes[str(axis)] = _parse_axis(entry, lambda p, a=axis: fail(f"axes.{a}", p))
    buttons: dict[str, tuple[ButtonSpec, ...]] = {}
    for control, entry in buttons_data.items():
        if control not in BUTTON_ACTIONS:
            raise fail(f"buttons.{control}", f"unknown action; actions are {BUTTON_ACTIONS}")
        entries = entry if isinstance(entry, list) else [entry]
        if not entries:
            raise fail(f"buttons.{control}", "empty list; give at least one input")
        buttons[str(control)] = tuple(
            _parse_button(e, lambda p, c=control: fail(f"buttons.{c}", p)) for e in entries
        )
    if INTERVENE not in buttons:
        raise fail(
            f"buttons.{INTERVENE}",
            "missing: map a button to 'intervene' (the operator holds it to take over)",
        )
    for control in labels_data:
        if control not in BUTTON_ACTIONS and control not in MOTION_AXES:
            raise fail(f"labels.{control}", "unknown control")
    name = data.get("name", "")
    hid = _parse_hid(data["hid"], lambda p: fail("hid", p)) if data.get("hid") is not None else None
    mapping = GamepadMapping(
        source=source,
        name=str(name) if name is not None else "",
        axes=axes,
        buttons=buttons,
        labels={str(k): str(v) for k, v in labels_data.items()},
        hid=hid,
    )
    kinds = {s.is_hid for s in axes.values()} | {s.is_hid for v in buttons.values() for s in v}
    if len(kinds) > 1:
        raise fail("<entries>", "mixes joystick indices and HID byte offsets; use one kind")
    if hid is not None:
        mapping.check_for_hid()
    elif True in kinds:
        raise fail("hid", "missing: entries use HID byte offsets, so give the hid: device section")
    return mapping


def _section(data: dict[Any, Any], key: str, fail: Any) -> dict[Any, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(key, f"expected a mapping, got {value!r}")
    return value


def _int(value: object, what: str, fail: Any, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(f"{what} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise fail(f"{what} must be {bound}, got {value}")
    return value


def _float(value: object, what: str, fail: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(f"{what} must be a number, got {value!r}")
    return float(value)


def _parse_axis(entry: object, fail: Any) -> AxisSpec:
    if isinstance(entry, int) and not isinstance(entry, bool):
        entry = {"index": entry}
    if not isinstance(entry, dict):
        raise fail(f"expected an axis index or a mapping with keys {_AXIS_KEYS}, got {entry!r}")
    for key in entry:
        if key not in _AXIS_KEYS:
            raise fail(f"unknown key {key!r}; allowed keys are {_AXIS_KEYS}")
    if ("index" in entry) == ("byte" in entry):
        raise fail("give exactly one of 'index' (joystick axis) or 'byte' (HID offset)")
    sign = _float(entry.get("sign", 1), "sign", fail)
    if sign not in (1.0, -1.0):
        raise fail(f"sign must be 1 or -1, got {entry.get('sign')!r}")
    scale = _float(entry.get("scale", 1.0), "scale", fail)
    if not 0.0 < scale <= 1.0:
        raise fail(f"scale must be in (0, 1], got {scale}")
    deadzone = entry.get("deadzone")
    if deadzone is not None:
        deadzone = _float(deadzone, "deadzone", fail)
        if not 0.0 <= deadzone < 1.0:
            raise fail(f"deadzone must be in [0, 1), got {deadzone}")
    if "index" in entry:
        hid_only = [k for k in ("format", "min", "max") if k in entry]
        if hid_only:
            raise fail(f"{hid_only} apply to HID 'byte' axes only")
        return AxisSpec(
            index=_int(entry["index"], "index", fail), sign=sign, scale=scale, deadzone=deadzone
        )
    fmt = entry.get("format", "u8")
    if fmt not in HID_FORMATS:
        raise fail(f"format must be one of {tuple(HID_FORMATS)}, got {fmt!r}")
    spec = AxisSpec(
        byte=_int(entry["byte"], "byte", fail),
        format=fmt,
        sign=sign,
        scale=scale,
        deadzone=deadzone,
        raw_min=_float(entry["min"], "min", fail) if "min" in entry else None,
        raw_max=_float(entry["max"], "max", fail) if "max" in entry else None,
    )
    lo, hi = spec.raw_range()
    if lo >= hi:
        raise fail(f"min ({lo:g}) must be below max ({hi:g})")
    return spec


def _parse_button(entry: object, fail: Any) -> ButtonSpec:
    if isinstance(entry, int) and not isinstance(entry, bool):
        return ButtonSpec("button", _int(entry, "button index", fail))
    if not isinstance(entry, dict):
        raise fail(
            "expected a button index, {axis, threshold}, {hat, direction}, "
            f"{{byte, bit}} or {{byte, mask, value}}; got {entry!r}"
        )
    keys = set(entry)
    if keys == {"button"}:
        return ButtonSpec("button", _int(entry["button"], "button", fail))
    if keys <= {"axis", "threshold"} and "axis" in keys:
        threshold = _float(entry.get("threshold", 0.5), "threshold", fail)
        if not -1.0 < threshold < 1.0 or threshold == 0.0:
            raise fail(f"threshold must be in (-1, 1) and nonzero, got {threshold}")
        return ButtonSpec("axis", _int(entry["axis"], "axis", fail), threshold=threshold)
    if keys == {"hat", "direction"}:
        direction = entry["direction"]
        if direction not in HAT_DIRECTIONS:
            raise fail(f"direction must be one of {HAT_DIRECTIONS}, got {direction!r}")
        return ButtonSpec("hat", _int(entry["hat"], "hat", fail), direction=direction)
    if keys == {"byte", "bit"}:
        return ButtonSpec(
            "bit", _int(entry["byte"], "byte", fail), bit=_int(entry["bit"], "bit", fail, 0, 7)
        )
    if keys == {"byte", "mask", "value"}:
        mask = _int(entry["mask"], "mask", fail, 1, 255)
        value = _int(entry["value"], "value", fail, 0, 255)
        if value & ~mask:
            raise fail(f"value {value:#x} has bits outside mask {mask:#x}")
        return ButtonSpec("value", _int(entry["byte"], "byte", fail), mask=mask, value=value)
    raise fail(
        f"unrecognised keys {sorted(keys)}; use {{axis, threshold}}, {{hat, direction}}, "
        "{byte, bit} or {byte, mask, value}"
    )


def _parse_hid(entry: object, fail: Any) -> HidDeviceSpec:
    if not isinstance(entry, dict):
        raise fail(f"expected a mapping with keys {_HID_KEYS}, got {entry!r}")
    for key in entry:
        if key not in _HID_KEYS:
            raise fail(f"unknown key {key!r}; allowed keys are {_HID_KEYS}")
    for key in ("vendor_id", "product_id"):
        if key not in entry:
            raise fail(f"missing {key} (the USB id, e.g. 0x046d)")
    report_id = entry.get("report_id")
    serial = entry.get("serial")
    return HidDeviceSpec(
        vendor_id=_int(entry["vendor_id"], "vendor_id", fail, 0, 0xFFFF),
        product_id=_int(entry["product_id"], "product_id", fail, 0, 0xFFFF),
        report_id=None if report_id is None else _int(report_id, "report_id", fail, 0, 255),
        report_length=_int(entry.get("report_length", 64), "report_length", fail, 1, 4096),
        serial=None if serial is None else str(serial),
    )


# ----------------------------------------------------------------------------- default

DEFAULT_MAPPING_DATA: dict[str, Any] = {
    "name": "Xbox-style pad (SDL joystick API on Linux; see configs/gamepad_mappings/)",
    "axes": {
        "x": {"index": 1, "sign": -1},  # left stick up = forward
        "y": {"index": 0, "sign": -1},  # left stick left = left
        "z": {"index": 4, "sign": -1},  # right stick up = up
    },
    "buttons": {
        "intervene": 5,  # RB
        "gripper_close": {"axis": 2, "threshold": 0.5},  # LT
        "gripper_open": {"axis": 5, "threshold": 0.5},  # RT
        "success": 3,  # Y
        "failure": 1,  # B
        "rerecord": 2,  # X
        "pause": 7,  # Start
        "quit": 6,  # Back
    },
    "labels": {
        "intervene": "RB",
        "gripper_close": "LT",
        "gripper_open": "RT",
        "success": "Y",
        "failure": "B",
        "rerecord": "X",
        "pause": "Start",
        "quit": "Back",
        "x": "left stick up/down",
        "y": "left stick left/right",
        "z": "right stick up/down",
    },
}
"""The mapping used when ``teleop.mapping_file`` is not set."""


def default_mapping() -> GamepadMapping:
    return parse_mapping(DEFAULT_MAPPING_DATA, "<built-in default mapping>")
