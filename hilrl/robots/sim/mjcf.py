"""Generate the MJCF of the built-in desk arm and its scene from a :class:`ChainSpec`.

One description drives both the analytic kinematics (:mod:`hilrl.kinematics`) and the
physics: every arm body is placed at its joint's ``origin_xyz`` / ``origin_rpy``, every
hinge uses the joint's axis and range, and the ``ee`` site sits at the tool frame. So the
analytic FK and MuJoCo agree by construction, and a test checks that they do.

The model is built from primitive shapes only (no meshes, no textures) and tuned to be
cheap: the arm links do not collide with anything (only the palm and the fingers touch
the cube and the table), shadows and multisampling are off, and the offscreen buffer is
exactly the camera size.

Frames: the world frame is the robot's base frame (z up, x forward); the table top is
the plane z = 0 and the arm is mounted on it at the origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hilrl.kinematics.spec import ChainSpec

CUBE_HALF = 0.015
"""Half the cube's edge (a 3 cm cube)."""
CUBE_MASS = 0.03
"""Cube mass in kg (a 3 cm cube of light plastic)."""
GRIPPER_MAX_GAP = 0.07
"""Largest distance between the finger pads in metres (the gripper joint's upper limit)."""
FINGER_HALF = (0.012, 0.005, 0.024)
"""Finger pad box half sizes in the tool frame: across the jaw, thickness, length."""
FINGER_TIP_Z = 0.012
"""How far the finger tips reach past the tool point along the tool z axis."""
PALM_Z = -0.045
"""Palm centre on the tool z axis (behind the tool point)."""
TARGET_RADIUS = 0.025
"""Radius of the push target disc drawn on the table."""
TABLE_X = (-0.12, 0.42)
"""Table extent along x (forward)."""
TABLE_Y = (-0.3, 0.3)
"""Table extent along y (left)."""
WRIST_CAMERA_POS = (0.04, 0.0, -0.03)
"""Wrist camera position in the tool frame: beside the palm."""
WRIST_CAMERA_LOOKAT = (0.0, 0.0, 0.05)
"""What the wrist camera looks at, in the tool frame: just past the finger tips."""
FRONT_CAMERA_POS = (0.4, -0.17, 0.27)
"""Where the fixed front camera sits: in front of the arm, a little to its right."""
FRONT_CAMERA_LOOKAT = (0.12, 0.0, 0.08)
"""What the front camera looks at: the middle of the workspace."""

ARM_KP = (30.0, 30.0, 25.0, 15.0, 8.0)
"""Position gains (N·m/rad) of the arm servos, shoulder to wrist."""
ARM_KV = (1.5, 1.5, 1.0, 0.5, 0.25)
"""Velocity gains (N·m·s/rad) of the arm servos: close to critical damping."""
ARM_FORCE = (8.0, 8.0, 6.0, 4.0, 2.0)
"""Torque limits (N·m) of the arm servos (a desk arm's servos, generously rounded up)."""
FINGER_KP = 300.0
"""Finger position gain (N/m): squeezing the 3 cm cube shut gives ~4.5 N per finger."""
FINGER_KV = 3.0
"""Finger velocity gain (N·s/m)."""
FINGER_FORCE = 8.0
"""Finger force limit (N)."""

# Collision bits. A pair collides when (a.contype & b.conaffinity) or (b.contype & a.conaffinity).
_TABLE_BITS = 'contype="0" conaffinity="1"'
_CUBE_BITS = 'contype="1" conaffinity="1"'
_GRIPPER_BITS = 'contype="1" conaffinity="0"'  # touches cube and table, never itself
_VISUAL_BITS = 'contype="0" conaffinity="0"'


