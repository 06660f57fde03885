"""Payload encoding: transitions and weights as safetensors bytes, episodes as a proto record.

Why safetensors: it is a flat header (JSON: name, dtype, shape, offsets) followed by raw
little-endian buffers, parsed by a bounds-checked reader. Decoding it can only yield
arrays, never run code, unlike the pickle / ``torch.load`` payloads of the reference
transport (a remote-code-execution hole on the learner).

Transition batches are stacked into arrays. Observations go into a table that holds each
distinct observation of the batch once; ``obs_index`` / ``next_obs_index`` point into it.
Within an episode the next observation of step t is the observation of step t+1, so a
batch of N steps carries N+1 observations (plus one per episode boundary inside it)
instead of 2N: about ``(N + 1) / N`` of the raw uint8 observation bytes per transition.
Images stay uint8 on the wire; the naive float32 obs + next_obs of the reference costs 8x.

Every decode validates names, dtypes, shapes, counts, index ranges and finiteness and
raises :class:`~hilrl.transport.errors.ProtocolError` naming the bad field.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from collections.abc import Mapping, Sequence

import numpy as np
import safetensors
import safetensors.numpy

from hilrl.transport.errors import ProtocolError
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.types import (
    IMAGE_PREFIX,
    EpisodeKind,
    EpisodeStats,
    LearnerProgress,
    Observation,
    Transition,
)

SCHEMA_VERSION = 3
"""Wire schema of payloads and frames; bump on any incompatible change.

2: two-level acknowledgements (received / durable), see the .proto file; payloads as in 1.
3: typed records: the learner's progress rides on the weights frames (``Frame.progress``,
   not "meta.*" pseudo-tensors) and an episode is an ``EpisodeRecord`` (its kind typed,
   not an "eval" key); transition payloads as in 1.
