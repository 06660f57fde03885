"""The recording loop behind ``hilrl record``: an operator drives, every episode is saved.

The env runs in 'record' mode with the operator's :class:`~hilrl.core.InputController`
as its intervention hook. While the operator does not intervene the env gets the
*policy* action: a scripted policy handed in by the caller, or the idle action that holds
the arm (zero steps). Each step adds one frame to a :class:`~hilrl.data.lerobot.
DatasetWriter` in LeRobot's layout: the observation *before* the step, the action that
was executed (``info['teleop_action']``), and the step's ``next.reward`` / ``next.done``
/ ``next.truncated``, intervention flag and gripper penalty.

Operator events end episodes: success / failure (the env terminates it) and the time
limit (truncated) save it; re-record drops its frames (``discard_episode``) and records
it again from the same reset; quit drops the episode in progress and stops. Pause holds
the arm and records nothing until pause is pressed again. Episode ``i`` of the dataset
resets the env with seed :func:`record_seed` ``(run.seed, i)``, a hashed
:func:`hilrl.seeds.episode_seed` of the "record" stream (demonstrations use the "demo"
stream; re-recorded attempts reuse the seed). That seed is kept in
``meta/hilrl_record.json`` next to the env config, so ``hilrl replay`` can rebuild the
same start. The writer commits each episode atomically; a crash or Ctrl-C loses at most
the episode in progress.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm import tqdm

from hilrl import pacing, seeds
from hilrl.config.loader import ConfigError, to_dict
from hilrl.config.root import RootConfig
from hilrl.core import InputController
from hilrl.data.env_features import env_features
from hilrl.data.lerobot import DatasetWriter, LeRobotDatasetReader
from hilrl.data.lerobot.features import (
    ACTION,
    DONE,
    INTERVENTION,
    PENALTY,
    REWARD,
    TRUNCATED,
)
from hilrl.envs import make_env
from hilrl.envs.safety import SafetyWrapper
from hilrl.fsutil import atomic_write_json
from hilrl.robots import make_robot
from hilrl.runtime.teleop_session import find_wrapper, idle_action
from hilrl.teleop import make_controller
from hilrl.teleop.base import LatchedController
from hilrl.teleop.controls import INTERVENE
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation

Env = gym.Env[Any, Any]
Policy = Callable[[Observation], np.ndarray]
"""A scripted policy: observation -> action in the env's action space."""

RECORD_META = "meta/hilrl_record.json"
"""hilrl's sidecar in a recorded dataset: env config and per-episode reset seeds.

LeRobot's tools ignore files in ``meta/`` they do not know."""

STOP_REASONS = ("episodes", "quit", "interrupted")
RECORD_STREAM = seeds.RECORD
"""Seed stream of ``hilrl record``'s episodes (see :mod:`hilrl.seeds`)."""


def record_seed(run_seed: int, index: int, stream: str = RECORD_STREAM) -> int:
    """The reset seed of dataset episode ``index`` recorded in a run seeded ``run_seed``.

    The one place that maps a recording's episodes to seeds: the recorder draws from it,
    and ``hilrl replay`` falls back on it for an episode whose seed was not recorded.
    """
    return seeds.episode_seed(run_seed, stream, index)


class HubError(RuntimeError):
    """Uploading to the Hugging Face Hub failed or is impossible (names the repository)."""


# ---------------------------------------------------------------------------- features
def check_features_match(
    dataset: Mapping[str, Any], env: Mapping[str, Mapping[str, Any]], root: Path
) -> None:
    """Refuse to append episodes whose columns differ from the dataset's (names both)."""
    have = {k: tuple(f.shape) for k, f in dataset.items() if k in env or k.startswith("observ")}
    want = {k: tuple(v["shape"]) for k, v in env.items()}
    for key, shape in want.items():
        if key not in have:
            raise ConfigError(
                "--resume", str(root), f"the dataset has no feature '{key}' that the env records"
            )
        if have[key] != shape:
            raise ConfigError(
                "--resume",
                str(root),
                f"feature '{key}' has shape {list(have[key])} in the dataset but "
                f"{list(shape)} from this env config",
            )
    extra = sorted(set(have) - set(want))
    if extra:
        raise ConfigError(
            "--resume", str(root), f"the dataset has features {extra} this env does not produce"
        )


