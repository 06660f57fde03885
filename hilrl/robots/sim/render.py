"""Choose MuJoCo's offscreen OpenGL backend before ``mujoco`` is first imported.

MuJoCo reads ``MUJOCO_GL`` once, when the ``mujoco`` package is imported, and a wrong
value can make the import itself fail (``MUJOCO_GL=osmesa`` without libOSMesa). So the
sim never imports ``mujoco`` at module level: :class:`~hilrl.robots.sim.arm.SimArm` calls
:func:`ensure_backend` first and then :func:`import_mujoco`.

'auto' keeps a ``MUJOCO_GL`` the user already set; otherwise it tries EGL, then OSMesa,
each in a short-lived subprocess (a failed attempt cannot be undone in-process), and
remembers the answer for the rest of the process.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from types import ModuleType
from typing import Any

BACKENDS = ("egl", "osmesa", "glfw")
"""Backends a config may name explicitly ('auto' picks among the first two)."""

DEBIAN_PACKAGES = {
    "egl": "libegl1 libgl1-mesa-dri libegl-mesa0",
    "osmesa": "libosmesa6",
    "glfw": "libglfw3 libgl1 (and a running X display)",
}
"""What to ``apt-get install`` for each backend on Debian/Ubuntu."""

_PROBE_CODE = "import mujoco; c = mujoco.GLContext(16, 16); c.make_current(); c.free()"
_probe_results: dict[str, bool] = {}


class RenderBackendError(RuntimeError):
    """No usable OpenGL backend for offscreen rendering; the message says what to install."""


def _install_hint() -> str:
    return (
        "install EGL (apt-get install "
        + DEBIAN_PACKAGES["egl"]
        + ") or OSMesa (apt-get install "
        + DEBIAN_PACKAGES["osmesa"]
        + "), or set robot.cameras=[] to run state-only"
    )


def probe_backend(backend: str, timeout_s: float = 60.0) -> bool:
    """Whether ``backend`` can create a GL context, tried in a subprocess (cached)."""
    if backend not in _probe_results:
        env = dict(os.environ, MUJOCO_GL=backend)
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE_CODE],
                env=env,
                capture_output=True,
                timeout=timeout_s,
                check=False,
            )
            _probe_results[backend] = proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _probe_results[backend] = False
    return _probe_results[backend]


def _imported_choice() -> str | None:
    """``MUJOCO_GL`` as the already-imported mujoco read it ('' = unset), None if not imported."""
    if "mujoco" not in sys.modules:
        return None
    gl_module = sys.modules.get("mujoco.rendering.classic.gl_context")
    chosen = getattr(gl_module, "_MUJOCO_GL", None)
    if not isinstance(chosen, str):
        chosen = os.environ.get("MUJOCO_GL", "")
    return chosen.lower().strip()


def imported_backend() -> str | None:
    """The backend the already-imported ``mujoco`` uses, or None if it is not imported yet."""
    chosen = _imported_choice()
    if chosen is None:
        return None
    if chosen in BACKENDS:
        return chosen
    gl_module = sys.modules.get("mujoco.rendering.classic.gl_context")
    context_cls = getattr(gl_module, "GLContext", None)
    module_name = getattr(context_cls, "__module__", "") or ""
    for backend in BACKENDS:
        if module_name == f"mujoco.{backend}":
            return backend
    return "glfw"


def _switch_imported(backend: str) -> bool:
    """Point an already-imported mujoco, which nobody told which backend to use, at ``backend``.

    mujoco picks its GL context class at import; its ``Renderer`` looks the class up again
    on construction, so replacing it works as long as PyOpenGL has not been loaded for
    another platform yet. Used only when ``MUJOCO_GL`` was unset at import (mujoco then
    defaults to GLFW, which needs a display). Returns False when it cannot switch.
    """
    if _imported_choice() != "" or backend not in ("egl", "osmesa"):
        return False
    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    if "OpenGL" in sys.modules and platform != backend:
        return False
    gl_module = sys.modules.get("mujoco.rendering.classic.gl_context")
    if gl_module is None or not hasattr(gl_module, "GLContext"):
        return False
    try:
        backend_module = importlib.import_module(f"mujoco.{backend}")
    except (ImportError, AttributeError, OSError):
        return False
    os.environ["MUJOCO_GL"] = backend
    gl_module.GLContext = backend_module.GLContext  # type: ignore[attr-defined]
    return True


def ensure_backend(preference: str, *, need_render: bool = True) -> str | None:
    """Set ``MUJOCO_GL`` for ``preference`` ('auto', 'egl', 'osmesa', 'glfw').

    Returns the backend that mujoco will use, or None when rendering is not needed and no
    backend works (state-only runs still work then). If ``mujoco`` was already imported
    without ``MUJOCO_GL`` and rendering is needed, switches it to the chosen backend when
    that is still possible. Raises :class:`RenderBackendError` when ``mujoco`` is already
    bound to another backend than an explicit ``preference``, or when rendering is needed
    and nothing works.
    """
    if preference not in ("auto", *BACKENDS):
        raise ValueError(f"render backend {preference!r}: choose auto, {', '.join(BACKENDS)}")
    active = imported_backend()
    if active is not None:
        wanted = preference
        if need_render and _imported_choice() == "" and active == "glfw":
            if preference == "auto":
                wanted = next((b for b in ("egl", "osmesa") if probe_backend(b)), "glfw")
            if wanted != "glfw" and _switch_imported(wanted):
                return wanted
        if preference not in ("auto", active):
            raise RenderBackendError(
                f"robot.render_backend={preference!r} but mujoco was already imported with "
                f"the {active!r} backend; set MUJOCO_GL={preference} in the environment before "
                "starting Python, or create the robot before anything imports mujoco"
            )
        return active
    if preference != "auto":
        os.environ["MUJOCO_GL"] = preference
        return preference
    user_choice = os.environ.get("MUJOCO_GL", "").lower().strip()
    if user_choice:
        return user_choice
    for candidate in ("egl", "osmesa"):
        if probe_backend(candidate):
            os.environ["MUJOCO_GL"] = candidate
            return candidate
    if need_render:
        raise RenderBackendError(
            "no offscreen OpenGL backend works (tried EGL, OSMesa): " + _install_hint()
        )
    return None


def import_mujoco() -> ModuleType:
    """Import ``mujoco`` (after :func:`ensure_backend`), turning GL import errors into advice."""
    try:
        import mujoco  # start-up: only a sim needs it, and only after ensure_backend set MUJOCO_GL
    except (ImportError, AttributeError, OSError) as exc:
        backend = os.environ.get("MUJOCO_GL", "")
        raise RenderBackendError(
            f"importing mujoco with MUJOCO_GL={backend!r} failed ({exc}); " + _install_hint()
        ) from exc
    return mujoco


def make_renderer(mujoco: ModuleType, model: Any, height: int, width: int) -> Any:
    """A ``mujoco.Renderer`` for ``model``, or a :class:`RenderBackendError` saying what to install."""
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as exc:  # GL failures surface as many exception types
        backend = imported_backend() or os.environ.get("MUJOCO_GL", "")
        raise RenderBackendError(
            f"cannot create an offscreen renderer with MUJOCO_GL={backend!r} ({exc}); "
            + _install_hint()
        ) from exc
