"""The actor: run episodes with the newest policy, send every step to the learner.

Run it with ``hilrl actor --config FILE --actor-id robot-1`` (``hilrl train`` starts
``train.num_actors`` of them). The loop, one env step at a time::

    weights = endpoint.wait_for_weights(...)          # the learner publishes v0 at start
    for episode in count(first_episode):
        obs = env.reset(seed=episode_seed(run.seed, 'train', actor_index, episode))
        until the episode ends:
            load newer weights (only here, between two steps)
            action = policy.act(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            endpoint.put_transitions([Transition(obs, info['teleop_action'], ...)])
        endpoint.put_episode(EpisodeStats(...))

The stored action is ``info['teleop_action']``: what was executed, the operator's
action while they intervened. ``next_observation`` is the one ``step`` returned, also at
a termination or a time-limit truncation (never the next episode's first frame).

The learner's published weights carry three numbers besides the networks
(:data:`META_UPDATES`, :data:`META_ENV_STEPS`, :data:`META_ALLOWANCE`). With
``train.updates_per_env_step`` > 0 the allowance is how many more env steps all actors
together may take before the learner's next publication; an actor that used its share
waits (holding the arm with the safety watchdog) until new weights come. It also waits
for the first weights the same way. Actor 0 runs deterministic evaluation episodes,
with the operator detached, every ``train.eval_every_episodes`` training episodes; their
steps are not sent for training and do not count towards the step budget.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from hilrl.config.root import RootConfig
from hilrl.core import Policy
from hilrl.policies.sac_policy import SACPolicy
from hilrl.runtime.stopping import StopFlag
from hilrl.transport.api import ActorEndpoint
from hilrl.types import EpisodeStats, Observation, Transition

log = logging.getLogger("hilrl.runtime.actor")

Env = gym.Env[Any, Any]

META_PREFIX = "meta."
"""Published weights whose names start with this are learner progress, not network tensors."""
META_UPDATES = "meta.updates"
"""Learner updates made when the weights were published (int64, shape (1,))."""
META_ENV_STEPS = "meta.env_steps"
"""Env steps the learner had received (all actors) when the weights were published."""
META_ALLOWANCE = "meta.step_allowance"
"""Env steps all actors together may take until the next publication; -1: no limit."""


def episode_seed(run_seed: int, stream: str, actor_index: int, episode: int) -> int:
    """The reset seed of an actor's training (``stream='train'``) or eval episode.

    Hashed with a SeedSequence, not ``run.seed + episode``: with the sum, runs seeded 0 and
    1 would replay the same cube layouts shifted by one episode, so "3 seeds" would be one.
    """
    key = [run_seed & 0xFFFFFFFF, zlib.crc32(stream.encode()), actor_index, episode]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


WAIT_TICK_S = 0.05
"""While waiting (for weights or for the learner) the safety watchdog runs this often."""


@dataclass
class ActorOptions:
    """Who this actor is and how long it runs."""

    actor_id: str
    actor_index: int = 0
    num_actors: int = 1
    """Actors sharing the learner's step allowance."""
    max_steps: int | None = None
    """Training env steps to take (None: until stopped)."""
    first_episode: int = 0
    """Index (and seed offset) of the first episode: a resumed actor continues its sequence."""
    seed: int = 0
    weights_timeout_s: float = 300.0
    eval_every_episodes: int = 0
    eval_episodes: int = 1

    @classmethod
    def from_config(
        cls,
        cfg: RootConfig,
        actor_id: str,
        actor_index: int,
        *,
        max_steps: int | None,
        first_episode: int = 0,
        num_actors: int | None = None,
    ) -> ActorOptions:
        return cls(
            actor_id=actor_id,
            actor_index=actor_index,
            num_actors=max(1, cfg.train.num_actors if num_actors is None else num_actors),
            max_steps=max_steps,
            first_episode=first_episode,
            seed=cfg.run.seed,
            weights_timeout_s=cfg.train.weights_timeout_s,
            eval_every_episodes=cfg.train.eval_every_episodes if actor_index == 0 else 0,
            eval_episodes=cfg.train.eval_episodes,
        )


@dataclass
class ActorSummary:
    """What one actor did."""

    steps: int = 0
    episodes: int = 0
    successes: int = 0
    intervention_steps: int = 0
    eval_episodes: int = 0
    eval_successes: int = 0
    policy_version: int = -1
    reason: str = ""


