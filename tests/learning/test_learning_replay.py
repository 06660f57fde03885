"""Replay buffer: exact next observations, n-step returns, bulk adds, memory, state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilrl.data.replay import ReplayBuffer
from hilrl.policies.encoder import ObservationSpec
from hilrl.types import Transition

CAM = "observation.images.cam"
STATE = "observation.state"
SPEC = ObservationSpec(2, ((CAM, (4, 4, 3)),))


def ob(v: int) -> dict[str, np.ndarray]:
    """An observation that encodes the integer v in both the state and the image."""
    return {STATE: np.array([v, -v], np.float32), CAM: np.full((4, 4, 3), v % 251, np.uint8)}


def step(
    v: int, nxt: int, terminated: bool = False, truncated: bool = False, interv: bool = False
) -> Transition:
    return Transition(
        ob(v),
        np.array([v / 1000.0], np.float32),
        float(v),
        ob(nxt),
        terminated,
        truncated,
        interv,
        -0.01 * v,
    )


def gather(buf: ReplayBuffer, idx: np.ndarray, n_step: int = 1, discount: float = 1.0):  # type: ignore[no-untyped-def]
    obs = {
        k: torch.empty((len(idx), *s), dtype=t.dtype)
        for (k, s), t in zip(buf.shapes.items(), buf.obs.values())
    }
    nxt = {k: torch.empty_like(v) for k, v in obs.items()}
    rows = buf.gather_into(obs, nxt, 0, idx, n_step, discount)
    return obs, nxt, rows


def values(obs: dict[str, torch.Tensor]) -> list[int]:
    state = obs[STATE][:, 0].round().long()
    # the image carries the same number: check the two stay consistent
    assert torch.equal(obs[CAM][:, 0, 0, 0].long(), state % 251)
    return state.tolist()


def all_pairs(buf: ReplayBuffer) -> dict[int, int]:
    obs, nxt, _ = gather(buf, np.arange(len(buf)))
    return dict(zip(values(obs), values(nxt)))


def test_next_observation_is_true_successor_at_termination_and_truncation() -> None:
    buf = ReplayBuffer(SPEC, 1, 50)
    for v in range(3):  # episode A: 0 -> 1 -> 2 -> 3 (terminated)
        buf.add(step(v, v + 1, terminated=v == 2))
    for v in range(10, 13):  # episode B truncated at the time limit: 12 -> 13
        buf.add(step(v, v + 1, truncated=v == 12))
    buf.add(step(20, 21))  # episode C, still running
    pairs = all_pairs(buf)
    assert pairs == {0: 1, 1: 2, 2: 3, 10: 11, 11: 12, 12: 13, 20: 21}
    _, _, rows = gather(buf, np.arange(len(buf)))
    assert rows.terminated.tolist() == [0, 0, 1, 0, 0, 0, 0]  # truncation is not termination


def test_full_ring_never_pairs_newest_with_oldest() -> None:
    buf = ReplayBuffer(SPEC, 1, 5)
    for v in range(12):  # one long episode, wraps the ring twice
        buf.add(step(v, v + 1))
    pairs = all_pairs(buf)
    assert pairs == {7: 8, 8: 9, 9: 10, 10: 11, 11: 12}


def test_non_contiguous_adds_keep_their_own_next() -> None:
    buf = ReplayBuffer(SPEC, 1, 20)
    # two actors interleaved: each transition's successor is not the next slot
    for v in range(4):
        buf.add(step(100 + v, 101 + v))
        buf.add(step(200 + v, 201 + v))
    assert all_pairs(buf) == {100 + v: 101 + v for v in range(4)} | {
        200 + v: 201 + v for v in range(4)
    }


def test_add_batch_equals_sequential_adds_across_wraparound() -> None:
    ts = [step(v, v + 1, terminated=v == 5) for v in range(6)] + [
        step(v, v + 1, truncated=v == 13) for v in range(10, 14)
    ]
    one = ReplayBuffer(SPEC, 1, 7)
    for t in ts:
        one.add(t)
    bulk = ReplayBuffer(SPEC, 1, 7)
    bulk.add_batch(
        {k: np.stack([t.observation[k] for t in ts[:3]]) for k in (STATE, CAM)},
        np.stack([t.action for t in ts[:3]]),
        np.array([t.reward for t in ts[:3]]),
        {k: np.stack([t.next_observation[k] for t in ts[:3]]) for k in (STATE, CAM)},
        np.array([t.terminated for t in ts[:3]]),
        np.array([t.truncated for t in ts[:3]]),
    )
    rest = ts[3:]
    bulk.add_batch(
        {k: np.stack([t.observation[k] for t in rest]) for k in (STATE, CAM)},
        np.stack([t.action for t in rest]),
        np.array([t.reward for t in rest]),
        {k: np.stack([t.next_observation[k] for t in rest]) for k in (STATE, CAM)},
        np.array([t.terminated for t in rest]),
        np.array([t.truncated for t in rest]),
    )
    # capacity 7 keeps the newest 7 transitions: 3, 4, 5 (terminal) and 10..13 (truncated)
    assert all_pairs(one) == all_pairs(bulk) == {v: v + 1 for v in (3, 4, 5, 10, 11, 12, 13)}
    assert np.array_equal(one.next_ref >= 0, bulk.next_ref >= 0)


def test_pool_entries_are_recycled_so_memory_stays_near_one_observation() -> None:
    spec = ObservationSpec(0, ((CAM, (32, 32, 3)),))
    buf = ReplayBuffer(spec, 1, 1000)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (5001, 32, 32, 3), dtype=np.uint8)
    for start in range(0, 5000, 100):  # 50 episodes of 100 steps, in chunks of 25
        for c in range(start, start + 100, 25):
            rows = np.arange(c, c + 25)
            done = rows == start + 99
            buf.add_batch(
                {CAM: frames[rows]},
                np.zeros((25, 1)),
                np.zeros(25),
                {CAM: frames[rows + 1]},
                done,
                np.zeros(25, bool),
            )
    assert buf.pool_capacity == 50  # never grew: ~10 episode ends + 1 pending live in a 5% pool
    ratio = buf.nbytes() / (buf.capacity * 32 * 32 * 3)
    assert ratio <= 1.1
    obs, nxt, _ = gather(buf, np.arange(1000))
    slots = np.arange(4000, 5000)  # frame ids stored in the ring, in slot order after wrap
    order = [(s - 4000) % 1000 for s in slots]
    got_obs = obs[CAM].numpy()
    got_next = nxt[CAM].numpy()
    for frame, slot in zip(slots, order):
        assert np.array_equal(got_obs[slot], frames[frame])
        assert np.array_equal(got_next[slot], frames[frame + 1])


def test_n_step_returns_stop_at_episode_boundaries() -> None:
    buf = ReplayBuffer(SPEC, 1, 20)
    for v in range(3):
        buf.add(step(v, v + 1, terminated=v == 2))  # rewards 0, 1, 2 ; terminal at 2
    for v in range(10, 14):
        buf.add(step(v, v + 1, truncated=v == 13))  # rewards 10..13 ; truncated at 13
    g = 0.5
    _, nxt, rows = gather(buf, np.arange(7), n_step=3, discount=g)
    # slot 0: 0 + g*1 + g^2*2 (terminated)        slot 4: 11 + g*12 + g^2*13 -> next 14
    expected = [
        0 + g * 1 + g * g * 2,
        1 + g * 2,
        2,
        10 + g * 11 + g * g * 12,
        11 + g * 12 + g * g * 13,
        12 + g * 13,
        13,
    ]
    assert np.allclose(rows.rewards, expected)
    assert rows.terminated.tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert values(nxt)[3:] == [13, 14, 14, 14]
    assert np.allclose(rows.bootstrap_discount[3:], [g**3, g**3, g**2, g])
    assert np.allclose(rows.discrete_penalties[3], -0.01 * (10 + g * 11 + g * g * 12))


def test_state_dict_round_trip_preserves_samples_and_continuation() -> None:
    buf = ReplayBuffer(SPEC, 1, 6)
    for v in range(8):
        buf.add(step(v, v + 1, truncated=v == 4))
    copy = ReplayBuffer(SPEC, 1, 6)
    copy.load_state_dict(buf.state_dict())
    for b in (buf, copy):
        b.add(step(8, 9))  # continues the running episode in both
    a_obs, a_next, a_rows = gather(buf, np.arange(6))
    b_obs, b_next, b_rows = gather(copy, np.arange(6))
    for k in a_obs:
        assert torch.equal(a_obs[k], b_obs[k]) and torch.equal(a_next[k], b_next[k])
    assert np.array_equal(a_rows.rewards, b_rows.rewards)
    assert all_pairs(copy) == {3: 4, 4: 5, 5: 6, 6: 7, 7: 8, 8: 9}


def test_bad_inputs_name_the_field() -> None:
    buf = ReplayBuffer(SPEC, 1, 4)
    good = step(0, 1)
    with pytest.raises(ValueError, match="uint8"):
        buf.add(
            Transition(
                {STATE: good.observation[STATE], CAM: good.observation[CAM].astype(np.float32)},
                good.action,
                0.0,
                good.next_observation,
                False,
                False,
            )
        )
    with pytest.raises(KeyError, match=r"observation\.images\.cam"):
        buf.add(
            Transition(
                {STATE: good.observation[STATE]},
                good.action,
                0.0,
                good.next_observation,
                False,
                False,
            )
        )
    with pytest.raises(ValueError, match="actions have 2 dims"):
        buf.add(
            Transition(
                good.observation, np.zeros(2, np.float32), 0.0, good.next_observation, False, False
            )
        )
    with pytest.raises(ValueError, match="empty"):
        buf.sample_indices(1, np.random.default_rng(0))
