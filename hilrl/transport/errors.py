"""Errors of the transport, each phrased as what went wrong and what to fix."""

from __future__ import annotations


class TransportError(RuntimeError):
    """Base class of every transport failure."""


class ProtocolError(TransportError, ValueError):
    """Bytes from the network (or the spool) that do not follow the wire format.

    Raised at the boundary, before any of the data reaches the replay buffer or a policy.
    """


class HandshakeRefused(TransportError):
    """The learner refused this actor (schema, architecture or run mismatch, or full).

    ``retryable`` is True when waiting can help (the learner serves its maximum number
    of actors); the actor client retries those by itself and raises only the others.
    """

    def __init__(self, reason: str, retryable: bool = False) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(f"learner refused this actor: {reason}")


class AuthenticationError(TransportError):
    """The learner rejected our credentials (wrong or missing token)."""


class LearnerUnreachable(TransportError):
    """No session could be set up within the allowed time; the message says why."""


class SpoolLocked(TransportError):
    """Another actor process already uses this actor id's spool folder."""
