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
from typing import Any

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
        self.add_arrays(transitions_to_arrays(transitions))

    def check_transitions(self, transitions: Sequence[Transition]) -> tuple:  # type: ignore[type-arg]
        """Actor transitions as storage arrays, or :class:`TransitionError` naming the bad one.

        See :func:`checked_transition_arrays`; nothing is added.
        """
        return checked_transition_arrays(transitions, self.online.shapes, self.online.action_dim)

    def add_arrays(self, arrays: tuple) -> None:  # type: ignore[type-arg]
        """Add :func:`transitions_to_arrays` / :meth:`check_transitions` output (routing as
        :meth:`add_transitions`)."""
        if len(arrays[1]) == 0:
            return
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


class TransitionError(ValueError):
    """An actor message that does not fit the replay: one line naming the transition and field."""


_SCALARS = (
    ("reward", np.float32),
    ("discrete_penalty", np.float32),
    ("terminated", bool),
    ("truncated", bool),
    ("is_intervention", bool),
)


def checked_transition_arrays(
    ts: Sequence[Transition], shapes: Mapping[str, tuple[int, ...]], action_dim: int
) -> tuple:  # type: ignore[type-arg]
    """:func:`transitions_to_arrays` in the replay's storage dtypes, every transition checked.

    Checked against the replay's layout (``shapes``: observation key -> per-row shape,
    ``action_dim``): the observation keys of ``observation`` and ``next_observation``
    (exactly those of ``shapes``), each one's shape and dtype (images uint8, the state
    numeric), the action's shape, scalar reward / penalty / flags; then every float field
    is converted to float32, the storage dtype, and must be finite there (a reward of
    1e39 is finite in float64 but inf in float32). uint8 images are never scanned.

    Vectorised over the message; only a bad message is walked transition by transition
    to name the first bad one. Raises :class:`TransitionError` (a ``ValueError``) with
    one line such as ``transition 3: reward 1e+39 is not finite in float32``.
    """
    n = len(ts)
    keys = list(shapes)
    try:
        obs = {k: np.stack([np.asarray(t.observation[k]) for t in ts]) for k in keys}
        nxt = {k: np.stack([np.asarray(t.next_observation[k]) for t in ts]) for k in keys}
        actions = np.stack([np.asarray(t.action) for t in ts])
        scalars = [np.array([getattr(t, name) for t in ts]) for name, _ in _SCALARS]
        extra = any(
            len(t.observation) != len(keys) or len(t.next_observation) != len(keys) for t in ts
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        _explain(ts, shapes, action_dim)
        raise TransitionError(f"transitions: {exc}") from exc
    ok = not extra and actions.shape == (n, action_dim) and actions.dtype.kind in "fiu"
    for k, shape in shapes.items():
        for arr in (obs[k], nxt[k]):
            image = k != STATE_KEY
            ok = ok and arr.shape == (n, *shape)
            ok = ok and (arr.dtype == np.uint8 if image else arr.dtype.kind in "fiu")
    for (_, dtype), arr in zip(_SCALARS, scalars):
        ok = ok and arr.shape == (n,) and _scalar_ok(arr, dtype)
    if not ok:
        _explain(ts, shapes, action_dim)
        raise TransitionError("transitions do not fit the replay")  # not reached
    with np.errstate(over="ignore", invalid="ignore"):  # float64 -> float32 overflow: inf
        floats: list[tuple[str, np.ndarray]] = []
        if STATE_KEY in shapes:
            obs[STATE_KEY] = obs[STATE_KEY].astype(np.float32, copy=False)
            nxt[STATE_KEY] = nxt[STATE_KEY].astype(np.float32, copy=False)
            floats.append((f"observation[{STATE_KEY!r}]", obs[STATE_KEY]))
            floats.append((f"next_observation[{STATE_KEY!r}]", nxt[STATE_KEY]))
        actions32 = actions.astype(np.float32, copy=False)
        floats.append(("action", actions32))
        converted = [a.astype(dtype, copy=False) for (_, dtype), a in zip(_SCALARS, scalars)]
        floats += [(name, a) for (name, dtype), a in zip(_SCALARS, converted) if dtype is not bool]
    first: tuple[int, str] | None = None
    for name, arr in floats:
        good = np.isfinite(arr).reshape(n, -1).all(axis=1)
        if not good.all():
            row = int(np.argmin(good))
            if first is None or row < first[0]:
                first = (row, name)
    if first is not None:
        row, name = first
        raise TransitionError(f"transition {row}: {_nonfinite_text(ts[row], name)}")
    return (
        obs,
        actions32,
        converted[0],
        nxt,
        converted[2],
        converted[3],
        converted[4],
        converted[1],
    )


def _nonfinite_text(t: Transition, name: str) -> str:
    """``reward 1e+39 is not finite in float32`` (the value as sent, before conversion)."""
    if name.startswith("observation["):
        value = np.asarray(t.observation[STATE_KEY])
    elif name.startswith("next_observation["):
        value = np.asarray(t.next_observation[STATE_KEY])
    else:
        value = np.asarray(getattr(t, name))
    if value.ndim == 0:
        return f"{name} {float(value):g} is not finite in float32"
    flat = value.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        idx = int(np.argmin(np.isfinite(flat.astype(np.float32))))
    return f"{name}[{idx}] {float(flat[idx]):g} is not finite in float32"


def _explain(
    ts: Sequence[Transition], shapes: Mapping[str, tuple[int, ...]], action_dim: int
) -> None:
    """Raise :class:`TransitionError` for the first transition that does not fit."""
    for i, t in enumerate(ts):
        problem = _transition_problem(t, shapes, action_dim)
        if problem:
            raise TransitionError(f"transition {i}: {problem}")


def _transition_problem(
    t: Transition, shapes: Mapping[str, tuple[int, ...]], action_dim: int
) -> str:
    for what in ("observation", "next_observation"):
        obs = getattr(t, what, None)
        if not isinstance(obs, Mapping):
            return f"{what} is {type(obs).__name__}, not a mapping of arrays"
        missing = [k for k in shapes if k not in obs]
        if missing:
            return f"{what} lacks {missing}"
        unknown = sorted(str(k) for k in obs if k not in shapes)
        if unknown:
            return f"{what} has keys {unknown} this run does not observe (expected {list(shapes)})"
        for k, shape in shapes.items():
            try:
                arr = np.asarray(obs[k])
            except (ValueError, TypeError) as exc:
                return f"{what}[{k!r}] is not an array ({exc})"
            if arr.shape != shape:
                return f"{what}[{k!r}] has shape {arr.shape}, expected {shape}"
            if k != STATE_KEY and arr.dtype != np.uint8:
                return f"{what}[{k!r}] has dtype {arr.dtype}, expected uint8"
            if k == STATE_KEY and arr.dtype.kind not in "fiu":
                return f"{what}[{k!r}] has dtype {arr.dtype}, expected float32"
    try:
        action = np.asarray(t.action)
    except (ValueError, TypeError) as exc:
        return f"action is not an array ({exc})"
    if action.shape != (action_dim,):
        return f"action has shape {action.shape}, expected ({action_dim},)"
    if action.dtype.kind not in "fiu":
        return f"action has dtype {action.dtype}, expected float32"
    for name, dtype in _SCALARS:
        try:
            value = np.asarray(getattr(t, name))
        except (ValueError, TypeError, AttributeError) as exc:
            return f"{name} is not a scalar ({exc})"
        if value.shape != ():
            return f"{name} has shape {value.shape}, expected a scalar"
        if not _scalar_ok(value, dtype):
            want = "a bool" if dtype is bool else "a number"
            return f"{name} = {value.tolist()!r} ({value.dtype}), expected {want}"
    return ""


def _scalar_ok(arr: np.ndarray, dtype: Any) -> bool:
    """Numbers (bools too) for float fields; bools or 0 / 1 for flags."""
    if dtype is not bool:
        return arr.dtype.kind in "fiub"
    if arr.dtype.kind == "b":
        return True
    return arr.dtype.kind in "iu" and bool(((arr == 0) | (arr == 1)).all())


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
