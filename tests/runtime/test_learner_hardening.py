"""The learner against bad data and divergence: ingest checks, skipped / non-finite updates,
non-finite metrics, durable acks without saved replay, resent episodes, demo errors."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from runtime_helpers import tiny_config, tiny_config_data, write_config

from hilrl.config.loader import ConfigError
from hilrl.runtime.checkpoint import list_checkpoints
from hilrl.runtime.learner import Learner, LearnerFailed, MetricsAverage, json_safe, open_learner
from hilrl.runtime.run_dir import RunDir
from hilrl.runtime.status import RunStatus
from hilrl.runtime.stopping import StopFlag
from hilrl.types import STATE_KEY, EpisodeKind, EpisodeStats, Transition

pytestmark = pytest.mark.timeout(120)


def transitions(learner: Learner, n: int, start: int = 0, **fields: Any) -> list[Transition]:
    """``n`` contiguous state-only transitions of the learner's layout."""
    dim = learner.obs_spec.state_dim
    out = []
    for i in range(start, start + n):
        base: dict[str, Any] = {
            "observation": {STATE_KEY: np.full(dim, i * 0.01, np.float32)},
            "action": np.zeros(learner.act_spec.dim, np.float32),
            "reward": 0.5,
            "next_observation": {STATE_KEY: np.full(dim, (i + 1) * 0.01, np.float32)},
            "terminated": False,
            "truncated": False,
        }
        base.update(fields)
        out.append(Transition(**base))
    return out


