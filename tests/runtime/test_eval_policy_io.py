"""load_policy: the rebuilt actor acts exactly like the algorithm that saved it; bad input fails loudly."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import (
    COUNTERS,
    PICK_STATE_DIM,
    STEP,
    image_spec,
    make_run,
    make_sac,
    oracle_actions,
    random_obs,
    tiny_root,
)

from hilrl.config.loader import save_config, to_dict
from hilrl.policies.encoder import ObservationSpec
from hilrl.runtime.checkpoint import MARKER, CheckpointError, save_checkpoint
from hilrl.runtime.policy_io import load_policy, load_policy_checkpoint, read_policy_tensors


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _policy_actions(policy: object, obs: dict[str, torch.Tensor]) -> np.ndarray:
    rows = next(iter(obs.values())).shape[0]
    return np.stack(
        [
            policy.act({k: v[i].numpy() for k, v in obs.items()}, deterministic=True)  # type: ignore[attr-defined]
            for i in range(rows)
        ]
    )


@pytest.mark.parametrize("images", [False, True], ids=["state", "images"])
def test_loaded_policy_acts_like_the_algorithm(tmp_path: Path, images: bool) -> None:
    spec = image_spec() if images else ObservationSpec(PICK_STATE_DIM)
    run, sac = make_run(tmp_path, spec)
    policy, cfg, step = load_policy(run)
    assert step == STEP
    assert policy.version == COUNTERS["weights_version"]
    assert to_dict(cfg) == to_dict(tiny_root())
    obs = random_obs(spec, 12, seed=5)
    got = _policy_actions(policy, obs)
    want = oracle_actions(sac, obs)
    assert got.shape == (12, 4)
    np.testing.assert_allclose(got, want, atol=1e-6)
    # The gripper column is the grasp critic's argmax: exactly -1, 0 or +1.
    assert set(np.unique(got[:, -1])) <= {-1.0, 0.0, 1.0}


def test_a_fresh_policy_would_not_pass(tmp_path: Path) -> None:
    """The oracle comparison can fail: an untrained rebuild acts differently."""
    _, sac = make_run(tmp_path)
    fresh = make_sac(ObservationSpec(PICK_STATE_DIM), seed=1)
    obs = random_obs(sac.obs_spec, 8, seed=2)
    assert not np.allclose(oracle_actions(fresh, obs), oracle_actions(sac, obs), atol=1e-3)


def test_checkpoint_folder_and_latest_of_several(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path, step=5)
    later = make_sac(ObservationSpec(PICK_STATE_DIM), seed=9)
    newest = save_checkpoint(
        run / "checkpoints", 11, later, config=tiny_root(), counters={"weights_version": -1}
    )
    obs = random_obs(later.obs_spec, 6, seed=3)
    for path in (run, run / "checkpoints", newest):
        policy, _, step = load_policy(path)
        assert step == 11
        assert policy.version == 11  # never published: the step
        np.testing.assert_allclose(
            _policy_actions(policy, obs), oracle_actions(later, obs), atol=1e-6
        )
    older, _, step = load_policy(run / "checkpoints" / "step_000000005")
    assert step == 5
    assert not np.allclose(_policy_actions(older, obs), oracle_actions(later, obs), atol=1e-3)


def test_only_actor_side_tensors_are_read(tmp_path: Path) -> None:
    run, sac = make_run(tmp_path)
    tensors = read_policy_tensors(run / "checkpoints" / f"step_{STEP:09d}")
    assert set(tensors) == set(sac.nets.state_dict())
    assert not any(k.startswith(("critic", "optim", "log_alpha")) for k in tensors)


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(CheckpointError, match="not found") as err:
        load_policy(missing)
    assert str(missing) in str(err.value)


def test_run_folder_without_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="no checkpoint found") as err:
        load_policy(tmp_path / "empty_run")
    assert "empty_run" in str(err.value)


def test_partial_checkpoint(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    (folder / MARKER).unlink()
    with pytest.raises(CheckpointError, match="no complete checkpoint") as err:
        load_policy(run)
    assert str(folder) in str(err.value)
    with pytest.raises(CheckpointError, match="incomplete") as err:
        load_policy(folder)
    assert str(folder) in str(err.value)


def test_missing_tensor_file(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    (folder / "algorithm-00000.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"algorithm-00000\.safetensors"):
        load_policy(folder)


def _edit_meta(folder: Path, edit: object) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    edit(meta)  # type: ignore[operator]
    (folder / "meta.json").write_text(json.dumps(meta))


def test_architecture_config_mismatch_names_the_parameter(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    _edit_meta(folder, lambda m: m["architecture_config"]["sac"].update(hidden_dims=[32, 32]))
    with pytest.raises(CheckpointError, match=r"parameter 'nets\.actor\.") as err:
        load_policy(folder)
    assert str(folder) in str(err.value)


def test_recorded_shape_mismatch_names_the_parameter(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    key = "nets.encoder.state_proj.0.weight"

    def edit(meta: dict) -> None:  # type: ignore[type-arg]
        meta["architecture"][key] = [8, 99]

    _edit_meta(folder, edit)
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        load_policy(folder)


def test_config_falls_back_to_the_run_config_file(tmp_path: Path) -> None:
    run, sac = make_run(tmp_path, with_config=False)
    with pytest.raises(CheckpointError, match="no run config"):
        load_policy(run)
    save_config(tiny_root(), run / "config.yaml")
    policy, cfg, _ = load_policy(run)
    assert to_dict(cfg) == to_dict(tiny_root())
    obs = random_obs(sac.obs_spec, 4, seed=1)
    np.testing.assert_allclose(_policy_actions(policy, obs), oracle_actions(sac, obs), atol=1e-6)


def test_overrides_change_the_config_not_the_networks(tmp_path: Path) -> None:
    run, sac = make_run(tmp_path)
    policy, cfg, _ = load_policy_checkpoint(
        run, config_overrides={"env": {"fps": 5}, "learning": {"sac": {"hidden_dims": [64]}}}
    )[:3]
    assert cfg.env.fps == 5
    obs = random_obs(sac.obs_spec, 4, seed=1)
    np.testing.assert_allclose(_policy_actions(policy, obs), oracle_actions(sac, obs), atol=1e-6)
    with pytest.raises(CheckpointError, match=r"env\.fps"):
        load_policy(run, config_overrides={"env": {"fps": -1}})


def test_copied_run_folder_still_loads(tmp_path: Path) -> None:
    """Nothing in a checkpoint points at absolute paths: a copied run loads the same."""
    run, sac = make_run(tmp_path)
    copy = tmp_path / "elsewhere"
    shutil.copytree(run, copy)
    shutil.rmtree(run)
    policy, _, _ = load_policy(copy)
    obs = random_obs(sac.obs_spec, 4, seed=1)
    np.testing.assert_allclose(_policy_actions(policy, obs), oracle_actions(sac, obs), atol=1e-6)


def test_unreadable_meta(tmp_path: Path) -> None:
    run, _ = make_run(tmp_path)
    folder = run / "checkpoints" / f"step_{STEP:09d}"
    (folder / "meta.json").write_text('{"step": 7, "arch')
    with pytest.raises(CheckpointError, match=r"meta\.json") as err:
        load_policy(run)
    assert str(folder) in str(err.value)
    (folder / "meta.json").unlink()
    with pytest.raises(CheckpointError, match=r"meta\.json"):
        load_policy(folder)
