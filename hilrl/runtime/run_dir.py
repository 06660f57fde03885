"""The run folder: one place for everything a training run writes, and its JSONL writers.

Layout (a contract between ``hilrl train`` / ``learner`` / ``actor`` / ``train-offline``,
which write it, and ``hilrl eval`` / :mod:`hilrl.runtime.plots`, which read it)::

    <run.output_dir>/
      config.yaml                 the resolved RootConfig (hilrl.config.loader.save_config)
      run.json                    {"run_id": ...}: fixed when the run is created, kept on resume
      learner.json                {"pid", "host", "port", "run_id", "arch_hash"} of the live learner
      processes.json              {"launcher", "learner", "actors": {...}} pids (hilrl train)
      weights_version.json        highest weights version ever published (resume keeps it rising)
      checkpoints/step_XXXXXXXXX/ hilrl.runtime.checkpoint format; meta.json holds the config
                                  and the counters (updates, env_steps, episodes, weights_version,
                                  elapsed_s, actor_episodes, transport)
      tensorboard/                SummaryWriter logs (learner scalars + per-episode scalars)
      metrics/episodes.jsonl      one object per finished episode (EPISODE_FIELDS)
      metrics/learner.jsonl       one object per log interval (LEARNER_FIELDS + SAC metrics)
      plots/                      PNGs from hilrl.runtime.plots.plot_run
      videos/                     evaluation videos (hilrl eval)
      logs/                       stdout + stderr of each process started by hilrl train
      demos/                      demonstrations recorded by hilrl train (train.demo_dataset: null)

``time_s`` in the metrics is seconds of training since the run started, summed over
resumes; ``env_steps`` is the global count of environment steps (all actors) the learner
has ingested when the line is written. JSONL lines are appended and flushed one at a
time, so a reader may see a partial last line (skip lines that do not parse).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hilrl.config.loader import ConfigError
from hilrl.fsutil import atomic_write_json
from hilrl.runtime.checkpoint import list_checkpoints, newest_intact_checkpoint, remove_stale_temps

CONFIG_FILE = "config.yaml"
RUN_FILE = "run.json"
LEARNER_FILE = "learner.json"
PROCESSES_FILE = "processes.json"
VERSION_FILE = "weights_version.json"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
METRICS_DIR = "metrics"
EPISODES_JSONL = "episodes.jsonl"
LEARNER_JSONL = "learner.jsonl"
PLOTS_DIR = "plots"
VIDEOS_DIR = "videos"
LOGS_DIR = "logs"
DEMOS_DIR = "demos"

EPISODE_FIELDS = (
    "time_s",
    "env_steps",
    "actor_id",
    "episode_index",
    "return",
    "length",
    "success",
    "intervention_rate",
    "policy_version",
    "eval",
)
"""Keys of every line of ``metrics/episodes.jsonl`` (``autonomous_success``, true for a
success without a single intervention step, comes along too)."""

LEARNER_FIELDS = (
    "time_s",
    "env_steps",
    "updates",
    "updates_per_s",
    "replay_sizes",
    "policy_version",
)
"""Keys of every line of ``metrics/learner.jsonl``; the SAC metrics of the interval
(averaged: critic_loss, actor_loss, temperature, q_mean, ...) are added at the top level."""


@dataclass(frozen=True)
class RunDir:
    """Paths of one run folder (nothing is created until :meth:`create`)."""

    root: Path

    @classmethod
    def of(cls, output_dir: str | Path) -> RunDir:
        return cls(Path(output_dir).expanduser())

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    @property
    def learner_file(self) -> Path:
        return self.root / LEARNER_FILE

    @property
    def processes_file(self) -> Path:
        return self.root / PROCESSES_FILE

    @property
    def version_file(self) -> Path:
        return self.root / VERSION_FILE

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def tensorboard(self) -> Path:
        return self.root / TENSORBOARD_DIR

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_DIR

    @property
    def episodes_jsonl(self) -> Path:
        return self.metrics / EPISODES_JSONL

    @property
    def learner_jsonl(self) -> Path:
        return self.metrics / LEARNER_JSONL

    @property
    def plots(self) -> Path:
        return self.root / PLOTS_DIR

    @property
    def videos(self) -> Path:
        return self.root / VIDEOS_DIR

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def demos(self) -> Path:
        return self.root / DEMOS_DIR

    def create(self) -> RunDir:
        for folder in (self.root, self.checkpoints, self.metrics, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def has_checkpoints(self) -> bool:
        """True when a complete checkpoint exists (cheap: its files are not verified)."""

        return bool(list_checkpoints(self.checkpoints))

    def run_id(self) -> str:
        """The run's id from ``run.json``; a new one is written when none exists."""
        rid = read_json(self.run_file).get("run_id")
        if isinstance(rid, str) and rid:
            return rid
        return self.new_run_id()

    def new_run_id(self) -> str:
        """Start a new run identity (a fresh run must not meet an earlier run's spooled data)."""
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in self.root.name[:40])
        rid = f"{name or 'run'}-{uuid.uuid4().hex[:12]}"
        write_json(self.run_file, {"run_id": rid})
        return rid

    def published_version(self) -> int:
        """Highest weights version ever published in this run (-1: none)."""
        value = read_json(self.version_file).get("version", -1)
        return int(value) if isinstance(value, int) else -1

    def record_published_version(self, version: int) -> None:
        write_json(self.version_file, {"version": int(version)}, sync=False)


