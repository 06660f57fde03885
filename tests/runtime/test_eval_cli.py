"""``hilrl eval``: help, a full run on a tiny checkpoint, metrics/eval.jsonl, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from eval_helpers import COUNTERS, STEP, make_run

from hilrl.cli.main import main
from hilrl.runtime.evaluate import eval_seed


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--checkpoint", "--episodes", "--video", "--no-video", "--out", "--seed"):
        assert flag in out
    assert "--env.fps" in out  # config overrides are listed


def test_eval_writes_metrics_and_videos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = make_run(tmp_path)
    args = ["eval", "--checkpoint", str(run), "--episodes", "2", "--no-progress", "--seed", "4"]
    assert main([*args, "--video-episodes", "1", "--env.episode_time_s=0.3"]) == 0
    captured = capsys.readouterr()
    assert "success rate" in captured.out and "95% CI" in captured.out
    assert "mean return" in captured.out and "mean length" in captured.out
    lines = (run / "metrics" / "eval.jsonl").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["eval"] is True
    assert entry["step"] == STEP
    assert entry["env_steps"] == COUNTERS["env_steps"]
    assert entry["policy_version"] == COUNTERS["weights_version"]
    assert entry["episodes"] == 2 and len(entry["per_episode"]) == 2
    assert [e["seed"] for e in entry["per_episode"]] == [eval_seed(4, 0), eval_seed(4, 1)]
    assert all(1 <= e["length"] <= 3 for e in entry["per_episode"])  # the override applied
    assert entry["success_ci_low"] <= entry["success_rate"] <= entry["success_ci_high"]
    video = run / "videos" / f"eval_step{STEP:09d}_ep000.mp4"
    if "no video" in captured.err:  # no offscreen GL on this machine: eval still ran
        assert not video.exists()
    else:
        assert video.is_file() and video.stat().st_size > 0
        assert entry["per_episode"][0]["video"] == str(video)
        assert entry["per_episode"][1]["video"] is None

    out = tmp_path / "elsewhere"
    assert main([*args, "--no-video", "--out", str(out), "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["episodes"] == 2
    assert len((out / "metrics" / "eval.jsonl").read_text().splitlines()) == 1
    assert not (out / "videos").exists()
    assert len((run / "metrics" / "eval.jsonl").read_text().splitlines()) == 1


def test_bad_checkpoint_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing_run"
    assert main(["eval", "--checkpoint", str(missing), "--no-video"]) == 1
    assert str(missing) in capsys.readouterr().err


def test_bad_override_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, _ = make_run(tmp_path)
    assert main(["eval", "--checkpoint", str(run), "--no-video", "--env.fps=0"]) == 1
    assert "env.fps" in capsys.readouterr().err
