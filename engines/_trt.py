"""The TensorRT and pycuda modules, loaded once with a telling error, and the one TensorRT logger.

Shared by the runtime (`engines.tensorrt`) and the plan builder (`engines.trt_build`), so neither
imports the other for them: TensorRT warns when a builder and a runtime get different loggers.
"""

from __future__ import annotations

import logging

from affectstream.engines.errors import BackendUnavailable

try:
    import tensorrt as trt  # first: its own load errors (missing libnvinfer) are the telling ones
    import pycuda.driver as cuda  # isort: skip
except ImportError as exc:
    if (exc.name or "").split(".")[0] in ("tensorrt", "pycuda"):
        raise  # not installed: the registry answers with the install hint
    # Installed but unloadable: libnvinfer / libcuda missing, or TensorRT's libraries were never downloaded.
    raise BackendUnavailable(
        f"tensorrt/pycuda are installed but do not load here ({exc}); see docs/gpu.md"
    ) from exc

__all__ = ["TRT_LOGGER", "cuda", "trt"]

log = logging.getLogger("affectstream.engines.tensorrt")  # TensorRT's messages keep their logger name


class _Logger(trt.ILogger):
    """Routes TensorRT's messages into `logging` (warnings and errors only, to keep builds readable)."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)

    def log(self, severity, msg) -> None:
        if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
            log.error("TensorRT: %s", msg)
        elif severity == trt.ILogger.Severity.WARNING:
            log.warning("TensorRT: %s", msg)


TRT_LOGGER = _Logger()
