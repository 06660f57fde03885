"""The pynput keyboard with a fake listener: true hold-to-move, taps latched."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hilrl.teleop.errors import TeleopError
from hilrl.teleop.pynput_keyboard import PynputKeyboard, pynput_key_name
from hilrl.types import GRIPPER_CLOSE, gripper_index


@dataclass
class KeyCode:
    char: str | None


@dataclass
class Key:
    name: str


class FakeListener:
    def __init__(self, on_press: Callable[[Any], None], on_release: Callable[[Any], None]):
        self.on_press = on_press
        self.on_release = on_release
        self.running = False

    def start(self) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False


def make(**kw: Any) -> tuple[PynputKeyboard, FakeListener]:
    made: list[FakeListener] = []

    def factory(on_press: Callable[[Any], None], on_release: Callable[[Any], None]) -> FakeListener:
        made.append(FakeListener(on_press, on_release))
        return made[-1]

    kb = PynputKeyboard(listener_factory=factory, out=io.StringIO(), **kw)
    kb.start()
    return kb, made[0]


def test_key_names() -> None:
    assert pynput_key_name(KeyCode("W")) == "w"
    assert pynput_key_name(KeyCode(" ")) == "space"
    assert pynput_key_name(Key("space")) == "space"
    assert pynput_key_name(Key("up")) == "up"
    assert pynput_key_name(KeyCode(None)) is None


def test_hold_to_intervene_and_hold_to_move() -> None:
    kb, keys = make()
    keys.on_press(Key("space"))
    keys.on_press(KeyCode("w"))
    for _ in range(3):
        a = kb.poll({}, {}).action
        assert a is not None and a[0] == 1.0
    keys.on_release(KeyCode("w"))
    a = kb.poll({}, {}).action
    assert a is not None and a[0] == 0.0
    keys.on_release(Key("space"))
    assert not kb.poll({}, {}).is_intervening


def test_two_keys_for_one_control_release_independently() -> None:
    kb, keys = make()
    keys.on_press(Key("space"))
    keys.on_press(KeyCode("w"))
    keys.on_press(Key("up"))
    kb.poll({}, {})
    keys.on_release(KeyCode("w"))  # 'up' still down: still moving
    a = kb.poll({}, {}).action
    assert a is not None and a[0] == 1.0


def test_tap_between_ticks_and_auto_repeat() -> None:
    kb, keys = make(intervention_mode="toggle")
    keys.on_press(Key("space"))
    keys.on_press(Key("space"))  # auto-repeat: must not toggle back
    keys.on_release(Key("space"))
    keys.on_press(KeyCode("c"))
    keys.on_release(KeyCode("c"))
    cmd = kb.poll({}, {})
    assert cmd.is_intervening
    assert cmd.action is not None and int(gripper_index(cmd.action[-1])) == GRIPPER_CLOSE
    keys.on_press(Key("esc"))
    keys.on_release(Key("esc"))
    assert kb.poll({}, {}).events.quit


def test_hint_and_stop() -> None:
    kb, keys = make()
    assert isinstance(kb.out, io.StringIO)
    assert "HOLD space" in kb.out.getvalue()
    kb.stop()
    assert not keys.running


def test_custom_bindings() -> None:
    kb, keys = make(key_bindings={"intervene": ["tab"], "x+": ["t"]})
    keys.on_press(Key("tab"))
    keys.on_press(KeyCode("t"))
    a = kb.poll({}, {}).action
    assert a is not None and a[0] == 1.0
    with pytest.raises(ValueError, match="bound to both"):
        PynputKeyboard(key_bindings={"success": ["w"]})


def test_missing_pynput_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynput", None)
    with pytest.raises(TeleopError, match="pip install pynput"):
        PynputKeyboard(out=io.StringIO()).start()
