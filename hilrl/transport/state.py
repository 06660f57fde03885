"""The learner's transport state: per-actor watermarks saved in (and restored from) checkpoints.

``state_dict()`` of a learner endpoint is a plain JSON-able mapping::

    {"schema_version": 2, "run_id": "run-7", "acked": {"robot-left": 1234, ...}}

``acked[actor]`` is the highest sequence number of that actor delivered to the ingest
callbacks when the snapshot was taken. Taken under ``ingest_paused()`` together with the
replay buffer, it is exactly what that replay holds; once the checkpoint is saved and
confirmed with ``mark_durable(state)``, actors may delete their copies up to there.

One parser serves the gRPC server and its in-process twin, so both refuse the same
malformed states with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hilrl.transport import codec

STATE_VERSIONS = (1, 2, codec.SCHEMA_VERSION)
"""Versions whose states load: v1 saved the same ``acked`` map (delivered = durable then);
v2 and v3 states are the same map (v3 changed payloads only)."""


def make_state(run_id: str, acked: Mapping[str, int]) -> dict[str, Any]:
    """A state mapping of the current version (plain types: JSON or a checkpoint's meta)."""
    return {"schema_version": codec.SCHEMA_VERSION, "run_id": run_id, "acked": dict(acked)}


def parse_state(state: Mapping[str, Any], run_id: str = "") -> dict[str, int]:
    """Validate a saved state and return its per-actor watermarks.

    Raises ValueError naming the bad part: an unknown version, another run's state (when
    both run ids are set), or an entry that is not ``str -> int >= 0``.
    """
    if not isinstance(state, Mapping):
        raise ValueError(f"transport state must be a mapping, got {type(state).__name__}")
    acked = state.get("acked")
    version = state.get("schema_version")
    if version not in STATE_VERSIONS or not isinstance(acked, Mapping):
        raise ValueError(
            f"not a transport state of schema {' or '.join(map(str, STATE_VERSIONS))}: "
            f"{dict(state)!r:.200}"
        )
    saved_run = state.get("run_id", "")
    if run_id and saved_run not in ("", run_id):
        raise ValueError(
            f"transport state belongs to run {saved_run!r}, this learner runs {run_id!r}"
        )
    out: dict[str, int] = {}
    for actor_id, seq in acked.items():
        if (
            not isinstance(actor_id, str)
            or isinstance(seq, bool)
            or not isinstance(seq, int)
            or seq < 0
        ):
            raise ValueError(f"bad acked entry {actor_id!r}: {seq!r} (want actor id -> int >= 0)")
        out[actor_id] = seq
    return out
