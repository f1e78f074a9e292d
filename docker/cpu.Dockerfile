# syntax=docker/dockerfile:1
# Slim CPU image: ONNX Runtime on CPU, no torch, no CUDA.
#   docker build -f docker/cpu.Dockerfile -t affectstream-cpu .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# For dependencies without a wheel for this platform (insightface 0.7.x builds a C extension); the
# compiler stays in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY engines ./engines
COPY training ./training
COPY affectstream ./affectstream
COPY configs ./configs
RUN pip install ".[worker]" \
 && python -c "import sys, affectstream.engines, affectstream.pipeline; sys.exit('torch' in sys.modules)"

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH
# libgomp1: ONNX Runtime's OpenMP runtime, absent from slim images.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 affect \
 && mkdir -p /var/lib/affectstream && chown affect:affect /var/lib/affectstream
COPY --from=build /opt/venv /opt/venv
COPY configs /opt/affectstream/configs
USER affect
WORKDIR /var/lib/affectstream
CMD ["affectstream", "run", "-c", "/config/pipeline.yaml"]
