"""The controller for runs without an operator: it never intervenes and sends no events."""

from __future__ import annotations

from collections.abc import Mapping

from hilrl.core import TeleopCommand
from hilrl.types import Observation


class NullController:
    """``teleop.device=none``: the policy always drives."""

    def start(self) -> None:
        """Nothing to open."""

    def stop(self) -> None:
        """Nothing to close."""

    def reset(self) -> None:
        """No state."""

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        return TeleopCommand(is_intervening=False, action=None)
