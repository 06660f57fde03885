#!/usr/bin/env bash
# Install everything, then run the linters, the type checker and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL=${MUJOCO_GL:-egl}
echo "== ruff"
.venv/bin/ruff check hilrl tests benchmarks
.venv/bin/ruff format --check hilrl tests benchmarks
echo "== mypy"
.venv/bin/mypy hilrl
echo "== layers (docs/architecture.md; the table is in tests/architecture/test_layers.py)"
.venv/bin/python tests/architecture/test_layers.py
echo "== pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"
