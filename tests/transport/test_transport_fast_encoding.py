"""The hand-written fast paths produce exactly what the library paths produce."""

from __future__ import annotations

import random

import numpy as np
import safetensors.numpy
from transport_testlib import make_obs

from hilrl.transport import codec
from hilrl.transport.framing import encode_frames, make_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb


def test_encode_frames_is_byte_identical_to_protobuf_serialisation() -> None:
    rng = random.Random(0)
    for _ in range(300):
        n = rng.choice([0, 1, 5, 1023, 1024, 1025, 5000, rng.randrange(0, 50_000)])
        payload = rng.randbytes(n)
        kind = rng.choice([0, 1, 2, 3])
        seq = rng.choice([0, 1, 127, 128, 2**40, rng.randrange(2**63)])
        actor = rng.choice(["", "a", "actor-é", "x" * 200])
        chunk = rng.choice([1024, 4096, 1 << 20])
        expected = [f.SerializeToString() for f in make_frames(kind, payload, seq, actor, chunk)]
        got = encode_frames(kind, payload, seq, actor, chunk)
        assert got == expected
        assert all(pb.Frame.FromString(b).sequence == seq for b in got)


def test_fast_safetensors_writer_equals_stack_then_save() -> None:
    rows = [make_obs(0, f)["observation.images.front"] for f in range(7)]
    state = [make_obs(0, f)["observation.state"] for f in range(7)]
    tensors = {
        "obs.observation.images.front": rows,
        "obs.observation.state": state,
        "reward": np.arange(7, dtype=np.float32),
        "terminated": np.zeros(7, dtype=np.bool_),
    }
    meta = {"kind": "transitions", "count": "7"}
    fast = codec._save_rows(tensors, meta)
    assert fast is not None
    stacked = {k: v if isinstance(v, np.ndarray) else np.stack(v) for k, v in tensors.items()}
    reference = bytes(safetensors.numpy.save(stacked, metadata=meta))
    a, b = safetensors.numpy.load(fast), safetensors.numpy.load(reference)
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
    assert codec.read_metadata(fast) == codec.read_metadata(reference)
    # a non-contiguous row falls back to the library path instead of writing wrong bytes
    assert codec._save_rows({"x": [np.zeros(8, np.float32)[::2]]}, meta) is None
