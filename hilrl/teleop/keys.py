"""Keyboard bindings shared by the terminal and the pynput keyboards.

Key names are lower-case characters ('w', '1') or the named keys 'space', 'enter',
'esc', 'up', 'down', 'left', 'right' (pynput's names for them, and what the terminal
decoder produces for the same bytes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hilrl.teleop.controls import BUTTON_ACTIONS, INTERVENE

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


def key_index(bindings: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Key -> control, the lookup a keyboard needs per key event."""
    return {key: control for control, keys in bindings.items() for key in keys}


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


def describe_keys(
    bindings: Mapping[str, Sequence[str]], rotation: bool, gripper: bool
) -> list[str]:
    """Lines of 'keys: what they do' for a console hint."""

    def keys(*controls: str) -> str:
        return "/".join(k for c in controls for k in bindings.get(c, ()))

    lines = [
        f"  move x (forward/back): {keys('x+')} / {keys('x-')}",
        f"  move y (left/right):   {keys('y+')} / {keys('y-')}",
        f"  move z (up/down):      {keys('z+')} / {keys('z-')}",
    ]
    if rotation:
        lines.append(
            f"  rotate rx {keys('rx+')}/{keys('rx-')}, ry {keys('ry+')}/{keys('ry-')}, "
            f"rz {keys('rz+')}/{keys('rz-')}"
        )
    if gripper:
        lines.append(f"  gripper close / open:  {keys('gripper_close')} / {keys('gripper_open')}")
    lines.append(
        f"  episode: success {keys('success')}, failure {keys('failure')}, "
        f"re-record {keys('rerecord')}, pause {keys('pause')}, quit {keys('quit')}"
    )
    return lines
