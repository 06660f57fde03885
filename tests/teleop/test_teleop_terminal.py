"""The terminal keyboard driven through a pseudo-terminal: raw keys, impulses, toggle."""

from __future__ import annotations

import contextlib
import io
import os
import termios
import time
from collections.abc import Iterator

import pytest

from hilrl.teleop.errors import TeleopError
from hilrl.teleop.terminal import TerminalKeyboard, decode_keys
from hilrl.types import GRIPPER_CLOSE, GRIPPER_OPEN, gripper_index


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.out = io.StringIO()
        self.kb = TerminalKeyboard(fd=self.slave, out=self.out)

    def type(self, data: bytes) -> None:
        """Write keys and wait until the reader thread has decoded all of them."""
        target = self.kb.keys_read + len(decode_keys(data))
        os.write(self.master, data)
        deadline = time.monotonic() + 5.0
        while self.kb.keys_read < target:
            assert time.monotonic() < deadline, "reader thread did not see the keys"
            time.sleep(0.002)

    def close(self) -> None:
        self.kb.stop()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    p.kb.start()
    yield p
    p.close()


def test_decode_keys_letters_named_keys_and_escape_sequences() -> None:
    assert decode_keys(b"wA ") == ["w", "a", "space"]
    assert decode_keys(b"\x1b[A\x1bOB\x1b[C\x1b[D") == ["up", "down", "right", "left"]
    assert decode_keys(b"\x1b[1;5A") == ["up"]  # ctrl-arrow: still an arrow
    assert decode_keys(b"\x1b[15~c") == ["c"]  # function key skipped whole
    assert decode_keys(b"\x1b") == ["esc"]
    assert decode_keys(b"\r\n\x7f") == ["enter", "enter", "backspace"]


def test_start_sets_cbreak_and_stop_restores_the_terminal() -> None:
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        assert before[3] & termios.ICANON
        kb = TerminalKeyboard(fd=slave, out=io.StringIO())
        kb.start()
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON
        assert not during[3] & termios.ECHO
        kb.stop()
        assert termios.tcgetattr(slave) == before
        kb.stop()  # twice is fine
    finally:
        os.close(master)
        os.close(slave)


def test_hint_explains_toggle_and_keys(pty: Pty) -> None:
    text = pty.out.getvalue()
    assert "toggle" in text
    assert "space" in text
    assert "gripper close / open:  c / v" in text


def test_space_toggles_intervention(pty: Pty) -> None:
    assert not pty.kb.poll({}, {}).is_intervening
    pty.type(b" ")
    assert pty.kb.poll({}, {}).is_intervening
    assert pty.kb.poll({}, {}).is_intervening  # no key-up needed to stay on
    pty.type(b" ")
    assert not pty.kb.poll({}, {}).is_intervening


def test_gripper_tap_inside_one_tick_is_not_lost(pty: Pty) -> None:
    pty.type(b" ")
    pty.kb.poll({}, {})
    pty.type(b"c")  # press and "release" both before the next poll
    action = pty.kb.poll({}, {}).action
    assert action is not None and int(gripper_index(action[-1])) == GRIPPER_CLOSE
    pty.type(b"v")
    action = pty.kb.poll({}, {}).action
    assert action is not None and int(gripper_index(action[-1])) == GRIPPER_OPEN


def test_each_key_press_is_one_step_impulse(pty: Pty) -> None:
    pty.type(b" ")
    pty.kb.poll({}, {})
    pty.type(b"www")  # auto-repeat within one tick: one full step, not three
    a = pty.kb.poll({}, {}).action
    assert a is not None and list(a[:3]) == [1.0, 0.0, 0.0]
    a = pty.kb.poll({}, {}).action
    assert a is not None and list(a[:3]) == [0.0, 0.0, 0.0]
    pty.type(b"\x1b[D")  # left arrow: +y
    a = pty.kb.poll({}, {}).action
    assert a is not None and a[1] == 1.0
    pty.type(b"F")  # caps lock: still z-
    a = pty.kb.poll({}, {}).action
    assert a is not None and a[2] == -1.0


def test_success_tap_latches_until_consumed_once(pty: Pty) -> None:
    pty.type(b"y")
    pty.type(b"x")  # an unbound key in between changes nothing
    cmd = pty.kb.poll({}, {})
    assert cmd.events.success and not cmd.is_intervening
    assert not pty.kb.poll({}, {}).events.success


def test_non_terminal_fd_is_a_clear_error() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(TeleopError, match="not a terminal"):
            TerminalKeyboard(fd=r, out=io.StringIO()).start()
    finally:
        os.close(r)
        os.close(w)


def test_lost_terminal_raises_on_poll() -> None:
    p = Pty()
    p.kb.start()
    try:
        os.close(p.master)  # the terminal goes away: reads fail with EIO / EOF
        deadline = time.monotonic() + 5.0
        while p.kb._error is None:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        with pytest.raises(TeleopError, match="stopped reading keys"):
            p.kb.poll({}, {})
    finally:
        p.close()


def test_keys_move_the_tool_through_the_env(pty: Pty) -> None:
    """'w' moves the tool +x (forward) by one env step; 'r' moves it up."""
    import numpy as np
    from env_fakes import FakeRobot

    from hilrl.config.env import EnvConfig
    from hilrl.config.robot import RobotConfig
    from hilrl.envs import make_env

    robot = FakeRobot(cameras=())
    cfg = EnvConfig(robot=RobotConfig(camera_height=48, camera_width=64), use_cameras=False)
    env = make_env(cfg, robot=robot, controller=pty.kb)
    env.reset(seed=0)
    start = robot.ee_position()
    pty.type(b" w")
    _, _, _, _, info = env.step(np.zeros(4, dtype=np.float32))
    assert info["is_intervention"]
    moved = robot.ee_position() - start
    assert moved[0] == pytest.approx(cfg.action.ee_step_m[0], abs=2e-3)
    assert abs(moved[1]) < 2e-3 and abs(moved[2]) < 2e-3
    pty.type(b"r")
    before = robot.ee_position()
    env.step(np.zeros(4, dtype=np.float32))
    assert robot.ee_position()[2] - before[2] == pytest.approx(cfg.action.ee_step_m[2], abs=2e-3)
