"""The latch every device shares: taps between ticks, hold vs toggle, events exactly once."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hilrl.core import InputController, TeleopCommand
from hilrl.teleop.base import LatchedController
from hilrl.types import GRIPPER_CLOSE, GRIPPER_OPEN, GRIPPER_STAY, gripper_index


def poll(ctrl: LatchedController) -> TeleopCommand:
    return ctrl.poll({}, {})


def make(**kwargs: object) -> LatchedController:
    return LatchedController(show_hint=False, **kwargs)  # type: ignore[arg-type]


def test_is_an_input_controller() -> None:
    assert isinstance(make(), InputController)


def test_hold_mode_intervenes_from_press_to_release() -> None:
    ctrl = make()
    assert not poll(ctrl).is_intervening
    ctrl.press("intervene")
    for _ in range(3):
        cmd = poll(ctrl)
        assert cmd.is_intervening
        assert cmd.action is not None
    ctrl.release("intervene")
    cmd = poll(ctrl)
    assert not cmd.is_intervening
    assert cmd.action is None


def test_hold_mode_tap_between_ticks_intervenes_for_exactly_one_tick() -> None:
    ctrl = make()
    ctrl.press("intervene")
    ctrl.release("intervene")
    assert poll(ctrl).is_intervening
    assert not poll(ctrl).is_intervening


def test_toggle_mode_flips_on_each_press_and_ignores_key_repeat() -> None:
    ctrl = make(intervention_mode="toggle")
    ctrl.press("intervene")
    ctrl.press("intervene")  # auto-repeat while held: not a new press
    ctrl.release("intervene")
    assert poll(ctrl).is_intervening
    assert poll(ctrl).is_intervening  # stays on with nothing held
    ctrl.tap("intervene")
    assert not poll(ctrl).is_intervening


def test_gripper_tap_between_ticks_is_not_lost() -> None:
    ctrl = make(intervention_mode="toggle")
    ctrl.tap("intervene")
    ctrl.press("gripper_close")
    ctrl.release("gripper_close")
    action = poll(ctrl).action
    assert action is not None
    assert int(gripper_index(action[-1])) == GRIPPER_CLOSE
    action = poll(ctrl).action
    assert action is not None and int(gripper_index(action[-1])) == GRIPPER_STAY


def test_gripper_latest_press_wins_and_held_button_keeps_commanding() -> None:
    ctrl = make(intervention_mode="toggle")
    ctrl.tap("intervene")
    ctrl.press("gripper_close")
    ctrl.press("gripper_open")
    a = poll(ctrl).action
    assert a is not None and int(gripper_index(a[-1])) == GRIPPER_OPEN
    ctrl.release("gripper_open")
    a = poll(ctrl).action
    assert a is not None and int(gripper_index(a[-1])) == GRIPPER_CLOSE


def test_events_latch_until_polled_and_fire_exactly_once() -> None:
    ctrl = make()
    ctrl.press("success")
    ctrl.release("success")
    ctrl.tap("pause")
    first = poll(ctrl).events
    assert first.success and first.pause
    assert not (first.failure or first.rerecord or first.quit)
    second = poll(ctrl).events
    assert not (second.success or second.pause)


def test_held_event_button_fires_once_not_every_tick() -> None:
    ctrl = make()
    ctrl.press("failure")
    assert poll(ctrl).events.failure
    assert not poll(ctrl).events.failure
    ctrl.release("failure")
    ctrl.press("failure")
    assert poll(ctrl).events.failure


def test_reset_keeps_latched_events_but_drops_toggle_and_motion_taps() -> None:
    ctrl = make(intervention_mode="toggle")
    ctrl.tap("intervene")
    ctrl.tap("x+")
    ctrl.tap("quit")
    ctrl.reset()
    cmd = poll(ctrl)
    assert cmd.events.quit
    assert not cmd.is_intervening
    ctrl.tap("intervene")
    a = poll(ctrl).action
    assert a is not None and a[0] == 0.0


def test_action_layout_axes_and_scales() -> None:
    ctrl = make(rotation=True, translation_scale=0.5, rotation_scale=0.25)
    assert ctrl.action_dim == 7
    ctrl.press("intervene")
    ctrl.set_axis("x", 0.8)
    ctrl.press("y-")
    ctrl.tap("rz+")
    ctrl.set_axis("z", 0.6)
    ctrl.press("z+")  # stick + button: clipped to 1
    a = poll(ctrl).action
    assert a is not None
    assert a.dtype == np.float32 and a.shape == (7,)
    np.testing.assert_allclose(a, [0.4, -0.5, 0.5, 0.0, 0.0, 0.25, 0.0], atol=1e-6)


def test_without_gripper_action_has_motion_only() -> None:
    ctrl = make(gripper=False)
    ctrl.press("intervene")
    a = poll(ctrl).action
    assert a is not None and a.shape == (3,)


def test_unknown_control_and_axis_are_rejected() -> None:
    ctrl = make()
    with pytest.raises(ValueError, match="unknown control 'jump'"):
        ctrl.press("jump")
    with pytest.raises(ValueError, match="unknown axis"):
        ctrl.set_axis("w", 0.1)
    with pytest.raises(ValueError, match="intervention_mode"):
        make(intervention_mode="sticky")


def test_presses_from_another_thread_are_all_seen() -> None:
    ctrl = make()
    seen = 0

    def tapper() -> None:
        for _ in range(200):
            ctrl.tap("success")

    thread = threading.Thread(target=tapper)
    thread.start()
    while thread.is_alive():
        seen += int(poll(ctrl).events.success)
    seen += int(poll(ctrl).events.success)
    thread.join()
    assert 1 <= seen <= 200
    assert not poll(ctrl).events.success  # nothing left over, nothing repeated
