#!/usr/bin/env bash
# One script for a GPU: devices, [D]'s 17×17×4 phase diagram and [P]'s StableMax run at paper size,
# the matmul peaks (TF32, FP32, FP64), each run's rate against them, and a profile of the largest
# [D] group's step (benchmarks/gpu_suite.py).
#
#   make setup && .venv/bin/pip install -e ".[cuda]" && benchmarks/gpu.sh      # or: make bench-gpu
#   benchmarks/gpu.sh --tiny     # tiny sizes on any machine, CPU included (tests/test_gpu_script.py)
#   benchmarks/gpu.sh --out DIR  # keep the runs (default: a temporary directory)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
start=$(date +%s)
"$PY" -m benchmarks.gpu_suite "$@"
echo "gpu.sh: $(( $(date +%s) - start )) s in all"
