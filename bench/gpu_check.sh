#!/usr/bin/env bash
# One command on an NVIDIA GPU machine with torch: the GPU parity tests (torch CUDA vs ONNX Runtime,
# and TensorRT vs ONNX Runtime when tensorrt imports), then faces/s at batch 1, 8, 32, 128 in FP32
# and FP16 (torch eager, torch CUDA graphs, TensorRT when it imports), printed as a table.
# Finishes in under 5 minutes (the two steps are capped at 120 s and 170 s).
#
#   bench/gpu_check.sh                         # random-weight model with the shipped architecture
#   bench/gpu_check.sh --checkpoint run/best.pt  # a trained checkpoint
#
# Results: bench/results/gpu_check.json (override with GPU_CHECK_JSON). Exit code: 0 all good,
# 3 no usable GPU, otherwise the failing step's code.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
JSON=${GPU_CHECK_JSON:-bench/results/gpu_check.json}
export AFFECTSTREAM_SHARED=${AFFECTSTREAM_SHARED:-../shared}

echo "== GPU"
if ! nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader; then
    echo "error: nvidia-smi failed: no NVIDIA GPU or driver here" >&2
    exit 3
fi
if ! "$PY" -c "import sys, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda); sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "error: torch sees no CUDA device (install a CUDA build of torch: pip install 'affectstream[train]')" >&2
    exit 3
fi
"$PY" -c "import tensorrt, pycuda.driver; print('tensorrt', tensorrt.__version__)" 2>/dev/null \
    || echo "tensorrt/pycuda not importable: TensorRT rows and tests are skipped"

echo "== parity (pytest -m gpu)"
timeout 120 "$PY" -m pytest -q -m gpu -p no:cacheprovider -rs \
    tests/engines/test_engine_parity.py tests/engines/test_engine_tensorrt.py

echo "== throughput"
timeout 170 "$PY" bench/gpu_bench.py --batches 1,8,32,128 --seconds 1.0 --json "$JSON" "$@"
echo "wrote $JSON"
