"""Atomic, verified checkpoints of the full training state.

Layout of one checkpoint::

    <dir>/step_000012000/
        meta.json                 step, counters, config, architecture + its hash, parts
        algorithm-00000.safetensors, algorithm.json      networks, optimisers, temperature
        replay-00000.safetensors ..., replay.json        replay buffers (sharded at 1 GiB)
        sampler-00000.safetensors, sampler.json          sampler random generators
        rng-00000.safetensors, rng.json                  torch / numpy / python RNG states
        COMPLETE                                         written last

Saving writes everything into a hidden temporary folder, fsyncs every file, writes the
``COMPLETE`` marker, renames the folder into place and fsyncs the parent; only then are
old checkpoints pruned (reference defect 8: a crash while saving never loses the previous
checkpoint). Loading refuses a folder without the marker and a checkpoint whose
architecture differs from the model it is loaded into, naming the parameter; nothing is
ever silently re-initialised. Tensors go through safetensors, metadata through JSON: no
pickle, no ``torch.load``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hilrl.config.loader import to_dict
from hilrl.fsutil import fsync_dir, fsync_file

MARKER = "COMPLETE"
FORMAT_VERSION = 1
SHARD_BYTES = 1 << 30
_PREFIX = "step_"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, partial, corrupt or made for another model."""


class Stateful(Protocol):
    def state_dict(self) -> dict[str, object]: ...

    def load_state_dict(self, state: Mapping[str, object]) -> None: ...


class TrainableAlgorithm(Stateful, Protocol):
    def architecture(self) -> dict[str, list[int]]: ...

    def architecture_config(self) -> dict[str, object]: ...


@dataclass
class CheckpointInfo:
    """What :func:`restore_checkpoint` found besides the restored objects."""

    path: Path
    step: int
    counters: dict[str, Any]
    config: dict[str, Any] | None


def architecture_hash(algorithm: TrainableAlgorithm) -> str:
    blob = json.dumps(
        {"tensors": algorithm.architecture(), "config": algorithm.architecture_config()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


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
    final = root / f"{_PREFIX}{step:09d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
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
        _write_text(tmp / "meta.json", json.dumps(meta, indent=1))
        _write_text(tmp / MARKER, json.dumps({"step": step}))
        fsync_dir(tmp)
        if final.exists():  # re-saving a step: move the old one aside, never delete first
            trash = root / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
            os.replace(final, trash)
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(root, keep_last)
    return final


def _plain_config(config: object | None) -> Any:
    if config is None:
        return None
    if isinstance(config, Mapping):
        return dict(config)
    return to_dict(config)


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
    _write_text(folder / f"{name}.json", json.dumps({"files": files, "meta": state["meta"]}))


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


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _prune(root: Path, keep_last: int) -> None:
    complete = list_checkpoints(root)
    for old in complete[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------- loading


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.name.startswith(_PREFIX) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(root: str | Path) -> Path | None:
    complete = list_checkpoints(root)
    return complete[-1] if complete else None


def read_part(path: str | Path, name: str) -> dict[str, object]:
    """One part (``{"tensors", "meta"}``) of a complete checkpoint."""
    folder = _checked_folder(Path(path))
    index_path = folder / f"{name}.json"
    if not index_path.is_file():
        raise CheckpointError(
            f"checkpoint {folder} has no '{name}' part ({index_path.name} missing)"
        )
    index = json.loads(index_path.read_text())
    tensors: dict[str, torch.Tensor] = {}
    for file in index["files"]:
        tensors.update(load_file(str(folder / file)))
    return {"tensors": tensors, "meta": index["meta"]}


def read_meta(path: str | Path) -> dict[str, Any]:
    folder = _checked_folder(Path(path))
    return json.loads((folder / "meta.json").read_text())  # type: ignore[no-any-return]


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
    saved = meta.get("architecture", {})
    own = algorithm.architecture()
    for name in sorted(set(saved) | set(own)):
        if name not in own:
            raise CheckpointError(
                f"{path}: parameter '{name}' exists in the checkpoint but not in this model"
            )
        if name not in saved:
            raise CheckpointError(
                f"{path}: parameter '{name}' of this model is missing from the checkpoint"
            )
        if list(saved[name]) != list(own[name]):
            raise CheckpointError(
                f"{path}: parameter '{name}' has shape {list(saved[name])} in the checkpoint, {list(own[name])} in this model"
            )
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
    meta = read_meta(folder)
    check_architecture(meta, algorithm, folder)
    wanted = {"algorithm": algorithm, "replay": buffers, "sampler": sampler}
    states = {name: read_part(folder, name) for name, obj in wanted.items() if obj is not None}
    rng = read_part(folder, "rng") if restore_rng else None
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
