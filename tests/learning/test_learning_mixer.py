"""Routing into online / demo / intervention buffers, batch mixing, augmentation, prefetch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hilrl.config.learner import ReplayConfig
from hilrl.data.augment import (
    draw_shifts,
    gather_shifted,
    image_storage,
    random_shift,
    shift_reference,
)
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.policies.encoder import ObservationSpec
from hilrl.types import Transition

CAM = "observation.images.cam"
STATE = "observation.state"
SPEC = ObservationSpec(1, ((CAM, (8, 8, 3)),))


def ob(v: float) -> dict[str, np.ndarray]:
    return {STATE: np.array([v], np.float32), CAM: np.zeros((8, 8, 3), np.uint8)}


def transition(v: float, interv: bool = False) -> Transition:
    # the reward marks the source: 1 online policy step, 2 intervention, 3 demo
    return Transition(
        ob(v), np.zeros(2, np.float32), 2.0 if interv else 1.0, ob(v + 0.5), False, True, interv
    )


def filled(cfg: ReplayConfig, online: int = 40, interv: int = 10, demos: int = 30) -> ReplayBuffers:
    bufs = ReplayBuffers(SPEC, 2, cfg)
    bufs.add_transitions(
        [transition(i) for i in range(online)] + [transition(1000 + i, True) for i in range(interv)]
    )
    if demos:
        obs: dict[str, np.ndarray] = {
            STATE: np.arange(demos, dtype=np.float32)[:, None],
            CAM: np.zeros((demos, 8, 8, 3), np.uint8),
        }
        bufs.add_demos(
            obs,
            np.zeros((demos, 2)),
            np.full(demos, 3.0),
            obs,
            np.zeros(demos, bool),
            np.ones(demos, bool),
        )
    return bufs


def test_interventions_land_in_online_and_intervention_buffers() -> None:
    bufs = filled(
        ReplayConfig(capacity=100, demo_capacity=100, intervention_capacity=100, prefetch=0)
    )
    assert len(bufs.online) == 50
    assert len(bufs.interventions) == 10
    assert len(bufs.demos) == 30
    assert bufs.online.is_intervention[:50].sum() == 10
    assert np.all(bufs.interventions.rewards[:10] == 2.0)


def test_each_chunk_is_half_online_half_offline() -> None:
    cfg = ReplayConfig(
        capacity=100,
        demo_capacity=100,
        intervention_capacity=100,
        batch_size=64,
        prefetch=0,
        augment=False,
    )
    sampler = MixedSampler(filled(cfg), cfg, chunks=3)
    batch = sampler.sample()
    assert batch.actions.shape == (192, 2)
    total_demo = total_int_offline = 0
    for c in range(3):
        r = batch.rewards[c * 64 : (c + 1) * 64]
        online_rows = int((r == 1.0).sum()) + int(batch.is_intervention[c * 64 : c * 64 + 32].sum())
        assert online_rows == 32  # exactly half of every UTD chunk from the online buffer
        total_demo += int((r[32:] == 3.0).sum())
        total_int_offline += int((r[32:] == 2.0).sum())
    # pooled by size: 30 demos vs 10 interventions -> about 3:1 of the 96 offline rows
    assert total_demo + total_int_offline == 96
    assert 56 <= total_demo <= 88


def test_fixed_intervention_ratio_and_empty_sources() -> None:
    cfg = ReplayConfig(
        batch_size=40,
        intervention_ratio=0.25,
        prefetch=0,
        augment=False,
        capacity=100,
        demo_capacity=100,
        intervention_capacity=100,
    )
    bufs = filled(cfg)
    comp = MixedSampler(bufs, cfg).composition()
    assert comp == [(20, 15, 5)]
    only_online = filled(cfg, interv=0, demos=0)
    assert MixedSampler(only_online, cfg).composition() == [(40, 0, 0)]
    offline = ReplayConfig(
        batch_size=40,
        online_ratio=0.0,
        prefetch=0,
        capacity=100,
        demo_capacity=100,
        intervention_capacity=100,
    )
    demos_only = filled(offline, online=0, interv=0)
    batch = MixedSampler(demos_only, offline).sample()
    assert torch.all(batch.rewards == 3.0)  # offline training: demo buffer only
    empty = ReplayBuffers(SPEC, 2, offline)
    with pytest.raises(ValueError, match="empty"):
        MixedSampler(empty, offline).sample()


@pytest.mark.parametrize("method", ["groups", "gather"])
def test_random_shift_matches_pad_and_crop_oracle(method: str) -> None:
    g = torch.Generator().manual_seed(3)
    imgs = torch.randint(0, 256, (6, 10, 12, 3), dtype=torch.uint8, generator=g)
    pad = 4
    gen = torch.Generator().manual_seed(7)
    out = random_shift(imgs, pad, gen, method=method)
    # replay the generator to learn the offsets the function drew
    shifts = torch.randint(0, 2 * pad + 1, (2, 6), generator=torch.Generator().manual_seed(7)) - pad
    for i in range(6):
        ref = shift_reference(imgs[i], int(shifts[0, i]), int(shifts[1, i]), pad)
        assert torch.equal(out[i], ref)
    assert out.dtype == torch.uint8 and out.shape == imgs.shape
    assert not torch.equal(out, imgs)


def test_fused_gather_shift_matches_pad_and_crop_oracle_up_to_the_storage_ends() -> None:
    store = image_storage(5, (10, 12, 3), torch.device("cpu"))
    store.copy_(torch.randint(0, 256, store.shape, dtype=torch.uint8))
    index = torch.tensor([0, 4, 2, 0, 4, 1, 3] * 12)  # the first and last image: slack reads
    dy, dx = draw_shifts(len(index), 4, torch.Generator().manual_seed(1), torch.device("cpu"))
    out = torch.empty((len(index), 10, 12, 3), dtype=torch.uint8)
    gather_shifted(store, index, dy, dx, out)
    assert set(dx.tolist()) == set(range(-4, 5))  # every offset was exercised
    for i in range(len(index)):
        ref = shift_reference(store[int(index[i])], int(dy[i]), int(dx[i]), 4)
        assert torch.equal(out[i], ref), i
    with pytest.raises(ValueError, match="image_storage"):
        gather_shifted(store.clone(), index, dy, dx, out)


def test_sampled_images_are_shifted_copies_of_the_right_observations() -> None:
    """End to end through the fused CPU path: episode ends (explicit next observations in
    the pool) included, every sampled image is some pad-and-crop shift of the stored
    observation (or next observation) of the transition its state names."""
    pad = 2
    cfg = ReplayConfig(
        capacity=64,
        demo_capacity=8,
        intervention_capacity=8,
        batch_size=32,
        prefetch=0,
        augment_pad=pad,
        online_ratio=1.0,
    )
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (60, 8, 8, 3), dtype=np.uint8)

    def obs(i: int) -> dict[str, np.ndarray]:
        return {STATE: np.array([i], np.float32), CAM: frames[i]}

    bufs = ReplayBuffers(SPEC, 2, cfg)
    ts = []
    for i in range(40):  # episodes of 7 steps; each ends in an observation no slot holds
        end = i % 7 == 6
        nxt = 50 + i % 10 if end else i + 1
        ts.append(Transition(obs(i), np.zeros(2, np.float32), 1.0, obs(nxt), end, False))
    bufs.add_transitions(ts)
    expected_next = {int(t.observation[STATE][0]): int(t.next_observation[STATE][0]) for t in ts}
    offsets = [(dy, dx) for dy in range(-pad, pad + 1) for dx in range(-pad, pad + 1)]

    def is_shift_of(img: torch.Tensor, frame: int) -> bool:
        src = torch.from_numpy(frames[frame])
        return any(torch.equal(img, shift_reference(src, dy, dx, pad)) for dy, dx in offsets)

    batch = MixedSampler(bufs, cfg, chunks=2).sample()
    ids = batch.observations[STATE][:, 0].long().tolist()
    assert any(expected_next[i] >= 50 for i in ids)  # pool rows were sampled
    unshifted = 0
    for row, i in enumerate(ids):
        assert is_shift_of(batch.observations[CAM][row], i), row
        assert is_shift_of(batch.next_observations[CAM][row], expected_next[i]), row
        unshifted += int(torch.equal(batch.observations[CAM][row], torch.from_numpy(frames[i])))
    assert unshifted < len(ids) // 2  # most rows moved


def test_prefetched_batches_match_direct_sampling_and_close_cleanly() -> None:
    cfg = ReplayConfig(
        capacity=100,
        demo_capacity=100,
        intervention_capacity=100,
        batch_size=16,
        prefetch=2,
        seed=5,
    )
    direct_cfg = ReplayConfig(
        capacity=100,
        demo_capacity=100,
        intervention_capacity=100,
        batch_size=16,
        prefetch=0,
        seed=5,
    )
    bufs = filled(cfg)
    pre = MixedSampler(bufs, cfg, chunks=2)
    direct = MixedSampler(bufs, direct_cfg, chunks=2)
    try:
        for _ in range(3):
            a, b = pre.next(), direct.next()
            assert torch.equal(a.observations[STATE], b.observations[STATE])
            assert torch.equal(a.observations[CAM], b.observations[CAM])
            assert torch.equal(a.rewards, b.rewards)
    finally:
        pre.close()
    assert pre._thread is None


def test_prefetch_thread_reports_sampling_errors() -> None:
    cfg = ReplayConfig(batch_size=4, prefetch=1)
    sampler = MixedSampler(ReplayBuffers(SPEC, 2, cfg), cfg)
    with pytest.raises(ValueError, match="empty"):
        sampler.next()
    sampler.close()


def test_run_seed_changes_the_sampled_rows_and_repeats_with_the_same_seed() -> None:
    cfg = ReplayConfig(
        capacity=100, demo_capacity=100, intervention_capacity=100, batch_size=16, prefetch=0
    )
    bufs = filled(cfg)

    def rows(run_seed: int | None) -> torch.Tensor:
        sampler = MixedSampler(bufs, cfg, run_seed=run_seed)
        return torch.cat([sampler.next().observations[STATE] for _ in range(3)])

    assert torch.equal(rows(7), rows(7))
    assert not torch.equal(rows(7), rows(8))
    assert torch.equal(rows(None), rows(None))  # cfg.seed alone, as before
