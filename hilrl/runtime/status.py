"""The live console status of a training run, read from its metrics files.

The learner writes ``metrics/episodes.jsonl`` and ``metrics/learner.jsonl``; this module
follows both (any process can, the launcher included) and turns them into one line::

    steps 4,120/20,000 21% | 38.2 upd/s | success 95% (alone 40%) | interv 22% | lag 1 | 00:03:10

*success* is the share of the last ``window`` training episodes that ended in success
(with the operator's help), *alone* those without a single intervention step, *interv*
the mean intervention rate, *lag* how many weight versions the newest episode's policy
is behind the learner's, and *eval* (when evaluation runs) the success of the last
evaluation episodes. Trouble is appended as an alarm::

    ... | ALARM non-finite critic_loss,q_mean | skipped 340 | non-finite updates 12 | rejected 3

*non-finite* names the metrics with nan / inf values in the newest learner line,
*skipped* counts batch chunks skipped for non-finite inputs, *non-finite updates* the
update calls with non-finite values, *rejected* the actor messages the learner refused.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

from hilrl.runtime.run_dir import RunDir, read_jsonl


@dataclass
class RunStatus:
    """Follows a run's metrics files; :meth:`poll` reads what is new."""

    run: RunDir
    total_env_steps: int
    window: int = 20
    env_steps: int = 0
    updates: int = 0
    updates_per_s: float = 0.0
    learner_version: int = -1
    actor_version: int = -1
    episodes: int = 0
    skipped_batches: int = 0
    nonfinite_losses: int = 0
    ingest_rejected: int = 0
    nonfinite_keys: list[str] = field(default_factory=list)
    """Metrics with non-finite values in the newest learner line."""
    train: deque[dict[str, Any]] = field(default_factory=deque)
    evals: deque[dict[str, Any]] = field(default_factory=deque)
    _offsets: dict[str, int] = field(default_factory=dict)

    def poll(self) -> None:
        for record in self._new(self.run.episodes_jsonl):
            self.env_steps = max(self.env_steps, int(record.get("env_steps", 0)))
            if record.get("eval"):
                self.evals.append(record)
                while len(self.evals) > self.window:
                    self.evals.popleft()
                continue
            self.episodes += 1
            self.actor_version = int(record.get("policy_version", -1))
            self.train.append(record)
            while len(self.train) > self.window:
                self.train.popleft()
        for record in self._new(self.run.learner_jsonl):
            self.env_steps = max(self.env_steps, int(record.get("env_steps", 0)))
            self.updates = int(record.get("updates", self.updates))
            self.updates_per_s = float(record.get("updates_per_s", 0.0))
            self.learner_version = int(record.get("policy_version", self.learner_version))
            self.skipped_batches = int(record.get("skipped_batches", self.skipped_batches))
            self.nonfinite_losses = int(record.get("nonfinite_losses", self.nonfinite_losses))
            self.ingest_rejected = int(record.get("ingest_rejected", self.ingest_rejected))
            self.nonfinite_keys = sorted(
                k.split("/", 1)[1] for k in record if k.startswith("nonfinite/")
            )

    def _new(self, path: Any) -> list[dict[str, Any]]:
        key = str(path)
        records, self._offsets[key] = read_jsonl(path, self._offsets.get(key, 0))
        return records

    @staticmethod
    def _rate(records: deque[dict[str, Any]], key: str) -> float | None:
        values = [float(bool(r.get(key))) for r in records]
        return sum(values) / len(values) if values else None

    @property
    def success_rate(self) -> float | None:
        return self._rate(self.train, "success")

    @property
    def autonomous_rate(self) -> float | None:
        return self._rate(self.train, "autonomous_success")

    @property
    def eval_success_rate(self) -> float | None:
        return self._rate(self.evals, "success")

    @property
    def intervention_rate(self) -> float | None:
        values = [float(r.get("intervention_rate", 0.0)) for r in self.train]
        return sum(values) / len(values) if values else None

    def line(self, elapsed_s: float) -> str:
        total = max(self.total_env_steps, 1)
        parts = [
            f"steps {self.env_steps:,}/{self.total_env_steps:,} {100 * self.env_steps / total:.0f}%"
        ]
        parts.append(f"{self.updates:,} upd ({self.updates_per_s:.1f}/s)")
        if self.success_rate is not None:
            parts.append(
                f"success {_pct(self.success_rate)} (alone {_pct(self.autonomous_rate)}) "
                f"last {len(self.train)}"
            )
            parts.append(f"interv {_pct(self.intervention_rate)}")
        if self.eval_success_rate is not None:
            parts.append(f"eval {_pct(self.eval_success_rate)}")
        if self.learner_version >= 0 and self.actor_version >= 0:
            parts.append(f"lag {max(self.learner_version - self.actor_version, 0)}")
        parts.append(format_duration(elapsed_s))
        return " | ".join(parts + self.alarms())

    def alarms(self) -> list[str]:
        """What is wrong with the learner's data or training (empty: nothing)."""
        out = []
        if self.nonfinite_keys:
            out.append("ALARM non-finite " + ",".join(self.nonfinite_keys))
        if self.skipped_batches:
            out.append(f"skipped {self.skipped_batches:,}")
        if self.nonfinite_losses:
            out.append(f"non-finite updates {self.nonfinite_losses:,}")
        if self.ingest_rejected:
            out.append(f"rejected {self.ingest_rejected:,}")
        return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def format_duration(seconds: float) -> str:
    s = int(max(seconds, 0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class StatusPrinter:
    """Prints the status line every ``every_s``: in place on a terminal, else as log lines."""

    def __init__(
        self, status: RunStatus, out: TextIO, every_s: float, enabled: bool = True
    ) -> None:
        self.status = status
        self.out = out
        self.every_s = every_s
        self.enabled = enabled
        self.started = time.monotonic()
        self._next = 0.0
        self._tty = bool(getattr(out, "isatty", lambda: False)())
        self._width = 0

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (now < self._next and not force):
            return
        self._next = now + (min(self.every_s, 1.0) if self._tty else self.every_s)
        self.status.poll()
        text = "train: " + self.status.line(now - self.started)
        if self._tty:
            self.out.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def message(self, text: str) -> None:
        """A line of its own (the status line, on a terminal, is redrawn after it)."""
        if self._tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self) -> None:
        if self._tty and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0
