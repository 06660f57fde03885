"""The trained classifier as the env's reward: ``load_reward_fn(path) -> (obs, info) -> (reward, success)``.

::

    reward_fn = load_reward_fn("outputs/reward_classifier", device="cpu")
    reward_fn.check_env_config(env_cfg)            # cameras and sizes, before the robot moves
    env = make_env(env_cfg, reward_fn=reward_fn)

The callable prepares observations with the same :func:`~hilrl.rewards.preprocess.
prepare_inputs` as training, runs the model on its device under ``inference_mode``, and
calls a step successful when the success probability reaches the saved (calibrated)
threshold and every configured state condition holds. It writes its score into
``info['reward_classifier_score']`` when ``info`` is a dict.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.config.reward import STATE_CONDITION, RewardClassifierConfig
from hilrl.devices import resolve_device
from hilrl.rewards.model import ClassifierMeta, RewardClassifier, load_classifier
from hilrl.rewards.preprocess import RewardInputError, prepare_inputs
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation

SCORE_INFO_KEY = "reward_classifier_score"

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class StateCondition:
    """``state[index] op value``: e.g. the gripper closed, or the tool above a height."""

    index: int
    op: str
    value: float

    @classmethod
    def parse(cls, text: str) -> StateCondition:
        m = STATE_CONDITION.match(text)
        if m is None:
            raise ValueError(
                f"state condition {text!r}: expected 'state[<index>] <op> <value>' "
                "with op one of > >= < <="
            )
        return cls(int(m.group(1)), m.group(2), float(m.group(3)))

    def __call__(self, state: np.ndarray) -> bool:
        return bool(_OPS[self.op](float(state[self.index]), self.value))

    def __str__(self) -> str:
        return f"state[{self.index}] {self.op} {self.value}"


class RewardClassifierFn:
    """``(observation, info) -> (reward, success)`` from a trained reward classifier."""

    def __init__(
        self,
        model: RewardClassifier,
        meta: ClassifierMeta,
        *,
        device: torch.device,
        threshold: float | None = None,
        state_conditions: Sequence[StateCondition] = (),
        success_reward: float = 1.0,
        failure_reward: float = 0.0,
        path: str = "",
    ) -> None:
        self.path = path
        self.model = model.eval()
        self.meta = meta
        self.spec = meta.spec
        self.device = device
        self.threshold = meta.threshold if threshold is None else float(threshold)
        self.state_conditions = tuple(state_conditions)
        self.success_reward = float(success_reward)
        self.failure_reward = float(failure_reward)
        self.last_score = float("nan")

    @torch.inference_mode()
    def scores(self, frames: Mapping[str, np.ndarray], batched: bool = True) -> np.ndarray:
        """Success probabilities of frames (``(N, ...)`` arrays, or one observation)."""
        inputs = prepare_inputs(frames, self.spec, self.device, batched=batched)
        logits = self.model(inputs)
        return self.model.success_scores(logits).double().cpu().numpy()  # type: ignore[no-any-return]

    def score(self, observation: Observation) -> float:
        """Success probability of one observation."""
        return float(self.scores(observation, batched=False)[0])

    def conditions_hold(self, observation: Observation) -> bool:
        if not self.state_conditions:
            return True
        if STATE_KEY not in observation:
            raise RewardInputError(
                f"reward.state_conditions need {STATE_KEY}, which the observation lacks"
            )
        state = np.asarray(observation[STATE_KEY])
        return all(c(state) for c in self.state_conditions)

    def __call__(self, observation: Observation, info: Mapping[str, Any]) -> tuple[float, bool]:
        score = self.score(observation)
        self.last_score = score
        success = score >= self.threshold and self.conditions_hold(observation)
        if isinstance(info, MutableMapping):
            info[SCORE_INFO_KEY] = score
        return (self.success_reward if success else self.failure_reward), bool(success)

    # ----------------------------------------------------------------- checks
    def check_image_shapes(self, shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
        """Raise naming the camera when one is missing or has another size than in training."""
        for key, shape in self.spec.image_shapes:
            if key not in shapes:
                have = sorted(k[len(IMAGE_PREFIX) :] for k in shapes)
                raise RewardInputError(
                    f"{where}: the reward classifier needs camera "
                    f"'{key[len(IMAGE_PREFIX) :]}', which is not enabled (cameras: {have})"
                )
            if tuple(shapes[key]) != shape:
                raise RewardInputError(
                    f"{where}: camera '{key[len(IMAGE_PREFIX) :]}' gives {tuple(shapes[key])} "
                    f"images but the reward classifier was trained on {shape} (H, W, C); "
                    "use the same env.images crop / resize as the training dataset"
                )

    def check_state_dim(self, state_dim: int | None, where: str) -> None:
        needed = max(
            [c.index + 1 for c in self.state_conditions]
            + ([self.spec.state_dim] if self.spec.state_dim else [])
            + [0]
        )
        if needed and state_dim is None:
            raise RewardInputError(f"{where}: the reward needs {STATE_KEY}, which is absent")
        if self.spec.state_dim and state_dim != self.spec.state_dim:
            raise RewardInputError(
                f"{where}: {STATE_KEY} has {state_dim} values, the reward classifier was "
                f"trained on {self.spec.state_dim}"
            )
        if state_dim is not None and needed > state_dim:
            bad = [str(c) for c in self.state_conditions if c.index >= state_dim]
            raise RewardInputError(
                f"{where}: reward.state_conditions {bad} index past the {state_dim} "
                f"values of {STATE_KEY}"
            )

    def check_observation_space(self, space: spaces.Space[Any]) -> None:
        """Check a built env's observation space (a gymnasium Dict) before the first step."""
        if not isinstance(space, spaces.Dict):
            raise RewardInputError(f"the env observation space {space} is not a Dict")
        shapes = {
            k: tuple(s.shape or ()) for k, s in space.spaces.items() if k.startswith(IMAGE_PREFIX)
        }
        self.check_image_shapes(shapes, "env observation")
        state = space.spaces.get(STATE_KEY)
        state_dim = int(state.shape[0]) if state is not None and state.shape else None
        self.check_state_dim(state_dim, "env observation")

    def check_env_config(self, env_cfg: EnvConfig) -> None:
        """Check cameras and image sizes against an env config (nothing is built or moved)."""
        shapes = expected_image_shapes(env_cfg)
        try:
            self.check_image_shapes(shapes, "env")
        except RewardInputError as exc:
            raise ConfigError("reward.path", self.path, str(exc)) from None


