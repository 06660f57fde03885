"""Reading a LeRobotDataset v2.1 (one parquet + one mp4 per episode, JSON-lines metadata)
built here by hand with pyarrow and PyAV, following LeRobot v0.3's layout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataset_helpers import FPS, psnr, render, tree_hash

from hilrl.data.lerobot import DatasetError, DatasetWriter, LeRobotDatasetReader

LENGTHS = (6, 9)
CAM = "observation.images.top"


def build_v21(root: Path) -> dict[str, np.ndarray]:
    """Write a 2-episode v2.1 dataset; returns the frames that went in."""
    rng = np.random.default_rng(7)
    info = {
        "codebase_version": "v2.1",
        "robot_type": "koch",
        "total_episodes": len(LENGTHS),
        "total_frames": sum(LENGTHS),
        "total_tasks": 2,
        "total_videos": len(LENGTHS),
        "total_chunks": 1,
        "chunks_size": 1000,
        "fps": FPS,
        "splits": {"train": f"0:{len(LENGTHS)}"},
        "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
        "video_path": "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
        "features": {
            "action": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
            "observation.state": {"dtype": "float32", "shape": [3], "names": ["x", "y", "z"]},
            CAM: {
                "dtype": "video",
                "shape": [32, 48, 3],
                "names": ["height", "width", "channels"],
                "info": {"video.fps": FPS, "video.codec": "h264", "video.pix_fmt": "yuv420p"},
            },
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        },
    }
    (root / "meta").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    tasks = ["push", "pull"]
    (root / "meta/tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
    )
    (root / "meta/episodes.jsonl").write_text(
        "".join(
            json.dumps({"episode_index": e, "tasks": [tasks[e]], "length": n}) + "\n"
            for e, n in enumerate(LENGTHS)
        )
    )
    stats_lines = []
    out: dict[str, list[np.ndarray]] = {"action": [], "observation.state": [], CAM: []}
    start = 0
    for e, n in enumerate(LENGTHS):
        action = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
        state = rng.normal(size=(n, 3)).astype(np.float32)
        table = pa.table(
            {
                "action": pa.array(list(action), pa.list_(pa.float32(), 3)),
                "observation.state": pa.array(list(state), pa.list_(pa.float32(), 3)),
                "timestamp": pa.array(np.arange(n, dtype=np.float32) / FPS),
                "frame_index": pa.array(np.arange(n, dtype=np.int64)),
                "episode_index": pa.array(np.full(n, e, dtype=np.int64)),
                "index": pa.array(np.arange(start, start + n, dtype=np.int64)),
                "task_index": pa.array(np.full(n, e, dtype=np.int64)),
            }
        )
        path = root / f"data/chunk-000/episode_{e:06d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        frames = np.stack([render(t, e, (32, 48)) for t in range(n)])
        vpath = root / f"videos/chunk-000/{CAM}/episode_{e:06d}.mp4"
        vpath.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(vpath), "w") as container:
            stream = container.add_stream("libx264", rate=FPS, options={"crf": "18", "g": "2"})
            stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
            for t, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = t
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        stats_lines.append(
            json.dumps(
                {
                    "episode_index": e,
                    "stats": {
                        "action": {
                            "mean": action.mean(0).tolist(),
                            "std": action.std(0).tolist(),
                            "min": action.min(0).tolist(),
                            "max": action.max(0).tolist(),
                            "count": [n],
                        }
                    },
                }
            )
            + "\n"
        )
        out["action"].append(action)
        out["observation.state"].append(state)
        out[CAM].append(frames)
        start += n
    (root / "meta/episodes_stats.jsonl").write_text("".join(stats_lines))
    return {k: np.concatenate(v) for k, v in out.items()}


def test_reads_v21_dataset(tmp_path: Path) -> None:
    root = tmp_path / "v21"
    truth = build_v21(root)
    before = tree_hash(root)
    reader = LeRobotDatasetReader(root)
    assert reader.version == "v2.1"
    assert reader.tasks == {0: "push", 1: "pull"}
    assert [e.length for e in reader.episodes] == list(LENGTHS)
    assert reader.episodes[1].data_path == "data/chunk-000/episode_000001.parquet"
    assert reader.episodes[1].videos[CAM].path == f"videos/chunk-000/{CAM}/episode_000001.mp4"
    assert (reader.episodes[1].from_index, reader.episodes[1].to_index) == (6, 15)
    assert reader.stats is None  # v2.1 without meta/stats.json

    chunks = list(reader.iter_chunks(chunk_size=4))
    data = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    np.testing.assert_array_equal(data["action"], truth["action"])
    np.testing.assert_array_equal(data["observation.state"], truth["observation.state"])
    np.testing.assert_array_equal(data["episode_index"], np.repeat([0, 1], LENGTHS))
    np.testing.assert_array_equal(data["task_index"], np.repeat([0, 1], LENGTHS))
    assert data[CAM].shape == (sum(LENGTHS), 32, 48, 3)
    assert psnr(truth[CAM], data[CAM]) >= 35.0

    ep = reader.episode(1)
    np.testing.assert_array_equal(ep[CAM], data[CAM][LENGTHS[0] :])
    st = reader.episode_stats(1)
    np.testing.assert_allclose(
        st["action"]["mean"], truth["action"][LENGTHS[0] :].mean(0), rtol=1e-6
    )
    assert tree_hash(root) == before


def test_resume_refuses_v21(tmp_path: Path) -> None:
    root = tmp_path / "v21"
    build_v21(root)
    before = tree_hash(root)
    with pytest.raises(DatasetError, match=r"v2\.1") as err:
        DatasetWriter.resume(root)
    assert err.value.path.endswith("meta/info.json")
    assert tree_hash(root) == before


def set_version(root: Path, version: str) -> Path:
    path = root / "meta/info.json"
    info = json.loads(path.read_text())
    info["codebase_version"] = version
    path.write_text(json.dumps(info))
    return path


def test_v21_files_declared_v30_name_the_version_not_a_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "v21"
    build_v21(root)
    info = set_version(root, "v3.0")
    with pytest.raises(DatasetError) as err:
        LeRobotDatasetReader(root)
    assert err.value.path == str(info)
    message = str(err.value)
    assert "declares codebase_version 'v3.0'" in message and "laid out as v2.x" in message
    assert "v2.1" in message  # the versions the reader supports
    assert "not found" not in message


@pytest.mark.parametrize("version", ["v2.1", "v2.0"])
def test_v30_files_declared_v2x_name_the_version_not_a_missing_file(
    copy_dataset: Callable[[], Path], version: str
) -> None:
    root = copy_dataset()
    info = set_version(root, version)
    with pytest.raises(DatasetError) as err:
        LeRobotDatasetReader(root)
    assert err.value.path == str(info)
    message = str(err.value)
    assert f"declares codebase_version '{version}'" in message and "laid out as v3.0" in message
    assert "not found" not in message
