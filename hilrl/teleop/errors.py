"""The one error type of the teleop layer, so callers can catch device problems alone."""

from __future__ import annotations


class TeleopError(RuntimeError):
    """An input device is missing, misconfigured or lost.

    Raised from ``start()`` (before the robot moves) for setup problems: no joystick, a
    bad mapping file, a HID device that cannot be opened, a leader arm whose joints do not
    match the follower's. Raised from ``poll()`` when a device disappears mid-run, so the
    run stops loudly instead of continuing without its operator. The message says what is
    wrong and how to fix it.
    """
