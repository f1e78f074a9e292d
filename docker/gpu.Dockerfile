# syntax=docker/dockerfile:1
# GPU worker: NVIDIA's TensorRT image (CUDA, cuDNN, TensorRT 10 and its Python bindings) plus
# affectstream, pycuda and onnxruntime-gpu (SCRFD on the CUDA provider).
#   docker build -f docker/gpu.Dockerfile -t affectstream-gpu .
# TRT_IMAGE picks the TensorRT release; plans built by one release only load in the same one.
ARG TRT_IMAGE=nvcr.io/nvidia/tensorrt:24.08-py3
FROM ${TRT_IMAGE}

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
COPY configs ./configs

# The image's own tensorrt bindings are kept (a PyPI tensorrt would not match its libnvinfer), so the
# [gpu] extra is not installed as such: pycuda is added by name. onnxruntime-gpu replaces onnxruntime
# (both provide the `onnxruntime` module; only one may be installed).
RUN python3 -c "import tensorrt; print('TensorRT', tensorrt.__version__)" \
 && python3 -m pip install . pycuda \
 && python3 -m pip uninstall -y onnxruntime \
 && python3 -m pip install onnxruntime-gpu \
 && python3 -c "import engines, pipeline, pycuda, onnxruntime; print(onnxruntime.get_available_providers())"

RUN useradd --create-home --uid 10001 affect \
 && mkdir -p /engines /var/lib/affectstream \
 && chown affect:affect /engines /var/lib/affectstream
USER affect
WORKDIR /var/lib/affectstream
VOLUME ["/engines"]

CMD ["affectstream", "run", "-c", "/config/pipeline.yaml"]
