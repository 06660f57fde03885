"""Load a trained SAC policy (the actor side only) from a checkpoint, for eval and deployment.

A checkpoint (see :mod:`hilrl.runtime.checkpoint`) holds the whole training state: critics,
targets, optimisers, replay. Acting needs only the ``nets.*`` tensors of the algorithm
part (encoder, actor, grasp critic), so only those are read, lazily from the safetensors
shards; nothing is unpickled and ``torch.load`` is never called.

The networks are rebuilt from the checkpoint's ``architecture_config`` (what the
algorithm itself says shaped its networks), not from the run config, so an override of
the learning section can never silently change the architecture. A frozen pretrained
backbone is loaded from the checkpoint's own tensors too: the evaluating machine does
not need the original ``encoder.pretrained`` file.

The files read (``meta.json``, the algorithm part) are checked against the sizes and
sha256 hashes recorded in the checkpoint's ``COMPLETE`` marker, so altered or truncated
weights raise :class:`CheckpointError` naming the file instead of loading silently. A run
folder resolves to its newest checkpoint whose policy files are intact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError, safe_open

from hilrl.architecture import first_shape_mismatch
from hilrl.config.learner import EncoderConfig, SACConfig
from hilrl.config.loader import ConfigError, build, deep_merge
from hilrl.config.root import RootConfig
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec, SACPolicy
from hilrl.runtime.checkpoint import (
    MARKER,
    CheckpointError,
    newest_intact_checkpoint,
    part_files,
    read_meta,
    verify_checkpoint,
)

POLICY_PREFIX = "nets."
"""Prefix of the actor-side tensors in the algorithm part (see ``SAC._network_tensors``)."""
POLICY_PART = "algorithm"
"""The checkpoint part that holds the policy tensors."""
CHECKPOINTS_DIR = "checkpoints"
CONFIG_FILE = "config.yaml"


@dataclass(frozen=True)
class LoadedCheckpoint:
    """Where a policy came from: the folder, its step and its counters."""

    path: Path
    step: int
    counters: dict[str, Any]

    @property
    def env_steps(self) -> int | None:
        """Environment steps trained on when the checkpoint was saved, if recorded."""
        value = self.counters.get("env_steps")
        return int(value) if isinstance(value, int | float) else None

    @property
    def run_dir(self) -> Path | None:
        """The run folder when the checkpoint sits in ``<run>/checkpoints/``."""
        parent = self.path.parent
        return parent.parent if parent.name == CHECKPOINTS_DIR else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A complete checkpoint folder from a checkpoint folder, a checkpoints root or a run folder.

    From a run or checkpoints folder, the newest checkpoint whose ``meta.json`` and
    algorithm part are intact (newer corrupt ones are skipped with a logged warning).
    Raises :class:`CheckpointError` naming the path when nothing usable is there, and
    saying so when only interrupted (partial) or corrupt checkpoints exist.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"checkpoint path not found: {p}")
    if not p.is_dir():
        raise CheckpointError(f"{p} is not a folder (expected a run folder or a checkpoint folder)")
    if (p / "meta.json").exists() or (p / MARKER).exists() or p.name.startswith("step_"):
        _read_meta(p)  # raises for a partial or unreadable checkpoint
        return p
    skipped: list[tuple[Path, str]] = []
    for root in (p / CHECKPOINTS_DIR, p):
        found, bad = newest_intact_checkpoint(root, parts=(POLICY_PART,))
        if found is not None:
            return found
        skipped += bad
    if skipped:
        path, why = skipped[0]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise CheckpointError(f"{p}: no intact checkpoint: {path.name}{more} is corrupt: {why}")
    partial = sorted(
        str(c)
        for root in (p / CHECKPOINTS_DIR, p)
        if root.is_dir()
        for c in root.iterdir()
        if c.name.startswith("step_")
    )
    if partial:
        raise CheckpointError(
            f"{p}: no complete checkpoint (only interrupted ones without a {MARKER} marker: "
            f"{', '.join(partial[:3])})"
        )
    raise CheckpointError(
        f"{p}: no checkpoint found (looked for {CHECKPOINTS_DIR}/step_* and step_*)"
    )


def _read_meta(ckpt: Path) -> dict[str, Any]:
    """meta.json of a complete checkpoint; CheckpointError (naming it) when unreadable.

    Not yet checked against the marker: :func:`load_policy_checkpoint` does that after
    comparing the architecture, so that a mismatch names the parameter.
    """
    try:
        return read_meta(ckpt, verify=False)
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{ckpt}: cannot read meta.json ({exc})") from exc


def checkpoint_config_data(ckpt: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The run config stored with the checkpoint, else the run folder's ``config.yaml``."""
    stored = meta.get("config")
    if isinstance(stored, Mapping):
        return dict(stored)
    candidate = ckpt.parent.parent / CONFIG_FILE
    if ckpt.parent.name == CHECKPOINTS_DIR and candidate.is_file():
        data = yaml.safe_load(candidate.read_text())
        if isinstance(data, dict):
            return data
    raise CheckpointError(
        f"{ckpt}: no run config stored (meta.json 'config' is empty and no {CONFIG_FILE} "
        "in the run folder); the env to evaluate in is unknown"
    )


