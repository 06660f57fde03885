"""Errors raised by the LeRobotDataset reader and writer.

Every error names what is wrong and where: a :class:`DatasetError` carries the file (or
folder) path, a :class:`FrameError` / :class:`FeatureError` the frame key or feature name,
so a user can fix the input without reading our code.
"""

from __future__ import annotations

from pathlib import Path


class DatasetError(Exception):
    """A dataset file is missing, unreadable, or disagrees with the dataset's metadata."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class FeatureError(ValueError):
    """A feature specification handed to the writer is invalid."""

    def __init__(self, feature: str, spec: object, reason: str) -> None:
        self.feature = feature
        self.spec = spec
        self.reason = reason
        super().__init__(f"feature '{feature}' = {spec!r}: {reason}")


class FrameError(ValueError):
    """A frame handed to :meth:`DatasetWriter.add_frame` does not match the features."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        self.key = key
        self.value = value
        self.reason = reason
        super().__init__(f"frame key '{key}' ({value}): {reason}")
