"""Human input devices for interventions: keyboard, gamepad, HID gamepad, leader arm.

Every device is an :class:`~hilrl.core.InputController`: ``poll()`` once per control tick
returns whether the operator intervenes, their end-effector action (gripper last) and
episode events, latched so that a tap between two ticks is never lost. Build one from a
:class:`~hilrl.config.teleop.TeleopConfig` with :func:`make_controller`.

Names are imported lazily, so importing the config (and ``--help``) stays fast and the
optional device libraries (pygame, pynput, hidapi) load only when a device starts.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TeleopError": "hilrl.teleop.errors",
    "LatchedController": "hilrl.teleop.base",
    "TerminalKeyboard": "hilrl.teleop.terminal",
    "PynputKeyboard": "hilrl.teleop.pynput_keyboard",
    "GamepadController": "hilrl.teleop.gamepad",
    "PygameBackend": "hilrl.teleop.gamepad",
    "HidGamepad": "hilrl.teleop.hid",
    "parse_report": "hilrl.teleop.hid",
    "LeaderArmController": "hilrl.teleop.leader",
    "NullController": "hilrl.teleop.null",
    "GamepadMapping": "hilrl.teleop.mapping",
    "load_mapping": "hilrl.teleop.mapping",
    "default_mapping": "hilrl.teleop.mapping",
    "make_controller": "hilrl.teleop.factory",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hilrl.teleop' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
