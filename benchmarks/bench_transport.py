"""Actor -> learner transport over loopback gRPC: throughput, bytes on the wire, weight pushes.

Run: .venv/bin/python benchmarks/bench_transport.py [--transitions 6000] [--pushes 30]
     [--checkpoint-s 1.0]

Workload: two 128x128 uint8 cameras + an 8-d float32 state (the HIL-SERL observation),
chained steps as an actor produces them, put one at a time like a control loop does.
Two producers: **sustained** (the throughput figure: the producer waits whenever
``PACED_BACKLOG`` full messages are still unsent, so it measures what the link carries,
as many actors at their control rates would load it) and **burst** (all 6,000 put as
fast as the loop can; the backlog soon passes ``memory_backlog_messages`` and overflows
to the disk spool, so it measures the overflow path too).

Baseline, measured in the same run over the same server: the reference's naive payload
(observation and next observation both as float32 arrays, per transition). It travels in
the same frames and is parsed by the same safetensors reader on the learner, so the ratio
isolates the encoding. Targets: >= 2,000 transitions/s, <= 1.05x the raw uint8
observation bytes per transition, weight push (5 MB actor) <= 50 ms median.

Acknowledgement modes, each on its own server in the same learner process, measured in
the same run: ``durable`` (the default: actors keep copies until the learner confirms a
checkpoint with mark_durable, here every ``--checkpoint-s``), ``plain``
(``durable_acks: false``, i.e. wire schema v1 behaviour: deleted once received; the
reference for the cost of durability) and ``never`` (durable acks on but no checkpoint is
ever confirmed: the worst case, every copy beyond memory goes to the disk spool).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection

import grpc
import numpy as np
import safetensors.numpy

from hilrl.config.transport import TransportConfig
from hilrl.transport import ActorClient, LearnerServer, codec
from hilrl.transport.framing import make_frames
from hilrl.transport.proto import hilrl_transport_pb2 as pb
from hilrl.transport.proto import hilrl_transport_pb2_grpc as pb_grpc
from hilrl.transport.security import ACTOR_HEADER, SESSION_HEADER
from hilrl.types import Observation, Transition

CAMERAS = ("front", "wrist")
IMAGE = (128, 128, 3)
STATE_DIM = 8
BATCH = 32


def observations(n: int, seed: int = 0) -> list[Observation]:
    rng = np.random.default_rng(seed)
    return [
        {
            "observation.state": rng.standard_normal(STATE_DIM).astype(np.float32),
            **{
                f"observation.images.{c}": rng.integers(0, 256, IMAGE, dtype=np.uint8)
                for c in CAMERAS
            },
        }
        for _ in range(n)
    ]


def chained(n: int, pool: list[Observation]) -> list[Transition]:
    """n steps where the next observation of step t is the observation of step t+1."""
    obs = [pool[i % len(pool)] for i in range(n + 1)]
    action = np.zeros(7, np.float32)
    return [
        Transition(
            obs[i], action, 0.0, obs[i + 1], False, False, frame_index=i, episode_index=i // 200
        )
        for i in range(n)
    ]


def naive_payload(batch: list[Transition]) -> bytes:
    """The reference's encoding: obs and next obs per transition, all float32."""
    tensors: dict[str, np.ndarray] = {}
    for key in batch[0].observation:
        tensors[f"state/{key}"] = np.stack([t.observation[key].astype(np.float32) for t in batch])
        tensors[f"next_state/{key}"] = np.stack(
            [t.next_observation[key].astype(np.float32) for t in batch]
        )
    tensors["action"] = np.stack([t.action for t in batch])
    meta = {"kind": codec.KIND_TRANSITIONS, "schema_version": str(codec.SCHEMA_VERSION)}
    return bytes(safetensors.numpy.save(tensors, metadata=meta))


MODES = ("durable", "plain", "never")


class _Learner:
    """Counting learner in its own process (as deployed: the GIL is not shared with the actor).

    It serves one server per acknowledgement mode (see the module docstring).
    """

    def __init__(self, checkpoint_s: float) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_learner_main, args=(child, checkpoint_s), daemon=True)
        self._proc.start()
        self.ports: dict[str, int] = dict(self._conn.recv())

    def call(self, *command: object) -> object:
        self._conn.send(command)
        return self._conn.recv()

    def close(self) -> None:
        self.call("stop")
        self._proc.join(10)


