# syntax=docker/dockerfile:1
# GPU worker: NVIDIA's TensorRT image (CUDA 12.6, cuDNN 9.3, TensorRT 10.3 and its Python bindings,
# Python 3.10) plus affectstream, pycuda and onnxruntime-gpu (SCRFD on the CUDA provider).
#   docker build -f docker/gpu.Dockerfile -t affectstream-gpu .
# TRT_IMAGE picks the TensorRT release; plans built by one release only load in the same one. Another
# image needs an ORT_GPU built for its CUDA major (docs/gpu.md, "Versions").
ARG TRT_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3
FROM ${TRT_IMAGE}
# onnxruntime-gpu 1.20.1: CUDA 12 + cuDNN 9, wheels for Python 3.10-3.12. Unpinned, pip may pick a
# build for another CUDA major, which loads no CUDA provider here and runs SCRFD on the CPU.
ARG ORT_GPU=1.20.1
ARG PYCUDA=2024.1.2

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_BREAK_SYSTEM_PACKAGES=1 \
    DEBIAN_FRONTEND=noninteractive

# pycuda and insightface compile native extensions: headers and a compiler, then cleaned up.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-dev build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/affectstream
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY engines ./engines
COPY training ./training
COPY affectstream ./affectstream
COPY configs ./configs

# The image's own tensorrt bindings are kept (a PyPI tensorrt would not match its libnvinfer), so the
# [gpu] extra is not installed as such: pycuda is added by name. onnxruntime-gpu replaces onnxruntime
# (both provide the `onnxruntime` module; only one may be installed).
# get_available_providers() lists CUDA even when its libraries cannot load, so the check is that the CUDA
# provider's own libraries resolve in this image (libcuda comes from the host driver at run time); the
# worker checks again at start, on the session's real providers, and fails instead of falling back to CPU.
RUN python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)" \
 && python3 -m pip install ".[worker]" "pycuda==${PYCUDA}" \
 && python3 -m pip uninstall -y onnxruntime \
 && python3 -m pip install "onnxruntime-gpu==${ORT_GPU}" \
 && provider=$(python3 -c "import onnxruntime, pathlib; print(pathlib.Path(onnxruntime.__file__).parent / 'capi' / 'libonnxruntime_providers_cuda.so')") \
 && missing=$(ldd "$provider" | grep "not found" | grep -v "libcuda\.so" || true) \
 && if [ -n "$missing" ]; then echo "onnxruntime-gpu ${ORT_GPU} does not fit this image's CUDA: $missing" >&2; exit 1; fi \
 && python3 -c "import affectstream.engines, affectstream.pipeline, pycuda, onnxruntime; print('onnxruntime-gpu', onnxruntime.__version__)"

RUN useradd --create-home --uid 10001 affect \
 && mkdir -p /engines /var/lib/affectstream \
 && chown affect:affect /engines /var/lib/affectstream
USER affect
WORKDIR /var/lib/affectstream
VOLUME ["/engines"]

CMD ["affectstream", "run", "-c", "/config/pipeline.yaml"]
