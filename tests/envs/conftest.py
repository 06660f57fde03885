"""Fixtures for the env tests (helpers live in env_helpers.py)."""

from __future__ import annotations

import pytest
from env_fakes import FakeRobot
from env_helpers import FAKE_SHAPE


@pytest.fixture
def fake_robot() -> FakeRobot:
    return FakeRobot(image_shape=FAKE_SHAPE)
