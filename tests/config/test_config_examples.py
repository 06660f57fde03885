"""Every example config under configs/ means what it says; bad values name their field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hilrl.config.loader import ConfigError, load_config, save_config, to_dict
from hilrl.config.root import RootConfig
from hilrl.policies.sac_policy import ActionSpec
from hilrl.runtime.specs import specs_from_config
from hilrl.types import IMAGE_PREFIX

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXAMPLES = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_example_configs() -> None:
    assert len(EXAMPLES) >= 4


def _leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(dotted path, value) of every value a config file sets."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _leaves(value, (*path, str(key)))
    else:
        yield path, node


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_value_an_example_sets_survives_the_typed_build(path: Path) -> None:
    written = yaml.safe_load(path.read_text())
    built = to_dict(load_config(RootConfig, path))
    checked = 0
    for keys, value in _leaves(written):
        node: Any = built
        for key in keys:
            assert isinstance(node, dict) and key in node, f"{'.'.join(keys)} was dropped"
            node = node[key]
        assert node == value, f"{'.'.join(keys)}: the file says {value!r}, the config {node!r}"
        checked += 1
    assert checked >= 5  # every example sets several fields


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_saved_and_loaded_again_is_the_same_config(path: Path, tmp_path: Path) -> None:
    cfg = load_config(RootConfig, path)
    save_config(cfg, tmp_path / "again.yaml")
    assert load_config(RootConfig, tmp_path / "again.yaml") == cfg


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_an_example_builds_the_env_it_names(path: Path) -> None:
    """The env's spaces follow the file: its cameras at their size, its action layout.

    Built as the learner builds it: the sim, or a real arm's shape-only stand-in.
    """
    cfg = load_config(RootConfig, path)
    env = cfg.env
    obs, act = specs_from_config(cfg)
    size = env.images.resize or (env.robot.camera_height, env.robot.camera_width)
    cameras = env.robot.cameras if env.use_cameras else ()
    assert dict(obs.image_shapes) == {f"{IMAGE_PREFIX}{c}": (*size, 3) for c in cameras}
    assert obs.state_dim > 0
    assert env.action.control_mode == "ee_delta"  # what every example drives
    rotation = 3 if env.action.ee_rotation else 0
    assert act == ActionSpec(3 + rotation + int(env.action.use_gripper), env.action.use_gripper)


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
