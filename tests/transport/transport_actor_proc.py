"""A small actor process for the transport tests: streams transitions until killed.

Usage: python transport_actor_proc.py PORT ACTOR_ID SPOOL_DIR
"""

from __future__ import annotations

import sys
import time

from transport_testlib import fast_config, make_episode

from hilrl.transport import ActorClient


def main() -> None:
    port, actor_id, spool = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    client = ActorClient(fast_config(port, spool), actor_id, "run")
    print("started", flush=True)
    episode = 0
    while True:  # runs until the test kills it
        for step in make_episode(1, episode, 20):
            client.put_transitions([step])
            time.sleep(0.005)
        episode += 1


if __name__ == "__main__":
    main()
