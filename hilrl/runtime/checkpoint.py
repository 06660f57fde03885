"""Atomic, verified checkpoints of the full training state.

Layout of one checkpoint::

    <dir>/step_000012000/
        meta.json                 step, counters, config, architecture + its hash, parts
        algorithm-00000.safetensors, algorithm.json      networks, optimisers, temperature
        replay-00000.safetensors ..., replay.json        replay buffers (sharded at 1 GiB)
        sampler-00000.safetensors, sampler.json          sampler random generators
        rng-00000.safetensors, rng.json                  torch / numpy / python RNG states
        COMPLETE                                         written last: step, and the sha256
                                                         and size of every other file

Saving writes everything into a hidden temporary folder, fsyncs every file, writes the
``COMPLETE`` marker, renames the folder into place and fsyncs the parent; only then are
old checkpoints pruned (reference defect 8: a crash while saving never loses the previous
checkpoint). Temporary folders left by a crashed save (``.tmp-step_*-<pid>-*``) are
removed when the next save starts, or by :func:`remove_stale_temps`.

Loading refuses a folder without the marker, a file whose size or sha256 differs from
what the marker recorded (overwritten or truncated bytes never load silently), and a
checkpoint whose architecture differs from the model it is loaded into, naming the
parameter; nothing is ever silently re-initialised. Every such problem, and any file that
does not parse, is a one-line :class:`CheckpointError` naming the file. Markers of older
checkpoints hold no hashes: those still load, with a one-time warning.
:func:`latest_checkpoint` returns the newest *intact* checkpoint, skipping (with a
warning) corrupt newer ones. Tensors go through safetensors, metadata through JSON: no
pickle, no ``torch.load``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hilrl.architecture import architecture_digest, first_shape_mismatch
from hilrl.config.loader import redact_secrets
from hilrl.core import Stateful, TrainableAlgorithm
from hilrl.fsutil import atomic_write_text, fsync_dir, fsync_file

MARKER = "COMPLETE"
FORMAT_VERSION = 1
SHARD_BYTES = 1 << 30
HASH = "sha256"
"""Content hash recorded in the marker for every file of a checkpoint."""
_PREFIX = "step_"
_TMP = ".tmp-"
_OLD = ".old-"
_LEFTOVER = re.compile(r"^\.(tmp|old)-(step_\d+)(?:-(\d+))?-([0-9a-f]+)$")
_RACY_NS = 2_000_000_000
"""A verified file is remembered (not hashed again) only once it is this much older than
the verification: timestamps are coarse, so a file changed in the same tick as it was
verified would otherwise keep its old stat signature."""

log = logging.getLogger("hilrl.runtime.checkpoint")
_verified: dict[str, tuple[int, ...]] = {}
"""Files found intact in this process: absolute path -> stat signature when hashed."""
_verified_digest: dict[str, str] = {}
_warned: set[str] = set()


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial, corrupt or made for another model."""


@dataclass
class CheckpointInfo:
    """What :func:`restore_checkpoint` found besides the restored objects."""

    path: Path
    step: int
    counters: dict[str, Any]
    config: dict[str, Any] | None


def architecture_hash(algorithm: TrainableAlgorithm) -> str:
    return architecture_digest(
        {"tensors": algorithm.architecture(), "config": algorithm.architecture_config()}
    )


# -------------------------------------------------------------------------- saving


def save_checkpoint(
    root: str | Path,
    step: int,
    algorithm: TrainableAlgorithm,
    *,
    buffers: Stateful | None = None,
    sampler: Stateful | None = None,
    config: object | None = None,
    counters: Mapping[str, Any] | None = None,
    keep_last: int = 3,
) -> Path:
    """Write a complete checkpoint for ``step`` atomically; returns its folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(root)
    final = root / f"{_PREFIX}{step:09d}"
    tmp = root / f"{_TMP}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        parts: dict[str, Mapping[str, object]] = {
            "algorithm": algorithm.state_dict(),
            "rng": rng_state(),
        }
        if buffers is not None:
            parts["replay"] = buffers.state_dict()
        if sampler is not None:
            parts["sampler"] = sampler.state_dict()
        for name, state in parts.items():
            _write_part(tmp, name, state)
        meta = {
            "format_version": FORMAT_VERSION,
            "step": step,
            "created_unix": time.time(),
            "counters": dict(counters or {}),
            "config": _plain_config(config),
            "architecture_hash": architecture_hash(algorithm),
            "architecture": algorithm.architecture(),
            "architecture_config": algorithm.architecture_config(),
            "parts": sorted(parts),
        }
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1))
        atomic_write_text(tmp / MARKER, json.dumps(_marker(tmp, step), indent=1))
        fsync_dir(tmp)
        if final.exists():  # re-saving a step: move the old one aside, never delete first
            trash = root / f"{_OLD}{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(root, keep_last, keep=final)
    return final


def _plain_config(config: object | None) -> Any:
    """Plain data of the run config for meta.json, secrets redacted (never written)."""
    if config is None:
        return None
    return redact_secrets(dict(config) if isinstance(config, Mapping) else config)


def _marker(folder: Path, step: int) -> dict[str, Any]:
    """The ``COMPLETE`` marker: the step, and the sha256 and size of every other file."""
    files = {}
    for path in sorted(folder.iterdir()):
        if path.name != MARKER and path.is_file():
            files[path.name] = {HASH: file_sha256(path), "bytes": path.stat().st_size}
    return {"step": step, "hash": HASH, "files": files}


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (never whole into memory)."""
    digest = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    return digest.hexdigest()