"""
PAYLOAD_VERSIONS = ("1", "2", str(SCHEMA_VERSION))
"""Payload versions that decode: transition payloads are unchanged since v1, and a v2
episode payload (safetensors) still decodes, so messages an older actor left in its
spool still reach the learner after an upgrade."""

MAX_TRANSITIONS_PER_MESSAGE = 4096
MAX_HEADER_BYTES = 1 << 20
"""safetensors JSON headers above this are refused before parsing (ours are a few KB)."""
MAX_ACTION_DIM = 1024
MAX_EXTRA_FIELDS = 32
MAX_WEIGHT_TENSORS = 100_000

KIND_TRANSITIONS = "transitions"
KIND_EPISODE = "episode"
KIND_WEIGHTS = "weights"

_OBS_PREFIX = "obs/"
_EXTRA_PREFIX = "extra/"
_OBS_KEY = re.compile(r"^observation\.[A-Za-z0-9_.\-]{1,120}$")
_NAME = re.compile(r"^[A-Za-z0-9_.\-/]{1,512}$")
_FLOAT_WEIGHT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_WEIGHT_DTYPES = (
    *_FLOAT_WEIGHT_DTYPES,
    np.dtype(np.int64),
    np.dtype(np.int32),
    np.dtype(np.uint8),
    np.dtype(np.bool_),
)

# name -> (dtype, trailing shape) of the per-transition arrays (leading dimension N).
_PER_STEP: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
    "obs_index": (np.dtype(np.int32), ()),
    "next_obs_index": (np.dtype(np.int32), ()),
    "reward": (np.dtype(np.float64), ()),
    "discrete_penalty": (np.dtype(np.float64), ()),
    "terminated": (np.dtype(np.bool_), ()),
    "truncated": (np.dtype(np.bool_), ()),
    "is_intervention": (np.dtype(np.bool_), ()),
    "policy_version": (np.dtype(np.int64), ()),
    "episode_index": (np.dtype(np.int64), ()),
    "frame_index": (np.dtype(np.int64), ()),
}
_EPISODE_FIELDS: dict[str, np.dtype] = {
    "episode_index": np.dtype(np.int64),
    "length": np.dtype(np.int64),
    "episode_return": np.dtype(np.float64),
    "success": np.dtype(np.bool_),
    "intervention_steps": np.dtype(np.int64),
    "policy_version": np.dtype(np.int64),
}


# --------------------------------------------------------------------------- helpers


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes, with the header size capped."""
    if len(data) < 8:
        raise ProtocolError(f"payload of {len(data)} bytes is too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES or n > len(data) - 8:
        raise ProtocolError(
            f"safetensors header length {n} exceeds the payload or the {MAX_HEADER_BYTES}-byte cap"
        )
    try:
        header = json.loads(bytes(data[8 : 8 + n]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"safetensors header is not valid JSON: {exc}") from exc
    meta = header.get("__metadata__", {}) if isinstance(header, dict) else None
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ProtocolError("safetensors __metadata__ must map names to strings")
    return meta


def _load(data: bytes, kind: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    meta = read_metadata(data)
    if meta.get("kind") != kind:
        raise ProtocolError(f"payload kind is {meta.get('kind')!r}, expected {kind!r}")
    if meta.get("schema_version") not in PAYLOAD_VERSIONS:
        raise ProtocolError(
            f"payload schema_version {meta.get('schema_version')!r}, this side reads "
            f"{' or '.join(PAYLOAD_VERSIONS)}"
        )
    try:
        arrays = safetensors.numpy.load(bytes(data))
    except (safetensors.SafetensorError, ValueError, TypeError) as exc:
        raise ProtocolError(f"malformed safetensors payload: {exc}") from exc
    return meta, arrays


def _check(
    arrays: Mapping[str, np.ndarray], name: str, dtype: np.dtype, shape: tuple[int, ...]
) -> np.ndarray:
    if name not in arrays:
        raise ProtocolError(f"field '{name}' is missing")
    arr = arrays[name]
    if arr.dtype != dtype:
        raise ProtocolError(f"field '{name}' has dtype {arr.dtype}, expected {dtype}")
    if arr.shape != shape:
        raise ProtocolError(f"field '{name}' has shape {arr.shape}, expected {shape}")
    return arr


def _check_finite(name: str, arr: np.ndarray) -> None:
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ProtocolError(f"field '{name}' holds NaN or infinite values")


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


# Safetensors dtype names, with the rank by which the reference writer orders tensors in
# the data section (highest first, then by name); only the dtypes transitions use.
_ST_DTYPES: dict[np.dtype, tuple[str, int]] = {
    np.dtype(np.int64): ("I64", 5),
    np.dtype(np.float64): ("F64", 4),
    np.dtype(np.float32): ("F32", 3),
    np.dtype(np.int32): ("I32", 2),
    np.dtype(np.uint8): ("U8", 1),
    np.dtype(np.bool_): ("BOOL", 0),
}


def _save_rows(
    tensors: Mapping[str, np.ndarray | list[np.ndarray]], meta: Mapping[str, str]
) -> bytes | None:
    """Safetensors bytes of tensors, some given as lists of rows, each row copied once.

    Why: ``np.stack`` then ``safetensors.numpy.save`` copies every image twice (into the
    stacked array, then into the output); here the rows go straight into the output
    with one ``bytes.join``. The layout is the reference writer's (compact JSON header
    with ``__metadata__`` first, padded with spaces to 8 bytes; tensors ordered by dtype
    then name), so any safetensors reader parses it the same. Returns None when a row is
    not a native, C-contiguous array of a known dtype (the caller then stacks instead).
    """
    if sys.byteorder != "little":
        return None
    entries = []
    for name, value in tensors.items():
        rows = [value] if isinstance(value, np.ndarray) else value
        first = rows[0]
        kind = _ST_DTYPES.get(first.dtype)
        if kind is None:
            return None
        for r in rows:
            if r.dtype != first.dtype or r.shape != first.shape or not r.flags.c_contiguous:
                return None
        shape = first.shape if isinstance(value, np.ndarray) else (len(rows), *first.shape)
        entries.append((-kind[1], name, kind[0], shape, rows))
    entries.sort(key=lambda e: (e[0], e[1]))
    header: dict[str, object] = {"__metadata__": dict(meta)}
    parts: list[bytes | memoryview] = []
    offset = 0
    for _, name, dtype, shape, rows in entries:
        size = sum(r.nbytes for r in rows)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
        parts.extend(r.data for r in rows)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *parts])


# ----------------------------------------------------------------------- transitions


def _same_observation(a: Observation, b: Observation) -> bool:
    if a is b:
        return True
    if a.keys() != b.keys():
        return False
    for key, x in a.items():
        y = b[key]
        if x is y:
            continue
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y):
            return False
    return True


