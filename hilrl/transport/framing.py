"""Frames: a payload cut into chunks behind a checked header, and put back together.

Each chunk repeats the header (kind, schema version, actor id, sequence number, payload
length, CRC-32), so a receiver can refuse an oversized or inconsistent message from its
first frame, before buffering anything, and check the whole payload before decoding it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hilrl.transport.codec import SCHEMA_VERSION
from hilrl.transport.errors import ProtocolError
from hilrl.transport.proto import hilrl_transport_pb2 as pb

MAX_CHUNKS = 1 << 16
SEND_DATA_METHOD = "/hilrl.transport.v1.Learner/SendData"
"""Full gRPC method name of the data stream (for a call that sends pre-encoded frames)."""


def checksum(payload: bytes) -> int:
    """CRC-32 (zlib) of a payload: cheap (GB/s) and enough to catch truncation or mixing."""
    return zlib.crc32(payload) & 0xFFFFFFFF


def make_frames(
    kind: int,
    payload: bytes,
    sequence: int,
    actor_id: str,
    chunk_bytes: int,
    progress: pb.LearnerProgress | None = None,
) -> list[pb.Frame]:
    """Cut one payload into frames of at most ``chunk_bytes`` data bytes each.

    ``progress`` (weights only) rides on every frame of the message.
    """
    count = max(1, -(-len(payload) // chunk_bytes))
    crc = checksum(payload)
    view = memoryview(payload)
    return [
        pb.Frame(
            kind=kind,  # type: ignore[arg-type]
            schema_version=SCHEMA_VERSION,
            actor_id=actor_id,
            sequence=sequence,
            payload_length=len(payload),
            checksum=crc,
            chunk_index=i,
            chunk_count=count,
            data=payload if count == 1 else bytes(view[i * chunk_bytes : (i + 1) * chunk_bytes]),
            progress=progress,
        )
        for i in range(count)
    ]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    """A proto3 varint field; empty for the default value 0 (proto3 leaves it out)."""
    return bytes((number << 3,)) + _varint(value) if value else b""


def _field_bytes(number: int, value: bytes) -> bytes:
    """A proto3 length-delimited field; empty for an empty value (proto3 leaves it out)."""
    return bytes(((number << 3) | 2,)) + _varint(len(value)) + value if value else b""


def encode_frames(
    kind: int, payload: bytes, sequence: int, actor_id: str, chunk_bytes: int
) -> list[bytes]:
    """The frames of :func:`make_frames`, already serialised (the same bytes, in field order).

    Why: building a ``pb.Frame`` copies the chunk into the message and serialising it
    copies it again; here each chunk is copied once, into the serialised frame, which
    the actor hands to gRPC as it is (a call made with no request serializer).
    """
    count = max(1, -(-len(payload) // chunk_bytes))
    head = b"".join(
        (
            _field_varint(1, kind),
            _field_varint(2, SCHEMA_VERSION),
            _field_bytes(3, actor_id.encode("utf-8")),
            _field_varint(4, sequence),
            _field_varint(5, len(payload)),
            _field_varint(6, checksum(payload)),
        )
    )
    view = memoryview(payload)
    frames = []
    for i in range(count):
        part = view[i * chunk_bytes : (i + 1) * chunk_bytes]
        tail = _field_varint(8, count)
        if len(part):
            tail += bytes((9 << 3 | 2,)) + _varint(len(part))
        frames.append(b"".join((head, _field_varint(7, i), tail, part)))
    return frames


@dataclass(frozen=True)
class Message:
    """A reassembled payload and its header (call :meth:`verify` before decoding)."""

    kind: int
    sequence: int
    actor_id: str
    payload: bytes
    checksum: int
    progress: pb.LearnerProgress | None = None
    """The learner's progress (weights messages; from the first frame)."""

    def verify(self) -> None:
        """Raise :class:`ProtocolError` when the payload does not match its CRC-32.

        Kept out of :meth:`Reassembler.feed`: a bad checksum spoils one message, not the
        framing, so the receiver can reject it in-band and keep the stream.
        """
        if checksum(self.payload) != self.checksum:
            raise ProtocolError(f"checksum mismatch on message {self.sequence}")


