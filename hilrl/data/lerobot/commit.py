"""All-or-nothing updates of several dataset files, and the writer's lock.

Saving an episode changes up to six files (data parquet, one mp4 per camera, episodes
parquet, tasks, info.json, stats.json). Each new version is written in full to the
staging folder first; then a journal listing ``staged -> final`` renames is written and
renamed into place — the commit point — and the renames are applied. After a crash:

* before the commit point, the dataset's own files were never touched: recovery deletes
  the staged files;
* after it, recovery replays the journal (each rename is idempotent), so the episode
  lands completely.

Readers never modify the dataset: they call :func:`redirects` and read a staged file in
place of its final path while a journal is pending.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from hilrl.data.lerobot.errors import DatasetError
from hilrl.data.lerobot.layout import STAGING_DIR
from hilrl.fsutil import atomic_write_text, fsync_dir, fsync_file

JOURNAL = "journal.json"
LOCK = "writer.lock"


def staging_dir(root: Path) -> Path:
    return root / STAGING_DIR


class Transaction:
    """Collects staged files and commits them with one journal write."""

    def __init__(self, root: Path, name: str, fsync: bool = True) -> None:
        self.root = root
        self.dir = staging_dir(root) / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.fsync = fsync
        self._renames: list[tuple[str, str]] = []

    def stage(self, final_rel: str) -> Path:
        """A fresh staging path that will replace ``root / final_rel`` on commit."""
        name = f"{len(self._renames):03d}-" + final_rel.replace("/", "__")
        path = self.dir / name
        self._renames.append((str(path.relative_to(self.root)), final_rel))
        return path

    def write_bytes(self, final_rel: str, data: bytes) -> None:
        self.stage(final_rel).write_bytes(data)

    def commit(self) -> None:
        """Make every staged file final, atomically as a group."""
        if self.fsync:
            for staged, _ in self._renames:
                fsync_file(self.root / staged)
        journal = staging_dir(self.root) / JOURNAL
        # the commit point (its temporary file, if a crash leaves one, is staging to drop)
        atomic_write_text(journal, json.dumps({"renames": self._renames}), sync=self.fsync)
        apply_journal(self.root)
        shutil.rmtree(self.dir, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _load_journal(root: Path) -> list[tuple[str, str]] | None:
    path = staging_dir(root) / JOURNAL
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return [(str(a), str(b)) for a, b in data["renames"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # The journal is written to a temp name and renamed, so it is never partial.
        raise DatasetError(path, f"unreadable commit journal ({exc})") from exc


def apply_journal(root: Path) -> None:
    """Finish a committed transaction (idempotent), then forget it."""
    renames = _load_journal(root)
    if renames is None:
        return
    parents: set[Path] = set()
    for staged, final in renames:
        src, dst = root / staged, root / final
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
            parents.add(dst.parent)
    for parent in parents:
        fsync_dir(parent)
    (staging_dir(root) / JOURNAL).unlink()


def recover(root: Path) -> None:
    """Writer-side crash recovery: replay a committed journal, drop uncommitted files."""
    apply_journal(root)
    staging = staging_dir(root)
    if staging.is_dir():
        for child in staging.iterdir():
            if child.name == LOCK:
                continue
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()


def redirects(root: Path) -> dict[str, Path]:
    """Reader-side view of a pending journal: final path -> staged file still to rename."""
    renames = _load_journal(root)
    if not renames:
        return {}
    return {final: root / staged for staged, final in renames if (root / staged).exists()}


class WriterLock:
    """An exclusive advisory lock so two writers never interleave commits."""

    def __init__(self, root: Path) -> None:
        staging = staging_dir(root)
        staging.mkdir(parents=True, exist_ok=True)
        self.path = staging / LOCK
        self._file: IO[str] | None = open(self.path, "a")  # noqa: SIM115
        try:
            import fcntl  # optional: POSIX only; elsewhere the writer runs without a lock

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - non-POSIX: no advisory lock
            pass
        except OSError as exc:
            self._file.close()
            self._file = None
            raise DatasetError(root, "another DatasetWriter has this dataset open") from exc

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def remove_staging_if_idle(root: Path) -> None:
    """Delete the staging folder when nothing is left in it but the lock."""
    staging = staging_dir(root)
    if not staging.is_dir():
        return
    leftovers: list[Any] = [c for c in staging.iterdir() if c.name != LOCK]
    if not leftovers:
        shutil.rmtree(staging, ignore_errors=True)
