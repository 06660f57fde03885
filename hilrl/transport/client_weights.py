"""The actor client's weight stream: the newest weights of each session, latest wins."""

from __future__ import annotations

import logging
import time

import grpc

from hilrl.transport import codec
from hilrl.transport.client_state import (
    _TICK_S,
    _ClientState,
    _Link,
)
from hilrl.transport.errors import (
    ProtocolError,
)
from hilrl.transport.framing import Reassembler
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.types import LearnerProgress, PolicyUpdate

log = logging.getLogger("hilrl.transport.client")


class WeightStream(_ClientState):
    """A second thread keeps a stream of weights open and keeps only the newest."""

    def _param_loop(self) -> None:
        seen_generation = -1
        while True:
            with self._lock:
                while not self._closing and (
                    self._link is None or self._link.generation == seen_generation
                ):
                    self._wake.wait(_TICK_S * 4)
                if self._closing:
                    return
                link = self._link
                have = self._weights.version if self._weights is not None else -1
            assert link is not None
            seen_generation = link.generation
            try:
                self._stream_weights(link, have)
            except grpc.RpcError as exc:
                if not link.closed:
                    code = exc.code()  # type: ignore[attr-defined]
                    log.info("actor %r: weight stream ended (%s)", self.actor_id, code)
                    if code != grpc.StatusCode.FAILED_PRECONDITION:
                        seen_generation = -1  # same session: reopen after a pause
                        time.sleep(self.config.backoff_initial_s)
            except ProtocolError as exc:
                log.error("actor %r: invalid weights from the learner: %s", self.actor_id, exc)
                seen_generation = -1
                time.sleep(self.config.backoff_initial_s)

    def _stream_weights(self, link: _Link, have: int) -> None:
        request = pb.ParameterRequest(have_version=have)
        call = link.stub.StreamParameters(request, metadata=link.metadata)
        link.param_call = call
        if link.closed:
            call.cancel()
            return
        reassembler = Reassembler(
            self.config.max_payload_bytes,
            self.config.max_message_bytes,
            (pb.KIND_WEIGHTS,),
            None,
        )
        for frame in call:
            msg = reassembler.feed(frame)
            if msg is None:
                continue
            msg.verify()
            version, weights = codec.decode_weights(msg.payload)
            if version != msg.sequence:
                raise ProtocolError(f"weights say version {version}, their frame {msg.sequence}")
            progress = (
                codec.decode_progress(msg.progress)
                if msg.progress is not None
                else LearnerProgress()
            )
            with self._lock:
                if self._weights is None or version > self._weights.version:
                    self._weights = PolicyUpdate(version, weights, progress)
                    self._stats.weights_version = version
                    self._stats.weights_received += 1
                    self._wake.notify_all()
