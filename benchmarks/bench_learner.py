"""Learner throughput: SAC critic updates per second and replay bytes per transition.

    .venv/bin/python benchmarks/bench_learner.py [--seconds 10] [--threads 2] [--no-compile]
        [--baseline-worktree /tmp/hilrl-base] [--rounds 3] [--bf16]

Cases, each at batch 256 and UTD 2 on the CPU:
  (a) state observations (18-D state, 4-D action with a gripper: grasp critic on);
  (b) the same plus two 128x128 cameras through the small CNN.
Each case runs in these learner configurations, side by side:
  reference  the default config (fp32, eager): what a run gets without tuning;
  optimised  ``sac.precision=auto`` + ``sac.compile`` (the whole update is one compiled
             graph; its compile time is reported separately). ``auto`` picks bf16 only
             where bf16 matmuls are fast (a CUDA GPU, a CPU with AMX); a CPU with AVX-512
             BF16 but no AMX gets fp32;
  bf16       (``--bf16`` only) ``sac.precision=bf16`` forced, eager: for comparison.
Each is timed on ready batches (the learner's own cost); reference and optimised also
end-to-end with the prefetching replay sampler (gather + DrQ shift in a thread).
The headline ``state_updates_per_s`` / ``image_updates_per_s`` is the fastest of the
configurations (never one slower than the eager reference).

``--baseline-worktree PATH`` (e.g. a ``git worktree add /tmp/hilrl-base <commit>``) also
times the same state-observation measurement (ready batches, eager and compiled) with the
hilrl package of that tree, against this tree's, in the same run: two worker processes
(``PYTHONPATH=PATH`` and ``PYTHONPATH=<this tree>``), each compiling once, then timed in
turn, A B B A ..., ``--rounds`` pairs of ``--pair-seconds`` windows; each rate's median
and the median of the pairs' ratios new/baseline are printed (pairs measured back to
back see the same load on a shared machine).

Rates are critic steps per wall-clock second; the CPU model, its bf16/AMX support and the
load average are printed because the machine may be shared (the same run's ratios are
the meaningful figures). Replay memory: bytes held per transition by a full buffer of
100-step episodes with two 128x128 cameras, against the uint8 size of one observation.

Baseline: LeRobot 0.4.4 HIL-SERL, measured on this machine class with two 128x128
cameras at batch 256 / UTD 2: 0.064 critic updates/s (docs/REFERENCE). Ends with one
JSON line of all figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

LEROBOT_IMAGE_UPDATES_PER_S = 0.064
STATE_DIM = 18
ACTION_DIM = 4
CAMERAS = ("observation.images.front", "observation.images.wrist")
BATCH = 256
UTD = 2
REPO = Path(__file__).resolve().parents[1]

VARIANTS: dict[str, dict[str, object]] = {
    "reference": {},
    "optimised": {"precision": "auto", "compile": True},
    "bf16": {"precision": "bf16"},
}


# ------------------------------------------------------------------ the machine


def cpu_info() -> dict[str, Any]:
    """CPU model and the flags that decide bf16 speed (from /proc/cpuinfo on Linux)."""
    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cpu_avx512f": "avx512f" in flags,
        "cpu_avx512_bf16": "avx512_bf16" in flags,
        "cpu_amx_bf16": "amx_bf16" in flags,
        "cpu_amx_tile": "amx_tile" in flags,
        "cpu_count": os.cpu_count() or 0,
    }


# ------------------------------------------------------------------ ready batches


def random_batch(images: bool, rows: int, seed: int) -> Any:
    """A learner batch of ``rows`` random transitions (only API common to every hilrl
    version this script compares: ``hilrl.types.Batch``'s first seven fields)."""
    from hilrl.types import Batch

    g = torch.Generator().manual_seed(seed)

    def obs() -> dict[str, torch.Tensor]:
        out = {"observation.state": torch.randn(rows, STATE_DIM, generator=g)}
        if images:
            for k in CAMERAS:
                out[k] = torch.randint(0, 256, (rows, 128, 128, 3), generator=g, dtype=torch.uint8)
        return out

    return Batch(
        obs(),
        torch.rand(rows, ACTION_DIM, generator=g) * 2 - 1,
        torch.randn(rows, generator=g),
        obs(),
        (torch.rand(rows, generator=g) < 1 / 300).float(),
        -0.02 * (torch.rand(rows, generator=g) < 0.3).float(),
        torch.zeros(rows),
    )


def make_learner(images: bool, variant: str) -> Any:
    from hilrl.algorithms.sac import SAC
    from hilrl.config.learner import EncoderConfig, SACConfig
    from hilrl.policies.encoder import ObservationSpec
    from hilrl.policies.sac_policy import ActionSpec

    torch.manual_seed(0)
    shapes = tuple((k, (128, 128, 3)) for k in CAMERAS) if images else ()
    cfg = SACConfig(utd_ratio=UTD, **VARIANTS[variant])  # type: ignore[arg-type]
    spec = ObservationSpec(STATE_DIM, shapes)
    return SAC(spec, ActionSpec(ACTION_DIM, True), cfg, EncoderConfig(type="small_cnn"), "cpu")


def time_updates(sac: Any, batches: list[Any], seconds: float) -> float:
    """Critic updates per second of ``sac.update`` on ready batches."""
    sac.update(batches[1 % len(batches)])  # warm-up (allocator, caches)
    steps0, t0, i = sac.critic_steps, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 2:
        sac.update(batches[i % len(batches)])
        i += 1
    return float(sac.critic_steps - steps0) / (time.perf_counter() - t0)


def retain_freed_memory() -> None:
    """What the learner process does at start (glibc malloc thresholds); idempotent."""
    from hilrl.algorithms.cpu_memory import retain_freed_memory as retain

    retain()


# ------------------------------------------------------------------ worker (one hilrl tree)


def worker(threads: int) -> None:
    """Answer timing requests on stdin, one JSON line each, with this process's hilrl.

    ``{"op": "prepare", "case": "state", "variant": "optimised"}`` builds (and for a
    compiled variant compiles) a learner; ``{"op": "time", ..., "seconds": s}`` times it.
    """
    import hilrl

    torch.set_num_threads(threads)
    retain_freed_memory()
    learners: dict[tuple[str, str], tuple[Any, list[Any]]] = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["case"], req["variant"])
        images = req["case"] == "image"
        reply: dict[str, Any] = {"hilrl": str(Path(hilrl.__file__).parent.parent)}
        if key not in learners:
            sac = make_learner(images, req["variant"])
            batches = [random_batch(images, BATCH * UTD, s) for s in range(2)]
            t0 = time.perf_counter()
            sac.update(batches[0])  # compiles a compiled variant
            reply["first_update_s"] = time.perf_counter() - t0
            reply["precision"] = getattr(sac, "precision", "?")
            learners[key] = (sac, batches)
        if req["op"] == "time":
            sac, batches = learners[key]
            reply["updates_per_s"] = time_updates(sac, batches, float(req["seconds"]))
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self, tree: Path, threads: int) -> None:
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd="/",
        )

    def ask(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.proc.wait()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def against_baseline(
    baseline: Path, threads: int, seconds: float, rounds: int, variants: list[str]
) -> dict[str, Any]:
    """State case, ready batches: this tree against ``baseline``, timed in turn."""
    trees = {"baseline": baseline.resolve(), "new": REPO}
    workers = {name: Worker(tree, threads) for name, tree in trees.items()}
    out: dict[str, Any] = {}
    rates: dict[tuple[str, str], list[float]] = {}
    ratios: dict[str, list[float]] = {}
    try:
        for name, w in workers.items():
            for variant in variants:
                reply = w.ask(op="prepare", case="state", variant=variant)
                if Path(reply["hilrl"]) != trees[name]:
                    raise RuntimeError(f"{name} worker imported hilrl from {reply['hilrl']}")
                out[f"{name}_state_{variant}_first_update_s"] = reply["first_update_s"]
                out[f"{name}_state_{variant}_precision"] = reply["precision"]
        for r in range(rounds):
            for variant in variants:
                first = (r + variants.index(variant)) % 2 == 0
                order = ["baseline", "new"] if first else ["new", "baseline"]
                pair = {}
                for name in order:
                    pair[name] = workers[name].ask(
                        op="time", case="state", variant=variant, seconds=seconds
                    )["updates_per_s"]
                    rates.setdefault((name, variant), []).append(pair[name])
                ratios.setdefault(variant, []).append(pair["new"] / pair["baseline"])
    finally:
        for w in workers.values():
            w.close()
    for (name, variant), values in rates.items():
        out[f"{name}_state_{variant}_updates_per_s"] = statistics.median(values)
        out[f"{name}_state_{variant}_updates_per_s_all"] = [round(v, 2) for v in values]
    for variant in variants:
        # Back-to-back pairs see the same machine load: the median of their ratios.
        out[f"state_{variant}_new_vs_baseline"] = statistics.median(ratios[variant])
        out[f"state_{variant}_new_vs_baseline_all"] = [round(v, 3) for v in ratios[variant]]
    out["baseline_tree"] = str(trees["baseline"])
    return out


# ------------------------------------------------------------------ in-process cases


def bench_case(
    images: bool, seconds: float, variant: str, with_sampler: bool, prefetch: int = 2
) -> dict[str, float]:
    from hilrl.config.learner import ReplayConfig
    from hilrl.data.mixer import MixedSampler, ReplayBuffers

    sac = make_learner(images, variant)
    s = sac.obs_spec
    rcfg = ReplayConfig(
        capacity=4000,
        demo_capacity=2000,
        intervention_capacity=100,
        batch_size=BATCH,
        prefetch=prefetch,
    )
    bufs = ReplayBuffers(s, ACTION_DIM, rcfg)
    fill(bufs.online, bufs.demos, s, 3000, np.random.default_rng(0))
    sampler = MixedSampler(bufs, rcfg, device="cpu", chunks=UTD)
    batches = [sampler.sample() for _ in range(2)]
    tag = ("image" if images else "state") + f"_{variant}"
    t0 = time.perf_counter()
    for _ in range(3):
        sampler.sample()
    sample_ms = (time.perf_counter() - t0) / 3 * 1000
    t0 = time.perf_counter()
    sac.update(batches[0])  # the first call compiles when sac.compile is on
    out = {f"{tag}_first_update_s": time.perf_counter() - t0}
    out[f"{tag}_updates_per_s"] = time_updates(sac, batches, seconds)
    if with_sampler:
        out[f"{tag}_updates_per_s_with_sampler"] = time_end_to_end(sac, sampler, seconds)
        out[f"{tag}_sample_ms_per_call"] = sample_ms
    else:
        sampler.close()
    return out


def fill(online: Any, demos: Any, s: Any, steps: int, rng: np.random.Generator) -> None:
    """Episodes of 100 steps (every third one terminates, the others time out) in chunks of
    50 like an actor sends them; the first quarter go to the demo buffer."""
    frames = {
        k: rng.integers(0, 256, (steps + 1, *shape), dtype=np.uint8) for k, shape in s.image_shapes
    }
    state = rng.normal(size=(steps + 1, s.state_dim)).astype(np.float32)
    for start in range(0, steps, 50):
        rows = np.arange(start, min(start + 50, steps))
        obs: dict[str, np.ndarray] = {k: f[rows] for k, f in frames.items()}
        nxt: dict[str, np.ndarray] = {k: f[rows + 1] for k, f in frames.items()}
        obs["observation.state"], nxt["observation.state"] = state[rows], state[rows + 1]
        done = (rows % 100) == 99
        acts = rng.uniform(-1, 1, (len(rows), ACTION_DIM)).astype(np.float32)
        rew = rng.normal(size=len(rows)).astype(np.float32)
        target = demos if start < steps // 4 else online
        target.add_batch(
            obs, acts, rew, nxt, done & (rows % 300 == 299), done & (rows % 300 != 299)
        )


def time_end_to_end(sac: Any, sampler: Any, seconds: float) -> float:
    sac.update(sampler.next())
    steps0, t0, i = sac.critic_steps, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds or i < 2:
        sac.update(sampler.next())
        i += 1
    rate = float(sac.critic_steps - steps0) / (time.perf_counter() - t0)
    sampler.close()
    return rate


def bytes_per_transition() -> dict[str, float]:
    from hilrl.data.replay import ReplayBuffer
    from hilrl.policies.encoder import ObservationSpec

    s = ObservationSpec(STATE_DIM, tuple((k, (128, 128, 3)) for k in CAMERAS))
    buf = ReplayBuffer(s, ACTION_DIM, capacity=3000)
    fill(buf, buf, s, 6000, np.random.default_rng(1))  # wraps the ring twice
    per = buf.nbytes() / buf.capacity
    obs_bytes = s.image_bytes()
    return {
        "replay_bytes_per_transition": per,
        "observation_uint8_bytes": float(obs_bytes),
        "replay_bytes_ratio": per / obs_bytes,
        "lerobot_bytes_per_transition_on_wire": 400_000.0,
    }


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="timing window per measurement")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the compiled (optimised) variant"
    )
    ap.add_argument("--bf16", action="store_true", help="also time forced bf16, eager")
    ap.add_argument(
        "--prefetch",
        type=int,
        default=2,
        help="replay.prefetch of the end-to-end runs (0: sample on the training thread; on 2 "
        "cores that avoids the sampler's and the update's threads contending)",
    )
    ap.add_argument(
        "--baseline-worktree",
        type=Path,
        default=None,
        help="a checkout of another commit (git worktree add PATH REV): time the state case "
        "with its hilrl against this tree's, in turn, in this run",
    )
    ap.add_argument(
        "--rounds", type=int, default=7, help="timed pairs per variant against the baseline"
    )
    ap.add_argument(
        "--pair-seconds",
        type=float,
        default=3.0,
        help="timing window of each measurement against the baseline",
    )
    ap.add_argument(
        "--only-baseline", action="store_true", help="only the comparison with the baseline"
    )
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.threads)
        return
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as the learner process does at start
    info = cpu_info()
    print(
        f"CPU: {info['cpu_model']} ({info['cpu_count']} logical CPUs); AVX-512 "
        f"{'yes' if info['cpu_avx512f'] else 'no'}, AVX-512 BF16 "
        f"{'yes' if info['cpu_avx512_bf16'] else 'no'}, AMX-BF16 "
        f"{'yes' if info['cpu_amx_bf16'] else 'no'}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    figures: dict[str, Any] = {
        **info,
        "torch_threads": float(torch.get_num_threads()),
        "load_average_1min_start": os.getloadavg()[0],
    }
    variants = ["reference"] + ([] if args.no_compile else ["optimised"])
    if args.baseline_worktree is not None:
        figures.update(
            against_baseline(
                args.baseline_worktree, args.threads, args.pair_seconds, args.rounds, variants
            )
        )
    if not args.only_baseline:
        timed = variants + (["bf16"] if args.bf16 else [])
        for images in (False, True):
            for variant in timed:
                figures.update(
                    bench_case(images, args.seconds, variant, variant != "bf16", args.prefetch)
                )
            case = "image" if images else "state"
            for variant in timed[1:]:
                figures[f"{case}_{variant}_speedup_vs_reference"] = (
                    figures[f"{case}_{variant}_updates_per_s"]
                    / figures[f"{case}_reference_updates_per_s"]
                )
            # The headline: the fastest configuration, never one slower than eager.
            best = max(timed, key=lambda v: figures[f"{case}_{v}_updates_per_s"])
            figures[f"{case}_updates_per_s"] = figures[f"{case}_{best}_updates_per_s"]
            figures[f"{case}_headline_variant"] = best
        figures["image_speedup_vs_lerobot"] = (
            figures["image_updates_per_s"] / LEROBOT_IMAGE_UPDATES_PER_S
        )
        figures.update(bytes_per_transition())
    figures["load_average_1min_end"] = os.getloadavg()[0]
    targets = {"state_updates_per_s": 350.0, "image_updates_per_s": 0.64}
    for k, v in figures.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            print(f"{k:44s} {v}")
            continue
        mark = ""
        if k in targets:
            mark = "  (target >= {}: {})".format(targets[k], "ok" if v >= targets[k] else "MISSED")
        if k == "replay_bytes_ratio":
            mark = "  (target <= 1.1: {})".format("ok" if v <= 1.1 else "MISSED")
        if k.endswith("_new_vs_baseline"):
            mark = "  (target >= 0.9: {})".format("ok" if v >= 0.9 else "MISSED")
        print(f"{k:44s} {v:12.3f}{mark}")
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