def _learner_main(conn: Connection, checkpoint_s: float) -> None:
    logging.basicConfig(level=logging.ERROR)  # the baseline's payloads are rejected, by design
    received = dict.fromkeys(MODES, 0)
    servers: dict[str, LearnerServer] = {}
    for mode in MODES:

        def on_transitions(_actor: str, ts: list[Transition], mode: str = mode) -> None:
            received[mode] += len(ts)

        cfg = TransportConfig(port=0, durable_acks=mode != "plain")
        servers[mode] = LearnerServer(cfg, on_transitions, lambda *_: None, run_id="bench").start()
    stop = threading.Event()

    def checkpoints() -> None:
        """What a checkpointing learner does (the save itself is left out)."""
        server = servers["durable"]
        while not stop.wait(checkpoint_s):
            with server.ingest_paused():
                state = server.state_dict()
            server.mark_durable(state)

    thread = threading.Thread(target=checkpoints, daemon=True)
    thread.start()
    rng = np.random.default_rng(2)
    weights = {
        f"layer{i}.weight": rng.standard_normal((256, 256)).astype(np.float32) for i in range(20)
    }
    conn.send({mode: server.port for mode, server in servers.items()})
    while True:
        command = conn.recv()
        if command[0] == "stop":
            stop.set()
            thread.join()
            for server in servers.values():
                server.stop()
            conn.send(None)
            return
        if command[0] == "received":
            conn.send(received[str(command[1])])
        elif command[0] == "cpu":
            conn.send(time.process_time())
        elif command[0] == "bytes":
            conn.send(servers[str(command[1])].actor_stats()[str(command[2])].bytes_received)
        elif command[0] == "publish":
            servers["durable"].publish_weights(weights, int(command[1]))
            conn.send(sum(w.nbytes for w in weights.values()))


PACED_BACKLOG = 8
"""Paced producer: waits while this many full messages are unsent (see the docstring)."""


def bench_throughput(
    learner: _Learner, n: int, spool: str, mode: str, actor_id: str = "bench", paced: bool = False
) -> dict[str, float]:
    client = ActorClient(
        TransportConfig(port=learner.ports[mode], spool_dir=spool, batch_size=BATCH),
        actor_id,
        "bench",
    )
    before = int(learner.call("received", mode))  # type: ignore[call-overload]
    client.connect(10.0)
    steps = chained(n, observations(64))
    learner_cpu = float(learner.call("cpu"))  # type: ignore[arg-type]
    actor_cpu = time.process_time()
    start = time.perf_counter()
    put_max = 0.0
    for i, t in enumerate(steps):
        t0 = time.perf_counter()
        client.put_transitions([t])
        put_max = max(put_max, time.perf_counter() - t0)
        if paced and i % BATCH == BATCH - 1:
            while client.stats().backlog_messages >= PACED_BACKLOG:
                time.sleep(0.0005)
    flushed = client.flush(120.0)
    elapsed = time.perf_counter() - start
    actor_cpu = time.process_time() - actor_cpu
    learner_cpu = float(learner.call("cpu")) - learner_cpu  # type: ignore[arg-type]
    arrived = int(learner.call("received", mode)) - before  # type: ignore[call-overload]
    assert flushed and arrived == n, "not everything arrived"
    wire = int(learner.call("bytes", mode, actor_id))  # type: ignore[call-overload]
    stats = client.stats()
    client.close(5.0)
    raw = sum(v.nbytes for v in steps[0].observation.values())
    if mode != "durable" or paced:
        suffix = "_sustained" if paced else f"_{mode}"
        return {
            f"transitions_per_s{suffix}": n / elapsed,
            f"actor_cpu_us_per_transition{suffix}": actor_cpu / n * 1e6,
            f"messages_spooled{suffix}": float(stats.messages_spooled),
            f"retained_at_end{suffix}": float(stats.retained_messages),
        }
    return {
        "messages_spooled": float(stats.messages_spooled),
        "transitions_per_s": n / elapsed,
        "bytes_per_transition": wire / n,
        "raw_obs_bytes": float(raw),
        "bytes_ratio_vs_raw_obs": wire / n / raw,
        "put_max_ms": put_max * 1e3,
        # CPU time per transition (all threads): robust to other load on the machine.
        "actor_cpu_us_per_transition": actor_cpu / n * 1e6,
        "learner_cpu_us_per_transition": learner_cpu / n * 1e6,
        "cpu_bound_transitions_per_s": n / max(actor_cpu, learner_cpu),
    }


def bench_baseline(learner: _Learner, n: int) -> dict[str, float]:
    """Naive float32 obs + next obs through the same server, framing and reader."""
    channel = grpc.insecure_channel(f"127.0.0.1:{learner.ports['plain']}")
    stub = pb_grpc.LearnerStub(channel)
    reply = stub.Handshake(
        pb.HandshakeRequest(actor_id="naive", run_id="bench", schema_version=codec.SCHEMA_VERSION),
        timeout=10,
    )
    md = ((SESSION_HEADER, reply.session_id), (ACTOR_HEADER, "naive"))
    steps = chained(n, observations(64, seed=1))
    n_msgs = n // BATCH

    def frames() -> Iterator[pb.Frame]:
        for m in range(n_msgs):
            payload = naive_payload(
                steps[m * BATCH : (m + 1) * BATCH]
            )  # encoded on the fly, as an actor would
            yield from make_frames(pb.KIND_TRANSITIONS, payload, m + 1, "naive", 1 << 20)

    start = time.perf_counter()
    acks = list(stub.SendData(frames(), metadata=md, timeout=600))
    elapsed = time.perf_counter() - start
    assert acks[-1].acked_through == n_msgs
    wire = int(learner.call("bytes", "plain", "naive"))  # type: ignore[call-overload]
    channel.close()
    return {
        "baseline_transitions_per_s": n_msgs * BATCH / elapsed,
        "baseline_bytes_per_transition": wire / (n_msgs * BATCH),
    }


