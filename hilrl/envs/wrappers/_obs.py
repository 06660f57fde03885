"""Helpers shared by the observation wrappers: growing the state vector and its space."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from hilrl.types import STATE_KEY


def extend_state_space(space: spaces.Dict, extra: int) -> spaces.Dict:
    """``space`` with ``extra`` more unbounded float32 entries at the end of the state."""
    state = space[STATE_KEY]
    assert isinstance(state, spaces.Box)
    low = np.concatenate([state.low, np.full(extra, -np.inf, dtype=np.float32)])
    high = np.concatenate([state.high, np.full(extra, np.inf, dtype=np.float32)])
    out = dict(space.spaces)
    out[STATE_KEY] = spaces.Box(low, high, (len(low),), np.float32)
    return spaces.Dict(out)
