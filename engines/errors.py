"""Named exceptions of the inference backends."""


class EngineError(Exception):
    """Base class of engine failures."""


class ModelFileError(EngineError):
    """A model file is missing, malformed or lacks the affectstream spec."""


class BackendUnavailable(EngineError):
    """A backend's runtime (onnxruntime, tensorrt, pycuda, torch) is not installed or has no device."""