def strict_json(line: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def with_field(t: Transition, **changes: Any) -> Transition:
    return Transition(**{**t.__dict__, **changes})


# ---------------------------------------------------------------------------- point 3a


def test_on_transitions_refuses_a_message_with_a_value_that_overflows_float32(
    tmp_path: Path,
) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    learner = Learner(cfg, out=io.StringIO())
    try:
        good = transitions(learner, 8)
        learner.on_transitions("actor-0", good)
        assert len(learner.trainer.replay.online) == learner.counters.env_steps == 8

        bad = transitions(learner, 8, start=8)
        bad[3] = with_field(bad[3], reward=1e39)  # finite in float64, inf in float32
        with pytest.raises(
            ValueError, match=r"^transition 3: reward 1e\+39 is not finite in float32$"
        ):
            learner.on_transitions("actor-0", bad)
        assert (
            len(learner.trainer.replay.online) == learner.counters.env_steps == 8
        )  # nothing added
        assert learner.counters.ingest_rejected == 1
        assert np.isfinite(learner.trainer.replay.online.rewards[:8]).all()
    finally:
        learner.close()


def test_a_refused_message_is_a_rejection_of_the_in_process_transport(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    with open_learner(cfg, inproc=True, out=io.StringIO()) as (learner, endpoint):
        actor = endpoint.connect("actor-0")
        bad = transitions(learner, 8)
        bad[6] = with_field(bad[6], reward=-1e39)
        actor.put_transitions(bad)
        actor.put_transitions(transitions(learner, 8, start=8))
        assert actor.flush(10.0)
        assert endpoint.actor_stats()["actor-0"].rejected == 1
        assert len(learner.trainer.replay.online) == learner.counters.env_steps == 8
        assert learner.counters.ingest_rejected == 1
        actor.close()


def test_on_transitions_checks_layout_and_every_float_field(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    learner = Learner(cfg, out=io.StringIO())
    dim = learner.obs_spec.state_dim
    try:
        cases: list[tuple[int, dict[str, Any], str]] = [
            (
                2,
                {"action": np.zeros(learner.act_spec.dim + 1, np.float32)},
                r"transition 2: action has shape",
            ),
            (
                5,
                {"action": np.array([0, np.nan, 0, 0], np.float32)},
                r"transition 5: action\[1\] nan is not finite",
            ),
            (
                1,
                {"discrete_penalty": float("inf")},
                r"transition 1: discrete_penalty inf is not finite",
            ),
            (
                4,
                {"next_observation": {STATE_KEY: np.full(dim, 1e39)}},
                r"transition 4: next_observation\['observation.state'\]\[0\] 1e\+39",
            ),
            (
                6,
                {"observation": {STATE_KEY: np.zeros(dim + 1, np.float32)}},
                r"transition 6: observation\['observation.state'\] has shape",
            ),
            (0, {"observation": {}}, r"transition 0: observation lacks \['observation.state'\]"),
            (
                7,
                {
                    "observation": {
                        STATE_KEY: np.zeros(dim, np.float32),
                        "observation.images.x": np.zeros((2, 2, 3), np.uint8),
                    }
                },
                r"transition 7: observation has keys \['observation.images.x'\] this run does not observe",
            ),
            (3, {"terminated": 2}, r"transition 3: terminated = 2"),
        ]
        for index, change, pattern in cases:
            batch = transitions(learner, 8)
            batch[index] = with_field(batch[index], **change)
            with pytest.raises(ValueError, match=pattern):
                learner.on_transitions("actor-0", batch)
        assert len(learner.trainer.replay.online) == learner.counters.env_steps == 0
        assert learner.counters.ingest_rejected == len(cases)
    finally:
        learner.close()


# ---------------------------------------------------------------------------- point 3b


def test_skipped_batches_are_not_updates_and_stop_the_learner(tmp_path: Path) -> None:
    """Replay rows that are inf in float32 (here put in behind the ingest check): every
    batch is skipped; no update is counted, and the learner stops with an error."""
    cfg = tiny_config(
        tmp_path / "run",
        train={
            "num_demo_episodes": 0,
            "warmup_transitions": 0,
            "max_consecutive_skips": 25,
            "max_runtime_s": 60.0,
        },
    )
    out = io.StringIO()
    stop = StopFlag(watch_parent=False)
    with open_learner(cfg, inproc=True, out=out) as (learner, endpoint):
        learner.trainer.replay.add_transitions(transitions(learner, 40, reward=float("inf")))
        with pytest.raises(LearnerFailed) as failed:
            learner.train(endpoint, stop)
        assert learner.counters.updates == 0
        assert learner.counters.skipped_batches >= 25
    text = str(failed.value)
    assert "25 update calls in a row" in text and "train.max_consecutive_skips=25" in text
    assert "checkpoint of the last good state" in text  # the networks are fine: saved
    run = RunDir.of(cfg.run.output_dir)
    assert len(list_checkpoints(run.checkpoints)) == 1
    lines = run.learner_jsonl.read_text().splitlines()
    last = strict_json(lines[-1])
    assert last["updates"] == 0 and last["skipped_batches"] >= 25
    status = RunStatus(run, cfg.run.total_env_steps)
    status.poll()
    assert f"skipped {last['skipped_batches']}" in status.line(1.0)


def test_nonfinite_networks_are_not_saved_and_stop_the_learner(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path / "run",
        train={
            "num_demo_episodes": 0,
            "warmup_transitions": 0,
            "max_consecutive_skips": 10,
            "max_runtime_s": 60.0,
            "checkpoint_every_s": 0.01,  # would re-save step 0 over the good one
        },
    )
    stop = StopFlag(watch_parent=False)
    with open_learner(cfg, inproc=True, out=io.StringIO()) as (learner, endpoint):
        learner.on_transitions("actor-0", transitions(learner, 40))
        good = learner.checkpoint(endpoint)
        assert good is not None
        before = (good / "meta.json").read_bytes()
        with torch.no_grad():
            for p in learner.trainer.algorithm.critic.parameters():
                p.fill_(float("nan"))
        with pytest.raises(LearnerFailed) as failed:
            learner.train(endpoint, stop)
        assert learner.counters.updates == 0
        assert learner.counters.nonfinite_losses >= 10
        assert learner.checkpoint(endpoint) is None
        version = learner.counters.weights_version
        with torch.no_grad():
            for p in learner.trainer.algorithm.nets.actor.parameters():
                p.fill_(float("nan"))
        assert learner.publish(endpoint) == version  # nan weights never reach an arm
        assert learner.run.published_version() == version
    text = str(failed.value)
    assert "non-finite losses or values" in text
    assert f"networks are non-finite, not saved; last good checkpoint: {good}" in text
    run = RunDir.of(cfg.run.output_dir)
    assert list_checkpoints(run.checkpoints) == [good]
    assert (good / "meta.json").read_bytes() == before
    # point 8: the diverged critic shows as values, counts and an alarm, in valid JSON
    records = [strict_json(line) for line in run.learner_jsonl.read_text().splitlines()]
    assert records[-1]["critic_loss"] == "nan"
    assert records[-1]["nonfinite/critic_loss"] >= 1
    assert records[-1]["nonfinite_losses"] >= 10 and records[-1]["nonfinite_metrics"] >= 10
    status = RunStatus(run, cfg.run.total_env_steps)
    status.poll()
    assert "ALARM non-finite" in status.line(1.0) and "critic_loss" in status.line(1.0)


def test_learner_cli_exits_1_when_training_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hilrl.runtime.learner as learner_mod
    from hilrl.cli.main import main

    def failing(*args: Any, **kwargs: Any) -> str:
        raise LearnerFailed("training failed: 3 update calls in a row made no real update")

    monkeypatch.setattr(learner_mod, "run_learner_process", failing)
    config = write_config(tmp_path / "c.yaml", tiny_config_data(tmp_path / "run"))
    assert main(["learner", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "hilrl learner: training failed: 3 update calls in a row made no real update"


# ---------------------------------------------------------------------------- point 8


def test_metrics_average_keeps_nonfinite_values_and_counts_them() -> None:
    avg = MetricsAverage()
    avg.add({"critic_loss": 1.0, "q_mean": 2.0})
    avg.add({"critic_loss": float("nan"), "q_mean": float("inf")})
    avg.add({"critic_loss": 3.0, "q_mean": 4.0})
    means, counts = avg.take_with_counts()
    assert math.isnan(means["critic_loss"]) and means["q_mean"] == math.inf
    assert counts == {"critic_loss": 1, "q_mean": 1}
    assert avg.take() == {} and avg.nonfinite == {}
    safe = json_safe({"a": float("nan"), "b": [float("-inf"), 1.0], "c": {"d": float("inf")}})
    assert strict_json(json.dumps(safe)) == {"a": "nan", "b": ["-inf", 1.0], "c": {"d": "inf"}}


# ---------------------------------------------------------------------------- point 7


@pytest.mark.parametrize("save_buffers", [False, True])
def test_durable_acks_need_checkpoints_that_hold_the_replay(
    tmp_path: Path, save_buffers: bool
) -> None:
    cfg = tiny_config(
        tmp_path / "run",
        train={"num_demo_episodes": 0},
        learning={"checkpoint": {"save_buffers": save_buffers}},
        transport={"durable_acks": True},
    )
    out = io.StringIO()
    with open_learner(cfg, inproc=True, out=out) as (_learner, endpoint):
        assert endpoint.durable_acks is save_buffers
    said = [line for line in out.getvalue().splitlines() if "durable_acks" in line]
    if save_buffers:
        assert not said
    else:
        assert len(said) == 1
        assert "transport.durable_acks=true" in said[0]
        assert "learning.checkpoint.save_buffers=false" in said[0]


# ---------------------------------------------------------------------------- point 9


def episode(index: int, version: int = 0, evaluate: bool = False) -> EpisodeStats:
    kind = EpisodeKind.EVAL if evaluate else EpisodeKind.TRAIN
    return EpisodeStats(index, 10, 1.5 * index, index % 2 == 0, 2, version, kind=kind)


def test_a_resumed_learner_does_not_repeat_resent_episodes(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    run = RunDir.of(cfg.run.output_dir)
    with open_learner(cfg, inproc=True, out=io.StringIO()) as (learner, endpoint):
        for i in range(3):
            learner.on_episode("actor-0", episode(i))
        learner.checkpoint(endpoint)  # counts episodes 0-2
        for i in range(3, 5):
            learner.on_episode("actor-0", episode(i))  # logged, then the learner "crashes"
        learner.on_episode("actor-0", episode(0, evaluate=True))
    with open(run.episodes_jsonl, "a", encoding="utf-8") as f:
        f.write('{"time_s":1.0,"env_st')  # torn by the crash

    out = io.StringIO()
    resumed = Learner(cfg, resume=True, out=out)
    try:
        assert resumed.counters.episodes == 5  # distinct training episodes in the file
        assert resumed.counters.actor_episodes["actor-0"] == 5
        for i in range(3, 5):  # the actor resends what the checkpoint did not hold
            resumed.on_episode("actor-0", episode(i))
        resumed.on_episode("actor-0", episode(0, evaluate=True))
        resumed.on_episode("actor-0", episode(5, version=1))  # a new one
        resumed.on_episode("actor-1", episode(3))  # another actor's episode 3
        assert resumed.counters.episodes == 7
        assert resumed.counters.actor_episodes == {"actor-0": 6, "actor-1": 4}
    finally:
        resumed.close()
    assert "torn last line" in out.getvalue()
    lines = run.episodes_jsonl.read_text().splitlines()
    records = [strict_json(line) for line in lines]  # every line whole
    keys = [(r["actor_id"], r["episode_index"], r["eval"]) for r in records]
    assert len(keys) == len(set(keys)) == 8
    assert sum(not r["eval"] for r in records) == 7


# ---------------------------------------------------------------------------- point 11


def test_an_unreadable_demo_dataset_is_one_line_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hilrl.cli.main import main

    dataset = tmp_path / "demos"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"train\.demo_dataset"):
        Learner(tiny_config(tmp_path / "run", train={"demo_dataset": str(dataset)}))
    data = tiny_config_data(tmp_path / "run2", train={"demo_dataset": str(dataset)})
    config = write_config(tmp_path / "c.yaml", data)
    assert main(["learner", "--config", str(config)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("hilrl learner: ")
    assert str(dataset) in err[0] and "not valid JSON" in err[0]


# ------------------------------------------------------------------ stale checkpoint temps


def test_learner_start_up_removes_stale_checkpoint_temps(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    with open_learner(cfg, inproc=True, out=io.StringIO()) as (learner, endpoint):
        learner.checkpoint(endpoint)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    checkpoints = RunDir.of(cfg.run.output_dir).checkpoints
    stale = checkpoints / f".tmp-step_000000007-{dead.pid}-deadbeef"
    stale.mkdir()
    (stale / "replay.safetensors").write_bytes(b"x" * 10)
    out = io.StringIO()
    Learner(cfg, resume=True, out=out).close()
    assert not stale.exists()
    assert "removed 1 folder(s) left by interrupted checkpoint saves" in out.getvalue()


def test_nonfinite_metric_strings_keep_plots_working() -> None:
    """Non-finite metrics written as strings: the plots skip those points."""
    from hilrl.runtime.plots import series

    records = [
        json_safe({"env_steps": 1, "critic_loss": float("nan")}),
        {"env_steps": 2, "critic_loss": 1.0},
    ]
    data = series(records, "critic_loss")
    assert list(data.x) == [2.0] and list(data.y) == [1.0]


def test_train_offline_counts_only_real_updates_and_stops_on_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hilrl.algorithms.sac import SAC
    from hilrl.runtime.demos import record_demos
    from hilrl.runtime.offline import train_offline

    cfg = tiny_config(tmp_path / "run", train={"max_consecutive_skips": 5})
    dataset = tmp_path / "demos"
    record_demos(cfg, dataset, 1, progress=False, out=io.StringIO())
    real_update = SAC.update
    calls = {"n": 0}

    def update(self: SAC, batch: object) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] <= 3:
            return real_update(self, batch)
        return {"skipped_batches": 1.0, "skipped_batches_total": 1.0, "temperature": 0.1}

    monkeypatch.setattr(SAC, "update", update)
    with pytest.raises(LearnerFailed, match="5 update calls in a row") as failed:
        train_offline(cfg, dataset, 50, progress=False, out=io.StringIO())
    assert calls["n"] == 8
    run = RunDir.of(cfg.run.output_dir)
    [ckpt] = list_checkpoints(run.checkpoints)
    assert str(ckpt) in str(failed.value)
    assert json.loads((ckpt / "meta.json").read_text())["counters"]["updates"] == 3
    last = strict_json(run.learner_jsonl.read_text().splitlines()[-1])
    assert last["updates"] == 3 and last["skipped_batches"] == 5
