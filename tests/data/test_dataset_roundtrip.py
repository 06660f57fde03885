"""Write -> read round trips of the LeRobotDataset v3.0 writer and reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from dataset_helpers import (
    FPS,
    LENGTHS,
    Episode,
    make_episode,
    psnr,
    stacked,
    standard_episodes,
    tree_hash,
    write_dataset,
)

from hilrl.data.lerobot import DatasetWriter, LeRobotDatasetReader, iter_transitions

LOSSLESS = (
    "observation.state",
    "action",
    "next.reward",
    "next.done",
    "next.truncated",
    "complementary_info.is_intervention",
    "complementary_info.discrete_penalty",
)
CAMERAS = ("observation.images.front", "observation.images.wrist")


def read_all(reader: LeRobotDatasetReader, chunk_size: int) -> dict[str, np.ndarray]:
    chunks = list(reader.iter_chunks(chunk_size=chunk_size))
    assert all(len(c["index"]) == chunk_size for c in chunks[:-1])
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def expected_bookkeeping(lengths: tuple[int, ...]) -> dict[str, np.ndarray]:
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    return {
        "index": np.arange(sum(lengths)),
        "frame_index": frame_index,
        "episode_index": np.concatenate([np.full(n, e) for e, n in enumerate(lengths)]),
        "timestamp": (frame_index / FPS).astype(np.float32),
    }


@pytest.mark.parametrize("chunk_size", [1, 8, 1000])
def test_video_dataset_round_trip(
    video_dataset: tuple[Path, list[Episode]], chunk_size: int
) -> None:
    root, episodes = video_dataset
    before = tree_hash(root)
    data = read_all(LeRobotDatasetReader(root), chunk_size)
    for key in LOSSLESS:
        want = stacked(episodes, key).reshape(data[key].shape)
        np.testing.assert_array_equal(data[key], want.astype(data[key].dtype), err_msg=key)
    for key, want in expected_bookkeeping(LENGTHS).items():
        np.testing.assert_array_equal(data[key], want, err_msg=key)
    # episode 1 has its own task: task indices follow first appearance
    np.testing.assert_array_equal(data["task_index"], np.repeat([0, 1, 0], LENGTHS))
    for key in CAMERAS:
        src = stacked(episodes, key)
        assert data[key].shape == src.shape and data[key].dtype == np.uint8
        assert psnr(src, data[key]) >= 35.0, key
        # frames land in the right place: each decoded frame is closest to its own source
        errs = [
            [np.mean(np.abs(d.astype(int) - s.astype(int))) for s in src[:6]] for d in data[key][:6]
        ]
        assert list(np.argmin(errs, axis=1)) == list(range(6))
    assert tree_hash(root) == before


def test_episode_access_matches_stream(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, _ = video_dataset
    reader = LeRobotDatasetReader(root)
    stream = read_all(reader, 5)
    start = LENGTHS[0]
    ep = reader.episode(1)
    for key, values in ep.items():
        np.testing.assert_array_equal(values, stream[key][start : start + LENGTHS[1]], err_msg=key)
    assert reader.episode_info(1).tasks == ("place the cube",)
    assert reader.tasks == {0: "pick the cube", 1: "place the cube"}


def test_png_images_round_trip_exactly(tmp_path: Path) -> None:
    episodes = standard_episodes()
    write_dataset(tmp_path / "ds", episodes, image_storage="image")
    reader = LeRobotDatasetReader(tmp_path / "ds")
    assert reader.video_keys == [] and reader.image_keys == list(CAMERAS)
    assert reader.info["video_path"] is None
    data = read_all(reader, 10)
    for key in (*LOSSLESS, *CAMERAS):
        want = stacked(episodes, key).reshape(data[key].shape)
        np.testing.assert_array_equal(data[key], want.astype(data[key].dtype), err_msg=key)


def test_h264_round_trip(tmp_path: Path) -> None:
    episodes = [make_episode(0, 6, cameras=("front",)), make_episode(1, 9, cameras=("front",))]
    write_dataset(tmp_path / "ds", episodes, video_codec="libx264")
    reader = LeRobotDatasetReader(tmp_path / "ds")
    assert reader.features["observation.images.front"].info["video.codec"] == "h264"  # type: ignore[index]
    data = read_all(reader, 4)
    assert (
        psnr(stacked(episodes, "observation.images.front"), data["observation.images.front"]) >= 35
    )


def test_stats_match_numpy(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, episodes = video_dataset
    reader = LeRobotDatasetReader(root)
    assert reader.stats is not None
    state = stacked(episodes, "observation.state").astype(np.float64)
    s = reader.stats["observation.state"]
    np.testing.assert_allclose(s["mean"], state.mean(0), rtol=1e-6)
    np.testing.assert_allclose(s["std"], state.std(0), rtol=1e-6)
    np.testing.assert_allclose(s["min"], state.min(0), rtol=1e-6)
    np.testing.assert_allclose(s["max"], state.max(0), rtol=1e-6)
    assert s["count"].tolist() == [sum(LENGTHS)]
    img = stacked(episodes, "observation.images.front").reshape(-1, 3) / 255.0
    si = reader.stats["observation.images.front"]
    assert si["mean"].shape == (3, 1, 1)
    np.testing.assert_allclose(si["mean"].ravel(), img.mean(0), atol=1e-9)
    np.testing.assert_allclose(si["std"].ravel(), img.std(0), atol=1e-9)
    np.testing.assert_allclose(si["max"].ravel(), img.max(0))
    # dataset quantiles are count-weighted episode quantiles (LeRobot's rule): approximate
    np.testing.assert_allclose(si["q50"].ravel(), np.quantile(img, 0.5, axis=0), atol=0.02)
    # per-episode stats sit in the episodes parquet
    ep1 = reader.episode_stats(1)
    e1 = np.stack([f["action"] for f in episodes[1].frames]).astype(np.float64)
    np.testing.assert_allclose(ep1["action"]["mean"], e1.mean(0), rtol=1e-6)
    assert ep1["action"]["count"].tolist() == [LENGTHS[1]]
    img1 = np.stack([f["observation.images.front"] for f in episodes[1].frames]).reshape(-1, 3)
    for q, key in ((0.1, "q10"), (0.5, "q50"), (0.99, "q99")):  # exact within an episode
        want = np.quantile(img1, q, axis=0, method="inverted_cdf") / 255.0
        np.testing.assert_allclose(ep1["observation.images.front"][key].ravel(), want)
    assert ep1["next.done"]["max"].tolist() == [True]
    assert set(ep1) == set(reader.features)


def test_transitions_pair_frames_within_episodes(video_dataset: tuple[Path, list[Episode]]) -> None:
    root, episodes = video_dataset
    reader = LeRobotDatasetReader(root)
    batches = list(iter_transitions(reader, chunk_size=4))
    n = sum(len(b) for b in batches)
    assert n == sum(LENGTHS)
    cat = {
        "obs": np.concatenate([b.observations["observation.state"] for b in batches]),
        "next": np.concatenate([b.next_observations["observation.state"] for b in batches]),
        "img": np.concatenate([b.observations["observation.images.front"] for b in batches]),
        "next_img": np.concatenate(
            [b.next_observations["observation.images.front"] for b in batches]
        ),
        "term": np.concatenate([b.terminated for b in batches]),
        "trunc": np.concatenate([b.truncated for b in batches]),
        "interv": np.concatenate([b.is_intervention for b in batches]),
        "pen": np.concatenate([b.discrete_penalties for b in batches]),
    }
    state = stacked(episodes, "observation.state")
    ends = np.cumsum(LENGTHS) - 1
    succ = np.arange(n) + 1
    succ[ends] = ends  # last frame of an episode: next obs is itself
    np.testing.assert_array_equal(cat["obs"], state)
    np.testing.assert_array_equal(cat["next"], state[succ])
    np.testing.assert_array_equal(cat["next_img"], cat["img"][succ])
    # episode 0 and 2 terminate; episode 1 hits its time limit (truncated, not terminated)
    assert np.flatnonzero(cat["term"]).tolist() == [ends[0], ends[2]]
    assert np.flatnonzero(cat["trunc"]).tolist() == [ends[1]]
    np.testing.assert_array_equal(
        cat["interv"], stacked(episodes, "complementary_info.is_intervention") > 0
    )
    np.testing.assert_array_equal(
        cat["pen"], stacked(episodes, "complementary_info.discrete_penalty")
    )


def test_files_roll_over_at_size_caps(tmp_path: Path) -> None:
    episodes = standard_episodes()
    # caps far below one episode: every episode starts new files; 2 files per chunk folder
    write_dataset(
        tmp_path / "ds",
        episodes,
        chunks_size=2,
        data_files_size_in_mb=0.001,
        video_files_size_in_mb=0.001,
    )
    root = tmp_path / "ds"
    assert sorted(str(p.relative_to(root)) for p in root.glob("data/*/*.parquet")) == [
        "data/chunk-000/file-000.parquet",
        "data/chunk-000/file-001.parquet",
        "data/chunk-001/file-000.parquet",
    ]
    assert len(list(root.glob("videos/observation.images.front/*/*.mp4"))) == 3
    reader = LeRobotDatasetReader(root)
    assert [s.from_timestamp for s in (e.videos[CAMERAS[0]] for e in reader.episodes)] == [0, 0, 0]
    data = read_all(reader, 6)
    np.testing.assert_array_equal(data["action"], stacked(episodes, "action"))
    assert psnr(stacked(episodes, CAMERAS[1]), data[CAMERAS[1]]) >= 35


def test_resume_appends_to_existing_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    first = standard_episodes()
    write_dataset(root, first[:2])
    writer = DatasetWriter.resume(root)
    extra = make_episode(2, LENGTHS[2], task="stack")
    for frame in extra.frames:
        writer.add_frame(frame)
    assert writer.save_episode(extra.task) == 2
    writer.finalize()

    episodes = [*first[:2], extra]
    reader = LeRobotDatasetReader(root)
    assert reader.num_episodes == 3 and reader.tasks == {
        0: "pick the cube",
        1: "place the cube",
        2: "stack",
    }
    seg = reader.episodes[2].videos[CAMERAS[0]]
    assert seg.file is not None and (seg.file.chunk, seg.file.file) == (
        0,
        0,
    )  # appended, not rolled
    assert seg.from_timestamp == pytest.approx((LENGTHS[0] + LENGTHS[1]) / FPS)
    assert len(list(root.glob("data/*/*.parquet"))) == 1
    data = read_all(reader, 7)
    np.testing.assert_array_equal(data["observation.state"], stacked(episodes, "observation.state"))
    np.testing.assert_array_equal(data["index"], np.arange(sum(LENGTHS)))
    assert psnr(stacked(episodes, CAMERAS[0]), data[CAMERAS[0]]) >= 35
    assert reader.stats is not None
    np.testing.assert_allclose(
        reader.stats["action"]["mean"],
        stacked(episodes, "action").astype(np.float64).mean(0),
        rtol=1e-6,
    )
    info = json.loads((root / "meta/info.json").read_text())
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (
        3,
        sum(LENGTHS),
        3,
    )
    assert not (root / ".hilrl-staging").exists()
    assert pq.read_metadata(root / "meta/episodes/chunk-000/file-000.parquet").num_rows == 3


def test_episode_subset_streams_only_those_episodes(
    video_dataset: tuple[Path, list[Episode]],
) -> None:
    root, _ = video_dataset
    reader = LeRobotDatasetReader(root)
    chunks = list(reader.iter_chunks(chunk_size=3, episodes=[2, 0]))
    got = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    want = {k: np.concatenate([reader.episode(0)[k], reader.episode(2)[k]]) for k in got}
    for key in got:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    np.testing.assert_array_equal(got["episode_index"], np.repeat([0, 2], [LENGTHS[0], LENGTHS[2]]))