def expected_image_shapes(env_cfg: EnvConfig) -> dict[str, tuple[int, int, int]]:
    """The (H, W, 3) of every camera observation ``make_env(env_cfg)`` will produce."""
    if env_cfg.gym_id is not None or not env_cfg.use_cameras:
        return {}
    robot = env_cfg.robot
    out: dict[str, tuple[int, int, int]] = {}
    for cam in robot.cameras:
        h, w = robot.camera_height, robot.camera_width
        if cam in env_cfg.images.crops:
            _, _, h, w = env_cfg.images.crops[cam]
        if env_cfg.images.resize is not None:
            h, w = env_cfg.images.resize
        out[IMAGE_PREFIX + cam] = (int(h), int(w), 3)
    return out


def load_reward_fn(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    threshold: float | None = None,
    state_conditions: Sequence[str] = (),
    success_reward: float = 1.0,
    failure_reward: float = 0.0,
) -> RewardClassifierFn:
    """Load a trained classifier as a reward function for ``make_env(cfg, reward_fn=...)``."""
    dev = resolve_device(device) if isinstance(device, str) else device
    model, meta = load_classifier(path, dev)
    conditions = [StateCondition.parse(c) for c in state_conditions]
    return RewardClassifierFn(
        model,
        meta,
        device=dev,
        threshold=threshold,
        state_conditions=conditions,
        success_reward=success_reward,
        failure_reward=failure_reward,
        path=str(path),
    )


def reward_fn_from_config(
    cfg: RewardClassifierConfig, env_cfg: EnvConfig
) -> RewardClassifierFn | None:
    """The configured reward classifier (``cfg.path``), checked against ``env_cfg``; None if unset."""
    if cfg.path is None:
        return None
    try:
        fn = load_reward_fn(
            cfg.path,
            cfg.device,
            threshold=cfg.threshold,
            state_conditions=cfg.state_conditions,
            success_reward=cfg.success_reward,
            failure_reward=cfg.failure_reward,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError("reward.path", cfg.path, str(exc)) from exc
    fn.check_env_config(env_cfg)
    return fn
