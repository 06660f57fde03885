"""The two faces of a transport, whichever carries the data (gRPC or in-process queues).

The launcher picks one; the actor loop only sees an :class:`ActorEndpoint` (a
TransitionSink and ParameterSource), the learner loop only a :class:`LearnerEndpoint`.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hilrl.core import ParameterSource, TransitionSink
from hilrl.types import LearnerProgress, PolicyUpdate


@runtime_checkable
class ActorEndpoint(TransitionSink, ParameterSource, Protocol):
    """What an actor holds: put data, get weights, flush and close."""

    def wait_for_weights(self, newer_than: int, timeout_s: float) -> PolicyUpdate | None: ...

    def flush(self, timeout_s: float) -> bool: ...

    def close(self, timeout_s: float | None = None) -> bool: ...


@runtime_checkable
class LearnerEndpoint(Protocol):
    """What a learner holds: ingest callbacks (given at construction) and these calls.

    Checkpointing: take ``state_dict()`` under ``ingest_paused()`` together with the replay
    snapshot, save both, then ``mark_durable(state)`` so actors may drop their copies.
    """

    def publish_weights(
        self,
        weights: Mapping[str, np.ndarray],
        version: int,
        progress: LearnerProgress | None = None,
    ) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def mark_durable(self, state: Mapping[str, Any]) -> None:
        """Call after saving a checkpoint that holds ``state`` (its :meth:`state_dict`)."""
        ...

    def ingest_paused(self) -> AbstractContextManager[None]: ...

    def wait_idle(self, timeout_s: float) -> bool: ...

    def stop(self) -> None: ...
