"""Keyboard teleoperation from a plain terminal (no display, e.g. over SSH).

A background thread puts the TTY in cbreak mode (keys arrive one by one, unechoed;
Ctrl-C still interrupts) and reads it without blocking the control loop. A terminal
reports key presses but never key releases, so:

* movement: every key press is one step impulse along its axis for the next tick; the
  terminal's key auto-repeat turns a held key into continuous motion;
* intervention is a toggle (space by default): press once to take over, again to give
  control back to the policy.

The terminal settings are restored by ``stop()``, when ``start()`` fails, and at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Mapping, Sequence
from typing import Any

from hilrl.teleop.base import LatchedController
from hilrl.teleop.controls import INTERVENE
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.keys import describe_keys, key_index, make_bindings

_ARROWS = {"A": "up", "B": "down", "C": "right", "D": "left"}
_SPECIAL = {0x20: "space", 0x0A: "enter", 0x0D: "enter", 0x09: "tab", 0x7F: "backspace"}


def decode_keys(data: bytes) -> list[str]:
    """Key names in a chunk of terminal input (see :mod:`hilrl.teleop.keys`).

    Arrow keys arrive as escape sequences (``ESC [ A`` or ``ESC O A``); other escape
    sequences (function keys, modified arrows) are skipped whole; a lone ESC is 'esc'.
    Letters are lower-cased so Caps Lock does not change the bindings.
    """
    keys: list[str] = []
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            nxt = data[i + 1 : i + 2]
            if nxt == b"O" and i + 2 < n:
                arrow = _ARROWS.get(chr(data[i + 2]))
                if arrow is not None:
                    keys.append(arrow)
                i += 3
                continue
            if nxt == b"[":
                j = i + 2
                while j < n and 0x20 <= data[j] <= 0x3F:  # parameter / intermediate bytes
                    j += 1
                if j < n:
                    final = chr(data[j])
                    if final in _ARROWS:
                        keys.append(_ARROWS[final])
                    i = j + 1
                    continue
            keys.append("esc")
            i += 1
            continue
        if b in _SPECIAL:
            keys.append(_SPECIAL[b])
        elif 0x21 <= b < 0x7F:
            keys.append(chr(b).lower())
        i += 1
    return keys


class TerminalKeyboard(LatchedController):
    """Raw-key teleoperation on a TTY: press-impulse movement, toggled intervention.

    ``fd`` is the terminal to read (default: stdin when it is a TTY, else ``/dev/tty``);
    tests pass the slave end of a pseudo-terminal.
    """

    def __init__(
        self,
        *,
        fd: int | None = None,
        key_bindings: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["intervention_mode"] = "toggle"  # no key-up events: holding cannot be seen
        super().__init__(**kwargs)
        self.bindings = make_bindings(key_bindings)
        self._keys = key_index(self.bindings)
        self._requested_fd = fd
        self._fd: int | None = None
        self._own_fd = False
        self._saved: list[Any] | None = None
        self._thread: threading.Thread | None = None
        self._wake_r: int | None = None
        self._wake_w: int | None = None
        self._error: BaseException | None = None
        self.keys_read = 0
        """Keys decoded so far (tests wait on it; it only grows)."""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        fd, own = self._open_tty()
        self._fd, self._own_fd = fd, own
        try:
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd, termios.TCSANOW)
            atexit.register(self._restore)
            self._wake_r, self._wake_w = os.pipe()
            self._error = None
            self._thread = threading.Thread(
                target=self._run, name="hilrl-terminal-keys", daemon=True
            )
            self._thread.start()
        except BaseException:
            self.stop()
            raise
        self.announce()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if self._wake_w is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if thread is not None:
            thread.join(timeout=2.0)
        for fd in (self._wake_r, self._wake_w):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = None
        self._restore()
        atexit.unregister(self._restore)
        if self._own_fd and self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._own_fd = None, False

    def pump(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise TeleopError(
                f"the terminal keyboard stopped reading keys ({error!r}); the terminal was "
                "closed or lost. Restart in an interactive terminal, or set teleop.device"
            ) from error

    def hint(self) -> str:
        lines = [
            "Keyboard teleop (terminal): keys are read from this terminal; keep it focused.",
            f"  INTERVENE: press {'/'.join(self.bindings[INTERVENE])} to take over, press it "
            "again to hand back to the policy (toggle; a terminal cannot see a key held).",
            "  Each key press moves one step; hold a key (auto-repeat) to keep moving.",
            *describe_keys(self.bindings, self.rotation, self.gripper),
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ internals
    def _open_tty(self) -> tuple[int, bool]:
        if self._requested_fd is not None:
            if not os.isatty(self._requested_fd):
                raise TeleopError(
                    f"terminal keyboard: fd {self._requested_fd} is not a terminal; pass a TTY"
                )
            return self._requested_fd, False
        try:
            stdin_fd = sys.stdin.fileno()
            if os.isatty(stdin_fd):
                return stdin_fd, False
        except (AttributeError, ValueError, OSError):
            pass
        try:
            return os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY), True
        except OSError as exc:
            raise TeleopError(
                "terminal keyboard: no interactive terminal (stdin is not a TTY and /dev/tty "
                f"cannot be opened: {exc.strerror}). Run from a terminal, or choose another "
                "device: teleop.device=gamepad | hid | none"
            ) from exc

    def _restore(self) -> None:
        saved, self._saved = self._saved, None
        if saved is not None and self._fd is not None:
            with contextlib.suppress(termios.error, OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, saved)

    def _run(self) -> None:
        fd, wake = self._fd, self._wake_r
        assert fd is not None and wake is not None
        try:
            while True:
                ready, _, _ = select.select([fd, wake], [], [], 0.5)
                if wake in ready:
                    return
                if fd not in ready:
                    continue
                data = os.read(fd, 1024)
                if not data:
                    raise EOFError("end of terminal input")
                for key in decode_keys(data):
                    self._on_key(key)
        except (OSError, EOFError, ValueError) as exc:
            if self._thread is not None:  # not a shutdown in progress
                self._error = exc

    def _on_key(self, key: str) -> None:
        control = self._keys.get(key)
        if control is not None:
            self.tap(control)
        self.keys_read += 1
