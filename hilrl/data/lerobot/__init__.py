"""LeRobotDataset v3.0 reader and writer (v2.x readable), built on pyarrow and PyAV.

See ``docs/dataset_format.md`` for the on-disk layout and the sources of each fact.
"""

from hilrl.data.lerobot.errors import DatasetError, FeatureError, FrameError
from hilrl.data.lerobot.features import Feature, hilrl_features
from hilrl.data.lerobot.reader import EpisodeInfo, LeRobotDatasetReader, VideoSegment
from hilrl.data.lerobot.transitions import TransitionArrays, iter_transitions, make_transitions
from hilrl.data.lerobot.writer import DatasetWriter

__all__ = [
    "DatasetError",
    "DatasetWriter",
    "EpisodeInfo",
    "Feature",
    "FeatureError",
    "FrameError",
    "LeRobotDatasetReader",
    "TransitionArrays",
    "VideoSegment",
    "hilrl_features",
    "iter_transitions",
    "make_transitions",
]