def bench_weights(learner: _Learner, pushes: int, spool: str) -> dict[str, float]:
    client = ActorClient(
        TransportConfig(port=learner.ports["durable"], spool_dir=spool), "w", "bench"
    )
    client.connect(10.0)
    latencies = []
    size = 0
    for version in range(pushes + 3):
        start = time.perf_counter()
        size = int(learner.call("publish", version))  # type: ignore[call-overload]
        got = client.wait_for_weights(version - 1, 10.0)
        if got is None or got.version != version:
            raise RuntimeError(f"weights version {version} did not arrive")
        if version >= 3:  # the first pushes warm up the stream
            latencies.append(time.perf_counter() - start)
        time.sleep(0.02)
    client.close(5.0)
    latencies.sort()
    return {
        "weights_mb": size / 1e6,
        "weight_push_ms_median": statistics.median(latencies) * 1e3,
        "weight_push_ms_p90": latencies[int(0.9 * (len(latencies) - 1))] * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--transitions", type=int, default=6000)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument(
        "--checkpoint-s", type=float, default=1.0, help="learner checkpoint (mark_durable) period"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    learner = _Learner(args.checkpoint_s)
    try:
        with tempfile.TemporaryDirectory() as spool:
            for mode in MODES:  # warm up every server and the actor side, measure nothing
                bench_throughput(learner, 2 * BATCH, spool, mode, actor_id=f"warmup-{mode}")
            results = bench_throughput(learner, args.transitions, spool, "durable")
            with tempfile.TemporaryDirectory() as own_spool:
                results |= bench_throughput(
                    learner, args.transitions, own_spool, "durable", "paced", paced=True
                )
            for mode in ("plain", "never"):
                with tempfile.TemporaryDirectory() as own_spool:
                    results |= bench_throughput(learner, args.transitions, own_spool, mode)
            results |= bench_baseline(learner, args.transitions)
            results |= bench_weights(learner, args.pushes, spool)
    finally:
        learner.close()
    results["throughput_ratio_vs_baseline"] = (
        results["transitions_per_s"] / results["baseline_transitions_per_s"]
    )
    for mode in ("plain", "never"):
        results[f"durable_throughput_ratio_vs_{mode}"] = (
            results["transitions_per_s"] / results[f"transitions_per_s_{mode}"]
        )
    results["bytes_ratio_baseline_over_ours"] = (
        results["baseline_bytes_per_transition"] / results["bytes_per_transition"]
    )
    r = results
    print(
        f"transitions/s          {r['transitions_per_s_sustained']:10.0f}   sustained (target >= 2000); "
        f"burst {r['transitions_per_s']:.0f}/s ({r['messages_spooled']:.0f} messages overflowed to the spool)"
    )
    print(
        f"  baseline (naive f32) {r['baseline_transitions_per_s']:10.0f}   ours {r['throughput_ratio_vs_baseline']:.1f}x faster"
    )
    print(
        f"bytes/transition       {r['bytes_per_transition']:10.0f}   {r['bytes_ratio_vs_raw_obs']:.3f}x raw uint8 obs (target <= 1.05)"
    )
    print(
        f"  baseline (naive f32) {r['baseline_bytes_per_transition']:10.0f}   {r['bytes_ratio_baseline_over_ours']:.1f}x ours"
    )
    print(
        f"  CPU per transition: actor {r['actor_cpu_us_per_transition']:.0f} us, learner "
        f"{r['learner_cpu_us_per_transition']:.0f} us -> {r['cpu_bound_transitions_per_s']:.0f}/s with a core each"
    )
    print(
        f"durable acks (checkpoint every {args.checkpoint_s:g} s) vs plain acks "
        f"{r['transitions_per_s_plain']:.0f}/s: {r['durable_throughput_ratio_vs_plain']:.2f}x; "
        f"vs never confirmed {r['transitions_per_s_never']:.0f}/s "
        f"({r['messages_spooled_never']:.0f} messages spooled): "
        f"{r['durable_throughput_ratio_vs_never']:.2f}x"
    )
    print(
        f"  actor CPU per transition: durable {r['actor_cpu_us_per_transition']:.0f} us, "
        f"plain {r['actor_cpu_us_per_transition_plain']:.0f} us, "
        f"never {r['actor_cpu_us_per_transition_never']:.0f} us"
    )
    print(f"max put_transitions    {r['put_max_ms']:10.2f} ms (control-loop stall)")
    print(
        f"weight push {r['weights_mb']:.1f} MB   median {r['weight_push_ms_median']:.1f} ms, "
        f"p90 {r['weight_push_ms_p90']:.1f} ms (target <= 50)"
    )
    print(json.dumps({k: round(v, 4) for k, v in results.items()}))


if __name__ == "__main__":
    main()