class ActorLoop:
    """Runs episodes of ``env`` with ``policy`` and sends them to ``endpoint`` (see module doc)."""

    def __init__(
        self,
        env: Env,
        policy: Policy,
        endpoint: ActorEndpoint,
        options: ActorOptions,
        stop: StopFlag | None = None,
    ) -> None:
        from hilrl.envs.safety import SafetyWrapper
        from hilrl.envs.wrappers import InterventionWrapper
        from hilrl.runtime.teleop_session import find_wrapper

        self.env = env
        self.policy = policy
        self.endpoint = endpoint
        self.opts = options
        self.stop = stop if stop is not None else StopFlag(watch_parent=False)
        self.safety = find_wrapper(env, SafetyWrapper)
        self.intervention = find_wrapper(env, InterventionWrapper)
        self.summary = ActorSummary()
        self._version = -1
        self._allowance = -1
        self._since_weights = 0

    # ------------------------------------------------------------------ the loop

    def run(self) -> ActorSummary:
        """Wait for the first weights, then run episodes until the budget or a stop."""
        if not self._wait_for_weights(first=True):
            self.summary.reason = self.stop.reason or "stopped"
            return self.summary
        episode = self.opts.first_episode
        evals = 0
        while not self._finished():
            if not self._episode(episode, evaluate=False):
                break
            episode += 1
            every = self.opts.eval_every_episodes
            if every and (episode - self.opts.first_episode) % every == 0:
                for _ in range(self.opts.eval_episodes):
                    if self.stop.is_set() or not self._episode(evals, evaluate=True):
                        break
                    evals += 1
        if not self.summary.reason:
            self.summary.reason = self.stop.reason if self.stop.is_set() else "step budget done"
        self.summary.policy_version = self._version
        return self.summary

    def _episode(self, index: int, evaluate: bool) -> bool:
        """One episode; False when it was cut short (stop, budget, operator quit)."""
        opts = self.opts
        seed = episode_seed(opts.seed, "eval" if evaluate else "train", opts.actor_index, index)
        controller = self.intervention.controller if self.intervention is not None else None
        if evaluate and self.intervention is not None:
            self.intervention.controller = None  # nobody intervenes in an evaluation
        try:
            obs, info = self.env.reset(seed=seed)
            frame, ret, interventions = 0, 0.0, 0
            while True:
                if not evaluate and (self._finished() or not self._wait_for_allowance()):
                    return False
                if self.stop.is_set():
                    return False
                self._refresh_weights()
                action = self.policy.act(obs, deterministic=evaluate)
                next_obs, reward, terminated, truncated, info = self.env.step(action)
                intervened = bool(info.get("is_intervention", False))
                if not evaluate:
                    self.endpoint.put_transitions(
                        [
                            self._transition(
                                obs,
                                action,
                                reward,
                                next_obs,
                                terminated,
                                truncated,
                                info,
                                index,
                                frame,
                            )
                        ]
                    )
                    self.summary.steps += 1
                    self._since_weights += 1
                frame += 1
                ret += float(reward)
                interventions += int(intervened)
                if terminated or truncated:
                    self._end_episode(index, frame, ret, interventions, info, evaluate)
                    return not info.get("event_quit", False) or self._quit()
                if info.get("event_quit"):
                    return self._quit()
                if info.get("event_pause") and not self._pause(next_obs, info):
                    return self._quit()
                obs = next_obs
        finally:
            if evaluate and self.intervention is not None:
                self.intervention.controller = controller

    def _transition(
        self,
        obs: Observation,
        action: np.ndarray,
        reward: SupportsFloat,
        next_obs: Observation,
        terminated: bool,
        truncated: bool,
        info: Mapping[str, Any],
        episode: int,
        frame: int,
    ) -> Transition:
        executed = info.get("teleop_action", action)
        return Transition(
            observation=obs,
            action=np.asarray(executed, dtype=np.float32),
            reward=float(reward),
            next_observation=next_obs,
            terminated=bool(terminated),
            truncated=bool(truncated) and not bool(terminated),
            is_intervention=bool(info.get("is_intervention", False)),
            discrete_penalty=float(info.get("discrete_penalty", 0.0)),
            policy_version=max(self._version, 0),
            episode_index=episode,
            frame_index=frame,
        )

    def _end_episode(
        self,
        index: int,
        length: int,
        ret: float,
        interventions: int,
        info: Mapping[str, Any],
        evaluate: bool,
    ) -> None:
        success = bool(info.get("success", False))
        stats = EpisodeStats(
            episode_index=index,
            length=length,
            episode_return=ret,
            success=success,
            intervention_steps=interventions,
            policy_version=max(self._version, 0),
            actor_id=self.opts.actor_id,
            extra={"eval": float(evaluate)},
        )
        self.endpoint.put_episode(stats)
        if evaluate:
            self.summary.eval_episodes += 1
            self.summary.eval_successes += int(success)
        else:
            self.summary.episodes += 1
            self.summary.successes += int(success)
            self.summary.intervention_steps += interventions

    def _finished(self) -> bool:
        if self.stop.is_set():
            return True
        return self.opts.max_steps is not None and self.summary.steps >= self.opts.max_steps

    def _quit(self) -> bool:
        self.summary.reason = "operator quit"
        self.stop.set("operator quit")
        return False

    # ------------------------------------------------------------------ weights

    def _load(self, version: int, weights: Mapping[str, np.ndarray]) -> None:
        # Writable arrays: the in-process transport hands out read-only ones, which torch
        # warns about when it wraps them (load_state_dict copies them anyway).
        nets = {
            k: v if v.flags.writeable else np.array(v)
            for k, v in weights.items()
            if not k.startswith(META_PREFIX)
        }
        self.policy.load_weights(nets, version)
        allowance = weights.get(META_ALLOWANCE)
        self._allowance = int(np.asarray(allowance).reshape(-1)[0]) if allowance is not None else -1
        self._version = version
        self._since_weights = 0

    def _refresh_weights(self) -> None:
        got = self.endpoint.latest(self._version)
        if got is not None:
            self._load(*got)

    def _wait_for_weights(self, first: bool = False) -> bool:
        """Wait for weights newer than ours, holding the arm; False when stopping."""
        deadline = time.monotonic() + self.opts.weights_timeout_s
        while not self.stop.is_set():
            got = self.endpoint.wait_for_weights(self._version, WAIT_TICK_S)
            if got is not None:
                self._load(*got)
                return True
            self._watchdog()
            if first and time.monotonic() > deadline:
                raise TimeoutError(
                    f"actor {self.opts.actor_id!r}: no weights from the learner within "
                    f"train.weights_timeout_s={self.opts.weights_timeout_s:g} s"
                )
        return False

    def _wait_for_allowance(self) -> bool:
        """Block while this actor's share of the learner's step allowance is used up."""
        while self._allowance >= 0 and self._since_weights * self.opts.num_actors >= max(
            self._allowance, 1
        ):
            if not self._wait_for_weights():
                return False
        return True

    # ------------------------------------------------------------------ operator

    def _watchdog(self) -> None:
        if self.safety is not None:
            self.safety.watchdog()

    def _pause(self, obs: Observation, info: Mapping[str, Any]) -> bool:
        """Hold the arm until the operator presses pause again; False on quit or stop."""
        controller = self.intervention.controller if self.intervention is not None else None
        if controller is None:
            return True
        log.info("actor %r paused by the operator", self.opts.actor_id)
        while not self.stop.wait(WAIT_TICK_S):
            cmd = controller.poll(obs, info)
            self._watchdog()
            if cmd.events.quit:
                return False
            if cmd.events.pause:
                return True
        return False


