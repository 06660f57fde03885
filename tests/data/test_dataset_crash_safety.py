"""Crashes while recording never damage saved episodes, and resume continues correctly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import (
    LENGTHS,
    make_episode,
    psnr,
    stacked,
    standard_episodes,
    tree_hash,
    write_dataset,
)

from hilrl.data.lerobot import DatasetError, DatasetWriter, FrameError, LeRobotDatasetReader, commit


def read_all(root: Path) -> dict[str, np.ndarray]:
    chunks = list(LeRobotDatasetReader(root).iter_chunks(chunk_size=16))
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def kill(writer: DatasetWriter) -> None:
    """What a dying process leaves: open encoders abandoned, the lock released by the OS."""
    for enc in writer._encoders.values():
        enc.abort()
    writer._lock.release()


def test_crash_mid_episode_keeps_saved_episodes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    episodes = standard_episodes()
    write_dataset(root, episodes[:2])
    saved = tree_hash(root)

    writer = DatasetWriter.resume(root)
    for frame in episodes[2].frames[:3]:
        writer.add_frame(frame)
    kill(writer)  # the process dies with half an episode recorded

    assert {k: v for k, v in tree_hash(root).items() if not k.startswith(".hilrl-staging")} == saved
    reader = LeRobotDatasetReader(root)
    assert reader.num_episodes == 2
    data = read_all(root)
    np.testing.assert_array_equal(data["action"], stacked(episodes[:2], "action"))

    # resume drops the partial episode and appends a complete one after the saved ones
    writer = DatasetWriter.resume(root)
    assert writer.num_episodes == 2 and writer.episode_frames == 0
    for frame in episodes[2].frames:
        writer.add_frame(frame)
    writer.save_episode(episodes[2].task)
    writer.finalize()
    data = read_all(root)
    np.testing.assert_array_equal(data["action"], stacked(episodes, "action"))
    np.testing.assert_array_equal(data["index"], np.arange(sum(LENGTHS)))
    assert (
        psnr(stacked(episodes, "observation.images.wrist"), data["observation.images.wrist"]) >= 35
    )
    assert not (root / ".hilrl-staging").exists()


def test_failure_before_commit_point_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ds"
    episodes = standard_episodes()
    write_dataset(root, episodes[:2])
    saved = tree_hash(root)

    writer = DatasetWriter.resume(root)
    for frame in episodes[2].frames:
        writer.add_frame(frame)

    def fail(self: commit.Transaction) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(commit.Transaction, "commit", fail)
    with pytest.raises(OSError, match="disk full"):
        writer.save_episode("pick the cube")
    monkeypatch.undo()
    with pytest.raises(DatasetError, match="resume"):
        writer.add_frame(episodes[2].frames[0])  # a failed writer refuses further use
    kill(writer)

    assert {k: v for k, v in tree_hash(root).items() if not k.startswith(".hilrl-staging")} == saved
    assert LeRobotDatasetReader(root).num_episodes == 2
    writer = DatasetWriter.resume(root)  # rolls back the staged files
    assert not [p for p in (root / ".hilrl-staging").iterdir() if p.name != "writer.lock"]
    writer.finalize()
    assert tree_hash(root) == saved


def test_failure_after_commit_point_is_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "ds"
    episodes = standard_episodes()
    write_dataset(root, episodes[:2])

    writer = DatasetWriter.resume(root)
    for frame in episodes[2].frames:
        writer.add_frame(frame)
    real_replace = os.replace
    calls = {"n": 0}

    def replace_then_die(src: str | Path, dst: str | Path) -> None:
        # let the journal land and one file move, then "crash" during the renames
        if ".hilrl-staging" not in str(dst):  # a final rename (not journal, not staging)
            calls["n"] += 1
            if calls["n"] > 1:
                raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(commit.os, "replace", replace_then_die)
    with pytest.raises(OSError, match="power cut"):
        writer.save_episode("pick the cube")
    monkeypatch.undo()
    kill(writer)

    # a reader sees the committed episode through the journal, and changes nothing
    mid = tree_hash(root)
    reader = LeRobotDatasetReader(root)
    assert reader.num_episodes == 3
    data = read_all(root)
    np.testing.assert_array_equal(data["observation.state"], stacked(episodes, "observation.state"))
    assert tree_hash(root) == mid

    # the writer finishes the renames on resume
    writer = DatasetWriter.resume(root)
    assert writer.num_episodes == 3
    extra = make_episode(3, 4)
    for frame in extra.frames:
        writer.add_frame(frame)
    writer.save_episode(extra.task)
    writer.finalize()
    data = read_all(root)
    np.testing.assert_array_equal(data["action"], stacked([*episodes, extra], "action"))
    assert LeRobotDatasetReader(root).num_episodes == 4


def test_bad_frame_is_rejected_without_side_effects(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    episode = make_episode(0, 5)
    writer = DatasetWriter(root, 10, _features())
    writer.add_frame(episode.frames[0])
    bad = dict(episode.frames[1])
    bad["observation.state"] = np.zeros(4, np.float32)
    with pytest.raises(FrameError, match=r"observation\.state"):
        writer.add_frame(bad)
    for frame in episode.frames[1:]:
        writer.add_frame(frame)
    writer.save_episode(episode.task)
    writer.finalize()
    np.testing.assert_array_equal(read_all(root)["action"], stacked([episode], "action"))


def test_second_writer_is_locked_out(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    write_dataset(root, [make_episode(0, 3)])
    first = DatasetWriter.resume(root)
    with pytest.raises(DatasetError, match="another DatasetWriter"):
        DatasetWriter.resume(root)
    first.finalize()
    DatasetWriter.resume(root).finalize()


def _features() -> dict[str, dict[str, object]]:
    from dataset_helpers import features

    return features()
