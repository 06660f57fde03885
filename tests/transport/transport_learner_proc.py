"""A small learner process for the crash tests: a gRPC server, a "replay" and checkpoints.

Usage: python transport_learner_proc.py PORT CHECKPOINT_JSON

The replay is the list of (episode_index, frame_index) of every transition delivered. A
checkpoint is one JSON file holding the transport state and that list, both taken under
``ingest_paused()``, written atomically; only then is ``mark_durable`` called, as a real
learner does. At start the process restores the checkpoint if the file exists, exactly
as a learner restarted after a crash would. Commands on stdin, one answer line each:

* ``checkpoint``  -> ``checkpointed <acked sequence of each actor as JSON>``
* ``stats``       -> ``stats <JSON: replay length and per-actor watermarks / counters>``
* ``dump PATH``   -> ``dumped`` after writing the replay keys as JSON to PATH

It never stops by itself: the test kills it (SIGKILL, no goodbye).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from transport_testlib import fast_config

from hilrl.fsutil import atomic_write_text
from hilrl.transport import LearnerServer
from hilrl.types import EpisodeStats, Transition


def main() -> None:
    port, checkpoint = int(sys.argv[1]), Path(sys.argv[2])
    lock = threading.Lock()
    replay: list[list[int]] = []

    def on_transitions(_actor: str, transitions: list[Transition]) -> None:
        with lock:
            replay.extend([t.episode_index, t.frame_index] for t in transitions)

    def on_episode(_actor: str, _stats: EpisodeStats) -> None:
        pass

    server = LearnerServer(fast_config(port), on_transitions, on_episode, run_id="run")
    if checkpoint.exists():
        saved = json.loads(checkpoint.read_text())
        server.load_state_dict(saved["transport"])
        replay.extend(saved["replay"])
    server.start()
    print("ready", flush=True)
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "checkpoint":
            with server.ingest_paused():
                state = server.state_dict()
                with lock:
                    held = list(replay)
            atomic_write_text(checkpoint, json.dumps({"transport": state, "replay": held}))
            server.mark_durable(state)
            print("checkpointed", json.dumps(state["acked"]), flush=True)
        elif command == "stats":
            stats = {
                aid: {
                    "acked_through": s.acked_through,
                    "durable_through": s.durable_through,
                    "missing": s.missing,
                    "duplicates": s.duplicates,
                }
                for aid, s in server.actor_stats().items()
            }
            with lock:
                stats["replay"] = len(replay)  # type: ignore[assignment]
            print("stats", json.dumps(stats), flush=True)
        elif command == "dump":
            with lock:
                Path(arg).write_text(json.dumps(replay))
            print("dumped", flush=True)


if __name__ == "__main__":
    main()
