"""HID gamepad: report parsing from synthetic bytes, the reader thread, open errors."""

from __future__ import annotations

import io
import queue
import sys
import time
from collections.abc import Sequence

import pytest

from hilrl.teleop.errors import TeleopError
from hilrl.teleop.hid import HidGamepad, open_hidapi, parse_report, read_reports
from hilrl.teleop.mapping import GamepadMapping, HidDeviceSpec, parse_mapping
from hilrl.types import GRIPPER_CLOSE, gripper_index

MAPPING = parse_mapping(
    {
        "hid": {"vendor_id": 0x1234, "product_id": 0x5678, "report_id": 1, "report_length": 8},
        "axes": {
            "x": {"byte": 1, "format": "u8", "sign": -1},
            "y": {"byte": 2, "format": "i8"},
            "z": {"byte": 3, "format": "i16le"},
        },
        "buttons": {
            "intervene": {"byte": 5, "bit": 0},
            "gripper_close": {"byte": 5, "bit": 1},
            "success": {"byte": 6, "mask": 0x0F, "value": 3},
            "z+": {"byte": 6, "mask": 0x0F, "value": 0},
        },
    },
    "synthetic.yaml",
)


def report(
    x: int = 128, y: int = 0, z: int = 0, buttons: int = 0, nibble: int = 0x0F, rid: int = 1
) -> bytes:
    """A synthetic 8-byte report in MAPPING's layout."""
    return bytes([rid, x, y & 0xFF, *z.to_bytes(2, "little", signed=True), buttons, nibble, 0])


def test_centred_report_reads_zero_and_nothing_held() -> None:
    parsed = parse_report(MAPPING, report(), deadzone=0.1)
    assert parsed is not None
    motion, held = parsed
    assert motion == {"x": 0.0, "y": 0.0, "z": 0.0}
    assert not any(held.values())


def test_axis_formats_signs_and_extremes() -> None:
    parsed = parse_report(MAPPING, report(x=0, y=-128, z=32767), deadzone=0.0)
    assert parsed is not None
    motion, _ = parsed
    assert motion["x"] == pytest.approx(1.0)  # u8 0 -> -1, sign -1 -> +1
    assert motion["y"] == pytest.approx(-1.0)
    assert motion["z"] == pytest.approx(1.0)
    motion, _ = parse_report(MAPPING, report(x=255, y=127, z=-32768), deadzone=0.0)  # type: ignore[misc]
    assert motion["x"] == pytest.approx(-1.0)
    assert motion["y"] == pytest.approx(1.0)
    assert motion["z"] == pytest.approx(-1.0)


def test_big_endian_and_custom_range() -> None:
    mapping = parse_mapping(
        {
            "hid": {"vendor_id": 1, "product_id": 2, "report_length": 2},
            "axes": {"x": {"byte": 0, "format": "u16be", "min": 0, "max": 1023}},
            "buttons": {"intervene": {"byte": 1, "bit": 7}},
        },
        "be.yaml",
    )
    motion, held = parse_report(mapping, bytes([0x03, 0xFF]), deadzone=0.0)  # type: ignore[misc]
    assert motion["x"] == pytest.approx(1.0)
    assert held["intervene"]  # 0xFF has bit 7 set
    motion, _ = parse_report(mapping, bytes([0x00, 0x00]), deadzone=0.0)  # type: ignore[misc]
    assert motion["x"] == pytest.approx(-1.0)


def test_bits_and_masked_values() -> None:
    _, held = parse_report(MAPPING, report(buttons=0b10, nibble=0xF3))  # type: ignore[misc]
    assert held == {"intervene": False, "gripper_close": True, "success": True, "z+": False}
    _, held = parse_report(MAPPING, report(buttons=0b01, nibble=0x00))  # type: ignore[misc]
    assert held == {"intervene": True, "gripper_close": False, "success": False, "z+": True}


def test_other_report_ids_and_short_reports_are_skipped() -> None:
    assert parse_report(MAPPING, report(rid=2)) is None
    assert parse_report(MAPPING, report()[:6]) is None
    assert parse_report(MAPPING, b"") is None


def make(**kw: object) -> HidGamepad:
    kw.setdefault("out", io.StringIO())
    return HidGamepad(MAPPING, deadzone=0.1, opener=lambda spec: FakeDevice(), **kw)  # type: ignore[arg-type]


