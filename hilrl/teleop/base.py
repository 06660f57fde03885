"""The shared core of every human input device: a thread-safe latch of controls.

Devices report what happens physically (``press`` / ``release`` of a named control,
``set_axis`` for sticks) from whatever thread sees it; the env thread calls ``poll`` once
per control tick. Between two polls the latch remembers every press, so:

* a button tapped and released between two ticks still counts for the next tick (a
  gripper-close tap closes the gripper, a direction tap moves one step, a hold-mode
  intervene tap intervenes for one tick);
* events (success, failure, rerecord, pause, quit) fire once per press and stay latched
  until a poll consumes them: exactly once, never lost, never repeated while held;
* in 'hold' mode the operator intervenes while the intervene button is held (or was
  pressed since the last tick); in 'toggle' mode each press flips the state.

Key auto-repeat (a press while already held) is ignored by ``press``, so it does not flip
a toggle; devices that only see presses (a terminal) call ``tap`` instead.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Mapping
from typing import TextIO

import numpy as np

from hilrl.core import TeleopCommand, TeleopEvents
from hilrl.teleop.controls import (
    BUTTON_ACTIONS,
    DIRECTION_BUTTONS,
    EVENT_NAMES,
    GRIPPER_CLOSE,
    GRIPPER_OPEN,
    INTERVENE,
    INTERVENTION_MODES,
    MOTION_AXES,
    ROTATION_AXES,
    TRANSLATION_AXES,
    direction_of,
)
from hilrl.types import Observation

_BUTTONS = frozenset(BUTTON_ACTIONS)
_AXES = frozenset(MOTION_AXES)


class LatchedController:
    """Base :class:`~hilrl.core.InputController` for end-effector teleoperation devices.

    The action is ``[x, y, z, (rx, ry, rz,) (gripper)]`` in [-1, 1]: each axis is the
    stick value plus the active direction buttons, clipped, times ``translation_scale``
    (or ``rotation_scale``); the gripper is -1 (close), 0 (stay) or +1 (open), the most
    recently pressed of the active gripper buttons winning.
    """

    def __init__(
        self,
        *,
        rotation: bool = False,
        gripper: bool = True,
        intervention_mode: str = "hold",
        translation_scale: float = 1.0,
        rotation_scale: float = 1.0,
        show_hint: bool = True,
        out: TextIO | None = None,
    ) -> None:
        if intervention_mode not in INTERVENTION_MODES:
            raise ValueError(
                f"intervention_mode must be one of {INTERVENTION_MODES}, got {intervention_mode!r}"
            )
        for name, scale in (
            ("translation_scale", translation_scale),
            ("rotation_scale", rotation_scale),
        ):
            if not 0.0 < scale <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {scale}")
        self.rotation = rotation
        self.gripper = gripper
        self.intervention_mode = intervention_mode
        self.translation_scale = float(translation_scale)
        self.rotation_scale = float(rotation_scale)
        self.show_hint = show_hint
        self.out = out
        self.axes: tuple[str, ...] = MOTION_AXES if rotation else TRANSLATION_AXES
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._presses: Counter[str] = Counter()
        self._press_order: dict[str, int] = {}
        self._order = 0
        self._axis_values: dict[str, float] = {}
        self._toggled = False

    # ------------------------------------------------------------------ device side
    def press(self, control: str) -> None:
        """A button went down. A press while already held (key repeat) is ignored."""
        _check_button(control)
        with self._lock:
            if control in self._held:
                return
            self._held.add(control)
            self._latch_press(control)

    def release(self, control: str) -> None:
        """A button went up."""
        _check_button(control)
        with self._lock:
            self._held.discard(control)

    def tap(self, control: str) -> None:
        """A press that is already over (terminals report no key-up): one latched press."""
        _check_button(control)
        with self._lock:
            self._latch_press(control)

    def set_held(self, control: str, held: bool) -> None:
        """Press or release ``control`` to match a polled button state."""
        if held:
            self.press(control)
        else:
            self.release(control)

    def set_axis(self, axis: str, value: float) -> None:
        """An analog stick's current value for ``axis``, in [-1, 1]."""
        if axis not in _AXES:
            raise ValueError(f"unknown axis {axis!r}; axes are {MOTION_AXES}")
        with self._lock:
            self._axis_values[axis] = float(np.clip(value, -1.0, 1.0))

    def release_all(self) -> None:
        """Forget held buttons and stick values (device lost); latched presses stay."""
        with self._lock:
            self._held.clear()
            self._axis_values.clear()
            self._toggled = False

    def _latch_press(self, control: str) -> None:
        self._presses[control] += 1
        self._order += 1
        self._press_order[control] = self._order
        if control == INTERVENE and self.intervention_mode == "toggle":
            self._toggled = not self._toggled

    # ------------------------------------------------------------------ controller side
    def start(self) -> None:
        """Open the device (subclasses) and print the console hint."""
        self.announce()

    def stop(self) -> None:
        """Close the device (subclasses). Safe to call twice."""

    def reset(self) -> None:
        """Episode start: the policy drives again (toggle off); stale motion taps dropped.

        Latched episode events are kept: a key pressed during the reset still counts.
        """
        with self._lock:
            self._toggled = False
            for control in [c for c in self._presses if c not in EVENT_NAMES]:
                del self._presses[control]

    def pump(self) -> None:
        """Read pending device input on the polling thread (subclasses that need it)."""

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        """The operator's command for this tick; consumes every latched press."""
        self.pump()
        with self._lock:
            command = self._command()
            self._presses.clear()
        return command

    def hint(self) -> str:
        """Console text that explains the controls (subclasses describe their inputs)."""
        return ""

    def announce(self) -> None:
        """Print :meth:`hint` once, so the operator knows the keys and the mode."""
        text = self.hint()
        if self.show_hint and text:
            print(text, file=self.out if self.out is not None else sys.stderr, flush=True)

    @property
    def action_dim(self) -> int:
        return len(self.axes) + int(self.gripper)

    # ------------------------------------------------------------------ internals
    def _active(self, control: str) -> bool:
        return control in self._held or self._presses[control] > 0

    def _command(self) -> TeleopCommand:
        events = TeleopEvents(**{name: self._presses[name] > 0 for name in EVENT_NAMES})
        if self.intervention_mode == "toggle":
            intervening = self._toggled
        else:
            intervening = self._active(INTERVENE)
        if not intervening:
            return TeleopCommand(is_intervening=False, action=None, events=events)
        return TeleopCommand(is_intervening=True, action=self._action(), events=events)

    def _action(self) -> np.ndarray:
        motion = {axis: self._axis_values.get(axis, 0.0) for axis in self.axes}
        for button in DIRECTION_BUTTONS:
            axis, sign = direction_of(button)
            if axis in motion and self._active(button):
                motion[axis] += sign
        values = [
            float(np.clip(motion[a], -1.0, 1.0))
            * (self.rotation_scale if a in ROTATION_AXES else self.translation_scale)
            for a in self.axes
        ]
        if self.gripper:
            values.append(self._gripper_command())
        return np.asarray(values, dtype=np.float32)

    def _gripper_command(self) -> float:
        candidates = [
            (self._press_order.get(c, 0), value)
            for c, value in ((GRIPPER_CLOSE, -1.0), (GRIPPER_OPEN, 1.0))
            if self._active(c)
        ]
        return max(candidates)[1] if candidates else 0.0


def _check_button(control: str) -> None:
    if control not in _BUTTONS:
        raise ValueError(f"unknown control {control!r}; controls are {BUTTON_ACTIONS}")
