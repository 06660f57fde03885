"""Read LeRobotDataset v3.0 (and v2.0/v2.1) folders into numpy, fast.

::

    reader = LeRobotDatasetReader("~/datasets/pick_cube")
    for chunk in reader.iter_chunks(chunk_size=2048):
        replay.extend(chunk)        # dict of stacked arrays, images uint8 (n, H, W, 3)

Bulk loading streams: data parquet files are read once each, and every video file is
decoded front to back once by a per-camera :class:`~hilrl.data.lerobot.video.
SequentialDecoder` running in its own thread (PyAV releases the GIL while decoding),
one chunk ahead of the consumer. Memory stays at about two chunks.

Reading never writes to the dataset. A commit left half-applied by a crashed writer is
read through its journal (the staged files stand in for the final ones).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hilrl.data.lerobot import commit, layout, stats, tables, video
from hilrl.data.lerobot.errors import DatasetError
from hilrl.data.lerobot.features import Feature, column_to_numpy, png_decode
from hilrl.data.lerobot.layout import FileIndex

BOOKKEEPING = ("episode_index", "frame_index", "index", "timestamp", "task_index")
SUPPORTED = (
    f"{layout.CODEBASE_VERSION} and, for reading only, {' and '.join(layout.LEGACY_VERSIONS)}"
)
"""The codebase versions this reader understands, as error messages name them."""


@dataclass(frozen=True)
class VideoSegment:
    """Where one episode's frames of one camera are: file and time range within it."""

    path: str
    """Path relative to the dataset root."""
    from_timestamp: float
    to_timestamp: float
    file: FileIndex | None = None
    """(chunk, file) of the video file; ``None`` for v2.x per-episode files."""

    def start_frame(self, fps: int) -> int:
        return round(self.from_timestamp * fps)


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode's metadata, from ``meta/episodes`` (v3.0) or ``episodes.jsonl`` (v2.x)."""

    index: int
    length: int
    tasks: tuple[str, ...]
    data_path: str
    """Data parquet path relative to the dataset root."""
    from_index: int
    """Global frame index of the first frame (``dataset_from_index``)."""
    to_index: int
    """One past the global index of the last frame (``dataset_to_index``)."""
    videos: dict[str, VideoSegment] = field(default_factory=dict)
    data_file: FileIndex | None = None


@dataclass
class _Piece:
    """Frames ``[lo, hi)`` (episode-local) of one episode, part of a chunk."""

    episode: EpisodeInfo
    lo: int
    hi: int


