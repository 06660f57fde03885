"""The actor's disk spool: atomic files, order, deferred fsync."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hilrl.transport import spool as spool_mod
from hilrl.transport.errors import SpoolLocked
from hilrl.transport.spool import Spool


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the fsync calls made on behalf of the spool (files and its folder)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_immediate_mode_fsyncs_every_write(tmp_path: Path, fsyncs: list[int]) -> None:
    sp = Spool(tmp_path, 1 << 20, sync_after_s=0.0)
    sp.write(1, b"abc", 7)
    assert len(fsyncs) >= 1 and sp.files_synced == 1 and sp.unsynced == 0
    sp.close()


def test_deferred_mode_syncs_only_what_stays(tmp_path: Path, fsyncs: list[int]) -> None:
    sp = Spool(tmp_path, 1 << 20, sync_after_s=60.0)
    short = sp.write(1, b"resent soon", 1)
    kept = sp.write(1, b"stays", 2)
    assert fsyncs == [] and sp.unsynced == 2
    assert sp.sync_due() == 0 and fsyncs == []  # nothing has waited 60 s
    sp.delete(short)  # acknowledged and deleted before its time: never synced
    assert sp.unsynced == 1
    assert sp.sync(older_than_s=0.0) == 1
    assert sp.files_synced == 1 and sp.unsynced == 0 and len(fsyncs) == 2  # file + folder
    assert kept.read_bytes() == b"stays"
    sp.close()


def test_due_files_are_synced_oldest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(spool_mod.time, "monotonic", lambda: now[0])
    synced: list[str] = []
    monkeypatch.setattr(spool_mod, "fsync_file", lambda p: synced.append(Path(p).name))
    sp = Spool(tmp_path, 1 << 20, sync_after_s=2.0)
    sp.write(1, b"a", 1)
    now[0] = 101.0
    sp.write(1, b"b", 2)
    now[0] = 102.5  # the first has waited 2.5 s, the second 1.5 s
    assert sp.sync_due() == 1
    assert synced == ["m-00000000000000000001-t.safetensors"]
    now[0] = 103.0
    assert sp.sync_due() == 1 and sp.unsynced == 0
    sp.close()


def test_numbering_keeps_a_file_pending_and_close_syncs_the_rest(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    sp = Spool(tmp_path, 1 << 20, sync_after_s=60.0)
    unnumbered = sp.write(2, b"episode", None)
    numbered = sp.number(unnumbered, 2, 5)
    assert not unnumbered.exists() and numbered.read_bytes() == b"episode"
    assert sp.unsynced == 1
    sp.close()  # a clean shutdown leaves every spooled file on disk
    assert sp.unsynced == 0 and sp.files_synced == 1 and fsyncs
    again = Spool(tmp_path, 1 << 20)
    assert [e.sequence for e in again.entries()] == [5] and again.total_bytes == len(b"episode")
    again.close()


def test_a_second_process_cannot_share_the_spool(tmp_path: Path) -> None:
    sp = Spool(tmp_path, 1 << 20)
    with pytest.raises(SpoolLocked, match="actor_id"):
        Spool(tmp_path, 1 << 20)
    sp.close()
