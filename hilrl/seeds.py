"""Reset seeds of episodes: one function for demos, recordings, evaluation, labels and actors.

Every episode that resets a (simulated) task draws its seed here, from the run's seed, the
*stream* it belongs to and its index in that stream::

    env.reset(seed=episode_seed(cfg.run.seed, "eval", i))
    env.reset(seed=episode_seed(cfg.run.seed, actor_stream("train", actor_index), episode))

Hashed with a SeedSequence, never ``run.seed + i``: with the sum, runs seeded 0 and 1 share
all but one of their layouts, so "three seeds" would be nearly one. Different streams of one
run (demos vs. evaluation) never share layouts either, and a stream's seeds do not depend on
how many episodes another stream drew.
"""

from __future__ import annotations

import zlib

import numpy as np

DEMO = "demo"
"""A run's demonstrations, recorded by the simulated operator (:mod:`hilrl.runtime.demos`)."""
RECORD = "record"
"""Episodes of ``hilrl record`` (:mod:`hilrl.runtime.record`)."""
EVAL = "eval"
"""Evaluation episodes (:mod:`hilrl.runtime.evaluate`; actors use ``eval/actor<i>``)."""
LABEL = "label"
"""Labelled episodes of ``hilrl label-sim`` (:mod:`hilrl.rewards.label`)."""
TRAIN = "train"
"""Actors' training episodes (``train/actor<i>``, :mod:`hilrl.runtime.actor`)."""
STREAMS = (DEMO, RECORD, EVAL, LABEL, TRAIN)
"""The base streams of hilrl; a stream name may add a ``/<suffix>`` (e.g. an actor index)."""


def episode_seed(run_seed: int, stream: str, index: int) -> int:
    """The reset seed (uint32) of episode ``index`` of ``stream`` in a run seeded ``run_seed``."""
    if index < 0:
        raise ValueError(f"episode index must be >= 0, got {index}")
    key = [run_seed & 0xFFFFFFFF, (run_seed >> 32) & 0xFFFFFFFF, zlib.crc32(stream.encode()), index]
    return int(np.random.SeedSequence(key).generate_state(1, dtype=np.uint32)[0])


def actor_stream(base: str, actor_index: int) -> str:
    """The stream name of one actor's ``base`` episodes (``"train"`` or ``"eval"``)."""
    return f"{base}/actor{actor_index}"
