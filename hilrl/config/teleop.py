"""Teleoperation configuration: which human input device, and how it maps to actions.

:func:`hilrl.teleop.make_controller` turns a :class:`TeleopConfig` into an
:class:`~hilrl.core.InputController`. Static checks (names, ranges, that a mapping file
exists) run in ``validate()``; device checks (is a joystick connected, does the mapping
fit it, does the leader arm have the follower's joint count) run in the controller's
``start()``, before the robot moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hilrl.config.controls import INTERVENTION_MODES, make_bindings
from hilrl.config.loader import ConfigError
from hilrl.config.operator import SimOperatorConfig
from hilrl.config.robot import RobotConfig

TELEOP_DEVICES = ("keyboard", "gamepad", "hid", "leader", "sim", "none")
KEYBOARD_BACKENDS = ("auto", "terminal", "pynput")
LEADER_TRIGGERS = ("keyboard", "gamepad", "hid")


@dataclass
class LeaderConfig:
    """A leader arm moved by hand; the follower mirrors its joints while you intervene."""

    robot: RobotConfig | None = None
    """The leader arm's robot config; null: the program passes the leader robot object."""
    trigger: str = "keyboard"
    """What switches intervention: 'keyboard' (space), 'gamepad' or 'hid' (the mapping's 'intervene' button, e.g. a USB foot pedal)."""
    joint_offsets: tuple[float, ...] | None = None
    """Added to each leader joint position (follower order, gripper last) to calibrate zeros; null: none."""
    joint_signs: tuple[float, ...] | None = None
    """+1 / -1 per joint, for joints that turn the other way on the leader; null: all +1."""

    def validate(self) -> None:
        if self.trigger not in LEADER_TRIGGERS:
            raise ConfigError("trigger", self.trigger, f"choose one of {LEADER_TRIGGERS}")
        if self.joint_signs is not None and any(s not in (-1.0, 1.0) for s in self.joint_signs):
            raise ConfigError("joint_signs", self.joint_signs, "each sign must be 1 or -1")


@dataclass
class TeleopConfig:
    """The human operator's input device."""

    device: str = "keyboard"
    """'keyboard', 'gamepad' (pygame), 'hid' (hidapi, e.g. on macOS), 'leader' (leader arm), 'sim' (simulated operator) or 'none' (never intervenes)."""
    keyboard_backend: str = "auto"
    """'terminal' (raw keys from this terminal; works over SSH), 'pynput' (desktop session, true hold-to-move) or 'auto' (pynput when a display exists and pynput is installed)."""
    intervention_mode: str = "hold"
    """'hold': you intervene only while the intervene button is held; 'toggle': each press switches. The terminal keyboard always toggles (terminals report no key release)."""
    translation_scale: float = 1.0
    """Fraction of the env's end-effector step (env.action.ee_step_m) a full stick / key commands, in (0, 1]."""
    rotation_scale: float = 1.0
    """Fraction of the env's rotation step (env.action.ee_step_rad) a full stick / key commands, in (0, 1]."""
    deadzone: float = 0.1
    """Stick values below this magnitude read as zero (a mapping entry may override it per axis)."""
    mapping_file: str | None = None
    """Gamepad / HID mapping YAML (examples in configs/gamepad_mappings/); null: the built-in Xbox-style layout (gamepad only; hid needs a file)."""
    joystick_index: int = 0
    """Which connected joystick the gamepad device uses."""
    key_bindings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Keyboard overrides, control -> keys, e.g. {intervene: [tab], success: [enter]}."""
    show_hint: bool = True
    """Print the device's controls (and whether intervene is held or toggled) at start."""
    leader: LeaderConfig = field(default_factory=LeaderConfig)
    """Leader-arm settings (device 'leader')."""
    sim: SimOperatorConfig = field(default_factory=SimOperatorConfig)
    """Simulated-operator settings (device 'sim': skill, takeover thresholds, trust)."""

    def validate(self) -> None:
        if self.device not in TELEOP_DEVICES:
            raise ConfigError("device", self.device, f"choose one of {TELEOP_DEVICES}")
        if self.keyboard_backend not in KEYBOARD_BACKENDS:
            raise ConfigError(
                "keyboard_backend", self.keyboard_backend, f"choose one of {KEYBOARD_BACKENDS}"
            )
        if self.intervention_mode not in INTERVENTION_MODES:
            raise ConfigError(
                "intervention_mode", self.intervention_mode, f"choose one of {INTERVENTION_MODES}"
            )
        for name in ("translation_scale", "rotation_scale"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ConfigError(name, value, "must be in (0, 1]")
        if not 0.0 <= self.deadzone < 1.0:
            raise ConfigError("deadzone", self.deadzone, "must be in [0, 1)")
        if self.joystick_index < 0:
            raise ConfigError("joystick_index", self.joystick_index, "must be >= 0")
        if self.mapping_file is not None and not Path(self.mapping_file).is_file():
            raise ConfigError("mapping_file", self.mapping_file, "file not found")
        uses_hid = self.device == "hid" or (
            self.device == "leader" and self.leader.trigger == "hid"
        )
        if uses_hid and self.mapping_file is None:
            raise ConfigError(
                "mapping_file",
                None,
                "a HID device needs a mapping file with its byte offsets and a hid: section",
            )
        if self.key_bindings:
            try:
                make_bindings(self.key_bindings)
            except ValueError as exc:
                raise ConfigError("key_bindings", self.key_bindings, str(exc)) from None
