"""``hilrl record``: episodes saved with the right fields, events, resume, Hub upload, errors."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from dataset_cli_helpers import (
    EPISODE_STEPS,
    SIM_OVERRIDES,
    ScriptedOperator,
    operator_action,
    record_sim,
    sim_config,
    tree_snapshot,
)

from hilrl.cli.main import main
from hilrl.core import TeleopEvents
from hilrl.data.lerobot import LeRobotDatasetReader
from hilrl.runtime.record import RECORD_META, read_record_meta, record_seed

pytest.importorskip("hilrl.robots.sim.arm")

SUCCESS_STEP = 7
FAILURE_STEP = 4


def cli(tmp: Path, *args: str) -> int:
    return main(["record", *SIM_OVERRIDES, f"--dataset.root={tmp}", "--no-progress", *args])


def test_cli_records_episodes_that_read_back(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    assert cli(root, "--dataset.num_episodes=2", "--dataset.task=reach") == 0
    reader = LeRobotDatasetReader(root)
    assert reader.episode_lengths == {0: EPISODE_STEPS, 1: EPISODE_STEPS}
    assert reader.fps == 10 and reader.tasks == {0: "reach"}
    assert reader.features["observation.images.front"].shape == (64, 64, 3)
    assert reader.features["action"].shape == (4,)
    for e in (0, 1):
        ep = reader.episode(e)
        assert ep["observation.images.wrist"].shape == (EPISODE_STEPS, 64, 64, 3)
        done = ep["next.done"]
        assert not done[:-1].any() and done[-1]  # only the last frame ends the episode
        assert ep["next.truncated"][-1]  # the time limit truncates, never terminates
        assert not ep["complementary_info.is_intervention"].any()  # device none
        np.testing.assert_array_equal(ep["action"], 0.0)  # the idle action holds the arm
    meta = read_record_meta(root)
    assert [meta["episodes"][k]["seed"] for k in ("0", "1")] == [
        record_seed(0, 0),
        record_seed(0, 1),
    ]
    assert meta["env"]["robot"]["camera_height"] == 64


def test_frames_hold_observation_executed_action_and_outcome(tmp_path: Path) -> None:
    """Operator actions and flags land on the right frames; success / failure end episodes."""
    from hilrl.envs import make_env

    events = {
        (1, SUCCESS_STEP): TeleopEvents(success=True),
        (2, FAILURE_STEP): TeleopEvents(failure=True),
    }
    op = ScriptedOperator(events)
    summary = record_sim(tmp_path / "ds", 3, controller=op)
    assert summary.reason == "episodes"
    assert [e.outcome for e in summary.saved] == ["time limit", "success", "failure"]
    assert op.started and op.stopped
    reader = LeRobotDatasetReader(tmp_path / "ds")
    assert reader.episode_lengths == {0: EPISODE_STEPS, 1: SUCCESS_STEP + 1, 2: FAILURE_STEP + 1}
    for e in range(3):
        ep = reader.episode(e)
        n = reader.episode_lengths[e]
        flags = ep["complementary_info.is_intervention"]
        expected = np.array([ScriptedOperator.intervenes(t) for t in range(n)], dtype=np.float32)
        np.testing.assert_array_equal(flags, expected)
        for t in range(n):
            want = operator_action(e, t) if expected[t] else np.zeros(4, np.float32)
            np.testing.assert_array_equal(ep["action"][t], want)
        assert set(np.unique(ep["complementary_info.discrete_penalty"])) <= {0.0, np.float32(-0.02)}
    success, failure = reader.episode(1), reader.episode(2)
    assert success["next.reward"][-1] == 1.0 and success["next.done"][-1]
    assert not success["next.truncated"][-1]  # a success terminates
    assert failure["next.reward"][-1] == 0.0 and failure["next.done"][-1]
    assert not failure["next.truncated"][-1]
    assert reader.episode(0)["next.reward"].sum() == 0.0

    # Independent oracle: a fresh env reset with the recorded seed gives frame 0's state,
    # and executing frame t's action gives frame t + 1's state.
    cfg = sim_config(tmp_path / "x", 1).env
    from dataclasses import replace

    env = make_env(replace(cfg, mode="replay", use_cameras=False))
    try:
        ep = reader.episode(1)
        obs, _ = env.reset(seed=read_record_meta(tmp_path / "ds")["episodes"]["1"]["seed"])
        for t in range(len(ep["action"])):
            np.testing.assert_allclose(
                obs["observation.state"], ep["observation.state"][t], atol=1e-6
            )
            obs, *_ = env.step(ep["action"][t])
    finally:
        env.close()


def test_rerecord_discards_the_attempt_and_records_it_again(tmp_path: Path) -> None:
    op = ScriptedOperator({(0, 5): TeleopEvents(rerecord=True)})
    summary = record_sim(tmp_path / "ds", 2, controller=op)
    assert summary.rerecorded == 1 and summary.discarded_frames == 5
    reader = LeRobotDatasetReader(tmp_path / "ds")
    assert reader.episode_lengths == {0: EPISODE_STEPS, 1: EPISODE_STEPS}
    # Episode 0 holds attempt 1 (the re-recording), episode 1 attempt 2.
    for e, attempt in ((0, 1), (1, 2)):
        ep = reader.episode(e)
        np.testing.assert_array_equal(ep["action"][3], operator_action(attempt, 3))
    meta = read_record_meta(tmp_path / "ds")
    assert meta["episodes"]["0"]["seed"] == record_seed(
        0, 0
    )  # the re-recording restarts the same scene


def test_resume_appends_and_keeps_existing_episodes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    record_sim(root, 2)
    before = LeRobotDatasetReader(root)
    states = [before.episode(e)["observation.state"] for e in (0, 1)]
    assert cli(root, "--dataset.num_episodes=1", "--resume", "--teleop.device=none") == 0
    after = LeRobotDatasetReader(root)
    assert after.num_episodes == 3 and after.num_frames == 3 * EPISODE_STEPS
    for e in (0, 1):
        np.testing.assert_array_equal(after.episode(e)["observation.state"], states[e])
    assert after.episode(2)["episode_index"][0] == 2
    assert read_record_meta(root)["episodes"]["2"]["seed"] == record_seed(0, 2)


def test_quit_keeps_saved_episodes_and_drops_the_partial_one(tmp_path: Path) -> None:
    summary = record_sim(
        tmp_path / "ds", 3, controller=ScriptedOperator({(1, 4): TeleopEvents(quit=True)})
    )
    assert summary.reason == "quit" and len(summary.saved) == 1
    assert LeRobotDatasetReader(tmp_path / "ds").episode_lengths == {0: EPISODE_STEPS}


def test_quit_before_any_episode_leaves_no_dataset(tmp_path: Path) -> None:
    summary = record_sim(
        tmp_path / "ds", 2, controller=ScriptedOperator({(0, 2): TeleopEvents(quit=True)})
    )
    assert summary.reason == "quit" and not summary.saved
    assert not (tmp_path / "ds").exists()


def test_a_failing_device_still_stops_the_controller_and_keeps_saved_episodes(
    tmp_path: Path,
) -> None:
    op = ScriptedOperator(fail_at=(1, 6))
    with pytest.raises(RuntimeError, match="unplugged"):
        record_sim(tmp_path / "ds", 3, controller=op)
    assert op.stopped
    reader = LeRobotDatasetReader(tmp_path / "ds")
    assert reader.episode_lengths == {0: EPISODE_STEPS}
    assert not (tmp_path / "ds" / ".hilrl-staging").exists()


def test_existing_dataset_without_resume_is_refused_untouched(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "ds"
    record_sim(root, 1)
    snap = tree_snapshot(root)
    assert cli(root, "--dataset.num_episodes=1") == 2
    assert "--resume" in capsys.readouterr().err
    assert tree_snapshot(root) == snap


def test_resume_of_a_missing_dataset_creates_nothing(tmp_path: Path, capsys: Any) -> None:
    assert cli(tmp_path / "nope", "--resume") == 2
    assert "no dataset" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_resume_with_other_camera_size_names_the_feature(tmp_path: Path, capsys: Any) -> None:
    root = tmp_path / "ds"
    record_sim(root, 1)
    snap = tree_snapshot(root)
    rc = cli(root, "--resume", "--env.robot.camera_height=32", "--env.robot.camera_width=32")
    assert rc == 2
    err = capsys.readouterr().err
    assert "observation.images.front" in err and "[64, 64, 3]" in err
    assert tree_snapshot(root) == snap


class FakeHfApi:
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def create_repo(self, **kw: Any) -> None:
        self.calls.append(("create_repo", kw))

    def upload_folder(self, **kw: Any) -> None:
        self.calls.append(("upload_folder", kw))

    def create_tag(self, **kw: Any) -> None:
        self.calls.append(("create_tag", kw))


def test_push_to_hub_uploads_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    FakeHfApi.calls = []
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(HfApi=FakeHfApi))
    root = tmp_path / "ds"
    args = ("--dataset.num_episodes=1", "--dataset.push_to_hub=true", "--dataset.repo_id=me/demo")
    assert cli(root, *args, "--dataset.private=true") == 0
    calls = dict(FakeHfApi.calls)
    assert calls["create_repo"] == {
        "repo_id": "me/demo",
        "repo_type": "dataset",
        "private": True,
        "exist_ok": True,
    }
    upload = calls["upload_folder"]
    assert Path(upload["folder_path"]) == root and upload["repo_type"] == "dataset"
    assert upload["repo_id"] == "me/demo"
    assert calls["create_tag"]["tag"] == "v3.0"


def test_push_to_hub_without_the_package_keeps_the_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import raises ImportError
    root = tmp_path / "ds"
    assert cli(root, "--dataset.num_episodes=1", "--dataset.push_to_hub=true") == 1
    assert "huggingface_hub" in capsys.readouterr().err
    assert LeRobotDatasetReader(root).num_episodes == 1


def test_sidecar_is_valid_json_next_to_lerobot_meta(tmp_path: Path) -> None:
    record_sim(tmp_path / "ds", 1)
    data = json.loads((tmp_path / "ds" / RECORD_META).read_text())
    assert data["env"]["mode"] == "record" and data["episodes"]["0"]["length"] == EPISODE_STEPS


def test_default_device_in_sim_is_the_simulated_operator(tmp_path: Path, capsys: Any) -> None:
    """Without teleop.device the sim records demonstrations with 'sim', and they replay."""
    root = tmp_path / "ds"
    overrides = [o for o in SIM_OVERRIDES if not o.startswith("--teleop.device")]
    rc = main(
        [
            "record",
            *overrides,
            "--env.episode_time_s=2.5",
            "--teleop.sim.seed=0",
            f"--dataset.root={root}",
            "--dataset.num_episodes=2",
            "--no-progress",
        ]
    )
    assert rc == 0
    reader = LeRobotDatasetReader(root)
    assert reader.num_episodes == 2
    meta = read_record_meta(root)
    assert meta["teleop_device"] == "sim"
    for e in (0, 1):
        ep = reader.episode(e)
        assert ep["complementary_info.is_intervention"].all()  # drive_always in record
        assert meta["episodes"][str(e)]["outcome"] == "success"
        assert ep["next.reward"][-1] == 1.0 and not ep["next.truncated"][-1]
    capsys.readouterr()
    # the demonstrations (grasp and lift: contacts included) replay exactly in the sim
    assert main(["replay", str(root), "--episode", "1", "--fast"]) == 0
    out = capsys.readouterr().out
    assert "max 0.00000" in out and "early" not in out, out


class ListSink:
    """An in-memory EpisodeSink: what the recorder hands to the writer."""

    def __init__(self) -> None:
        self.episodes: list[list[dict[str, Any]]] = []
        self.buffer: list[dict[str, Any]] = []

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    @property
    def episode_frames(self) -> int:
        return len(self.buffer)

    def add_frame(self, frame: Any) -> None:
        self.buffer.append(dict(frame))

    def discard_episode(self) -> None:
        self.buffer = []

    def save_episode(self, task: str) -> int:
        self.episodes.append(self.buffer)
        self.buffer = []
        return len(self.episodes) - 1


def test_pause_records_nothing_and_realtime_paces_every_tick(tmp_path: Path) -> None:
    from hilrl.runtime.record import Recorder, RecordOptions, open_record_env

    now = [0.0]
    slept: list[float] = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        now[0] += dt

    # pause after step 3; the pause loop polls steps 4, 5, 6 and resumes on 6
    op = ScriptedOperator({(0, 3): TeleopEvents(pause=True), (0, 6): TeleopEvents(pause=True)})
    sink = ListSink()
    cfg = sim_config(tmp_path / "unused", 1, "--env.use_cameras=false")
    with open_record_env(cfg, op) as (env, ctrl):
        options = RecordOptions(num_episodes=1, task="t", fps=10, realtime=True)
        rec = Recorder(env, ctrl, sink, options, progress=False, clock=lambda: now[0], sleep=sleep)
        summary = rec.run()
    assert summary.reason == "episodes" and op.stopped
    (frames,) = sink.episodes
    assert len(frames) == EPISODE_STEPS
    assert op.step == EPISODE_STEPS + 3  # three polls while paused, no env steps
    # after the pause, frame t is driven by the operator's step t + 3: frame 4 by step 7
    # (idle; unpaused it would have been step 4, an intervention), frame 6 by step 9
    np.testing.assert_array_equal(frames[4]["action"], np.zeros(4, np.float32))
    np.testing.assert_array_equal(frames[6]["action"], operator_action(0, 9))
    # one period per tick: 14 between the 15 steps, 2 between the 3 polls while paused
    assert len(slept) == EPISODE_STEPS - 1 + 2
    assert sum(slept) == pytest.approx(0.1 * len(slept))
