"""Named exceptions of the inference backends."""


class EngineError(Exception):
    """Base class of engine failures; `exit_code` is the CLI's status for it (README "Exit status")."""

    exit_code = 1  # failed at run time


class ModelFileError(EngineError):
    """A model file is missing, malformed or lacks the affectstream spec."""


class BackendUnavailable(EngineError):
    """A backend's runtime (onnxruntime, tensorrt, pycuda, torch) is not installed or has no device."""

    exit_code = 3


class EngineInputError(EngineError, ValueError):
    """A batch handed to `Engine.infer` has the wrong shape or dtype, or the engine is closed."""


class UnknownBackend(EngineError, ValueError):
    """`create_engine` was asked for a backend name that is not registered."""


class EngineBuildError(EngineError):
    """A TensorRT plan could not be built (parser errors, unsupported precision, no calibration data)."""


class PlanMismatch(EngineError):
    """A serialized plan was built for another GPU, TensorRT version or model; it must be rebuilt."""
