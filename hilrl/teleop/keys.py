"""Keyboard bindings shared by the terminal and the pynput keyboards.

The key names, the default bindings and :func:`make_bindings` live in
:mod:`hilrl.config.controls` (the config validates ``teleop.key_bindings`` with them) and
are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hilrl.config.controls import DEFAULT_BINDINGS, NAMED_KEYS, make_bindings

__all__ = ["DEFAULT_BINDINGS", "NAMED_KEYS", "describe_keys", "key_index", "make_bindings"]


def key_index(bindings: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Key -> control, the lookup a keyboard needs per key event."""
    return {key: control for control, keys in bindings.items() for key in keys}


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
