"""Evaluate a policy: N episodes, deterministic actions, no operator, optional videos.

The env is the run's own (``make_env`` of the run config) with ``mode='train'`` and no
input controller, so nobody intervenes and every action is the policy's. Episode ``i``
resets with :func:`eval_seed` ``(seed, i)``, a hashed :func:`hilrl.seeds.episode_seed` of
the "eval" stream: the same seed gives the same task layouts, so two checkpoints evaluated
with one seed face the same tasks (a paired comparison), while another seed gives other
layouts (not ``seed + i``, which shares all but one with ``seed + 1``), and no layout is
one a run's demonstrations or training episodes used.

The success rate comes with a Wilson score interval: unlike the normal approximation it
stays inside [0, 1] and is not degenerate at 0 or N successes, which is where small
robot evaluations usually land.

Videos: with cameras in the observation, the frames are what the policy saw (after crops
and resizes). A state-only sim config gets a render-only copy of the robot's cameras
(``front`` when none are configured): the observation stays state-only, the renderer
only feeds the video. A gymnasium id renders with ``render_mode='rgb_array'``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hilrl import seeds
from hilrl.config.env import EnvConfig
from hilrl.core import Policy, Robot
from hilrl.envs.robot_env import RewardFn
from hilrl.runtime.eval_video import Mp4Writer, tile
from hilrl.types import image_keys

DEFAULT_MAX_STEPS = 10_000
"""Step cap for envs without a time limit (``env.episode_time_s: null``)."""
RENDER_CAMERA = "front"
"""Camera rendered for videos of state-only sim configs without configured cameras."""
EVAL_STREAM = seeds.EVAL
"""Seed stream of evaluation episodes (see :mod:`hilrl.seeds`)."""


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


@dataclass
class EvalResult:
    """All episodes of one evaluation, and their summary statistics."""

    episodes: list[EvalEpisode] = field(default_factory=list)
    confidence: float = 0.95

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
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.summary(), "per_episode": [asdict(e) for e in self.episodes]}


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
) -> EvalResult:
    """Run ``episodes`` deterministic episodes of ``policy`` in ``make_env(env_cfg)``.

    Episode ``i`` resets with :func:`eval_seed` ``(seed, i)``, kept in its
    :class:`EvalEpisode`. ``video_dir``: write ``<video_prefix>_ep<index>.mp4`` there for
    the first ``video_episodes`` episodes (None: all), each with ``length + 1`` frames (the
    reset frame, then one per step). ``max_steps`` caps an episode (default: the env's time
    limit, else :data:`DEFAULT_MAX_STEPS`). Raises ``ValueError`` when the env's
    observation or action layout differs from what the policy was built for.
    """
    from tqdm import tqdm

    from hilrl.envs import make_env

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    cfg = replace(env_cfg, mode="train")
    want_video = video_dir is not None and (video_episodes is None or video_episodes > 0)
    robot, render_mode = _video_setup(cfg) if want_video else (None, None)
    env = make_env(cfg, robot=robot, reward_fn=reward_fn, render_mode=render_mode)
    limit = max_steps or cfg.max_episode_steps or DEFAULT_MAX_STEPS
    result = EvalResult(confidence=confidence)
    try:
        frames = _frame_source(cfg, env, robot) if want_video else None
        bar = tqdm(total=episodes, desc="eval", unit="ep", disable=not progress, leave=False)
        for i in range(episodes):
            path = None
            if frames is not None and (video_episodes is None or i < video_episodes):
                assert video_dir is not None
                path = Path(video_dir) / f"{video_prefix}_ep{i:03d}.mp4"
            seed_i = eval_seed(seed, i)
            episode = _run_episode(env, policy, i, seed_i, limit, frames, path, cfg.fps)
            result.episodes.append(episode)
            bar.update(1)
            bar.set_postfix(success=f"{result.successes}/{i + 1}")
        bar.close()
    finally:
        env.close()
    return result


def _run_episode(
    env: Any,
    policy: Policy,
    index: int,
    seed: int,
    limit: int,
    frames: FrameSource | None,
    video: Path | None,
    fps: float,
) -> EvalEpisode:
    obs, info = env.reset(seed=seed)
    if index == 0:
        check_policy_fits_env(policy, obs, env.action_space.shape)
    writer = Mp4Writer(video, fps) if video is not None else None
    total, length, success, interventions = 0.0, 0, False, 0
    env_success: bool | None = None
    terminated = False
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
            if terminated or truncated:
                break
    finally:
        if writer is not None:
            writer.close()
    return EvalEpisode(
        index=index,
        seed=seed,
        success=success,
        episode_return=total,
        length=length,
        terminated=bool(terminated),
        env_success=env_success,
        intervention_steps=interventions,
        video=str(video) if writer is not None and writer.frames else None,
    )


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
    from hilrl.policies.encoder import ObservationSpec

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
    from hilrl.robots import make_robot

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
) -> CheckpointEval:
    """Load the policy of ``checkpoint`` (a run folder or a checkpoint), evaluate it, log it.

    Appends one line to ``<out>/metrics/eval.jsonl`` (``out``: the checkpoint's run folder
    by default) and writes videos to ``<out>/videos`` when ``video`` and the machine can
    render; without OpenGL it ``warn``s and evaluates without video.
    """
    import json
    import time

    from hilrl.robots.sim import RenderBackendError
    from hilrl.runtime.policy_io import load_policy_checkpoint

    policy, cfg, ckpt = load_policy_checkpoint(
        checkpoint, device, config_overrides=config_overrides
    )
    out = out if out is not None else (ckpt.run_dir or Path(cfg.run.output_dir))
    reward_fn = None
    if cfg.reward.path is not None:
        from hilrl.rewards.hook import reward_fn_from_config

        reward_fn = reward_fn_from_config(cfg.reward, cfg.env)
    video_dir = out / "videos" if video else None
    kwargs: dict[str, Any] = {
        "episodes": episodes,
        "seed": seed,
        "video_episodes": video_episodes or None,
        "video_prefix": f"eval_step{ckpt.step:09d}",
        "reward_fn": reward_fn,
        "progress": progress,
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
        **result.summary(),
        "per_episode": result.to_json()["per_episode"],
        "eval": True,
    }
    path = out / "metrics" / "eval.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    return CheckpointEval(result, entry, path, video_dir, ckpt.path, ckpt.step, ckpt.env_steps)
