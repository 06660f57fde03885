"""Forward kinematics, geometric Jacobian and damped-least-squares IK for serial revolute chains.

The chain follows the URDF convention documented in :mod:`hilrl.kinematics.spec`: joint ``i``'s
frame is ``parent @ origin_i @ rot(axis_i, q_i)`` and the tool frame is ``last @ tool``. FK runs
every control tick, so everything that does not depend on ``q`` is precomputed once: for each
joint the rotated-joint rotation ``R0 @ rot(axis, q)`` is ``R0 + sin(q) R0 K + (1 - cos q) R0 K^2``
(Rodrigues, with ``K`` the axis' cross-product matrix), so one vectorised numpy expression gives
all local transforms and FK is then ``dof`` 4x4 products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hilrl.kinematics.spec import ChainSpec
from hilrl.kinematics.transforms import make_pose, matrix_from_rpy, rotvec_from_matrix, skew

__all__ = ["IKResult", "KinematicChain"]

# Metres of position error that weigh as much as one radian of orientation error in the IK cost.
# 0.1 m/rad matches the default tolerances (1e-4 m vs 1e-3 rad) and the arms' reach (~0.3 m).
ROTATION_WEIGHT = 0.1
# Largest joint change (radians) one IK step may make; keeps the linearisation honest.
MAX_STEP = 1.0
# Bounds on the adaptive (Levenberg-Marquardt) damping; above the upper one an attempt is stuck.
MIN_DAMPING = 1e-6
MAX_DAMPING = 10.0
# An attempt is stuck when its cost fell by less than this fraction over STALL_WINDOW iterations.
STALL_FRACTION = 0.1
STALL_WINDOW = 6


@dataclass(frozen=True)
class IKResult:
    """Outcome of :meth:`KinematicChain.ik`; ``q`` is always inside the joint limits."""

    q: np.ndarray
    """Best joint configuration found, shape (dof,)."""
    success: bool
    """True when both errors are within the requested tolerances."""
    position_error: float
    """Distance (metres) between the tool point at ``q`` and the target position."""
    rotation_error: float
    """Angle (radians) between the tool orientation at ``q`` and the target (0.0 when position_only)."""
    iterations: int
    """Solver iterations used, summed over all restarts."""


class KinematicChain:
    """Kinematics of one :class:`ChainSpec` (revolute joints only)."""

    def __init__(self, spec: ChainSpec) -> None:
        if spec.dof == 0:
            raise ValueError(f"chain '{spec.name}' has no joints")
        self.spec = spec
        self.dof = spec.dof
        self.lower = np.array([j.lower for j in spec.joints], dtype=float)
        self.upper = np.array([j.upper for j in spec.joints], dtype=float)
        for j in spec.joints:
            if not (math.isfinite(j.lower) and math.isfinite(j.upper) and j.lower < j.upper):
                raise ValueError(
                    f"chain '{spec.name}' joint '{j.name}': limits must be finite with "
                    f"lower < upper, got [{j.lower}, {j.upper}]"
                )

        axes = np.array([j.axis for j in spec.joints], dtype=float)
        norms = np.linalg.norm(axes, axis=1)
        if np.any(norms < 1e-9):
            bad = spec.joints[int(np.argmin(norms))].name
            raise ValueError(f"chain '{spec.name}' joint '{bad}': axis must be non-zero")
        self._axes = axes / norms[:, None]

        R0 = np.array([matrix_from_rpy(j.origin_rpy) for j in spec.joints])
        K = np.array([skew(a) for a in self._axes])
        self._R0 = R0  # (dof, 3, 3): origin rotation
        self._R0K = R0 @ K  # times sin(q)
        self._R0K2 = R0 @ K @ K  # times 1 - cos(q)
        # Local homogeneous transforms with the q-independent parts already filled in.
        self._local_template = np.zeros((self.dof, 4, 4))
        self._local_template[:, :3, 3] = np.array([j.origin_xyz for j in spec.joints], dtype=float)
        self._local_template[:, 3, 3] = 1.0
        self._tool = make_pose(spec.tool_xyz, spec.tool_rpy)

    # ------------------------------------------------------------------ forward kinematics
    def _check_q(self, q: np.ndarray, name: str = "q") -> np.ndarray:
        a = np.asarray(q, dtype=float)
        if a.shape != (self.dof,):
            raise ValueError(
                f"{name} must have shape ({self.dof},) for chain '{self.spec.name}', got {a.shape}"
            )
        return a

    def _local(self, q: np.ndarray) -> np.ndarray:
        """Local transforms parent->joint (after the joint's rotation), shape (..., dof, 4, 4)."""
        s = np.sin(q)[..., None, None]
        c = (1.0 - np.cos(q))[..., None, None]
        if q.ndim == 1:
            local = self._local_template.copy()  # much cheaper than broadcast_to + copy
        else:
            local = np.broadcast_to(self._local_template, (*q.shape, 4, 4)).copy()
        local[..., :3, :3] = self._R0 + s * self._R0K + c * self._R0K2
        return local

    def fk(self, q: np.ndarray) -> np.ndarray:
        """Tool pose in the base frame, shape (4, 4)."""
        local = self._local(self._check_q(q))
        T = local[0]
        for i in range(1, self.dof):
            T = T @ local[i]
        return T @ self._tool

    def fk_batch(self, qs: np.ndarray) -> np.ndarray:
        """Tool poses for many configurations: ``qs`` (N, dof) -> (N, 4, 4)."""
        a = np.asarray(qs, dtype=float)
        if a.ndim != 2 or a.shape[1] != self.dof:
            raise ValueError(
                f"qs must have shape (N, {self.dof}) for chain '{self.spec.name}', got {a.shape}"
            )
        local = self._local(a)
        T = local[:, 0]
        for i in range(1, self.dof):
            T = T @ local[:, i]
        return T @ self._tool

    def joint_frames(self, q: np.ndarray) -> np.ndarray:
        """Each joint's frame after its rotation, then the tool frame: shape (dof + 1, 4, 4)."""
        return self._frames(self._check_q(q))

    def _frames(self, q: np.ndarray) -> np.ndarray:
        local = self._local(q)
        out = np.empty((self.dof + 1, 4, 4))
        out[0] = local[0]
        for i in range(1, self.dof):
            np.matmul(out[i - 1], local[i], out=out[i])
        np.matmul(out[self.dof - 1], self._tool, out=out[self.dof])
        return out

    # ------------------------------------------------------------------ Jacobian
    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """Geometric Jacobian in the base frame, shape (6, dof).

        Rows 0-2 map joint velocities to the tool point's linear velocity, rows 3-5 to the tool's
        angular velocity (both in base coordinates).
        """
        return self._jacobian_from_frames(self._frames(self._check_q(q)))

    def _jacobian_from_frames(self, frames: np.ndarray) -> np.ndarray:
        # A joint's axis is fixed in its own frame, including after its own rotation.
        z = np.einsum("nij,nj->ni", frames[: self.dof, :3, :3], self._axes)
        r = frames[self.dof, :3, 3] - frames[: self.dof, :3, 3]
        J = np.empty((6, self.dof))
        zx, zy, zz = z.T
        rx, ry, rz = r.T
        # Explicit cross product z x r: np.cross costs several times more at this size.
        J[0] = zy * rz - zz * ry
        J[1] = zz * rx - zx * rz
        J[2] = zx * ry - zy * rx
        J[3:] = z.T
        return J

    # ------------------------------------------------------------------ inverse kinematics
    def ik(
        self,
        target: np.ndarray,
        q0: np.ndarray,
        *,
        position_only: bool = False,
        pos_tol: float = 1e-4,
        rot_tol: float = 1e-3,
        max_iters: int = 200,
        damping: float = 1e-2,
        restarts: int = 15,
        seed: int = 0,
    ) -> IKResult:
        """Joint configuration placing the tool at ``target``, by damped least squares.

        ``target`` is a (4, 4) pose, or a (3,) position (a (4, 4) pose is also accepted) when
        ``position_only``. Starting from ``q0`` (clipped into the limits), each step solves
        ``(J J^T + lambda^2 I) y = e, dq = J^T y`` on the weighted error (orientation scaled by
        ``ROTATION_WEIGHT`` metres per radian), clips the step into the joint limits (joints that
        would cross a limit are pinned there and the step re-solved for the others), and adapts
        ``lambda`` Levenberg-Marquardt style starting from ``damping``. When an attempt stalls,
        up to ``restarts`` more start from random configurations inside the limits (from a
        generator seeded with ``seed``, so results are reproducible). ``max_iters`` bounds the
        total iterations over all attempts. An unreachable target gives ``success=False`` with
        the best configuration found; it never raises.
        """
        pos_target, rot_target = self._parse_target(target, position_only)
        q = np.clip(self._check_q(q0, "q0"), self.lower, self.upper)
        for name, value in (("pos_tol", pos_tol), ("rot_tol", rot_tol), ("damping", damping)):
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if max_iters < 0 or restarts < 0:
            raise ValueError(f"max_iters and restarts must be >= 0, got {max_iters}, {restarts}")

        rng: np.random.Generator | None = None
        best: tuple[float, np.ndarray, float, float] | None = None
        iters = 0
        for attempt in range(restarts + 1):
            if attempt > 0:
                if rng is None:
                    rng = np.random.default_rng(seed)
                q = rng.uniform(self.lower, self.upper)
            q, cost, pe, re, iters, converged = self._solve_attempt(
                q, pos_target, rot_target, pos_tol, rot_tol, damping, iters, max_iters
            )
            if best is None or cost < best[0]:
                best = (cost, q, pe, re)
            if converged:
                return IKResult(q, True, pe, re, iters)
            if iters >= max_iters:
                break
        assert best is not None
        _, q, pe, re = best
        return IKResult(q, False, pe, re, iters)

    def _parse_target(
        self, target: np.ndarray, position_only: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        t = np.asarray(target, dtype=float)
        if t.shape == (4, 4):
            pos, rot = t[:3, 3].copy(), (None if position_only else t[:3, :3].copy())
        elif t.shape == (3,) and position_only:
            pos, rot = t.copy(), None
        else:
            want = "(3,) or (4, 4)" if position_only else "(4, 4)"
            raise ValueError(f"target must have shape {want}, got {t.shape}")
        if not np.all(np.isfinite(t)):
            raise ValueError("target must be finite")
        return pos, rot

    def _error(
        self, frames: np.ndarray, pos_target: np.ndarray, rot_target: np.ndarray | None
    ) -> tuple[np.ndarray, float, float]:
        """Weighted error vector (3,) or (6,), position error (m), rotation error (rad)."""
        tool = frames[self.dof]
        ep = pos_target - tool[:3, 3]
        pe = float(np.sqrt(ep @ ep))
        if rot_target is None:
            return ep, pe, 0.0
        # Base-frame rotation vector taking the current orientation to the target.
        er = rotvec_from_matrix(rot_target @ tool[:3, :3].T)
        re = float(np.sqrt(er @ er))
        return np.concatenate((ep, ROTATION_WEIGHT * er)), pe, re

    def _solve_attempt(
        self,
        q: np.ndarray,
        pos_target: np.ndarray,
        rot_target: np.ndarray | None,
        pos_tol: float,
        rot_tol: float,
        damping: float,
        iters: int,
        max_iters: int,
    ) -> tuple[np.ndarray, float, float, float, int, bool]:
        """One damped-least-squares descent; returns (q, cost, pe, re, iters, converged)."""
        rows = 3 if rot_target is None else 6
        eye = np.eye(rows)
        frames = self._frames(q)
        e, pe, re = self._error(frames, pos_target, rot_target)
        cost = float(e @ e)
        lam = damping
        history = [cost]
        while True:
            if pe <= pos_tol and re <= rot_tol:
                return q, cost, pe, re, iters, True
            if iters >= max_iters or lam > MAX_DAMPING:
                return q, cost, pe, re, iters, False
            iters += 1
            J = self._jacobian_from_frames(frames)[:rows]
            if rot_target is not None:
                J[3:] *= ROTATION_WEIGHT
            dq = J.T @ np.linalg.solve(J @ J.T + (lam * lam) * eye, e)
            q_new = self._limited_step(q, dq, J, e, lam, eye)
            frames_new = self._frames(q_new)
            e_new, pe_new, re_new = self._error(frames_new, pos_target, rot_target)
            cost_new = float(e_new @ e_new)
            if cost_new < cost:
                q, frames, e, pe, re, cost = q_new, frames_new, e_new, pe_new, re_new, cost_new
                lam = max(lam * 0.5, MIN_DAMPING)
            else:
                lam *= 10.0
            history.append(cost)
            if (
                len(history) > STALL_WINDOW
                and cost > (1.0 - STALL_FRACTION) * history[-STALL_WINDOW - 1]
            ):
                return q, cost, pe, re, iters, False

    def _limited_step(
        self,
        q: np.ndarray,
        dq: np.ndarray,
        J: np.ndarray,
        e: np.ndarray,
        lam: float,
        eye: np.ndarray,
    ) -> np.ndarray:
        """Apply ``dq`` within the limits: pin joints that would cross, re-solve for the rest."""
        biggest = float(np.max(np.abs(dq)))
        if biggest > MAX_STEP:
            dq = dq * (MAX_STEP / biggest)
        q_new = q + dq
        out = (q_new < self.lower) | (q_new > self.upper)
        if not np.any(out):
            return q_new
        q_pinned = np.clip(q_new, self.lower, self.upper)
        free = ~out
        if np.any(free):
            # Remove the pinned joints' motion from the error, then solve with the free ones.
            Jf = J[:, free]
            e_rest = e - J[:, out] @ (q_pinned[out] - q[out])
            dqf = Jf.T @ np.linalg.solve(Jf @ Jf.T + (lam * lam) * eye, e_rest)
            biggest = float(np.max(np.abs(dqf)))
            if biggest > MAX_STEP:
                dqf = dqf * (MAX_STEP / biggest)
            q_pinned[free] = q[free] + dqf
        return np.clip(q_pinned, self.lower, self.upper)
