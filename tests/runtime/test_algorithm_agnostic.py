"""The learner and actor loops run any algorithm: a toy behaviour-cloning one, registered
here, trains through the unchanged loops in-process, with a policy that predicts chunks."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
from runtime_helpers import tiny_config

from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.core import Policy, Trainer
from hilrl.policies.encoder import ObservationSpec
from hilrl.policies.sac_policy import ActionSpec
from hilrl.runtime.actor import ActorLoop, ActorOptions, open_actor
from hilrl.runtime.checkpoint import latest_checkpoint, restore_checkpoint
from hilrl.runtime.learner import open_learner
from hilrl.runtime.stopping import StopFlag
from hilrl.runtime.trainers import AlgorithmEntry, make_trainer, register_algorithm
from hilrl.transport import InProcLearner
from hilrl.types import STATE_KEY, EpisodeStats, StepResult, Transition

pytestmark = pytest.mark.timeout(120)
HORIZON = 4


class LinearChunkBC:
    """Predicts a chunk of HORIZON actions as a linear map of the state (the networks)."""

    def __init__(self, state_dim: int, act_dim: int) -> None:
        self.act_dim = act_dim
        self.w = torch.zeros(HORIZON * act_dim, state_dim + 1, requires_grad=True)
        self.opt = torch.optim.SGD([self.w], lr=0.05)
        self.steps = 0

    def architecture(self) -> dict[str, list[int]]:
        return {"w": list(self.w.shape)}

    def architecture_config(self) -> dict[str, object]:
        return {"horizon": HORIZON}

    def state_dict(self) -> dict[str, object]:
        return {"tensors": {"w": self.w.detach().clone()}, "meta": {"steps": self.steps}}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        tensors, meta = state["tensors"], state["meta"]
        assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
        with torch.no_grad():
            self.w.copy_(tensors["w"])
        self.steps = int(meta["steps"])


class Rows:
    """The trainer's own data: (state, executed action) of operator steps."""

    def __init__(self) -> None:
        self.states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []

    def state_dict(self) -> dict[str, object]:
        s = torch.from_numpy(np.asarray(self.states, np.float32).reshape(len(self.states), -1))
        a = torch.from_numpy(np.asarray(self.actions, np.float32).reshape(len(self.actions), -1))
        return {"tensors": {"states": s, "actions": a}, "meta": {}}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        tensors = state["tensors"]
        assert isinstance(tensors, Mapping)
        self.states = list(tensors["states"].numpy())
        self.actions = list(tensors["actions"].numpy())


class NoState:
    def state_dict(self) -> dict[str, object]:
        return {"tensors": {}, "meta": {}}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        pass


class ToyBCTrainer:
    """Behaviour cloning of the operator's actions: a second algorithm for the loops."""

    arch_hash = "toy-bc-v1"
    compiles_next = False

    def __init__(
        self, cfg: RootConfig, obs_spec: ObservationSpec, act_spec: ActionSpec, device: object
    ) -> None:
        self.algorithm = LinearChunkBC(obs_spec.state_dim, act_spec.dim)
        self.replay = Rows()
        self.sampler = NoState()
        self.rng = np.random.default_rng(0)
        self.episodes: list[tuple[str, int, bool]] = []
        self.losses: list[float] = []

    def add_transitions(self, transitions: Sequence[Transition]) -> None:
        for i, t in enumerate(transitions):
            if not np.isfinite(t.observation[STATE_KEY]).all():
                raise ValueError(f"transition {i}: state is not finite")
        for t in transitions:
            if t.is_intervention:
                self.replay.states.append(t.observation[STATE_KEY].astype(np.float32))
                self.replay.actions.append(np.asarray(t.action, np.float32))

    def add_episode(self, actor_id: str, stats: EpisodeStats) -> None:
        self.episodes.append((actor_id, stats.episode_index, stats.is_eval))

    def load_demos(self, path: str) -> tuple[int, int]:
        return 0, 0

    def ready(self, warmup_transitions: int) -> bool:
        return len(self.replay.states) >= 8

    def step(self) -> StepResult:
        rows = self.rng.integers(0, len(self.replay.states), 32)
        s = torch.from_numpy(np.stack([self.replay.states[i] for i in rows]))
        a = torch.from_numpy(np.stack([self.replay.actions[i] for i in rows]))
        x = torch.cat([s, torch.ones(len(s), 1)], 1)
        first = (x @ self.algorithm.w.T)[:, : self.algorithm.act_dim]
        loss = ((first - a) ** 2).mean()
        self.algorithm.opt.zero_grad()
        loss.backward()
        self.algorithm.opt.step()
        self.algorithm.steps += 1
        self.losses.append(float(loss))
        return StepResult({"bc_loss": float(loss)}, steps=1)

    def policy_weights(self) -> dict[str, np.ndarray]:
        return {"w": self.algorithm.w.detach().numpy().copy()}

    def replay_sizes(self) -> dict[str, int]:
        return {"operator_steps": len(self.replay.states)}

    def close(self) -> None:
        pass


class ChunkPolicy:
    """The actor's half: a chunk of HORIZON actions per call."""

    def __init__(self, state_dim: int, act_dim: int) -> None:
        self.w = np.zeros((HORIZON * act_dim, state_dim + 1), np.float32)
        self.act_dim = act_dim
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def act(self, observation: Mapping[str, np.ndarray], deterministic: bool = False) -> np.ndarray:
        x = np.append(observation[STATE_KEY], 1.0).astype(np.float32)
        return np.clip(self.w @ x, -1, 1).reshape(HORIZON, self.act_dim)

    def load_weights(self, weights: Mapping[str, np.ndarray], version: int) -> None:
        if weights["w"].shape != self.w.shape:
            raise ValueError(f"weight 'w' has shape {weights['w'].shape}, want {self.w.shape}")
        self.w = np.array(weights["w"], np.float32)
        self._version = version


