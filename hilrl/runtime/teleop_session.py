"""The teleoperation loop behind ``hilrl teleop`` and ``hilrl find-limits``.

An operator drives a wrapped env (built by :func:`hilrl.envs.make_env` with the
controller as its intervention hook) in real time at the env's rate. When the operator
is not intervening, the env gets an *idle* action that holds the arm where it is (zero
end-effector / joint steps; for absolute joint control, the measured joints). With
``engage`` a toggle-mode device (the terminal keyboard) starts each episode already
intervening, so the keys drive at once; hold-mode devices drive while the intervene
button is held, exactly as when recording.

Every tick the end-effector pose is read from the robot (forward kinematics of the
measured joints), handed to an optional observer (``find-limits`` tracks it) and shown
on one refreshing console line (on a TTY) or every ``print_every`` ticks (a pipe or a
log file). Episode events from the operator are handled: success / failure end the
episode and count it, re-record restarts it without counting, pause holds the arm until
pause is pressed again, quit ends the session. The controller is started before the
first step and always stopped (restoring the terminal); Ctrl-C ends the session cleanly.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, TextIO

import gymnasium as gym
import numpy as np

from hilrl import pacing
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.core import InputController, Robot
from hilrl.envs import make_env
from hilrl.envs.arm import ArmModel, arm_model
from hilrl.envs.safety import SafetyWrapper
from hilrl.envs.wrappers import JointAction
from hilrl.kinematics import get_chain_spec, rpy_from_matrix
from hilrl.robots import make_robot
from hilrl.teleop.base import LatchedController
from hilrl.teleop.controls import INTERVENE
from hilrl.teleop.factory import make_controller
from hilrl.types import IMAGE_PREFIX, Observation

Env = gym.Env[Any, Any]

STOP_REASONS = ("duration", "episodes", "quit", "interrupted")


@dataclass(frozen=True)
class PoseReading:
    """The robot's measured state at one tick, in the robot base frame."""

    joints: np.ndarray
    """Every robot joint position (robot order, gripper last when present)."""
    position: np.ndarray
    """End-effector (tool) position x, y, z in metres."""
    rpy: np.ndarray
    """Tool orientation as fixed-axis roll, pitch, yaw in radians."""
    gripper: float | None
    """The gripper joint's position (its own unit), or None for an arm without one."""
    joint_names: tuple[str, ...]
    """Names of ``joints``."""
    joint_lower: np.ndarray
    """The robot's lower joint limits (shared, read-only)."""
    joint_upper: np.ndarray
    """The robot's upper joint limits (shared, read-only)."""


class PoseReader:
    """Reads the joints of ``robot`` and computes the tool pose of its kinematic chain."""

    def __init__(self, robot: Robot, chain_name: str) -> None:
        self.robot = robot
        self.arm: ArmModel = arm_model(robot, get_chain_spec(chain_name))
        self.joint_names = tuple(robot.joint_names)
        lower, upper = robot.joint_limits
        self.joint_lower = np.array(lower, dtype=np.float64)
        self.joint_upper = np.array(upper, dtype=np.float64)
        self.joint_lower.setflags(write=False)
        self.joint_upper.setflags(write=False)

    def read(self) -> PoseReading:
        q = np.asarray(self.robot.read_joint_positions(), dtype=np.float64).copy()
        pose = self.arm.tool_pose(q[self.arm.arm_index])
        g = self.arm.gripper_index
        return PoseReading(
            joints=q,
            position=np.array(pose[:3, 3]),
            rpy=rpy_from_matrix(pose[:3, :3]),
            gripper=None if g is None else float(q[g]),
            joint_names=self.joint_names,
            joint_lower=self.joint_lower,
            joint_upper=self.joint_upper,
        )


