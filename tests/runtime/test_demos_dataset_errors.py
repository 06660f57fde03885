"""A demo dataset the learner cannot read fails with a :class:`DatasetError` that names
the dataset folder and the problem (never a misleading "file not found")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_helpers import tiny_config

from hilrl.data.lerobot import DatasetError
from hilrl.data.mixer import ReplayBuffers
from hilrl.policies.encoder import ObservationSpec
from hilrl.runtime.demos import ensure_demos, load_demos

pytest.importorskip("hilrl.robots.sim.arm")
pytestmark = pytest.mark.timeout(120)

STATE_DIM, ACTION_DIM = 9, 4
"""State-only pick_cube: 6 joints + end-effector position; ee_delta x, y, z + gripper."""


def test_a_demo_dataset_declaring_another_version_names_the_folder_and_version(
    tmp_path: Path,
) -> None:
    dataset = tmp_path / "demos"
    cfg = tiny_config(
        tmp_path / "run",
        env={"episode_time_s": 0.3},
        train={"demo_dataset": str(dataset), "num_demo_episodes": 2},
    )
    assert ensure_demos(cfg, progress=False) == dataset  # recorded in the sim
    spec = ObservationSpec(STATE_DIM)
    buffers = ReplayBuffers(spec, ACTION_DIM, cfg.learning.replay)
    assert load_demos(buffers, dataset, spec, ACTION_DIM) == (2, 6)

    info_path = dataset / "meta" / "info.json"
    info = json.loads(info_path.read_text())
    info["codebase_version"] = "v2.1"
    info_path.write_text(json.dumps(info))
    assert ensure_demos(cfg, progress=False) == dataset  # there: nothing recorded again
    fresh = ReplayBuffers(spec, ACTION_DIM, cfg.learning.replay)
    with pytest.raises(DatasetError) as err:
        load_demos(fresh, dataset, spec, ACTION_DIM)
    message = str(err.value)
    assert str(dataset) in message and "'v2.1'" in message
    assert "not found" not in message
