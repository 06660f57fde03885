#!/usr/bin/env bash
# Run every benchmark in turn; each prints its figures and ends with one JSON line.
#   bash benchmarks/run_all.sh            # all of them (tens of minutes on 2 CPU cores)
#   bash benchmarks/run_all.sh env sim    # only bench_env.py and bench_sim.py
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL=${MUJOCO_GL:-egl}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=()
  for f in benchmarks/bench_*.py; do n=$(basename "$f" .py); names+=("${n#bench_}"); done
fi
for n in "${names[@]}"; do
  echo "== bench_$n"
  .venv/bin/python "benchmarks/bench_$n.py"
done
