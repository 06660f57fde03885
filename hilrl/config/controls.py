"""Names of the operator controls every device maps its inputs onto, and the key bindings.

A device turns its physical inputs (keys, buttons, sticks, report bytes) into these
named controls; :class:`~hilrl.teleop.base.LatchedController` turns the controls into a
:class:`~hilrl.core.TeleopCommand`. Mapping files and key bindings use the same names.
They live in the config layer because ``TeleopConfig.validate`` checks ``key_bindings``
against them; :mod:`hilrl.teleop.controls` and :mod:`hilrl.teleop.keys` re-export them.

Key names are lower-case characters ('w', '1') or the named keys 'space', 'enter',
'esc', 'up', 'down', 'left', 'right' (pynput's names for them, and what the terminal
decoder produces for the same bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


NAMED_KEYS = ("space", "enter", "esc", "up", "down", "left", "right", "tab", "backspace")

DEFAULT_BINDINGS: dict[str, tuple[str, ...]] = {
    "x+": ("w", "up"),
    "x-": ("s", "down"),
    "y+": ("a", "left"),
    "y-": ("d", "right"),
    "z+": ("r",),
    "z-": ("f",),
    "rx+": ("u",),
    "rx-": ("o",),
    "ry+": ("i",),
    "ry-": ("k",),
    "rz+": ("j",),
    "rz-": ("l",),
    "gripper_close": ("c",),
    "gripper_open": ("v",),
    INTERVENE: ("space",),
    "success": ("y", "enter"),
    "failure": ("n",),
    "rerecord": ("b",),
    "pause": ("p",),
    "quit": ("esc",),
}
"""Control -> keys. Axes follow the robot base frame: x forward, y left, z up."""


def make_bindings(
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """The default bindings with ``overrides`` (control -> keys) replacing entries.

    Raises ValueError naming an unknown control, an unknown key, or a key bound twice.
    """
    bindings = dict(DEFAULT_BINDINGS)
    for control, keys in (overrides or {}).items():
        if control not in BUTTON_ACTIONS:
            raise ValueError(
                f"key_bindings.{control}: unknown control; controls are {BUTTON_ACTIONS}"
            )
        names = tuple(_normalise_key(control, k) for k in keys)
        bindings[control] = names
    owner: dict[str, str] = {}
    for control, keys in bindings.items():
        for key in keys:
            if key in owner:
                raise ValueError(
                    f"key_bindings: key {key!r} is bound to both {owner[key]!r} and {control!r}; "
                    "rebind one of them"
                )
            owner[key] = control
    return bindings


def _normalise_key(control: str, key: str) -> str:
    name = str(key)
    if len(name) == 1 and name.isprintable() and name != " ":
        return name.lower()
    lowered = name.lower()
    if name == " ":
        return "space"
    if lowered in NAMED_KEYS:
        return lowered
    raise ValueError(
        f"key_bindings.{control}: unknown key {key!r}; use one character or one of {NAMED_KEYS}"
    )