def load_policy(
    checkpoint_or_run_dir: str | Path,
    device: str = "cpu",
    *,
    config_overrides: Mapping[str, Any] | None = None,
) -> tuple[SACPolicy, RootConfig, int]:
    """``(policy, run config, checkpoint step)`` from the latest complete checkpoint.

    ``config_overrides`` (nested plain data, e.g. from ``--env.fps=5``) is merged over
    the stored run config before it is built and validated; it never changes the
    networks. The policy's version is the checkpoint's ``weights_version`` (or
    ``policy_version``) counter when recorded, else its step.
    """
    policy, cfg, info = load_policy_checkpoint(
        checkpoint_or_run_dir, device, config_overrides=config_overrides
    )
    return policy, cfg, info.step


def load_policy_checkpoint(
    checkpoint_or_run_dir: str | Path,
    device: str = "cpu",
    *,
    config_overrides: Mapping[str, Any] | None = None,
) -> tuple[SACPolicy, RootConfig, LoadedCheckpoint]:
    """:func:`load_policy` with the checkpoint's folder and counters instead of just its step."""
    ckpt = resolve_checkpoint(checkpoint_or_run_dir)
    meta = _read_meta(ckpt)
    data = checkpoint_config_data(ckpt, meta)
    if config_overrides:
        data = deep_merge(data, config_overrides)
    try:
        cfg = build(RootConfig, data)
    except ConfigError as exc:
        raise CheckpointError(f"{ckpt}: stored run config is not valid here: {exc}") from exc

    arch = meta.get("architecture_config")
    if not isinstance(arch, Mapping):
        raise CheckpointError(f"{ckpt}: meta.json has no 'architecture_config'")
    obs_spec, action_spec, enc_cfg, sac_cfg = _architecture(ckpt, arch, cfg)
    policy = SACPolicy(obs_spec, action_spec, enc_cfg, sac_cfg, device=_device(device))
    _check_architecture(ckpt, meta, policy)
    verify_checkpoint(ckpt, (POLICY_PART,))  # meta.json and the algorithm part, vs the marker
    weights = read_policy_tensors(ckpt)
    counters = dict(meta.get("counters", {}))
    step = int(meta.get("step", 0))
    version = _policy_version(counters, step)
    try:
        policy.load_weights(weights, int(version))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"{ckpt}: policy weights do not fit the rebuilt networks: {exc}"
        ) from exc
    return policy, cfg, LoadedCheckpoint(ckpt, step, counters)


def _policy_version(counters: Mapping[str, Any], step: int) -> int:
    """The learner's weights version at the checkpoint (``weights_version`` or
    ``policy_version`` counter, when recorded and not negative), else the step."""
    for key in ("weights_version", "policy_version"):
        value = counters.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return step


def read_policy_tensors(ckpt: Path) -> dict[str, np.ndarray]:
    """Only the ``nets.*`` tensors of the algorithm part, without the prefix, as numpy.

    The part's index and tensor files are first checked against the marker's hashes.
    """

    files, _ = part_files(ckpt, POLICY_PART)
    out: dict[str, np.ndarray] = {}
    for name in files:
        shard = ckpt / name
        if not shard.is_file():
            raise CheckpointError(f"checkpoint {ckpt}: tensor file {shard.name} is missing")
        try:
            with safe_open(str(shard), framework="pt", device="cpu") as f:  # type: ignore[no-untyped-call]
                for key in f.keys():  # noqa: SIM118 (safe_open has keys(), not iteration)
                    if key.startswith(POLICY_PREFIX):
                        out[key[len(POLICY_PREFIX) :]] = f.get_tensor(key).numpy()
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise CheckpointError(f"{shard}: unreadable safetensors file ({detail})") from exc
    if not out:
        raise CheckpointError(
            f"checkpoint {ckpt}: no '{POLICY_PREFIX}*' policy tensors in the algorithm part"
        )
    return out


def _architecture(
    ckpt: Path, arch: Mapping[str, Any], cfg: RootConfig
) -> tuple[ObservationSpec, ActionSpec, EncoderConfig, SACConfig]:
    try:
        obs_spec = ObservationSpec.from_json(arch["obs_spec"])
        action = arch["action_spec"]
        action_spec = ActionSpec(int(action["dim"]), bool(action["has_gripper"]))
        enc_cfg = _with(cfg.learning.encoder, arch.get("encoder", {}))
        sac_cfg = _with(cfg.learning.sac, arch.get("sac", {}))
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise CheckpointError(
            f"{ckpt}: unusable architecture_config in meta.json ({exc!r})"
        ) from exc
    # The checkpoint carries the backbone's tensors: never read encoder.pretrained here.
    return obs_spec, action_spec, replace(enc_cfg, pretrained=None), sac_cfg


def _with(base: Any, values: Mapping[str, Any]) -> Any:
    """``base`` with the fields in ``values`` replaced (lists become tuples where needed)."""
    names = {f.name for f in fields(base)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown {type(base).__name__} fields {unknown}")
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    out = replace(base, **changes)
    out.validate()
    return out


def _check_architecture(ckpt: Path, meta: Mapping[str, Any], policy: SACPolicy) -> None:
    """Compare the rebuilt networks with the tensor shapes the checkpoint records."""
    saved = {
        k: v for k, v in dict(meta.get("architecture", {})).items() if k.startswith(POLICY_PREFIX)
    }
    own = {POLICY_PREFIX + k: v.shape for k, v in policy.nets.state_dict().items()}
    mismatch = first_shape_mismatch(saved, own)
    if mismatch is not None:
        rebuilt = "the policy rebuilt from its architecture_config"
        raise CheckpointError(f"{ckpt}: {mismatch.describe(own_in=rebuilt)}")


def _device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
