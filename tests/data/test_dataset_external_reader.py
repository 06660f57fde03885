"""Read a hilrl-written dataset with ONLY pyarrow, PyAV and json, following the documented
LeRobotDataset v3.0 layout (docs/dataset_format.md): what any other tool would see.

This module imports nothing from hilrl; the dataset comes from the conftest fixture.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from dataset_helpers import FPS, LENGTHS, Episode, psnr, stacked

CAMS = ("observation.images.front", "observation.images.wrist")


def test_info_json_fields(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, _ = video_dataset
    info = json.loads((root / "meta/info.json").read_text())
    assert list(info) == [
        "codebase_version",
        "robot_type",
        "total_episodes",
        "total_frames",
        "total_tasks",
        "chunks_size",
        "data_files_size_in_mb",
        "video_files_size_in_mb",
        "fps",
        "splits",
        "data_path",
        "video_path",
        "features",
    ]
    assert info["codebase_version"] == "v3.0"
    assert info["robot_type"] == "sim_panda"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (
        3,
        sum(LENGTHS),
        2,
    )
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (
        1000,
        100,
        200,
    )
    assert info["fps"] == FPS
    assert info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert (
        info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    feats = info["features"]
    assert feats["observation.state"] == {"dtype": "float32", "shape": [5], "names": None}
    assert feats["action"] == {"dtype": "float32", "shape": [4], "names": None}
    assert feats["next.reward"] == {"dtype": "float32", "shape": [1], "names": None}
    assert feats["next.done"] == {"dtype": "bool", "shape": [1], "names": None}
    assert feats["next.truncated"] == {"dtype": "bool", "shape": [1], "names": None}
    assert feats["complementary_info.is_intervention"]["dtype"] == "float32"
    assert feats["complementary_info.discrete_penalty"]["dtype"] == "float32"
    for key in ("timestamp",):
        assert feats[key] == {"dtype": "float32", "shape": [1], "names": None}
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert feats[key] == {"dtype": "int64", "shape": [1], "names": None}
    for cam in CAMS:
        assert feats[cam]["dtype"] == "video"
        assert feats[cam]["shape"] == [64, 64, 3]
        assert feats[cam]["names"] == ["height", "width", "channels"]
        vinfo = feats[cam]["info"]
        assert vinfo["video.height"] == 64 and vinfo["video.width"] == 64
        assert vinfo["video.codec"] in ("av1", "h264")
        assert vinfo["video.pix_fmt"] == "yuv420p"
        assert vinfo["video.is_depth_map"] is False
        assert vinfo["video.fps"] == FPS
        assert vinfo["video.channels"] == 3
        assert vinfo["has_audio"] is False


def test_episodes_metadata(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, _ = video_dataset
    files = sorted(root.glob("meta/episodes/chunk-*/file-*.parquet"))
    assert [str(f.relative_to(root)) for f in files] == ["meta/episodes/chunk-000/file-000.parquet"]
    table = pq.read_table(files[0])
    rows = table.to_pylist()
    names = table.column_names
    assert names[:7] == [
        "episode_index",
        "tasks",
        "length",
        "data/chunk_index",
        "data/file_index",
        "dataset_from_index",
        "dataset_to_index",
    ]
    assert names[-2:] == ["meta/episodes/chunk_index", "meta/episodes/file_index"]
    assert table.schema.field("tasks").type == pa.list_(pa.string())
    starts = np.concatenate([[0], np.cumsum(LENGTHS)[:-1]])
    for e, row in enumerate(rows):
        assert row["episode_index"] == e
        assert row["length"] == LENGTHS[e]
        assert row["tasks"] == ["place the cube" if e == 1 else "pick the cube"]
        assert (row["data/chunk_index"], row["data/file_index"]) == (0, 0)
        assert row["dataset_from_index"] == starts[e]
        assert row["dataset_to_index"] == starts[e] + LENGTHS[e]
        assert (row["meta/episodes/chunk_index"], row["meta/episodes/file_index"]) == (0, 0)
        for cam in CAMS:
            assert (row[f"videos/{cam}/chunk_index"], row[f"videos/{cam}/file_index"]) == (0, 0)
            assert row[f"videos/{cam}/from_timestamp"] == starts[e] / FPS
            assert row[f"videos/{cam}/to_timestamp"] == (starts[e] + LENGTHS[e]) / FPS
        assert row["stats/action/count"] == [LENGTHS[e]]
        assert len(row["stats/action/mean"]) == 4
        assert np.asarray(row[f"stats/{CAMS[0]}/mean"]).shape == (3, 1, 1)
        for q in ("min", "max", "mean", "std", "q01", "q10", "q50", "q90", "q99"):
            assert f"stats/observation.state/{q}" in row

    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column("task_index").to_pylist() == [0, 1]
    assert tasks.column("__index_level_0__").to_pylist() == ["pick the cube", "place the cube"]
    pandas_meta = json.loads(tasks.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["__index_level_0__"]

    stats = json.loads((root / "meta/stats.json").read_text())
    assert stats["observation.state"]["count"] == [sum(LENGTHS)]
    assert np.asarray(stats[CAMS[1]]["std"]).shape == (3, 1, 1)
    assert stats["next.done"]["max"] == [True]


def test_data_parquet_columns(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, episodes = video_dataset
    table = pq.read_table(root / "data/chunk-000/file-000.parquet")
    assert table.num_rows == sum(LENGTHS)
    schema = table.schema
    assert schema.field("observation.state").type == pa.list_(pa.float32(), 5)
    assert schema.field("action").type == pa.list_(pa.float32(), 4)
    assert schema.field("next.reward").type == pa.float32()
    assert schema.field("next.done").type == pa.bool_()
    assert schema.field("index").type == pa.int64()
    assert not any(c.startswith("observation.images") for c in table.column_names)
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.state"] == {
        "feature": {"dtype": "float32", "_type": "Value"},
        "length": 5,
        "_type": "Sequence",
    }
    state = np.stack(table.column("observation.state").to_pylist()).astype(np.float32)
    np.testing.assert_array_equal(state, stacked(episodes, "observation.state"))
    assert table.column("index").to_pylist() == list(range(sum(LENGTHS)))


def test_video_timestamps_and_keyframes(video_dataset: tuple[Path, list[Episode]]) -> None:
    """LeRobot decodes frame ``from_timestamp + frame_index / fps`` with 1e-4 s tolerance."""
    root, episodes = video_dataset
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    for cam in CAMS:
        path = root / f"videos/{cam}/chunk-000/file-000.mp4"
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = Fraction(stream.time_base or 1)
            times, keys, frames = [], [], []
            for frame in container.decode(stream):
                times.append(float((frame.pts or 0) * tb))
                keys.append(frame.key_frame)
                frames.append(frame.to_ndarray(format="rgb24"))
        assert len(frames) == sum(LENGTHS)
        for row in rows:
            start = round(row[f"videos/{cam}/from_timestamp"] * FPS)
            for i in range(row["length"]):
                assert (
                    abs(times[start + i] - (row[f"videos/{cam}/from_timestamp"] + i / FPS)) < 1e-4
                )
            assert keys[start], f"episode {row['episode_index']} does not start on a keyframe"
        assert psnr(stacked(episodes, cam), np.stack(frames)) >= 35.0
