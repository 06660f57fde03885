"""evaluate(): episodes, success counting, Wilson intervals, spec checks and mp4 videos."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from eval_helpers import make_run, tiny_env_cfg

from hilrl.robots.sim import RenderBackendError
from hilrl.runtime.eval_video import Mp4Writer
from hilrl.runtime.evaluate import EvalResult, eval_seed, evaluate, wilson_interval
from hilrl.runtime.policy_io import load_policy
from hilrl.types import IMAGE_PREFIX, Observation


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class ZeroPolicy:
    """A :class:`hilrl.core.Policy` that always stays put (no networks, so no spec checks)."""

    def __init__(self, dim: int = 4) -> None:
        self.dim = dim
        self.calls = 0

    def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
        assert deterministic, "evaluation must ask for deterministic actions"
        self.calls += 1
        return np.zeros(self.dim, dtype=np.float32)

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None: ...

    @property
    def version(self) -> int:
        return 0


def decode(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# ------------------------------------------------------------------------- Wilson


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),  # the textbook example
        (0, 10, 0.0, 0.2775),  # z^2 / (n + z^2)
        (10, 10, 0.7225, 1.0),
        (1, 20, 0.0089, 0.2361),
        (81, 263, 0.2553, 0.3662),  # Wilson (1927)-style example from Newcombe (1998), table I
    ],
)
def test_wilson_matches_hand_computed_values(k: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)


@pytest.mark.parametrize("n", [1, 3, 7, 20, 50])
def test_wilson_bounds_solve_the_score_equation(n: int) -> None:
    """Independent oracle: the bounds are the roots p of (k/n - p)^2 = z^2 p (1 - p) / n."""
    z = 1.959963984540054
    for k in range(n + 1):
        phat = k / n
        a = 1 + z * z / n
        b = -(2 * phat + z * z / n)
        c = phat * phat
        disc = math.sqrt(max(b * b - 4 * a * c, 0.0))
        roots = ((-b - disc) / (2 * a), (-b + disc) / (2 * a))
        low, high = wilson_interval(k, n)
        assert (low, high) == pytest.approx(roots, abs=1e-9)
        assert 0.0 <= low <= phat <= high <= 1.0


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(3, 10, confidence=0.99)[1] > wilson_interval(3, 10)[1]
    for bad in ((-1, 3), (4, 3)):
        with pytest.raises(ValueError):
            wilson_interval(*bad)
    with pytest.raises(ValueError, match="confidence"):
        wilson_interval(1, 2, confidence=1.0)


# ----------------------------------------------------------------------- episodes


def test_evaluate_a_loaded_policy(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    policy, cfg, _ = load_policy(run)
    result = evaluate(policy, cfg.env, episodes=3, seed=5)
    assert isinstance(result, EvalResult)
    assert [e.index for e in result.episodes] == [0, 1, 2]
    assert [e.seed for e in result.episodes] == [eval_seed(5, i) for i in range(3)]
    limit = cfg.env.max_episode_steps
    assert limit == 4
    for e in result.episodes:
        assert 1 <= e.length <= limit
        assert isinstance(e.success, bool)
        # Sim reward: 1.0 on the success step, which terminates the episode.
        assert e.episode_return == float(e.success)
        assert e.terminated == e.success
        assert e.intervention_steps == 0
        assert e.video is None
    low, high = result.success_ci
    assert low <= result.success_rate <= high
    summary = result.summary()
    assert summary["episodes"] == 3
    assert summary["mean_length"] == pytest.approx(np.mean([e.length for e in result.episodes]))
    again = evaluate(policy, cfg.env, episodes=3, seed=5)
    assert [(e.length, e.episode_return) for e in again.episodes] == [
        (e.length, e.episode_return) for e in result.episodes
    ]


def test_success_from_a_reward_model_and_ground_truth() -> None:
    """A reward model that always says success: every episode succeeds at its first step."""

    def always(obs: Observation, info: Mapping[str, Any]) -> tuple[float, bool]:
        return 2.0, True

    policy = ZeroPolicy()
    result = evaluate(policy, tiny_env_cfg(), episodes=2, reward_fn=always)
    assert [(e.success, e.length, e.episode_return) for e in result.episodes] == [
        (True, 1, 2.0)
    ] * 2
    assert [e.env_success for e in result.episodes] == [False, False]  # the sim disagrees
    assert result.success_rate == 1.0
    assert result.success_ci == pytest.approx(wilson_interval(2, 2))
    assert policy.calls == 2


def test_max_steps_caps_episodes() -> None:
    result = evaluate(ZeroPolicy(), tiny_env_cfg(episode_time_s=None), episodes=1, max_steps=3)
    assert result.episodes[0].length == 3
    assert not result.episodes[0].terminated


def test_a_policy_for_another_observation_is_refused(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    policy, cfg, _ = load_policy(run)
    other = replace(cfg.env, state=replace(cfg.env.state, ee_pose=False))
    with pytest.raises(ValueError, match="observation"):
        evaluate(policy, other, episodes=1)
    no_gripper = replace(cfg.env, action=replace(cfg.env.action, use_gripper=False))
    with pytest.raises(ValueError, match="action shape"):
        evaluate(policy, no_gripper, episodes=1)


def test_bad_episode_count() -> None:
    with pytest.raises(ValueError, match="episodes"):
        evaluate(ZeroPolicy(), tiny_env_cfg(), episodes=0)


# ------------------------------------------------------------------------- videos


def _skip_without_gl(fn: Any) -> Any:
    try:
        return fn()
    except RenderBackendError as exc:
        pytest.skip(f"no offscreen rendering here: {exc}")


def test_state_only_video_renders_the_front_camera(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    policy, cfg, _ = load_policy(run)
    env_cfg = replace(cfg.env, robot=replace(cfg.env.robot, cameras=()))
    videos = tmp_path / "videos"
    result = _skip_without_gl(
        lambda: evaluate(
            policy,
            env_cfg,
            episodes=2,
            seed=3,
            video_dir=videos,
            video_episodes=1,
            video_prefix="t",
        )
    )
    first, second = result.episodes
    assert second.video is None
    assert first.video == str(videos / "t_ep000.mp4")
    frames = decode(Path(first.video))
    assert len(frames) == first.length + 1
    h, w = env_cfg.robot.camera_height, env_cfg.robot.camera_width
    assert frames[0].shape == (h, w, 3)
    assert frames[0].std() > 5  # a rendered scene, not a blank buffer
    assert sorted(p.name for p in videos.iterdir()) == ["t_ep000.mp4"]


def test_camera_video_shows_what_the_policy_saw(tmp_path: Path) -> None:
    """With cameras in the observation the video is the observed images, side by side."""
    cfg = tiny_env_cfg(use_cameras=True)
    cfg = replace(cfg, robot=replace(cfg.robot, cameras=("front", "wrist")))
    seen: list[Observation] = []

    class Recording(ZeroPolicy):
        def act(self, observation: Observation, deterministic: bool = False) -> np.ndarray:
            seen.append(observation)
            return super().act(observation, deterministic)

    result = _skip_without_gl(
        lambda: evaluate(Recording(), cfg, episodes=1, seed=0, video_dir=tmp_path)
    )
    episode = result.episodes[0]
    assert episode.video is not None
    frames = decode(Path(episode.video))
    assert len(frames) == episode.length + 1
    h, w = cfg.robot.camera_height, cfg.robot.camera_width
    assert frames[0].shape == (h, 2 * w, 3)
    first = np.concatenate([seen[0][IMAGE_PREFIX + "front"], seen[0][IMAGE_PREFIX + "wrist"]], 1)
    error = np.abs(frames[0].astype(np.int16) - first.astype(np.int16)).mean()
    assert error < 8.0, f"decoded frame differs from the observation by {error:.1f} on average"


def test_mp4_writer_pads_odd_sizes_and_counts_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "odd.mp4"
    with Mp4Writer(path, fps=10) as writer:
        for _ in range(7):
            writer.add(rng.integers(0, 255, (33, 47, 3), dtype=np.uint8))
    frames = decode(path)
    assert len(frames) == 7 == writer.frames
    assert frames[0].shape == (34, 48, 3)
    with Mp4Writer(tmp_path / "x.mp4", fps=10) as writer:
        writer.add(np.zeros((8, 8, 3), np.uint8))
        with pytest.raises(ValueError, match="frame size"):
            writer.add(np.zeros((16, 8, 3), np.uint8))
