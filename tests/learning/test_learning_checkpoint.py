"""Checkpoints: exact resume, atomic writes, refusal of partial or foreign checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from learning_helpers import CAM, STATE, tiny_encoder_cfg, tiny_sac_cfg, tiny_spec

from hilrl.algorithms.sac import SAC
from hilrl.config.learner import ReplayConfig
from hilrl.data.mixer import MixedSampler, ReplayBuffers
from hilrl.policies.sac_policy import ActionSpec
from hilrl.runtime import checkpoint as ckpt
from hilrl.runtime.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
)
from hilrl.types import Transition

SPEC = tiny_spec()
ACTION = ActionSpec(3, has_gripper=True)
RCFG = ReplayConfig(
    capacity=64, demo_capacity=32, intervention_capacity=32, batch_size=8, prefetch=0, seed=1
)


def make(seed: int, **sac_kw: object) -> tuple[SAC, ReplayBuffers, MixedSampler]:
    torch.manual_seed(seed)
    sac = SAC(SPEC, ACTION, tiny_sac_cfg(**sac_kw), tiny_encoder_cfg())
    bufs = ReplayBuffers(SPEC, 3, RCFG)
    return sac, bufs, MixedSampler(bufs, RCFG, chunks=sac.cfg.utd_ratio)


def fill(bufs: ReplayBuffers, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def ob() -> dict[str, np.ndarray]:
        return {
            STATE: rng.normal(size=3).astype(np.float32),
            CAM: rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        }

    o = ob()
    for i in range(40):
        nxt = ob()
        bufs.add(
            Transition(
                o,
                rng.uniform(-1, 1, 3).astype(np.float32),
                float(rng.normal()),
                nxt,
                i % 13 == 12,
                False,
                i % 5 == 0,
            )
        )
        o = ob() if i % 13 == 12 else nxt


def probe() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(9)
    return {
        STATE: torch.randn(4, 3, generator=g),
        CAM: torch.randint(0, 255, (4, 16, 16, 3), dtype=torch.uint8, generator=g),
    }


@pytest.mark.parametrize("compiled", [False, True])
def test_resume_gives_identical_actor_and_bitwise_identical_next_update(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiled: bool
) -> None:
    """Also for ``sac.compile`` (whole compiled steps keep their Adam state in the
    optimisers), traced with the fast aot_eager backend."""
    real: Callable[..., Any] = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **_: real(fn, backend="aot_eager", dynamic=False)
    )
    kw = {"compile": compiled}
    sac, bufs, sampler = make(0, **kw)
    fill(bufs, 0)
    for _ in range(3):
        sac.update(sampler.next())
    path = save_checkpoint(
        tmp_path,
        3,
        sac,
        buffers=bufs,
        sampler=sampler,
        config={"note": "x"},
        counters={"env_steps": 40},
    )
    with torch.no_grad():
        actor_before = sac.nets.act_batch(probe(), deterministic=True)
    metrics_a = sac.update(sampler.next())
    tensors_a = sac.state_dict()["tensors"]
    assert isinstance(tensors_a, dict)
    after_a = {k: v.clone() for k, v in tensors_a.items()}

    sac_b, bufs_b, sampler_b = make(123, **kw)  # different init, empty buffers
    torch.manual_seed(999)  # and a different global RNG state
    info = restore_checkpoint(path, sac_b, buffers=bufs_b, sampler=sampler_b)
    assert (info.step, info.counters, info.config) == (3, {"env_steps": 40}, {"note": "x"})
    assert len(bufs_b.online) == 40 and len(bufs_b.interventions) == 8
    assert sac_b.critic_steps == 6 and sac_b.actor_steps == 3
    with torch.no_grad():
        assert torch.equal(sac_b.nets.act_batch(probe(), deterministic=True), actor_before)
    metrics_b = sac_b.update(sampler_b.next())
    assert metrics_a == metrics_b
    after_b = sac_b.state_dict()["tensors"]
    assert isinstance(after_b, dict) and set(after_b) == set(after_a)
    for k, v in after_a.items():
        assert torch.equal(v, after_b[k]), k  # includes Adam moments and step counts


def test_partial_checkpoint_is_refused_and_a_failed_save_keeps_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sac, bufs, _ = make(0)
    fill(bufs, 1)
    good = save_checkpoint(tmp_path, 1, sac, buffers=bufs)
    real = ckpt._write_part

    def crash(folder: Path, name: str, state: object) -> None:
        if name == "replay":
            raise OSError("disk full")
        real(folder, name, state)  # type: ignore[arg-type]

    monkeypatch.setattr(ckpt, "_write_part", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, sac, buffers=bufs)
    assert list_checkpoints(tmp_path) == [good] == [latest_checkpoint(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]  # no temp folder left

    (good / ckpt.MARKER).unlink()
    with pytest.raises(CheckpointError, match="incomplete"):
        restore_checkpoint(good, sac)
    assert latest_checkpoint(tmp_path) is None


def test_checkpoint_of_another_architecture_names_the_parameter(tmp_path: Path) -> None:
    sac, _, _ = make(0)
    path = save_checkpoint(tmp_path, 1, sac)
    wider, _, _ = make(0, hidden_dims=(16, 8))
    before = {k: v.clone() for k, v in wider._network_tensors().items()}
    with pytest.raises(CheckpointError, match=r"parameter 'critic\.net\.\d\.bias' has shape"):
        restore_checkpoint(path, wider)
    other_act, _, _ = make(0, activation="tanh")
    with pytest.raises(
        CheckpointError, match=r"'sac\.activation' is 'relu' in the checkpoint, 'tanh' here"
    ):
        restore_checkpoint(path, other_act)
    for k, v in wider._network_tensors().items():
        assert torch.equal(v, before[k])  # a refused load changes nothing


def test_requested_parts_must_exist_and_old_checkpoints_are_pruned(tmp_path: Path) -> None:
    sac, bufs, _ = make(0)
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, step, sac, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000020", "step_000000030"]
    with pytest.raises(CheckpointError, match="no 'replay' part"):
        restore_checkpoint(tmp_path / "step_000000030", sac, buffers=bufs)
    with pytest.raises(CheckpointError, match="not found"):
        restore_checkpoint(tmp_path / "step_000000010", sac)
    save_checkpoint(tmp_path, 30, sac, keep_last=2)  # re-saving a step replaces it atomically
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_000000020", "step_000000030"]


def test_rng_states_round_trip() -> None:
    import random

    state = ckpt.rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ckpt.set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
