"""label-sim -> train-reward -> eval-reward through the hilrl command, and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from reward_helpers import write_labelled_dataset

from hilrl.cli.main import main

TINY = [
    "--reward.model.encoder.small_cnn_channels=[8, 8]",
    "--reward.model.encoder.small_cnn_patch=2",
    "--reward.model.encoder.image_latent_dim=16",
    "--reward.model.hidden_dims=[16]",
    "--reward.train.tensorboard=false",
    "--reward.train.device=cpu",
]


def test_label_train_eval_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds, model = tmp_path / "ds", tmp_path / "model"
    assert (
        main(
            [
                "label-sim",
                "--no-progress",
                f"--dataset.root={ds}",
                "--dataset.image_storage=image",
                "--env.robot.camera_height=24",
                "--env.robot.camera_width=24",
                "--reward.label.num_episodes=4",
                "--reward.label.random_episode_fraction=0.25",
                "--reward.label.give_up_fraction=0.0",
                "--reward.label.after_ticks=3",
                "--reward.label.random_ticks=8",
            ]
        )
        == 0
    )
    assert "success" in capsys.readouterr().out
    args = ["train-reward", "--no-progress", "--dataset", str(ds), "--output-dir", str(model)]
    assert (
        main([*args, "--reward.train.epochs=2", "--reward.train.val_episodes=[0, 3]", *TINY]) == 0
    )
    out = capsys.readouterr().out
    assert "threshold" in out and "roc_auc" in out
    assert (model / "reward_classifier.json").is_file()
    assert main(["eval-reward", "--model", str(model), "--dataset", str(ds), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"accuracy"' in out and (model / "eval" / "roc.png").is_file()


def test_train_reward_on_one_class_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = tmp_path / "ds"
    write_labelled_dataset(ds, [[1, 1], [1, 1, 1]])
    code = main(["train-reward", "--no-progress", "--dataset", str(ds), *TINY])
    assert code == 2
    assert "no frames of class ['failure']" in capsys.readouterr().err


def test_eval_reward_without_a_model_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = tmp_path / "ds"
    write_labelled_dataset(ds, [[0, 1]])
    assert main(["eval-reward", "--model", str(tmp_path / "none"), "--dataset", str(ds)]) == 2
    assert "not a reward classifier folder" in capsys.readouterr().err