def format_pose(r: PoseReading) -> str:
    """``x=+0.1500 y=... z=... roll=... pitch=... yaw=... grip=...`` (parsed by the tests)."""
    x, y, z = (float(v) for v in r.position)
    roll, pitch, yaw = (float(v) for v in r.rpy)
    text = f"x={x:+.4f} y={y:+.4f} z={z:+.4f} roll={roll:+.3f} pitch={pitch:+.3f} yaw={yaw:+.3f}"
    if r.gripper is not None:
        text += f" grip={r.gripper:.4f}"
    return text


@dataclass
class SessionOptions:
    """How long the session runs and how it shows itself."""

    fps: float
    """Control rate (Hz); the loop sleeps so each tick lasts 1 / fps seconds."""
    duration_s: float | None = None
    """Stop after this many seconds; None: run until quit, Ctrl-C or ``episodes``."""
    episodes: int | None = None
    """Stop after this many finished episodes (re-recorded ones do not count)."""
    print_every: int = 10
    """When the output is not a terminal: print the pose every this many ticks."""
    engage: bool = True
    """Start each episode intervening with a toggle-mode device, so its keys drive at once."""
    realtime: bool = True
    """Pace the loop at ``fps`` (off: as fast as the env steps; for tests)."""

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ValueError(f"duration must be positive, got {self.duration_s}")
        if self.episodes is not None and self.episodes <= 0:
            raise ValueError(f"episodes must be positive, got {self.episodes}")
        if self.print_every <= 0:
            raise ValueError(f"print_every must be positive, got {self.print_every}")


@dataclass
class SessionSummary:
    """What happened in a session."""

    reason: str
    """Why it stopped: one of ``STOP_REASONS``."""
    ticks: int = 0
    episodes: int = 0
    """Finished episodes (success, failure, or time limit); re-recorded ones excluded."""
    successes: int = 0
    failures: int = 0
    rerecorded: int = 0
    elapsed_s: float = 0.0
    last: PoseReading | None = None


class FrameViewer:
    """Shows the camera images of each observation side by side in a desktop window.

    Uses OpenCV when installed, else pygame; both are optional and imported only here.
    :meth:`open` returns None (with the reason in ``why_not``) when neither works.
    """

    why_not = ""
    """Why the last :meth:`open` returned None."""

    def __init__(self, backend: str, module: Any) -> None:
        self.backend = backend
        self._mod = module
        self._screen: Any = None
        self.closed = False

    @classmethod
    def open(cls) -> FrameViewer | None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            cls.why_not = "no display (DISPLAY is not set)"
            return None
        try:
            return cls("cv2", importlib.import_module("cv2"))
        except ImportError:
            pass
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            pygame = importlib.import_module("pygame")
            pygame.display.init()
            return cls("pygame", pygame)
        except Exception as exc:  # ImportError, or pygame.error without a usable display
            cls.why_not = f"neither OpenCV nor pygame can open a window ({exc})"
            return None

    def show(self, observation: Observation) -> None:
        if self.closed:
            return
        frames = [observation[k] for k in sorted(observation) if k.startswith(IMAGE_PREFIX)]
        if not frames:
            return
        height = max(f.shape[0] for f in frames)
        padded = [np.pad(f, ((0, height - f.shape[0]), (0, 0), (0, 0))) for f in frames]
        image = np.ascontiguousarray(np.concatenate(padded, axis=1))
        if self.backend == "cv2":
            self._mod.imshow("hilrl teleop", image[:, :, ::-1])
            self._mod.waitKey(1)
            return
        pg = self._mod
        if self._screen is None or self._screen.get_size() != (image.shape[1], image.shape[0]):
            self._screen = pg.display.set_mode((image.shape[1], image.shape[0]))
            pg.display.set_caption("hilrl teleop")
        for event in pg.event.get():
            if event.type == pg.QUIT:
                self.close()
                return
        pg.surfarray.blit_array(self._screen, image.swapaxes(0, 1))
        pg.display.flip()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            if self.backend == "cv2":
                self._mod.destroyAllWindows()
            else:
                self._mod.display.quit()


