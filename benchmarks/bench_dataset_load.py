"""Dataset-to-arrays load throughput of the LeRobotDataset reader, against per-frame access.

Writes a 10,000-frame dataset (50 episodes x 200 frames, two 128x128 cameras with moving
shapes, state/action/reward/flags), then measures:

* ``load``: ``LeRobotDatasetReader.iter_chunks`` over everything (frames/s, one frame =
  both camera images + all columns), the path replay buffers use;
* ``naive``: LeRobot-style random access (open the video, seek to the frame's timestamp,
  decode up to it, per camera per frame), timed on a subset and extrapolated.

Run: ``.venv/bin/python benchmarks/bench_dataset_load.py [--episodes 50 --length 200]``.
The last line is a JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq

from hilrl.data.lerobot import DatasetWriter, LeRobotDatasetReader, hilrl_features, iter_transitions

SIZE = 128
CAMERAS = ("front", "wrist")


def _sprite(radius: int, color: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An anti-aliased shaded disc: (rgb, alpha) patches."""
    d = 2 * radius + 2
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float32) - (radius + 0.5)
    r = np.sqrt(xx**2 + yy**2)
    alpha = np.clip(radius - r + 0.5, 0, 1)[..., None]
    shade = (1 - 0.4 * np.clip(r / radius, 0, 1))[..., None]
    return np.array(color, np.float32) * shade, alpha


class Scene:
    """Cheap 'renders': a smooth background per camera with two discs moving over it."""

    def __init__(self, camera: int) -> None:
        yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
        self.background = np.stack(
            [
                70 + 80 * xx / SIZE,
                90 + 60 * yy / SIZE,
                120 + 25 * np.sin(xx / 9 + camera) * np.cos(yy / 11),
            ],
            axis=-1,
        )
        self.sprites = [_sprite(14, (190, 80, 60)), _sprite(10, (60, 150, 90))]
        self.camera = camera

    def render(self, t: int, episode: int) -> np.ndarray:
        img = self.background.copy()
        for k, (rgb, alpha) in enumerate(self.sprites):
            d = rgb.shape[0]
            span = SIZE - d
            x = int(span * (0.5 + 0.45 * np.sin(0.05 * t + 2 * k + episode)))
            y = int(span * (0.5 + 0.45 * np.cos(0.04 * t + k + self.camera + episode)))
            patch = img[y : y + d, x : x + d]
            img[y : y + d, x : x + d] = patch * (1 - alpha) + rgb * alpha
        return img.astype(np.uint8)


def write(root: Path, episodes: int, length: int, codec: str) -> float:
    scenes = [Scene(c) for c in range(len(CAMERAS))]
    rng = np.random.default_rng(0)
    feats = hilrl_features(8, 4, {c: (SIZE, SIZE) for c in CAMERAS})
    writer = DatasetWriter(root, 10, feats, robot_type="bench", video_codec=codec)
    t0 = time.perf_counter()
    for e in range(episodes):
        for t in range(length):
            last = t == length - 1
            frame = {
                "observation.state": rng.normal(size=8).astype(np.float32),
                "action": rng.uniform(-1, 1, 4).astype(np.float32),
                "next.reward": np.float32(last),
                "next.done": last,
                "next.truncated": False,
                "complementary_info.is_intervention": np.float32(t % 5 == 0),
                "complementary_info.discrete_penalty": np.float32(0.0),
            }
            for c, cam in enumerate(CAMERAS):
                frame[f"observation.images.{cam}"] = scenes[c].render(t, e)
            writer.add_frame(frame)
        writer.save_episode("pick the cube")
    writer.finalize()
    return time.perf_counter() - t0


def load(root: Path, chunk_size: int, decode_threads: int) -> tuple[float, int]:
    reader = LeRobotDatasetReader(root)
    t0 = time.perf_counter()
    n = 0
    checksum = 0
    for chunk in reader.iter_chunks(chunk_size=chunk_size, decode_threads=decode_threads):
        n += len(chunk["index"])
        checksum += int(chunk["observation.images.front"][:, 0, 0, 0].sum())
    return time.perf_counter() - t0, n


def naive(root: Path, samples: int) -> float:
    """Seconds per frame for LeRobot-style per-frame access (row + one seek-decode per camera)."""
    reader = LeRobotDatasetReader(root)
    table = pq.read_table(reader.path(reader.episodes[0].data_path))
    rng = np.random.default_rng(1)
    frames = rng.integers(0, reader.num_frames, samples)
    eps = {ep.from_index: ep for ep in reader.episodes}
    starts = np.array(sorted(eps))
    t0 = time.perf_counter()
    for g in frames:
        ep = eps[int(starts[np.searchsorted(starts, g, side="right") - 1])]
        row = {
            k: table.column(k)[int(g)].as_py()
            for k in ("observation.state", "action", "next.reward")
        }
        assert row
        for key in reader.video_keys:
            seg = ep.videos[key]
            target = seg.from_timestamp + (int(g) - ep.from_index) / reader.fps
            with av.open(str(reader.path(seg.path))) as container:
                stream = container.streams.video[0]
                tb = Fraction(stream.time_base or 1)
                container.seek(int(target / tb), stream=stream, backward=True)
                for frame in container.decode(stream):
                    if abs(float((frame.pts or 0) * tb) - target) < 1e-4:
                        frame.to_ndarray(format="rgb24")
                        break
    return (time.perf_counter() - t0) / samples