def _write_part(folder: Path, name: str, state: Mapping[str, object]) -> None:
    tensors = state["tensors"]
    assert isinstance(tensors, Mapping)
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        if size and size + t.numel() * t.element_size() > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][key] = t
        size += t.numel() * t.element_size()
    files = []
    for i, shard in enumerate(shards):
        path = folder / f"{name}-{i:05d}.safetensors"
        save_file(_unshare(shard), str(path))
        fsync_file(path)
        files.append(path.name)
    atomic_write_text(folder / f"{name}.json", json.dumps({"files": files, "meta": state["meta"]}))


def _unshare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory: clone the second and later ones."""
    seen: set[int] = set()
    out = {}
    for k, t in tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else -1
        out[k] = t.clone() if ptr in seen else t
        if ptr != -1:
            seen.add(ptr)
    return out


def _prune(root: Path, keep_last: int, keep: Path) -> None:
    """Delete the oldest complete checkpoints beyond ``keep_last``, never ``keep`` (the one
    just saved: after a resume from an older checkpoint it may not be the newest name)."""
    others = [p for p in list_checkpoints(root) if p != keep]
    excess = len(others) - (max(keep_last, 1) - 1)
    for old in others[: max(excess, 0)]:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_temps(root: str | Path) -> list[Path]:
    """Remove what crashed saves left under ``root``; returns the removed folders.

    ``.tmp-step_*-<pid>-*`` folders (a save that never completed, often with a full copy
    of the replay) are deleted when process ``pid`` is gone. ``.old-step_*`` folders (the
    previous copy of a step being re-saved) are deleted when that step exists again, and
    renamed back into place when the crash came between the two renames. Folders of a
    live process (a save in progress, this process's included) are left alone.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    for path in sorted(root.iterdir()):
        match = _LEFTOVER.match(path.name)
        if match is None or not path.is_dir():
            continue
        kind, name, pid = match.group(1), match.group(2), match.group(3)
        if pid is not None and _pid_alive(int(pid)):
            continue
        final = root / name
        if kind == "old" and not final.exists() and (path / MARKER).is_file():
            try:
                os.replace(path, final)
            except OSError:
                continue
            log.warning("restored %s from %s left by an interrupted save", final, path.name)
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
    if removed:
        log.info("removed %d folder(s) left by interrupted saves under %s", len(removed), root)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------- loading


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(_PREFIX) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint whose files are intact, or None.

    A corrupt newer checkpoint is skipped with a warning naming it and what is wrong
    (see :func:`newest_intact_checkpoint`, which also returns the skipped ones).
    """
    return newest_intact_checkpoint(root)[0]


def newest_intact_checkpoint(
    root: str | Path, *, parts: Iterable[str] | None = None, warn: bool = True
) -> tuple[Path | None, list[tuple[Path, str]]]:
    """``(newest intact checkpoint or None, [(skipped corrupt checkpoint, why), ...])``.

    Complete checkpoints are verified newest first (every file, or only ``meta.json`` and
    the files of ``parts``) against the hashes in their marker; the first that passes is
    returned. With ``warn`` each skipped one is logged once as a warning.
    """
    skipped: list[tuple[Path, str]] = []
    for path in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(path, parts)
            read_meta(path, verify=False)  # also parses for checkpoints without hashes
        except CheckpointError as exc:
            reason = str(exc)
            skipped.append((path, reason))
            if warn:
                _warn_once(f"skipping corrupt checkpoint {path}: {reason}; trying an older one")
            continue
        return path, skipped
    return None, skipped


def verify_checkpoint(path: str | Path, parts: Iterable[str] | None = None) -> None:
    """Check files of a complete checkpoint against the sizes and hashes in its marker.

    ``parts`` None: every recorded file; else ``meta.json`` and the files of those parts
    (``<part>.json``, ``<part>-*.safetensors``). Raises :class:`CheckpointError` naming
    the first missing, truncated or altered file. A marker without hashes (older
    checkpoints) cannot be verified: a one-time warning, and no error.
    """
    folder = _checked_folder(Path(path))
    recorded = _recorded_files(folder)
    if recorded is None:  # no hashes: at least catch truncated tensor files
        wanted_parts = None if parts is None else set(parts)
        for shard in sorted(folder.glob("*.safetensors")):
            if wanted_parts is None or _part_of(shard.name) in wanted_parts:
                _check_safetensors_size(shard)
        return
    if parts is None:
        names = sorted(recorded)
        if "meta.json" not in recorded:
            raise CheckpointError(f"{folder / MARKER}: marker records no meta.json")
    else:
        wanted = set(parts)
        names = ["meta.json", *sorted(n for n in recorded if _part_of(n) in wanted)]
    _verify_names(folder, recorded, names)


def verify_files(path: str | Path, names: Iterable[str]) -> None:
    """Check the named files of a complete checkpoint against its marker (see
    :func:`verify_checkpoint`); a name the marker does not record is an error."""
    folder = _checked_folder(Path(path))
    recorded = _recorded_files(folder)
    if recorded is not None:
        _verify_names(folder, recorded, list(names))


def _part_of(file_name: str) -> str | None:
    if file_name.endswith(".json") and file_name != "meta.json":
        return file_name[: -len(".json")]
    if file_name.endswith(".safetensors") and "-" in file_name:
        return file_name.rsplit("-", 1)[0]
    return None


def _verify_names(folder: Path, recorded: Mapping[str, tuple[str, int]], names: list[str]) -> None:
    for name in names:
        entry = recorded.get(name)
        if entry is None:
            raise CheckpointError(
                f"{folder / name}: not recorded in the {MARKER} marker (not part of the "
                "checkpoint as saved)"
            )
        _verify_file(folder / name, *entry)


def _verify_file(path: Path, digest: str, size: int) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file missing (recorded in the {MARKER} marker)") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: unreadable ({_one_line(exc)})") from exc
    if st.st_size != size:
        raise CheckpointError(
            f"{path}: size mismatch: {st.st_size} bytes, {size} when saved (truncated or "
            "overwritten)"
        )
    key = os.path.abspath(path)
    sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if _verified.get(key) == sig and _verified_digest.get(key) == digest:
        return
    try:
        actual = file_sha256(path)
    except OSError as exc:
        raise CheckpointError(f"{path}: unreadable ({_one_line(exc)})") from exc
    if actual != digest:
        raise CheckpointError(
            f"{path}: content hash mismatch ({HASH} {actual[:16]}..., {digest[:16]}... when "
            "saved): the file is corrupt"
        )
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > _RACY_NS:
        if len(_verified) > 4096:
            _verified.clear()
            _verified_digest.clear()
        _verified[key] = sig
        _verified_digest[key] = digest


def _check_safetensors_size(path: Path) -> None:
    """Raise when a safetensors file is shorter or longer than its own header says."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < header_len <= size - 8:
                raise ValueError("header length is out of range")
            header = json.loads(f.read(header_len))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({_one_line(exc)})") from exc
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        raise CheckpointError(
            f"{path}: size mismatch: {size} bytes, its header describes {expected} (truncated "
            "or overwritten)"
        )


def _recorded_files(folder: Path) -> dict[str, tuple[str, int]] | None:
    """``{file: (sha256, bytes)}`` from the marker; None for an older marker without them."""
    marker = folder / MARKER
    data = _load_json(marker, f"{MARKER} marker")
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{marker}: malformed {MARKER} marker (not a JSON object)")
    files = data.get("files")
    if files is None:
        _warn_once(
            f"checkpoint {folder} was saved without content hashes (older format): "
            "its files cannot be verified"
        )
        return None
    out: dict[str, tuple[str, int]] = {}
    try:
        for name, entry in files.items():
            digest, size = entry[HASH], entry["bytes"]
            if not isinstance(digest, str) or not isinstance(size, int) or Path(name).name != name:
                raise TypeError(f"bad entry for {name!r}")
            out[name] = (digest, size)
    except (AttributeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{marker}: malformed {MARKER} marker ({_one_line(exc)})") from exc
    return out


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _load_json(path: Path, what: str = "JSON file") -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} missing") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable {what} ({_one_line(exc)})") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: unreadable {what} ({_one_line(exc)})") from exc


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of one safetensors file; :class:`CheckpointError` naming it when unreadable."""
    if not path.is_file():
        raise CheckpointError(f"{path}: tensor file missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors file ({_one_line(exc)})") from exc


def part_files(path: str | Path, name: str, *, verify: bool = True) -> tuple[list[str], Any]:
    """``(tensor file names, part meta)`` from the index ``<name>.json`` of a part."""
    folder = Path(path)
    index_path = folder / f"{name}.json"
    if not index_path.is_file():
        raise CheckpointError(
            f"checkpoint {folder} has no '{name}' part ({index_path.name} missing)"
        )
    if verify:
        verify_files(folder, [index_path.name])
    index = _load_json(index_path, "part index")
    files = index.get("files") if isinstance(index, Mapping) else None
    if (
        not isinstance(files, list)
        or not all(isinstance(f, str) and Path(f).name == f for f in files)
        or "meta" not in index
    ):
        raise CheckpointError(f"{index_path}: malformed part index (no file list or meta)")
    if verify:
        verify_files(folder, files)
    return list(files), index["meta"]


def read_part(path: str | Path, name: str) -> dict[str, object]:
    """One part (``{"tensors", "meta"}``) of a complete checkpoint, its files verified."""
    return _read_part(_checked_folder(Path(path)), name, verify=True)


def _read_part(folder: Path, name: str, *, verify: bool) -> dict[str, object]:
    files, meta = part_files(folder, name, verify=verify)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        tensors.update(load_tensors(folder / file))
    return {"tensors": tensors, "meta": meta}


def read_meta(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """``meta.json`` of a complete checkpoint (checked against the marker unless ``verify``
    is False); :class:`CheckpointError` naming it when it is missing, altered or unparsable."""
    folder = _checked_folder(Path(path))
    if verify:
        verify_files(folder, ["meta.json"])
    meta = _load_json(folder / "meta.json", "meta.json")
    if not isinstance(meta, dict):
        raise CheckpointError(f"{folder / 'meta.json'}: malformed meta.json (not a JSON object)")
    return meta


def _checked_folder(path: Path) -> Path:
    if not path.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {path}")
    if not (path / MARKER).is_file():
        raise CheckpointError(
            f"checkpoint {path} is incomplete (no {MARKER} marker): it was interrupted while saving; "
            "use an older checkpoint"
        )
    return path


def check_architecture(meta: Mapping[str, Any], algorithm: TrainableAlgorithm, path: Path) -> None:
    """Raise naming the first parameter or setting that differs from the checkpoint."""
    if meta.get("architecture_hash") == architecture_hash(algorithm):
        return
    mismatch = first_shape_mismatch(meta.get("architecture", {}), algorithm.architecture())
    if mismatch is not None:
        raise CheckpointError(f"{path}: {mismatch.describe()}")
    diffs = _diff(meta.get("architecture_config", {}), algorithm.architecture_config())
    detail = "; ".join(diffs[:5]) if diffs else "architecture hash differs"
    raise CheckpointError(f"{path}: checkpoint was made for another architecture: {detail}")


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"'{prefix}' is {a!r} in the checkpoint, {b!r} here"]


def restore_checkpoint(
    path: str | Path,
    algorithm: TrainableAlgorithm,
    *,
    buffers: Stateful | None = None,
    sampler: Stateful | None = None,
    restore_rng: bool = True,
) -> CheckpointInfo:
    """Load a complete checkpoint into existing objects, or raise without touching them.

    Every part asked for must be present (a resume that silently starts from empty
    buffers or fresh weights is the failure this guards against).
    """
    folder = _checked_folder(Path(path))
    wanted = {"algorithm": algorithm, "replay": buffers, "sampler": sampler}
    names = [name for name, obj in wanted.items() if obj is not None]
    verify_checkpoint(folder, [*names, "rng"] if restore_rng else names)
    meta = read_meta(folder, verify=False)
    check_architecture(meta, algorithm, folder)
    states = {name: _read_part(folder, name, verify=False) for name in names}
    rng = _read_part(folder, "rng", verify=False) if restore_rng else None
    for name, obj in wanted.items():
        if obj is not None:
            obj.load_state_dict(states[name])
    if rng is not None:
        set_rng_state(rng)
    return CheckpointInfo(
        folder, int(meta["step"]), dict(meta.get("counters", {})), meta.get("config")
    )


# ----------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, object]:
    """torch (CPU and CUDA), numpy global and python ``random`` generator states."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    tensors["numpy_keys"] = torch.from_numpy(np.asarray(keys, np.uint32).view(np.int32).copy())
    version, internal, gauss = random.getstate()
    meta = {
        "numpy": {
            "kind": kind,
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(internal), "gauss": gauss},
    }
    return {"tensors": tensors, "meta": meta}


def set_rng_state(state: Mapping[str, object]) -> None:
    tensors = state["tensors"]
    meta = state["meta"]
    assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        cuda = [
            tensors[f"torch_cuda_{i}"]
            for i in range(torch.cuda.device_count())
            if f"torch_cuda_{i}" in tensors
        ]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    npm = meta["numpy"]
    keys = tensors["numpy_keys"].numpy().view(np.uint32)
    np.random.set_state((npm["kind"], keys, npm["pos"], npm["has_gauss"], npm["cached_gaussian"]))
    py = meta["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
