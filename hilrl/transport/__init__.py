"""Actor <-> learner transport: gRPC (robot and GPU machines) or in-process (one machine).

* :class:`~hilrl.transport.server.LearnerServer` / :class:`~hilrl.transport.client.ActorClient`:
  the gRPC pair (TLS, token, reconnects, disk spool, exactly-once delivery even across a
  learner crash: actors keep copies until ``LearnerServer.mark_durable`` confirms a
  checkpoint holding them);
* :class:`~hilrl.transport.inproc.InProcLearner` / :class:`~hilrl.transport.inproc.InProcActor`:
  the same interfaces over bounded queues;
* :mod:`hilrl.transport.codec`: safetensors payloads (never pickle), validated on decode.
"""

from hilrl.transport.api import ActorEndpoint, LearnerEndpoint
from hilrl.transport.client import ActorClient, ActorClientStats
from hilrl.transport.errors import (
    AuthenticationError,
    HandshakeRefused,
    LearnerUnreachable,
    ProtocolError,
    SpoolLocked,
    TransportError,
)
from hilrl.transport.inproc import InProcActor, InProcLearner
from hilrl.transport.server import ActorStats, LearnerServer

__all__ = [
    "ActorClient",
    "ActorClientStats",
    "ActorEndpoint",
    "ActorStats",
    "AuthenticationError",
    "HandshakeRefused",
    "InProcActor",
    "InProcLearner",
    "LearnerEndpoint",
    "LearnerServer",
    "LearnerUnreachable",
    "ProtocolError",
    "SpoolLocked",
    "TransportError",
]
