"""Fixtures for the dataset tests (helpers live in ``dataset_helpers``)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from dataset_helpers import Episode, standard_episodes, write_dataset


@pytest.fixture(scope="session")
def video_dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Episode]]:
    """A 3-episode, 2-camera AV1/H.264 ("auto") dataset, written once per session."""
    root = tmp_path_factory.mktemp("video") / "ds"
    episodes = standard_episodes()
    write_dataset(root, episodes)
    return root, episodes


@pytest.fixture
def copy_dataset(video_dataset: tuple[Path, list[Episode]], tmp_path: Path) -> Callable[[], Path]:
    """A private copy of the session dataset, for tests that damage it."""

    def make() -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(video_dataset[0], dst)
        return dst

    return make