def make_frame(
    obs: Observation,
    info: Mapping[str, Any],
    reward: float,
    terminated: bool,
    truncated: bool,
    keys: list[str],
) -> dict[str, Any]:
    """One dataset row: observation before the step, executed action, step outcome."""
    frame: dict[str, Any] = {k: obs[k] for k in keys}
    frame[ACTION] = np.asarray(info["teleop_action"], dtype=np.float32)
    frame[REWARD] = np.float32(reward)
    frame[DONE] = bool(terminated or truncated)
    frame[TRUNCATED] = bool(truncated and not terminated)
    frame[INTERVENTION] = np.float32(bool(info.get("is_intervention", False)))
    frame[PENALTY] = np.float32(info.get("discrete_penalty", 0.0))
    return frame


# ---------------------------------------------------------------------------- the loop
@dataclass
class RecordOptions:
    """What to record and how fast."""

    num_episodes: int
    """Episodes to save in this session (re-recorded attempts do not count)."""
    task: str
    """Task text stored with every episode."""
    seed: int = 0
    """The run seed: dataset episode ``i`` resets the env with ``record_seed(seed, i, stream)``."""
    stream: str = RECORD_STREAM
    """Seed stream of the episodes: "record", or "demo" for a run's demonstrations."""
    fps: float = 10.0
    """Control rate (Hz) of the real-time pacing."""
    realtime: bool = True
    """Pace the loop at ``fps`` (off: step as fast as the env can; the sim only)."""
    engage: bool = True
    """Start each episode intervening with a toggle-mode device, so its keys drive at once."""

    def __post_init__(self) -> None:
        if self.num_episodes <= 0:
            raise ValueError(f"num_episodes must be positive, got {self.num_episodes}")
        if not self.task:
            raise ValueError("task must be non-empty text")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")


@dataclass
class EpisodeRecord:
    """One saved episode."""

    index: int
    length: int
    seed: int
    outcome: str
    """'success', 'failure', 'time limit' or 'ended' (the env terminated on its own)."""
    intervention_frames: int
    episode_return: float


@dataclass
class RecordSummary:
    """What a recording session did."""

    reason: str = "interrupted"
    """Why it stopped: one of ``STOP_REASONS``."""
    saved: list[EpisodeRecord] = field(default_factory=list)
    rerecorded: int = 0
    """Episodes discarded by a re-record event (and recorded again)."""
    discarded_frames: int = 0
    """Frames dropped: re-recorded attempts and the episode in progress at quit / Ctrl-C."""

    @property
    def frames(self) -> int:
        return sum(e.length for e in self.saved)

    @property
    def successes(self) -> int:
        return sum(e.outcome == "success" for e in self.saved)

    @property
    def failures(self) -> int:
        return sum(e.outcome == "failure" for e in self.saved)


class EpisodeSink(Protocol):
    """Where the recorder puts frames: the part of :class:`DatasetWriter` it uses."""

    @property
    def num_episodes(self) -> int: ...

    @property
    def episode_frames(self) -> int: ...

    def add_frame(self, frame: Mapping[str, Any]) -> None: ...

    def discard_episode(self) -> None: ...

    def save_episode(self, task: str) -> int: ...


