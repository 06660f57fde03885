"""The actor's disk spool: messages the learner has not acknowledged yet, one file each.

Files are the payload bytes themselves (safetensors), written atomically (temporary file,
then rename), so a crash leaves either a whole message or none. Names carry the order:

* ``m-<sequence>-<kind>.safetensors``: numbered; may already have reached the learner,
  which drops it as a duplicate if so;
* ``p-<local>-<kind>.safetensors``: not numbered yet (written before this actor ever
  completed a handshake), so it never left the machine and gets a number after the
  next handshake.

A lock file keeps two actor processes with the same id from sharing one spool.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

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

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
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
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.total_bytes += len(payload)

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
        return new

    def read(self, path: Path) -> bytes:
        return path.read_bytes()

    def delete(self, path: Path) -> None:
        try:
            size = path.stat().st_size
            path.unlink()
            self.total_bytes -= size
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if not self._lock_file.closed:
            self._lock_file.close()
