#!/usr/bin/env bash
# One unattended command for a fresh NVIDIA GPU machine that has Python and torch (CUDA) but maybe no
# TensorRT, no onnxruntime-gpu and no package registry. Under 8 minutes. Steps, each time-capped:
#   1. carried wheels (.whl/*.whl, e.g. redis for the test fixtures) installed with pip --no-index
#   2. imports and versions; the GPU (nvidia-smi, torch.cuda)
#   3. pytest -m gpu: torch CUDA vs ONNX Runtime CPU on the shipped model (fp32, fp16, CUDA graphs) and the
#      tiny test model; the torch SCRFD detector vs ONNX Runtime CPU; TensorRT plans when tensorrt imports
#   4. engine faces/s at batch 1, 8, 32, 128 (torch FP32, FP16, FP16 + CUDA graphs; TensorRT when it imports)
#   5. end-to-end frames/s for 1, 8, 32 and 64 replayed 1080p and 640x360 streams
#      (decode -> SCRFD on torch -> track -> align -> batched MTL-GCN; bench/gpu_streams.py)
# Without a usable GPU it runs what the CPU can (the CPU-side tests of these paths and a dry run of both
# benchmarks on the CPU), then stops at the GPU boundary with exit 3.
#
#   bench/gpu_check.sh
#   AFFECTSTREAM_SHARED=var/shared_carry GPU_CHECK_MEDIA=var/gpu_media bench/gpu_check.sh
#
# Inputs: AFFECTSTREAM_SHARED (models/scrfd_500m.onnx, media/, data/ferplus/FER2013Valid; default ../shared),
# GPU_CHECK_MEDIA (clip_1080p.mp4 and clip_360p.mp4; default var/gpu_media, made by
# `python bench/gpu_streams.py --make-clips` where PyAV is installed). Results: $GPU_CHECK_OUT
# (default bench/results) gpu_tests.log, gpu_engine.json, gpu_streams.json.
# Exit: 0 all good; 3 no usable GPU (after the CPU-side part); otherwise the failing step's code.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT_DIR=${GPU_CHECK_OUT:-bench/results}
MEDIA=${GPU_CHECK_MEDIA:-var/gpu_media}
export AFFECTSTREAM_SHARED=${AFFECTSTREAM_SHARED:-../shared}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
START=$SECONDS
FAILED=0
step() { echo; echo "== $1   [t+$((SECONDS - START)) s]"; }
check() {  # check NAME CODE: remember the first failing step
    if [ "$2" -ne 0 ]; then echo "!! $1 failed (exit $2)"; [ "$FAILED" -ne 0 ] || FAILED=$2; fi
}

step "1. carried wheels"
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/affectstream-site .whl/*.whl || exit 3
    export PYTHONPATH="/tmp/affectstream-site${PYTHONPATH:+:$PYTHONPATH}"
    ls .whl
else
    echo "none (.whl/ is empty)"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

step "2. imports and GPU"
"$PY" - <<'EOF' || exit 3
import importlib, sys
print("python", sys.version.split()[0])
for name in ("numpy", "torch", "onnx", "onnxruntime", "cv2", "timm", "redis", "tensorrt", "pycuda"):
    try:
        module = importlib.import_module(name)
        print(f"  {name:12s} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # absent or unloadable: the steps that need it skip
        print(f"  {name:12s} - ({type(exc).__name__}: {str(exc).splitlines()[0][:90]})")
import engines, engines.onnx_torch, pipeline.detect, pipeline.detect_torch, pipeline.process  # noqa: F401
EOF
GPU=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || GPU=0
"$PY" -c "import sys, torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'available', torch.cuda.is_available()); sys.exit(0 if torch.cuda.is_available() else 1)" || GPU=0

if [ "$GPU" -eq 0 ]; then
    step "3'. CPU side (no usable GPU): tests of the GPU paths that run on a CPU"
    timeout 300 "$PY" -m pytest -q -p no:cacheprovider -rs -m "not gpu" \
        tests/test_detect_torch.py tests/engines/test_trt_compat.py tests/engines/test_trt_ready_models.py \
        tests/engines/test_engine_parity.py
    check "CPU-side tests" $?
    step "4'. dry run of the benchmarks on the CPU"
    timeout 120 "$PY" bench/gpu_bench.py --backends onnxruntime-cpu --batches 1,8 --seconds 0.3
    check "engine benchmark (CPU dry run)" $?
    timeout 120 "$PY" bench/gpu_streams.py --clip "$MEDIA/clip_1080p.mp4" --clip "$MEDIA/clip_360p.mp4" \
        --streams 1,2 --seconds 1 --device cpu --prepare-threads 2 --max-batch 16 \
        --detector "$AFFECTSTREAM_SHARED/models/scrfd_500m.onnx"
    check "streams benchmark (CPU dry run)" $?
    echo
    echo "GPU boundary: no usable CUDA device here; everything before it ran (failures: $FAILED). Exit 3."
    exit 3
fi

step "3. GPU tests (pytest -m gpu)"
SELECT=()
[ -z "${GPU_CHECK_K:-}" ] || SELECT=(-k "$GPU_CHECK_K")  # a subset when device time is short
timeout 200 "$PY" -m pytest -q -p no:cacheprovider -rs -m gpu -W ignore::UserWarning "${SELECT[@]}" \
    tests/engines/test_engine_parity.py tests/test_detect_torch.py tests/engines/test_engine_tensorrt.py \
    2>&1 | tee "$OUT_DIR/gpu_tests.log"
check "GPU tests" "${PIPESTATUS[0]}"

step "4. engine faces/s"
timeout 120 "$PY" bench/gpu_bench.py --batches 1,8,32,128 --seconds "${GPU_CHECK_BENCH_SECONDS:-0.4}" --output "$OUT_DIR/gpu_engine.json"
check "engine benchmark" $?

step "5. end-to-end streams"
timeout 200 "$PY" bench/gpu_streams.py --clip "$MEDIA/clip_1080p.mp4" --clip "$MEDIA/clip_360p.mp4" \
    --streams "${GPU_CHECK_STREAMS:-1,8,32,64}" --seconds "${GPU_CHECK_STREAM_SECONDS:-4}" --detector "$AFFECTSTREAM_SHARED/models/scrfd_500m.onnx" \
    --output "$OUT_DIR/gpu_streams.json"
check "streams benchmark" $?

echo
echo "gpu_check done in $((SECONDS - START)) s (first failure: $FAILED)"
exit "$FAILED"
