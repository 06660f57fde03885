"""Every example config under configs/ loads and validates; bad values name their field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hilrl.config.loader import ConfigError, load_config
from hilrl.config.root import RootConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXAMPLES = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_example_configs() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_loads_and_validates(path: Path) -> None:
    cfg = load_config(RootConfig, path)
    assert cfg.env.fps > 0
    # the file's own values survive the typed build (spot check: a section it sets)
    text = path.read_text()
    if "task: push_cube" in text:
        assert cfg.env.robot.task == "push_cube"
    if "device: sim" in text:
        assert cfg.teleop.device == "sim"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("--env.fps=0", "env.fps"),
        ("--env.fps=fast", "env.fps"),
        ("--env.workspace.low=[0.3, 0.0, 0.0]", "env.workspace.high"),
        ("--env.robot.task=juggle", "env.robot.task"),
        ("--env.mode=dance", "env.mode"),
        ("--env.images.crops={front: [0, 0, 500, 10]}", "env.images.crops"),
        ("--learning.sac.utd_ratio=0", "learning.sac.utd_ratio"),
        ("--teleop.device=joystick9000", "teleop.device"),
        ("--env.nope=1", "env.nope"),
    ],
)
def test_bad_values_name_the_dotted_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(RootConfig, CONFIGS / "sim_pick_cube.yaml", [override])
    assert info.value.field.startswith(field), str(info.value)


def test_unreachable_reset_pose_is_refused_before_anything_moves() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(RootConfig, None, ["--env.reset.ee_position=[2.0, 0.0, 0.1]"])
    assert info.value.field.startswith("env.reset")
