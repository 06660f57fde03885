"""Where things live in a LeRobotDataset folder, and the defaults of ``meta/info.json``.

The constants follow LeRobot's own definitions (``lerobot/datasets/utils.py``, v0.4.x;
see ``docs/dataset_format.md`` for the sources). v3.0 stores many episodes per file;
v2.0/v2.1 stored one parquet (and one mp4 per camera) per episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hilrl.data.lerobot.errors import DatasetError

CODEBASE_VERSION = "v3.0"
LEGACY_VERSIONS = ("v2.0", "v2.1")
"""Older layouts the reader understands (one file per episode)."""

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

LEGACY_EPISODES_PATH = "meta/episodes.jsonl"
LEGACY_EPISODES_STATS_PATH = "meta/episodes_stats.jsonl"
LEGACY_TASKS_PATH = "meta/tasks.jsonl"
LEGACY_DATA_PATH = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
LEGACY_VIDEO_PATH = "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"

DEFAULT_CHUNKS_SIZE = 1000
"""Files per ``chunk-XXX`` folder (LeRobot ``DEFAULT_CHUNK_SIZE``)."""
DEFAULT_DATA_FILE_SIZE_IN_MB = 100
"""A data / episodes parquet file rolls over to a new file past this size."""
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200
"""A video file rolls over to a new file past this size."""

STAGING_DIR = ".hilrl-staging"
"""Hidden folder inside the dataset where the writer prepares files before committing.

Inside the dataset root so that the final ``os.replace`` never crosses a file system;
outside ``data/``, ``videos/`` and ``meta/`` so that LeRobot's globbing never sees it.
"""


@dataclass(frozen=True, order=True)
class FileIndex:
    """The ``(chunk_index, file_index)`` pair that names one data, video or episodes file."""

    chunk: int
    file: int

    def next(self, chunks_size: int) -> FileIndex:
        """The file after this one: a new chunk folder once ``chunks_size`` files are in it."""
        if self.file >= chunks_size - 1:
            return FileIndex(self.chunk + 1, 0)
        return FileIndex(self.chunk, self.file + 1)


def data_path(template: str, index: FileIndex) -> str:
    return template.format(chunk_index=index.chunk, file_index=index.file)


def video_path(template: str, video_key: str, index: FileIndex) -> str:
    return template.format(video_key=video_key, chunk_index=index.chunk, file_index=index.file)


def episodes_path(index: FileIndex) -> str:
    return EPISODES_PATH.format(chunk_index=index.chunk, file_index=index.file)


def new_info(
    fps: int,
    features: dict[str, dict[str, Any]],
    robot_type: str | None,
    has_video: bool,
    chunks_size: int = DEFAULT_CHUNKS_SIZE,
    data_files_size_in_mb: float = DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: float = DEFAULT_VIDEO_FILE_SIZE_IN_MB,
) -> dict[str, Any]:
    """``meta/info.json`` of an empty v3.0 dataset, keys in LeRobot's order."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": chunks_size,
        "data_files_size_in_mb": data_files_size_in_mb,
        "video_files_size_in_mb": video_files_size_in_mb,
        "fps": fps,
        "splits": {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": features,
    }


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a :class:`DatasetError` naming it."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(path, f"not valid JSON ({exc})") from exc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (v2.x metadata); blank lines are skipped."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    rows: list[dict[str, Any]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(path, f"cannot read ({exc})") from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, f"line {n} is not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise DatasetError(path, f"line {n} is not a JSON object")
        rows.append(row)
    return rows


def json_bytes(data: Any) -> bytes:
    """JSON as LeRobot writes it: indent 4, UTF-8 kept as is."""
    return (json.dumps(data, indent=4, ensure_ascii=False) + "\n").encode("utf-8")
