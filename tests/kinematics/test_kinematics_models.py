"""Built-in chain models: lookup, structure and physical plausibility."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.kinematics import CHAIN_SPECS, KinematicChain, get_chain_spec, models, spec
from hilrl.kinematics.transforms import make_pose

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


# A "reach forward" pose per model, from each arm's own description: the SO-100 and Koch
# URDF zero poses lie stretched out in front of the base, the SO-100 pose (0, 1.45, -1.21,
# 0.98, 0) holds the gripper over the table pointing down, and the sim arm and Moss (straight
# up at zero) lean forward with shoulder_lift = +90 deg or hold the sim's home pose.
REACH_FORWARD = {
    "sim_arm": [(0.0, np.pi / 2, 0.0, 0.0, 0.0), (0.0, 0.126, 1.164, 1.851, 0.0)],
    "so100": [(0.0, 0.0, 0.0, 0.0, 0.0), (0.0, 1.45, -1.21, 0.98, 0.0)],
    "koch": [(0.0, 0.0, 0.0, 0.0, 0.0), (0.0, 1.2, 1.5, 1.3, 0.0)],
    "moss": [(0.0, np.pi / 2, 0.0, 0.0, 0.0), (0.0, 0.5, 1.2, 1.2, 0.0)],
}


@pytest.mark.parametrize("name", sorted(CHAIN_SPECS))
def test_every_model_reaches_forward_along_plus_x(name: str) -> None:
    """The spec's base convention (x forward, z up) holds for every model.

    A model missing from REACH_FORWARD fails here: say where it reaches forward.
    """
    chain = KinematicChain(get_chain_spec(name))
    for q in REACH_FORWARD[name]:
        q_arr = np.asarray(q)
        assert np.all(q_arr >= chain.lower) and np.all(q_arr <= chain.upper), q
        x, y, z = chain.fk(q_arr)[:3, 3]
        assert x > 0.1, f"{name} at {q}: tool at x = {x:.3f}, not in front of the base"
        assert abs(y) < 0.02 and abs(y) < 0.1 * x, (
            f"{name} at {q}: tool off to the side, y = {y:.3f}"
        )
        assert z > 0.0, f"{name} at {q}: tool below the mounting surface, z = {z:.3f}"


@pytest.mark.parametrize("name", sorted(CHAIN_SPECS))
def test_at_zero_pan_the_arm_moves_in_the_x_z_plane(name: str) -> None:
    # Whatever the other joints do, with the pan centred the tool stays (within the small
    # lateral offsets of the links) in the vertical plane through the x axis, and most of
    # the configurations put it in front of the base rather than behind it.
    chain = KinematicChain(get_chain_spec(name))
    qs = np.random.default_rng(1).uniform(chain.lower, chain.upper, size=(2000, chain.dof))
    qs[:, 0] = 0.0
    tool = chain.fk_batch(qs)[:, :3, 3]
    assert np.max(np.abs(tool[:, 1])) < 0.02
    assert np.mean(tool[:, 0] > 0.0) > 0.6
    assert np.max(tool[:, 0]) > 0.3


@pytest.mark.parametrize(
    ("turned", "urdf"), [(models.SO100, models._SO100_URDF), (models.KOCH, models._KOCH_URDF)]
)
def test_urdf_chains_are_the_urdf_turned_a_quarter_turn(
    turned: spec.ChainSpec, urdf: spec.ChainSpec
) -> None:
    # Same joints, same angles: only the base is turned, so tool poses are Rz(90 deg) @ URDF.
    assert turned.joints[1:] == urdf.joints[1:] and turned.tool_xyz == urdf.tool_xyz
    assert [(j.axis, j.lower, j.upper) for j in turned.joints] == [
        (j.axis, j.lower, j.upper) for j in urdf.joints
    ]
    base = make_pose((0.0, 0.0, 0.0), (0.0, 0.0, np.pi / 2))
    a, b = KinematicChain(turned), KinematicChain(urdf)
    for q in np.random.default_rng(2).uniform(a.lower, a.upper, size=(50, a.dof)):
        np.testing.assert_allclose(a.fk(q), base @ b.fk(q), atol=1e-12)
    # The URDF reached along -y; the model reaches along +x.
    assert b.fk(np.zeros(5))[1, 3] < -0.2 and a.fk(np.zeros(5))[0, 3] > 0.2


@pytest.mark.parametrize("yaw", [-2.0, 0.3, np.pi / 2, np.pi])
def test_with_base_yaw_turns_every_pose_about_the_base_z_axis(yaw: float) -> None:
    chain = spec.ChainSpec(
        "tilted",
        (
            spec.JointSpec("a", (0.03, -0.02, 0.05), origin_rpy=(0.4, -0.3, 0.2), axis=(0, 1, 0)),
            spec.JointSpec("b", (0.0, 0.1, 0.02), origin_rpy=(0.1, 0.0, 0.0), axis=(1, 0, 0)),
        ),
        tool_xyz=(0.0, 0.05, 0.01),
    )
    turned = models.with_base_yaw(chain, yaw)
    assert turned.name == chain.name and turned.joints[1:] == chain.joints[1:]
    base = make_pose((0.0, 0.0, 0.0), (0.0, 0.0, yaw))
    a, b = KinematicChain(turned), KinematicChain(chain)
    for q in np.random.default_rng(3).uniform(-3.0, 3.0, size=(20, 2)):
        np.testing.assert_allclose(a.fk(q), base @ b.fk(q), atol=1e-11)
    with pytest.raises(ValueError, match="no joints"):
        models.with_base_yaw(spec.ChainSpec("empty", ()), yaw)
