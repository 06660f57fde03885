"""Gamepad controller with a fake joystick, and with pygame's real event queue."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from hilrl.teleop.errors import TeleopError
from hilrl.teleop.gamepad import (
    GamepadController,
    JoyEvent,
    PygameBackend,
    apply_deadzone,
)
from hilrl.teleop.mapping import GamepadMapping, default_mapping, parse_mapping
from hilrl.types import GRIPPER_CLOSE, GRIPPER_STAY, gripper_index

INTERVENE = 5  # RB in the default mapping
SUCCESS = 3  # Y


class FakeJoystick:
    """pygame.joystick.JoystickType's read methods, with settable state."""

    def __init__(self, axes: int = 6, buttons: int = 11, hats: int = 1, iid: int = 0) -> None:
        self.axes = [0.0] * axes
        self.buttons = [0] * buttons
        self.hats = [(0, 0)] * hats
        self.iid = iid

    def get_name(self) -> str:
        return "Fake pad"

    def get_instance_id(self) -> int:
        return self.iid

    def get_numaxes(self) -> int:
        return len(self.axes)

    def get_numbuttons(self) -> int:
        return len(self.buttons)

    def get_numhats(self) -> int:
        return len(self.hats)

    def get_axis(self, i: int) -> float:
        return self.axes[i]

    def get_button(self, i: int) -> int:
        return self.buttons[i]

    def get_hat(self, i: int) -> tuple[int, int]:
        return self.hats[i]


class FakeBackend:
    """An event queue and a joystick, the way SDL delivers them."""

    def __init__(self, joystick: FakeJoystick | None = None) -> None:
        self.joystick = joystick or FakeJoystick()
        self.queue: list[JoyEvent] = []
        self.closed = False

    def open(self, index: int) -> FakeJoystick:
        return self.joystick

    def events(self) -> list[JoyEvent]:
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        self.closed = True

    # what a person does
    def hold(self, button: int) -> None:
        self.joystick.buttons[button] = 1
        self.queue.append(JoyEvent("button_down", self.joystick.iid, button))

    def release(self, button: int) -> None:
        self.joystick.buttons[button] = 0
        self.queue.append(JoyEvent("button_up", self.joystick.iid, button))

    def tap(self, button: int) -> None:
        self.hold(button)
        self.release(button)

    def move(self, axis: int, value: float) -> None:
        self.joystick.axes[axis] = value
        self.queue.append(JoyEvent("axis", self.joystick.iid, axis, value))


def make(
    mapping: GamepadMapping | None = None, backend: FakeBackend | None = None, **kw: object
) -> tuple[GamepadController, FakeBackend]:
    backend = backend or FakeBackend()
    kw.setdefault("out", io.StringIO())
    ctrl = GamepadController(mapping, backend=backend, **kw)  # type: ignore[arg-type]
    ctrl.start()
    return ctrl, backend


def test_hold_mode_intervenes_while_held_and_stops_on_release() -> None:
    ctrl, pad = make()
    assert not ctrl.poll({}, {}).is_intervening
    pad.hold(INTERVENE)
    assert ctrl.poll({}, {}).is_intervening
    assert ctrl.poll({}, {}).is_intervening
    pad.release(INTERVENE)
    assert not ctrl.poll({}, {}).is_intervening


def test_hold_state_without_events_is_read_from_the_joystick() -> None:
    ctrl, pad = make()
    pad.joystick.buttons[INTERVENE] = 1  # no event (e.g. pressed before start)
    assert ctrl.poll({}, {}).is_intervening
    pad.joystick.buttons[INTERVENE] = 0
    assert not ctrl.poll({}, {}).is_intervening


def test_tap_between_polls_is_seen_through_the_event_queue() -> None:
    ctrl, pad = make()
    pad.tap(INTERVENE)
    assert ctrl.poll({}, {}).is_intervening
    assert not ctrl.poll({}, {}).is_intervening


def test_toggle_mode() -> None:
    ctrl, pad = make(intervention_mode="toggle")
    pad.tap(INTERVENE)
    assert ctrl.poll({}, {}).is_intervening
    assert ctrl.poll({}, {}).is_intervening
    pad.tap(INTERVENE)
    assert not ctrl.poll({}, {}).is_intervening


def test_trigger_axis_tap_closes_gripper_once() -> None:
    ctrl, pad = make()
    pad.hold(INTERVENE)
    pad.move(2, 1.0)  # LT pulled ...
    pad.move(2, -1.0)  # ... and released before the tick
    a = ctrl.poll({}, {}).action
    assert a is not None and int(gripper_index(a[-1])) == GRIPPER_CLOSE
    a = ctrl.poll({}, {}).action
    assert a is not None and int(gripper_index(a[-1])) == GRIPPER_STAY


def test_success_event_latches_once() -> None:
    ctrl, pad = make()
    pad.tap(SUCCESS)
    cmd = ctrl.poll({}, {})
    assert cmd.events.success and not cmd.is_intervening
    assert not ctrl.poll({}, {}).events.success


def test_deadzone_zeroes_small_axes_and_rescales_the_rest() -> None:
    ctrl, pad = make(deadzone=0.1)
    pad.hold(INTERVENE)
    pad.move(1, -0.05)  # left stick barely up: inside the deadzone
    pad.move(0, 0.08)
    a = ctrl.poll({}, {}).action
    assert a is not None and a[0] == 0.0 and a[1] == 0.0
    pad.move(1, -0.55)  # (0.55 - 0.1) / 0.9 = 0.5, sign -1: forward
    pad.move(0, 1.0)  # full right: -y
    a = ctrl.poll({}, {}).action
    assert a is not None
    assert a[0] == pytest.approx(0.5)
    assert a[1] == pytest.approx(-1.0)


