"""Checkpoint integrity: altered or truncated files never load silently, --resume and eval
fall back to the newest intact checkpoint, crashed saves leave nothing behind, and older
checkpoints without hashes still load."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from eval_helpers import COUNTERS, STEP, make_run, make_sac, tiny_root

from hilrl.config.loader import ConfigError
from hilrl.policies.encoder import ObservationSpec
from hilrl.runtime import checkpoint as ckpt
from hilrl.runtime.checkpoint import (
    MARKER,
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    newest_intact_checkpoint,
    read_meta,
    read_part,
    remove_stale_temps,
    restore_checkpoint,
    save_checkpoint,
)
from hilrl.runtime.policy_io import load_policy
from hilrl.runtime.run_dir import prepare_run

LOGGER = "hilrl.runtime.checkpoint"
WEIGHTS = "algorithm-00000.safetensors"


class Tiny:
    """The smallest algorithm a checkpoint accepts: two tensors and an architecture."""

    def __init__(self, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(64, 32, generator=g)
        self.b = torch.randn(32, generator=g)

    def state_dict(self) -> dict[str, object]:
        return {"tensors": {"w": self.w, "b": self.b}, "meta": {"kind": "tiny"}}

    def load_state_dict(self, state: object) -> None:
        tensors = state["tensors"]  # type: ignore[index]
        self.w, self.b = tensors["w"].clone(), tensors["b"].clone()

    def architecture(self) -> dict[str, list[int]]:
        return {"w": [64, 32], "b": [32]}

    def architecture_config(self) -> dict[str, object]:
        return {"hidden": 32}


def _overwrite_middle(path: Path, count: int = 64) -> None:
    """Flip bytes inside the tensor data (the end of the file), keeping its size."""
    data = bytearray(path.read_bytes())
    start = len(data) - count - 16
    for i in range(start, start + count):
        data[i] ^= 0x5A
    with open(path, "r+b") as f:  # in place: same inode, same size
        f.write(bytes(data))


def _truncate(path: Path, keep: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(keep)


def _strip_hashes(folder: Path) -> None:
    """Turn a checkpoint into the older format: a marker that holds only the step."""
    step = json.loads((folder / MARKER).read_text())["step"]
    (folder / MARKER).write_text(json.dumps({"step": step}))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_marker_records_hash_and_size_of_every_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 3, Tiny(0))
    marker = json.loads((path / MARKER).read_text())
    on_disk = sorted(p.name for p in path.iterdir() if p.name != MARKER)
    assert marker["step"] == 3 and marker["hash"] == "sha256"
    assert sorted(marker["files"]) == on_disk
    for name, entry in marker["files"].items():
        assert entry["bytes"] == (path / name).stat().st_size
        assert entry["sha256"] == ckpt.file_sha256(path / name)


def test_overwritten_weight_bytes_raise_naming_the_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, Tiny(0))
    _overwrite_middle(path / WEIGHTS)
    target = Tiny(9)
    before = target.w.clone()
    with pytest.raises(CheckpointError, match="hash mismatch") as err:
        restore_checkpoint(path, target)
    assert str(path / WEIGHTS) in str(err.value)
    assert torch.equal(target.w, before)  # a refused load changes nothing
    with pytest.raises(CheckpointError, match=f"{WEIGHTS}.*hash mismatch"):
        read_part(path, "algorithm")


def test_overwritten_policy_weights_are_refused_by_eval(tmp_path: Path) -> None:
    """`hilrl eval` loads through load_policy: altered weights must not act silently."""
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    _overwrite_middle(folder / WEIGHTS)
    with pytest.raises(CheckpointError, match="hash mismatch") as err:
        load_policy(folder)
    assert str(folder / WEIGHTS) in str(err.value)
    with pytest.raises(CheckpointError, match="no intact checkpoint") as err:
        load_policy(run)
    assert WEIGHTS in str(err.value)


def test_truncated_tensor_file_is_one_line_error_naming_it(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, Tiny(0))
    _truncate(path / WEIGHTS, 100)
    with pytest.raises(CheckpointError, match="size mismatch") as err:
        restore_checkpoint(path, Tiny(1))
    assert str(path / WEIGHTS) in str(err.value) and "\n" not in str(err.value)

    # Without recorded hashes (older checkpoints) the parse error is wrapped the same way.
    _strip_hashes(path)
    for load in (lambda: restore_checkpoint(path, Tiny(1)), lambda: read_part(path, "algorithm")):
        with pytest.raises(CheckpointError) as err:
            load()
        assert type(err.value) is CheckpointError
        assert str(path / WEIGHTS) in str(err.value) and "unreadable safetensors" in str(err.value)
        assert "\n" not in str(err.value)


def test_truncated_policy_file_without_hashes_is_a_checkpoint_error(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    _strip_hashes(folder)
    _truncate(folder / WEIGHTS, 200)
    with pytest.raises(CheckpointError, match="unreadable safetensors") as err:
        load_policy(folder)
    assert str(folder / WEIGHTS) in str(err.value) and "\n" not in str(err.value)


def test_unparsable_json_is_a_checkpoint_error_naming_the_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, Tiny(0))
    _strip_hashes(path)
    (path / "rng.json").write_text('{"files": ["rng-0')
    with pytest.raises(CheckpointError, match="unreadable part index") as err:
        restore_checkpoint(path, Tiny(1))
    assert str(path / "rng.json") in str(err.value)
    (path / "meta.json").write_text("not json")
    with pytest.raises(CheckpointError, match=r"unreadable meta\.json") as err:
        read_meta(path)
    assert str(path / "meta.json") in str(err.value)
    (path / MARKER).write_text("{")
    with pytest.raises(CheckpointError, match="unreadable COMPLETE marker") as err:
        read_part(path, "algorithm")
    assert str(path / MARKER) in str(err.value)


@pytest.mark.parametrize("damage", ["overwrite", "truncate", "delete", "truncate-old-format"])
def test_latest_checkpoint_skips_a_corrupt_newest_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    run = tmp_path / "run"
    tmp_path = run / "checkpoints"
    older = save_checkpoint(tmp_path, 1, Tiny(1))
    newest = save_checkpoint(tmp_path, 2, Tiny(2))
    if damage == "overwrite":
        _overwrite_middle(newest / WEIGHTS)
    elif damage == "truncate":
        _truncate(newest / WEIGHTS, 10)
    elif damage == "truncate-old-format":  # no hashes: the tensor file's own header tells
        _strip_hashes(newest)
        _truncate(newest / WEIGHTS, (newest / WEIGHTS).stat().st_size - 8)
    else:
        (newest / WEIGHTS).unlink()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert latest_checkpoint(tmp_path) == older
    warnings = [r.getMessage() for r in caplog.records if "skipping" in r.getMessage()]
    assert len(warnings) == 1 and str(newest) in warnings[0] and WEIGHTS in warnings[0]
    found, skipped = newest_intact_checkpoint(tmp_path, warn=False)
    assert found == older
    assert [p for p, _ in skipped] == [newest] and str(newest) in skipped[0][1]
    target = Tiny(9)
    info = restore_checkpoint(latest_checkpoint(tmp_path), target)  # type: ignore[arg-type]
    assert info.step == 1 and torch.equal(target.w, Tiny(1).w)
    # Everything corrupt: nothing to resume from, and the reason is given.
    _overwrite_middle(older / WEIGHTS)
    found, skipped = newest_intact_checkpoint(tmp_path, warn=False)
    assert found is None and [p for p, _ in skipped] == [newest, older]
    with pytest.raises(
        ConfigError, match="no complete checkpoint to resume from that is intact"
    ) as err:
        prepare_run(run, resume=True)
    assert err.value.field == "run.output_dir" and str(newest) in str(err.value)


def test_resume_and_eval_fall_back_to_the_older_intact_checkpoint(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run, _ = make_run(tmp_path, step=5)
    newer = make_sac(ObservationSpec(9), seed=3)
    newest = save_checkpoint(run / "checkpoints", 9, newer, config=tiny_root(), counters=COUNTERS)
    _overwrite_middle(newest / WEIGHTS)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _, _, step = load_policy(run)
        prepare_run(run, resume=True)
    assert step == 5
    assert any(str(newest) in r.getMessage() for r in caplog.records)


def test_crashed_save_folders_are_removed(tmp_path: Path) -> None:
    first = save_checkpoint(tmp_path, 1, Tiny(0))
    dead = _dead_pid()
    stale = tmp_path / f".tmp-step_000000002-{dead}-0123abcd"
    stale.mkdir()
    (stale / "replay-00000.safetensors").write_bytes(b"x" * 1000)
    live = tmp_path / f".tmp-step_000000003-{os.getpid()}-0123abcd"  # a save in progress
    live.mkdir()
    # A crash between the two renames of a re-save: the old copy is the only one left.
    os.replace(first, tmp_path / f".old-step_000000001-{dead}-89abcdef")
    moved_aside = tmp_path / ".old-step_000000004-fedcba98"  # older name without a pid
    moved_aside.mkdir()
    (tmp_path / "step_000000004").mkdir()

    save_checkpoint(tmp_path, 5, Tiny(0))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [live.name, "step_000000001", "step_000000004", "step_000000005"]
    assert restore_checkpoint(first, Tiny(1)).step == 1  # restored into place, intact

    live.rename(tmp_path / f".tmp-step_000000003-{dead}-0123abcd")
    assert [p.name for p in remove_stale_temps(tmp_path)] == [
        f".tmp-step_000000003-{dead}-0123abcd"
    ]
    assert remove_stale_temps(tmp_path) == []
    assert remove_stale_temps(tmp_path / "missing") == []


def test_run_start_removes_crashed_save_folders(tmp_path: Path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    stale = checkpoints / f".tmp-step_000000002-{_dead_pid()}-0123abcd"
    stale.mkdir()
    prepare_run(tmp_path / "run", resume=False)
    assert not stale.exists()


def test_old_marker_without_hashes_still_loads_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = save_checkpoint(tmp_path, 4, Tiny(4))
    _strip_hashes(path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(3):
            target = Tiny(0)
            assert restore_checkpoint(path, target).step == 4
            assert torch.equal(target.w, Tiny(4).w)
        assert latest_checkpoint(tmp_path) == path
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0] and "cannot be verified" in warnings[0]


def test_old_checkpoint_without_hashes_loads_for_eval_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    _strip_hashes(folder)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _, _, step = load_policy(run)
    assert step == STEP
    assert any(
        str(folder) in r.getMessage() and "cannot be verified" in r.getMessage()
        for r in caplog.records
    )


def test_a_file_added_after_saving_is_not_trusted(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path, 1, Tiny(0))
    index = json.loads((path / "algorithm.json").read_text())
    index["files"].append("algorithm-00001.safetensors")
    (path / "algorithm.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"algorithm\.json.*(hash|size) mismatch"):
        read_part(path, "algorithm")


def test_pruning_never_deletes_the_checkpoint_just_saved(tmp_path: Path) -> None:
    """After resuming from an older checkpoint, new steps sort before a skipped newer one."""
    save_checkpoint(tmp_path, 30, Tiny(0))
    saved = save_checkpoint(tmp_path, 20, Tiny(0), keep_last=1)
    assert list_checkpoints(tmp_path) == [saved]
