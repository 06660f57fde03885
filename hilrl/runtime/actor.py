"""The actor: run episodes with the newest policy, send every step to the learner.

Run it with ``hilrl actor --config FILE --actor-id robot-1`` (``hilrl train`` starts
``train.num_actors`` of them). The loop, one env step at a time::

    weights = endpoint.wait_for_weights(...)          # the learner publishes v0 at start
    for episode in count(first_episode):
        reserve episode in the state file (next index: episode + 1)
        obs = env.reset(seed=episode_seed(run.seed, actor_stream('train', actor_index), episode))
        until the episode ends:
            load newer weights (only here, between two steps)
            action = next of the queued chunk, else of policy.act(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            endpoint.put_transitions([Transition(obs, info['teleop_action'], ...)])
        endpoint.put_episode(EpisodeStats(...))

A policy returns one action or a chunk of the next ``H`` actions (an action-chunk
policy): the actor executes the first ``train.chunk_execute_steps`` of a chunk (all of it
with 0) and then asks again; an operator takeover drops the rest of the chunk (it was
planned for a state the operator has changed), so does the end of an episode.

The stored action is ``info['teleop_action']``: what was executed, the operator's
action while they intervened. ``next_observation`` is the one ``step`` returned, also at
a termination or a time-limit truncation (never the next episode's first frame).

The learner's published weights carry its progress (:class:`hilrl.types.LearnerProgress`:
updates, env steps, the step allowance), a typed record on the wire. With
``train.updates_per_env_step`` > 0 the allowance is how many more env steps all actors
together may take before the learner's next publication; an actor that used its share
waits (holding the arm with the safety watchdog) until new weights come. It also waits
for the first weights the same way. Actor 0 runs deterministic evaluation episodes
every ``train.eval_every_episodes`` training episodes; their steps are not sent for
training and do not count towards the step budget.

Episode indices and seeds never repeat. Seeds come from :func:`hilrl.seeds.episode_seed`
with the stream ``actor_stream('train' | 'eval', actor_index)``. With a state file
(:attr:`ActorOptions.state_file`; ``hilrl train`` gives each actor
``<run>/actors/<actor_id>.json``) the actor *reserves* every episode index before it
resets the env, written atomically (:func:`write_actor_state`), and a new incarnation
starts after the highest reserved index (and after ``first_episode``, whichever is
larger): an actor killed at any moment, even with SIGKILL, leaves at most a gap.

The operator during evaluation: their *events* count as in training (quit stops the
actor, pause pauses it, success / failure / rerecord end the episode), their *actions*
never reach the arm (the episode measures the policy alone). An operator who takes over
during an evaluation episode ends it at that tick: the episode is reported with
``operator_takeover`` and ``interrupted`` set (not a success
unless the env reported one on that very tick) and the rest of that evaluation round is
skipped, so the operator gets the controls back with the next training episode.

A pause ends the episode: the step that carried the pause event is sent as a truncation
(its ``next_observation`` is the true one, so it bootstraps), the arm is held until the
operator resumes, and a new episode starts with a reset. The observation taken before
the pause is never used again (the world may have changed while paused; there is no
generic way to read a fresh observation through every wrapper of the stack without a
step). Such episodes carry ``interrupted``.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

from hilrl import seeds
from hilrl.config.root import RootConfig
from hilrl.core import InputController, Policy
from hilrl.envs.safety import SafetyWrapper
from hilrl.envs.wrappers import InterventionWrapper
from hilrl.envs.wrappers.intervention import EventsOnlyController as _EventsOnly
from hilrl.fsutil import atomic_write_json
from hilrl.runtime.specs import env_specs, open_env
from hilrl.runtime.stopping import StopFlag
from hilrl.runtime.teleop_session import find_wrapper
from hilrl.runtime.trainers import make_policy
from hilrl.transport import ActorClient
from hilrl.transport.api import ActorEndpoint
from hilrl.types import EpisodeKind, EpisodeStats, Observation, PolicyUpdate, Transition

log = logging.getLogger("hilrl.runtime.actor")

Env = gym.Env[Any, Any]


def episode_seed(run_seed: int, stream: str, actor_index: int, episode: int) -> int:
    """Deprecated alias: :func:`hilrl.seeds.episode_seed` of ``actor_stream(stream, actor_index)``.

    The actor itself calls :mod:`hilrl.seeds`; this stays only for old callers.
    """
    return seeds.episode_seed(run_seed, seeds.actor_stream(stream, actor_index), episode)


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
    first_eval_episode: int = 0
    """Index of the first evaluation episode (its own seed stream)."""
    state_file: Path | None = None
    """Where the actor reserves its episode indices (see the module docstring); None: nowhere."""
    seed: int = 0
    weights_timeout_s: float = 300.0
    eval_every_episodes: int = 0
    eval_episodes: int = 1
    chunk_execute_steps: int = 0
    """Actions executed of each predicted chunk before the next prediction (0: all of it)."""

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
        state_file: Path | None = None,
    ) -> ActorOptions:
        return cls(
            actor_id=actor_id,
            actor_index=actor_index,
            num_actors=max(1, cfg.train.num_actors if num_actors is None else num_actors),
            max_steps=max_steps,
            first_episode=first_episode,
            state_file=state_file,
            seed=cfg.run.seed,
            weights_timeout_s=cfg.train.weights_timeout_s,
            chunk_execute_steps=cfg.train.chunk_execute_steps,
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
    eval_takeovers: int = 0
    """Evaluation episodes the operator took over (ended early, see the module docstring)."""
    pauses: int = 0
    policy_version: int = -1
    reason: str = ""


ACTORS_DIR = "actors"
"""Sub-folder of the run folder with one state file per local actor (``hilrl train``)."""


def actor_state_path(run_root: str | Path, actor_id: str) -> Path:
    """``<run>/actors/<actor_id>.json``: where ``hilrl train``'s actor keeps its state."""
    return Path(run_root) / ACTORS_DIR / f"{actor_id}.json"


