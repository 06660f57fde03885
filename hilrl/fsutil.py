"""Durability helpers shared by every writer that must not lose data on a crash.

Checkpoints, dataset commits, run-folder records, calibration files and the actor's spool
all follow the same recipe: write to a temporary name beside the target, fsync the file,
rename it into place, fsync the parent folder. :func:`atomic_write_bytes` is that recipe;
a crash at any moment leaves either the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"
"""Ending of the temporary files :func:`atomic_write_bytes` writes (a crash may leave one)."""


def fsync_file(path: str | Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temp_path(path: str | Path) -> Path:
    """The hidden temporary name beside ``path`` that this process and thread write to.

    Unique per process and thread, so concurrent writers of one file never share it; it
    ends in :data:`TMP_SUFFIX` so that clean-ups can recognise a leftover.
    """
    p = Path(path)
    return p.with_name(f".{p.name}.{os.getpid()}-{threading.get_ident()}{TMP_SUFFIX}")


def atomic_write_bytes(path: str | Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data``: temporary file, fsync, rename, fsync the folder.

    ``sync=False`` skips both fsyncs: the replacement is still atomic for other processes
    and against a crash of this one, but a power cut may lose it (for records that are
    cheap to lose and written often). The parent folder must exist.
    """
    p = Path(path)
    tmp = temp_path(p)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if sync:
        fsync_dir(p.parent)


def atomic_write_text(path: str | Path, text: str, *, sync: bool = True) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"), sync=sync)


def atomic_write_json(
    path: str | Path, data: Any, *, indent: int | None = 1, sync: bool = True
) -> None:
    """:func:`atomic_write_bytes` for a JSON document (one trailing newline)."""
    atomic_write_text(path, json.dumps(data, indent=indent) + "\n", sync=sync)
