"""Gamepad teleoperation through pygame's joystick API and a YAML mapping file.

The intervene button is held by default: the operator drives only while holding it and
the policy takes over the moment it is released (``intervention_mode='toggle'`` flips on
each press instead); the console hint says so at start.

Taps between two control ticks are not lost: every poll first drains pygame's event queue
(button down / up, axis and hat motion, in order) through the latch, then reconciles with
the joystick's current state. The joystick and the event queue sit behind a two-method
backend (:class:`JoystickBackend`), so tests can drive the controller with a fake
joystick and pygame's real queue (pygame cannot create virtual joysticks).

pygame is imported only when a :class:`PygameBackend` starts. Poll from the main thread
(SDL pumps events there on macOS). Without a display the SDL dummy video driver is used,
and joystick events are allowed while no window has focus.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hilrl.teleop.base import LatchedController
from hilrl.teleop.controls import INTERVENE
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.mapping import ButtonSpec, GamepadMapping, default_mapping


class JoystickLike(Protocol):
    """The methods of ``pygame.joystick.JoystickType`` that the controller reads."""

    def get_name(self) -> str: ...

    def get_instance_id(self) -> int: ...

    def get_numaxes(self) -> int: ...

    def get_numbuttons(self) -> int: ...

    def get_numhats(self) -> int: ...

    def get_axis(self, index: int) -> float: ...

    def get_button(self, index: int) -> int | bool: ...

    def get_hat(self, index: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class JoyEvent:
    """One joystick event, backend-neutral."""

    kind: str
    """'button_down' | 'button_up' | 'axis' | 'hat' | 'removed'."""
    instance_id: int
    index: int = 0
    value: Any = None
    """Axis value (float) or hat value ((x, y)); None for buttons."""


class JoystickBackend(Protocol):
    """Where joysticks and their events come from (pygame, or a test double)."""

    def open(self, index: int) -> JoystickLike:
        """The joystick at ``index``; raise :class:`TeleopError` when there is none."""
        ...

    def events(self) -> list[JoyEvent]:
        """Joystick events since the last call, oldest first."""
        ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------- evaluation


def apply_deadzone(value: float, deadzone: float) -> float:
    """0 inside the deadzone; outside it, rescaled so the output still spans [-1, 1]."""
    magnitude = abs(value)
    if magnitude <= deadzone:
        return 0.0
    out = (min(magnitude, 1.0) - deadzone) / (1.0 - deadzone)
    return out if value > 0 else -out


def _button_active(
    spec: ButtonSpec,
    axes: Sequence[float],
    buttons: Sequence[bool],
    hats: Sequence[tuple[int, int]],
) -> bool:
    if spec.kind == "button":
        return bool(buttons[spec.index])
    if spec.kind == "axis":
        v = axes[spec.index]
        return v > spec.threshold if spec.threshold > 0 else v < spec.threshold
    if spec.kind == "hat":
        hx, hy = hats[spec.index]
        return {"up": hy > 0, "down": hy < 0, "left": hx < 0, "right": hx > 0}[spec.direction]
    raise ValueError(f"{spec.kind!r} is not a joystick input")


def joystick_controls(
    mapping: GamepadMapping,
    axes: Sequence[float],
    buttons: Sequence[bool],
    hats: Sequence[tuple[int, int]],
    deadzone: float,
) -> tuple[dict[str, float], dict[str, bool]]:
    """(motion axis values, control held states) from a joystick's raw state."""
    motion = {
        name: apply_deadzone(axes[s.index], deadzone if s.deadzone is None else s.deadzone)
        * s.sign
        * s.scale
        for name, s in mapping.axes.items()
        if s.index is not None
    }
    held = {
        control: any(_button_active(s, axes, buttons, hats) for s in specs)
        for control, specs in mapping.buttons.items()
    }
    return motion, held


# ----------------------------------------------------------------------------- controller


