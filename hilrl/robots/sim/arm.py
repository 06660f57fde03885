"""The built-in MuJoCo desk arm: a :class:`hilrl.core.Robot` and a :class:`hilrl.core.SimTask`.

Five revolute joints (:data:`hilrl.kinematics.spec.SIM_ARM`) and a parallel gripper whose
two slide fingers are driven together. Servos are MuJoCo position actuators; the servo's
holding torque is modelled as gravity compensation of the arm links (gravity still acts on
the cube, and on a held cube through the fingers).

Joint units: the five arm joints in radians; the gripper joint is the **opening between
the finger pads in metres**, from 0 (closed) to :data:`GRIPPER_MAX_GAP` (open).
Currents are actuator forces: N·m for the arm, N (per finger) for the gripper.

Frames: every position in :meth:`task_state` is in the base frame (z up, x forward; the
table top is z = 0). ``ee`` is the tool frame of the chain spec, between the finger pads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hilrl.config.loader import ConfigError
from hilrl.config.robot import RobotConfig
from hilrl.kinematics.spec import SIM_ARM, ChainSpec
from hilrl.robots.sim import render, tasks
from hilrl.robots.sim.mjcf import CUBE_HALF, GRIPPER_MAX_GAP, build_mjcf

SIM_CAMERAS = ("front", "wrist")
"""Cameras the sim model defines."""

HOME_ARM_POSITIONS = (0.0, 0.126, 1.164, 1.851, 0.0)
"""Arm home pose: the tool ~12 cm above the table at x = 14 cm, pointing straight down."""


class SimArm:
    """The MuJoCo desk arm. Build it from a :class:`RobotConfig` with ``type='sim'``::

        arm = SimArm(cfg)
        arm.connect()
        arm.reset_task(seed=0)
        arm.send_joint_targets(q)
        arm.advance(0.1)
        frames = arm.read_cameras()

    ``model`` / ``data`` are the live ``mujoco.MjModel`` / ``mujoco.MjData`` (for tests and
    ground truth); nothing else should write to them.
    """

    def __init__(self, cfg: RobotConfig, spec: ChainSpec = SIM_ARM) -> None:
        cfg.validate()
        if cfg.type != "sim":
            raise ConfigError("type", cfg.type, "SimArm needs robot.type='sim'")
        for cam in cfg.cameras:
            if cam not in SIM_CAMERAS:
                raise ConfigError(
                    "cameras", cfg.cameras, f"unknown sim camera {cam!r}; choose from {SIM_CAMERAS}"
                )
        self.cfg = cfg
        self.spec = spec
        self.task = cfg.task
        self.joint_names: tuple[str, ...] = (*spec.joint_names, "gripper")
        self.joint_units: tuple[str, ...] = ("rad",) * spec.dof + ("m",)
        self.camera_names: tuple[str, ...] = tuple(cfg.cameras)

        render.ensure_backend(cfg.render_backend, need_render=bool(cfg.cameras))
        self.mujoco: Any = render.import_mujoco()
        mj = self.mujoco
        xml = build_mjcf(
            spec,
            task=cfg.task,
            physics_dt=cfg.physics_dt,
            camera_width=cfg.camera_width,
            camera_height=cfg.camera_height,
        )
        self.model: Any = mj.MjModel.from_xml_string(xml)
        self.data: Any = mj.MjData(self.model)

        model = self.model
        self._arm_qpos = np.array([model.joint(n).qposadr[0] for n in spec.joint_names])
        self._arm_qvel = np.array([model.joint(n).dofadr[0] for n in spec.joint_names])
        self._finger_qpos = np.array(
            [model.joint(f"finger_{s}").qposadr[0] for s in ("left", "right")]
        )
        self._finger_qvel = np.array(
            [model.joint(f"finger_{s}").dofadr[0] for s in ("left", "right")]
        )
        self._arm_act = np.array([model.actuator(n).id for n in spec.joint_names])
        self._finger_act = np.array([model.actuator(f"finger_{s}").id for s in ("left", "right")])
        self._ee_site = model.site("ee").id
        self._cube_qpos = model.joint("cube").qposadr[0]
        self._cube_qvel = model.joint("cube").dofadr[0]
        self._cube_geom = model.geom("cube").id
        self._finger_geoms = (model.geom("finger_left").id, model.geom("finger_right").id)
        self._target_mocap = model.body("target").mocapid[0] if cfg.task == "push_cube" else -1

        self._lower = np.array([*(j.lower for j in spec.joints), 0.0])
        self._upper = np.array([*(j.upper for j in spec.joints), GRIPPER_MAX_GAP])
        self._home = np.clip(
            np.array([*HOME_ARM_POSITIONS, GRIPPER_MAX_GAP]), self._lower, self._upper
        )
        self._rng = np.random.default_rng()
        self._renderer: Any = None
        self._connected = False
        self.reset_task()

    # ----------------------------------------------------------------- Robot interface
    @property
    def joint_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper): the chain's limits, then the gripper opening [0, GRIPPER_MAX_GAP] m."""
        return self._lower.copy(), self._upper.copy()

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        """Free the renderer's GL context. Safe to call twice."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._connected = False

    def _require_connected(self) -> None:
        if not self._connected:
            raise RuntimeError("SimArm is not connected; call connect() first")

    def read_joint_positions(self) -> np.ndarray:
        self._require_connected()
        return self._joint_positions()

    def read_joint_velocities(self) -> np.ndarray:
        self._require_connected()
        qvel = self.data.qvel
        return np.array([*qvel[self._arm_qvel], qvel[self._finger_qvel].sum()])

    def read_joint_currents(self) -> np.ndarray:
        """Actuator forces: N·m per arm joint, then the mean finger force in N."""
        self._require_connected()
        force = self.data.actuator_force
        return np.array([*force[self._arm_act], force[self._finger_act].mean()])

    def read_cameras(self) -> dict[str, np.ndarray]:
        """Render every configured camera now: uint8 (camera_height, camera_width, 3) RGB."""
        self._require_connected()
        if not self.camera_names:
            return {}
        if self._renderer is None:
            self._renderer = render.make_renderer(
                self.mujoco, self.model, self.cfg.camera_height, self.cfg.camera_width
            )
        frames: dict[str, np.ndarray] = {}
        for name in self.camera_names:
            self._renderer.update_scene(self.data, camera=name)
            frames[name] = self._renderer.render()
        return frames

    def send_joint_targets(self, targets: np.ndarray) -> None:
        """Set the servo targets (clipped to ``joint_limits``); the gripper target is an opening."""
        self._require_connected()
        q = np.asarray(targets, dtype=np.float64)
        if q.shape != (len(self.joint_names),):
            raise ValueError(
                f"joint targets: expected shape ({len(self.joint_names)},), got {q.shape}"
            )
        if not np.all(np.isfinite(q)):
            raise ValueError(f"joint targets must be finite, got {q}")
        self._set_ctrl(np.clip(q, self._lower, self._upper))

    def advance(self, dt: float) -> None:
        """Step physics for round(dt / physics_dt) substeps (at least one)."""
        self._require_connected()
        if not dt > 0:
            raise ValueError(f"advance: dt must be positive, got {dt}")
        nstep = max(1, round(dt / self.model.opt.timestep))
        self.mujoco.mj_step(self.model, self.data, nstep=nstep)
        if not np.all(np.isfinite(self.data.qpos)):
            raise RuntimeError("sim physics diverged (non-finite joint positions)")

    # -------------------------------------------------------------- SimTask interface
    def reset_task(self, seed: int | None = None) -> None:
        """Arm at home with the gripper open, objects at a layout drawn from ``seed``.

        The same seed gives the same layout; ``seed=None`` continues the arm's own stream.
        """
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        layout = tasks.sample_layout(self.task, rng, self.cfg.randomize)
        mj = self.mujoco
        mj.mj_resetData(self.model, self.data)
        self._teleport(self._home)
        adr = self._cube_qpos
        self.data.qpos[adr : adr + 3] = layout.cube_pos
        self.data.qpos[adr + 3 : adr + 7] = tasks.yaw_quat(layout.cube_yaw)
        if layout.target_pos is not None:
            self.data.mocap_pos[self._target_mocap] = layout.target_pos
        mj.mj_forward(self.model, self.data)

    def task_success(self) -> bool:
        """pick_cube: cube held by both fingers and lifted; push_cube: cube resting on target."""
        cube_pos = self.data.qpos[self._cube_qpos : self._cube_qpos + 3]
        if self.task == "push_cube":
            return tasks.push_succeeded(cube_pos, self.data.mocap_pos[self._target_mocap])
        left, right = self._finger_touches()
        return tasks.pick_succeeded(cube_pos, left, right)

    def task_state(self) -> dict[str, np.ndarray]:
        """Ground truth in the base frame (copies).

        Keys: ``ee_pos`` (3,), ``ee_quat`` (4, w x y z), ``ee_mat`` (3, 3), ``cube_pos`` (3,),
        ``cube_quat`` (4,), ``cube_vel`` (6, linear then angular), ``gripper_opening`` (1,)
        metres, ``cube_grasped`` (1,) 1.0 when both fingers touch the cube, ``cube_lift`` (1,)
        height of the cube's bottom above the table, and for push_cube ``target_pos`` (3,).
        """
        data = self.data
        ee_mat = data.site_xmat[self._ee_site].reshape(3, 3).copy()
        ee_quat = np.zeros(4)
        self.mujoco.mju_mat2Quat(ee_quat, data.site_xmat[self._ee_site])
        adr = self._cube_qpos
        left, right = self._finger_touches()
        state = {
            "ee_pos": data.site_xpos[self._ee_site].copy(),
            "ee_quat": ee_quat,
            "ee_mat": ee_mat,
            "cube_pos": data.qpos[adr : adr + 3].copy(),
            "cube_quat": data.qpos[adr + 3 : adr + 7].copy(),
            "cube_vel": data.qvel[self._cube_qvel : self._cube_qvel + 6].copy(),
            "gripper_opening": np.array([data.qpos[self._finger_qpos].sum()]),
            "cube_grasped": np.array([float(left and right)]),
            "cube_lift": np.array([data.qpos[adr + 2] - CUBE_HALF]),
        }
        if self.task == "push_cube":
            state["target_pos"] = data.mocap_pos[self._target_mocap].copy()
        return state

    # ------------------------------------------------------------- sim-only helpers
    @property
    def home_joint_positions(self) -> np.ndarray:
        """The reset pose (arm joints in rad, then the open gripper gap in m)."""
        return self._home.copy()

    def set_joint_positions(self, q: np.ndarray) -> None:
        """Teleport the joints to ``q`` (clipped to limits) at rest, with matching servo targets."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != (len(self.joint_names),):
            raise ValueError(
                f"joint positions: expected shape ({len(self.joint_names)},), got {q.shape}"
            )
        self._teleport(np.clip(q, self._lower, self._upper))
        self.mujoco.mj_forward(self.model, self.data)

    def set_cube_pose(self, pos: np.ndarray, quat: np.ndarray | None = None) -> None:
        """Teleport the cube (at rest) to ``pos`` with orientation ``quat`` (w, x, y, z)."""
        adr = self._cube_qpos
        self.data.qpos[adr : adr + 3] = np.asarray(pos, dtype=np.float64)
        if quat is not None:
            self.data.qpos[adr + 3 : adr + 7] = np.asarray(quat, dtype=np.float64) / np.linalg.norm(
                quat
            )
        self.data.qvel[self._cube_qvel : self._cube_qvel + 6] = 0.0
        self.mujoco.mj_forward(self.model, self.data)

    def _joint_positions(self) -> np.ndarray:
        qpos = self.data.qpos
        return np.array([*qpos[self._arm_qpos], qpos[self._finger_qpos].sum()])

    def _teleport(self, q: np.ndarray) -> None:
        self.data.qpos[self._arm_qpos] = q[:-1]
        self.data.qpos[self._finger_qpos] = q[-1] / 2
        self.data.qvel[self._arm_qvel] = 0.0
        self.data.qvel[self._finger_qvel] = 0.0
        self._set_ctrl(q)

    def _set_ctrl(self, q: np.ndarray) -> None:
        self.data.ctrl[self._arm_act] = q[:-1]
        self.data.ctrl[self._finger_act] = q[-1] / 2

    def _finger_touches(self) -> tuple[bool, bool]:
        """Whether the left / right finger pad is in contact with the cube."""
        data = self.data
        ncon = data.ncon
        if ncon == 0:
            return False, False
        g1 = data.contact.geom1[:ncon]
        g2 = data.contact.geom2[:ncon]
        cube = self._cube_geom
        touches = []
        for finger in self._finger_geoms:
            touches.append(
                bool(np.any(((g1 == cube) & (g2 == finger)) | ((g1 == finger) & (g2 == cube))))
            )
        return touches[0], touches[1]
