"""1,000 malformed, truncated, oversized or fuzzed messages: each refused, server unharmed."""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
import safetensors.numpy
from transport_testlib import Collector, fast_config, make_episode

from hilrl.transport import ActorClient, LearnerServer, codec
from hilrl.transport.framing import checksum
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import ACTOR_HEADER, SESSION_HEADER

pytestmark = pytest.mark.timeout(120)

CHUNK = 64 * 1024
SEND_DATA = "/hilrl.transport.v1.Learner/SendData"


def frame(
    payload: bytes, seq: int, kind: int = pb.KIND_TRANSITIONS, crc: int | None = None
) -> pb.Frame:
    return pb.Frame(
        kind=kind,  # type: ignore[arg-type]
        schema_version=codec.SCHEMA_VERSION,
        actor_id="fuzz",
        sequence=seq,
        payload_length=len(payload),
        checksum=checksum(payload) if crc is None else crc,
        chunk_index=0,
        chunk_count=1,
        data=payload,
    )


def bad_payloads(rng: random.Random, valid: bytes) -> list[tuple[str, Callable[[], bytes]]]:
    tensors = safetensors.numpy.load(valid)

    def mutated(change: Callable[[dict[str, np.ndarray]], object]) -> Callable[[], bytes]:
        def build() -> bytes:
            t = {k: v.copy() for k, v in tensors.items()}
            change(t)
            meta = {"kind": "transitions", "schema_version": str(codec.SCHEMA_VERSION)}
            return bytes(safetensors.numpy.save(t, metadata=meta))

        return build

    def flipped() -> bytes:
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)

    def json_header() -> bytes:
        header = json.dumps(
            {"a": {"dtype": rng.choice(["F32", "U8", "X"]), "shape": [rng.randint(-2, 9)]}}
        ).encode()
        return struct.pack("<Q", len(header)) + header + bytes(rng.randrange(64))

    return [
        ("random bytes", lambda: rng.randbytes(rng.randint(0, 3000))),
        ("truncated", lambda: valid[: rng.randrange(len(valid))]),
        ("flipped bytes", flipped),
        ("json header", json_header),
        ("huge header length", lambda: struct.pack("<Q", rng.randint(1 << 20, 1 << 63)) + b"{}"),
        ("nan reward", mutated(lambda t: t.update(reward=np.full_like(t["reward"], np.nan)))),
        (
            "index out of range",
            mutated(lambda t: t.update(next_obs_index=t["next_obs_index"] + 1000)),
        ),
        ("float64 action", mutated(lambda t: t.update(action=t["action"].astype(np.float64)))),
        ("missing field", mutated(lambda t: t.pop("obs_index"))),
        (
            "image not uint8",
            mutated(
                lambda t: t.update({"obs/observation.images.front": np.zeros((2, 2), np.float32)})
            ),
        ),
    ]


