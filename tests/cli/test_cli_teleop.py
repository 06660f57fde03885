"""``hilrl teleop``: the session loop (events, pacing, output), the CLI, and real keys under tmux."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hilrl.cli.main import main
from hilrl.config.env import ActionConfig, EnvConfig
from hilrl.core import TeleopCommand, TeleopEvents
from hilrl.runtime.teleop_session import (
    FrameViewer,
    PoseReader,
    PoseReading,
    SessionOptions,
    TeleopSession,
    idle_action,
)
from hilrl.types import Observation

pytest.importorskip("hilrl.robots.sim.arm")

REPO = Path(__file__).resolve().parents[2]
POSE = re.compile(
    r"x=([+-]\d+\.\d+) y=([+-]\d+\.\d+) z=([+-]\d+\.\d+) "
    r"roll=([+-]\d+\.\d+) pitch=([+-]\d+\.\d+) yaw=([+-]\d+\.\d+)"
)
STATE_ONLY = "--env.use_cameras=false"


def poses(text: str) -> list[np.ndarray]:
    """Every printed pose (x, y, z, roll, pitch, yaw) in ``text``, in order."""
    return [np.array([float(g) for g in m.groups()]) for m in POSE.finditer(text)]


# --------------------------------------------------------------------------- scripted operator
class ScriptedController:
    """An input controller that plays back a list of commands, one per poll."""

    def __init__(
        self,
        script: list[TeleopCommand],
        then: TeleopCommand | None = None,
        on_poll: Callable[[int], None] | None = None,
    ) -> None:
        self.script = script
        self.then = then or TeleopCommand(is_intervening=False)
        self.on_poll = on_poll
        self.polls = 0
        self.resets = 0
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def reset(self) -> None:
        self.resets += 1

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        if self.on_poll is not None:
            self.on_poll(self.polls)
        cmd = self.script[self.polls] if self.polls < len(self.script) else self.then
        self.polls += 1
        return cmd


def move(x: float = 0.0, y: float = 0.0, z: float = 0.0, **events: bool) -> TeleopCommand:
    return TeleopCommand(
        is_intervening=True,
        action=np.array([x, y, z, 0.0], dtype=np.float32),
        events=TeleopEvents(**events),
    )


def event(**events: bool) -> TeleopCommand:
    return TeleopCommand(is_intervening=False, events=TeleopEvents(**events))


def robot_of(env: Any) -> Any:
    """The sim robot under the wrapper stack."""
    return env.unwrapped.robot


def sim_session(
    controller: Any,
    options: SessionOptions | None = None,
    env_cfg: EnvConfig | None = None,
    **kwargs: Any,
) -> tuple[TeleopSession, list[PoseReading]]:
    from hilrl.envs import make_env

    cfg = env_cfg or EnvConfig(use_cameras=False, mode="record")
    env = make_env(cfg, controller=controller)
    seen: list[PoseReading] = []
    session = TeleopSession(
        env,
        controller,
        PoseReader(robot_of(env), "sim_arm"),
        options or SessionOptions(fps=cfg.fps, realtime=False),
        out=kwargs.pop("out", io.StringIO()),
        on_sample=seen.append,
        **kwargs,
    )
    return session, seen


@pytest.fixture
def close_envs() -> Iterator[list[TeleopSession]]:
    sessions: list[TeleopSession] = []
    yield sessions
    for s in sessions:
        s.env.close()


# --------------------------------------------------------------------------- pose reader
def test_pose_reader_matches_mujoco_site(close_envs: list[TeleopSession]) -> None:
    from hilrl.kinematics import matrix_from_rpy

    session, _ = sim_session(ScriptedController([]))
    close_envs.append(session)
    session.env.reset(seed=3)
    robot = robot_of(session.env)
    robot.set_joint_positions(np.array([0.3, 0.4, 0.9, 1.2, -0.5, 0.03]))
    reading = session.reader.read()
    truth = robot.task_state()
    np.testing.assert_allclose(reading.position, truth["ee_pos"], atol=1e-6)
    np.testing.assert_allclose(matrix_from_rpy(reading.rpy), truth["ee_mat"], atol=1e-6)
    assert reading.gripper == pytest.approx(robot.read_joint_positions()[-1])
    assert reading.joint_names == robot.joint_names


# --------------------------------------------------------------------------- session events
def test_operator_moves_then_success_ends_the_counted_episode(
    close_envs: list[TeleopSession],
) -> None:
    script = [move(x=1.0)] * 5 + [move(success=True)]
    controller = ScriptedController(script)
    opts = SessionOptions(fps=10, episodes=1, realtime=False)
    session, seen = sim_session(controller, opts)
    close_envs.append(session)
    summary = session.run()
    assert summary.reason == "episodes"
    assert (summary.episodes, summary.successes, summary.failures) == (1, 1, 0)
    assert summary.ticks == 6
    assert controller.started == 1 and controller.stopped == 1
    assert len(seen) == summary.ticks + 1  # the reset pose, then one per tick
    assert seen[5].position[0] - seen[0].position[0] > 0.05  # five 2 cm steps along +x
    assert abs(seen[5].position[1] - seen[0].position[1]) < 0.01


def test_rerecord_is_not_counted_and_failure_is(close_envs: list[TeleopSession]) -> None:
    controller = ScriptedController([move(), move(rerecord=True), move(), move(failure=True)])
    session, _ = sim_session(controller, SessionOptions(fps=10, episodes=1, realtime=False))
    close_envs.append(session)
    summary = session.run()
    assert (summary.rerecorded, summary.episodes, summary.failures, summary.successes) == (
        1,
        1,
        1,
        0,
    )
    assert controller.resets == 2  # the first episode, then the re-recorded one's restart
    assert isinstance(session.out, io.StringIO)
    assert "re-record" in session.out.getvalue()


def test_pause_holds_the_arm_and_quit_ends(close_envs: list[TeleopSession]) -> None:
    script = [move(z=1.0), move(z=1.0, pause=True), move(z=1.0), move(z=1.0)]
    script += [event(pause=True), move(z=1.0), event(quit=True)]
    controller = ScriptedController(script)
    session, seen = sim_session(controller)
    close_envs.append(session)
    summary = session.run()
    assert summary.reason == "quit"
    # polls 2 and 3 (moves) and 4 (resume) happen while paused: no env step, no motion
    assert controller.polls == 7 and summary.ticks == 4
    z = [r.position[2] for r in seen]
    assert z[2] > z[1] > z[0]  # the two moves before the pause
    assert z[3] > z[2] and z[4] == pytest.approx(z[3], abs=2e-3)  # resumed move; quit tick idle
    assert controller.stopped == 1


def test_ctrl_c_ends_cleanly_and_errors_still_stop_the_controller(
    close_envs: list[TeleopSession],
) -> None:
    def interrupt(i: int) -> None:
        if i == 3:
            raise KeyboardInterrupt

    controller = ScriptedController([], on_poll=interrupt)
    session, _ = sim_session(controller)
    close_envs.append(session)
    summary = session.run()
    assert summary.reason == "interrupted" and summary.ticks == 3
    assert controller.stopped == 1

    def boom(i: int) -> None:
        raise RuntimeError("device lost")

    broken = ScriptedController([], on_poll=boom)
    session2, _ = sim_session(broken)
    close_envs.append(session2)
    with pytest.raises(RuntimeError, match="device lost"):
        session2.run()
    assert broken.stopped == 1


def test_duration_is_paced_in_real_time(close_envs: list[TeleopSession]) -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    controller = ScriptedController([])
    opts = SessionOptions(fps=20, duration_s=1.0)
    session, _ = sim_session(controller, opts, clock=lambda: now[0], sleep=sleep)
    close_envs.append(session)
    summary = session.run()
    assert summary.reason == "duration"
    assert summary.ticks == 20
    assert sum(sleeps) == pytest.approx(1.0)
    assert all(s == pytest.approx(0.05) for s in sleeps)


def test_idle_action_holds_an_absolute_joint_arm(close_envs: list[TeleopSession]) -> None:
    cfg = EnvConfig(
        use_cameras=False, mode="record", action=ActionConfig(control_mode="joint_absolute")
    )
    controller = ScriptedController([event()] * 8 + [event(quit=True)])
    session, seen = sim_session(controller, env_cfg=cfg)
    close_envs.append(session)
    session.env.reset()
    # the zero action would drive every joint to the middle of its range: not a hold
    q = robot_of(session.env).read_joint_positions()
    lower, upper = robot_of(session.env).joint_limits
    assert np.max(np.abs(q[:5] - (lower[:5] + upper[:5]) / 2)) > 0.3
    assert np.max(np.abs(idle_action(session.env)[:5])) > 0.1
    summary = session.run()
    assert summary.ticks == 9
    drift = np.abs(seen[-1].joints[:5] - seen[0].joints[:5])
    assert np.max(drift) < 0.02, drift


def test_output_refreshes_one_line_on_a_tty_and_prints_every_n_otherwise(
    close_envs: list[TeleopSession],
) -> None:
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = TTY()
    session, _ = sim_session(ScriptedController([move()] * 4 + [event(quit=True)]), out=tty)
    close_envs.append(session)
    session.run()
    text = tty.getvalue()
    assert text.count("\r") == 6 and text.count("\x1b[K") == 6  # reset pose + 5 ticks
    assert len(poses(text)) == 6

    pipe = io.StringIO()
    opts = SessionOptions(fps=10, print_every=3, realtime=False)
    session2, _ = sim_session(ScriptedController([move()] * 9 + [event(quit=True)]), opts, out=pipe)
    close_envs.append(session2)
    session2.run()
    lines = [line for line in pipe.getvalue().splitlines() if POSE.search(line)]
    assert len(lines) == 1 + 10 // 3  # the reset pose, then ticks 3, 6, 9
    assert "\r" not in pipe.getvalue()


def test_frame_viewer_needs_a_display_and_shows_cameras_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert FrameViewer.open() is None and "DISPLAY" in FrameViewer.why_not

    class FakeCv2:
        def __init__(self) -> None:
            self.shown: list[np.ndarray] = []
            self.destroyed = False

        def imshow(self, title: str, image: np.ndarray) -> None:
            self.shown.append(image.copy())

        def waitKey(self, ms: int) -> int:
            return -1

        def destroyAllWindows(self) -> None:
            self.destroyed = True

    cv2 = FakeCv2()
    viewer = FrameViewer("cv2", cv2)
    front = np.zeros((4, 6, 3), np.uint8)
    front[..., 0] = 200  # red in RGB
    wrist = np.full((2, 3, 3), 7, np.uint8)
    viewer.show(
        {
            "observation.state": np.zeros(3),
            "observation.images.wrist": wrist,
            "observation.images.front": front,
        }
    )
    (image,) = cv2.shown
    assert image.shape == (4, 9, 3)  # front then wrist (sorted keys), wrist padded to 4 rows
    assert image[0, 0].tolist() == [0, 0, 200]  # OpenCV wants BGR
    assert image[0, 6].tolist() == [7, 7, 7] and image[3, 6].tolist() == [0, 0, 0]
    viewer.close()
    viewer.show({"observation.images.front": front})
    assert cv2.destroyed and len(cv2.shown) == 1


# --------------------------------------------------------------------------- CLI
def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["teleop", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--duration", "--episodes", "--print-every", "--display", "--config"):
        assert option in out
    assert "--teleop.device" in out and "--env.fps" in out
    assert main(["--help"]) == 0
    assert "teleop" in capsys.readouterr().out


def test_device_none_prints_a_steady_pose_and_stops_after_duration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(
        ["teleop", "--teleop.device=none", STATE_ONLY, "--duration", "0.5", "--print-every", "1"]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    seen = poses(out)
    assert len(seen) >= 4
    assert np.max(np.abs(seen[-1][:3] - seen[0][:3])) < 2e-3  # nobody drives: it holds
    assert "stopped (duration)" in out


def test_unknown_device_and_bad_options_exit_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["teleop", "--teleop.device=joystick", STATE_ONLY, "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "teleop.device" in err and "joystick" in err
    assert main(["teleop", "--teleop.device=none", STATE_ONLY, "--duration", "-1"]) == 2
    assert "--duration" in capsys.readouterr().err
    assert main(["teleop", "--teleop.device=none", STATE_ONLY, "--display", "on"]) == 2
    assert "use_cameras" in capsys.readouterr().err
    assert main(["teleop", "--teleop.device=none", "--env.gym_id=Pendulum-v1"]) == 2
    assert "env.gym_id" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["teleop", "--display", "maybe"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_simulated_operator_drives_episodes_to_success(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["teleop", "--teleop.device=sim", STATE_ONLY, "--episodes", "2"]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err


def test_a_device_error_is_reported_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    # a keyboard cannot drive absolute joint targets: make_controller refuses it
    rc = main(
        [
            "teleop",
            "--teleop.device=keyboard",
            "--env.action.control_mode=joint_absolute",
            STATE_ONLY,
            "--duration",
            "1",
        ]
    )
    assert rc == 2
    assert "control_mode" in capsys.readouterr().err


# --------------------------------------------------------------------------- real keys under tmux
class Tmux:
    """One detached tmux session on a private server, driven like a person at a terminal."""

    def __init__(self, command: str) -> None:
        self.server = f"hilrl-test-{uuid.uuid4().hex[:8]}"
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "DISPLAY")}
        env["PYTHONUNBUFFERED"] = "1"
        subprocess.run(
            [
                *("tmux", "-L", self.server, "-f", "/dev/null", "new-session", "-d", "-s", "t"),
                *("-x", "200", "-y", "50", "-c", str(REPO), command),
            ],
            check=True,
            env=env,
        )

    def screen(self) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.server, "capture-pane", "-p", "-J", "-t", "t"],
            capture_output=True,
            text=True,
        )
        return done.stdout

    def keys(self, *keys: str, gap_s: float = 0.25) -> None:
        for key in keys:
            subprocess.run(["tmux", "-L", self.server, "send-keys", "-t", "t", key], check=True)
            time.sleep(gap_s)

    def wait_for(self, pattern: str, timeout_s: float = 30.0) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.screen()
            if re.search(pattern, text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"no {pattern!r} on the screen after {timeout_s} s:\n{self.screen()}")

    def wait_for_pose(
        self, done: Callable[[np.ndarray], bool], timeout_s: float = 30.0
    ) -> np.ndarray:
        """The newest printed pose once ``done`` holds for it (polls the screen, no fixed wait)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            shown = poses(self.screen())
            if shown and done(shown[-1]):
                return shown[-1]
            time.sleep(0.1)
        raise AssertionError(f"the pose never got there in {timeout_s} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.server, "kill-server"], capture_output=True)


@pytest.mark.skipif(
    shutil.which("tmux") is None,
    reason="tmux is not installed (apt-get install tmux): the keyboard test needs a real terminal",
)
def test_terminal_keys_move_the_sim_arm_under_tmux() -> None:
    cmd = (
        f"{sys.executable} -m hilrl.cli.main teleop --teleop.device=keyboard "
        f"--teleop.keyboard_backend=terminal --teleop.show_hint=false {STATE_ONLY} "
        "--env.episode_time_s=null --duration 60; echo EXIT=$?; "
        "stty -a | tr ' ' '\\n' | grep -x -- '-\\?icanon'; sleep 60"
    )
    tmux = Tmux(cmd)
    try:
        screen = tmux.wait_for(r"you are driving")
        screen = tmux.wait_for(POSE.pattern)
        before = poses(screen)[-1]
        tmux.keys("w", "w", "w", "Up", "r", "r", "r")  # forward x4 (w and the arrow), up x3

        def moved_forward_and_up(pose: np.ndarray) -> bool:
            # four 2 cm steps forward, three up (IK lands within mm; presses that a stall
            # merges into one tick still give at least half of it)
            return bool(pose[0] - before[0] > 0.04 and pose[2] - before[2] > 0.03)

        after = tmux.wait_for_pose(moved_forward_and_up)
        assert abs(after[1] - before[1]) < 0.01, (before, after)  # and not sideways
        tmux.keys("Escape")
        screen = tmux.wait_for(r"EXIT=\d+\s+-?icanon")
        assert "stopped (quit)" in screen
        assert "EXIT=0" in screen
        assert re.search(r"^icanon$", screen, re.M), screen  # cbreak mode was undone
        assert "Traceback" not in screen
    finally:
        tmux.close()
