#!/usr/bin/env bash
# Install everything hilrl needs on a fresh Debian/Ubuntu machine:
#   - Debian packages for headless MuJoCo rendering (Mesa EGL, with OSMesa as fallback)
#   - a virtual environment in .venv with hilrl and its pinned dependencies (+ dev tools)
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"hilrl needs Python >= 3.10, found {sys.version.split()[0]}: set PYTHON=/path/to/python3.11")
PY

packages=(libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 tmux)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
# torch==2.13.0 is pinned exactly in pyproject.toml: a looser pin would pull CUDA wheels.
# TORCH_INDEX_URL picks the build first (e.g. https://download.pytorch.org/whl/cpu for a
# CPU-only machine, .../whl/cu128 for a CUDA 12.8 one); unset, pip takes what it finds.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check torch==2.13.0 \
    --index-url "$TORCH_INDEX_URL"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
echo "setup: done ($(.venv/bin/python -c 'import hilrl, torch, mujoco; print(f"hilrl {hilrl.__version__}, torch {torch.__version__}, mujoco {mujoco.__version__}")'))"