def test_fuzzed_messages_are_refused_and_the_server_keeps_serving(tmp_path: Path) -> None:
    rng = random.Random(1234)
    collector = Collector()
    cfg = fast_config(
        0, chunk_bytes=CHUNK, max_message_bytes=2 * CHUNK, max_payload_bytes=4 * CHUNK
    )
    server = LearnerServer(
        cfg, collector.on_transitions, collector.on_episode, run_id="run"
    ).start()
    channel = grpc.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", 8 * CHUNK)]
    )
    stub = pb_grpc.LearnerStub(channel)
    sent = 0
    try:
        reply = stub.Handshake(
            pb.HandshakeRequest(actor_id="fuzz", run_id="run", schema_version=codec.SCHEMA_VERSION),
            timeout=5,
        )
        assert reply.accepted
        md = ((SESSION_HEADER, reply.session_id), (ACTOR_HEADER, "fuzz"))
        valid = codec.encode_transitions(make_episode(0, 0, 3))

        # 1) 700 messages with sound framing and a bad (or fuzzed) payload, on one stream;
        #    every tenth one is valid and must get through.
        kinds = bad_payloads(rng, valid)
        frames, valid_seqs, fuzz_seqs = [], set(), set()
        for seq in range(1, 701):
            if seq % 10 == 0:
                frames.append(frame(valid, seq))
                valid_seqs.add(seq)
            elif seq % 10 == 1:
                frames.append(frame(valid, seq, crc=checksum(valid) ^ 0x5A5A))  # bad checksum
            elif seq % 10 == 2:
                frames.append(frame(valid, seq, kind=pb.KIND_EPISODE))  # wrong payload for its kind
            else:
                name, build = kinds[seq % len(kinds)]
                frames.append(frame(build(), seq))
                if name == "flipped bytes":
                    fuzz_seqs.add(seq)
        acks = list(stub.SendData(iter(frames), metadata=md, timeout=60))
        sent += len(frames)
        rejected = {r.sequence for a in acks for r in a.rejected}
        assert acks[-1].acked_through == 700  # every message has an outcome
        assert not rejected & valid_seqs
        assert set(range(1, 701)) - rejected - valid_seqs <= fuzz_seqs  # only harmless flips pass
        delivered = collector.count("fuzz")
        assert delivered == 3 * (700 - len(rejected))
        assert server.actor_stats()["fuzz"].rejected == len(rejected)

        # 2) 150 broken frame headers, each followed by a sound message on the same stream:
        #    the broken one is a counted rejection (reason sent back), the stream goes on.
        base = 1000
        breakers: list[Callable[[pb.Frame], None]] = [
            lambda f: setattr(f, "payload_length", 10 * CHUNK),  # over the payload cap
            lambda f: setattr(f, "schema_version", 99),
            lambda f: setattr(f, "actor_id", "someone-else"),
            lambda f: setattr(f, "chunk_index", 3),
            lambda f: setattr(f, "chunk_count", 0),
            lambda f: setattr(f, "kind", pb.KIND_WEIGHTS),
            lambda f: setattr(f, "kind", 77),
            lambda f: setattr(f, "data", bytes(CHUNK + 1)),  # chunk over chunk_bytes
            lambda f: setattr(f, "payload_length", len(f.data) - 1),
        ]
        before = server.actor_stats()["fuzz"].rejected
        for i in range(150):
            f = frame(valid, base + 2 * i)
            follow = frame(valid, base + 2 * i + 1)
            if i < 3:
                # A frame over the gRPC message cap: gRPC itself refuses it (slowly, so few).
                f.data = bytes(3 * CHUNK)
                with pytest.raises(grpc.RpcError) as err:
                    list(stub.SendData(iter([f, follow]), metadata=md, timeout=10))
                assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                sent += 1
                continue
            breakers[i % len(breakers)](f)
            acks = list(stub.SendData(iter([f, follow]), metadata=md, timeout=10))
            reasons = {r.sequence: r.reason for a in acks for r in a.rejected}
            assert base + 2 * i in reasons and "malformed frame" in reasons[base + 2 * i]
            assert acks[-1].acked_through == base + 2 * i + 1  # the sound one got through
            delivered += 3
            sent += 1
        assert collector.count("fuzz") == delivered
        assert server.actor_stats()["fuzz"].rejected == before + 147

        # 3) 50 streams of raw bytes that are not even protobuf frames.
        raw = channel.stream_stream(
            SEND_DATA, request_serializer=lambda b: b, response_deserializer=pb.Ack.FromString
        )
        for _ in range(50):
            junk = [rng.randbytes(rng.randint(1, 200)) for _ in range(rng.randint(1, 3))]
            try:
                list(raw(iter(junk), metadata=md, timeout=10))
            except grpc.RpcError as exc:
                assert exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED
            sent += 1

        # 4) 50 calls with a forged or missing session.
        good = frame(valid, 10_000)
        for i in range(50):
            bad_md = ((SESSION_HEADER, rng.randbytes(8).hex()),) if i % 2 else ()
            with pytest.raises(grpc.RpcError) as err:
                if i % 4 < 2:
                    list(stub.SendData(iter([good]), metadata=bad_md, timeout=10))
                else:
                    list(
                        stub.StreamParameters(
                            pb.ParameterRequest(have_version=-1), metadata=bad_md, timeout=10
                        )
                    )
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            sent += 1

        # 5) 50 handshakes with nonsense identities or versions: refused, with a reason.
        for i in range(50):
            request = pb.HandshakeRequest(
                actor_id=rng.choice(
                    ["", "x" * 200, "a b", "ünïcode", "../../etc", rng.randbytes(6).hex()]
                ),
                schema_version=rng.choice([0, 2, 99, codec.SCHEMA_VERSION]),
                run_id=rng.choice(["run", "other", ""]),
            )
            if i % 5 == 0:
                request.actor_id, request.schema_version, request.run_id = (
                    "",
                    codec.SCHEMA_VERSION,
                    "run",
                )
            answer = stub.Handshake(request, timeout=5)
            valid_id = request.schema_version == codec.SCHEMA_VERSION and request.run_id in (
                "run",
                "",
            )
            if answer.accepted:
                assert valid_id and len(request.actor_id) <= 128 and " " not in request.actor_id
            else:
                assert answer.reason
            sent += 1
        assert sent == 1000

        # The server still serves a real actor, and has lost none of its own state.
        actor = ActorClient(fast_config(server.port, str(tmp_path / "spool")), "real", "run")
        actor.put_transitions(make_episode(5, 0, 12))
        assert actor.flush(10.0)
        actor.close(2.0)
        assert collector.keys("real") == [(0, f) for f in range(12)]
        assert collector.count("fuzz") == delivered
    finally:
        channel.close()
        server.stop()
