"""``hilrl train`` end to end: processes, run folder, Ctrl-C, resume; ``train-offline``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import tiny_config, tiny_config_data, write_config

from hilrl.config.loader import load_config
from hilrl.config.root import RootConfig
from hilrl.runtime.checkpoint import MARKER, latest_checkpoint, list_checkpoints, read_meta
from hilrl.runtime.launcher import plan_actors, train
from hilrl.runtime.run_dir import EPISODE_FIELDS, LEARNER_FIELDS, RunDir, read_jsonl

pytestmark = pytest.mark.timeout(120)


def _hilrl(*args: str) -> list[str]:
    return [sys.executable, "-m", "hilrl.cli.main", *args]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_train_runs_learner_and_actor_processes_and_fills_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir.of(tmp_path / "run")
    data = tiny_config_data(run.root)
    data["train"].update(final_eval_episodes=2, final_eval_videos=1)
    # an inline token (children get it through their environment, never from a file) and
    # a spool folder of the user's, which the run cleans up after itself
    data["transport"].update(token="tiny-secret-token", spool_dir=str(tmp_path / "spool"))
    config = write_config(tmp_path / "tiny.yaml", data)
    proc = subprocess.run(
        _hilrl("train", "--config", str(config), "--no-status"),
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "120/120 env steps" in proc.stderr
    monkeypatch.setenv("HILRL_TRANSPORT_TOKEN", "tiny-secret-token")  # redacted in the file
    saved = load_config(RootConfig, run.config)
    assert saved.run.total_env_steps == 120 and saved.train.num_demo_episodes == 2
    ckpt = latest_checkpoint(run.checkpoints)
    assert ckpt is not None and (ckpt / MARKER).is_file()
    meta = read_meta(ckpt)
    assert {"algorithm", "replay", "sampler", "rng"} <= set(meta["parts"])
    assert meta["counters"]["env_steps"] == 120
    assert meta["counters"]["demo_transitions"] > 0
    episodes, _ = read_jsonl(run.episodes_jsonl)
    assert episodes and all(set(EPISODE_FIELDS) <= set(e) for e in episodes)
    assert episodes[-1]["env_steps"] <= 120
    learner, _ = read_jsonl(run.learner_jsonl)
    assert learner and all(set(LEARNER_FIELDS) <= set(r) for r in learner)
    assert learner[-1]["env_steps"] == 120 and learner[-1]["updates"] > 0
    pids = json.loads(run.processes_file.read_text())
    assert not _alive(pids["learner"]) and not any(_alive(p) for p in pids["actors"].values())
    assert (run.demos / "meta" / "info.json").is_file()
    # the final evaluation of the last checkpoint, without operator, with one video
    evals, _ = read_jsonl(run.root / "metrics" / "eval.jsonl")
    assert len(evals) == 1 and evals[0]["episodes"] == 2 and evals[0]["eval"] is True
    assert len(list((run.root / "videos").glob("*.mp4"))) == 1
    assert "final evaluation: success" in proc.stderr
    for written in (run.config, ckpt / "meta.json"):
        assert "tiny-secret-token" not in written.read_text()
    assert not (tmp_path / "spool" / run.run_id()).exists()


def test_ctrl_c_stops_every_process_and_leaves_a_complete_checkpoint(tmp_path: Path) -> None:
    run = RunDir.of(tmp_path / "run")
    data = tiny_config_data(run.root, run={"total_env_steps": 1_000_000})
    config = write_config(tmp_path / "long.yaml", data)
    proc = subprocess.Popen(
        _hilrl("train", "--config", str(config), "--no-status"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            lines, _ = read_jsonl(run.learner_jsonl)
            if lines and lines[-1]["updates"] > 0 and lines[-1]["env_steps"] > 0:
                break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        else:
            pytest.fail("training never started")
        pids = json.loads(run.processes_file.read_text())
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    children = [pids["learner"], *pids["actors"].values()]
    assert children and not any(_alive(p) for p in children)
    ckpt = latest_checkpoint(run.checkpoints)
    assert ckpt is not None
    counters = read_meta(ckpt)["counters"]
    assert counters["env_steps"] > 0 and counters["updates"] > 0
    assert not any(p.name.startswith(".tmp") for p in run.checkpoints.iterdir())


def test_resume_continues_steps_episodes_and_weight_versions(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"inprocess": True})
    first = train(cfg, status=False)
    assert first.exit_code == 0
    run = RunDir.of(cfg.run.output_dir)
    before = read_meta(latest_checkpoint(run.checkpoints))["counters"]  # type: ignore[arg-type]
    assert before["env_steps"] == 120
    episodes_before, _ = read_jsonl(run.episodes_jsonl)

    more = tiny_config(tmp_path / "run", train={"inprocess": True}, run={"total_env_steps": 200})
    second = train(more, resume=True, status=False)
    assert second.exit_code == 0
    after = read_meta(latest_checkpoint(run.checkpoints))["counters"]  # type: ignore[arg-type]
    assert after["env_steps"] == 200
    assert after["updates"] > before["updates"]
    assert after["weights_version"] > before["weights_version"]
    assert after["episodes"] > before["episodes"]
    episodes, _ = read_jsonl(run.episodes_jsonl)
    new = episodes[len(episodes_before) :]
    assert new and min(e["env_steps"] for e in new) >= 120
    assert min(e["policy_version"] for e in new) > before["weights_version"]
    assert min(e["episode_index"] for e in new) == before["actor_episodes"]["actor-0"]
    assert min(e["time_s"] for e in new) >= before["elapsed_s"]

    with pytest.raises(Exception, match="earlier run"):
        train(more, status=False)  # a fresh run over an existing one is refused


def test_train_offline_writes_a_checkpoint_an_actor_can_load(tmp_path: Path) -> None:
    from hilrl.runtime.demos import record_demos
    from hilrl.runtime.offline import train_offline
    from hilrl.runtime.policy_io import load_policy

    cfg = tiny_config(tmp_path / "run")
    dataset = tmp_path / "demos"
    record_demos(cfg, dataset, 2, progress=False)
    result = train_offline(cfg, dataset, 12, progress=False)
    assert result.updates == 12 and result.demo_transitions > 0
    assert (result.checkpoint / MARKER).is_file()
    meta = read_meta(result.checkpoint)
    assert meta["counters"]["updates"] == 12 and meta["counters"]["env_steps"] == 0
    policy, _, step = load_policy(cfg.run.output_dir)
    assert step == 12
    obs = {"observation.state": np.zeros(policy.nets.obs_spec.state_dim, np.float32)}
    action = policy.act(obs, deterministic=True)
    assert action.shape == (policy.nets.action_spec.dim,) and np.all(np.abs(action) <= 1)
    assert len(list_checkpoints(RunDir.of(cfg.run.output_dir).checkpoints)) >= 1


def test_steps_are_split_over_actors_and_resumed_episode_indices_kept() -> None:
    plans = plan_actors(3, 10, {"actor-1": 7})
    assert [p.max_steps for p in plans] == [4, 3, 3]
    assert sum(p.max_steps for p in plans) == 10
    assert [p.first_episode for p in plans] == [0, 7, 0]
    assert [p.actor_id for p in plan_actors(4, 2)] == ["actor-0", "actor-1"]