def _check_observation(obs: Observation, keys: list[str], where: str) -> None:
    if sorted(obs) != keys:
        raise ValueError(f"{where} has keys {sorted(obs)}, expected {keys}")
    for key in keys:
        arr = obs[key]
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"{where}['{key}'] is {type(arr).__name__}, expected a numpy array")
        if key.startswith(IMAGE_PREFIX):
            if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
                raise ValueError(
                    f"{where}['{key}'] must be uint8 (H, W, 3), got {arr.dtype} {arr.shape}"
                )
        elif arr.dtype != np.float32 or arr.ndim < 1:
            raise ValueError(
                f"{where}['{key}'] must be a float32 array, got {arr.dtype} {arr.shape}"
            )


def check_transition(t: Transition, keys: list[str] | None, where: str = "transition") -> list[str]:
    """Cheap check of the data contract when a transition is put (not when it is sent).

    Catches what the learner would reject, at the call site that made the mistake:
    key sets, image and state dtypes, non-finite state / action / reward. Returns the
    observation keys, for checking the next transitions against the same set.
    """
    if keys is None:
        keys = sorted(t.observation)
        if not keys or not all(_OBS_KEY.match(k) for k in keys):
            raise ValueError(
                f"{where}: observation keys {keys} must look like 'observation.<name>'"
            )
    for name, obs in (("observation", t.observation), ("next_observation", t.next_observation)):
        _check_observation(obs, keys, f"{where}.{name}")
        for key, arr in obs.items():
            if arr.dtype == np.float32 and not np.isfinite(arr).all():
                raise ValueError(f"{where}.{name}['{key}'] holds NaN or infinite values")
    action = np.asarray(t.action)
    if (
        action.ndim != 1
        or not 1 <= action.shape[0] <= MAX_ACTION_DIM
        or action.dtype.kind not in "fiu"
    ):
        raise ValueError(
            f"{where}.action must be a 1-D numeric array, got {action.dtype} {action.shape}"
        )
    if (
        not np.isfinite(action).all()
        or not np.isfinite(t.reward)
        or not np.isfinite(t.discrete_penalty)
    ):
        raise ValueError(f"{where}: action, reward and discrete_penalty must be finite")
    return keys


