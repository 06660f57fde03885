"""Shared helpers of the runtime tests: a tiny state-only pick-cube run config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hilrl.config.loader import build, deep_merge
from hilrl.config.root import RootConfig


def tiny_config_data(run_dir: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A fast run: state-only pick-cube, short episodes, small networks and batches."""
    base: dict[str, Any] = {
        "env": {
            "robot": {"type": "sim", "task": "pick_cube"},
            "use_cameras": False,
            "episode_time_s": 1.0,
        },
        "teleop": {"device": "sim"},
        "learning": {
            "device": "cpu",
            "sac": {"hidden_dims": [16, 16], "utd_ratio": 1},
            "replay": {
                "batch_size": 8,
                "capacity": 1000,
                "demo_capacity": 1000,
                "intervention_capacity": 1000,
                "prefetch": 0,
            },
            "checkpoint": {"every_steps": 40, "keep_last": 2},
        },
        "transport": {
            "port": 0,
            "spool_dir": "",
            "flush_interval_s": 0.05,
            "batch_size": 8,
            "handshake_timeout_s": 2.0,
            "backoff_initial_s": 0.05,
            "backoff_max_s": 0.5,
            "close_timeout_s": 5.0,
        },
        "run": {"output_dir": str(run_dir), "total_env_steps": 120, "log_every_s": 0.3},
        "train": {
            "num_actors": 1,
            "warmup_transitions": 20,
            "publish_every_s": 0.2,
            "num_demo_episodes": 2,
            "weights_timeout_s": 60.0,
            "shutdown_timeout_s": 30.0,
            "final_eval_episodes": 0,
        },
    }
    return deep_merge(base, sections)


def tiny_config(run_dir: Path, **sections: dict[str, Any]) -> RootConfig:
    return build(RootConfig, tiny_config_data(run_dir, **sections))


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path
