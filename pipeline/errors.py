"""Named exceptions of the runtime, and the exit status of every `affectstream` verb.

Messages name the bad value and the fix.
"""

# The exit-status table lives in the bottom layer, so that training and engine verbs use it too.
from affectstream.engines.errors import (  # noqa: F401 (re-exported for the CLI)
    EXIT_DONE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_STATUSES,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)

# Exit statuses of a worker process to its supervisor (`pipeline.runtime.supervisor`), never a verb's.
EXIT_SOURCES_FAILED = 4  # its sources failed for good: restarting would not help
EXIT_CANNOT_RUN = 5  # configuration or model trouble found at start: not restarted

# Top-level modules of the optional extras (pyproject.toml), for "pip install 'affectstream[EXTRA]'".
EXTRAS = {
    "worker": ("av", "insightface", "onnxruntime", "onnx", "cv2"),
    "ui": ("starlette", "uvicorn", "matplotlib"),
    "train": ("torch", "torchvision", "timm", "scipy", "tqdm"),
    "gpu": ("tensorrt", "pycuda"),
    "bridge": ("paho",),
}


def extra_for(module: str | None) -> str | None:
    """The extra that installs `module` (a dotted name is judged by its top level), or None."""
    top = (module or "").partition(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def require(*modules: str) -> None:
    """Check, before any work, that an extra's modules are installed (found, not imported).

    Raises:
        ModuleNotFoundError: The first one missing; the CLI reports it as the extra to install (exit 3).
    """
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)


class AffectstreamError(Exception):
    """Base class of runtime errors that the CLI reports without a traceback, exiting `exit_code`."""

    exit_code = EXIT_USAGE


class ConfigError(AffectstreamError):
    """A configuration key or value is invalid; the message names its path and the allowed values."""


class RedisUnavailable(AffectstreamError):
    """Redis cannot be reached or started."""

    exit_code = EXIT_FAILED


class ExtraUnavailable(AffectstreamError):
    """An optional extra (`ui`, `train`, `gpu`) that a verb needs is not installed."""

    exit_code = EXIT_UNAVAILABLE


class SourceError(AffectstreamError):
    """A source cannot be opened or decoded."""


class DetectorError(AffectstreamError):
    """The face detector model is missing or cannot be loaded."""


class SchemaVersionError(AffectstreamError):
    """A stream entry has an unknown schema version `v` or is not valid for its version."""


class JobFailed(AffectstreamError):
    """An archive job cannot succeed as it stands (unreadable or corrupt video, bad parameters); message = reason."""