def encode_transitions(transitions: Sequence[Transition]) -> bytes:
    """Stack a batch of transitions into safetensors bytes (see the module docstring).

    Raises ValueError when the batch is empty or its observations disagree on keys or
    dtypes (images uint8, everything else float32), naming the transition and key.
    """
    if not transitions:
        raise ValueError("cannot encode an empty batch of transitions")
    if len(transitions) > MAX_TRANSITIONS_PER_MESSAGE:
        raise ValueError(
            f"batch of {len(transitions)} exceeds {MAX_TRANSITIONS_PER_MESSAGE} transitions"
        )
    keys = sorted(transitions[0].observation)
    if not keys or not all(_OBS_KEY.match(k) for k in keys):
        raise ValueError(
            f"observation keys {keys} must be non-empty and look like 'observation.<name>'"
        )
    table: list[Observation] = []
    obs_index = np.empty(len(transitions), dtype=np.int32)
    next_index = np.empty(len(transitions), dtype=np.int32)
    for i, t in enumerate(transitions):
        prev_next = table[next_index[i - 1]] if i else None
        if prev_next is not None and _same_observation(t.observation, prev_next):
            obs_index[i] = next_index[i - 1]
        else:
            _check_observation(t.observation, keys, f"transitions[{i}].observation")
            obs_index[i] = len(table)
            table.append(t.observation)
        _check_observation(t.next_observation, keys, f"transitions[{i}].next_observation")
        next_index[i] = len(table)
        table.append(t.next_observation)
    for key in keys:
        shapes = {obs[key].shape for obs in table}
        if len(shapes) != 1:
            raise ValueError(f"observations disagree on the shape of '{key}': {sorted(shapes)}")
    actions = [np.asarray(t.action, dtype=np.float32).reshape(-1) for t in transitions]
    if len({a.shape for a in actions}) != 1:
        raise ValueError(
            f"actions of one batch differ in length: {sorted({a.shape[0] for a in actions})}"
        )
    tensors: dict[str, np.ndarray | list[np.ndarray]] = {
        _OBS_PREFIX + key: [obs[key] for obs in table] for key in keys
    }
    tensors["action"] = np.stack(actions)
    tensors["obs_index"] = obs_index
    tensors["next_obs_index"] = next_index
    tensors["reward"] = np.array([t.reward for t in transitions], dtype=np.float64)
    tensors["discrete_penalty"] = np.array(
        [t.discrete_penalty for t in transitions], dtype=np.float64
    )
    tensors["terminated"] = np.array([t.terminated for t in transitions], dtype=np.bool_)
    tensors["truncated"] = np.array([t.truncated for t in transitions], dtype=np.bool_)
    tensors["is_intervention"] = np.array([t.is_intervention for t in transitions], dtype=np.bool_)
    tensors["policy_version"] = np.array([t.policy_version for t in transitions], dtype=np.int64)
    tensors["episode_index"] = np.array([t.episode_index for t in transitions], dtype=np.int64)
    tensors["frame_index"] = np.array([t.frame_index for t in transitions], dtype=np.int64)
    meta = {
        "kind": KIND_TRANSITIONS,
        "schema_version": str(SCHEMA_VERSION),
        "count": str(len(transitions)),
    }
    fast = _save_rows(tensors, meta)
    if fast is not None:
        return fast
    stacked = {k: v if isinstance(v, np.ndarray) else np.stack(v) for k, v in tensors.items()}
    return bytes(safetensors.numpy.save(stacked, metadata=meta))


