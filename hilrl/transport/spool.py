"""The actor's disk spool: messages the learner has not acknowledged yet, one file each.

Files are the payload bytes themselves (safetensors), written atomically (temporary file,
then rename), so a crash of the process leaves either a whole message or none.

Syncing to disk is deferred: a file is fsynced once it has stayed ``sync_after_s`` in the
spool (and every file left at :meth:`Spool.close`). Most spooled messages are a burst
overflowing the in-memory backlog and are resent and deleted within a second or two; they
never need to reach the disk, and an fsync per 3 MB message cost the actor ~25% of its
throughput. What the deferral risks is bounded: a power cut of the actor's computer loses
at most the last ``sync_after_s`` of spooled messages, less than the in-memory backlog
that such a cut loses anyway. Names carry the order:

* ``m-<sequence>-<kind>.safetensors``: numbered; may already have reached the learner,
  which drops it as a duplicate if so;
* ``p-<local>-<kind>.safetensors``: not numbered yet (written before this actor ever
  completed a handshake), so it never left the machine and gets a number after the
  next handshake.

A lock file keeps two actor processes with the same id from sharing one spool.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hilrl.fsutil import atomic_write_bytes, fsync_dir, fsync_file
from hilrl.transport.errors import SpoolLocked

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, documented
    fcntl = None  # type: ignore[assignment]

_NAME = re.compile(r"^(m|p)-(\d{20})-(t|e)\.safetensors$")
KIND_CODES = {"t": 1, "e": 2}
"""Spool file kind letter -> proto Kind (transitions, episode)."""
_CODES = {v: k for k, v in KIND_CODES.items()}


@dataclass
class SpoolEntry:
    path: Path
    kind: int
    sequence: int | None
    """None while not numbered (a ``p-`` file)."""
    local: int
    nbytes: int


class Spool:
    """One actor's spool folder; not thread-safe (the sender thread owns it)."""

    def __init__(self, root: Path, max_bytes: int, sync_after_s: float = 0.0) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.sync_after_s = sync_after_s
        self._unsynced: dict[Path, float] = {}
        """Files written but not fsynced yet -> when written (oldest first)."""
        self.files_synced = 0
        root.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(root / ".lock", "w")  # noqa: SIM115 - held for the spool's life
        if fcntl is not None:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self._lock_file.close()
                raise SpoolLocked(
                    f"another actor process uses the spool {root}: give every running actor its own actor_id"
                ) from exc
        for stale in root.glob("*.tmp"):
            stale.unlink(missing_ok=True)
        self.total_bytes = 0
        self._next_local = 0
        for entry in self.entries():
            self.total_bytes += entry.nbytes
            self._next_local = max(self._next_local, entry.local + 1)

    def entries(self) -> list[SpoolEntry]:
        """Spooled messages in sending order: numbered by sequence, then unnumbered."""
        out: list[SpoolEntry] = []
        for path in self.root.iterdir():
            m = _NAME.match(path.name)
            if not m:
                continue
            number = int(m.group(2))
            numbered = m.group(1) == "m"
            out.append(
                SpoolEntry(
                    path=path,
                    kind=KIND_CODES[m.group(3)],
                    sequence=number if numbered else None,
                    local=0 if numbered else number,
                    nbytes=path.stat().st_size,
                )
            )
        out.sort(key=lambda e: (e.sequence is None, e.sequence or 0, e.local))
        return out

    def _write(self, path: Path, payload: bytes) -> None:
        sync = self.sync_after_s <= 0
        atomic_write_bytes(path, payload, sync=sync)
        self.total_bytes += len(payload)
        if sync:
            self.files_synced += 1
        else:
            self._unsynced[path] = time.monotonic()

    def sync(self, older_than_s: float | None = None) -> int:
        """fsync the files written at least ``older_than_s`` ago (None: all); returns how many.

        Cheap when nothing is due (it looks at the oldest file only).
        """
        now = time.monotonic()
        done = 0
        while self._unsynced:
            path, written = next(iter(self._unsynced.items()))
            if older_than_s is not None and now - written < older_than_s:
                break
            del self._unsynced[path]
            try:
                fsync_file(path)
            except FileNotFoundError:
                continue
            done += 1
        if done:
            fsync_dir(self.root)
            self.files_synced += done
        return done

    def sync_due(self) -> int:
        """fsync what has waited ``sync_after_s``: call it often (the sender loop does)."""
        return self.sync(self.sync_after_s) if self._unsynced else 0

    @property
    def unsynced(self) -> int:
        """Files in the spool not fsynced yet."""
        return len(self._unsynced)

    def write(self, kind: int, payload: bytes, sequence: int | None) -> Path:
        """Store one message; ``sequence`` None writes an unnumbered (``p-``) file."""
        if sequence is None:
            path = self.root / f"p-{self._next_local:020d}-{_CODES[kind]}.safetensors"
            self._next_local += 1
        else:
            path = self.root / f"m-{sequence:020d}-{_CODES[kind]}.safetensors"
        self._write(path, payload)
        return path

    def number(self, path: Path, kind: int, sequence: int) -> Path:
        """Give an unnumbered file its sequence number (before it is ever sent)."""
        new = self.root / f"m-{sequence:020d}-{_CODES[kind]}.safetensors"
        os.replace(path, new)
        written = self._unsynced.pop(path, None)
        if written is not None:
            self._unsynced[new] = written
        return new

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def delete(self, path: Path) -> None:
        self._unsynced.pop(path, None)
        try:
            size = path.stat().st_size
            path.unlink()
            self.total_bytes -= size
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """fsync every file still waiting for it, then release the lock."""
        if not self._lock_file.closed:
            self.sync()
            self._lock_file.close()


