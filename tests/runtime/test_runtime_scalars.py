"""TensorBoard always; Weights & Biases, when configured, gets exactly the same scalars."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from hilrl.config.loader import ConfigError, build
from hilrl.config.root import RootConfig, RunConfig
from hilrl.runtime.scalars import ScalarLogger


class FakeWandbRun:
    def __init__(self, **kwargs: Any) -> None:
        self.init = kwargs
        self.logged: list[dict[str, float]] = []
        self.metrics: list[tuple[str, str | None]] = []
        self.finished = False

    def log(self, values: dict[str, float]) -> None:
        self.logged.append(dict(values))

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.metrics.append((name, step_metric))

    def finish(self) -> None:
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch: pytest.MonkeyPatch) -> list[FakeWandbRun]:
    runs: list[FakeWandbRun] = []
    module = types.ModuleType("wandb")

    def init(**kwargs: Any) -> FakeWandbRun:
        runs.append(FakeWandbRun(**kwargs))
        return runs[-1]

    module.init = init  # type: ignore[attr-defined]
    module.__spec__ = types.SimpleNamespace(name="wandb")  # type: ignore[assignment]
    monkeypatch.setitem(sys.modules, "wandb", module)
    return runs


def _tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {
        tag: [(e.step, round(e.value, 5)) for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }


def test_wandb_receives_the_same_scalars_as_tensorboard(
    tmp_path: Path, fake_wandb: list[FakeWandbRun]
) -> None:
    cfg = RunConfig(output_dir=str(tmp_path), wandb=True, wandb_project="p", wandb_mode="offline")
    root = RootConfig()
    root.transport.token = "s3cret-token"
    log = ScalarLogger(tmp_path / "tensorboard", cfg, root, name="run-a")
    log.log_many({"episode/return": 1.0, "episode/success": 1.0}, 10)
    log.log("learner/critic_loss", 0.25, 20)
    log.close()
    (run,) = fake_wandb
    assert run.init["project"] == "p" and run.init["mode"] == "offline"
    assert run.init["config"]["env"]["fps"] == 10  # the whole config goes to W&B
    assert "s3cret-token" not in repr(run.init["config"])  # but never a secret
    assert ("*", "env_steps") in run.metrics and run.finished
    from_wandb: dict[str, list[tuple[int, float]]] = {}
    for entry in run.logged:
        step = int(entry["env_steps"])
        for tag, value in entry.items():
            if tag != "env_steps":
                from_wandb.setdefault(tag, []).append((step, round(value, 5)))
    assert from_wandb == _tensorboard_scalars(tmp_path / "tensorboard")
    assert set(from_wandb) == {"episode/return", "episode/success", "learner/critic_loss"}


def test_tensorboard_only_by_default(tmp_path: Path, fake_wandb: list[FakeWandbRun]) -> None:
    log = ScalarLogger(tmp_path / "tb", RunConfig(output_dir=str(tmp_path)))
    log.log("a", 1.0, 1)
    log.close()
    assert not fake_wandb
    assert _tensorboard_scalars(tmp_path / "tb") == {"a": [(1, 1.0)]}


def test_wandb_without_the_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # makes find_spec / import fail
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ConfigError) as info:
        build(RootConfig, {"run": {"wandb": True}})
    assert info.value.field == "run.wandb" and "pip install" in str(info.value)
