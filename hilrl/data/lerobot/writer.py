"""Record episodes into a LeRobotDataset v3.0 folder, one atomic commit per episode.

::

    writer = DatasetWriter(root, fps=10, features=hilrl_features(7, 4, {"front": (128, 128)}))
    for step in episode:
        writer.add_frame({"observation.state": s, "observation.images.front": img, ...})
    writer.save_episode(task="pick the cube")
    writer.finalize()

While an episode is recorded its camera frames are encoded straight into a per-episode
mp4 segment in the staging folder (nothing of it is kept in memory) and its numeric values
are buffered. ``save_episode`` builds the new versions of every file the episode touches
in the staging folder and commits them together (see :mod:`hilrl.data.lerobot.commit`).
Appending to the current data / video / episodes file means writing a new copy of it
(parquet rewrite; mp4 remux without re-encoding) and renaming it over the old one, so a
crash at any moment leaves either the old or the new dataset, never a mix; the cost is
bounded by the file size caps of ``info.json``.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa

from hilrl.data.lerobot import commit, layout, stats, tables, video
from hilrl.data.lerobot.errors import DatasetError, FrameError
from hilrl.data.lerobot.features import (
    DEFAULT_FEATURES,
    Feature,
    png_encode,
    to_arrow,
    user_features,
)
from hilrl.data.lerobot.layout import FileIndex
from hilrl.data.lerobot.reader import LeRobotDatasetReader

_SPOOL = "episode"
_TXN = "txn"
_MB = 1024 * 1024


class DatasetWriter:
    """Writes a LeRobotDataset v3.0; see the module docstring for the commit protocol."""

    def __init__(
        self,
        root: str | Path,
        fps: int,
        features: Mapping[str, Mapping[str, Any]],
        robot_type: str | None = None,
        video_codec: str = "auto",
        image_storage: str = "video",
        *,
        crf: int | None = None,
        gop: int = video.DEFAULT_GOP,
        chunks_size: int = layout.DEFAULT_CHUNKS_SIZE,
        data_files_size_in_mb: float = layout.DEFAULT_DATA_FILE_SIZE_IN_MB,
        video_files_size_in_mb: float = layout.DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        fsync: bool = True,
    ) -> None:
        """Create a new dataset at ``root`` (which must not exist or be empty).

        ``video_codec`` is ``"auto"`` (AV1 via libsvtav1 when available, else H.264) or
        an encoder name; ``image_storage`` stores cameras as ``"video"`` (mp4) or
        ``"image"`` (PNG bytes in the data parquet).
        """
        root = Path(root)
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise DatasetError(
                root, "already exists and is not empty; use DatasetWriter.resume(root)"
            )
        if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
            raise ValueError(f"fps={fps!r}: must be a positive int")
        for name, value in (
            ("chunks_size", chunks_size),
            ("data_files_size_in_mb", data_files_size_in_mb),
            ("video_files_size_in_mb", video_files_size_in_mb),
            ("gop", gop),
        ):
            if value <= 0:
                raise ValueError(f"{name}={value!r}: must be positive")
        feats = user_features(features, image_storage)
        has_video = any(f.is_video for f in feats.values())
        encoding = (
            video.VideoEncoding.default(video.resolve_encoder(video_codec), crf, gop)
            if has_video
            else None
        )
        info = layout.new_info(
            fps,
            {name: f.to_json() for name, f in feats.items()},
            robot_type,
            has_video,
            chunks_size,
            data_files_size_in_mb,
            video_files_size_in_mb,
        )
        root.mkdir(parents=True, exist_ok=True)
        self._init_state(root, info, feats, encoding, fsync)
        tx = commit.Transaction(root, _TXN, fsync)
        tx.write_bytes(layout.INFO_PATH, layout.json_bytes(info))
        tx.commit()

    # ------------------------------------------------------------------ opening
    def _init_state(
        self,
        root: Path,
        info: dict[str, Any],
        feats: dict[str, Feature],
        encoding: video.VideoEncoding | None,
        fsync: bool,
        lock: commit.WriterLock | None = None,
    ) -> None:
        self.root = root
        self._lock = lock if lock is not None else commit.WriterLock(root)
        self.info = info
        self.features = feats
        self.fps: int = info["fps"]
        self._encoding = encoding
        self._fsync = fsync
        self._tasks: dict[str, int] = {}
        self._stats: dict[str, stats.Stats] | None = None
        self._data_file: FileIndex | None = None
        self._data_table: pa.Table | None = None
        self._episodes_file: FileIndex | None = None
        self._episodes_table: pa.Table | None = None
        self._video_file: dict[str, FileIndex | None] = {k: None for k in self.video_keys}
        self._failed = False
        self._closed = False
        self._schema = tables.data_schema(list(feats.values()))
        self._reset_buffer()

    @classmethod
    def resume(
        cls,
        root: str | Path,
        video_codec: str = "auto",
        crf: int | None = None,
        gop: int = video.DEFAULT_GOP,
        fsync: bool = True,
    ) -> DatasetWriter:
        """Open an existing v3.0 dataset to append episodes.

        Finishes or rolls back a commit interrupted by a crash, and drops a half-recorded
        episode. New video segments use the codec already in the dataset when an encoder
        for it exists (so they can join the current file), else ``video_codec``.
        """
        root = Path(root)
        info_path = root / layout.INFO_PATH
        if not root.is_dir():
            raise DatasetError(root, "dataset folder not found")
        # Check the version read-only first, so refusing a dataset leaves no trace in it.
        _check_appendable(commit.redirects(root).get(layout.INFO_PATH, info_path), info_path)
        self = cls.__new__(cls)
        lock = commit.WriterLock(root)
        try:
            commit.recover(root)
            info = _check_appendable(info_path, info_path)
            feats = {
                name: Feature.from_json(name, spec, str(info_path))
                for name, spec in info["features"].items()
            }
            encoding = None
            video_feats = [f for f in feats.values() if f.is_video]
            if video_feats:
                existing = (video_feats[0].info or {}).get("video.codec")
                encoder = video.encoder_for_codec(existing) if isinstance(existing, str) else None
                encoder = encoder or video.resolve_encoder(video_codec)
                encoding = video.VideoEncoding.default(encoder, crf, gop)
            self._init_state(root, info, feats, encoding, fsync, lock)
            self._load_existing()
        except BaseException:
            lock.release()
            commit.remove_staging_if_idle(root)
            raise
        return self

    def _load_existing(self) -> None:
        reader = LeRobotDatasetReader(self.root)
        self._tasks = {text: idx for idx, text in reader.tasks.items()}
        self._stats = reader.stats
        if not reader.episodes:
            return
        last = reader.episodes[-1]
        ep_file = reader.episode_files[-1]
        self._episodes_file = ep_file
        self._episodes_table = tables.read_table(self.root / layout.episodes_path(ep_file))
        assert last.data_file is not None
        self._data_file = last.data_file
        self._data_table = tables.read_table(self.root / last.data_path)
        for key, seg in last.videos.items():
            self._video_file[key] = seg.file

    # ------------------------------------------------------------------ properties
    @property
    def video_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.is_video]

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, f in self.features.items() if f.is_camera]

    @property
    def num_episodes(self) -> int:
        return int(self.info["total_episodes"])

    @property
    def num_frames(self) -> int:
        return int(self.info["total_frames"])

    @property
    def episode_frames(self) -> int:
        """Frames added to the episode in progress."""
        return self._n

    # ------------------------------------------------------------------ recording
    def _reset_buffer(self) -> None:
        self._n = 0
        self._values: dict[str, list[np.ndarray]] = {}
        self._pngs: dict[str, list[bytes]] = {}
        self._image_stats: dict[str, stats.ImageStats] = {}
        self._encoders: dict[str, video.SegmentEncoder] = {}

    def _spool(self) -> Path:
        return commit.staging_dir(self.root) / _SPOOL

    def _check_usable(self) -> None:
        if self._closed:
            raise DatasetError(self.root, "writer is finalized")
        if self._failed:
            raise DatasetError(
                self.root, "an earlier save failed; reopen with DatasetWriter.resume(root)"
            )

    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """Validate and buffer one frame (cameras are encoded right away)."""
        self._check_usable()
        expected = [k for k in self.features if k not in DEFAULT_FEATURES]
        for key in frame:
            if key not in self.features or key in DEFAULT_FEATURES:
                raise FrameError(key, type(frame[key]).__name__, "not a feature of this dataset")
        checked: dict[str, np.ndarray] = {}
        for key in expected:
            if key not in frame:
                raise FrameError(key, "missing", "every feature must be in every frame")
            checked[key] = _check_value(self.features[key], frame[key])
        if self._n == 0:
            shutil.rmtree(self._spool(), ignore_errors=True)
            self._spool().mkdir(parents=True)
        for key, value in checked.items():
            feat = self.features[key]
            if feat.is_camera:
                self._image_stats.setdefault(key, stats.ImageStats()).update(value)
                if feat.is_video:
                    enc = self._encoders.get(key)
                    if enc is None:
                        assert self._encoding is not None
                        h, w, _ = feat.shape
                        path = self._spool() / (key.replace("/", "_") + ".mp4")
                        enc = video.SegmentEncoder(path, self.fps, h, w, self._encoding)
                        self._encoders[key] = enc
                    enc.add(value)
                else:
                    self._pngs.setdefault(key, []).append(png_encode(value))
            else:
                self._values.setdefault(key, []).append(value)
        self._n += 1

    def discard_episode(self) -> None:
        """Drop the episode in progress (nothing of it reaches the dataset)."""
        for enc in self._encoders.values():
            enc.abort()
        shutil.rmtree(self._spool(), ignore_errors=True)
        self._reset_buffer()

    def save_episode(self, task: str) -> int:
        """Commit the buffered frames as one episode; returns its episode index.

        If this raises after validation, nothing of the episode reached the dataset (or,
        for a failure during the final renames, :meth:`resume` completes it); the writer
        then refuses further use until reopened with :meth:`resume`.
        """
        self._check_usable()
        if not isinstance(task, str) or not task:
            raise ValueError(f"task={task!r}: must be a non-empty string")
        if self._n == 0:
            raise ValueError("save_episode: no frames were added since the last episode")
        try:
            self._save(task)
        except BaseException:
            self._failed = True
            for enc in self._encoders.values():
                enc.abort()
            raise
        shutil.rmtree(self._spool(), ignore_errors=True)
        self._reset_buffer()
        return self.num_episodes - 1

    def _save(self, task: str) -> None:
        """Stage every file the episode changes, then commit them together."""
        n, ep, start = self._n, self.num_episodes, self.num_frames
        tasks = dict(self._tasks)
        new_task = task not in tasks
        if new_task:
            tasks[task] = len(tasks)
        columns = self._episode_columns(ep, start, tasks[task])
        ep_stats = self._episode_stats(columns)
        ep_table = pa.table(
            [to_arrow(f, columns[f.name]) for f in self.features.values() if not f.is_video],
            schema=self._schema,
        )
        tx = commit.Transaction(self.root, _TXN, self._fsync)
        info = copy.deepcopy(self.info)
        row: dict[str, Any] = {"episode_index": ep, "tasks": [task], "length": n}

        data_file, data_table = self._stage_data(tx, info, ep_table)
        row.update(
            {
                "data/chunk_index": data_file.chunk,
                "data/file_index": data_file.file,
                "dataset_from_index": start,
                "dataset_to_index": start + n,
            }
        )
        video_files = {key: self._stage_video(tx, info, key, row) for key in self._encoders}
        row.update(stats.episode_columns(ep_stats))
        ep_file, ep_rows = self._stage_episode_row(tx, info, row)
        if new_task:
            tables.write_parquet(tables.tasks_table(tasks), tx.stage(layout.TASKS_PATH))
        new_stats = (
            ep_stats if self._stats is None else stats.aggregate_all([self._stats, ep_stats])
        )
        tx.write_bytes(layout.STATS_PATH, layout.json_bytes(stats.to_json(new_stats)))
        info["total_episodes"] = ep + 1
        info["total_frames"] = start + n
        info["total_tasks"] = len(tasks)
        info["splits"] = {"train": f"0:{ep + 1}"}
        tx.write_bytes(layout.INFO_PATH, layout.json_bytes(info))
        tx.commit()

        # the commit succeeded: adopt the new state
        self.info, self._tasks, self._stats = info, tasks, new_stats
        self._data_file, self._data_table = data_file, data_table
        self._episodes_file, self._episodes_table = ep_file, ep_rows
        self._video_file.update(video_files)

    def _stage_data(
        self, tx: commit.Transaction, info: dict[str, Any], ep_table: pa.Table
    ) -> tuple[FileIndex, pa.Table]:
        """The current data file plus the episode's rows, or a new file past the size cap."""
        index, table = self._data_file, None
        if index is not None and self._data_table is not None:
            size = (self.root / layout.data_path(info["data_path"], index)).stat().st_size
            per_row = size / max(self._data_table.num_rows, 1)
            if size + per_row * ep_table.num_rows < info["data_files_size_in_mb"] * _MB:
                table = tables.append_table(self._data_table, ep_table)
            if table is None:
                index = index.next(info["chunks_size"])
        index = index or FileIndex(0, 0)
        table = table if table is not None else ep_table
        tables.write_parquet(table, tx.stage(layout.data_path(info["data_path"], index)))
        return index, table

    def _stage_video(
        self, tx: commit.Transaction, info: dict[str, Any], key: str, row: dict[str, Any]
    ) -> FileIndex:
        """The camera's current mp4 with the episode's segment appended (remuxed), or the
        segment as a new file when over the cap or not stream-compatible."""
        enc, n, fps = self._encoders[key], self._n, self.fps
        if enc.close() != n:
            raise DatasetError(enc.path, f"encoded {enc.frames} frames, expected {n}")
        if "info" not in info["features"][key]:
            info["features"][key]["info"] = video.video_info(enc.path)
        index = self._video_file[key]
        before, appended = 0, False
        if index is not None:
            old = self.root / layout.video_path(info["video_path"], key, index)
            cap = info["video_files_size_in_mb"] * _MB
            fits = old.stat().st_size + enc.path.stat().st_size < cap
            if fits and video.probe(old).can_append(video.probe(enc.path)):
                staged = tx.stage(layout.video_path(info["video_path"], key, index))
                before = video.concat(staged, [old, enc.path], fps) - n
                appended = True
            else:
                index = index.next(info["chunks_size"])
        index = index or FileIndex(0, 0)
        if not appended:
            os.replace(enc.path, tx.stage(layout.video_path(info["video_path"], key, index)))
        row.update(
            {
                f"videos/{key}/chunk_index": index.chunk,
                f"videos/{key}/file_index": index.file,
                f"videos/{key}/from_timestamp": before / fps,
                f"videos/{key}/to_timestamp": (before + n) / fps,
            }
        )
        return index

    def _stage_episode_row(
        self, tx: commit.Transaction, info: dict[str, Any], row: dict[str, Any]
    ) -> tuple[FileIndex, pa.Table]:
        """The current episodes file plus one row (LeRobot caps it with the data size)."""
        index, table = self._episodes_file, None
        if index is not None and self._episodes_table is not None:
            size = (self.root / layout.episodes_path(index)).stat().st_size
            if size < info["data_files_size_in_mb"] * _MB:
                row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = (
                    index.chunk,
                    index.file,
                )
                table = tables.append_table(self._episodes_table, pa.Table.from_pylist([row]))
            if table is None:
                index = index.next(info["chunks_size"])
        index = index or FileIndex(0, 0)
        if table is None:
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = (
                index.chunk,
                index.file,
            )
            table = pa.Table.from_pylist([row])
        tables.write_parquet(table, tx.stage(layout.episodes_path(index)))
        return index, table

    def _episode_columns(self, ep: int, start: int, task_index: int) -> dict[str, Any]:
        n = self._n
        cols: dict[str, Any] = {k: np.stack(v) for k, v in self._values.items()}
        cols.update(self._pngs)
        frame_index = np.arange(n, dtype=np.int64)
        cols["timestamp"] = (frame_index / self.fps).astype(np.float32)
        cols["frame_index"] = frame_index
        cols["episode_index"] = np.full(n, ep, dtype=np.int64)
        cols["index"] = np.arange(start, start + n, dtype=np.int64)
        cols["task_index"] = np.full(n, task_index, dtype=np.int64)
        return cols

    def _episode_stats(self, columns: Mapping[str, Any]) -> dict[str, stats.Stats]:
        out: dict[str, stats.Stats] = {}
        for name, feat in self.features.items():
            if feat.is_camera:
                out[name] = self._image_stats[name].result()
            else:
                out[name] = stats.vector_stats(np.asarray(columns[name]))
        return out

    # ------------------------------------------------------------------ closing
    def finalize(self) -> None:
        """Release the dataset. Refuses while an episode is half recorded."""
        if self._closed:
            return
        if self._n:
            raise ValueError(
                f"finalize: {self._n} frames of an unsaved episode; call save_episode or discard_episode"
            )
        self._close()

    def _close(self) -> None:
        self.discard_episode()
        self._closed = True
        self._lock.release()
        commit.remove_staging_if_idle(self.root)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finalize()
        elif not self._closed:
            self._close()