# ------------------------------------------------------------------ spools of runs

NO_RUN = "_no_run"
"""Run folder of an actor whose learner had no run id (embedded use and tests)."""


def spool_root(spool_dir: Path, run_id: str, actor_id: str) -> Path:
    """``<spool_dir>/<run id>/<actor id>``: a spool belongs to one run and one actor."""
    return spool_dir / (run_id or NO_RUN) / actor_id


@dataclass
class RunSpool:
    """A spool folder of one actor id in one run, and what it holds."""

    path: Path
    run_id: str
    """"" for the :data:`NO_RUN` folder (old versions used it for actors without a run id)."""
    messages: int
    nbytes: int


def _messages(folder: Path) -> tuple[int, int]:
    count = size = 0
    for path in folder.iterdir():
        if _NAME.match(path.name):
            count += 1
            size += path.stat().st_size
    return count, size


def foreign_spools(spool_dir: Path, actor_id: str, run_id: str) -> list[RunSpool]:
    """Spools of ``actor_id`` left by runs other than ``run_id`` that still hold messages.

    They are never sent to ``run_id``'s learner: the actor reports them and leaves them
    where they are (the data is the user's, to resend with that run or to delete).
    """
    out: list[RunSpool] = []
    if not spool_dir.is_dir():
        return out
    for run_folder in sorted(spool_dir.iterdir()):
        folder = run_folder / actor_id
        if run_folder.name == (run_id or NO_RUN) or not folder.is_dir():
            continue
        count, size = _messages(folder)
        if count:
            name = "" if run_folder.name == NO_RUN else run_folder.name
            out.append(RunSpool(folder, name, count, size))
    return out


def remove_run_spools(spool_dir: Path, run_id: str) -> list[RunSpool]:
    """Delete every actor's spool of ``run_id`` (a finished run); returns what was removed.

    For ``hilrl train`` at a clean end: its learner has written its final checkpoint, so
    the unconfirmed copies left in the spools can never be needed by that run again.
    Folders another process still locks (an actor still running) are left alone.
    """
    removed: list[RunSpool] = []
    run_folder = spool_dir / (run_id or NO_RUN)
    if not run_id or not run_folder.is_dir():
        return removed
    for folder in sorted(p for p in run_folder.iterdir() if p.is_dir()):
        lock = folder / ".lock"
        if fcntl is not None and lock.exists():
            with open(lock, "w") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # an actor still uses it
                count, size = _messages(folder)
                shutil.rmtree(folder, ignore_errors=True)
        else:
            count, size = _messages(folder)
            shutil.rmtree(folder, ignore_errors=True)
        removed.append(RunSpool(folder, run_id, count, size))
    with contextlib.suppress(OSError):
        run_folder.rmdir()
    return removed