def write_json(path: Path, data: dict[str, Any], sync: bool = True) -> None:
    """Replace ``path`` atomically (:func:`hilrl.fsutil.atomic_write_json`).

    ``sync=False``: no fsync (atomic, but a power cut may lose it).
    """
    atomic_write_json(path, data, indent=1, sync=sync)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file, or ``{}`` when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class JsonlWriter:
    """Appends one JSON object per line and flushes it (thread-safe)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=True, separators=(",", ":"))
        with self._lock:
            if self._file is None:
                raise ValueError(f"{self.path} is closed")
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: Path, start: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of ``path`` from byte offset ``start``; returns them and the new offset.

    A trailing line without its newline (still being written) is left for the next call,
    so a reader can follow a growing file.
    """
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return [], start
    end = data.rfind(b"\n")
    if end < 0:
        return [], start
    out: list[dict[str, Any]] = []
    for raw in data[: end + 1].splitlines():
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out, start + end + 1


def prepare_run(output_dir: str | Path, resume: bool) -> RunDir:
    """Create the run folder for a fresh run, or check that there is one to resume.

    A fresh run refuses a folder that already holds checkpoints or episode metrics (an
    earlier run: it would mix the two) and gets a new run id; ``resume`` needs an intact
    complete checkpoint (files checked against their recorded hashes; corrupt newer ones
    are skipped with a warning) and keeps the id. Folders left in ``checkpoints/`` by
    crashed saves are removed. Raises :class:`ConfigError` naming ``run.output_dir``.
    """

    run = RunDir.of(output_dir)
    if resume:
        found, skipped = newest_intact_checkpoint(run.checkpoints)
        if found is None:
            why = (
                f" that is intact ({len(skipped)} corrupt, newest: {skipped[0][1]})"
                if skipped
                else ""
            )
            raise ConfigError(
                "run.output_dir",
                str(run.root),
                f"--resume: no complete checkpoint to resume from{why}",
            )
        run.create()
        remove_stale_temps(run.checkpoints)
        run.run_id()
        return run
    if run.has_checkpoints() or _nonempty(run.episodes_jsonl) or _nonempty(run.learner_jsonl):
        raise ConfigError(
            "run.output_dir",
            str(run.root),
            "holds an earlier run (checkpoints / metrics): pass --resume to continue it, or "
            "choose another run.output_dir",
        )
    run.create()
    remove_stale_temps(run.checkpoints)
    run.new_run_id()
    return run


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False
