"""Named exceptions of the runtime. Messages name the bad value and the fix."""


class AffectstreamError(Exception):
    """Base class of runtime errors that the CLI reports without a traceback, exiting `exit_code`
    (DESIGN.md: 1 failed at run time, 2 usage or config, 3 backend or extra unavailable)."""

    exit_code = 2


class ConfigError(AffectstreamError):
    """A configuration key or value is invalid; the message names its path and the allowed values."""


class RedisUnavailable(AffectstreamError):
    """Redis cannot be reached or started."""

    exit_code = 1


class SourceError(AffectstreamError):
    """A source cannot be opened or decoded."""


class DetectorError(AffectstreamError):
    """The face detector model is missing or cannot be loaded."""


class SchemaVersionError(AffectstreamError):
    """A stream entry has an unknown schema version `v` or is not valid for its version."""