@contextlib.contextmanager
def open_actor(cfg: RootConfig) -> Iterator[tuple[Env, SACPolicy, str]]:
    """Robot, started operator, env and a fresh CPU policy, plus the policy's architecture hash.

    Stops the operator and closes the env (robot last) on exit.
    """
    from hilrl.policies.sac_policy import SACPolicy
    from hilrl.runtime.specs import env_specs, open_env, policy_arch_hash

    with open_env(cfg) as (env, controller, _robot):
        obs_spec, act_spec = env_specs(env)
        policy = SACPolicy(obs_spec, act_spec, cfg.learning.encoder, cfg.learning.sac, "cpu")
        arch = policy_arch_hash(policy.nets, cfg.learning)
        if controller is not None:
            controller.start()
        try:
            yield env, policy, arch
        finally:
            if controller is not None:
                controller.stop()


def run_actor(
    cfg: RootConfig,
    endpoint: ActorEndpoint,
    options: ActorOptions,
    stop: StopFlag | None = None,
) -> ActorSummary:
    """Build everything from ``cfg`` and run the loop; the endpoint's owner closes it."""
    with open_actor(cfg) as (env, policy, _arch):
        return ActorLoop(env, policy, endpoint, options, stop).run()


def run_actor_process(
    cfg: RootConfig,
    options: ActorOptions,
    *,
    run_id: str = "",
    stop: StopFlag | None = None,
) -> ActorSummary:
    """``hilrl actor``: env, policy and the gRPC client; flushes and closes the client at the end."""
    import torch

    from hilrl.transport import ActorClient

    torch.set_num_threads(cfg.train.actor_torch_threads)
    with open_actor(cfg) as (env, policy, arch):
        client = ActorClient(cfg.transport, options.actor_id, run_id, arch)
        try:
            return ActorLoop(env, policy, client, options, stop).run()
        finally:
            if not client.close():
                log.warning(
                    "actor %r: not every message was acknowledged; the rest waits in the spool",
                    options.actor_id,
                )
