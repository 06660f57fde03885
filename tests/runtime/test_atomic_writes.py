"""hilrl.fsutil's atomic writes: old file or new file after any failure, fsynced when asked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hilrl import fsutil
from hilrl.fsutil import TMP_SUFFIX, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_writes_replace_the_file_and_leave_no_temporary_behind(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write_text(path, "old")
    atomic_write_json(path, {"a": [1, 2]}, indent=None)
    assert path.read_text() == '{"a": [1, 2]}\n'
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "calibration.json"
    atomic_write_json(path, {"v": 1})

    def crash(src: object, dst: object) -> None:
        assert Path(str(src)).name.endswith(TMP_SUFFIX) and Path(str(src)).is_file()
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["calibration.json"]


@pytest.mark.parametrize("sync", [True, False])
def test_sync_fsyncs_the_file_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: bool
) -> None:
    files: list[int] = []
    folders: list[Path] = []
    monkeypatch.setattr(os, "fsync", lambda fd: files.append(fd))
    monkeypatch.setattr(fsutil, "fsync_dir", lambda p: folders.append(Path(p)))
    atomic_write_text(tmp_path / "x.txt", "x", sync=sync)
    assert (len(files), folders) == ((1, [tmp_path]) if sync else (0, []))