def find_wrapper(env: Env, kind: type) -> Any | None:
    """The outermost wrapper of type ``kind`` in ``env``'s stack, or None."""
    node: Any = env
    while node is not None:
        if isinstance(node, kind):
            return node
        node = getattr(node, "env", None)
    return None


def idle_action(env: Env) -> np.ndarray:
    """The action that holds the arm still: zero steps, or the measured joints (absolute)."""
    space = env.action_space
    assert space.shape is not None
    action = np.zeros(space.shape, dtype=np.float32)
    joint = find_wrapper(env, JointAction)
    if joint is not None and joint.mode == "joint_absolute":
        q = np.asarray(joint.robot.read_joint_positions(), dtype=np.float64)
        span = np.maximum(joint.free_upper - joint.free_lower, 1e-12)
        a = 2.0 * (q[joint.free_index] - joint.free_lower) / span - 1.0
        action[: len(a)] = np.clip(a, -1.0, 1.0)
    return action


class TeleopSession:
    """One operator session: start the controller, step in real time, stop cleanly."""

    def __init__(
        self,
        env: Env,
        controller: InputController,
        reader: PoseReader,
        options: SessionOptions,
        *,
        out: TextIO | None = None,
        on_sample: Callable[[PoseReading], None] | None = None,
        viewer: FrameViewer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.env = env
        self.controller = controller
        self.reader = reader
        self.options = options
        self.out = out if out is not None else sys.stdout
        self.on_sample = on_sample
        self.viewer = viewer
        self.clock = clock
        self.sleep = sleep
        self.tty = _isatty(self.out)
        self.safety = find_wrapper(env, SafetyWrapper)
        self._line_open = False
        self._engaged_once = False

    # ------------------------------------------------------------------ public
    def run(self) -> SessionSummary:
        summary = SessionSummary(reason="interrupted")
        self.controller.start()
        try:
            self._loop(summary)
        except KeyboardInterrupt:
            summary.reason = "interrupted"
        finally:
            try:
                self.controller.stop()
            finally:
                if self.viewer is not None:
                    self.viewer.close()
                self._end_line()
        return summary

    # ------------------------------------------------------------------ loop
    def _loop(self, summary: SessionSummary) -> None:
        opts = self.options
        dt = 1.0 / opts.fps
        obs, info = self.env.reset()
        self._engage()
        t0 = self.clock()
        self._sample(summary, obs, info, t0, force=True)
        next_tick = t0
        paused = False
        while True:
            summary.elapsed_s = self.clock() - t0
            if opts.duration_s is not None and summary.elapsed_s >= opts.duration_s - 1e-6:
                summary.reason = "duration"
                return
            if paused:
                cmd = self.controller.poll(obs, info)
                if self.safety is not None:
                    self.safety.watchdog()
                if cmd.events.quit:
                    summary.reason = "quit"
                    return
                if cmd.events.pause:
                    paused = False
                    self._message("resumed")
                next_tick = self._pace(next_tick, dt)
                continue
            obs, _, terminated, truncated, info = self.env.step(idle_action(self.env))
            summary.ticks += 1
            self._sample(summary, obs, info, t0)
            if info.get("event_quit"):
                summary.reason = "quit"
                return
            if info.get("event_pause"):
                paused = True
                self._message("paused: the arm holds; press pause again to resume")
            if terminated or truncated:
                if self._end_episode(summary, info, truncated):
                    return
                obs, info = self.env.reset()
                self._engage()
                paused = False
            next_tick = self._pace(next_tick, dt)

    def _end_episode(
        self, summary: SessionSummary, info: Mapping[str, Any], truncated: bool
    ) -> bool:
        """Count the finished episode; True when the session has all its episodes."""
        if info.get("event_rerecord"):
            summary.rerecorded += 1
            self._message(f"episode {summary.episodes + 1}: re-record (not counted)")
            return False
        summary.episodes += 1
        success = bool(info.get("success"))
        if success:
            summary.successes += 1
            outcome = "success"
        elif info.get("event_failure"):
            summary.failures += 1
            outcome = "failure"
        else:
            outcome = "time limit" if truncated else "ended"
        self._message(f"episode {summary.episodes}: {outcome}")
        if self.options.episodes is not None and summary.episodes >= self.options.episodes:
            summary.reason = "episodes"
            return True
        return False

    def _pace(self, deadline: float, dt: float) -> float:
        """Sleep until the next tick (see :func:`hilrl.pacing.next_tick`)."""
        if not self.options.realtime:
            return deadline + dt
        return pacing.next_tick(deadline, dt, self.clock, self.sleep)

    def _engage(self) -> None:
        """With a toggle device, hand control to the operator for the new episode."""
        if not self.options.engage:
            return

        c = self.controller
        if isinstance(c, LatchedController) and c.intervention_mode == "toggle":
            c.tap(INTERVENE)
            if not self._engaged_once:
                self._engaged_once = True
                keys = getattr(c, "bindings", {}).get(INTERVENE, ())
                how = f" (press {'/'.join(keys)} to hand back)" if keys else ""
                self._message(f"you are driving{how}; every episode starts engaged")

    # ------------------------------------------------------------------ output
    def _sample(
        self,
        summary: SessionSummary,
        obs: Observation,
        info: Mapping[str, Any],
        t0: float,
        force: bool = False,
    ) -> None:
        reading = self.reader.read()
        summary.last = reading
        if self.on_sample is not None:
            self.on_sample(reading)
        if self.viewer is not None:
            self.viewer.show(obs)
        mode = "operator" if info.get("is_intervention") else "idle"
        text = (
            f"{format_pose(reading)} | ep {summary.episodes + 1} {self.clock() - t0:5.1f}s {mode}"
        )
        if self.tty:
            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
            self.out.write("\r" + text[:width] + "\x1b[K")
            self.out.flush()
            self._line_open = True
        elif force or summary.ticks % self.options.print_every == 0:
            self.out.write(text + "\n")
            self.out.flush()

    def _message(self, text: str) -> None:
        self._end_line()
        self.out.write(f"teleop: {text}\n")
        self.out.flush()

    def _end_line(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def open_teleop(
    cfg: RootConfig, *, cameras: bool, continuous: bool = False, hint_out: TextIO | None = None
) -> Iterator[tuple[Env, InputController, PoseReader]]:
    """Build the robot, the (unstarted) controller and the env of ``cfg``; close them after.

    The env runs in 'record' mode (an operator drives). ``cameras`` switches the camera
    observations (off when nothing shows them). ``continuous`` removes the episode time
    limit and the termination on task success, so a session is one long episode (for
    find-limits: a reset would teleport the arm mid-exploration). Raises
    :class:`ConfigError` for an env that has no arm to teleoperate.
    """

    env_cfg = cfg.env
    if env_cfg.gym_id is not None:
        raise ConfigError(
            "env.gym_id", env_cfg.gym_id, "teleop drives a robot arm; set env.gym_id=null"
        )
    chain = env_cfg.chain_name
    if chain is None:
        raise ConfigError(
            "env.robot.type", env_cfg.robot.type, "no kinematic chain to compute the tool pose"
        )
    env_cfg = replace(env_cfg, mode="record", use_cameras=cameras)
    if continuous:
        env_cfg = replace(env_cfg, episode_time_s=None, terminate_on_success=False)
    robot = make_robot(replace(env_cfg.robot, cameras=env_cfg.robot.cameras if cameras else ()))
    try:
        controller = make_controller(cfg.teleop, env=env_cfg, follower=robot, out=hint_out)
        env = make_env(env_cfg, robot=robot, controller=controller)
        try:
            yield env, controller, PoseReader(robot, chain)
        finally:
            env.close()
    finally:
        if robot.is_connected:
            robot.disconnect()