def make_chunk_policy(
    cfg: RootConfig, obs_spec: ObservationSpec, act_spec: ActionSpec
) -> tuple[Policy, str]:
    return ChunkPolicy(obs_spec.state_dim, act_spec.dim), ToyBCTrainer.arch_hash


@pytest.fixture(autouse=True)
def toy_algorithm() -> None:
    register_algorithm("toy_bc", AlgorithmEntry(ToyBCTrainer, make_chunk_policy))


def test_a_second_algorithm_trains_through_the_unchanged_loops(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path / "run",
        learning={"algorithm": "toy_bc"},
        train={"num_demo_episodes": 0, "chunk_execute_steps": 2, "eval_every_episodes": 0},
        run={"total_env_steps": 160},
    )
    stop = StopFlag(watch_parent=False)
    with open_learner(cfg, inproc=True) as (learner, endpoint):
        trainer = learner.trainer
        assert isinstance(trainer, ToyBCTrainer) and isinstance(trainer, Trainer)
        with open_actor(cfg) as (env, policy, arch):
            assert isinstance(policy, ChunkPolicy) and arch == learner.arch_hash
            loop = ActorLoop(
                env,
                policy,
                endpoint.connect("actor-0"),
                ActorOptions.from_config(cfg, "actor-0", 0, max_steps=160),
                stop,
            )
            actor = threading.Thread(target=loop.run, daemon=True)
            actor.start()
            reason = learner.train(endpoint, stop, actors_done=lambda: not actor.is_alive())
            actor.join(30)
    assert reason in ("env steps done", "actors finished")
    assert learner.counters.env_steps == loop.summary.steps == 160
    # the learner loop drove the toy algorithm: updates, publications, its own metrics
    assert learner.counters.updates == trainer.algorithm.steps > 10
    assert np.mean(trainer.losses[-5:]) < np.mean(trainer.losses[:5])
    assert policy.version > 0 and np.any(policy.w != 0)  # the actor runs the learned weights
    assert loop.policy_calls <= loop.summary.steps  # a takeover drops the rest of a chunk
    assert trainer.episodes and all(aid == "actor-0" for aid, _, _ in trainer.episodes)
    # the checkpoint holds the toy algorithm's state, and restores into a fresh trainer
    path = latest_checkpoint(learner.run.checkpoints)
    assert path is not None
    fresh = make_trainer(cfg, learner.obs_spec, learner.act_spec, torch.device("cpu"))
    assert isinstance(fresh, ToyBCTrainer)
    restore_checkpoint(path, fresh.algorithm, buffers=fresh.replay, sampler=fresh.sampler)
    assert fresh.algorithm.steps == trainer.algorithm.steps
    assert torch.equal(fresh.algorithm.w, trainer.algorithm.w)
    assert 0 < len(fresh.replay.states) <= len(trainer.replay.states)  # ingest may go on after it


def test_the_actor_executes_chunk_execute_steps_of_each_chunk(tmp_path: Path) -> None:
    cfg = tiny_config(
        tmp_path / "run",
        learning={"algorithm": "toy_bc"},
        teleop={"device": "none"},
        train={"chunk_execute_steps": 3, "eval_every_episodes": 0},
    )
    sink = InProcLearner(lambda a, t: None, lambda a, e: None).start()
    try:
        with open_actor(cfg) as (env, policy, _):
            sink.publish_weights({"w": np.zeros_like(policy.w)}, 0)  # type: ignore[attr-defined]
            episodes: list[EpisodeStats] = []
            endpoint = sink.connect("a")
            put_episode = endpoint.put_episode

            def keep(stats: EpisodeStats) -> None:
                episodes.append(stats)
                put_episode(stats)

            endpoint.put_episode = keep  # type: ignore[method-assign]
            loop = ActorLoop(
                env, policy, endpoint, ActorOptions.from_config(cfg, "a", 0, max_steps=40)
            )
            loop.run()
            endpoint.close()
    finally:
        sink.stop()
    assert sum(e.length for e in episodes) == loop.summary.steps == 40
    # 3 actions of each 4-action chunk, and a new chunk at every episode start
    assert loop.policy_calls == sum(-(-e.length // 3) for e in episodes)


def test_an_unknown_algorithm_is_a_config_error_naming_the_field(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path / "run", learning={"algorithm": "nope"})
    with pytest.raises(ConfigError, match=r"learning\.algorithm") as err:
        open_learner(cfg).__enter__()
    assert "sac" in str(err.value) and "toy_bc" in str(err.value)


def test_a_policy_that_returns_a_bad_shape_is_named(tmp_path: Path) -> None:
    class Bad(ChunkPolicy):
        def act(
            self, observation: Mapping[str, np.ndarray], deterministic: bool = False
        ) -> np.ndarray:
            return np.zeros((2, 2, 2), np.float32)

    cfg = tiny_config(tmp_path / "run", learning={"algorithm": "toy_bc"})
    with open_actor(cfg) as (env, _policy, _):
        loop = ActorLoop(env, Bad(1, 1), _NullEndpoint(), ActorOptions("a"), None)
        with pytest.raises(ValueError, match=r"shape \(2, 2, 2\)"):
            loop._next_action(env.reset(seed=0)[0], evaluate=False)


class _NullEndpoint:
    def put_transitions(self, transitions: Sequence[Transition]) -> None: ...

    def put_episode(self, stats: EpisodeStats) -> None: ...

    def latest(self, newer_than: int) -> None:
        return None