def _fmt(values: Sequence[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def quat_from_rpy(rpy: Sequence[float] | np.ndarray) -> np.ndarray:
    """Quaternion (w, x, y, z) of R = Rz(yaw) Ry(pitch) Rx(roll), the URDF convention."""
    r, p, y = (0.5 * float(a) for a in rpy)
    cr, sr, cp, sp, cy, sy = (
        math.cos(r),
        math.sin(r),
        math.cos(p),
        math.sin(p),
        math.cos(y),
        math.sin(y),
    )
    return np.array(
        [
            cy * cp * cr + sy * sp * sr,
            cy * cp * sr - sy * sp * cr,
            cy * sp * cr + sy * cp * sr,
            sy * cp * cr - cy * sp * sr,
        ]
    )


def _rotate(quat: np.ndarray, v: Sequence[float]) -> np.ndarray:
    """Rotate vector ``v`` by the unit quaternion ``quat`` (w, x, y, z)."""
    w, u = quat[0], quat[1:]
    vec = np.asarray(v, dtype=float)
    return np.asarray(vec + 2.0 * np.cross(u, np.cross(u, vec) + w * vec))


def _camera_xyaxes(
    pos: Sequence[float], lookat: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """MJCF ``xyaxes`` of a camera at ``pos`` looking at ``lookat``, image up towards ``up``.

    A MuJoCo camera looks along its -z axis, with x to the image's right and y up.
    """
    forward = np.asarray(lookat, dtype=float) - np.asarray(pos, dtype=float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, dtype=float))
    right /= np.linalg.norm(right)
    image_up = np.cross(right, forward)
    return np.concatenate([right, image_up])


def _link_geom(
    name: str,
    start: Sequence[float] | np.ndarray,
    end: Sequence[float] | np.ndarray,
    radius: float,
    mass: float,
) -> str:
    """A visual capsule from ``start`` to ``end`` carrying the link's mass."""
    if np.linalg.norm(np.subtract(end, start)) < 1e-6:
        return (
            f'<geom name="{name}" type="sphere" size="{radius}" pos="{_fmt(start)}" '
            f'mass="{mass}" material="arm" {_VISUAL_BITS}/>'
        )
    return (
        f'<geom name="{name}" type="capsule" size="{radius}" fromto="{_fmt(start)} {_fmt(end)}" '
        f'mass="{mass}" material="arm" {_VISUAL_BITS}/>'
    )


def _gripper_xml(indent: str) -> str:
    """The palm, the two parallel slide fingers and the wrist camera, in the tool frame.

    Each finger's slide joint value is the distance of its pad from the tool z axis, so the
    gripper opening (the gap between the pads) is the sum of the two joint values.
    """
    hx, hy, hz = FINGER_HALF
    pad_z = FINGER_TIP_Z - hz
    half_gap = GRIPPER_MAX_GAP / 2
    lines = [
        f'<geom name="palm" type="box" size="0.016 {half_gap + 2 * hy:.4f} 0.01" pos="0 0 {PALM_Z}" '
        f'mass="0.04" material="gripper" {_GRIPPER_BITS} friction="1 0.005 0.0001"/>',
        '<site name="ee" pos="0 0 0" size="0.005" group="4" rgba="1 0 1 1"/>',
        # Wrist camera: beside the palm, looking along the tool z axis towards the finger tips.
        f'<camera name="wrist" pos="{_fmt(WRIST_CAMERA_POS)}" '
        f'xyaxes="{_fmt(_camera_xyaxes(WRIST_CAMERA_POS, WRIST_CAMERA_LOOKAT, (1.0, 0.0, 0.0)))}" '
        'fovy="75"/>',
    ]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        lines += [
            f'<body name="finger_{side}" gravcomp="1">',
            f'  <joint name="finger_{side}" type="slide" axis="0 {sign:g} 0" range="0 {half_gap}" '
            f'armature="0.01" damping="0.5" limited="true"/>',
            f'  <geom name="finger_{side}" type="box" size="{hx} {hy} {hz}" pos="0 {sign * hy:g} {pad_z}" '
            f'mass="0.02" material="gripper" {_GRIPPER_BITS} condim="3" friction="1.2 0.01 0.0001" '
            f'solref="0.01 1" solimp="0.99 0.999 0.001"/>',
            "</body>",
        ]
    return "\n".join(indent + line for line in lines)


def build_mjcf(
    spec: ChainSpec,
    *,
    task: str,
    physics_dt: float,
    camera_width: int,
    camera_height: int,
) -> str:
    """MJCF text of the arm, the gripper, the table, the cube and (push_cube) the target.

    ``task`` only decides whether the push target disc is present; the cube and the
    target are placed by :mod:`hilrl.robots.sim.tasks` at every reset.
    """
    if len(spec.joints) != len(ARM_KP):
        raise ValueError(
            f"the sim arm has {len(ARM_KP)} servos; chain '{spec.name}' has {spec.dof} joints"
        )
    link_masses = (0.12, 0.12, 0.1, 0.06, 0.05)
    link_radii = (0.024, 0.02, 0.018, 0.016, 0.015)

    # Nested arm bodies, one per joint, then the gripper at the tool frame.
    body_lines: list[str] = []
    depth = 2
    for i, joint in enumerate(spec.joints):
        pad = "  " * depth
        quat = quat_from_rpy(joint.origin_rpy)
        body_lines.append(
            f'{pad}<body name="link_{joint.name}" pos="{_fmt(joint.origin_xyz)}" quat="{_fmt(quat)}" '
            'gravcomp="1">'
        )
        body_lines.append(
            f'{pad}  <joint name="{joint.name}" type="hinge" axis="{_fmt(joint.axis)}" '
            f'range="{joint.lower:.9g} {joint.upper:.9g}" limited="true" armature="0.005" damping="0.05"/>'
        )
        if i + 1 < len(spec.joints):
            end = np.asarray(spec.joints[i + 1].origin_xyz, dtype=float)
        else:
            tool_quat = quat_from_rpy(spec.tool_rpy)
            end = np.asarray(spec.tool_xyz, dtype=float) + _rotate(tool_quat, (0.0, 0.0, PALM_Z))
        body_lines.append(
            f"{pad}  "
            + _link_geom(f"link_{joint.name}", (0.0, 0.0, 0.0), end, link_radii[i], link_masses[i])
        )
        depth += 1
    pad = "  " * depth
    tool_quat = quat_from_rpy(spec.tool_rpy)
    body_lines.append(
        f'{pad}<body name="gripper" pos="{_fmt(spec.tool_xyz)}" quat="{_fmt(tool_quat)}" gravcomp="1">'
    )
    body_lines.append(_gripper_xml(pad + "  "))
    body_lines.append(f"{pad}</body>")
    for d in range(depth - 1, 1, -1):
        body_lines.append("  " * d + "</body>")

    actuators = [
        f'    <position name="{j.name}" joint="{j.name}" kp="{ARM_KP[i]}" kv="{ARM_KV[i]}" '
        f'ctrlrange="{j.lower:.9g} {j.upper:.9g}" forcerange="{-ARM_FORCE[i]} {ARM_FORCE[i]}"/>'
        for i, j in enumerate(spec.joints)
    ]
    actuators += [
        f'    <position name="finger_{side}" joint="finger_{side}" kp="{FINGER_KP}" kv="{FINGER_KV}" '
        f'ctrlrange="0 {GRIPPER_MAX_GAP / 2}" forcerange="{-FINGER_FORCE} {FINGER_FORCE}"/>'
        for side in ("left", "right")
    ]

    tx0, tx1 = TABLE_X
    ty0, ty1 = TABLE_Y
    table_center = ((tx0 + tx1) / 2, (ty0 + ty1) / 2)
    table_half = ((tx1 - tx0) / 2, (ty1 - ty0) / 2)
    target_xml = ""
    if task == "push_cube":
        target_xml = (
            '    <body name="target" mocap="true" pos="0.16 0.05 0">\n'
            f'      <geom name="target" type="cylinder" size="{TARGET_RADIUS} 0.0005" pos="0 0 0.0005" '
            f'rgba="0.2 0.8 0.2 1" {_VISUAL_BITS}/>\n'
            "    </body>\n"
        )
    xyaxes = _camera_xyaxes(FRONT_CAMERA_POS, FRONT_CAMERA_LOOKAT)

    return f"""<mujoco model="hilrl_desk_arm_{task}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics_dt:.9g}" integrator="implicitfast" iterations="20" ls_iterations="8"
          cone="pyramidal" impratio="50" gravity="0 0 -9.81">
    <flag warmstart="enable"/>
  </option>
  <visual>
    <global offwidth="{camera_width}" offheight="{camera_height}"/>
    <quality shadowsize="0" offsamples="0" numslices="8" numstacks="4" numquads="1"/>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
    <map znear="0.01" zfar="5"/>
  </visual>
  <asset>
    <material name="arm" rgba="0.92 0.92 0.9 1" specular="0" shininess="0" reflectance="0"/>
    <material name="gripper" rgba="0.25 0.25 0.28 1" specular="0" shininess="0" reflectance="0"/>
    <material name="table" rgba="0.55 0.42 0.3 1" specular="0" shininess="0" reflectance="0"/>
  </asset>
  <worldbody>
    <light name="top" pos="0.15 0 1.2" dir="0 0 -1" directional="true" castshadow="false"
           diffuse="0.5 0.5 0.5" specular="0 0 0"/>
    <geom name="table" type="plane" size="{table_half[0]} {table_half[1]} 0.01"
          pos="{table_center[0]} {table_center[1]} 0" material="table" {_TABLE_BITS}
          friction="0.8 0.005 0.0001"/>
    <camera name="front" pos="{_fmt(FRONT_CAMERA_POS)}" xyaxes="{_fmt(xyaxes)}" fovy="55"/>
    <body name="base">
      <geom name="base" type="cylinder" size="0.045 {spec.joints[0].origin_xyz[2] / 2}"
            pos="0 0 {spec.joints[0].origin_xyz[2] / 2}" material="arm" {_VISUAL_BITS}/>
{chr(10).join(body_lines)}
    </body>
    <body name="cube" pos="0.17 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="{CUBE_MASS}"
            rgba="0.85 0.15 0.12 1" {_CUBE_BITS} condim="3" friction="1.2 0.01 0.0001"/>
    </body>
{target_xml}  </worldbody>
  <actuator>
{chr(10).join(actuators)}
  </actuator>
</mujoco>
"""
