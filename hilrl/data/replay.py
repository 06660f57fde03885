"""Replay buffer with uint8 images, preallocated, and exact next observations.

Storage: slot ``i`` holds observation, action, reward and flags of one transition. Its
next observation is slot ``i + 1`` (mod capacity) when that slot holds the true
successor; otherwise (episode end, truncation, the newest transition of the ring, a
non-contiguous add such as interleaved actors or intervention segments) it is stored
explicitly in a small pool, and ``next_ref[i]`` points to it. So a transition costs
about one uint8 observation, never the reference's wrong ``idx + 1`` (defect 1) nor the
doubled memory of storing every next observation.

Contiguity is decided by content: a transition follows the previous add when the
previous one did not end its episode and its next observation equals this observation.

Observation arrays (the big part) live on ``device`` (CPU or CUDA) as torch tensors; the
small per-transition fields stay in numpy on the host, where indices are drawn.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
import torch

from hilrl.data.augment import gather_shifted, image_storage
from hilrl.policies.encoder import ObservationSpec
from hilrl.types import STATE_KEY, Batch, Transition

ReplayBatch = Batch
"""Samples are :class:`hilrl.types.Batch`; with n-step returns ``rewards`` and
``discrete_penalties`` are discounted sums over up to n steps and ``bootstrap_discount`` is
gamma**k for the k steps actually taken (None for 1-step: the algorithm's own discount)."""


class HostRows(NamedTuple):
    """Per-row small fields of a gathered sample, on the host."""

    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    discrete_penalties: np.ndarray
    is_intervention: np.ndarray
    bootstrap_discount: np.ndarray


def _gather(
    store: torch.Tensor,
    index: torch.Tensor,
    out: torch.Tensor,
    shift: tuple[torch.Tensor, torch.Tensor] | None,
) -> None:
    """``out = store[index]``, DrQ-shifted by ``shift = (dy, dx)`` when given."""
    if shift is not None:
        gather_shifted(store, index, *shift, out)
    else:
        torch.index_select(store, 0, index, out=out)


def _dtype(key: str) -> torch.dtype:
    return torch.float32 if key == STATE_KEY else torch.uint8


class ReplayBuffer:
    """Ring buffer of transitions; thread-safe ``add`` / ``add_batch`` / ``gather``."""

    def __init__(
        self,
        spec: ObservationSpec,
        action_dim: int,
        capacity: int,
        device: str | torch.device = "cpu",
        explicit_next_fraction: float = 0.05,
        name: str = "replay",
    ) -> None:
        if capacity < 2:
            raise ValueError(f"replay '{name}': capacity must be >= 2, got {capacity}")
        self.spec = spec
        self.action_dim = action_dim
        self.capacity = capacity
        self.device = torch.device(device)
        self.name = name
        self.shapes: dict[str, tuple[int, ...]] = {}
        if spec.state_dim:
            self.shapes[STATE_KEY] = (spec.state_dim,)
        for key, shape in spec.image_shapes:
            self.shapes[key] = shape
        # Host storage is not pinned (pinning many GB is fragile); the sampler's
        # per-batch output buffers are, when training on CUDA.
        self.obs = {k: self._storage(k, capacity) for k in self.shapes}
        pool = max(16, int(capacity * explicit_next_fraction))
        self.pool = {k: self._storage(k, pool) for k in self.shapes}
        self.free: list[int] = list(range(pool - 1, -1, -1))
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.penalties = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, bool)
        self.truncated = np.zeros(capacity, bool)
        self.is_intervention = np.zeros(capacity, bool)
        self.next_ref = np.full(capacity, -1, np.int64)
        self.pos = 0
        self.size = 0
        self.last = -1
        self._pending: dict[str, np.ndarray] | None = None
        """Host copy of the newest transition's next observation while its episode runs."""
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return self.size

    def _storage(self, key: str, count: int) -> torch.Tensor:
        """Images get slack memory around them, for :func:`gather_shifted`'s fused reads."""
        if key == STATE_KEY:
            return torch.empty((count, *self.shapes[key]), dtype=_dtype(key), device=self.device)
        return image_storage(count, self.shapes[key], self.device)

    @property
    def pool_capacity(self) -> int:
        return int(next(iter(self.pool.values())).shape[0])

    def nbytes(self) -> int:
        """Bytes held: observation storage, explicit-next pool and per-row fields."""
        tensors = sum(
            t.numel() * t.element_size() for t in [*self.obs.values(), *self.pool.values()]
        )
        arrays = [
            self.actions,
            self.rewards,
            self.penalties,
            self.terminated,
            self.truncated,
            self.is_intervention,
            self.next_ref,
        ]
        return tensors + sum(a.nbytes for a in arrays)

    # ------------------------------------------------------------------ adding

    def add(self, t: Transition) -> None:
        """Add one transition (as the actor sends it)."""
        self.add_batch(
            {k: np.asarray(v)[None] for k, v in t.observation.items()},
            np.asarray(t.action, np.float32)[None],
            np.asarray([t.reward], np.float32),
            {k: np.asarray(v)[None] for k, v in t.next_observation.items()},
            np.asarray([t.terminated]),
            np.asarray([t.truncated]),
            np.asarray([t.is_intervention]),
            np.asarray([t.discrete_penalty], np.float32),
        )

    def add_batch(
        self,
        observations: Mapping[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Mapping[str, np.ndarray],
        terminated: np.ndarray,
        truncated: np.ndarray,
        is_intervention: np.ndarray | None = None,
        discrete_penalties: np.ndarray | None = None,
    ) -> None:
        """Add N transitions in order: arrays with a leading dimension N.

        Rows are typically consecutive steps of episodes (a dataset chunk); any row whose
        observation is not the previous row's next observation simply starts a new
        segment. Images are uint8 ``(N, H, W, 3)``, the state float ``(N, D)``.
        """
        n = int(np.shape(actions)[0])
        obs = self._check_obs(observations, n, "observations")
        nxt = self._check_obs(next_observations, n, "next_observations")
        actions = np.asarray(actions, np.float32).reshape(n, -1)
        if actions.shape[1] != self.action_dim:
            raise ValueError(
                f"replay '{self.name}': actions have {actions.shape[1]} dims, expected {self.action_dim}"
            )
        rewards = self._check_rows(rewards, n, "rewards", np.float32)
        term = self._check_rows(terminated, n, "terminated", bool)
        trunc = self._check_rows(truncated, n, "truncated", bool)
        interv = self._check_rows(
            is_intervention if is_intervention is not None else np.zeros(n, bool),
            n,
            "is_intervention",
            bool,
        )
        pen = self._check_rows(
            discrete_penalties if discrete_penalties is not None else np.zeros(n, np.float32),
            n,
            "discrete_penalties",
            np.float32,
        )
        if n == 0:
            return
        if n > self.capacity:  # only the newest rows fit
            drop = n - self.capacity
            obs = {k: v[drop:] for k, v in obs.items()}
            nxt = {k: v[drop:] for k, v in nxt.items()}
            actions, rewards, term, trunc, interv, pen = (
                a[drop:] for a in (actions, rewards, term, trunc, interv, pen)
            )
            n = self.capacity
        done = term | trunc
        # follows[k]: row k is the true successor of row k-1 (row -1: the newest stored).
        follows = np.zeros(n, bool)
        if n > 1:
            same = np.ones(n - 1, bool)
            for k in self.shapes:
                same &= (obs[k][1:] == nxt[k][:-1]).reshape(n - 1, -1).all(axis=1)
            follows[1:] = same & ~done[:-1]
        with self.lock:
            if self._pending is not None and self.last >= 0:
                follows[0] = all(np.array_equal(obs[k][0], self._pending[k]) for k in self.shapes)
            slots = (self.pos + np.arange(n)) % self.capacity
            self._release(self.next_ref[slots])  # overwritten rows give back their pool entries
            self.next_ref[slots] = -1
            if follows[0]:
                self._release(self.next_ref[self.last : self.last + 1])
                self.next_ref[self.last] = -1
            self._write_rows(self.obs, slots, obs)
            explicit = np.ones(n, bool)
            explicit[:-1] = ~follows[1:]
            rows = np.nonzero(explicit)[0]
            entries = self._allocate(len(rows))
            self._write_rows(self.pool, entries, {k: v[rows] for k, v in nxt.items()})
            self.next_ref[slots[rows]] = entries
            self.actions[slots] = actions
            self.rewards[slots] = rewards
            self.penalties[slots] = pen
            self.terminated[slots] = term
            self.truncated[slots] = trunc
            self.is_intervention[slots] = interv
            self.last = int(slots[-1])
            self._pending = None if done[-1] else {k: v[-1].copy() for k, v in nxt.items()}
            self.pos = int((slots[-1] + 1) % self.capacity)
            self.size = min(self.size + n, self.capacity)

    def _check_obs(self, obs: Mapping[str, np.ndarray], n: int, what: str) -> dict[str, np.ndarray]:
        missing = set(self.shapes) - set(obs)
        if missing:
            raise KeyError(f"replay '{self.name}': {what} lacks {sorted(missing)}")
        out = {}
        for k, shape in self.shapes.items():
            arr = np.asarray(obs[k])
            if arr.shape != (n, *shape):
                raise ValueError(
                    f"replay '{self.name}': {what}[{k!r}] has shape {arr.shape}, expected {(n, *shape)}"
                )
            if k == STATE_KEY:
                arr = arr.astype(np.float32, copy=False)
            elif arr.dtype != np.uint8:
                raise ValueError(
                    f"replay '{self.name}': {what}[{k!r}] must be uint8, got {arr.dtype}"
                )
            out[k] = arr
        return out

    def _check_rows(self, arr: np.ndarray, n: int, what: str, dtype: Any) -> np.ndarray:
        a = np.asarray(arr).reshape(-1)
        if a.shape[0] != n:
            raise ValueError(f"replay '{self.name}': {what} has {a.shape[0]} rows, expected {n}")
        return a.astype(dtype, copy=False)

    def _write_rows(
        self, dst: dict[str, torch.Tensor], rows: np.ndarray, src: Mapping[str, np.ndarray]
    ) -> None:
        if len(rows) == 0:
            return
        for k, t in dst.items():
            data = torch.from_numpy(np.ascontiguousarray(src[k]))
            start = int(rows[0])
            if int(rows[-1]) - start == len(rows) - 1:  # one contiguous range: plain copy
                t[start : start + len(rows)].copy_(data)
            else:
                t.index_copy_(0, torch.from_numpy(rows).to(t.device), data.to(t.device))

    def _release(self, refs: np.ndarray) -> None:
        self.free.extend(int(r) for r in refs[refs >= 0])

    def _allocate(self, count: int) -> np.ndarray:
        while len(self.free) < count:
            self._grow_pool()
        out = np.array([self.free.pop() for _ in range(count)], np.int64)
        return out

    def _grow_pool(self) -> None:
        """Grow the explicit-next pool by half (short episodes or interleaved adds)."""
        old = self.pool_capacity
        new = min(max(old + old // 2, old + 16), self.capacity + 1)
        if new <= old:
            raise RuntimeError(f"replay '{self.name}': explicit-next pool exhausted ({old})")
        for k, t in self.pool.items():
            grown = self._storage(k, new)
            grown[:old].copy_(t)
            self.pool[k] = grown
        self.free = list(range(new - 1, old - 1, -1)) + self.free

    # ---------------------------------------------------------------- sampling

    def sample_indices(self, count: int, rng: np.random.Generator) -> np.ndarray:
        if self.size == 0:
            raise ValueError(f"replay '{self.name}' is empty")
        return rng.integers(0, self.size, size=count)

    def gather_into(
        self,
        obs_out: dict[str, torch.Tensor],
        next_out: dict[str, torch.Tensor],
        start: int,
        idx: np.ndarray,
        n_step: int = 1,
        discount: float = 1.0,
        shifts: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        next_shifts: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> HostRows:
        """Copy rows ``idx`` into ``obs_out[k][start:start+len(idx)]`` (and next obs).

        With ``n_step > 1`` the rewards and penalties are discounted sums up to the first
        termination, truncation or segment break, and the next observation is the one
        the return bootstraps from. ``shifts`` / ``next_shifts``: per image key the DrQ
        offsets ``(dy, dx)`` of these rows; those images are gathered already shifted
        (:func:`hilrl.data.augment.gather_shifted`).
        """
        stop = start + len(idx)
        with self.lock:
            final, rows = self._n_step(idx, n_step, discount)
            ref = self.next_ref[final]
            explicit = ref >= 0
            succ = np.where(explicit, final, (final + 1) % self.capacity)
            idx_t = torch.from_numpy(idx).to(self.device, non_blocking=True)
            succ_t = torch.from_numpy(succ).to(self.device, non_blocking=True)
            e_rows = np.nonzero(explicit)[0]
            shifts, next_shifts = shifts or {}, next_shifts or {}
            for k, store in self.obs.items():
                _gather(store, idx_t, obs_out[k][start:stop], shifts.get(k))
                _gather(store, succ_t, next_out[k][start:stop], next_shifts.get(k))
            if len(e_rows):
                e_rows_t = torch.from_numpy(e_rows).to(self.device)
                ref_t = torch.from_numpy(ref[e_rows]).to(self.device)
                for k, pool in self.pool.items():
                    dest = next_out[k][start:stop]
                    shift = next_shifts.get(k)
                    part = torch.empty(
                        (len(e_rows), *dest.shape[1:]), dtype=dest.dtype, device=dest.device
                    )
                    if shift is not None:
                        shift = (shift[0][e_rows_t], shift[1][e_rows_t])
                    _gather(pool, ref_t, part, shift)
                    dest.index_copy_(0, e_rows_t, part)
            return HostRows(
                self.actions[idx],
                rows.rewards,
                rows.terminated,
                rows.discrete_penalties,
                self.is_intervention[idx],
                rows.bootstrap_discount,
            )

    def _n_step(self, idx: np.ndarray, n_step: int, discount: float) -> tuple[np.ndarray, HostRows]:
        """Walk up to n steps along true successors; returns the bootstrap slot per row."""
        cur = idx.copy()
        final = idx.copy()
        ret = np.zeros(len(idx), np.float32)
        pen = np.zeros(len(idx), np.float32)
        term = np.zeros(len(idx), bool)
        boot = np.ones(len(idx), np.float32)
        alive = np.ones(len(idx), bool)
        scale = 1.0
        for k in range(n_step):
            ret += np.where(alive, scale * self.rewards[cur], 0.0).astype(np.float32)
            pen += np.where(alive, scale * self.penalties[cur], 0.0).astype(np.float32)
            final = np.where(alive, cur, final)
            t = self.terminated[cur]
            ends = t | (self.next_ref[cur] >= 0) | (k == n_step - 1)
            term |= alive & t
            boot = np.where(alive & ends, np.float32(discount ** (k + 1)), boot)
            alive &= ~ends
            cur = np.where(alive, (cur + 1) % self.capacity, cur)
            scale *= discount
        empty = np.zeros(0, np.float32)
        return final, HostRows(empty, ret, term.astype(np.float32), pen, empty, boot)

    # ------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, object]:
        """``{"tensors", "meta"}`` of the filled part (safetensors-friendly, no pickle)."""
        with self.lock:
            n = self.size
            tensors: dict[str, torch.Tensor] = {}
            for k, t in self.obs.items():
                tensors[f"obs.{k}"] = t[:n].cpu()
            used = np.unique(self.next_ref[:n][self.next_ref[:n] >= 0])
            # Compact the pool: only referenced entries are saved, with a remapped next_ref.
            remap = np.full(self.pool_capacity, -1, np.int64)
            remap[used] = np.arange(len(used))
            used_t = torch.from_numpy(used).to(self.device)
            for k, t in self.pool.items():
                tensors[f"pool.{k}"] = t.index_select(0, used_t).cpu()
            ref = self.next_ref[:n]
            tensors["next_ref"] = torch.from_numpy(
                np.where(ref >= 0, remap[np.maximum(ref, 0)], -1)
            )
            tensors["actions"] = torch.from_numpy(self.actions[:n].copy())
            tensors["rewards"] = torch.from_numpy(self.rewards[:n].copy())
            tensors["discrete_penalties"] = torch.from_numpy(self.penalties[:n].copy())
            tensors["terminated"] = torch.from_numpy(self.terminated[:n].astype(np.uint8))
            tensors["truncated"] = torch.from_numpy(self.truncated[:n].astype(np.uint8))
            tensors["is_intervention"] = torch.from_numpy(self.is_intervention[:n].astype(np.uint8))
            meta = {
                "name": self.name,
                "capacity": self.capacity,
                "action_dim": self.action_dim,
                "obs_spec": self.spec.to_json(),
                "pos": self.pos,
                "size": self.size,
                "last": self.last,
                "pending": self._pending is not None,
            }
            return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        """Restore a :meth:`state_dict`; capacity, spec and action dims must match."""
        tensors = state["tensors"]
        meta = state["meta"]
        assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
        for key, own in (
            ("capacity", self.capacity),
            ("action_dim", self.action_dim),
            ("obs_spec", self.spec.to_json()),
        ):
            if meta[key] != own:
                raise ValueError(
                    f"replay '{self.name}': saved {key} {meta[key]!r} differs from this buffer's {own!r}"
                )
        n = int(meta["size"])
        with self.lock:
            saved_ref = tensors["next_ref"].numpy()
            used = int((saved_ref >= 0).sum())
            while self.pool_capacity < used:
                self._grow_pool()
            for k in self.shapes:
                self.obs[k][:n].copy_(tensors[f"obs.{k}"])
                self.pool[k][:used].copy_(tensors[f"pool.{k}"][:used])
            self.free = list(range(self.pool_capacity - 1, used - 1, -1))
            self.next_ref[:] = -1
            self.next_ref[:n] = saved_ref
            self.actions[:n] = tensors["actions"].numpy()
            self.rewards[:n] = tensors["rewards"].numpy()
            self.penalties[:n] = tensors["discrete_penalties"].numpy()
            self.terminated[:n] = tensors["terminated"].numpy().astype(bool)
            self.truncated[:n] = tensors["truncated"].numpy().astype(bool)
            self.is_intervention[:n] = tensors["is_intervention"].numpy().astype(bool)
            self.pos = int(meta["pos"])
            self.size = n
            self.last = int(meta["last"])
            self._pending = None
            if meta["pending"] and self.last >= 0:
                ref = int(self.next_ref[self.last])
                self._pending = {k: self.pool[k][ref].cpu().numpy().copy() for k in self.shapes}
