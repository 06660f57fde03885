"""Mapping files: every mistake names the file and the entry, and says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilrl.teleop.errors import TeleopError
from hilrl.teleop.mapping import default_mapping, load_mapping, parse_mapping

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "gamepad_mappings"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pad.yaml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(TeleopError) as info:
        load_mapping(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TeleopError, match=r"nope\.yaml: file not found"):
        load_mapping(tmp_path / "nope.yaml")


def test_bad_yaml(tmp_path: Path) -> None:
    assert "not valid YAML" in load_error(tmp_path, "buttons: {intervene: [1, 2\n")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "<top level>" in load_error(tmp_path, "- 1\n- 2\n")


def test_unknown_action(tmp_path: Path) -> None:
    message = load_error(tmp_path, "buttons:\n  intervene: 5\n  jump: 3\n")
    assert "buttons.jump: unknown action" in message
    assert "gripper_close" in message  # lists the valid names


def test_unknown_axis_and_top_key(tmp_path: Path) -> None:
    assert "axes.w: unknown axis" in load_error(tmp_path, "axes: {w: 1}\nbuttons: {intervene: 5}\n")
    assert "buton: unknown key" in load_error(tmp_path, "buton: {intervene: 5}\n")


def test_intervene_button_is_required(tmp_path: Path) -> None:
    assert "buttons.intervene: missing" in load_error(tmp_path, "buttons: {success: 1}\n")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("x: {index: -1}", "axes.x: index must be >= 0"),
        ("x: {index: 1, sign: 2}", "axes.x: sign must be 1 or -1"),
        ("x: {index: 1, scale: 0}", "axes.x: scale must be in (0, 1]"),
        ("x: {index: 1, byte: 2}", "axes.x: give exactly one of"),
        ("x: {index: 1, format: u8}", "axes.x: ['format'] apply to HID"),
        ("x: {index: 1, deadzone: 1.5}", "axes.x: deadzone must be in [0, 1)"),
        ("x: 'one'", "axes.x: expected an axis index"),
    ],
)
def test_bad_axis_entries(tmp_path: Path, entry: str, expected: str) -> None:
    message = load_error(tmp_path, f"axes:\n  {entry}\nbuttons: {{intervene: 5}}\n")
    assert expected in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("success: {hat: 0, direction: north}", "buttons.success: direction must be one of"),
        ("success: {axis: 2, threshold: 0}", "buttons.success: threshold must be"),
        ("success: {axis: 2, foo: 1}", "buttons.success: unrecognised keys"),
        ("success: []", "buttons.success: empty list"),
        ("success: true", "buttons.success: expected a button index"),
    ],
)
def test_bad_button_entries(tmp_path: Path, entry: str, expected: str) -> None:
    assert expected in load_error(tmp_path, f"buttons:\n  intervene: 5\n  {entry}\n")


def test_hid_entries_need_a_device_section_and_fit_the_report(tmp_path: Path) -> None:
    assert "hid: missing" in load_error(tmp_path, "buttons: {intervene: {byte: 1, bit: 0}}\n")
    message = load_error(
        tmp_path,
        "hid: {vendor_id: 1, product_id: 2, report_length: 4}\n"
        "buttons: {intervene: {byte: 4, bit: 0}}\n",
    )
    assert "buttons.intervene: byte 4 lies past hid.report_length = 4" in message
    message = load_error(
        tmp_path,
        "hid: {vendor_id: 1, product_id: 2}\nbuttons: {intervene: {byte: 0, bit: 8}}\n",
    )
    assert "bit must be in [0, 7]" in message
    message = load_error(
        tmp_path,
        "hid: {vendor_id: 1, product_id: 2}\n"
        "buttons: {intervene: {byte: 0, mask: 0x0f, value: 0x10}}\n",
    )
    assert "outside mask" in message


def test_mixing_joystick_and_hid_entries_is_rejected(tmp_path: Path) -> None:
    message = load_error(
        tmp_path,
        "hid: {vendor_id: 1, product_id: 2}\n"
        "axes: {x: {index: 0}}\nbuttons: {intervene: {byte: 0, bit: 0}}\n",
    )
    assert "mixes joystick indices and HID byte offsets" in message


def test_joystick_check_names_the_entry_and_the_device() -> None:
    mapping = parse_mapping({"buttons": {"intervene": 12}}, "pad.yaml")
    with pytest.raises(TeleopError) as info:
        mapping.check_for_joystick(name="Tiny pad", num_axes=2, num_buttons=4, num_hats=0)
    message = str(info.value)
    assert "pad.yaml" in message and "buttons.intervene" in message
    assert "button index 12 is out of range" in message and "'Tiny pad' has" in message


def test_hid_mapping_used_for_a_joystick_says_which_device_to_use() -> None:
    mapping = load_mapping(EXAMPLES / "foot_pedal_hid.yaml")
    with pytest.raises(TeleopError, match=r"teleop\.device=hid"):
        mapping.check_for_joystick(name="pad", num_axes=6, num_buttons=12, num_hats=1)
    with pytest.raises(TeleopError, match=r"teleop\.device=gamepad"):
        default_mapping().check_for_hid()


def test_example_files_and_default_parse() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 4
    for path in files:
        mapping = load_mapping(path)
        assert "intervene" in mapping.buttons, path.name
    assert default_mapping().label("intervene") == "RB"
    assert default_mapping().label("gripper_close") == "LT"
    assert parse_mapping({"buttons": {"intervene": 1}}, "x").label("intervene") == "button 1"