def decode_transitions(
    data: bytes, max_transitions: int = MAX_TRANSITIONS_PER_MESSAGE
) -> list[Transition]:
    """Validate and unpack :func:`encode_transitions` bytes.

    Observation arrays of the result are read-only views into one table per key: the
    next observation of step t and the observation of step t+1 share memory, so an
    in-place edit would silently change both; copy before editing.
    """
    _, arrays = _load(data, KIND_TRANSITIONS)
    obs_names = sorted(k for k in arrays if k.startswith(_OBS_PREFIX))
    unknown = set(arrays) - set(_PER_STEP) - {"action"} - set(obs_names)
    if unknown:
        raise ProtocolError(f"unknown fields {sorted(unknown)}")
    if "obs_index" not in arrays or arrays["obs_index"].ndim != 1:
        raise ProtocolError("field 'obs_index' is missing or not one-dimensional")
    n = int(arrays["obs_index"].shape[0])
    if not 1 <= n <= max_transitions:
        raise ProtocolError(f"batch holds {n} transitions, allowed 1..{max_transitions}")
    for name, (dtype, tail) in _PER_STEP.items():
        _check(arrays, name, dtype, (n, *tail))
    action = arrays.get("action")
    if (
        action is None
        or action.ndim != 2
        or action.shape[0] != n
        or not 1 <= action.shape[1] <= MAX_ACTION_DIM
    ):
        raise ProtocolError(
            f"field 'action' must have shape ({n}, A) with 1 <= A <= {MAX_ACTION_DIM}"
        )
    _check(arrays, "action", np.dtype(np.float32), action.shape)
    for name in ("action", "reward", "discrete_penalty"):
        _check_finite(name, arrays[name])
    for name in ("policy_version", "episode_index", "frame_index"):
        if (arrays[name] < 0).any():
            raise ProtocolError(f"field '{name}' holds negative values")
    if not obs_names:
        raise ProtocolError("no observation fields ('obs/observation.*')")
    table: dict[str, np.ndarray] = {}
    rows = -1
    for name in obs_names:
        key = name[len(_OBS_PREFIX) :]
        if not _OBS_KEY.match(key):
            raise ProtocolError(f"observation key {key!r} is not 'observation.<name>'")
        arr = arrays[name]
        if arr.ndim < 2:
            raise ProtocolError(
                f"field '{name}' must have a leading row dimension, got shape {arr.shape}"
            )
        if rows < 0:
            rows = int(arr.shape[0])
        if arr.shape[0] != rows:
            raise ProtocolError(
                f"field '{name}' has {arr.shape[0]} rows, other observations have {rows}"
            )
        if key.startswith(IMAGE_PREFIX):
            if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3:
                raise ProtocolError(
                    f"image '{key}' must be uint8 (rows, H, W, 3), got {arr.dtype} {arr.shape}"
                )
        else:
            if arr.dtype != np.float32:
                raise ProtocolError(f"field '{key}' has dtype {arr.dtype}, expected float32")
            _check_finite(name, arr)
        table[key] = _frozen(arr)
    if not 1 <= rows <= 2 * n:
        raise ProtocolError(f"observation table has {rows} rows, allowed 1..{2 * n}")
    for name in ("obs_index", "next_obs_index"):
        idx = arrays[name]
        if idx.min() < 0 or idx.max() >= rows:
            raise ProtocolError(f"field '{name}' points outside the {rows}-row observation table")
    action = _frozen(action)

    def row(i: int) -> Observation:
        return {key: arr[i] for key, arr in table.items()}

    oi, ni = arrays["obs_index"].tolist(), arrays["next_obs_index"].tolist()
    rew, pen = arrays["reward"].tolist(), arrays["discrete_penalty"].tolist()
    term, trunc, inter = (
        arrays["terminated"].tolist(),
        arrays["truncated"].tolist(),
        arrays["is_intervention"].tolist(),
    )
    ver, ep, fr = (
        arrays["policy_version"].tolist(),
        arrays["episode_index"].tolist(),
        arrays["frame_index"].tolist(),
    )
    return [
        Transition(
            observation=row(oi[i]),
            action=action[i],
            reward=rew[i],
            next_observation=row(ni[i]),
            terminated=term[i],
            truncated=trunc[i],
            is_intervention=inter[i],
            discrete_penalty=pen[i],
            policy_version=ver[i],
            episode_index=ep[i],
            frame_index=fr[i],
        )
        for i in range(n)
    ]


# -------------------------------------------------------------------------- episodes


def encode_episode(stats: EpisodeStats) -> bytes:
    """EpisodeStats as a serialised ``EpisodeRecord`` (the actor id travels in the frame header)."""
    if len(stats.extra) > MAX_EXTRA_FIELDS:
        raise ValueError(
            f"EpisodeStats.extra has {len(stats.extra)} fields, at most {MAX_EXTRA_FIELDS}"
        )
    for name, value in stats.extra.items():
        if not _NAME.match(name):
            raise ValueError(f"EpisodeStats.extra key {name!r} must match {_NAME.pattern}")
        if not np.isfinite(value):
            raise ValueError(f"EpisodeStats.extra[{name!r}] = {value} is not finite")
    for name in ("episode_index", "length", "intervention_steps", "policy_version"):
        if getattr(stats, name) < 0:
            raise ValueError(f"EpisodeStats.{name} = {getattr(stats, name)} is negative")
    record = pb.EpisodeRecord(
        episode_index=stats.episode_index,
        length=stats.length,
        episode_return=stats.episode_return,
        success=bool(stats.success),
        intervention_steps=stats.intervention_steps,
        policy_version=stats.policy_version,
        kind=int(stats.kind),  # type: ignore[arg-type]
        interrupted=bool(stats.interrupted),
        operator_takeover=bool(stats.operator_takeover),
        extra={k: float(v) for k, v in stats.extra.items()},
    )
    return record.SerializeToString()


