"""Dataset configuration: where ``hilrl record`` saves episodes and how it stores them.

Datasets are LeRobotDataset v3.0 folders (see ``docs/dataset_format.md``). The local
folder defaults to ``datasets/<repo_id>`` so one name serves the disk and the Hugging
Face Hub; ``push_to_hub`` uploads the folder to that repository when recording ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hilrl.config.loader import ConfigError

IMAGE_STORAGES = ("video", "image")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class DatasetConfig:
    """A recorded dataset: its name, folder, task text, size and storage."""

    repo_id: str = "local/hilrl_demos"
    """Dataset name 'owner/name': the Hugging Face Hub repository (push_to_hub) and the default folder datasets/<repo_id>."""
    root: str | None = None
    """Local dataset folder; null: datasets/<repo_id> under the working directory."""
    task: str | None = None
    """Task text stored with every episode; null: the sim task name (e.g. 'pick_cube') or the gymnasium id."""
    num_episodes: int = 10
    """Episodes to record (with --resume: episodes to add to the existing ones)."""
    video_codec: str = "auto"
    """Camera video encoder: 'auto' (AV1 when FFmpeg has it, else H.264) or an encoder name such as 'libx264'."""
    image_storage: str = "video"
    """'video' (one mp4 per camera; small) or 'image' (lossless PNG in the data parquet; large)."""
    push_to_hub: bool = False
    """Upload the dataset to the Hugging Face Hub repository repo_id when recording ends (needs huggingface_hub and a login)."""
    private: bool = False
    """With push_to_hub: create the Hub repository as private."""

    @property
    def path(self) -> Path:
        """The local dataset folder."""
        return Path(self.root).expanduser() if self.root else Path("datasets") / self.repo_id

    def validate(self) -> None:
        if not self.repo_id or not _REPO_ID.match(self.repo_id):
            raise ConfigError(
                "repo_id", self.repo_id, "must look like 'owner/name' (letters, digits, . _ -)"
            )
        if self.root is not None and not self.root.strip():
            raise ConfigError("root", self.root, "must be a folder path or null")
        if self.task is not None and not self.task.strip():
            raise ConfigError("task", self.task, "must be non-empty text or null")
        if self.num_episodes <= 0:
            raise ConfigError("num_episodes", self.num_episodes, "must be a positive count")
        if not self.video_codec:
            raise ConfigError("video_codec", self.video_codec, "give 'auto' or an encoder name")
        if self.image_storage not in IMAGE_STORAGES:
            raise ConfigError(
                "image_storage", self.image_storage, f"choose one of {IMAGE_STORAGES}"
            )
