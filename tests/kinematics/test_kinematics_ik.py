"""Inverse kinematics: round trips through FK, joint limits, unreachable targets."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.kinematics import CHAIN_SPECS, SIM_ARM, IKResult, KinematicChain
from hilrl.kinematics.transforms import make_pose, rotation_angle_between

MODEL_NAMES = sorted(CHAIN_SPECS)
SAMPLES = 200


def _inside(chain: KinematicChain, q: np.ndarray) -> bool:
    return bool(np.all(q >= chain.lower) and np.all(q <= chain.upper))


def _errors(chain: KinematicChain, q: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    T = chain.fk(q)
    return (
        float(np.linalg.norm(T[:3, 3] - target[:3, 3])),
        rotation_angle_between(T[:3, :3], target[:3, :3]),
    )


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("position_only", [True, False], ids=["position", "pose"])
def test_ik_round_trip_from_a_different_random_start(name: str, position_only: bool) -> None:
    chain = KinematicChain(CHAIN_SPECS[name])
    rng = np.random.default_rng(2024)
    reached = 0
    for _ in range(SAMPLES):
        q_true = rng.uniform(chain.lower, chain.upper)
        target = chain.fk(q_true)
        q0 = rng.uniform(chain.lower, chain.upper)
        result = chain.ik(
            target[:3, 3] if position_only else target, q0, position_only=position_only
        )
        assert _inside(chain, result.q), f"{name}: IK left the joint limits: {result.q}"
        pe, re = _errors(chain, result.q, target)
        # The reported errors are the true ones.
        assert result.position_error == pytest.approx(pe, abs=1e-9)
        if position_only:
            assert result.rotation_error == 0.0
            ok = pe <= 1e-3
        else:
            assert result.rotation_error == pytest.approx(re, abs=1e-9)
            ok = pe <= 1e-3 and re <= 0.01
        if result.success:
            assert pe <= 1e-4 + 1e-12 and (position_only or re <= 1e-3 + 1e-12)
        reached += ok
    assert reached >= 0.95 * SAMPLES, f"{name}: reached only {reached}/{SAMPLES}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_ik_tracks_small_moves_from_the_current_configuration(name: str) -> None:
    # The control-loop case: the target is a small step from where the arm is.
    chain = KinematicChain(CHAIN_SPECS[name])
    rng = np.random.default_rng(11)
    margin = 0.1
    for _ in range(30):
        q = rng.uniform(chain.lower + margin, chain.upper - margin)
        target = chain.fk(q + rng.normal(0.0, 0.02, size=chain.dof))
        result = chain.ik(target, q)
        assert result.success
        assert result.iterations <= 10
        # It stays on the same branch: no large jumps for a small move.
        assert np.max(np.abs(result.q - q)) < 0.2


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("position_only", [True, False], ids=["position", "pose"])
def test_unreachable_target_fails_without_raising(name: str, position_only: bool) -> None:
    chain = KinematicChain(CHAIN_SPECS[name])
    far = make_pose((5.0, 0.0, 0.5), (0.0, 0.0, 0.0))
    result = chain.ik(
        far[:3, 3] if position_only else far, np.zeros(chain.dof), position_only=position_only
    )
    assert isinstance(result, IKResult)
    assert result.success is False
    assert _inside(chain, result.q)
    assert result.position_error > 4.0
    assert result.iterations <= 200
    # The best effort points at the target: closer than the zero configuration.
    assert result.position_error < np.linalg.norm(chain.fk(np.zeros(chain.dof))[:3, 3] - far[:3, 3])


def test_start_outside_limits_is_clipped_and_result_stays_inside() -> None:
    chain = KinematicChain(SIM_ARM)
    q0 = chain.upper + 1.0
    target = chain.fk(np.array([0.3, 0.5, 1.0, 0.2, -0.4]))
    result = chain.ik(target, q0)
    assert _inside(chain, result.q)
    assert result.success


def test_target_at_joint_limit_is_reached() -> None:
    chain = KinematicChain(SIM_ARM)
    q_true = chain.upper.copy()
    q_true[0] = 0.0
    target = chain.fk(q_true)
    result = chain.ik(target, np.zeros(chain.dof))
    assert result.success
    assert _inside(chain, result.q)


def test_ik_is_deterministic() -> None:
    chain = KinematicChain(SIM_ARM)
    target = make_pose((5.0, 1.0, 0.0), (0.0, 1.0, 0.0))
    a = chain.ik(target, np.zeros(5))
    b = chain.ik(target, np.zeros(5))
    np.testing.assert_array_equal(a.q, b.q)
    assert a.iterations == b.iterations


def test_position_only_accepts_a_pose_and_ignores_its_rotation() -> None:
    chain = KinematicChain(SIM_ARM)
    target = chain.fk(np.array([0.2, 0.4, 0.8, 0.1, 0.0]))
    target[:3, :3] = np.diag([1.0, -1.0, -1.0])  # an orientation this pose does not have
    result = chain.ik(target, np.zeros(5), position_only=True)
    assert result.success
    assert result.rotation_error == 0.0


def test_bad_ik_inputs_raise_value_error() -> None:
    chain = KinematicChain(SIM_ARM)
    with pytest.raises(ValueError, match="target"):
        chain.ik(np.zeros(3), np.zeros(5))  # a position needs position_only
    with pytest.raises(ValueError, match="target"):
        chain.ik(np.full((4, 4), np.nan), np.zeros(5))
    with pytest.raises(ValueError, match="q0"):
        chain.ik(np.eye(4), np.zeros(4))
    with pytest.raises(ValueError, match="pos_tol"):
        chain.ik(np.eye(4), np.zeros(5), pos_tol=0.0)
    with pytest.raises(ValueError, match="damping"):
        chain.ik(np.eye(4), np.zeros(5), damping=-1.0)