def decode_episode(data: bytes, actor_id: str = "") -> EpisodeStats:
    """Validate and unpack :func:`encode_episode` bytes; ``actor_id`` comes from the session.

    A v2 payload (safetensors, the kind in an ``extra/eval`` field) left in an actor's
    spool by an older version decodes too.
    """
    if data[8:9] == b"{":
        try:
            return _decode_episode_v2(data, actor_id)
        except ProtocolError:
            pass  # not a v2 payload after all: read it as a record
    record = pb.EpisodeRecord()
    try:
        record.ParseFromString(data)
    except Exception as exc:
        raise ProtocolError(f"episode payload is not an EpisodeRecord: {exc}") from exc
    if record.kind not in (pb.EPISODE_KIND_TRAIN, pb.EPISODE_KIND_EVAL):
        raise ProtocolError(f"episode kind {record.kind} is not train (1) or eval (2)")
    if not np.isfinite(record.episode_return):
        raise ProtocolError("episode field 'episode_return' holds NaN or infinite values")
    if record.intervention_steps > record.length:
        raise ProtocolError(
            f"episode intervention_steps {record.intervention_steps} exceed its length {record.length}"
        )
    limit = np.iinfo(np.int64).max
    for name in ("episode_index", "length", "intervention_steps", "policy_version"):
        if getattr(record, name) > limit:
            raise ProtocolError(f"episode field '{name}' is out of range")
    if len(record.extra) > MAX_EXTRA_FIELDS:
        raise ProtocolError(f"{len(record.extra)} extra episode fields, at most {MAX_EXTRA_FIELDS}")
    extra: dict[str, float] = {}
    for name, value in record.extra.items():
        if not _NAME.match(name):
            raise ProtocolError(f"extra episode field name {name!r:.80} is not allowed")
        if not np.isfinite(value):
            raise ProtocolError(f"extra episode field '{name}' holds NaN or infinite values")
        extra[name] = float(value)
    return EpisodeStats(
        episode_index=int(record.episode_index),
        length=int(record.length),
        episode_return=float(record.episode_return),
        success=bool(record.success),
        intervention_steps=int(record.intervention_steps),
        policy_version=int(record.policy_version),
        actor_id=actor_id,
        extra=extra,
        kind=EpisodeKind(int(record.kind)),
        interrupted=bool(record.interrupted),
        operator_takeover=bool(record.operator_takeover),
    )


def _decode_episode_v2(data: bytes, actor_id: str) -> EpisodeStats:
    """A v2 episode payload: safetensors fields, the kind and flags among the extras."""
    _, arrays = _load(data, KIND_EPISODE)
    extra_names = [k for k in arrays if k.startswith(_EXTRA_PREFIX)]
    unknown = set(arrays) - set(_EPISODE_FIELDS) - set(extra_names)
    if unknown:
        raise ProtocolError(f"unknown episode fields {sorted(unknown)}")
    if len(extra_names) > 64:
        raise ProtocolError(f"{len(extra_names)} extra episode fields, at most 64")
    values = {name: _check(arrays, name, dtype, (1,))[0] for name, dtype in _EPISODE_FIELDS.items()}
    _check_finite("episode_return", arrays["episode_return"])
    for name in ("episode_index", "length", "intervention_steps", "policy_version"):
        if values[name] < 0:
            raise ProtocolError(f"episode field '{name}' is negative: {values[name]}")
    if values["intervention_steps"] > values["length"]:
        raise ProtocolError(
            f"episode intervention_steps {values['intervention_steps']} exceed its length {values['length']}"
        )
    extra: dict[str, float] = {}
    for name in extra_names:
        arr = _check(arrays, name, np.dtype(np.float64), (1,))
        _check_finite(name, arr)
        extra[name[len(_EXTRA_PREFIX) :]] = float(arr[0])
    flags = {k: bool(extra.pop(k, 0.0)) for k in ("eval", "interrupted", "operator_takeover")}
    return EpisodeStats(
        episode_index=int(values["episode_index"]),
        length=int(values["length"]),
        episode_return=float(values["episode_return"]),
        success=bool(values["success"]),
        intervention_steps=int(values["intervention_steps"]),
        policy_version=int(values["policy_version"]),
        actor_id=actor_id,
        extra=extra,
        kind=EpisodeKind.EVAL if flags["eval"] else EpisodeKind.TRAIN,
        interrupted=flags["interrupted"],
        operator_takeover=flags["operator_takeover"],
    )


