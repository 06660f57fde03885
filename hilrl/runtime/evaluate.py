"""Evaluate a policy: N episodes, deterministic actions, optional operator, optional videos.

The env is the run's own (``make_env`` of the run config) with ``mode='train'``; every
action is the policy's. Episode ``i`` resets with :func:`eval_seed` ``(seed, i)``, a
hashed :func:`hilrl.seeds.episode_seed` of the "eval" stream: the same seed gives the
same task layouts, so two checkpoints evaluated with one seed face the same tasks (a
paired comparison), while another seed gives other layouts (not ``seed + i``, which
shares all but one with ``seed + 1``), and no layout is one a run's demonstrations or
training episodes used.

The operator (``operator=``: a :class:`~hilrl.config.teleop.TeleopConfig` to build the
configured input device from, or a ready :class:`~hilrl.core.InputController`; default
none, as in the launcher's final evaluation) is seen through
:class:`~hilrl.envs.wrappers.intervention.EventsOnlyController`: their events count,
their actions never reach the arm (a simulated operator only watches). In an episode:

* quit stops the evaluation: the result holds the episodes done so far
  (:attr:`EvalResult.stopped` says so) and the quit episode as interrupted;
* pause ends the episode as interrupted and holds the arm (the safety watchdog) until
  pause is pressed again, then the next episode starts from a reset (quit while paused
  stops the evaluation);
* success / failure end the episode as a success / failure (as in training); it counts;
* rerecord ends the episode as interrupted;
* a takeover attempt (the operator reaching for the controls) ends the episode at that
  tick, flagged ``operator_takeover``, as interrupted.

Interrupted episodes are kept apart (:attr:`EvalResult.interrupted`): they are counted
and reported but not in the success rate, returns or lengths. They are not replaced, so
episode ``i`` always has the seed of index ``i`` (the paired comparison holds).

The success rate comes with a Wilson score interval: unlike the normal approximation it
stays inside [0, 1] and is not degenerate at 0 or N successes, which is where small
robot evaluations usually land.

Videos: with cameras in the observation, the frames are what the policy saw (after crops
and resizes). A state-only sim config gets a render-only copy of the robot's cameras
(``front`` when none are configured): the observation stays state-only, the renderer
only feeds the video. A gymnasium id renders with ``render_mode='rgb_array'``.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from hilrl import seeds
from hilrl.config.env import EnvConfig
from hilrl.config.root import RootConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.core import InputController, Policy, Robot
from hilrl.envs import make_env
from hilrl.envs.robot_env import RewardFn
from hilrl.envs.safety import SafetyWrapper
from hilrl.envs.wrappers.intervention import EventsOnlyController, InterventionWrapper
from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards.hook import reward_fn_from_config
from hilrl.robots import make_robot
from hilrl.robots.sim import RenderBackendError
from hilrl.runtime.eval_video import Mp4Writer, tile
from hilrl.runtime.policy_io import load_policy_checkpoint
from hilrl.runtime.teleop_session import find_wrapper
from hilrl.teleop import make_controller
from hilrl.types import image_keys

DEFAULT_MAX_STEPS = 10_000
"""Step cap for envs without a time limit (``env.episode_time_s: null``)."""
RENDER_CAMERA = "front"
"""Camera rendered for videos of state-only sim configs without configured cameras."""
EVAL_STREAM = seeds.EVAL
"""Seed stream of evaluation episodes (see :mod:`hilrl.seeds`)."""
HOLD_TICK_S = 0.05
"""While paused by the operator, the controller is polled and the watchdog run this often."""
OPERATOR_QUIT = "operator quit"
""":attr:`EvalResult.stopped` when the operator quit the evaluation."""
INTERRUPTIONS = ("quit", "pause", "operator_takeover", "rerecord")
"""Why an episode may be interrupted (:attr:`EvalEpisode.interrupted`), first one wins."""


def eval_seed(seed: int, index: int) -> int:
    """The reset seed of episode ``index`` of an evaluation seeded ``seed``."""
    return seeds.episode_seed(seed, EVAL_STREAM, index)


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) for zero trials."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if trials == 0:
        return 0.0, 1.0
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2.0)
    n = float(trials)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    center = (p + z2 / (2.0 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # The exact bounds at 0 / N successes are 0 / 1; clamp the float round-off.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return low, high


@dataclass
class EvalEpisode:
    """One evaluation episode."""

    index: int
    seed: int
    success: bool
    """The env reported success at some step (the ground truth in the sim, or the reward model)."""
    episode_return: float
    length: int
    terminated: bool
    env_success: bool | None = None
    """Ground-truth sim success when a reward model decided ``success``; else None."""
    intervention_steps: int = 0
    video: str | None = None
    interrupted: str | None = None
    """Why the operator cut the episode short (one of :data:`INTERRUPTIONS`); None: it ran
    to its end (or the operator's success / failure ended it). Interrupted episodes are
    not in the statistics."""
    operator_takeover: bool = False
    """The operator tried to take the controls (their action was not executed)."""


@dataclass
class EvalResult:
    """All episodes of one evaluation, and their summary statistics.

    ``episodes`` are the complete ones, the statistics' sample; ``interrupted`` the ones
    the operator cut short (excluded, see the module docstring).
    """

    episodes: list[EvalEpisode] = field(default_factory=list)
    confidence: float = 0.95
    interrupted: list[EvalEpisode] = field(default_factory=list)
    requested: int = 0
    """Episodes asked for (0: unknown)."""
    stopped: str | None = None
    """Why the evaluation stopped before ``requested`` episodes (:data:`OPERATOR_QUIT`)."""

    @property
    def operator_takeovers(self) -> int:
        return sum(e.operator_takeover for e in (*self.episodes, *self.interrupted))

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    @property
    def success_rate(self) -> float:
        return self.successes / len(self.episodes) if self.episodes else 0.0

    @property
    def success_ci(self) -> tuple[float, float]:
        return wilson_interval(self.successes, len(self.episodes), self.confidence)

    @property
    def mean_return(self) -> float:
        return float(np.mean([e.episode_return for e in self.episodes])) if self.episodes else 0.0

    @property
    def std_return(self) -> float:
        return float(np.std([e.episode_return for e in self.episodes])) if self.episodes else 0.0

    @property
    def mean_length(self) -> float:
        return float(np.mean([e.length for e in self.episodes])) if self.episodes else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-able figures (no per-episode detail)."""
        low, high = self.success_ci
        return {
            "episodes": len(self.episodes),
            "successes": self.successes,
            "success_rate": self.success_rate,
            "success_ci_low": low,
            "success_ci_high": high,
            "confidence": self.confidence,
            "mean_return": self.mean_return,
            "std_return": self.std_return,
            "mean_length": self.mean_length,
            "interrupted": len(self.interrupted),
            "operator_takeovers": self.operator_takeovers,
            "requested_episodes": self.requested,
            "stopped": self.stopped,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "per_episode": [asdict(e) for e in self.episodes],
            "interrupted_episodes": [asdict(e) for e in self.interrupted],
        }


FrameSource = Callable[[dict[str, np.ndarray]], np.ndarray | None]
"""Observation -> one video frame (uint8 HxWx3), or None when nothing can be shown."""


def evaluate(
    policy: Policy,
    env_cfg: EnvConfig,
    *,
    episodes: int = 10,
    seed: int = 0,
    video_dir: str | Path | None = None,
    video_episodes: int | None = None,
    video_prefix: str = "eval",
    reward_fn: RewardFn | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    confidence: float = 0.95,
    operator: TeleopConfig | InputController | None = None,
    notify: Callable[[str], None] = lambda _msg: None,
) -> EvalResult:
    """Run ``episodes`` deterministic episodes of ``policy`` in ``make_env(env_cfg)``.

    Episode ``i`` resets with :func:`eval_seed` ``(seed, i)``, kept in its
    :class:`EvalEpisode`. ``video_dir``: write ``<video_prefix>_ep<index>.mp4`` there for
    the first ``video_episodes`` episodes (None: all), each with ``length + 1`` frames (the
    reset frame, then one per step). ``max_steps`` caps an episode (default: the env's time
    limit, else :data:`DEFAULT_MAX_STEPS`). ``operator``: the operator's input, events only
    (see the module docstring): a :class:`TeleopConfig` (its device is built with the env's
    robot, started and stopped here; ``device='none'`` is refused) or a controller its
    caller starts and stops; None: nobody. ``notify`` gets one line for each operator
    event that changes the evaluation (pause, resume, takeover, quit). Raises
    ``ValueError`` when the env's observation or action layout differs from what the
    policy was built for.
    """

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if isinstance(operator, TeleopConfig) and operator.device == "none":
        raise ValueError(
            "an operator needs an input device: teleop.device is 'none' (set e.g. "
            "--teleop.device=keyboard)"
        )
    cfg = replace(env_cfg, mode="train")
    want_video = video_dir is not None and (video_episodes is None or video_episodes > 0)
    robot, render_mode = _video_setup(cfg) if want_video else (None, None)
    if isinstance(operator, TeleopConfig) and robot is None and cfg.gym_id is None:
        # The device may need the env's robot (the simulated operator, a leader arm).

        cameras = tuple(cfg.robot.cameras) if cfg.use_cameras else ()
        robot = make_robot(replace(cfg.robot, cameras=cameras))
    try:
        env = make_env(cfg, robot=robot, reward_fn=reward_fn, render_mode=render_mode)
    except BaseException:
        if robot is not None and robot.is_connected:
            robot.disconnect()
        raise
    limit = max_steps or cfg.max_episode_steps or DEFAULT_MAX_STEPS
    result = EvalResult(confidence=confidence, requested=episodes)
    owned: InputController | None = None
    watch: _Watch | None = None
    try:
        controller: InputController | None = None
        if isinstance(operator, TeleopConfig):
            controller = make_controller(operator, env=cfg, follower=robot)
            controller.start()
            owned = controller
        elif operator is not None:
            controller = operator
        if controller is not None:
            watch = _Watch(env, controller)
        frames = _frame_source(cfg, env, robot) if want_video else None
        bar = tqdm(total=episodes, desc="eval", unit="ep", disable=not progress, leave=False)
        for i in range(episodes):
            path = None
            if frames is not None and (video_episodes is None or i < video_episodes):
                assert video_dir is not None
                path = Path(video_dir) / f"{video_prefix}_ep{i:03d}.mp4"
            seed_i = eval_seed(seed, i)
            episode, last = _run_episode(
                env, policy, i, seed_i, limit, frames, path, cfg.fps, watch
            )
            bar.update(1)
            if episode.interrupted is None:
                result.episodes.append(episode)
                bar.set_postfix(success=f"{result.successes}/{len(result.episodes)}")
                continue
            result.interrupted.append(episode)
            reason = episode.interrupted
            if episode.operator_takeover:
                notify(
                    f"the operator took over evaluation episode {i} at step {episode.length}: "
                    "it ended there (the policy's action was executed) and is not counted"
                )
            if reason == "rerecord":
                notify(f"evaluation episode {i} re-recorded by the operator: not counted")
            if reason == "pause":
                assert watch is not None
                notify(
                    f"evaluation paused by the operator in episode {i} (not counted): the arm "
                    "is held; press pause to go on, quit to stop"
                )
                if watch.hold(*last):
                    notify("evaluation resumed: the next episode starts from a reset")
                    continue
                reason = "quit"
            if reason == "quit":
                result.stopped = OPERATOR_QUIT
                notify(
                    f"the operator quit the evaluation in episode {i}: partial result, "
                    f"{len(result.episodes)} complete of {episodes} episodes"
                )
                break
        bar.close()
    finally:
        if watch is not None:
            watch.close()
        if owned is not None:
            owned.stop()
        env.close()
    return result


class _Watch:
    """The operator during an evaluation: events only, through the env's intervention hook."""

    def __init__(self, env: Any, controller: InputController) -> None:
        hook = find_wrapper(env, InterventionWrapper)
        if hook is None:
            raise ValueError("the env has no intervention hook to attach the operator to")
        self.hook: Any = hook
        self.before = hook.controller
        self.safety: Any = find_wrapper(env, SafetyWrapper)
        self.controller = EventsOnlyController(controller)
        hook.controller = self.controller

    @property
    def takeover(self) -> bool:
        return self.controller.takeover

    def hold(self, obs: dict[str, np.ndarray], info: dict[str, Any]) -> bool:
        """Hold the arm until the operator presses pause again (True) or quits (False)."""
        while True:
            cmd = self.controller.poll(obs, info)
            if self.safety is not None:
                self.safety.watchdog()
            if cmd.events.quit:
                return False
            if cmd.events.pause:
                return True
            time.sleep(HOLD_TICK_S)

    def close(self) -> None:
        self.controller.close()
        self.hook.controller = self.before


def _interruption(info: dict[str, Any], takeover: bool) -> str | None:
    """The first of :data:`INTERRUPTIONS` this step's info (and takeover flag) carries."""
    for reason in INTERRUPTIONS:
        if takeover if reason == "operator_takeover" else info.get(f"event_{reason}", False):
            return reason
    return None


def _run_episode(
    env: Any,
    policy: Policy,
    index: int,
    seed: int,
    limit: int,
    frames: FrameSource | None,
    video: Path | None,
    fps: float,
    watch: _Watch | None = None,
) -> tuple[EvalEpisode, tuple[dict[str, np.ndarray], dict[str, Any]]]:
    """One episode, and its last observation and info."""
    obs, info = env.reset(seed=seed)
    if index == 0:
        check_policy_fits_env(policy, obs, env.action_space.shape)
    writer = Mp4Writer(video, fps) if video is not None else None
    total, length, success, interventions = 0.0, 0, False, 0
    env_success: bool | None = None
    terminated = False
    interrupted: str | None = None
    takeover = False
    try:
        _add_frame(writer, frames, obs)
        while length < limit:
            action = policy.act(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            length += 1
            success = success or bool(info.get("success", False))
            if "env_success" in info:
                env_success = bool(env_success) or bool(info["env_success"])
            interventions += int(bool(info.get("is_intervention", False)))
            _add_frame(writer, frames, obs)
            if watch is not None:
                takeover = watch.takeover
                interrupted = _interruption(info, takeover)
            if terminated or truncated or interrupted is not None:
                break
    finally:
        if writer is not None:
            writer.close()
    episode = EvalEpisode(
        index=index,
        seed=seed,
        success=success,
        episode_return=total,
        length=length,
        terminated=bool(terminated),
        env_success=env_success,
        intervention_steps=interventions,
        video=str(video) if writer is not None and writer.frames else None,
        interrupted=interrupted,
        operator_takeover=takeover,
    )
    return episode, (obs, info)


def _add_frame(
    writer: Mp4Writer | None, frames: FrameSource | None, obs: dict[str, np.ndarray]
) -> None:
    if writer is None or frames is None:
        return
    frame = frames(obs)
    if frame is not None:
        writer.add(frame)


def check_policy_fits_env(
    policy: Policy, obs: dict[str, np.ndarray], action_shape: tuple[int, ...] | None
) -> None:
    """Fail early, naming the difference, when ``policy`` was built for another env layout."""

    nets = getattr(policy, "nets", None)
    spec = getattr(nets, "obs_spec", None)
    action_spec = getattr(nets, "action_spec", None)
    if isinstance(spec, ObservationSpec):
        got = ObservationSpec.from_observation(obs)
        if got != spec:
            raise ValueError(
                f"the env's observation {got.to_json()} differs from the policy's {spec.to_json()} "
                "(check env.use_cameras, env.state, env.images against the training config)"
            )
    dim = getattr(action_spec, "dim", None)
    if dim is not None and action_shape is not None and tuple(action_shape) != (dim,):
        raise ValueError(
            f"the env's action shape {tuple(action_shape)} differs from the policy's ({dim},) "
            "(check env.action against the training config)"
        )


def _video_setup(cfg: EnvConfig) -> tuple[Robot | None, str | None]:
    """(render-only robot, render mode) for the video of ``cfg``'s episodes."""
    if cfg.gym_id is not None:
        return None, "rgb_array"
    if cfg.use_cameras and cfg.robot.cameras:
        return None, None  # the observation's images are the video

    cameras = tuple(cfg.robot.cameras) or ((RENDER_CAMERA,) if cfg.robot.type == "sim" else ())
    if not cameras:
        raise ValueError(f"robot.type={cfg.robot.type!r} has no cameras configured to film")
    return make_robot(replace(cfg.robot, cameras=cameras)), None


def _frame_source(cfg: EnvConfig, env: Any, robot: Robot | None) -> FrameSource:
    if cfg.gym_id is not None:

        def rendered(_: dict[str, np.ndarray]) -> np.ndarray | None:
            frame = env.render()
            return None if frame is None else np.asarray(frame, dtype=np.uint8)

        return rendered
    if robot is not None:
        cameras = robot.camera_names

        def filmed(_: dict[str, np.ndarray]) -> np.ndarray:
            shots = robot.read_cameras()
            return tile([shots[c] for c in cameras])

        return filmed

    def observed(obs: dict[str, np.ndarray]) -> np.ndarray | None:
        keys = image_keys(obs)
        return tile([obs[k] for k in keys]) if keys else None

    return observed


@dataclass
class CheckpointEval:
    """One evaluation of a checkpoint: the result and the line written to eval.jsonl."""

    result: EvalResult
    entry: dict[str, Any]
    metrics_path: Path
    video_dir: Path | None
    checkpoint: Path
    step: int
    env_steps: int | None


def operator_by_default(cfg: RootConfig) -> bool:
    """``hilrl eval``'s default: the configured device on a real robot; in sim, none."""
    return cfg.env.gym_id is None and cfg.env.robot.type != "sim" and cfg.teleop.device != "none"


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    episodes: int,
    seed: int,
    out: Path | None = None,
    video: bool = True,
    video_episodes: int | None = None,
    device: str = "cpu",
    config_overrides: dict[str, Any] | None = None,
    progress: bool = False,
    warn: Callable[[str], None] = lambda _msg: None,
    operator: bool | None = False,
    notify: Callable[[str], None] | None = None,
) -> CheckpointEval:
    """Load the policy of ``checkpoint`` (a run folder or a checkpoint), evaluate it, log it.

    Appends one line to ``<out>/metrics/eval.jsonl`` (``out``: the checkpoint's run folder
    by default) and writes videos to ``<out>/videos`` when ``video`` and the machine can
    render; without OpenGL it ``warn``s and evaluates without video. ``operator``: the
    run config's ``teleop`` device watches the evaluation (events only, see
    :func:`evaluate`); False (the default, the launcher's final evaluation): nobody;
    None: :func:`operator_by_default`. ``notify`` (default ``warn``) gets the operator's
    pauses, takeovers and quit.
    """

    policy, cfg, ckpt = load_policy_checkpoint(
        checkpoint, device, config_overrides=config_overrides
    )
    if operator is None:
        operator = operator_by_default(cfg)
        real = cfg.env.gym_id is None and cfg.env.robot.type != "sim"
        if real and not operator:
            warn(
                "teleop.device is 'none': nobody can quit, pause or fail an episode on this "
                "robot, only the safety layer acts (set --teleop.device=...)"
            )
    out = out if out is not None else (ckpt.run_dir or Path(cfg.run.output_dir))
    reward_fn = None
    if cfg.reward.path is not None:
        reward_fn = reward_fn_from_config(cfg.reward, cfg.env)
    video_dir = out / "videos" if video else None
    kwargs: dict[str, Any] = {
        "episodes": episodes,
        "seed": seed,
        "video_episodes": video_episodes or None,
        "video_prefix": f"eval_step{ckpt.step:09d}",
        "reward_fn": reward_fn,
        "progress": progress,
        "operator": cfg.teleop if operator else None,
        "notify": notify if notify is not None else warn,
    }
    try:
        result = evaluate(policy, cfg.env, video_dir=video_dir, **kwargs)
    except RenderBackendError as exc:
        warn(f"no video ({exc}); evaluating without it")
        video_dir = None
        result = evaluate(policy, cfg.env, video_dir=None, **kwargs)
    entry = {
        "unix_time": time.time(),
        "env_steps": ckpt.env_steps,
        "step": ckpt.step,
        "policy_version": policy.version,
        "checkpoint": str(ckpt.path),
        "seed": seed,
        "operator": cfg.teleop.device if operator else None,
        **result.to_json(),
        "eval": True,
    }
    path = out / "metrics" / "eval.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return CheckpointEval(result, entry, path, video_dir, ckpt.path, ckpt.step, ckpt.env_steps)
