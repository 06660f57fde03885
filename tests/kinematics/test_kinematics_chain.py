"""FK and Jacobian of KinematicChain against hand computation, finite differences and MuJoCo."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from hilrl.kinematics import CHAIN_SPECS, SIM_ARM, ChainSpec, JointSpec, KinematicChain
from hilrl.kinematics.transforms import make_pose, rotation_about_axis

MODEL_NAMES = sorted(CHAIN_SPECS)


def _mjcf(spec: ChainSpec) -> str:
    """MJCF of the chain: nested bodies at the joint origins with a hinge each, tool as a site.

    MuJoCo converts the fixed-axis rpy itself (eulerseq="XYZ"), so this oracle shares no code
    with hilrl.kinematics.
    """
    opened = []
    for j in spec.joints:
        x, y, z = j.origin_xyz
        r, p, yaw = j.origin_rpy
        ax, ay, az = j.axis
        opened.append(
            f'<body name="{j.name}" pos="{x} {y} {z}" euler="{r} {p} {yaw}">'
            '<inertial pos="0 0 0" mass="0.1" diaginertia="1e-4 1e-4 1e-4"/>'
            f'<joint name="{j.name}" type="hinge" axis="{ax} {ay} {az}"/>'
        )
    tx, ty, tz = spec.tool_xyz
    tr, tp, tyaw = spec.tool_rpy
    site = f'<site name="tool" pos="{tx} {ty} {tz}" euler="{tr} {tp} {tyaw}"/>'
    body_close = "</body>" * len(spec.joints)
    return (
        '<mujoco><compiler angle="radian" eulerseq="XYZ"/><worldbody>'
        + "".join(opened)
        + site
        + body_close
        + "</worldbody></mujoco>"
    )


@pytest.fixture(params=MODEL_NAMES)
def chain(request: pytest.FixtureRequest) -> KinematicChain:
    return KinematicChain(CHAIN_SPECS[request.param])


def _random_qs(chain: KinematicChain, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(chain.lower, chain.upper, size=(n, chain.dof))


def test_sim_arm_zero_configuration_by_hand() -> None:
    chain = KinematicChain(SIM_ARM)
    T = chain.fk(np.zeros(5))
    # Straight up: the sum of the z offsets 0.06 + 0.045 + 0.12 + 0.13 + 0.05 + 0.09.
    np.testing.assert_allclose(T[:3, 3], [0.0, 0.0, 0.495], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-12)


def test_sim_arm_bent_configurations_by_hand() -> None:
    chain = KinematicChain(SIM_ARM)
    # Shoulder lift +90 deg lays the 0.39 m above the shoulder (at z = 0.105) along +x.
    T = chain.fk(np.array([0.0, math.pi / 2, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(T[:3, 3], [0.39, 0.0, 0.105], atol=1e-12)
    np.testing.assert_allclose(T[:3, 2], [1.0, 0.0, 0.0], atol=1e-12)  # tool z along +x
    # Adding pan +90 deg swings that to +y.
    T = chain.fk(np.array([math.pi / 2, math.pi / 2, 0.0, 0.0, 0.0]))
    np.testing.assert_allclose(T[:3, 3], [0.0, 0.39, 0.105], atol=1e-12)
    # Elbow +90 deg: upper arm vertical to z = 0.225, then 0.27 m along +x.
    T = chain.fk(np.array([0.0, 0.0, math.pi / 2, 0.0, 0.0]))
    np.testing.assert_allclose(T[:3, 3], [0.27, 0.0, 0.225], atol=1e-12)
    # Wrist roll only spins the tool about its own (vertical) axis.
    T = chain.fk(np.array([0.0, 0.0, 0.0, 0.0, 0.7]))
    np.testing.assert_allclose(T[:3, 3], [0.0, 0.0, 0.495], atol=1e-12)
    np.testing.assert_allclose(T[:3, :3], rotation_about_axis((0, 0, 1), 0.7), atol=1e-12)


def test_fk_matches_naive_composition(chain: KinematicChain) -> None:
    # Straightforward product of per-joint transforms, as the URDF convention states it.
    for q in _random_qs(chain, 20):
        T = np.eye(4)
        for j, qi in zip(chain.spec.joints, q):
            R = np.eye(4)
            R[:3, :3] = rotation_about_axis(j.axis, qi)
            T = T @ make_pose(j.origin_xyz, j.origin_rpy) @ R
        T = T @ make_pose(chain.spec.tool_xyz, chain.spec.tool_rpy)
        np.testing.assert_allclose(chain.fk(q), T, atol=1e-12)


def test_fk_frames_and_jacobian_match_mujoco(chain: KinematicChain) -> None:
    model = mujoco.MjModel.from_xml_string(_mjcf(chain.spec))
    data = mujoco.MjData(model)
    site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "tool")
    jacp = np.zeros((3, model.nv))
    jacr = np.zeros((3, model.nv))
    for q in _random_qs(chain, 15, seed=3):
        data.qpos[:] = q
        mujoco.mj_forward(model, data)
        T = chain.fk(q)
        np.testing.assert_allclose(T[:3, 3], data.site_xpos[site], atol=1e-9)
        np.testing.assert_allclose(T[:3, :3], data.site_xmat[site].reshape(3, 3), atol=1e-9)
        frames = chain.joint_frames(q)
        for i in range(chain.dof):  # body i + 1 is joint i's body (0 is the world)
            np.testing.assert_allclose(frames[i, :3, 3], data.xpos[i + 1], atol=1e-9)
            np.testing.assert_allclose(frames[i, :3, :3], data.xmat[i + 1].reshape(3, 3), atol=1e-9)
        np.testing.assert_allclose(frames[-1], T, atol=1e-12)
        mujoco.mj_jacSite(model, data, jacp, jacr, site)
        J = chain.jacobian(q)
        np.testing.assert_allclose(J[:3], jacp, atol=1e-9)
        np.testing.assert_allclose(J[3:], jacr, atol=1e-9)


def test_jacobian_matches_finite_differences(chain: KinematicChain) -> None:
    h = 1e-6
    for q in _random_qs(chain, 25, seed=5):
        J = chain.jacobian(q)
        R = chain.fk(q)[:3, :3]
        for i in range(chain.dof):
            dq = np.zeros(chain.dof)
            dq[i] = h
            Tp, Tm = chain.fk(q + dq), chain.fk(q - dq)
            v = (Tp[:3, 3] - Tm[:3, 3]) / (2 * h)
            # Angular velocity: dR/dq R^T is skew(omega).
            W = (Tp[:3, :3] - Tm[:3, :3]) / (2 * h) @ R.T
            w = np.array([W[2, 1] - W[1, 2], W[0, 2] - W[2, 0], W[1, 0] - W[0, 1]]) / 2
            np.testing.assert_allclose(J[:3, i], v, atol=1e-7)
            np.testing.assert_allclose(J[3:, i], w, atol=1e-7)


def test_fk_batch_matches_fk(chain: KinematicChain) -> None:
    qs = _random_qs(chain, 64, seed=7)
    batch = chain.fk_batch(qs)
    assert batch.shape == (64, 4, 4)
    for q, T in zip(qs, batch):
        np.testing.assert_allclose(T, chain.fk(q), atol=1e-12)


def test_chain_attributes(chain: KinematicChain) -> None:
    assert chain.dof == chain.spec.dof == 5
    np.testing.assert_array_equal(chain.lower, [j.lower for j in chain.spec.joints])
    np.testing.assert_array_equal(chain.upper, [j.upper for j in chain.spec.joints])
    assert np.all(chain.lower < chain.upper)


def test_bad_inputs_raise_value_error() -> None:
    chain = KinematicChain(SIM_ARM)
    with pytest.raises(ValueError, match=r"q must have shape \(5,\)"):
        chain.fk(np.zeros(4))
    with pytest.raises(ValueError, match=r"qs must have shape \(N, 5\)"):
        chain.fk_batch(np.zeros(5))
    with pytest.raises(ValueError, match="axis"):
        KinematicChain(ChainSpec("bad", (JointSpec("j", (0.0, 0.0, 0.0), axis=(0.0, 0.0, 0.0)),)))
    with pytest.raises(ValueError, match="limits"):
        KinematicChain(ChainSpec("bad", (JointSpec("j", (0.0, 0.0, 0.0), lower=1.0, upper=0.0),)))
    with pytest.raises(ValueError, match="no joints"):
        KinematicChain(ChainSpec("empty", ()))
