"""Parquet reading and writing helpers shared by the reader and the writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hilrl.data.lerobot.errors import DatasetError
from hilrl.data.lerobot.features import Feature, arrow_type, hf_feature

TASK_INDEX_COLUMN = "__index_level_0__"
"""pandas' name for an unnamed index: LeRobot writes ``DataFrame({"task_index": ...},
index=tasks).to_parquet()``, so the task strings live in this column."""


def read_table(
    path: Path, columns: list[str] | None = None, display: str | None = None
) -> pa.Table:
    """Read a parquet file; any failure becomes a :class:`DatasetError` naming the file."""
    name = display or str(path)
    if not path.is_file():
        raise DatasetError(name, "file not found")
    try:
        return pq.read_table(path, columns=columns, memory_map=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DatasetError(name, f"cannot read parquet ({exc})") from exc


def data_schema(features: list[Feature]) -> pa.Schema:
    """Schema of a data file: one column per non-video feature, in feature order."""
    cols = [f for f in features if f.dtype != "video"]
    hf = {f.name: hf_feature(f) for f in cols}
    return pa.schema(
        [pa.field(f.name, arrow_type(f)) for f in cols],
        metadata={"huggingface": json.dumps({"info": {"features": hf}})},
    )


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write with LeRobot's settings (snappy, dictionary encoding)."""
    pq.write_table(table, path, compression="snappy", use_dictionary=True)


def append_table(old: pa.Table | None, new: pa.Table) -> pa.Table | None:
    """``old`` followed by ``new``, or ``None`` when their schemas cannot be merged."""
    if old is None or old.num_rows == 0:
        return new
    try:
        merged = pa.concat_tables([old, new], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return merged.replace_schema_metadata(old.schema.metadata)


def tasks_table(tasks: dict[str, int]) -> pa.Table:
    """``meta/tasks.parquet`` as pandas would write it: ``task_index`` + task-string index."""
    ordered = sorted(tasks.items(), key=lambda kv: kv[1])
    pandas_meta = {
        "index_columns": [TASK_INDEX_COLUMN],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": TASK_INDEX_COLUMN,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    schema = pa.schema(
        [pa.field("task_index", pa.int64()), pa.field(TASK_INDEX_COLUMN, pa.string())],
        metadata={"pandas": json.dumps(pandas_meta)},
    )
    return pa.table(
        {"task_index": [i for _, i in ordered], TASK_INDEX_COLUMN: [t for t, _ in ordered]},
        schema=schema,
    )


def read_tasks(path: Path, display: str) -> dict[int, str]:
    """Task index -> task string from ``meta/tasks.parquet`` (pandas-index or ``task`` column)."""
    table = read_table(path, display=display)
    names = table.column_names
    if "task_index" not in names:
        raise DatasetError(display, "has no 'task_index' column")
    text_col = next(
        (c for c in ("task", TASK_INDEX_COLUMN) if c in names),
        None,
    )
    if text_col is None:
        meta = table.schema.metadata or {}
        try:
            index_cols = json.loads(meta.get(b"pandas", b"{}")).get("index_columns", [])
        except ValueError:
            index_cols = []
        text_col = next((c for c in index_cols if isinstance(c, str) and c in names), None)
    if text_col is None:
        raise DatasetError(display, "has no task-string column (pandas index or 'task')")
    indices = table.column("task_index").to_pylist()
    texts = table.column(text_col).to_pylist()
    out: dict[int, str] = {}
    for i, t in zip(indices, texts):
        if not isinstance(i, int) or not isinstance(t, str):
            raise DatasetError(display, f"bad task row ({i!r}, {t!r})")
        out[i] = t
    return out


def rows(table: pa.Table) -> list[dict[str, Any]]:
    return table.to_pylist()
