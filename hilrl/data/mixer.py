"""The three replay buffers, transition routing, and the mixing, prefetching sampler.

Routing (HIL-SERL): every actor transition goes to the online buffer; interventions also
go to the intervention buffer; demonstrations only to the demo buffer. Offline training
is "fill the demo buffer, run updates" with ``online_ratio=0``.

Mixing (RLPD): each critic batch takes ``online_ratio`` of its rows from online data and
the rest from demos + interventions, either pooled by size or with a fixed intervention
share. An empty source gives its share to the others. A sample for a UTD update holds
``utd`` chunks of ``batch_size`` rows, each chunk mixed on its own.

Prefetching: a background thread keeps ``prefetch`` batches ready (gather, host-to-device
copy and DrQ augmentation), so the training step does not wait for sampling.

DrQ: obs and next obs of every row get independent offsets per camera. With CPU storage
the shift is part of the gather (:func:`hilrl.data.augment.gather_shifted`, one pass
over the images); with CUDA storage the gathered batch is shifted by one indexing op.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from hilrl.config.learner import ReplayConfig
from hilrl.data.augment import draw_shifts, random_shift
from hilrl.data.replay import HostRows, ReplayBatch, ReplayBuffer
from hilrl.policies.encoder import ObservationSpec
from hilrl.types import STATE_KEY, Transition

SOURCES = ("online", "demos", "interventions")


def resolve_device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ReplayBuffers:
    """Online, demonstration and intervention buffers with HIL-SERL routing."""

    def __init__(self, spec: ObservationSpec, action_dim: int, cfg: ReplayConfig) -> None:
        dev = resolve_device(cfg.storage_device)
        frac = cfg.explicit_next_fraction
        self.spec = spec
        self.online = ReplayBuffer(spec, action_dim, cfg.capacity, dev, frac, "online")
        self.demos = ReplayBuffer(spec, action_dim, cfg.demo_capacity, dev, frac, "demos")
        self.interventions = ReplayBuffer(
            spec, action_dim, cfg.intervention_capacity, dev, frac, "interventions"
        )

    def by_name(self) -> dict[str, ReplayBuffer]:
        return {"online": self.online, "demos": self.demos, "interventions": self.interventions}

    def add(self, t: Transition) -> None:
        """One actor transition: online always, interventions also to their own buffer."""
        self.add_transitions([t])

    def add_transitions(self, transitions: Sequence[Transition]) -> None:
        """Actor transitions in order (send them per actor: interleaving costs memory)."""
        if not transitions:
            return
        arrays = transitions_to_arrays(transitions)
        self.online.add_batch(*arrays)
        mask = arrays[6]
        if mask.any():
            self.interventions.add_batch(*_rows(arrays, np.nonzero(mask)[0]))

    def add_demos(
        self,
        observations: Mapping[str, np.ndarray],
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: Mapping[str, np.ndarray],
        terminated: np.ndarray,
        truncated: np.ndarray,
        discrete_penalties: np.ndarray | None = None,
    ) -> None:
        """A chunk of demonstration steps (dataset loader entry point)."""
        n = len(actions)
        self.demos.add_batch(
            observations,
            actions,
            rewards,
            next_observations,
            terminated,
            truncated,
            np.zeros(n, bool),
            discrete_penalties,
        )

    def nbytes(self) -> int:
        return sum(b.nbytes() for b in self.by_name().values())

    def state_dict(self) -> dict[str, object]:
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, object] = {}
        for name, buf in self.by_name().items():
            st = buf.state_dict()
            assert isinstance(st["tensors"], dict)
            tensors.update({f"{name}.{k}": v for k, v in st["tensors"].items()})
            meta[name] = st["meta"]
        return {"tensors": tensors, "meta": meta}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        tensors = state["tensors"]
        meta = state["meta"]
        assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
        for name, buf in self.by_name().items():
            if name not in meta:
                raise KeyError(f"saved replay state lacks the '{name}' buffer")
            prefix = f"{name}."
            sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            buf.load_state_dict({"tensors": sub, "meta": meta[name]})


def transitions_to_arrays(ts: Sequence[Transition]) -> tuple:  # type: ignore[type-arg]
    """Stack transitions into the array arguments of :meth:`ReplayBuffer.add_batch`."""
    keys = list(ts[0].observation)
    obs = {k: np.stack([np.asarray(t.observation[k]) for t in ts]) for k in keys}
    nxt = {k: np.stack([np.asarray(t.next_observation[k]) for t in ts]) for k in keys}
    return (
        obs,
        np.stack([np.asarray(t.action, np.float32) for t in ts]),
        np.array([t.reward for t in ts], np.float32),
        nxt,
        np.array([t.terminated for t in ts], bool),
        np.array([t.truncated for t in ts], bool),
        np.array([t.is_intervention for t in ts], bool),
        np.array([t.discrete_penalty for t in ts], np.float32),
    )


def _rows(arrays: tuple, rows: np.ndarray) -> tuple:  # type: ignore[type-arg]
    return tuple(
        {k: v[rows] for k, v in a.items()} if isinstance(a, dict) else a[rows] for a in arrays
    )


class MixedSampler:
    """Draws mixed, augmented batches of ``chunks x batch_size`` rows on ``device``."""

    def __init__(
        self,
        buffers: ReplayBuffers,
        cfg: ReplayConfig,
        device: str | torch.device = "cpu",
        chunks: int = 1,
        n_step: int = 1,
        discount: float = 0.99,
        run_seed: int | None = None,
    ) -> None:
        """``run_seed``: the run's seed, mixed with ``cfg.seed`` (None: ``cfg.seed`` alone)."""
        self.buffers = buffers
        self.cfg = cfg
        self.device = resolve_device(device)
        self.chunks = chunks
        self.n_step = n_step
        self.discount = discount
        seed = cfg.seed
        if run_seed is not None:
            seed = int(
                np.random.SeedSequence(
                    [run_seed & 0xFFFFFFFF, cfg.seed & 0xFFFFFFFF]
                ).generate_state(1)[0]
            )
        self.rng = np.random.default_rng(seed)
        self.aug_gen = torch.Generator(device=self.device)
        self.aug_gen.manual_seed(seed)
        self._queue: queue.Queue[ReplayBatch | BaseException] = queue.Queue(
            maxsize=max(cfg.prefetch, 1)
        )
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------- composition

    def composition(self) -> list[tuple[int, int, int]]:
        """Rows per source (online, demos, interventions) for each chunk."""
        sizes = [len(self.buffers.online), len(self.buffers.demos), len(self.buffers.interventions)]
        if not any(sizes):
            raise ValueError("cannot sample: all replay buffers are empty")
        b = self.cfg.batch_size
        offline = sizes[1] + sizes[2]
        ratio = self.cfg.online_ratio if sizes[0] and offline else (1.0 if sizes[0] else 0.0)
        n_on = round(b * ratio)
        out = []
        for _ in range(self.chunks):
            n_off = b - n_on
            if self.cfg.intervention_ratio is None or not (sizes[1] and sizes[2]):
                n_int = int(self.rng.binomial(n_off, sizes[2] / offline)) if offline else 0
            else:
                n_int = round(n_off * self.cfg.intervention_ratio)
            out.append((n_on, n_off - n_int, n_int))
        return out

    # ---------------------------------------------------------------- sampling

    def sample(self) -> ReplayBatch:
        """One batch, gathered, moved to the training device and augmented."""
        comp = self.composition()
        rows = self.chunks * self.cfg.batch_size
        buffers = [self.buffers.online, self.buffers.demos, self.buffers.interventions]
        store_dev = self.buffers.online.device
        pin = store_dev.type == "cpu" and self.device.type == "cuda"
        shapes = self.buffers.online.shapes
        obs = {k: _empty((rows, *s), k, store_dev, pin) for k, s in shapes.items()}
        nxt = {k: _empty((rows, *s), k, store_dev, pin) for k, s in shapes.items()}
        # On the CPU, DrQ shifts happen inside the gather (one pass over the images).
        pad = self.cfg.augment_pad if self.cfg.augment else 0
        fused = pad > 0 and store_dev.type == "cpu"
        images = [k for k in shapes if k != STATE_KEY]
        shifts, nshifts = (
            {k: draw_shifts(rows, pad, self.aug_gen, store_dev) for k in images} if fused else {}
            for _ in range(2)
        )
        host: list[HostRows] = []
        start = 0
        for counts in comp:
            for buf, count in zip(buffers, counts):
                if count:
                    idx = buf.sample_indices(count, self.rng)
                    stop = start + count
                    host.append(
                        buf.gather_into(
                            obs,
                            nxt,
                            start,
                            idx,
                            self.n_step,
                            self.discount,
                            _rows_of(shifts, start, stop),
                            _rows_of(nshifts, start, stop),
                        )
                    )
                    start = stop
        cat = HostRows(*(np.concatenate(parts) for parts in zip(*host)))
        dev = self.device

        def to_dev(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(
                dev, non_blocking=True
            )

        obs_d = {k: v.to(dev, non_blocking=True) for k, v in obs.items()}
        nxt_d = {k: v.to(dev, non_blocking=True) for k, v in nxt.items()}
        if pad and not fused:
            for d in (obs_d, nxt_d):
                for k in d:
                    if k != STATE_KEY:
                        d[k] = random_shift(d[k], self.cfg.augment_pad, self.aug_gen)
        return ReplayBatch(
            obs_d,
            to_dev(cat.actions),
            to_dev(cat.rewards),
            nxt_d,
            to_dev(cat.terminated),
            to_dev(cat.discrete_penalties),
            to_dev(cat.is_intervention),
            to_dev(cat.bootstrap_discount) if self.n_step > 1 else None,
        )

    def next(self) -> ReplayBatch:
        """The next batch: from the prefetch thread, or sampled now when prefetch is 0."""
        if self.cfg.prefetch == 0:
            return self.sample()
        if (self._thread is None or not self._thread.is_alive()) and self._queue.empty():
            self._start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._thread = None
            raise item
        return item

    def _start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="replay-prefetch", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                item: ReplayBatch | BaseException = self.sample()
            except BaseException as exc:  # handed to the consumer, who re-raises it
                item = exc
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, BaseException):
                return

    def close(self) -> None:
        """Stop the prefetch thread and drop prepared batches."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def state_dict(self) -> dict[str, object]:
        """Random generator states (batches already prefetched are not part of it)."""
        return {
            "tensors": {"aug_generator": self.aug_gen.get_state()},
            "meta": {"rng": self.rng.bit_generator.state},
        }

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        tensors = state["tensors"]
        meta = state["meta"]
        assert isinstance(tensors, Mapping) and isinstance(meta, Mapping)
        self.close()
        self.rng.bit_generator.state = dict(meta["rng"])
        self.aug_gen.set_state(tensors["aug_generator"])


def _empty(shape: tuple[int, ...], key: str, device: torch.device, pin: bool) -> torch.Tensor:
    dtype = torch.float32 if key == STATE_KEY else torch.uint8
    t = torch.empty(shape, dtype=dtype, device=device)
    return t.pin_memory() if pin else t


Shifts = dict[str, tuple[torch.Tensor, torch.Tensor]]


def _rows_of(shifts: Shifts, start: int, stop: int) -> Shifts:
    """Rows ``[start, stop)`` of per-camera DrQ offsets."""
    return {k: (dy[start:stop], dx[start:stop]) for k, (dy, dx) in shifts.items()}
