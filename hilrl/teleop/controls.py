"""Names of the operator controls every device maps its inputs onto.

A device turns its physical inputs (keys, buttons, sticks, report bytes) into these
named controls; :class:`~hilrl.teleop.base.LatchedController` turns the controls into a
:class:`~hilrl.core.TeleopCommand`. Mapping files and key bindings use the same names.
"""

from __future__ import annotations

TRANSLATION_AXES = ("x", "y", "z")
"""End-effector translation axes, in action order."""
ROTATION_AXES = ("rx", "ry", "rz")
"""End-effector rotation axes (about the base x, y, z), in action order after translation."""
MOTION_AXES = TRANSLATION_AXES + ROTATION_AXES

DIRECTION_BUTTONS = tuple(f"{axis}{sign}" for axis in MOTION_AXES for sign in "+-")
"""Buttons that move one axis at full speed, e.g. 'x+' or 'rz-' (keys, d-pad)."""

EVENT_NAMES = ("success", "failure", "rerecord", "pause", "quit")
"""Episode events; the same names as the fields of :class:`~hilrl.core.TeleopEvents`."""

INTERVENE = "intervene"
GRIPPER_OPEN = "gripper_open"
GRIPPER_CLOSE = "gripper_close"

BUTTON_ACTIONS = (INTERVENE, GRIPPER_OPEN, GRIPPER_CLOSE, *EVENT_NAMES, *DIRECTION_BUTTONS)
"""Every name a button (key, gamepad button, HID bit) can be mapped to."""

INTERVENTION_MODES = ("hold", "toggle")
"""'hold': intervening only while the intervene button is held; 'toggle': each press flips."""


def direction_of(button: str) -> tuple[str, float]:
    """('x+' -> ('x', +1.0)); the axis and sign a direction button drives."""
    return button[:-1], 1.0 if button.endswith("+") else -1.0
