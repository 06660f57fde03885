"""Helpers for the dataset tests: synthetic episodes and small datasets written by hilrl.

A uniquely named module (not ``conftest``) so that test modules can import it even when
other test folders have their own ``conftest.py``.

Images look like simple renders (smooth shading, anti-aliased moving shapes, no noise),
the content the video quality target (>= 35 dB PSNR) is meant for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FPS = 10
LENGTHS = (7, 12, 5)
HW = (64, 64)
STATE_DIM = 5
ACTION_DIM = 4


def render(t: int, episode: int, hw: tuple[int, int] = HW, camera: int = 0) -> np.ndarray:
    """A smooth synthetic 'render': shaded floor plus two soft-edged moving discs."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack(
        [70 + 80 * xx / w, 90 + 60 * yy / h, 120 + 25 * np.sin(xx / 9 + camera) * np.cos(yy / 11)],
        axis=-1,
    )
    for k, (color, radius) in enumerate((((190, 80, 60), h / 6), ((60, 150, 90), h / 8))):
        cx = w * (0.5 + 0.3 * np.sin(0.3 * t + k * 2 + episode))
        cy = h * (0.5 + 0.3 * np.cos(0.2 * t + k + camera))
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        alpha = np.clip((radius - d) / 2.0 + 0.5, 0.0, 1.0)[..., None]
        shade = (1.0 - 0.35 * np.clip(d / radius, 0.0, 1.0))[..., None]
        img = img * (1 - alpha) + alpha * np.array(color, np.float32) * shade
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@dataclass
class Episode:
    """The frames of one synthetic episode, as handed to the writer."""

    frames: list[dict[str, Any]]
    task: str


def make_episode(
    episode: int,
    length: int,
    cameras: tuple[str, ...] = ("front", "wrist"),
    hw: tuple[int, int] = HW,
    truncated_end: bool = False,
    task: str = "pick the cube",
) -> Episode:
    """Random state/action, a reward at the end, and a done (or truncated) last frame."""
    rng = np.random.default_rng(1000 + episode)
    frames = []
    for t in range(length):
        last = t == length - 1
        frame: dict[str, Any] = {
            "observation.state": rng.normal(size=STATE_DIM).astype(np.float32),
            "action": rng.uniform(-1, 1, ACTION_DIM).astype(np.float32),
            "next.reward": np.float32(1.0 if last and not truncated_end else 0.0),
            "next.done": last,
            "next.truncated": last and truncated_end,
            "complementary_info.is_intervention": np.float32(t % 3 == 0),
            "complementary_info.discrete_penalty": np.float32(-0.02 if t % 4 == 1 else 0.0),
        }
        for c, cam in enumerate(cameras):
            frame[f"observation.images.{cam}"] = render(t, episode, hw, c)
        frames.append(frame)
    return Episode(frames, task)


def features(
    cameras: tuple[str, ...] = ("front", "wrist"), hw: tuple[int, int] = HW
) -> dict[str, dict[str, Any]]:
    from hilrl.data.lerobot import hilrl_features

    return hilrl_features(STATE_DIM, ACTION_DIM, {c: hw for c in cameras})


def write_dataset(root: Path, episodes: list[Episode], **kwargs: Any) -> None:
    from hilrl.data.lerobot import DatasetWriter

    cams = tuple(
        k.removeprefix("observation.images.")
        for k in episodes[0].frames[0]
        if k.startswith("observation.images.")
    )
    hw = episodes[0].frames[0][f"observation.images.{cams[0]}"].shape[:2] if cams else HW
    writer = DatasetWriter(root, FPS, features(cams, hw), robot_type="sim_panda", **kwargs)
    for ep in episodes:
        for frame in ep.frames:
            writer.add_frame(frame)
        writer.save_episode(ep.task)
    writer.finalize()


def standard_episodes() -> list[Episode]:
    """Three episodes of different lengths; the second ends in a time-limit truncation."""
    return [
        make_episode(0, LENGTHS[0]),
        make_episode(1, LENGTHS[1], truncated_end=True, task="place the cube"),
        make_episode(2, LENGTHS[2]),
    ]


def stacked(episodes: list[Episode], key: str) -> np.ndarray:
    return np.stack([np.asarray(f[key]) for ep in episodes for f in ep.frames])


def tree_hash(root: Path) -> dict[str, str]:
    """Content hash of every file under ``root`` (to prove that reading changes nothing)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }
