"""``hilrl train`` restarts dead actors: promptly announced, bounded, with backoff, and a
restarted actor continues its episode numbering (never replays an index or a seed)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_helpers import tiny_config_data, write_config

from hilrl.runtime.actor import (
    ActorState,
    actor_state_path,
    read_actor_state,
    write_actor_state,
)
from hilrl.runtime.launcher import (
    ActorPlan,
    ActorSupervisor,
    Child,
    RestartPolicy,
    _monitor,
    _shutdown,
    actor_launch,
    clear_actor_states,
    plan_actors,
)
from hilrl.runtime.run_dir import RunDir, read_jsonl
from hilrl.runtime.status import RunStatus, StatusPrinter
from hilrl.runtime.stopping import StopFlag

pytestmark = pytest.mark.timeout(120)

SLEEP = "import time; time.sleep(60)"


class Harness:
    """A fake learner and fake actors (plain sleeping Pythons) under the real monitor."""

    def __init__(self, tmp_path: Path, scripts: dict[str, list[str]], policy: RestartPolicy):
        self.tmp = tmp_path
        self.out = io.StringIO()
        self.printer = StatusPrinter(RunStatus(RunDir.of(tmp_path / "run"), 100), self.out, 60.0)
        self.scripts = scripts  # actor id -> the script of each incarnation (last one repeats)
        self.spawned: list[tuple[str, int]] = []
        self.env = dict(os.environ)
        self.learner = Child("learner", [sys.executable, "-c", SLEEP], tmp_path / "l.log", self.env)
        plans = [ActorPlan(name, i, 10) for i, name in enumerate(scripts)]
        self.supervisor = ActorSupervisor(plans, self.spawn, self.printer, policy)
        self.stop = StopFlag(watch_parent=False)
        self.reason: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def spawn(self, plan: ActorPlan, restarts: int) -> Child:
        self.spawned.append((plan.actor_id, restarts))
        scripts = self.scripts[plan.actor_id]
        code = scripts[min(restarts, len(scripts) - 1)]
        log = self.tmp / f"{plan.actor_id}.log"
        return Child(plan.actor_id, [sys.executable, "-c", code], log, self.env)

    def _run(self) -> None:
        self.reason.append(_monitor(self.learner, self.supervisor, self.stop, self.printer))

    def start(self) -> Harness:
        self.supervisor.start()
        self.thread.start()
        return self

    def child(self, name: str) -> Child:
        return next(c for c in self.supervisor.children if c.name == name)

    def wait_for(self, what: Callable[[], bool], timeout_s: float = 10.0) -> float:
        """Seconds until ``what()`` held."""
        t0 = time.monotonic()
        while not what():
            assert time.monotonic() - t0 < timeout_s, self.out.getvalue()
            time.sleep(0.01)
        return time.monotonic() - t0

    def close(self) -> None:
        self.stop.set("test over")
        self.thread.join(timeout=10)
        _shutdown(self.supervisor.children, self.learner, 5.0, self.printer)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(scripts: dict[str, list[str]], policy: RestartPolicy) -> Harness:
        h = Harness(tmp_path, scripts, policy).start()
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def test_restart_backoff_doubles_from_one_second_up_to_thirty() -> None:
    policy = RestartPolicy()
    assert policy.max_restarts == 5
    assert [policy.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_an_actor_killed_with_sigkill_is_announced_at_once_and_restarted(
    harness: Callable[..., Harness],
) -> None:
    h = harness({"actor-0": [SLEEP], "actor-1": [SLEEP]}, RestartPolicy(2, 0.3, 1.0))
    first = h.child("actor-1")
    os.kill(first.pid, signal.SIGKILL)
    said = "train: actor-1 died (signal 9, SIGKILL); restarting (1/2) in 0.3 s"
    assert h.wait_for(lambda: said in h.out.getvalue()) < 1.5  # not at the end of the run
    h.wait_for(lambda: "actor-1 restarted" in h.out.getvalue())
    second = h.child("actor-1")
    assert second.pid != first.pid and second.alive()
    assert h.spawned == [("actor-0", 0), ("actor-1", 0), ("actor-1", 1)]
    assert h.child("actor-0").alive() and not h.reason  # the run goes on
    # the second restart waits twice as long; after the last allowed one the run stops
    os.kill(second.pid, signal.SIGKILL)
    h.wait_for(lambda: "restarting (2/2) in 0.6 s" in h.out.getvalue())
    h.wait_for(lambda: h.spawned[-1] == ("actor-1", 2))
    os.kill(h.child("actor-1").pid, signal.SIGKILL)
    h.wait_for(lambda: bool(h.reason))
    assert h.reason == ["actor-1 kept dying"]
    assert "actor-1 died (signal 9, SIGKILL) after 2 restart(s)" in h.out.getvalue()
    assert "stopping the run" in h.out.getvalue()


def test_a_nonzero_exit_is_restarted_and_a_clean_exit_is_not(
    harness: Callable[..., Harness],
) -> None:
    crash_then_finish = ["import sys; print('boom'); sys.exit(3)", "pass"]
    h = harness({"actor-0": ["pass"], "actor-1": crash_then_finish}, RestartPolicy(5, 0.1, 1.0))
    h.wait_for(lambda: bool(h.reason))
    assert h.reason == ["actors finished"]
    out = h.out.getvalue()
    assert "actor-1 died (code 3); restarting (1/5) in 0.1 s" in out
    assert "boom" in out  # the dead actor's last log lines
    assert "actor-0 died" not in out
    assert h.spawned == [("actor-0", 0), ("actor-1", 0), ("actor-1", 1)]


def test_a_restarted_actor_gets_the_episodes_after_its_reservations_and_the_rest_of_its_steps(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    plan = ActorPlan("actor-1", 1, max_steps=100, first_episode=3)
    assert actor_launch(run, plan, 0) == (3, 100, actor_state_path(run, "actor-1"))
    write_actor_state(actor_state_path(run, "actor-1"), ActorState("actor-1", 1, 7, 2, steps=40))
    # 30 of the 40 counted steps were taken in this launch (10 before it)
    assert actor_launch(run, plan, steps_before=10)[:2] == (7, 70)
    later = ActorPlan("actor-1", 1, max_steps=100, first_episode=9)  # the checkpoint knows more
    assert actor_launch(run, later, steps_before=40)[:2] == (9, 100)
    # a resumed run: the larger of the checkpoint's counters and the state files wins
    plans = plan_actors(2, 10, {"actor-0": 5, "actor-1": 2}, {"actor-0": 3, "actor-1": 4})
    assert [p.first_episode for p in plans] == [5, 4]
    # a fresh run forgets the reservations of an earlier attempt in the same folder
    clear_actor_states(run)
    assert not actor_state_path(run, "actor-1").exists()


def test_hilrl_train_restarts_an_actor_killed_with_sigkill(tmp_path: Path) -> None:
    """The real thing: SIGKILL an actor process; the run says so, restarts it and finishes."""
    run = RunDir.of(tmp_path / "run")
    data = tiny_config_data(run.root, run={"total_env_steps": 200})
    config = write_config(tmp_path / "tiny.yaml", data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hilrl.cli.main", "train", "--config", str(config), "--no-status"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        state_file = actor_state_path(run.root, "actor-0")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # kill it once it has started an episode or two
            state = read_actor_state(state_file)
            if state is not None and state.next_episode >= 2:
                break
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.05)
        else:
            pytest.fail("the actor never started its episodes")
        pid = _json(run.processes_file)["actors"]["actor-0"]
        os.kill(pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=100)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "actor-0 died (signal 9, SIGKILL); restarting (1/5) in 1.0 s" in out, out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    assert "actor restarts: actor-0 1x" in out
    assert _json(run.processes_file)["actors"]["actor-0"] != pid, out
    episodes, _ = read_jsonl(run.episodes_jsonl)
    indices = [e["episode_index"] for e in episodes if not e["eval"]]
    assert len(indices) == len(set(indices))  # no episode index used twice
    assert "restart 1 of actor-0: first episode" in (run.logs / "actor-0.log").read_text()
    learner, _ = read_jsonl(run.learner_jsonl)
    assert learner[-1]["env_steps"] >= 190  # the restarted actor took (about) the rest
    assert state is not None and state.next_episode < max(indices)  # it did continue


def _json(path: Path) -> dict:  # type: ignore[type-arg]
    import json

    return dict(json.loads(path.read_text()))