def test_apply_deadzone_is_continuous_and_odd() -> None:
    assert apply_deadzone(0.1, 0.1) == 0.0
    assert apply_deadzone(0.1000001, 0.1) == pytest.approx(0.0, abs=1e-5)
    assert apply_deadzone(1.0, 0.2) == 1.0
    assert apply_deadzone(-0.6, 0.2) == -apply_deadzone(0.6, 0.2)


def test_hat_and_per_axis_scale_from_a_custom_mapping() -> None:
    mapping = parse_mapping(
        {
            "axes": {"x": {"index": 0, "scale": 0.5}},
            "buttons": {"intervene": 0, "z+": {"hat": 0, "direction": "up"}},
        },
        "custom.yaml",
    )
    pad = FakeBackend(FakeJoystick(axes=2, buttons=2, hats=1))
    ctrl, _ = make(mapping, pad)
    pad.hold(0)
    pad.move(0, 1.0)
    pad.queue.append(JoyEvent("hat", 0, 0, (0, 1)))
    pad.queue.append(JoyEvent("hat", 0, 0, (0, 0)))  # d-pad tapped between ticks
    a = ctrl.poll({}, {}).action
    assert a is not None
    assert a[0] == pytest.approx(0.5) and a[2] == 1.0


def test_events_of_other_joysticks_are_ignored() -> None:
    ctrl, pad = make()
    pad.queue.append(JoyEvent("button_down", 7, INTERVENE))
    assert not ctrl.poll({}, {}).is_intervening


def test_axis_index_beyond_the_joystick_is_a_clear_start_error() -> None:
    pad = FakeBackend(FakeJoystick(axes=5))
    ctrl = GamepadController(default_mapping(), backend=pad, out=io.StringIO())
    with pytest.raises(TeleopError) as info:
        ctrl.start()
    message = str(info.value)
    assert "<built-in default mapping>" in message
    assert "gripper_open" in message and "axis index 5" in message and "5 axes" in message
    assert pad.closed


def test_unplugged_mid_run_raises_on_poll() -> None:
    ctrl, pad = make()
    pad.hold(INTERVENE)
    assert ctrl.poll({}, {}).is_intervening
    pad.queue.append(JoyEvent("removed", 0))
    with pytest.raises(TeleopError, match="disconnected"):
        ctrl.poll({}, {})
    with pytest.raises(TeleopError, match="disconnected"):
        ctrl.poll({}, {})


def test_hint_says_the_intervene_button_must_be_held() -> None:
    out = io.StringIO()
    make(out=out)
    text = out.getvalue()
    assert "HOLD RB" in text and "not a toggle" in text
    assert "gripper_close: LT" in text


def test_example_mapping_files_work_with_a_matching_joystick() -> None:
    root = Path(__file__).resolve().parents[2] / "configs" / "gamepad_mappings"
    from hilrl.teleop.mapping import load_mapping

    for path in sorted(root.glob("*.yaml")):
        mapping = load_mapping(path)
        if mapping.is_hid:
            continue
        ctrl, pad = make(mapping, FakeBackend(FakeJoystick(axes=6, buttons=13, hats=1)))
        intervene = mapping.buttons["intervene"][0].index
        pad.hold(intervene)
        assert ctrl.poll({}, {}).is_intervening, path.name


# ----------------------------------------------------------------------------- real pygame


@pytest.fixture
def pygame_dummy(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    monkeypatch.setenv("SDL_AUDIODRIVER", "dummy")
    pygame = pytest.importorskip("pygame")
    yield pygame
    pygame.display.quit()
    pygame.joystick.quit()


def test_real_pygame_queue_delivers_posted_button_taps(pygame_dummy: object) -> None:
    import pygame

    joystick = FakeJoystick(iid=0)
    ctrl = GamepadController(backend=PygameBackend(joystick=joystick), out=io.StringIO())
    ctrl.start()
    post = pygame.event.post
    post(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=0, instance_id=0, button=SUCCESS))
    post(pygame.event.Event(pygame.JOYBUTTONUP, joy=0, instance_id=0, button=SUCCESS))
    post(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=0, instance_id=0, button=INTERVENE))
    post(pygame.event.Event(pygame.JOYBUTTONUP, joy=0, instance_id=0, button=INTERVENE))
    cmd = ctrl.poll({}, {})
    assert cmd.events.success and cmd.is_intervening
    cmd = ctrl.poll({}, {})
    assert not cmd.events.success and not cmd.is_intervening
    # hold: the event says down and the joystick state agrees until the release
    joystick.buttons[INTERVENE] = 1
    post(pygame.event.Event(pygame.JOYBUTTONDOWN, joy=0, instance_id=0, button=INTERVENE))
    assert ctrl.poll({}, {}).is_intervening
    assert ctrl.poll({}, {}).is_intervening
    joystick.buttons[INTERVENE] = 0
    post(pygame.event.Event(pygame.JOYBUTTONUP, joy=0, instance_id=0, button=INTERVENE))
    assert not ctrl.poll({}, {}).is_intervening
    post(pygame.event.Event(pygame.JOYDEVICEREMOVED, instance_id=0))
    with pytest.raises(TeleopError, match="disconnected"):
        ctrl.poll({}, {})
    ctrl.stop()


def test_no_joystick_connected_is_a_clear_error(pygame_dummy: object) -> None:
    import pygame

    pygame.joystick.init()
    if pygame.joystick.get_count() > 0:
        pytest.skip("a real joystick is connected")
    ctrl = GamepadController(out=io.StringIO())
    with pytest.raises(TeleopError, match="no joystick found"):
        ctrl.start()
