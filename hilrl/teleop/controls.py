"""Names of the operator controls every device maps its inputs onto.

Defined in :mod:`hilrl.config.controls` (the config validates key bindings against them)
and re-exported here for the devices.
"""

from __future__ import annotations

from hilrl.config.controls import (
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

__all__ = [
    "BUTTON_ACTIONS",
    "DIRECTION_BUTTONS",
    "EVENT_NAMES",
    "GRIPPER_CLOSE",
    "GRIPPER_OPEN",
    "INTERVENE",
    "INTERVENTION_MODES",
    "MOTION_AXES",
    "ROTATION_AXES",
    "TRANSLATION_AXES",
    "direction_of",
]
