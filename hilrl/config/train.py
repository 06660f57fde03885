"""Training-run configuration: processes, warm-up, weight sync, checkpoints, demos, eval.

``hilrl train`` (one learner and ``num_actors`` actor processes on this machine),
``hilrl learner`` and ``hilrl actor`` read this section; the learning hyper-parameters
live in ``learning`` and the run length in ``run.total_env_steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hilrl.config.loader import ConfigError


@dataclass
class TrainConfig:
    """How a training run is laid out and paced."""

    num_actors: int = 1
    """Actor processes hilrl train starts on this machine (0: none; actors connect from other machines)."""
    inprocess: bool = False
    """Run the learner and the actors as threads of one process over the in-process transport (tests, debugging)."""
    warmup_transitions: int = 500
    """Online transitions in the replay before the first update (demos do not count)."""
    updates_per_env_step: float = 0.0
    """Actors pause while the learner has made fewer than this many updates per env step after the warm-up (keeps the UTD when the sim outruns the learner); 0: actors never wait."""
    publish_every_s: float = 4.0
    """Seconds between weight publications to the actors (LeRobot uses 4 s)."""
    publish_every_updates: int = 0
    """Also publish after this many updates since the last publication (0: by time only)."""
    checkpoint_every_s: float = 0.0
    """Also checkpoint every this many seconds of training (0: only every learning.checkpoint.every_steps updates and at the end)."""
    demo_dataset: str | None = None
    """LeRobot dataset loaded into the demo buffer; null: <run.output_dir>/demos."""
    num_demo_episodes: int = 0
    """When the demo dataset is missing, record this many episodes with the simulated operator first (sim only; 0: train without demos)."""
    eval_every_episodes: int = 0
    """Actor 0 runs deterministic evaluation episodes, without operator, after every this many training episodes (0: never)."""
    eval_episodes: int = 1
    """Evaluation episodes per evaluation round."""
    final_eval_episodes: int = 10
    """hilrl train: when the run ends normally, evaluate the last checkpoint with the deterministic policy for this many episodes (0: skip)."""
    final_eval_videos: int = 3
    """Of those final evaluation episodes, how many to save as mp4 under <run.output_dir>/videos (0: none)."""
    max_runtime_s: float | None = None
    """Stop the run (final checkpoint) after this many seconds of training; null: no limit."""
    learner_torch_threads: int = 0
    """Torch threads of the learner; 0: one thread when actors share this machine, else torch's default."""
    actor_torch_threads: int = 1
    """Torch threads of each actor's policy inference (small networks: one is fastest)."""
    weights_timeout_s: float = 300.0
    """Actor: give up if the learner's first weights do not arrive within this time."""
    shutdown_timeout_s: float = 60.0
    """hilrl train: seconds each process gets to stop cleanly (actors flush, learner checkpoints) before it is killed."""
    chunk_execute_steps: int = 0
    """Actors running an action-chunk policy execute this many actions of each predicted chunk before predicting again (0: the whole chunk); an operator takeover drops the rest. One-step policies (SAC) are not affected."""
    actor_max_restarts: int = 5
    """hilrl train: restarts of one actor process that died (signal or error exit) within a run; one more death stops the run. 0: never restart."""
    actor_restart_backoff_s: float = 1.0
    """hilrl train: wait before an actor's first restart, doubled for each further one (at most 30 s)."""
    max_consecutive_skips: int = 100
    """Stop the learner with an error (exit code 1) after this many update calls in a row made no real update: every batch skipped for non-finite inputs, or non-finite losses / values (a diverged critic). The final checkpoint is saved only while the networks are finite, so the newest checkpoint is the last good state. 0: never stop (only count them)."""

    def validate(self) -> None:
        if self.num_actors < 0:
            raise ConfigError("num_actors", self.num_actors, "must be >= 0")
        if self.inprocess and self.num_actors < 1:
            raise ConfigError("num_actors", self.num_actors, "inprocess runs need >= 1 actor")
        counts = (
            "warmup_transitions",
            "publish_every_updates",
            "num_demo_episodes",
            "eval_every_episodes",
            "learner_torch_threads",
            "final_eval_episodes",
            "final_eval_videos",
            "max_consecutive_skips",
            "actor_max_restarts",
            "chunk_execute_steps",
        )
        for name in counts:
            if getattr(self, name) < 0:
                raise ConfigError(name, getattr(self, name), "must be >= 0")
        if self.eval_episodes < 1:
            raise ConfigError("eval_episodes", self.eval_episodes, "must be >= 1")
        if self.actor_torch_threads < 1:
            raise ConfigError("actor_torch_threads", self.actor_torch_threads, "must be >= 1")
        for name in ("updates_per_env_step", "checkpoint_every_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(name, value, "must be a finite number >= 0")
        for name in (
            "publish_every_s",
            "weights_timeout_s",
            "shutdown_timeout_s",
            "actor_restart_backoff_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "must be a finite number > 0")
        if self.max_runtime_s is not None and not self.max_runtime_s > 0:
            raise ConfigError("max_runtime_s", self.max_runtime_s, "must be positive or null")
        if self.demo_dataset is not None and not self.demo_dataset.strip():
            raise ConfigError("demo_dataset", self.demo_dataset, "must be a folder path or null")