@dataclass
class ActorState:
    """An actor's state file: the next free episode indices, reserved before each reset.

    ``steps`` counts the training env steps taken before the newest reservation, summed
    over the actor's incarnations (the launcher derives a restarted actor's remaining
    budget from it; steps of an episode cut by a crash are not in it).
    """

    actor_id: str
    actor_index: int
    next_episode: int = 0
    next_eval_episode: int = 0
    steps: int = 0


def read_actor_state(path: str | Path) -> ActorState | None:
    """The state in ``path``; None when there is none (or it is unreadable: never half-written)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return ActorState(
            actor_id=str(data["actor_id"]),
            actor_index=int(data["actor_index"]),
            next_episode=max(int(data.get("next_episode", 0)), 0),
            next_eval_episode=max(int(data.get("next_eval_episode", 0)), 0),
            steps=max(int(data.get("steps", 0)), 0),
        )
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def write_actor_state(path: str | Path, state: ActorState) -> None:
    """Replace ``path`` atomically (temporary file, fsync, ``os.replace``).

    A process killed at any moment leaves either the old or the new file, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(state), indent=None)


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
        self._next_episode = max(options.first_episode, 0)
        self._next_eval = max(options.first_eval_episode, 0)
        self._base_steps = 0
        self._state_warned = False
        self._planned: collections.deque[np.ndarray] = collections.deque()
        """Actions of the current chunk still to execute."""
        self.policy_calls = 0
        """Times the policy was asked for actions (fewer than steps with a chunk policy)."""
        if options.state_file is not None:
            self._load_state(Path(options.state_file))

    # ------------------------------------------------------------------ the loop

    def run(self) -> ActorSummary:
        """Wait for the first weights, then run episodes until the budget or a stop."""
        if not self._wait_for_weights(first=True):
            self.summary.reason = self.stop.reason or "stopped"
            return self.summary
        first = self._next_episode
        while not self._finished():
            episode = self._next_episode
            if not self._episode(episode, evaluate=False):
                break
            every = self.opts.eval_every_episodes
            if every and (episode + 1 - first) % every == 0:
                for _ in range(self.opts.eval_episodes):
                    if self.stop.is_set() or not self._episode(self._next_eval, evaluate=True):
                        break
        if not self.summary.reason:
            self.summary.reason = self.stop.reason if self.stop.is_set() else "step budget done"
        self.summary.policy_version = self._version
        self._save_state()
        return self.summary

    def _episode(self, index: int, evaluate: bool) -> bool:
        """One episode; False when it was cut short (stop, budget, operator quit).

        An evaluation episode also returns False after an operator takeover (the rest
        of the evaluation round is skipped; training goes on).
        """
        opts = self.opts
        self._reserve(index, evaluate)
        stream = seeds.actor_stream("eval" if evaluate else "train", opts.actor_index)
        seed = seeds.episode_seed(opts.seed, stream, index)
        controller = self.intervention.controller if self.intervention is not None else None
        watched: _EventsOnly | None = None
        if evaluate and self.intervention is not None and controller is not None:
            watched = _EventsOnly(controller)
            self.intervention.controller = watched  # nobody but the policy drives
        try:
            self._planned.clear()
            obs, info = self.env.reset(seed=seed)
            frame, ret, interventions = 0, 0.0, 0
            while True:
                if not evaluate and (self._finished() or not self._wait_for_allowance()):
                    return False
                if self.stop.is_set():
                    return False
                self._refresh_weights()
                action = self._next_action(obs, evaluate)
                next_obs, reward, terminated, truncated, info = self.env.step(action)
                intervened = bool(info.get("is_intervention", False))
                if intervened:
                    self._planned.clear()  # planned for a state the operator changes
                paused = bool(info.get("event_pause", False))
                takeover = watched is not None and watched.takeover
                ended = bool(terminated or truncated)
                # A pause or an evaluation takeover ends the episode at this tick (truncated:
                # the stored next_observation is the real one, so it still bootstraps).
                interrupted = not ended and (paused or takeover)
                if interrupted:
                    truncated = True
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
                if not (terminated or truncated):
                    obs = next_obs
                    continue
                self._end_episode(
                    index, frame, ret, interventions, info, evaluate, interrupted, takeover
                )
                if info.get("event_quit"):
                    return self._quit()
                if paused:
                    outcome = self._pause(next_obs, info, controller)
                    if outcome != "resume":
                        return self._quit() if outcome == "quit" else False
                if takeover:
                    self.summary.eval_takeovers += 1
                    log.warning(
                        "actor %r: the operator took over evaluation episode %d: it ended "
                        "there and the rest of this evaluation round is skipped",
                        opts.actor_id,
                        index,
                    )
                    return False
                return True
        finally:
            if watched is not None and self.intervention is not None:
                watched.close()
                self.intervention.controller = controller

    # ------------------------------------------------------------------ state file

    def _load_state(self, path: Path) -> None:
        state = read_actor_state(path)
        if state is None:
            return
        if state.actor_index != self.opts.actor_index or state.actor_id != self.opts.actor_id:
            log.warning(
                "actor %r (index %d): %s belongs to %r (index %d); continuing after its indices",
                self.opts.actor_id,
                self.opts.actor_index,
                path,
                state.actor_id,
                state.actor_index,
            )
        self._next_episode = max(self._next_episode, state.next_episode)
        self._next_eval = max(self._next_eval, state.next_eval_episode)
        self._base_steps = state.steps

    def _reserve(self, index: int, evaluate: bool) -> None:
        """Mark ``index`` used before the episode starts (written before the env resets)."""
        if evaluate:
            self._next_eval = max(self._next_eval, index + 1)
        else:
            self._next_episode = max(self._next_episode, index + 1)
        self._save_state()

    def _save_state(self) -> None:
        path = self.opts.state_file
        if path is None:
            return
        state = ActorState(
            actor_id=self.opts.actor_id,
            actor_index=self.opts.actor_index,
            next_episode=self._next_episode,
            next_eval_episode=self._next_eval,
            steps=self._base_steps + self.summary.steps,
        )
        try:
            write_actor_state(path, state)
        except OSError as exc:
            if not self._state_warned:
                self._state_warned = True
                log.warning(
                    "actor %r: cannot write its state file %s (%s): a restarted actor may "
                    "repeat episode indices",
                    self.opts.actor_id,
                    path,
                    exc,
                )

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
        interrupted: bool = False,
        takeover: bool = False,
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
            kind=EpisodeKind.EVAL if evaluate else EpisodeKind.TRAIN,
            interrupted=interrupted,
            operator_takeover=takeover,
        )
        self.endpoint.put_episode(stats)
        if evaluate:
            self.summary.eval_episodes += 1
            self.summary.eval_successes += int(success)
        else:
            self.summary.episodes += 1
            self.summary.successes += int(success)
            self.summary.intervention_steps += interventions

    def _next_action(self, obs: Observation, evaluate: bool) -> np.ndarray:
        """The next action of the current chunk; a new prediction when none is left."""
        if not self._planned:
            out = np.asarray(self.policy.act(obs, deterministic=evaluate), dtype=np.float32)
            self.policy_calls += 1
            chunk = out[None] if out.ndim == 1 else out
            if chunk.ndim != 2 or len(chunk) == 0:
                raise ValueError(
                    f"policy returned actions of shape {out.shape}; want (A,) or (H, A)"
                )
            execute = self.opts.chunk_execute_steps or len(chunk)
            self._planned.extend(chunk[:execute])
        return self._planned.popleft()

    def _finished(self) -> bool:
        if self.stop.is_set():
            return True
        return self.opts.max_steps is not None and self.summary.steps >= self.opts.max_steps

    def _quit(self) -> bool:
        self.summary.reason = "operator quit"
        self.stop.set("operator quit")
        return False

    # ------------------------------------------------------------------ weights

    def _load(self, update: PolicyUpdate) -> None:
        # Writable arrays: the in-process transport hands out read-only ones, which torch
        # warns about when it wraps them (load_state_dict copies them anyway).
        nets = {k: v if v.flags.writeable else np.array(v) for k, v in update.weights.items()}
        self.policy.load_weights(nets, update.version)
        self._allowance = update.progress.step_allowance
        self._version = update.version
        self._since_weights = 0

    def _refresh_weights(self) -> None:
        got = self.endpoint.latest(self._version)
        if got is not None:
            self._load(got)

    def _wait_for_weights(self, first: bool = False) -> bool:
        """Wait for weights newer than ours, holding the arm; False when stopping."""
        deadline = time.monotonic() + self.opts.weights_timeout_s
        while not self.stop.is_set():
            got = self.endpoint.wait_for_weights(self._version, WAIT_TICK_S)
            if got is not None:
                self._load(got)
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

    def _pause(
        self, obs: Observation, info: Mapping[str, Any], controller: InputController | None
    ) -> str:
        """Hold the arm until the operator presses pause again.

        Returns ``'resume'``, ``'quit'`` (the operator quit while paused) or ``'stop'``.
        """
        if controller is None:
            return "resume"
        self.summary.pauses += 1
        log.info("actor %r paused by the operator", self.opts.actor_id)
        while not self.stop.wait(WAIT_TICK_S):
            cmd = controller.poll(obs, info)
            self._watchdog()
            if cmd.events.quit:
                return "quit"
            if cmd.events.pause:
                log.info("actor %r resumed: a new episode starts", self.opts.actor_id)
                return "resume"
        return "stop"


@contextlib.contextmanager
def open_actor(cfg: RootConfig) -> Iterator[tuple[Env, Policy, str]]:
    """Robot, started operator, env and a fresh CPU policy of ``learning.algorithm``, plus
    the policy's architecture hash.

    Stops the operator and closes the env (robot last) on exit.
    """

    with open_env(cfg) as (env, controller, _robot):
        obs_spec, act_spec = env_specs(env)
        policy, arch = make_policy(cfg, obs_spec, act_spec)
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
