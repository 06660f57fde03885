"""Keyboard teleoperation through pynput, where a display (X11, Wayland+XWayland, macOS) exists.

Unlike a terminal, pynput sees key releases, so movement is true hold-to-move and the
intervene key can be held ('hold' mode) or toggled. pynput is optional: it is imported
only when this keyboard starts (``pip install pynput``). Listener callbacks run on
pynput's own thread; the latch of :class:`~hilrl.teleop.base.LatchedController` hands
them to the control loop, so a key tapped between two ticks still counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from hilrl.teleop.base import LatchedController
from hilrl.teleop.controls import INTERVENE
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.keys import describe_keys, key_index, make_bindings


class KeyListener(Protocol):
    """The part of ``pynput.keyboard.Listener`` used here."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


ListenerFactory = Callable[[Callable[[Any], None], Callable[[Any], None]], KeyListener]
"""(on_press, on_release) -> a started-on-demand listener; tests pass a fake."""


def pynput_key_name(key: Any) -> str | None:
    """Our key name for a pynput ``Key`` / ``KeyCode`` (None for keys we do not name)."""
    char = getattr(key, "char", None)
    if isinstance(char, str) and char:
        return "space" if char == " " else char.lower()
    name = getattr(key, "name", None)
    return name if isinstance(name, str) else None


def _pynput_listener(
    on_press: Callable[[Any], None], on_release: Callable[[Any], None]
) -> KeyListener:
    try:
        from pynput import keyboard  # optional: pynput (the 'teleop' extra); needs a display
    except Exception as exc:  # ImportError, or a backend error without a display
        raise TeleopError(
            f"keyboard (pynput) is not available: {exc}. Install it with 'pip install pynput' "
            "(it needs a display), or use teleop.keyboard_backend=terminal"
        ) from exc
    listener: KeyListener = keyboard.Listener(on_press=on_press, on_release=on_release)
    return listener


class PynputKeyboard(LatchedController):
    """Hold-to-move keyboard teleoperation from a desktop session."""

    def __init__(
        self,
        *,
        key_bindings: Mapping[str, Sequence[str]] | None = None,
        listener_factory: ListenerFactory | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bindings = make_bindings(key_bindings)
        self._keys = key_index(self.bindings)
        self._factory = listener_factory or _pynput_listener
        self._listener: KeyListener | None = None
        self._down: set[str] = set()

    def start(self) -> None:
        if self._listener is not None:
            return
        listener = self._factory(self.on_press, self.on_release)
        listener.start()
        self._listener = listener
        self.announce()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
        self._down.clear()
        self.release_all()

    def on_press(self, key: Any) -> None:
        """pynput callback (listener thread)."""
        self._update(pynput_key_name(key), True)

    def on_release(self, key: Any) -> None:
        """pynput callback (listener thread)."""
        self._update(pynput_key_name(key), False)

    def _update(self, name: str | None, down: bool) -> None:
        if name is None:
            return
        control = self._keys.get(name)
        if control is None:
            return
        if down:
            self._down.add(name)
        else:
            self._down.discard(name)
        # A control bound to two keys stays held while either is down.
        self.set_held(control, any(k in self._down for k in self.bindings[control]))

    def hint(self) -> str:
        keys = "/".join(self.bindings[INTERVENE])
        if self.intervention_mode == "hold":
            how = f"HOLD {keys} to take over; the policy drives again as soon as you let go."
        else:
            how = f"press {keys} to take over, press it again to hand back to the policy."
        lines = [
            "Keyboard teleop (pynput): keys are read from the whole desktop session.",
            f"  INTERVENE: {how}",
            "  Hold a movement key to keep moving.",
            *describe_keys(self.bindings, self.rotation, self.gripper),
        ]
        return "\n".join(lines)
