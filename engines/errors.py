"""Named exceptions of the inference backends, and the exit status of every `affectstream` verb."""

# The exit-status table (README "Exit status"); nothing else leaves the command. It lives in the bottom
# layer so that pipeline, engine and training verbs all use it.
EXIT_DONE = 0
EXIT_FAILED = 1  # failed at run time (a source, a job, Redis, a model file)
EXIT_USAGE = 2  # bad command line or config, missing input file
EXIT_UNAVAILABLE = 3  # a backend or an optional extra is not installed or has no device
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_STATUSES = (EXIT_DONE, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED)


class EngineError(Exception):
    """Base class of engine failures; `exit_code` is the CLI's status for it (README "Exit status")."""

    exit_code = EXIT_FAILED


class ModelFileError(EngineError):
    """A model file is missing, malformed or lacks the affectstream spec."""


class BackendUnavailable(EngineError):
    """A backend's runtime (onnxruntime, tensorrt, pycuda, torch) is not installed or has no device."""

    exit_code = EXIT_UNAVAILABLE


class EngineInputError(EngineError, ValueError):
    """A batch handed to `Engine.infer` has the wrong shape or dtype, or the engine is closed."""


class UnknownBackend(EngineError, ValueError):
    """`create_engine` was asked for a backend name that is not registered."""


class EngineBuildError(EngineError):
    """A TensorRT plan could not be built (parser errors, unsupported precision, no calibration data)."""


class PlanMismatch(EngineError):
    """A serialized plan was built for another GPU, TensorRT version or model; it must be rebuilt."""
