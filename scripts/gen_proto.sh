#!/usr/bin/env bash
# Regenerate the Python modules of the transport protocol from its .proto file.
# Run from anywhere after editing hilrl/transport/proto/hilrl_transport.proto; commit the
# generated *_pb2.py / *_pb2.pyi / *_pb2_grpc.py files with it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
# Proto path relative to the repo root, so the generated grpc module imports
# `hilrl.transport.proto.hilrl_transport_pb2` (a package import, not a top-level one).
"$PY" -m grpc_tools.protoc -I . \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  hilrl/transport/proto/hilrl_transport.proto
# The .pyi stub (types for mypy) is not covered by ruff's exclude of *_pb2*.py: tidy it.
RUFF=${RUFF:-.venv/bin/ruff}
"$RUFF" check --fix --quiet hilrl/transport/proto/hilrl_transport_pb2.pyi
"$RUFF" format --quiet hilrl/transport/proto/hilrl_transport_pb2.pyi
echo "gen_proto: regenerated hilrl/transport/proto/hilrl_transport_pb2*.py"