class LeRobotDatasetReader:
    """Metadata, per-episode access and bulk streaming of a LeRobot dataset."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(self.root, "dataset folder not found")
        self._redirect = commit.redirects(self.root)
        info_display = layout.INFO_PATH
        info = layout.read_json(self.path(layout.INFO_PATH))
        if not isinstance(info, dict):
            raise DatasetError(self.path(info_display), "top level is not an object")
        self.info: dict[str, Any] = info
        self.version = info.get("codebase_version")
        if self.version != layout.CODEBASE_VERSION and self.version not in layout.LEGACY_VERSIONS:
            declared = (
                "has no codebase_version"
                if self.version is None
                else f"unknown codebase_version {self.version!r}"
            )
            raise DatasetError(
                self.path(info_display), f"{declared}; this reader supports {SUPPORTED}"
            )
        self._check_layout()
        fps = info.get("fps")
        if not isinstance(fps, int | float) or isinstance(fps, bool) or fps <= 0:
            raise DatasetError(self.path(info_display), f"fps {fps!r} is not a positive number")
        self.fps = round(fps)
        feats = info.get("features")
        if not isinstance(feats, dict) or not feats:
            raise DatasetError(self.path(info_display), "'features' is missing or empty")
        self.features: dict[str, Feature] = {
            name: Feature.from_json(name, spec, str(self.path(info_display)))
            for name, spec in feats.items()
        }
        if self.version == layout.CODEBASE_VERSION:
            self.tasks = self._load_v3_tasks()
            self.episodes, self.episode_files = self._load_v3_episodes()
        else:
            self.tasks = self._load_legacy_tasks()
            self.episodes = self._load_legacy_episodes()
            self.episode_files = []
        self.stats = self._load_stats()
        self._check_totals()
        self._by_index = {ep.index: ep for ep in self.episodes}

    def _check_layout(self) -> None:
        """Refuse an info.json whose codebase_version the files contradict.

        A v3.0 folder declared v2.1 (or the reverse: a hand-edited or half-converted
        dataset) would otherwise fail on the first file of the declared layout with a
        misleading "file not found"; this names info.json, the declared version and the
        layout the files are in.
        """
        v3 = (layout.TASKS_PATH, layout.EPISODES_DIR)
        legacy = (layout.LEGACY_EPISODES_PATH, layout.LEGACY_TASKS_PATH)
        if self.version == layout.CODEBASE_VERSION:
            want, other, other_name = v3, legacy, "v2.x"
        else:
            want, other, other_name = legacy, v3, layout.CODEBASE_VERSION
        present = [rel for rel in other if self.path(rel).exists()]
        if not present or any(self.path(rel).exists() for rel in want):
            return  # the declared layout, or neither (its first missing file is named later)
        raise DatasetError(
            self.path(layout.INFO_PATH),
            f"declares codebase_version {self.version!r}, but the files are laid out as "
            f"{other_name} ({' and '.join(present)} present, no {' or '.join(want)}); set "
            f"codebase_version to the version the dataset was written in (this reader "
            f"supports {SUPPORTED})",
        )

    # ------------------------------------------------------------------ paths
    def path(self, rel: str) -> Path:
        """Absolute path of a dataset file (its staged copy while a commit is pending)."""
        return self._redirect.get(rel, self.root / rel)

    def _glob(self, pattern: str, prefix: str) -> list[str]:
        found = {str(p.relative_to(self.root)) for p in self.root.glob(pattern)}
        found |= {rel for rel in self._redirect if rel.startswith(prefix)}
        return sorted(found)

    # ------------------------------------------------------------------ metadata
    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.is_video]

    @property
    def image_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.dtype == "image"]

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.is_camera]

    @property
    def num_frames(self) -> int:
        return sum(ep.length for ep in self.episodes)

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def episode_lengths(self) -> dict[int, int]:
        return {ep.index: ep.length for ep in self.episodes}

    def _load_v3_tasks(self) -> dict[int, str]:
        if self.info.get("total_tasks") == 0 and not self.path(layout.TASKS_PATH).exists():
            return {}  # a dataset with no episodes yet
        return tables.read_tasks(self.path(layout.TASKS_PATH), str(self.path(layout.TASKS_PATH)))

    def _load_legacy_tasks(self) -> dict[int, str]:
        path = self.path(layout.LEGACY_TASKS_PATH)
        out: dict[int, str] = {}
        for n, row in enumerate(layout.read_jsonl(path), start=1):
            idx, text = row.get("task_index"), row.get("task")
            if not isinstance(idx, int) or not isinstance(text, str):
                raise DatasetError(path, f"line {n}: needs integer 'task_index' and string 'task'")
            out[idx] = text
        return out

    def _load_v3_episodes(self) -> tuple[list[EpisodeInfo], list[FileIndex]]:
        files = self._glob(
            layout.EPISODES_DIR + "/chunk-*/file-*.parquet", layout.EPISODES_DIR + "/"
        )
        if not files:
            if self.info.get("total_episodes") == 0:
                return [], []
            raise DatasetError(self.root / layout.EPISODES_DIR, "no episodes parquet files")
        required = [
            "episode_index",
            "length",
            "data/chunk_index",
            "data/file_index",
            "dataset_from_index",
            "dataset_to_index",
        ]
        for key in self.video_keys:
            required += [
                f"videos/{key}/{c}"
                for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
            ]
        episodes: list[tuple[EpisodeInfo, FileIndex]] = []
        data_tpl = self.info.get("data_path") or layout.DATA_PATH
        video_tpl = self.info.get("video_path") or layout.VIDEO_PATH
        for rel in files:
            path = self.path(rel)
            try:
                names = pq.read_schema(path).names
            except (pa.ArrowException, OSError) as exc:
                raise DatasetError(path, f"cannot read parquet ({exc})") from exc
            missing = [c for c in required if c not in names]
            if missing:
                raise DatasetError(path, f"missing columns {missing}")
            cols = [*required, "tasks"] if "tasks" in names else required
            table = tables.read_table(path, columns=cols, display=str(path))
            ep_file = _file_index_of(rel)
            for row in table.to_pylist():
                bad = [c for c in required if not isinstance(row[c], int | float)]
                if bad:
                    raise DatasetError(
                        path, f"episode row {row.get('episode_index')!r}: null/invalid {bad}"
                    )
                idx = int(row["episode_index"])
                data_file = FileIndex(int(row["data/chunk_index"]), int(row["data/file_index"]))
                videos = {
                    key: VideoSegment(
                        layout.video_path(
                            video_tpl,
                            key,
                            FileIndex(
                                int(row[f"videos/{key}/chunk_index"]),
                                int(row[f"videos/{key}/file_index"]),
                            ),
                        ),
                        float(row[f"videos/{key}/from_timestamp"]),
                        float(row[f"videos/{key}/to_timestamp"]),
                        FileIndex(
                            int(row[f"videos/{key}/chunk_index"]),
                            int(row[f"videos/{key}/file_index"]),
                        ),
                    )
                    for key in self.video_keys
                }
                ep = EpisodeInfo(
                    index=idx,
                    length=int(row["length"]),
                    tasks=tuple(row.get("tasks") or ()),
                    data_path=layout.data_path(data_tpl, data_file),
                    from_index=int(row["dataset_from_index"]),
                    to_index=int(row["dataset_to_index"]),
                    videos=videos,
                    data_file=data_file,
                )
                if ep.length <= 0 or ep.to_index - ep.from_index != ep.length:
                    raise DatasetError(
                        path,
                        f"episode {idx}: length {ep.length} disagrees with dataset_from_index "
                        f"{ep.from_index} / dataset_to_index {ep.to_index}",
                    )
                episodes.append((ep, ep_file))
        episodes.sort(key=lambda e: e[0].index)
        indices = [e.index for e, _ in episodes]
        if len(set(indices)) != len(indices):
            raise DatasetError(self.root / layout.EPISODES_DIR, "an episode_index appears twice")
        return [e for e, _ in episodes], [f for _, f in episodes]

    def _load_legacy_episodes(self) -> list[EpisodeInfo]:
        path = self.path(layout.LEGACY_EPISODES_PATH)
        rows = layout.read_jsonl(path)
        chunks_size = int(self.info.get("chunks_size") or layout.DEFAULT_CHUNKS_SIZE)
        data_tpl = self.info.get("data_path") or layout.LEGACY_DATA_PATH
        video_tpl = self.info.get("video_path") or layout.LEGACY_VIDEO_PATH
        out: list[EpisodeInfo] = []
        start = 0
        for n, row in enumerate(sorted(rows, key=lambda r: r.get("episode_index", -1)), start=1):
            idx, length = row.get("episode_index"), row.get("length")
            if not isinstance(idx, int) or not isinstance(length, int) or length <= 0:
                raise DatasetError(
                    path, f"row {n}: needs integer 'episode_index' and positive 'length'"
                )
            chunk = idx // chunks_size
            videos = {
                key: VideoSegment(
                    video_tpl.format(episode_chunk=chunk, video_key=key, episode_index=idx),
                    0.0,
                    length / self.fps,
                )
                for key in self.video_keys
            }
            out.append(
                EpisodeInfo(
                    index=idx,
                    length=length,
                    tasks=tuple(row.get("tasks") or ()),
                    data_path=data_tpl.format(episode_chunk=chunk, episode_index=idx),
                    from_index=start,
                    to_index=start + length,
                    videos=videos,
                )
            )
            start += length
        return out

    def _load_stats(self) -> dict[str, stats.Stats] | None:
        path = self.path(layout.STATS_PATH)
        if not path.exists():
            return None
        try:
            return stats.from_json(layout.read_json(path))
        except ValueError as exc:
            raise DatasetError(path, f"bad stats layout ({exc})") from exc

    def _check_totals(self) -> None:
        info_path = self.path(layout.INFO_PATH)
        total_eps = self.info.get("total_episodes")
        total_frames = self.info.get("total_frames")
        if isinstance(total_eps, int) and total_eps != len(self.episodes):
            raise DatasetError(
                info_path,
                f"total_episodes is {total_eps} but the metadata lists {len(self.episodes)}",
            )
        if isinstance(total_frames, int) and total_frames != self.num_frames:
            raise DatasetError(
                info_path,
                f"total_frames is {total_frames} but episode lengths add up to {self.num_frames}",
            )

    def episode_info(self, index: int) -> EpisodeInfo:
        if index not in self._by_index:
            raise KeyError(f"episode {index} is not in the dataset ({self.num_episodes} episodes)")
        return self._by_index[index]

    def episode_stats(self, index: int) -> dict[str, stats.Stats]:
        """Per-episode stats (``stats/...`` columns in v3.0, ``episodes_stats.jsonl`` in v2.1)."""
        ep = self.episode_info(index)
        if self.version != layout.CODEBASE_VERSION:
            path = self.path(layout.LEGACY_EPISODES_STATS_PATH)
            for row in layout.read_jsonl(path):
                if row.get("episode_index") == index:
                    try:
                        return stats.from_json(row.get("stats"))
                    except ValueError as exc:
                        raise DatasetError(path, f"episode {index}: {exc}") from exc
            return {}
        pos = [e.index for e in self.episodes].index(ep.index)
        path = self.path(layout.episodes_path(self.episode_files[pos]))
        table = tables.read_table(path, display=str(path))
        for row in table.to_pylist():
            if row.get("episode_index") == index:
                return stats.from_episode_row(row)
        return {}

    # ------------------------------------------------------------------ data
    def episode(self, index: int, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """All frames of one episode, as :meth:`iter_chunks` returns them."""
        ep = self.episode_info(index)
        loader = _ChunkLoader(self, self._keys(keys), threads=1)
        try:
            return loader.load([_Piece(ep, 0, ep.length)])
        finally:
            loader.close()

    def _keys(self, keys: Sequence[str] | None) -> list[str]:
        if keys is None:
            return list(self.features)
        unknown = [k for k in keys if k not in self.features]
        if unknown:
            raise KeyError(f"unknown feature keys {unknown}; the dataset has {list(self.features)}")
        return list(
            dict.fromkeys(
                [*keys, *(k for k in ("episode_index", "frame_index") if k in self.features)]
            )
        )

    def _decode_threads(self, keys: Sequence[str] | None, requested: int) -> int:
        """Codec threads per video stream. The cameras already decode in parallel; at
        128x128 on 2 cores, 1 and 2 threads per stream measured within noise (5,300-6,500
        frames/s for two cameras), and larger frames gain from more threads."""
        if requested > 0:
            return requested
        n_cams = max(1, len([k for k in self._keys(keys) if self.features[k].is_video]))
        return min(4, max(2, (os.cpu_count() or 1) // n_cams))

    def iter_chunks(
        self,
        chunk_size: int = 2048,
        episodes: Sequence[int] | None = None,
        keys: Sequence[str] | None = None,
        decode_threads: int = 0,
    ) -> Iterator[dict[str, np.ndarray]]:
        """Stream the dataset in order as dicts of stacked arrays of ``chunk_size`` frames.

        Chunks run across episode boundaries (``episode_index`` / ``frame_index`` say
        where each frame belongs); the last one may be shorter. Images are uint8
        (n, H, W, 3); shape-(1,) features come back as (n,). ``decode_threads`` is the
        codec thread count per video stream (0: automatic).
        """
        if chunk_size <= 0:
            raise ValueError(f"chunk_size={chunk_size}: must be positive")
        selected = (
            self.episodes
            if episodes is None
            else [self.episode_info(i) for i in sorted(set(episodes))]
        )
        plan = _plan(selected, chunk_size)
        if not plan:
            return
        loader = _ChunkLoader(
            self, self._keys(keys), threads=self._decode_threads(keys, decode_threads)
        )
        ahead = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hilrl-chunk")
        try:
            future = ahead.submit(loader.load, plan[0])
            for pieces in plan[1:]:
                chunk = future.result()
                future = ahead.submit(loader.load, pieces)
                yield chunk
            yield future.result()
        finally:
            future.cancel()
            ahead.shutdown(wait=True)
            loader.close()


def _file_index_of(rel: str) -> FileIndex:
    """(chunk, file) from ``.../chunk-XXX/file-YYY.parquet``."""
    parts = rel.split("/")
    try:
        return FileIndex(int(parts[-2].split("-")[1]), int(parts[-1].split("-")[1].split(".")[0]))
    except (IndexError, ValueError):
        return FileIndex(0, 0)


def _plan(episodes: Sequence[EpisodeInfo], chunk_size: int) -> list[list[_Piece]]:
    """Cut the episodes, in order, into chunks of ``chunk_size`` frames."""
    chunks: list[list[_Piece]] = []
    current: list[_Piece] = []
    room = chunk_size
    for ep in episodes:
        lo = 0
        while lo < ep.length:
            take = min(room, ep.length - lo)
            current.append(_Piece(ep, lo, lo + take))
            lo += take
            room -= take
            if room == 0:
                chunks.append(current)
                current, room = [], chunk_size
    if current:
        chunks.append(current)
    return chunks


class _ChunkLoader:
    """Builds chunks: tabular columns from parquet, frames from the per-camera decoders."""

    def __init__(self, reader: LeRobotDatasetReader, keys: list[str], threads: int) -> None:
        self.reader = reader
        self.keys = keys
        feats = reader.features
        self.video_keys = [k for k in keys if feats[k].is_video]
        self.image_keys = [k for k in keys if feats[k].dtype == "image"]
        self.column_keys = [k for k in keys if not feats[k].is_video]
        self.decoders = {k: video.SequentialDecoder(reader.fps, threads) for k in self.video_keys}
        workers = len(self.video_keys) + len(self.image_keys)
        self.pool = cf.ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="hilrl-decode"
        )
        self._table_path: str | None = None
        self._table: pa.Table | None = None
        self._table_index: np.ndarray | None = None

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for d in self.decoders.values():
            d.close()

    def load(self, pieces: list[_Piece]) -> dict[str, np.ndarray]:
        n = sum(p.hi - p.lo for p in pieces)
        futures: dict[str, cf.Future[np.ndarray]] = {
            key: self.pool.submit(self._frames, key, pieces, n) for key in self.video_keys
        }
        table = self._rows(pieces)
        out: dict[str, np.ndarray] = {}
        for key in self.image_keys:
            futures[key] = self.pool.submit(self._images, key, table.column(key), pieces)
        for key in self.column_keys:
            if key not in self.image_keys:
                out[key] = column_to_numpy(
                    table.column(key), self.reader.features[key], pieces[0].episode.data_path
                )
        for key in self.keys:
            if key in futures:
                out[key] = futures[key].result()
        return {key: out[key] for key in self.keys}

    def _data_table(self, ep: EpisodeInfo) -> tuple[pa.Table, np.ndarray]:
        if self._table_path != ep.data_path or self._table is None or self._table_index is None:
            path = self.reader.path(ep.data_path)
            names_needed = list(dict.fromkeys([*self.column_keys, "index"]))
            try:
                present = pq.read_schema(path).names if path.is_file() else []
            except (pa.ArrowException, OSError) as exc:
                raise DatasetError(path, f"cannot read parquet ({exc})") from exc
            if not path.is_file():
                raise DatasetError(path, "data file not found")
            missing = [c for c in names_needed if c not in present]
            if missing:
                raise DatasetError(path, f"missing columns {missing} that info.json declares")
            self._table = tables.read_table(path, columns=names_needed, display=str(path))
            self._table_index = column_to_numpy(
                self._table.column("index"), self.reader.features["index"], str(path)
            )
            self._table_path = ep.data_path
        return self._table, self._table_index

    def _rows(self, pieces: list[_Piece]) -> pa.Table:
        parts = []
        for p in pieces:
            table, index = self._data_table(p.episode)
            first = p.episode.from_index + p.lo
            row = int(np.searchsorted(index, first))
            count = p.hi - p.lo
            if (
                row + count > len(index)
                or index[row] != first
                or index[row + count - 1] != first + count - 1
            ):
                raise DatasetError(
                    self.reader.path(p.episode.data_path),
                    f"rows of episode {p.episode.index} (index {first}..{first + count - 1}) "
                    "are missing or out of order",
                )
            parts.append(table.slice(row, count).select(self.column_keys))
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def _frames(self, key: str, pieces: list[_Piece], n: int) -> np.ndarray:
        feat = self.reader.features[key]
        h, w, _ = feat.hwc
        out = np.empty((n, h, w, 3), dtype=np.uint8)
        pos = 0
        for p in pieces:
            seg = p.episode.videos[key]
            count = p.hi - p.lo
            self.decoders[key].read(
                self.reader.path(seg.path),
                seg.start_frame(self.reader.fps) + p.lo,
                out[pos : pos + count],
            )
            pos += count
        return out

    def _images(self, key: str, column: pa.ChunkedArray, pieces: list[_Piece]) -> np.ndarray:
        feat = self.reader.features[key]
        source = str(self.reader.path(pieces[0].episode.data_path))
        arr = column.combine_chunks()
        if not pa.types.is_struct(arr.type) or arr.type.get_field_index("bytes") < 0:
            raise DatasetError(source, f"column '{key}' is {arr.type}, not an image struct")
        blobs = arr.field("bytes").to_pylist()
        out = np.empty((len(blobs), *feat.hwc), dtype=np.uint8)
        for i, blob in enumerate(blobs):
            if blob is None:
                raise DatasetError(source, f"column '{key}' row {i} has no image bytes")
            out[i] = png_decode(blob, feat, source)
        return out
