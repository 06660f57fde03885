"""Built-in chain models: lookup, structure and physical plausibility."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.kinematics import CHAIN_SPECS, KinematicChain, get_chain_spec, spec

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")


def test_get_chain_spec_known_names() -> None:
    assert set(CHAIN_SPECS) == {"sim_arm", "so100", "koch", "moss"}
    for name, chain_spec in CHAIN_SPECS.items():
        assert get_chain_spec(name) is chain_spec
        assert chain_spec.name == name
    assert get_chain_spec("sim_arm") is spec.SIM_ARM
    assert get_chain_spec("SO-100") is get_chain_spec("so100")
    assert get_chain_spec("Sim-Arm") is spec.SIM_ARM


def test_get_chain_spec_unknown_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown chain 'ur5'.*koch, moss, sim_arm, so100"):
        get_chain_spec("ur5")


@pytest.mark.parametrize("name", sorted(CHAIN_SPECS))
def test_model_structure(name: str) -> None:
    chain_spec = get_chain_spec(name)
    assert chain_spec.joint_names == ARM_JOINTS
    for joint in chain_spec.joints:
        assert joint.lower < joint.upper
        assert joint.upper - joint.lower <= 2 * np.pi + 1e-9
        assert np.linalg.norm(joint.axis) == pytest.approx(1.0)


@pytest.mark.parametrize("name", sorted(CHAIN_SPECS))
def test_model_workspace_is_desk_arm_sized(name: str) -> None:
    # These are all small desk arms: reach between 0.3 m and 0.6 m, base at the origin.
    chain = KinematicChain(get_chain_spec(name))
    qs = np.random.default_rng(0).uniform(chain.lower, chain.upper, size=(5000, chain.dof))
    reach = np.linalg.norm(chain.fk_batch(qs)[:, :3, 3], axis=1)
    assert 0.3 < reach.max() < 0.6
    # The shoulder_pan joint sits near the base origin, so pan is a rotation about the vertical.
    frames = chain.joint_frames(np.zeros(chain.dof))
    assert np.linalg.norm(frames[0, :3, 3]) < 0.1
    pan_axis = frames[0, :3, :3] @ np.asarray(chain.spec.joints[0].axis)
    assert abs(abs(pan_axis[2]) - 1.0) < 1e-4
