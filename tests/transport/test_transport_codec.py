"""Payload codec and framing: exact round trips, the byte budget, and strict validation."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import safetensors.numpy
from transport_testlib import episode_stats, make_episode, make_obs

from hilrl.transport import codec
from hilrl.transport.errors import ProtocolError
from hilrl.transport.framing import Reassembler, make_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.types import EpisodeKind, EpisodeStats, LearnerProgress, Transition


def assert_same_transition(a: Transition, b: Transition) -> None:
    for name in ("observation", "next_observation"):
        oa, ob = getattr(a, name), getattr(b, name)
        assert oa.keys() == ob.keys()
        for key in oa:
            assert oa[key].dtype == ob[key].dtype and np.array_equal(oa[key], ob[key]), (name, key)
    np.testing.assert_array_equal(np.asarray(a.action, np.float32), b.action)
    for name in (
        "reward",
        "terminated",
        "truncated",
        "is_intervention",
        "discrete_penalty",
        "policy_version",
        "episode_index",
        "frame_index",
    ):
        assert getattr(a, name) == getattr(b, name), name


def test_transitions_round_trip_identical_across_episode_boundary() -> None:
    batch = make_episode(0, 0, 5) + make_episode(0, 1, 4)  # a boundary inside the batch
    batch[2] = Transition(**{**batch[2].__dict__, "terminated": True, "reward": -1.25e-7})
    decoded = codec.decode_transitions(codec.encode_transitions(batch))
    assert len(decoded) == len(batch)
    for a, b in zip(batch, decoded):
        assert_same_transition(a, b)
    # Shared observations stay shared on decode, and are read-only (so no silent aliasing).
    assert decoded[1].observation["observation.state"].base is not None
    with pytest.raises(ValueError):
        decoded[0].observation["observation.images.front"][0, 0, 0] = 1


def test_each_observation_travels_once_per_batch() -> None:
    batch = make_episode(3, 0, 32, image_shape=(128, 128, 3))
    raw_obs = sum(v.nbytes for v in batch[0].observation.values())
    per_step = len(codec.encode_transitions(batch)) / len(batch)
    assert per_step <= 1.05 * raw_obs
    # Unchained observations (copies that merely compare equal) are still deduplicated.
    copies = [Transition(**{**t.__dict__, "observation": dict(t.observation)}) for t in batch]
    assert len(codec.encode_transitions(copies)) == len(codec.encode_transitions(batch))


def test_non_chained_batch_keeps_distinct_next_observations() -> None:
    a, b = make_episode(0, 0, 1)[0], make_episode(0, 1, 1)[0]
    decoded = codec.decode_transitions(codec.encode_transitions([a, b]))
    assert_same_transition(a, decoded[0])
    assert_same_transition(b, decoded[1])


def test_episode_and_weights_round_trip() -> None:
    stats = episode_stats(4, 17)
    back = codec.decode_episode(codec.encode_episode(stats), actor_id="robot-1")
    assert back == EpisodeStats(**{**stats.__dict__, "actor_id": "robot-1"})
    weights: dict[str, np.ndarray] = {
        "enc.conv.weight": np.random.default_rng(0)
        .standard_normal((8, 3, 3, 3))
        .astype(np.float32),
        "enc.bn.num_batches_tracked": np.array(12, dtype=np.int64),
        "head.bias": np.zeros(4, dtype=np.float16),
    }
    version, got = codec.decode_weights(codec.encode_weights(weights, 42))
    assert version == 42 and got.keys() == weights.keys()
    for name, arr in weights.items():
        assert got[name].dtype == arr.dtype and np.array_equal(got[name], arr)


def _tensors(batch: list[Transition]) -> dict[str, np.ndarray]:
    return safetensors.numpy.load(codec.encode_transitions(batch))


def _save(
    tensors: dict[str, np.ndarray],
    kind: str = "transitions",
    schema: str = str(codec.SCHEMA_VERSION),
) -> bytes:
    return bytes(safetensors.numpy.save(tensors, metadata={"kind": kind, "schema_version": schema}))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.update(action=t["action"].astype(np.float64)), "dtype"),
        (lambda t: t.update(reward=np.full_like(t["reward"], np.nan)), "NaN"),
        (lambda t: t.update(obs_index=t["obs_index"] + 100), "outside"),
        (lambda t: t.update(extra=np.zeros(3, np.float32)), "unknown"),
        (lambda t: t.pop("terminated"), "missing"),
        (lambda t: t.update(frame_index=-t["frame_index"] - 1), "negative"),
        (
            lambda t: t.update(
                {"obs/observation.images.front": t["obs/observation.images.front"][..., :2]}
            ),
            "uint8",
        ),
        (
            lambda t: t.update(
                {"obs/observation.state": t["obs/observation.state"].astype(np.float64)}
            ),
            "float32",
        ),
        (lambda t: t.update({"obs/observation.state": t["obs/observation.state"][:1]}), "rows"),
        (lambda t: t.update(reward=t["reward"][:1]), "shape"),
    ],
)
def test_decode_names_the_bad_field(mutate: object, message: str) -> None:
    tensors = _tensors(make_episode(0, 0, 4))
    mutate(tensors)  # type: ignore[operator]
    with pytest.raises(ProtocolError, match=message):
        codec.decode_transitions(_save(tensors))


def test_decode_rejects_wrong_kind_schema_and_garbage() -> None:
    tensors = _tensors(make_episode(0, 0, 2))
    with pytest.raises(ProtocolError, match="kind"):
        codec.decode_transitions(_save(tensors, kind="weights"))
    with pytest.raises(ProtocolError, match="schema"):
        codec.decode_transitions(_save(tensors, schema="99"))
    # v2 kept the v1 payload layout: what an older actor spooled still decodes.
    assert len(codec.decode_transitions(_save(tensors, schema="1"))) == 2
    good = codec.encode_transitions(make_episode(0, 0, 2))
    for bad in (
        b"",
        b"\x00" * 7,
        good[:-3],
        good[:40],
        struct.pack("<Q", 1 << 40) + b"{}",
        b"\xff" * 64,
    ):
        with pytest.raises(ProtocolError):
            codec.decode_transitions(bad)
    header = json.dumps({"__metadata__": {"kind": 3}}).encode()
    with pytest.raises(ProtocolError):
        codec.decode_transitions(struct.pack("<Q", len(header)) + header)


def test_decode_caps_batch_size() -> None:
    data = codec.encode_transitions(make_episode(0, 0, 5))
    with pytest.raises(ProtocolError, match="allowed"):
        codec.decode_transitions(data, max_transitions=4)


def test_check_transition_catches_contract_breaks_at_put_time() -> None:
    good = make_episode(0, 0, 1)[0]
    keys = codec.check_transition(good, None)
    bad_image = Transition(
        **{
            **good.__dict__,
            "observation": {**good.observation, "observation.images.front": np.zeros((4, 4, 3))},
        }
    )
    with pytest.raises(ValueError, match="uint8"):
        codec.check_transition(bad_image, keys)
    nan_state = {**good.next_observation, "observation.state": np.full(6, np.nan, np.float32)}
    with pytest.raises(ValueError, match="NaN"):
        codec.check_transition(Transition(**{**good.__dict__, "next_observation": nan_state}), keys)
    with pytest.raises(ValueError, match="keys"):
        codec.check_transition(
            Transition(
                **{
                    **good.__dict__,
                    "observation": make_obs(0, 0) | {"observation.x": np.zeros(1, np.float32)},
                }
            ),
            keys,
        )
    with pytest.raises(ValueError, match="finite"):
        codec.check_transition(Transition(**{**good.__dict__, "reward": float("inf")}), keys)


def test_frames_round_trip_in_chunks_and_enforce_caps() -> None:
    payload = bytes(np.random.default_rng(1).integers(0, 256, 10_000, dtype=np.uint8))
    frames = make_frames(pb.KIND_TRANSITIONS, payload, 7, "a", chunk_bytes=1024)
    assert len(frames) == 10
    r = Reassembler(
        max_payload_bytes=20_000, chunk_bytes=1024, kinds=(pb.KIND_TRANSITIONS,), actor_id="a"
    )
    out = [r.feed(f) for f in frames]
    assert out[:-1] == [None] * 9 and out[-1] is not None
    out[-1].verify()
    assert out[-1].payload == payload and out[-1].sequence == 7
    small = Reassembler(
        max_payload_bytes=5_000, chunk_bytes=1024, kinds=(pb.KIND_TRANSITIONS,), actor_id="a"
    )
    with pytest.raises(ProtocolError, match="cap"):
        small.feed(frames[0])
    with pytest.raises(ProtocolError, match="continue"):
        r.feed(frames[0])
        r.feed(frames[2])
    with pytest.raises(ProtocolError, match="actor_id"):
        Reassembler(20_000, 1024, (pb.KIND_TRANSITIONS,), "b").feed(frames[0])
    corrupted = make_frames(pb.KIND_TRANSITIONS, payload, 8, "a", chunk_bytes=20_000)[0]
    corrupted.data = corrupted.data[:-1] + b"\x00"
    msg = Reassembler(20_000, 20_000, (pb.KIND_TRANSITIONS,), "a").feed(corrupted)
    assert msg is not None
    if payload[-1] != 0:
        with pytest.raises(ProtocolError, match="checksum"):
            msg.verify()


# ------------------------------------------------------------- typed records (schema 3)


def test_episode_kind_and_flags_are_typed_fields() -> None:
    stats = EpisodeStats(
        7, 40, 2.5, False, 3, 11, kind=EpisodeKind.EVAL, interrupted=True, operator_takeover=True
    )
    data = codec.encode_episode(stats)
    record = pb.EpisodeRecord.FromString(data)  # a proto record, not string keys
    assert record.kind == pb.EPISODE_KIND_EVAL and record.interrupted and record.operator_takeover
    assert not record.extra
    back = codec.decode_episode(data, "a")
    assert back.is_eval and back.interrupted and back.operator_takeover and back.extra == {}


def test_a_v2_episode_left_in_a_spool_still_decodes() -> None:
    tensors = {
        "episode_index": np.array([3], np.int64),
        "length": np.array([9], np.int64),
        "episode_return": np.array([1.0], np.float64),
        "success": np.array([True]),
        "intervention_steps": np.array([2], np.int64),
        "policy_version": np.array([5], np.int64),
        "extra/eval": np.array([1.0], np.float64),
        "extra/score": np.array([0.5], np.float64),
    }
    v2 = bytes(safetensors.numpy.save(tensors, metadata={"kind": "episode", "schema_version": "2"}))
    back = codec.decode_episode(v2, "a")
    assert back.kind == EpisodeKind.EVAL and back.extra == {"score": 0.5}
    assert (back.episode_index, back.length, back.policy_version) == (3, 9, 5)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": 0}, "episode kind 0"),
        ({"episode_return": float("nan")}, "episode_return"),
        ({"length": 2, "intervention_steps": 5}, "exceed its length"),
        ({"extra": {"bad name!": 1.0}}, "not allowed"),
        ({"extra": {"x": float("inf")}}, "'x'"),
    ],
)
def test_bad_episode_records_are_refused(change: dict[str, object], message: str) -> None:
    record = pb.EpisodeRecord(episode_index=1, length=5, kind=pb.EPISODE_KIND_TRAIN)
    for name, value in change.items():
        if name == "extra":
            record.extra.update(value)  # type: ignore[arg-type]
        else:
            setattr(record, name, value)
    with pytest.raises(ProtocolError, match=message):
        codec.decode_episode(record.SerializeToString())


def test_learner_progress_round_trips_and_is_checked() -> None:
    progress = LearnerProgress(updates=12, env_steps=3400, step_allowance=-1)
    assert codec.decode_progress(codec.encode_progress(progress)) == progress
    with pytest.raises(ProtocolError, match="out of range"):
        codec.decode_progress(pb.LearnerProgress(step_allowance=-5))
    with pytest.raises(ValueError):
        codec.encode_progress(LearnerProgress(updates=-1))