def test_fed_reports_tap_between_ticks_is_latched() -> None:
    pad = make()
    pad.feed_report(report(buttons=0b01))  # intervene down
    pad.feed_report(report(buttons=0b11))  # gripper close down
    pad.feed_report(report(buttons=0b01))  # gripper close up
    pad.feed_report(report(buttons=0b00))  # intervene up
    cmd = pad.poll({}, {})
    assert cmd.is_intervening
    assert cmd.action is not None and int(gripper_index(cmd.action[-1])) == GRIPPER_CLOSE
    assert not pad.poll({}, {}).is_intervening
    assert not pad.feed_report(report(rid=9))


class FakeDevice:
    """hidapi's read(max_length, timeout_ms): reports from a queue, [] on timeout."""

    def __init__(self) -> None:
        self.reports: queue.Queue[bytes | Exception] = queue.Queue()
        self.closed = False

    def read(self, max_length: int, timeout_ms: int = 0) -> Sequence[int] | bytes:
        try:
            item = self.reports.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            return []
        if isinstance(item, Exception):
            raise item
        return list(item[:max_length])

    def close(self) -> None:
        self.closed = True


def started(device: FakeDevice, **kw: object) -> HidGamepad:
    kw.setdefault("out", io.StringIO())
    pad = HidGamepad(MAPPING, opener=lambda spec: device, **kw)  # type: ignore[arg-type]
    pad.start()
    return pad


def wait_reports(pad: HidGamepad, n: int) -> None:
    deadline = time.monotonic() + 5.0
    while pad.reports_read < n:
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_reader_thread_hold_and_tap() -> None:
    device = FakeDevice()
    pad = started(device)
    try:
        device.reports.put(report(buttons=0b01))
        wait_reports(pad, 1)
        assert pad.poll({}, {}).is_intervening
        assert pad.poll({}, {}).is_intervening  # still held
        device.reports.put(report(buttons=0b00, nibble=0x03))
        device.reports.put(report(buttons=0b00, nibble=0x0F))  # success tapped
        wait_reports(pad, 3)
        cmd = pad.poll({}, {})
        assert not cmd.is_intervening and cmd.events.success
        assert not pad.poll({}, {}).events.success
    finally:
        pad.stop()
    assert device.closed


def test_device_lost_mid_run_raises_on_poll() -> None:
    device = FakeDevice()
    pad = started(device)
    try:
        device.reports.put(report(buttons=0b01))
        wait_reports(pad, 1)
        device.reports.put(OSError("read error"))
        deadline = time.monotonic() + 5.0
        while pad._error is None:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        with pytest.raises(TeleopError, match="unplugged"):
            pad.poll({}, {})
    finally:
        pad.stop()


def test_hint_says_hold() -> None:
    out = io.StringIO()
    pad = started(FakeDevice(), out=out)
    pad.stop()
    assert "HOLD byte 5 bit 0" in out.getvalue()


def test_joystick_mapping_cannot_start_a_hid_device() -> None:
    mapping: GamepadMapping = parse_mapping({"buttons": {"intervene": 5}}, "pad.yaml")
    pad = HidGamepad(mapping, opener=lambda spec: FakeDevice(), out=io.StringIO())
    with pytest.raises(TeleopError, match=r"pad\.yaml: hid: missing.*teleop.device=gamepad"):
        pad.start()


def test_hidapi_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hid", None)  # import hid -> ImportError
    with pytest.raises(TeleopError, match="pip install hidapi"):
        open_hidapi(HidDeviceSpec(vendor_id=1, product_id=2))


class _NoDevice:
    def open(self, vid: int, pid: int, serial: str | None = None) -> None:
        raise OSError("open failed")


class _FakeHidModule:
    def __init__(self, present: bool) -> None:
        self.present = present

    def device(self) -> _NoDevice:
        return _NoDevice()

    def enumerate(self, vid: int, pid: int) -> list[dict[str, int]]:
        return [{"vendor_id": vid, "product_id": pid}] if self.present else []


def test_unplugged_or_forbidden_device_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = HidDeviceSpec(vendor_id=0x1234, product_id=0x5678)
    monkeypatch.setitem(sys.modules, "hid", _FakeHidModule(present=False))
    with pytest.raises(TeleopError, match="vendor_id=0x1234 product_id=0x5678 is connected; plug"):
        open_hidapi(spec)
    monkeypatch.setitem(sys.modules, "hid", _FakeHidModule(present=True))
    with pytest.raises(TeleopError, match=r"cannot be opened.*Input Monitoring"):
        open_hidapi(spec)


def test_read_reports_collects_raw_reports() -> None:
    device = FakeDevice()
    for b in (0, 1, 2):
        device.reports.put(report(buttons=b))
    spec = HidDeviceSpec(vendor_id=1, product_id=2, report_length=8)
    got = read_reports(spec, 3, opener=lambda s: device)
    assert [r[5] for r in got] == [0, 1, 2]
    assert device.closed