class Recorder:
    """Runs the operator loop and hands every finished episode to the writer."""

    def __init__(
        self,
        env: Env,
        controller: InputController,
        writer: EpisodeSink,
        options: RecordOptions,
        *,
        policy: Policy | None = None,
        on_saved: Callable[[EpisodeRecord], None] | None = None,
        out: TextIO | None = None,
        progress: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.env = env
        self.controller = controller
        self.writer = writer
        self.options = options
        self.policy = policy
        self.on_saved = on_saved
        self.out = out if out is not None else sys.stderr
        self.progress = progress
        self.clock = clock
        self.sleep = sleep
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        self.obs_keys = [k for k in space.spaces if k == STATE_KEY or k.startswith(IMAGE_PREFIX)]

        self.safety = find_wrapper(env, SafetyWrapper)

    def run(self) -> RecordSummary:
        """Record until ``num_episodes`` are saved, quit, or Ctrl-C; always stops the controller."""

        summary = RecordSummary()
        bar = tqdm(
            total=self.options.num_episodes,
            desc="record",
            unit="ep",
            file=self.out,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        self.controller.start()
        try:
            self._loop(summary, bar)
        except KeyboardInterrupt:
            summary.reason = "interrupted"
        finally:
            try:
                summary.discarded_frames += self.writer.episode_frames
                self.writer.discard_episode()
            finally:
                try:
                    self.controller.stop()
                finally:
                    bar.close()
        return summary

    def _message(self, bar: Any, text: str) -> None:
        if self.progress:
            bar.write(f"record: {text}", file=self.out)
        else:
            self.out.write(f"record: {text}\n")
            self.out.flush()

    def _loop(self, summary: RecordSummary, bar: Any) -> None:
        opts = self.options
        while len(summary.saved) < opts.num_episodes:
            index = self.writer.num_episodes
            seed = record_seed(opts.seed, index, opts.stream)
            result = self._episode(summary, index, seed)
            if result is None:  # quit
                summary.reason = "quit"
                return
            if isinstance(result, str):  # re-record
                summary.rerecorded += 1
                self._message(bar, f"episode {index}: re-record (discarded, recording it again)")
                continue
            record = result
            summary.saved.append(record)
            if self.on_saved is not None:
                self.on_saved(record)
            bar.update(1)
            bar.set_postfix(frames=summary.frames, success=summary.successes, refresh=False)
            self._message(
                bar,
                f"episode {record.index}: {record.outcome}, {record.length} frames, "
                f"{record.intervention_frames} intervened",
            )
        summary.reason = "episodes"

    def _episode(self, summary: RecordSummary, index: int, seed: int) -> EpisodeRecord | str | None:
        """Record one episode; the saved record, 'rerecord', or None for quit."""
        obs, info = self.env.reset(seed=seed)
        self._engage()
        dt = 1.0 / self.options.fps
        next_tick = self.clock()
        frames = interventions = 0
        ret = 0.0
        while True:
            action = self.policy(obs) if self.policy is not None else _idle(self.env)
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            if info.get("event_quit"):
                return None
            if info.get("event_rerecord"):
                summary.discarded_frames += frames
                self.writer.discard_episode()
                return "rerecord"
            frame = make_frame(
                obs, info, float(reward), bool(terminated), bool(truncated), self.obs_keys
            )
            self.writer.add_frame(frame)
            frames += 1
            interventions += int(bool(info.get("is_intervention")))
            ret += float(reward)
            obs = next_obs
            if terminated or truncated:
                saved = self.writer.save_episode(self.options.task)
                return EpisodeRecord(
                    index=saved,
                    length=frames,
                    seed=seed,
                    outcome=_outcome(info, bool(truncated)),
                    intervention_frames=interventions,
                    episode_return=ret,
                )
            if info.get("event_pause"):
                if not self._pause(obs, info):
                    return None
                next_tick = self.clock()  # the pause re-anchors the tick
            next_tick = self._pace(next_tick, dt)

    def _pause(self, obs: Observation, info: Mapping[str, Any]) -> bool:
        """Hold the arm until pause is pressed again; False when quit is pressed instead."""
        self.out.write("record: paused (nothing is recorded); press pause again to resume\n")
        self.out.flush()
        dt = 1.0 / self.options.fps
        next_tick = self.clock()
        while True:
            cmd = self.controller.poll(obs, info)
            if self.safety is not None:
                self.safety.watchdog()
            if cmd.events.quit:
                return False
            if cmd.events.pause:
                self.out.write("record: resumed\n")
                self.out.flush()
                return True
            next_tick = self._pace(next_tick, dt, force=True)

    def _pace(self, deadline: float, dt: float, force: bool = False) -> float:
        """Sleep until the next tick (see :func:`hilrl.pacing.next_tick`)."""
        if not (self.options.realtime or force):
            return deadline + dt
        return pacing.next_tick(deadline, dt, self.clock, self.sleep)

    def _engage(self) -> None:
        if not self.options.engage:
            return

        c = self.controller
        if isinstance(c, LatchedController) and c.intervention_mode == "toggle":
            c.tap(INTERVENE)


def _idle(env: Env) -> np.ndarray:
    return idle_action(env)


def _outcome(info: Mapping[str, Any], truncated: bool) -> str:
    if info.get("success"):
        return "success"
    if info.get("event_failure"):
        return "failure"
    return "time limit" if truncated else "ended"


# ---------------------------------------------------------------------------- sidecar
def read_record_meta(root: str | Path) -> dict[str, Any]:
    """The sidecar of a dataset recorded by hilrl (``{}`` when there is none)."""
    path = Path(root) / RECORD_META
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record_meta(root: str | Path, meta: Mapping[str, Any]) -> None:
    """Replace the sidecar atomically (:func:`hilrl.fsutil.atomic_write_json`)."""
    atomic_write_json(Path(root) / RECORD_META, dict(meta), indent=2)


def fallback_episode_seed(meta: Mapping[str, Any], run_seed: int, episode: int) -> int:
    """The seed :func:`record_seed` gives ``episode`` when the sidecar lacks it.

    Uses the run seed and stream the sidecar names (hilrl records them), else ``run_seed``
    and the "record" stream: a dataset recorded elsewhere has no seed to reproduce.
    """
    recorded_run = meta.get("run_seed")
    if isinstance(recorded_run, int) and not isinstance(recorded_run, bool):
        run_seed = recorded_run
    stream = meta.get("seed_stream")
    return record_seed(run_seed, episode, stream if isinstance(stream, str) else RECORD_STREAM)


def recorded_episode_seed(meta: Mapping[str, Any], episode: int) -> int | None:
    """The reset seed the sidecar ``meta`` recorded for ``episode``, or None."""
    entry = (meta.get("episodes") or {}).get(str(episode))
    seed = entry.get("seed") if isinstance(entry, dict) else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


# ---------------------------------------------------------------------------- hub
def push_to_hub(root: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload the dataset folder to the Hub dataset repository ``repo_id``; returns its URL.

    Creates the repository if needed, uploads everything but hilrl's staging folder, and
    tags the upload with the dataset's ``codebase_version`` (as LeRobot does, so its
    loader finds the right revision). Raises :class:`HubError` when huggingface_hub is
    not installed or the upload fails; the local dataset is untouched either way.
    """
    try:  # optional: huggingface_hub is not a dependency; only dataset.push_to_hub needs it
        from huggingface_hub import HfApi
    except ImportError as exc:
        raise HubError(
            f"dataset.push_to_hub needs the huggingface_hub package (pip install "
            f"huggingface_hub); the dataset is saved locally at {root}"
        ) from exc
    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    version = str(info.get("codebase_version", "v3.0"))
    try:
        api = HfApi()
        api.create_repo(repo_id=repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(root),
            repo_id=repo_id,
            repo_type="dataset",
            ignore_patterns=[".hilrl-staging/**", "*.tmp"],
            commit_message=f"hilrl record: {info.get('total_episodes')} episodes",
        )
        with contextlib.suppress(Exception):  # the tag may exist from an earlier upload
            api.create_tag(repo_id=repo_id, tag=version, repo_type="dataset", exist_ok=True)
    except Exception as exc:  # network, auth, quota: report, keep the local copy
        raise HubError(
            f"uploading {root} to the Hub dataset '{repo_id}' failed: {exc}; the dataset "
            "is saved locally"
        ) from exc
    return f"https://huggingface.co/datasets/{repo_id}"


# ---------------------------------------------------------------------------- session
@contextlib.contextmanager
def open_record_env(
    cfg: RootConfig, controller: InputController | None = None
) -> Iterator[tuple[Env, InputController]]:
    """Build the robot, the (unstarted) controller and the record-mode env; close them after."""

    env_cfg = replace(cfg.env, mode="record")
    robot = None
    if env_cfg.gym_id is None:
        cameras = env_cfg.robot.cameras if env_cfg.use_cameras else ()
        robot = make_robot(replace(env_cfg.robot, cameras=cameras))
    try:
        if controller is None:
            controller = make_controller(cfg.teleop, env=env_cfg, follower=robot)
        env = make_env(env_cfg, robot=robot, controller=controller)
        try:
            yield env, controller
        finally:
            env.close()
    finally:
        if robot is not None and robot.is_connected:
            robot.disconnect()


def default_task(cfg: RootConfig) -> str:
    """``dataset.task``, else the sim task name or the gymnasium id."""
    if cfg.dataset.task:
        return cfg.dataset.task
    return cfg.env.gym_id if cfg.env.gym_id is not None else cfg.env.robot.task


def check_destination(root: Path, resume: bool) -> None:
    """New datasets need an empty / absent folder; --resume needs an existing dataset."""
    exists = root.exists() and (not root.is_dir() or any(root.iterdir()))
    if resume and not (root / "meta" / "info.json").is_file():
        raise ConfigError("dataset.root", str(root), "--resume: no dataset there to add to")
    if not resume and exists:
        raise ConfigError(
            "dataset.root",
            str(root),
            "already exists and is not empty; pass --resume to add episodes, or choose "
            "another dataset.root / dataset.repo_id",
        )


def record_dataset(
    cfg: RootConfig,
    *,
    resume: bool = False,
    realtime: bool = True,
    controller: InputController | None = None,
    policy: Policy | None = None,
    out: TextIO | None = None,
    progress: bool = True,
    seed_stream: str = RECORD_STREAM,
) -> RecordSummary:
    """Record ``cfg.dataset.num_episodes`` episodes into ``cfg.dataset.path``.

    Validates the destination first (nothing is created for a bad one), builds the env,
    then opens the writer; a new dataset that ends with no episode is removed again.
    ``controller`` replaces the one ``cfg.teleop`` describes (tests, custom devices).
    Episode ``i`` resets with ``record_seed(cfg.run.seed, i, seed_stream)``; the sidecar
    keeps each episode's seed, the run seed and the stream.
    """

    root = cfg.dataset.path
    check_destination(root, resume)
    existing = None
    if resume:
        existing = LeRobotDatasetReader(root)
        if existing.fps != cfg.env.fps:
            raise ConfigError(
                "env.fps", cfg.env.fps, f"the dataset at {root} was recorded at {existing.fps} fps"
            )
    out = out if out is not None else sys.stderr
    task = default_task(cfg)
    with open_record_env(cfg, controller) as (env, ctrl):
        feats = env_features(env)
        if existing is not None:
            check_features_match(existing.features, feats, root)
        created = not root.exists()
        if resume:
            writer = DatasetWriter.resume(root, video_codec=cfg.dataset.video_codec)
        else:
            writer = DatasetWriter(
                root,
                fps=cfg.env.fps,
                features=feats,
                robot_type=cfg.env.gym_id or cfg.env.robot.type,
                video_codec=cfg.dataset.video_codec,
                image_storage=cfg.dataset.image_storage,
            )
        meta = read_record_meta(root) if resume else {}
        meta.setdefault("episodes", {})
        meta["env"] = to_dict(replace(cfg.env, mode="record"))
        meta["teleop_device"] = cfg.teleop.device
        meta["run_seed"] = cfg.run.seed
        meta["seed_stream"] = seed_stream

        def on_saved(rec: EpisodeRecord) -> None:
            meta["episodes"][str(rec.index)] = {
                "seed": rec.seed,
                "outcome": rec.outcome,
                "length": rec.length,
                "intervention_frames": rec.intervention_frames,
            }
            write_record_meta(root, meta)

        options = RecordOptions(
            num_episodes=cfg.dataset.num_episodes,
            task=task,
            seed=cfg.run.seed,
            stream=seed_stream,
            fps=cfg.env.fps,
            realtime=realtime,
        )
        recorder = Recorder(
            env, ctrl, writer, options, policy=policy, on_saved=on_saved, out=out, progress=progress
        )
        try:
            summary = recorder.run()
        finally:
            writer.finalize()
            if not resume and writer.num_episodes == 0:
                _remove_empty(root, created)
    return summary


def _remove_empty(root: Path, created: bool) -> None:
    """Undo the creation of a dataset that got no episode (keep a pre-existing empty folder)."""
    if created:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in list(root.iterdir()):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
