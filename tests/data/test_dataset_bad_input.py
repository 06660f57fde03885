"""Bad datasets and bad writer input fail with errors naming the file/field and the problem;
reading a damaged dataset never modifies it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import FPS, features, make_episode, tree_hash

from hilrl.data.lerobot import (
    DatasetError,
    DatasetWriter,
    FeatureError,
    FrameError,
    LeRobotDatasetReader,
)

CAM = "observation.images.front"
VIDEO = f"videos/{CAM}/chunk-000/file-000.mp4"
DATA = "data/chunk-000/file-000.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"


def edit_info(root: Path, change: Callable[[dict], None]) -> None:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    change(info)
    path.write_text(json.dumps(info))


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def read_everything(root: Path) -> None:
    reader = LeRobotDatasetReader(root)
    for _ in reader.iter_chunks(chunk_size=8):
        pass


# (damage, file the error must name, words the message must contain)
CASES: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "missing info": (lambda r: (r / "meta/info.json").unlink(), "meta/info.json", "not found"),
    "corrupt info": (
        lambda r: (r / "meta/info.json").write_text('{"fps": 10,'),
        "meta/info.json",
        "JSON",
    ),
    "unknown version": (
        lambda r: edit_info(r, lambda i: i.update(codebase_version="v9.9")),
        "meta/info.json",
        "unknown codebase_version 'v9.9'",
    ),
    "bad feature spec": (
        lambda r: edit_info(r, lambda i: i["features"]["action"].update(shape="four")),
        "meta/info.json",
        "feature 'action' has an invalid shape",
    ),
    "total mismatch": (
        lambda r: edit_info(r, lambda i: i.update(total_frames=999)),
        "meta/info.json",
        "total_frames is 999",
    ),
    "missing tasks": (
        lambda r: (r / "meta/tasks.parquet").unlink(),
        "meta/tasks.parquet",
        "not found",
    ),
    "corrupt episodes": (lambda r: truncate(r / EPISODES), EPISODES, "cannot read parquet"),
    "corrupt stats": (
        lambda r: (r / "meta/stats.json").write_text("[1, 2"),
        "meta/stats.json",
        "JSON",
    ),
    "truncated data": (lambda r: truncate(r / DATA), DATA, "cannot read parquet"),
    "missing data": (lambda r: (r / DATA).unlink(), DATA, "not found"),
    "state shape": (
        lambda r: edit_info(r, lambda i: i["features"]["observation.state"].update(shape=[6])),
        DATA,
        "'observation.state' holds lists of length [5], but info.json says shape [6]",
    ),
    "scalar shape": (
        lambda r: edit_info(r, lambda i: i["features"]["next.reward"].update(shape=[2])),
        DATA,
        "'next.reward' holds scalars",
    ),
    "image shape": (
        lambda r: edit_info(r, lambda i: i["features"][CAM].update(shape=[32, 32, 3])),
        VIDEO,
        "frames are 64x64, info.json says 32x32",
    ),
    "truncated video": (lambda r: truncate(r / VIDEO, 0.6), VIDEO, "video"),
    "missing video": (lambda r: (r / VIDEO).unlink(), VIDEO, "cannot open video"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_dataset_error_names_file(case: str, copy_dataset: Callable[[], Path]) -> None:
    damage, file, words = CASES[case]
    root = copy_dataset()
    damage(root)
    before = tree_hash(root)
    with pytest.raises(DatasetError) as err:
        read_everything(root)
    assert err.value.path.endswith(file), err.value
    assert words in err.value.problem, err.value
    assert tree_hash(root) == before


def test_writer_rejects_bad_features(tmp_path: Path) -> None:
    feats = features()
    odd = {**feats, CAM: {"dtype": "video", "shape": [63, 64, 3], "names": None}}
    with pytest.raises(FeatureError, match=rf"'{CAM}'.*even"):
        DatasetWriter(tmp_path / "a", FPS, odd)
    with pytest.raises(FeatureError, match=r"'index'.*filled in by the writer"):
        DatasetWriter(tmp_path / "b", FPS, {**feats, "index": {"dtype": "int64", "shape": [1]}})
    with pytest.raises(FeatureError, match=r"'action'.*dtype"):
        DatasetWriter(tmp_path / "c", FPS, {**feats, "action": {"dtype": "float16", "shape": [4]}})
    with pytest.raises(ValueError, match="video_codec='nope'"):
        DatasetWriter(tmp_path / "d", FPS, feats, video_codec="nope")
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_writer_rejects_bad_frames(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", FPS, features())
    good = make_episode(0, 1).frames[0]
    cases = {
        "observation.state": {k: v for k, v in good.items() if k != "observation.state"},
        "extra": {**good, "extra": 1.0},
        "action": {**good, "action": np.array([0.0, np.nan, 0.0, 0.0])},
        CAM: {**good, CAM: good[CAM].astype(np.float32)},
        "next.done": {**good, "next.done": 2},
    }
    for key, frame in cases.items():
        with pytest.raises(FrameError) as err:
            writer.add_frame(frame)
        assert err.value.key == key
    assert writer.episode_frames == 0
    with pytest.raises(ValueError, match="no frames"):
        writer.save_episode("task")
    writer.finalize()


def test_writer_refuses_existing_dataset_and_missing_resume(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "file.txt").write_text("x")
    with pytest.raises(DatasetError, match="already exists"):
        DatasetWriter(tmp_path / "ds", FPS, features())
    with pytest.raises(DatasetError, match="not found"):
        DatasetWriter.resume(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_finalize_refuses_half_episode(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", FPS, features())
    writer.add_frame(make_episode(0, 1).frames[0])
    with pytest.raises(ValueError, match="unsaved episode"):
        writer.finalize()
    writer.discard_episode()
    writer.finalize()
    assert LeRobotDatasetReader(tmp_path / "ds").num_episodes == 0