def into_replay(root: Path, total: int) -> float:
    """Frames/s of the learner's own path: dataset -> uint8 replay storage (demo buffer)."""
    from hilrl.config.learner import ReplayConfig
    from hilrl.data.mixer import ReplayBuffers
    from hilrl.policies.encoder import ObservationSpec
    from hilrl.runtime.demos import load_demos

    reader = LeRobotDatasetReader(root)
    feats = reader.features
    images = tuple(
        sorted(
            (k, tuple(int(d) for d in f.shape))  # type: ignore[misc]
            for k, f in feats.items()
            if k.startswith("observation.images.")
        )
    )
    spec = ObservationSpec(int(feats["observation.state"].shape[0]), images)  # type: ignore[arg-type]
    action_dim = int(feats["action"].shape[0])
    cfg = ReplayConfig(capacity=1000, demo_capacity=total + 1, intervention_capacity=1000)
    buffers = ReplayBuffers(spec, action_dim, cfg)
    t0 = time.perf_counter()
    _, n = load_demos(buffers, root, spec, action_dim)
    assert n == total, (n, total)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=50, help="episodes to write")
    parser.add_argument("--length", type=int, default=200, help="frames per episode")
    parser.add_argument("--codec", default="auto", help="video codec for the writer")
    parser.add_argument("--chunk-size", type=int, default=2048, help="iter_chunks chunk size")
    parser.add_argument(
        "--naive-samples", type=int, default=300, help="frames timed for the baseline"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="hilrl-bench-"))
    root = tmp / "ds"
    try:
        total = args.episodes * args.length
        write_s = write(root, args.episodes, args.length, args.codec)
        reader = LeRobotDatasetReader(root)
        codec = reader.features["observation.images.front"].info["video.codec"]  # type: ignore[index]
        size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
        print(
            f"wrote {total} frames x {len(CAMERAS)} cams in {write_s:.1f} s "
            f"({total / write_s:.0f} frames/s), codec {codec}, {size_mb:.1f} MiB on disk"
        )

        # decode_threads 0 = the reader's automatic choice; alternate runs and keep the best of
        # each, since the machine may be shared
        results: dict[int, float] = {}
        for threads in (0, 1, 0, 1):
            seconds, n = load(root, args.chunk_size, threads)
            assert n == total
            results[threads] = max(results.get(threads, 0.0), n / seconds)
            print(
                f"iter_chunks (decode_threads={threads}): {seconds:.2f} s, {n / seconds:.0f} frames/s"
            )
        load_fps = results[0]

        t0 = time.perf_counter()
        count = sum(
            len(b) for b in iter_transitions(LeRobotDatasetReader(root), chunk_size=args.chunk_size)
        )
        trans_fps = count / (time.perf_counter() - t0)
        print(f"iter_transitions: {trans_fps:.0f} transitions/s")

        replay_fps = into_replay(root, total)
        print(
            f"into the replay buffer (load_demos, as the learner does): {replay_fps:.0f} frames/s"
        )

        per_frame = naive(root, args.naive_samples)
        naive_fps = 1.0 / per_frame
        print(
            f"naive per-frame seek+decode ({args.naive_samples} samples): {per_frame * 1e3:.2f} ms/frame, "
            f"{naive_fps:.0f} frames/s, extrapolated {total * per_frame:.1f} s for the dataset"
        )
        print(f"speedup iter_chunks / naive: {load_fps / naive_fps:.1f}x")
        print(
            json.dumps(
                {
                    "frames": total,
                    "cameras": len(CAMERAS),
                    "image_size": SIZE,
                    "video_codec": codec,
                    "write_frames_per_s": round(total / write_s, 1),
                    "dataset_mib": round(size_mb, 2),
                    "load_frames_per_s": round(load_fps, 1),
                    "load_frames_per_s_1_codec_thread": round(results[1], 1),
                    "transitions_per_s": round(trans_fps, 1),
                    "replay_load_frames_per_s": round(replay_fps, 1),
                    "naive_frames_per_s": round(naive_fps, 1),
                    "speedup_vs_naive": round(load_fps / naive_fps, 2),
                }
            )
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
