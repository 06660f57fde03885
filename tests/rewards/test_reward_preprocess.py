"""Training and inference feed the network identical inputs; bad frames fail clearly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from reward_helpers import mixed_episodes, tiny_model_cfg, tiny_train_cfg, write_labelled_dataset

from hilrl.config.env import EnvConfig, ImageConfig
from hilrl.config.loader import ConfigError, load_config
from hilrl.config.robot import RobotConfig
from hilrl.config.root import RootConfig
from hilrl.rewards.data import load_labelled_frames
from hilrl.rewards.hook import StateCondition, load_reward_fn, reward_fn_from_config
from hilrl.rewards.model import ClassifierMeta, RewardClassifier, save_classifier
from hilrl.rewards.preprocess import RewardInputError, prepare_inputs
from hilrl.rewards.train import RewardTrainer
from hilrl.types import IMAGE_PREFIX, STATE_KEY


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, np.ndarray]]]:
    root = tmp_path_factory.mktemp("pre") / "ds"
    frames = write_labelled_dataset(root, mixed_episodes(3, 6))
    return root, frames


def _saved_model(frames_spec: object, path: Path, use_state: bool = True) -> Path:
    cfg = tiny_model_cfg(use_state=use_state)
    torch.manual_seed(0)
    model = RewardClassifier(frames_spec, cfg)  # type: ignore[arg-type]
    save_classifier(model, ClassifierMeta(spec=frames_spec, model=cfg, threshold=0.5), path)  # type: ignore[arg-type]
    return path


def test_training_and_inference_give_identical_model_inputs(
    dataset: tuple[Path, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    root, raw = dataset
    cfg = tiny_model_cfg(use_state=True)
    frames = load_labelled_frames(root, cfg)
    path = _saved_model(frames.spec, tmp_path / "clf")
    fn = load_reward_fn(path, "cpu")
    trainer = RewardTrainer(fn.model, tiny_train_cfg(), np.ones(2), torch.device("cpu"))
    seen: list[torch.Tensor] = []
    assert fn.model.encoder.backbone is not None
    hook = fn.model.encoder.backbone.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].detach().clone())
    )
    try:
        for i in (0, 7, len(raw) - 1):
            # training path: dataset -> LabelledFrames -> trainer batch (no augmentation)
            train_inputs, _ = trainer.batch(frames, np.array([i]), augment=False)
            # inference path: the live observation dict -> the env reward hook
            obs = raw[i]
            infer_inputs = prepare_inputs(obs, frames.spec, "cpu", batched=False)
            assert set(train_inputs) == set(infer_inputs)
            for k in train_inputs:
                assert train_inputs[k].dtype == infer_inputs[k].dtype
                assert torch.equal(train_inputs[k], infer_inputs[k]), k
            seen.clear()
            fn.model.eval()
            with torch.no_grad():
                train_score = fn.model.success_scores(fn.model(train_inputs))
            score = fn.score(obs)
            assert len(seen) == 2  # one backbone call per path (cameras batched together)
            assert torch.equal(seen[0], seen[1]), "backbone inputs differ"
            assert seen[0].dtype == torch.float32 and float(seen[0].abs().max()) < 5.0
            assert score == float(train_score[0])
    finally:
        hook.remove()


def test_missing_camera_wrong_size_or_dtype_fail_naming_the_key(
    dataset: tuple[Path, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    root, raw = dataset
    frames = load_labelled_frames(root, tiny_model_cfg(use_state=True))
    fn = load_reward_fn(_saved_model(frames.spec, tmp_path / "clf"))
    obs = dict(raw[0])
    del obs[IMAGE_PREFIX + "wrist"]
    with pytest.raises(RewardInputError, match=r"observation.images.wrist"):
        fn(obs, {})
    obs = dict(raw[0])
    obs[IMAGE_PREFIX + "front"] = np.zeros((20, 16, 3), np.uint8)
    with pytest.raises(RewardInputError, match=r"\(20, 16, 3\).*trained on \(16, 16, 3\)"):
        fn(obs, {})
    obs = dict(raw[0])
    obs[IMAGE_PREFIX + "front"] = obs[IMAGE_PREFIX + "front"].astype(np.float32)
    with pytest.raises(RewardInputError, match="uint8"):
        fn(obs, {})
    obs = dict(raw[0])
    obs[STATE_KEY] = np.zeros(5, np.float32)
    with pytest.raises(RewardInputError, match="expects \\(3,\\)"):
        fn(obs, {})


def test_env_config_mismatch_fails_before_any_env_exists(
    dataset: tuple[Path, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    root, _ = dataset
    frames = load_labelled_frames(root, tiny_model_cfg())
    path = _saved_model(frames.spec, tmp_path / "clf", use_state=False)
    ok = EnvConfig(
        robot=RobotConfig(camera_height=64, camera_width=64), images=ImageConfig(resize=(16, 16))
    )
    cfg = load_config(RootConfig, None, [f"--reward.path={path}"])
    assert reward_fn_from_config(cfg.reward, ok) is not None
    wrong_size = replace(ok, images=ImageConfig())
    with pytest.raises(ConfigError, match=r"reward.path.*camera 'front' gives \(64, 64, 3\)"):
        reward_fn_from_config(cfg.reward, wrong_size)
    no_wrist = replace(ok, robot=replace(ok.robot, cameras=("front",)))
    with pytest.raises(ConfigError, match="needs camera 'wrist'"):
        reward_fn_from_config(cfg.reward, no_wrist)
    with pytest.raises(ConfigError, match="not a reward classifier folder"):
        reward_fn_from_config(replace(cfg.reward, path=str(tmp_path)), ok)
    assert reward_fn_from_config(replace(cfg.reward, path=None), ok) is None


def test_observation_space_check_names_state_condition_index(
    dataset: tuple[Path, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    from gymnasium import spaces

    root, _ = dataset
    frames = load_labelled_frames(root, tiny_model_cfg())
    path = _saved_model(frames.spec, tmp_path / "clf", use_state=False)
    fn = load_reward_fn(path, state_conditions=["state[5] > 0.1"])
    img = spaces.Box(0, 255, (16, 16, 3), np.uint8)
    space = spaces.Dict(
        {
            IMAGE_PREFIX + "front": img,
            IMAGE_PREFIX + "wrist": img,
            STATE_KEY: spaces.Box(-1, 1, (3,), np.float32),
        }
    )
    with pytest.raises(RewardInputError, match=r"state\[5\] > 0.1.*3 values"):
        fn.check_observation_space(space)


def test_state_conditions_gate_success(
    dataset: tuple[Path, list[dict[str, np.ndarray]]], tmp_path: Path
) -> None:
    root, raw = dataset
    frames = load_labelled_frames(root, tiny_model_cfg())
    path = _saved_model(frames.spec, tmp_path / "clf", use_state=False)
    always = load_reward_fn(path, threshold=0.0, success_reward=2.0, failure_reward=-1.0)
    info: dict[str, object] = {}
    assert always(raw[0], info) == (2.0, True)
    assert 0.0 <= float(info["reward_classifier_score"]) <= 1.0  # type: ignore[arg-type]
    obs = dict(raw[0])
    obs[STATE_KEY] = np.array([0.5, -0.2, 0.0], np.float32)
    gated = load_reward_fn(
        path, threshold=0.0, state_conditions=["state[0] >= 0.5", "state[1]<-0.1"]
    )
    assert gated(obs, {}) == (1.0, True)
    obs[STATE_KEY] = np.array([0.49, -0.2, 0.0], np.float32)
    assert gated(obs, {}) == (0.0, False)
    strict = load_reward_fn(path, threshold=always.score(raw[0]) + 1e-6)
    assert strict(raw[0], {}) == (0.0, False)
    assert StateCondition.parse(" state[ 2 ]<=-1e-3 ") == StateCondition(2, "<=", -0.001)
    with pytest.raises(ValueError, match="expected 'state"):
        StateCondition.parse("z > 0.1")


def test_bad_state_condition_in_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"reward.state_conditions\[0\]"):
        load_config(RootConfig, None, ["--reward.state_conditions=['gripper closed']"])
