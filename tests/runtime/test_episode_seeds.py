"""Reset seeds of demos, recordings and evaluations: runs seeded 0 and 1 share no layout,
a run's demos and evaluations share none, one seed reproduces its layouts, and ``hilrl
replay`` reproduces a recorded episode's seed (also when the sidecar lost it).

The seeds compared are the ones the real code paths used: those a demo / record dataset's
sidecar (``meta/hilrl_record.json``) kept, and the per-episode seeds of an evaluation.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runtime_helpers import tiny_config

from hilrl.cli.eval import DEFAULT_SEED
from hilrl.cli.main import main
from hilrl.config.root import RootConfig
from hilrl.runtime.demos import record_demos
from hilrl.runtime.evaluate import evaluate
from hilrl.runtime.record import RECORD_META, read_record_meta, record_dataset
from hilrl.types import Observation

pytest.importorskip("hilrl.robots.sim.arm")
pytestmark = pytest.mark.timeout(120)

EPISODES = 20
FINAL_EVAL_OFFSET = 1_000_000
"""``hilrl train``'s final evaluation is seeded run.seed + 1_000_000 (launcher.py)."""


def config(root: Path, seed: int, **sections: dict[str, Any]) -> RootConfig:
    """The tiny state-only pick-cube run, 3-step episodes, seeded ``seed``."""
    return tiny_config(root / "run", env={"episode_time_s": 0.3}, run={"seed": seed}, **sections)


def sidecar_seeds(dataset: Path) -> list[int]:
    episodes = read_record_meta(dataset)["episodes"]
    return [episodes[str(i)]["seed"] for i in range(len(episodes))]


class Still:
    """A policy that holds still (evaluation only needs ``act``)."""

    def act(self, obs: Observation, deterministic: bool = True) -> np.ndarray:
        return np.zeros(4, np.float32)


def eval_seeds(cfg: RootConfig, seed: int, episodes: int = EPISODES) -> list[int]:
    policy: Any = Still()
    result = evaluate(policy, cfg.env, episodes=episodes, seed=seed, max_steps=1)
    return [e.seed for e in result.episodes]


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """20 demonstrations recorded by the simulated operator in runs seeded 0 and 1."""
    out = {}
    for seed in (0, 1):
        root = tmp_path_factory.mktemp(f"demos{seed}")
        out[seed] = root / "demos"
        record_demos(config(root, seed), out[seed], EPISODES, progress=False)
    return out


def test_demos_of_runs_seeded_0_and_1_share_no_layout(
    demos: dict[int, Path], tmp_path: Path
) -> None:
    first, second = sidecar_seeds(demos[0]), sidecar_seeds(demos[1])
    assert len(set(first)) == len(set(second)) == EPISODES
    assert not set(first) & set(second)
    again = tmp_path / "again"
    record_demos(config(tmp_path, 0), again, 3, progress=False)
    assert sidecar_seeds(again) == first[:3]  # the same run seed, the same layouts


def test_evaluations_seeded_0_and_1_share_no_layout(tmp_path: Path) -> None:
    cfg = config(tmp_path, 0)
    first, second = eval_seeds(cfg, 0), eval_seeds(cfg, 1)
    assert len(set(first)) == len(set(second)) == EPISODES
    assert not set(first) & set(second)
    assert eval_seeds(cfg, 0, episodes=3) == first[:3]  # paired comparisons stay paired


def test_a_run_never_evaluates_on_its_demo_layouts(demos: dict[int, Path], tmp_path: Path) -> None:
    """Neither the final evaluation of ``hilrl train``, nor ``hilrl eval``'s default, nor
    one seeded with the run seed itself, of runs 0 and 1, meets a demo of either run."""
    cfg = config(tmp_path, 0)
    demo = set(sidecar_seeds(demos[0])) | set(sidecar_seeds(demos[1]))
    for seed in (0, 1, FINAL_EVAL_OFFSET, FINAL_EVAL_OFFSET + 1, DEFAULT_SEED):
        assert not demo & set(eval_seeds(cfg, seed)), seed


def test_recordings_seeded_0_and_1_share_no_layout(demos: dict[int, Path], tmp_path: Path) -> None:
    used = {}
    for seed in (0, 1):
        cfg = config(tmp_path, seed, teleop={"device": "none"})
        root = tmp_path / f"rec{seed}"
        cfg = replace(cfg, dataset=replace(cfg.dataset, root=str(root), num_episodes=EPISODES))
        summary = record_dataset(cfg, realtime=False, progress=False)
        used[seed] = sidecar_seeds(root)
        assert used[seed] == [e.seed for e in summary.saved]
    assert len(set(used[0])) == len(set(used[1])) == EPISODES
    assert not set(used[0]) & set(used[1])
    assert read_record_meta(tmp_path / "rec1")["seed_stream"] == "record"
    # hilrl record and a run's demos draw from different streams
    assert not set(used[0]) & set(sidecar_seeds(demos[0]))


REPLAYED = re.compile(r"seed (\d+); state error mean \S+ max (\S+)")


def test_replay_reproduces_a_demo_episodes_seed_also_without_its_sidecar_entry(
    demos: dict[int, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = tmp_path / "demos"
    shutil.copytree(demos[1], dataset)
    recorded = sidecar_seeds(dataset)[2]
    assert main(["replay", str(dataset), "--episode", "2", "--fast"]) == 0
    match = REPLAYED.search(capsys.readouterr().out)
    assert match is not None and int(match.group(1)) == recorded
    assert float(match.group(2)) < 1e-5
    # A crash between an episode's commit and the sidecar's update loses its seed: the
    # fallback draws it again from the recorded run seed and stream, as the recorder did.
    meta_path = dataset / RECORD_META
    meta = json.loads(meta_path.read_text())
    del meta["episodes"]["2"]
    meta_path.write_text(json.dumps(meta))
    assert main(["replay", str(dataset), "--episode", "2", "--fast"]) == 0
    captured = capsys.readouterr()
    assert f"no recorded seed for episode 2; using {recorded}" in captured.err
    match = REPLAYED.search(captured.out)
    assert match is not None and int(match.group(1)) == recorded