def encode_progress(progress: LearnerProgress) -> pb.LearnerProgress:
    """The wire record of the learner's progress (sent on weights frames)."""
    if progress.updates < 0 or progress.env_steps < 0 or progress.step_allowance < -1:
        raise ValueError(f"invalid learner progress {progress}")
    return pb.LearnerProgress(
        updates=progress.updates,
        env_steps=progress.env_steps,
        step_allowance=progress.step_allowance,
    )


def decode_progress(record: pb.LearnerProgress) -> LearnerProgress:
    """Validate a received ``LearnerProgress``."""
    limit = np.iinfo(np.int64).max
    if record.updates > limit or record.env_steps > limit or record.step_allowance < -1:
        raise ProtocolError(f"learner progress out of range: {record}")
    return LearnerProgress(int(record.updates), int(record.env_steps), int(record.step_allowance))


# --------------------------------------------------------------------------- weights


def encode_weights(weights: Mapping[str, np.ndarray], version: int) -> bytes:
    """Actor weights (name -> array) and their version as safetensors bytes."""
    if version < 0:
        raise ValueError(f"weights version must be >= 0, got {version}")
    tensors: dict[str, np.ndarray] = {}
    for name, arr in weights.items():
        a = np.asarray(arr)
        if not _NAME.match(name):
            raise ValueError(f"weight name {name!r} must match {_NAME.pattern}")
        if a.dtype not in _WEIGHT_DTYPES:
            raise ValueError(
                f"weight '{name}' has dtype {a.dtype}; allowed {[str(d) for d in _WEIGHT_DTYPES]}"
            )
        # not np.ascontiguousarray: it turns 0-d arrays (e.g. a step counter) into 1-d
        tensors[name] = a if a.flags.c_contiguous else a.copy(order="C")
    meta = {"kind": KIND_WEIGHTS, "schema_version": str(SCHEMA_VERSION), "version": str(version)}
    return bytes(safetensors.numpy.save(tensors, metadata=meta))


def decode_weights(data: bytes) -> tuple[int, dict[str, np.ndarray]]:
    """Validate and unpack :func:`encode_weights` bytes into ``(version, weights)``."""
    meta, arrays = _load(data, KIND_WEIGHTS)
    try:
        version = int(meta.get("version", ""))
    except ValueError as exc:
        raise ProtocolError(f"weights version {meta.get('version')!r} is not an integer") from exc
    if version < 0:
        raise ProtocolError(f"weights version {version} is negative")
    if len(arrays) > MAX_WEIGHT_TENSORS:
        raise ProtocolError(f"{len(arrays)} weight tensors, at most {MAX_WEIGHT_TENSORS}")
    for name, arr in arrays.items():
        if not _NAME.match(name):
            raise ProtocolError(f"weight name {name!r} is not allowed")
        if arr.dtype not in _WEIGHT_DTYPES:
            raise ProtocolError(f"weight '{name}' has dtype {arr.dtype}")
        _check_finite(name, arr)
    return version, arrays