class Reassembler:
    """Collects the frames of one stream into messages, enforcing the caps on the way.

    Frames of one message must arrive consecutively (one sender per stream). A
    :class:`ProtocolError` leaves the reassembler reset, so the caller may go on with the
    next message when the error was in-band (e.g. a bad checksum).
    """

    def __init__(
        self, max_payload_bytes: int, chunk_bytes: int, kinds: tuple[int, ...], actor_id: str | None
    ) -> None:
        self._max_payload = max_payload_bytes
        self._chunk_bytes = chunk_bytes
        self._kinds = kinds
        self._actor_id = actor_id
        self._head: pb.Frame | None = None
        self._parts: list[bytes] = []
        self._received = 0

    def reset(self) -> None:
        self._head, self._parts, self._received = None, [], 0

    def _check_header(self, f: pb.Frame) -> None:
        if f.schema_version != SCHEMA_VERSION:
            raise ProtocolError(
                f"frame schema_version {f.schema_version}, this side speaks {SCHEMA_VERSION}"
            )
        if f.kind not in self._kinds:
            raise ProtocolError(f"frame kind {f.kind} is not allowed on this stream")
        if self._actor_id is not None and f.actor_id != self._actor_id:
            raise ProtocolError(
                f"frame actor_id {f.actor_id!r} differs from the session's {self._actor_id!r}"
            )
        if f.payload_length > self._max_payload:
            raise ProtocolError(
                f"payload of {f.payload_length} bytes exceeds the cap of {self._max_payload} bytes"
            )
        if not 1 <= f.chunk_count <= MAX_CHUNKS:
            raise ProtocolError(f"chunk_count {f.chunk_count} out of range 1..{MAX_CHUNKS}")
        if f.chunk_index >= f.chunk_count or f.chunk_count > max(1, f.payload_length):
            raise ProtocolError(
                f"chunk {f.chunk_index} of {f.chunk_count} is inconsistent with {f.payload_length} bytes"
            )
        if len(f.data) > self._chunk_bytes:
            raise ProtocolError(
                f"chunk of {len(f.data)} bytes exceeds chunk_bytes {self._chunk_bytes}"
            )

    def feed(self, f: pb.Frame) -> Message | None:
        """Take one frame; return the message when its last chunk arrived."""
        try:
            self._check_header(f)
            head = self._head
            if head is None:
                if f.chunk_index != 0:
                    raise ProtocolError(f"message starts with chunk {f.chunk_index}, expected 0")
                self._head = head = f
            elif (
                f.chunk_index != len(self._parts)
                or f.sequence != head.sequence
                or f.kind != head.kind
                or f.payload_length != head.payload_length
                or f.checksum != head.checksum
                or f.chunk_count != head.chunk_count
            ):
                raise ProtocolError(
                    f"frame (seq {f.sequence}, chunk {f.chunk_index}) does not continue message "
                    f"(seq {head.sequence}, next chunk {len(self._parts)})"
                )
            self._received += len(f.data)
            if self._received > head.payload_length:
                raise ProtocolError(
                    f"chunks exceed the announced payload length {head.payload_length}"
                )
            self._parts.append(f.data)
            if len(self._parts) < head.chunk_count:
                return None
            payload = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            if len(payload) != head.payload_length:
                raise ProtocolError(
                    f"payload has {len(payload)} bytes, header announced {head.payload_length}"
                )
            progress = head.progress if head.HasField("progress") else None
            msg = Message(head.kind, head.sequence, head.actor_id, payload, head.checksum, progress)
            self.reset()
            return msg
        except ProtocolError:
            self.reset()
            raise
