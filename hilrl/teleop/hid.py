"""Raw HID gamepads through hidapi: for macOS, where SDL may not see a pad, and for pedals.

A background thread reads every input report (so a press and release between two control
ticks still reach the latch) and parses it with the byte offsets of a mapping file (see
:mod:`hilrl.teleop.mapping`). Offsets count from the first byte hidapi returns, which is
the report ID on devices that number their reports.

hidapi is imported only when the device opens (``pip install hidapi``; on macOS grant the
terminal "Input Monitoring"; on Linux give your user access to ``/dev/hidraw*``).
:func:`parse_report` is pure, so report layouts are tested with synthetic bytes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from hilrl.teleop.base import LatchedController
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.gamepad import apply_deadzone, gamepad_hint
from hilrl.teleop.mapping import HID_FORMATS, AxisSpec, ButtonSpec, GamepadMapping, HidDeviceSpec

READ_TIMEOUT_MS = 100
"""How long one blocking read waits; bounds how long ``stop()`` takes."""


class HidDeviceLike(Protocol):
    """An open HID device (hidapi's ``hid.device`` after ``open``, or a test double)."""

    def read(self, max_length: int, timeout_ms: int = 0) -> Sequence[int] | bytes: ...

    def close(self) -> None: ...


DeviceOpener = Callable[[HidDeviceSpec], HidDeviceLike]


# ----------------------------------------------------------------------------- parsing


def read_axis(report: bytes, spec: AxisSpec) -> float:
    """The field of ``spec`` in ``report``, normalised so [min, max] maps to [-1, 1]."""
    size, signed, order = HID_FORMATS[spec.format]
    assert spec.byte is not None
    raw = int.from_bytes(report[spec.byte : spec.byte + size], order, signed=signed)  # type: ignore[arg-type]
    lo, hi = spec.raw_range()
    value = (raw - (lo + hi) / 2.0) / ((hi - lo) / 2.0)
    return max(-1.0, min(1.0, value))


def read_button(report: bytes, spec: ButtonSpec) -> bool:
    byte = report[spec.index]
    if spec.kind == "bit":
        return bool(byte >> spec.bit & 1)
    if spec.kind == "value":
        return (byte & spec.mask) == spec.value
    raise ValueError(f"{spec.kind!r} is not a HID input")


def report_length_needed(mapping: GamepadMapping) -> int:
    """The shortest report that holds every mapped field."""
    ends = [s.byte + HID_FORMATS[s.format][0] for s in mapping.axes.values() if s.byte is not None]
    ends += [s.index + 1 for specs in mapping.buttons.values() for s in specs]
    return max(ends, default=0)


def parse_report(
    mapping: GamepadMapping, report: bytes | Sequence[int], deadzone: float = 0.1
) -> tuple[dict[str, float], dict[str, bool]] | None:
    """(motion axis values, control held states) of one input report.

    None when the report is not one this mapping reads: another report ID, or too short.
    """
    data = bytes(report)
    hid = mapping.hid
    if hid is not None and hid.report_id is not None and (not data or data[0] != hid.report_id):
        return None
    if len(data) < report_length_needed(mapping):
        return None
    motion = {
        name: apply_deadzone(read_axis(data, s), deadzone if s.deadzone is None else s.deadzone)
        * s.sign
        * s.scale
        for name, s in mapping.axes.items()
    }
    held = {
        control: any(read_button(data, s) for s in specs)
        for control, specs in mapping.buttons.items()
    }
    return motion, held


# ----------------------------------------------------------------------------- device


def open_hidapi(spec: HidDeviceSpec) -> HidDeviceLike:
    """Open ``spec``'s device with hidapi (``hid`` module), with errors that say what to do."""
    ids = f"vendor_id={spec.vendor_id:#06x} product_id={spec.product_id:#06x}"
    try:
        import hid  # optional: hidapi (the 'teleop' extra)
    except ImportError as exc:
        raise TeleopError(
            "hid gamepad: hidapi is not installed; 'pip install hidapi' (or use "
            "teleop.device=gamepad)"
        ) from exc
    try:
        if hasattr(hid, "device"):  # cython-hidapi ('pip install hidapi')
            device: Any = hid.device()
            device.open(spec.vendor_id, spec.product_id, spec.serial)
        else:  # the ctypes 'hid' package
            device = hid.Device(vid=spec.vendor_id, pid=spec.product_id, serial=spec.serial)
        return _Adapter(device)
    except (OSError, ValueError, getattr(hid, "HIDException", OSError)) as exc:
        try:
            present = bool(hid.enumerate(spec.vendor_id, spec.product_id))
        except Exception:
            present = False
        if not present:
            raise TeleopError(
                f"hid gamepad: no device with {ids} is connected; plug it in, or fix the ids "
                "in the mapping's hid: section (hid.enumerate() lists connected devices)"
            ) from exc
        raise TeleopError(
            f"hid gamepad: the device {ids} is connected but cannot be opened ({exc}); on "
            "macOS allow this terminal under Privacy & Security > Input Monitoring, on Linux "
            "add a udev rule giving your user access to /dev/hidraw*"
        ) from exc


def read_reports(
    spec: HidDeviceSpec, count: int = 20, opener: DeviceOpener | None = None
) -> list[bytes]:
    """The next ``count`` input reports of ``spec``'s device, to find a pad's byte offsets."""
    device = (opener or open_hidapi)(spec)
    reports: list[bytes] = []
    try:
        while len(reports) < count:
            data = device.read(spec.report_length, READ_TIMEOUT_MS)
            if data:
                reports.append(bytes(data))
    finally:
        device.close()
    return reports


class _Adapter:
    """Gives both hid packages hidapi's ``read(max_length, timeout_ms)`` signature."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def read(self, max_length: int, timeout_ms: int = 0) -> Sequence[int] | bytes:
        result: Sequence[int] | bytes = self.device.read(max_length, timeout_ms)
        return result

    def close(self) -> None:
        self.device.close()


class HidGamepad(LatchedController):
    """A raw HID gamepad (or pedal) read by a background thread and a byte-offset mapping."""

    def __init__(
        self,
        mapping: GamepadMapping,
        *,
        deadzone: float = 0.1,
        opener: DeviceOpener | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        self.mapping = mapping
        self.deadzone = deadzone
        self._opener = opener or open_hidapi
        self._device: HidDeviceLike | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self.reports_read = 0
        """Reports parsed so far (tests wait on it; it only grows)."""

    def start(self) -> None:
        if self._device is not None:
            return
        spec = self.mapping.check_for_hid()
        self._device = self._opener(spec)
        self._stopping.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="hilrl-hid", daemon=True)
        self._thread.start()
        self.announce()

    def stop(self) -> None:
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2.0)
        device, self._device = self._device, None
        if device is not None:
            device.close()
        self.release_all()

    def feed_report(self, report: bytes | Sequence[int]) -> bool:
        """Apply one input report to the latch; False when the mapping does not read it."""
        parsed = parse_report(self.mapping, report, self.deadzone)
        if parsed is None:
            return False
        motion, held = parsed
        for axis, value in motion.items():
            self.set_axis(axis, value)
        for control, is_held in held.items():
            self.set_held(control, is_held)
        self.reports_read += 1
        return True

    def pump(self) -> None:
        if self._error is not None:
            raise TeleopError(
                f"hid gamepad stopped reading ({self._error!r}); it was unplugged or lost. "
                "Reconnect it and restart (the operator can no longer intervene)"
            ) from self._error

    def _run(self) -> None:
        device = self._device
        assert device is not None
        length = self.mapping.hid.report_length if self.mapping.hid is not None else 64
        try:
            while not self._stopping.is_set():
                data = device.read(length, READ_TIMEOUT_MS)
                if data:
                    self.feed_report(data)
        except Exception as exc:  # a vanished device raises OSError / ValueError / HIDException
            if not self._stopping.is_set():
                self.release_all()
                self._error = exc

    def hint(self) -> str:
        title = f"HID gamepad '{self.mapping.name or 'device'}' (mapping {self.mapping.source})"
        return gamepad_hint(self, self.mapping, title)