def _check_appendable(path: Path, display: Path) -> dict[str, Any]:
    """info.json of a v3.0 dataset with features, or a DatasetError naming it."""
    info = layout.read_json(path)
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != layout.CODEBASE_VERSION:
        raise DatasetError(
            display, f"codebase_version {version!r}: only v3.0 datasets can be appended to"
        )
    if not isinstance(info.get("features"), dict):
        raise DatasetError(display, "'features' is missing")
    return info


def _check_value(feat: Feature, value: Any) -> np.ndarray:
    """Validate one frame value against its feature; returns it as numpy."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    desc = f"shape {arr.shape}, dtype {arr.dtype}"
    if feat.is_camera:
        if arr.dtype != np.uint8 or arr.shape != feat.shape:
            raise FrameError(feat.name, desc, f"expected uint8 RGB HWC image of shape {feat.shape}")
        return arr
    if arr.shape == () and feat.is_scalar:
        arr = arr.reshape(1)
    if arr.shape != feat.shape:
        raise FrameError(feat.name, desc, f"expected shape {feat.shape}")
    if feat.dtype == "bool":
        if arr.dtype != np.bool_ and not np.isin(arr, (0, 1)).all():
            raise FrameError(feat.name, desc, "expected booleans (or 0/1)")
        return arr.astype(np.bool_)
    if arr.dtype.kind not in "biuf":
        raise FrameError(feat.name, desc, f"expected numbers ({feat.dtype})")
    out = arr.astype(np.dtype(feat.dtype))
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        raise FrameError(feat.name, desc, "contains NaN or infinity")
    return out