class GamepadController(LatchedController):
    """A pygame joystick driving the end effector through a :class:`GamepadMapping`."""

    def __init__(
        self,
        mapping: GamepadMapping | None = None,
        *,
        joystick_index: int = 0,
        deadzone: float = 0.1,
        backend: JoystickBackend | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= deadzone < 1.0:
            raise ValueError(f"deadzone must be in [0, 1), got {deadzone}")
        self.mapping = mapping if mapping is not None else default_mapping()
        self.joystick_index = joystick_index
        self.deadzone = deadzone
        self._backend = backend
        self._joystick: JoystickLike | None = None
        self._instance_id = -1
        self._axes: list[float] = []
        self._buttons: list[bool] = []
        self._hats: list[tuple[int, int]] = []
        self._lost = False

    def start(self) -> None:
        if self._joystick is not None:
            return
        backend = self._backend if self._backend is not None else PygameBackend()
        self._backend = backend
        try:
            joystick = backend.open(self.joystick_index)
            self.mapping.check_for_joystick(
                name=joystick.get_name(),
                num_axes=joystick.get_numaxes(),
                num_buttons=joystick.get_numbuttons(),
                num_hats=joystick.get_numhats(),
            )
        except BaseException:
            backend.close()
            raise
        self._joystick = joystick
        self._instance_id = joystick.get_instance_id()
        self._axes = [0.0] * joystick.get_numaxes()
        self._buttons = [False] * joystick.get_numbuttons()
        self._hats = [(0, 0)] * joystick.get_numhats()
        self._lost = False
        backend.events()  # drop stale events from before start
        self._read_state()
        self.announce()

    def stop(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._joystick = None
        self.release_all()

    def pump(self) -> None:
        if self._lost:
            raise self._lost_error()
        if self._joystick is None or self._backend is None:
            raise TeleopError("gamepad: poll() before start(); call start() first")
        for event in self._backend.events():
            if event.instance_id != self._instance_id:
                continue
            if event.kind == "removed":
                self._lost = True
                self.release_all()
                raise self._lost_error()
            if event.kind in ("button_down", "button_up") and event.index < len(self._buttons):
                self._buttons[event.index] = event.kind == "button_down"
            elif event.kind == "axis" and event.index < len(self._axes):
                self._axes[event.index] = float(event.value)
            elif event.kind == "hat" and event.index < len(self._hats):
                self._hats[event.index] = (int(event.value[0]), int(event.value[1]))
            else:
                continue
            self._apply()
        self._read_state()

    def _read_state(self) -> None:
        """Reconcile with the joystick's current state (catches anything the queue missed)."""
        joystick = self._joystick
        assert joystick is not None
        self._axes = [float(joystick.get_axis(i)) for i in range(len(self._axes))]
        self._buttons = [bool(joystick.get_button(i)) for i in range(len(self._buttons))]
        self._hats = [tuple(joystick.get_hat(i)) for i in range(len(self._hats))]  # type: ignore[misc]
        self._apply()

    def _apply(self) -> None:
        motion, held = joystick_controls(
            self.mapping, self._axes, self._buttons, self._hats, self.deadzone
        )
        for axis, value in motion.items():
            self.set_axis(axis, value)
        for control, is_held in held.items():
            self.set_held(control, is_held)

    def _lost_error(self) -> TeleopError:
        return TeleopError(
            f"gamepad {self.joystick_index} was disconnected during the run; reconnect it "
            "and restart (the operator can no longer intervene)"
        )

    def hint(self) -> str:
        name = self._joystick.get_name() if self._joystick is not None else "gamepad"
        return gamepad_hint(self, self.mapping, f"Gamepad '{name}' (mapping {self.mapping.source})")


def gamepad_hint(ctrl: LatchedController, mapping: GamepadMapping, title: str) -> str:
    """Console hint for a mapped device; says loudly that the intervene button must be held."""
    button = mapping.label(INTERVENE)
    if ctrl.intervention_mode == "hold":
        how = (
            f"HOLD {button} to drive the robot; the policy takes over again the moment you "
            "release it (it is a hold button, not a toggle)."
        )
    else:
        how = f"press {button} to take over, press it again to hand back to the policy."
    lines = [f"{title}:", f"  INTERVENE: {how}"]
    for axis in ctrl.axes:
        found = False
        if axis in mapping.axes:
            lines.append(f"  move {axis}: {mapping.label(axis)}")
            found = True
        for sign in "+-":
            if f"{axis}{sign}" in mapping.buttons:
                lines.append(f"  move {axis}{sign}: {mapping.label(axis + sign)}")
                found = True
        if not found:
            lines.append(f"  move {axis}: not mapped (add it to the mapping file)")
    for control in (
        "gripper_close",
        "gripper_open",
        "success",
        "failure",
        "rerecord",
        "pause",
        "quit",
    ):
        if control in mapping.buttons and (ctrl.gripper or not control.startswith("gripper")):
            lines.append(f"  {control}: {mapping.label(control)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- pygame


class PygameBackend:
    """Joysticks and joystick events from pygame (SDL).

    ``joystick`` replaces the device lookup (tests: a fake joystick fed by events posted
    to pygame's real queue).
    """

    def __init__(self, joystick: JoystickLike | None = None) -> None:
        self._given = joystick
        self._pg: Any = None
        self._types: tuple[int, ...] = ()

    def _init(self) -> Any:
        os.environ.setdefault("SDL_JOYSTICK_ALLOW_BACKGROUND_EVENTS", "1")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        try:
            # start-up: pygame (SDL) loads only for a gamepad, after the SDL settings above
            import pygame
        except ImportError as exc:
            raise TeleopError(
                "gamepad: pygame is not installed; 'pip install pygame' (or use "
                "teleop.device=hid for a raw HID gamepad)"
            ) from exc
        if not pygame.display.get_init():
            pygame.display.init()  # the event queue lives in SDL's video subsystem
        if not pygame.joystick.get_init():
            pygame.joystick.init()
        self._pg = pygame
        self._types = (
            pygame.JOYBUTTONDOWN,
            pygame.JOYBUTTONUP,
            pygame.JOYAXISMOTION,
            pygame.JOYHATMOTION,
            pygame.JOYDEVICEREMOVED,
        )
        return pygame

    def open(self, index: int) -> JoystickLike:
        pygame = self._init()
        if self._given is not None:
            return self._given
        count = pygame.joystick.get_count()
        if count == 0:
            raise TeleopError(
                "gamepad: no joystick found. Plug the gamepad in (and switch it on); on Linux "
                "check that /dev/input/js* or event* is readable by your user ('input' group); "
                "or use teleop.device=keyboard"
            )
        if not 0 <= index < count:
            names = [pygame.joystick.Joystick(i).get_name() for i in range(count)]
            raise TeleopError(
                f"gamepad: teleop.joystick_index = {index}, but only {count} joystick(s) are "
                f"connected: {names}"
            )
        joystick: JoystickLike = pygame.joystick.Joystick(index)
        return joystick

    def events(self) -> list[JoyEvent]:
        pygame = self._pg
        if pygame is None:
            return []
        out: list[JoyEvent] = []
        for ev in pygame.event.get(self._types):
            iid = int(getattr(ev, "instance_id", getattr(ev, "joy", -1)))
            if ev.type == pygame.JOYBUTTONDOWN:
                out.append(JoyEvent("button_down", iid, int(ev.button)))
            elif ev.type == pygame.JOYBUTTONUP:
                out.append(JoyEvent("button_up", iid, int(ev.button)))
            elif ev.type == pygame.JOYAXISMOTION:
                out.append(JoyEvent("axis", iid, int(ev.axis), float(ev.value)))
            elif ev.type == pygame.JOYHATMOTION:
                out.append(JoyEvent("hat", iid, int(ev.hat), tuple(ev.value)))
            elif ev.type == pygame.JOYDEVICEREMOVED:
                out.append(JoyEvent("removed", iid))
        return out

    def close(self) -> None:
        """Leave pygame initialised (others may use it); just stop reading."""
        self._pg = None


def list_joysticks() -> list[dict[str, Any]]:
    """Connected joysticks with their input counts, to help write a mapping file."""
    backend = PygameBackend()
    pygame = backend._init()
    out = []
    for i in range(pygame.joystick.get_count()):
        joy = pygame.joystick.Joystick(i)
        out.append(
            {
                "index": i,
                "name": joy.get_name(),
                "axes": joy.get_numaxes(),
                "buttons": joy.get_numbuttons(),
                "hats": joy.get_numhats(),
            }
        )
    return out
