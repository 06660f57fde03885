"""The learner over a real gRPC server on a free port: ingest, logs, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from runtime_helpers import tiny_config

from hilrl.runtime.actor import ActorLoop, ActorOptions, open_actor
from hilrl.runtime.checkpoint import MARKER, latest_checkpoint, read_meta
from hilrl.runtime.learner import Learner, open_learner
from hilrl.runtime.run_dir import EPISODE_FIELDS, LEARNER_FIELDS, RunDir, read_jsonl
from hilrl.runtime.stopping import StopFlag
from hilrl.transport import ActorClient

pytestmark = pytest.mark.timeout(90)


def test_learner_ingests_actor_data_over_grpc(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    with open_learner(cfg) as (learner, endpoint):
        assert endpoint.port > 0
        info = json.loads(RunDir.of(cfg.run.output_dir).learner_file.read_text())
        assert info["port"] == endpoint.port and info["run_id"] == learner.run_id
        learner.publish(endpoint)
        actor_cfg = replace(cfg, transport=replace(cfg.transport, port=endpoint.port))
        with open_actor(actor_cfg) as (env, policy, arch):
            assert arch == learner.arch_hash  # same config: same networks
            client = ActorClient(actor_cfg.transport, "actor-0", learner.run_id, arch)
            try:
                summary = ActorLoop(
                    env, policy, client, ActorOptions("actor-0", max_steps=30)
                ).run()
                assert client.flush(20.0)
            finally:
                client.close()
        assert endpoint.wait_idle(10.0)
        buffers = learner.trainer.replay
        assert len(buffers.online) == learner.counters.env_steps == 30
        assert len(buffers.interventions) == int(buffers.online.is_intervention[:30].sum())
        assert len(buffers.interventions) > 0
        assert len(buffers.demos) == 0
        assert learner.counters.episodes == summary.episodes > 0
        path = learner.checkpoint(endpoint)
    meta = read_meta(path)
    assert (path / MARKER).is_file()
    assert meta["counters"]["env_steps"] == 30
    assert meta["counters"]["transport"]["acked"]["actor-0"] > 0
    assert meta["counters"]["actor_episodes"]["actor-0"] == summary.episodes
    episodes, _ = read_jsonl(RunDir.of(cfg.run.output_dir).episodes_jsonl)
    assert len(episodes) == summary.episodes
    for record in episodes:
        assert set(EPISODE_FIELDS) <= set(record)
        assert record["actor_id"] == "actor-0" and record["eval"] is False
    assert not RunDir.of(cfg.run.output_dir).learner_file.exists()  # removed at close


def test_an_actor_with_another_architecture_is_refused(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    with open_learner(cfg) as (learner, endpoint):
        learner.publish(endpoint)
        other = replace(cfg.learning, sac=replace(cfg.learning.sac, hidden_dims=(8,)))
        actor_cfg = replace(
            cfg, learning=other, transport=replace(cfg.transport, port=endpoint.port)
        )
        with open_actor(actor_cfg) as (_env, _policy, arch):
            assert arch != learner.arch_hash
            client = ActorClient(actor_cfg.transport, "actor-9", learner.run_id, arch)
            try:
                with pytest.raises(Exception, match="architecture differs"):
                    client.connect(10.0)
            finally:
                client.close(1.0)


def test_train_loop_warms_up_trains_publishes_logs_and_checkpoints(tmp_path: Path) -> None:
    """Demos only (no actor): the loop trains on them, publishes, logs, stops on time."""
    cfg = tiny_config(
        tmp_path / "run",
        train={"warmup_transitions": 0, "max_runtime_s": 1.5, "publish_every_s": 0.2},
    )
    stop = StopFlag(watch_parent=False)
    with open_learner(cfg, inproc=True) as (learner, endpoint):
        assert len(learner.trainer.replay.demos) > 0  # recorded by the simulated operator
        reason = learner.train(endpoint, stop)
        versions = learner.counters.weights_version
        updates = learner.counters.updates
    assert reason == "time limit"
    assert updates > 0 and versions >= 1
    run = RunDir.of(cfg.run.output_dir)
    lines, _ = read_jsonl(run.learner_jsonl)
    assert lines and all(set(LEARNER_FIELDS) <= set(r) for r in lines)
    assert lines[-1]["updates"] == updates
    assert "critic_loss" in lines[-1] and np.isfinite(lines[-1]["critic_loss"])
    ckpt = latest_checkpoint(run.checkpoints)
    assert ckpt is not None and read_meta(ckpt)["step"] == updates
    assert run.published_version() == versions


def test_warm_up_blocks_updates_until_enough_online_data(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", train={"warmup_transitions": 50, "max_runtime_s": 0.5})
    with open_learner(cfg, inproc=True) as (learner, endpoint):
        learner.train(endpoint, StopFlag(watch_parent=False))
        assert learner.counters.updates == 0  # demos alone do not end the warm-up


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    from hilrl.config.loader import ConfigError

    cfg = tiny_config(tmp_path / "run", train={"num_demo_episodes": 0})
    with pytest.raises(ConfigError, match="no complete checkpoint"):
        Learner(cfg, resume=True)
