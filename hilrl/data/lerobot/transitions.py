"""Turn streamed dataset chunks into RL transitions with correct next observations.

A LeRobot row holds ``(o_t, a_t, r_t = next.reward, next.done, next.truncated)``; the
successor observation is the next row *of the same episode*. The last frame of an episode
has no stored successor, so its next observation is the frame itself (harmless: a
termination does not bootstrap, and a truncation bootstraps from a state close to the
true one). This never pairs frames of different episodes (defect 1 of the reference).

``terminated`` is ``next.done and not next.truncated``. Datasets without
``next.truncated`` (LeRobot's recorder) count every ``next.done`` as a termination;
datasets without ``next.done`` mark their episode ends as truncations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hilrl.data.lerobot.features import ACTION, DONE, INTERVENTION, PENALTY, REWARD, TRUNCATED
from hilrl.data.lerobot.reader import LeRobotDatasetReader
from hilrl.types import IMAGE_PREFIX, STATE_KEY


@dataclass
class TransitionArrays:
    """A batch of transitions as stacked arrays (observations keyed like the dataset)."""

    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: dict[str, np.ndarray]
    terminated: np.ndarray
    truncated: np.ndarray
    is_intervention: np.ndarray
    discrete_penalties: np.ndarray
    episode_index: np.ndarray
    frame_index: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


def observation_keys(keys: Sequence[str]) -> list[str]:
    """The observation features among ``keys`` (state and cameras)."""
    return [k for k in keys if k == STATE_KEY or k.startswith((IMAGE_PREFIX, "observation."))]


def make_transitions(
    chunk: Mapping[str, np.ndarray], episode_last: np.ndarray, obs_keys: Sequence[str]
) -> TransitionArrays:
    """Transitions of consecutive frames: row ``i + 1`` follows row ``i`` unless
    ``episode_last[i]`` marks the last frame of an episode.

    When the final row is not an episode's last frame its successor is not in
    ``chunk``, so that row is left out of the result (the caller carries it over).
    """
    n = len(chunk["episode_index"])
    last = np.asarray(episode_last, dtype=bool)
    if len(last) != n:
        raise ValueError(f"episode_last has {len(last)} entries for {n} frames")
    m = n if n == 0 or last[-1] else n - 1
    rows = np.arange(m)
    succ = np.where(last[:m], rows, rows + 1)
    obs = {k: chunk[k][:m] for k in obs_keys}
    next_obs = {k: chunk[k][succ] for k in obs_keys}
    done = _flag(chunk, DONE, n)[:m]
    trunc = _flag(chunk, TRUNCATED, n)[:m]
    if DONE not in chunk:
        trunc = trunc | last[:m]
    zeros = np.zeros(m, dtype=np.float32)
    return TransitionArrays(
        observations=obs,
        actions=np.asarray(chunk[ACTION][:m], dtype=np.float32),
        rewards=np.asarray(chunk[REWARD][:m], dtype=np.float32) if REWARD in chunk else zeros,
        next_observations=next_obs,
        terminated=done & ~trunc,
        truncated=trunc,
        is_intervention=_flag(chunk, INTERVENTION, n)[:m],
        discrete_penalties=(
            np.asarray(chunk[PENALTY][:m], dtype=np.float32) if PENALTY in chunk else zeros
        ),
        episode_index=np.asarray(chunk["episode_index"][:m]),
        frame_index=np.asarray(chunk["frame_index"][:m]),
    )


def _flag(chunk: Mapping[str, np.ndarray], key: str, n: int) -> np.ndarray:
    if key not in chunk:
        return np.zeros(n, dtype=bool)
    return np.asarray(chunk[key]).astype(bool)


def iter_transitions(
    reader: LeRobotDatasetReader,
    chunk_size: int = 2048,
    episodes: Sequence[int] | None = None,
) -> Iterator[TransitionArrays]:
    """Stream the dataset as transitions, chunk by chunk.

    A chunk's final frame whose successor starts the next chunk is held back and comes
    out as a one-transition batch paired with that successor (no chunk is copied).
    """
    lengths = reader.episode_lengths
    obs_keys = observation_keys(list(reader.features))
    carry: dict[str, np.ndarray] | None = None
    for chunk in reader.iter_chunks(chunk_size=chunk_size, episodes=episodes):
        if carry is not None:
            bridge = {k: np.concatenate([carry[k], v[:1]]) for k, v in chunk.items()}
            yield make_transitions(bridge, np.zeros(2, dtype=bool), obs_keys)
        ep, frame = chunk["episode_index"], chunk["frame_index"]
        uniq, inverse = np.unique(ep, return_inverse=True)
        ends = np.array([lengths[int(e)] - 1 for e in uniq], dtype=np.int64)
        batch = make_transitions(chunk, frame == ends[inverse], obs_keys)
        carry = None if len(batch) == len(ep) else {k: v[len(batch) :] for k, v in chunk.items()}
        if len(batch):
            yield batch
    if carry is not None:
        raise RuntimeError("stream ended inside an episode")  # unreachable for valid metadata
