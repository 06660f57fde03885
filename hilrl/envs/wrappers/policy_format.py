"""Conversion of any gymnasium observation to the policy format of :mod:`hilrl.types`.

Robot envs already observe in that format (the wrapper then only passes through); other
gymnasium envs are mapped: a Box of uint8 images (H, W, 3) becomes
``observation.images.pixels``, any other Box becomes ``observation.state`` (flattened,
float32); in a Dict, keys already in the format stay, ``pixels`` (a Box or a Dict of
cameras) becomes images, and every other Box is flattened into the state in sorted key
order.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation


def _is_image(space: spaces.Space[Any]) -> bool:
    return (
        isinstance(space, spaces.Box)
        and space.dtype == np.uint8
        and len(space.shape) == 3
        and space.shape[-1] == 3
    )


def _flat_box(space: spaces.Box) -> spaces.Box:
    low = np.asarray(space.low, dtype=np.float32).reshape(-1)
    high = np.asarray(space.high, dtype=np.float32).reshape(-1)
    return spaces.Box(low, high, (len(low),), np.float32)


class PolicyObservation(gym.ObservationWrapper[Observation, Any, Any]):
    """Maps observations to ``{'observation.state': ..., 'observation.images.<cam>': ...}``."""

    def __init__(self, env: gym.Env[Any, Any]) -> None:
        super().__init__(env)
        space = env.observation_space
        self.image_keys: dict[str, tuple[str, ...]] = {}  # output key -> path in the input
        self.state_keys: list[tuple[str, ...]] = []  # input paths flattened into the state
        self.passthrough = False
        out: dict[str, spaces.Space[Any]] = {}
        state_parts: list[spaces.Box] = []
        if isinstance(space, spaces.Dict):
            if STATE_KEY in space.spaces and all(
                k == STATE_KEY or k.startswith(IMAGE_PREFIX) for k in space.spaces
            ):
                self.passthrough = True
                self.observation_space = space  # type: ignore[assignment]
                return
            for key in sorted(space.spaces):
                sub = space.spaces[key]
                if key.startswith(IMAGE_PREFIX) and _is_image(sub):
                    self.image_keys[key] = (key,)
                    out[key] = sub
                elif key == "pixels" and isinstance(sub, spaces.Dict):
                    for cam in sorted(sub.spaces):
                        if not _is_image(sub.spaces[cam]):
                            raise ValueError(
                                f"observation 'pixels.{cam}' is not an HxWx3 uint8 image"
                            )
                        self.image_keys[IMAGE_PREFIX + cam] = (key, cam)
                        out[IMAGE_PREFIX + cam] = sub.spaces[cam]
                elif _is_image(sub):
                    name = key if key != "pixels" else "pixels"
                    self.image_keys[IMAGE_PREFIX + name] = (key,)
                    out[IMAGE_PREFIX + name] = sub
                elif isinstance(sub, spaces.Box):
                    self.state_keys.append((key,))
                    state_parts.append(_flat_box(sub))
                else:
                    raise ValueError(f"observation '{key}' ({sub}) has no policy-format equivalent")
        elif _is_image(space):
            self.image_keys[IMAGE_PREFIX + "pixels"] = ()
            out[IMAGE_PREFIX + "pixels"] = space
        elif isinstance(space, spaces.Box):
            self.state_keys.append(())
            state_parts.append(_flat_box(space))
        else:
            raise ValueError(f"observation space {space} has no policy-format equivalent")
        if state_parts:
            low = np.concatenate([b.low for b in state_parts])
            high = np.concatenate([b.high for b in state_parts])
            out = {STATE_KEY: spaces.Box(low, high, (len(low),), np.float32), **out}
        self.observation_space = spaces.Dict(out)  # type: ignore[assignment]

    def observation(self, observation: Any) -> Observation:
        if self.passthrough:
            return observation  # type: ignore[no-any-return]
        out: Observation = {}
        if self.state_keys:
            parts = [
                np.asarray(_get(observation, p), dtype=np.float32).reshape(-1)
                for p in self.state_keys
            ]
            out[STATE_KEY] = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        for key, path in self.image_keys.items():
            out[key] = np.asarray(_get(observation, path), dtype=np.uint8)
        return out


def _get(observation: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        observation = observation[key]
    return observation
