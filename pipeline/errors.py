"""Named exceptions of the runtime. Messages name the bad value and the fix."""


class AffectstreamError(Exception):
    """Base class of runtime errors that the CLI reports without a traceback."""


class ConfigError(AffectstreamError):
    """A configuration key or value is invalid; the message names its path and the allowed values."""


class RedisUnavailable(AffectstreamError):
    """Redis cannot be reached or started."""


class SourceError(AffectstreamError):
    """A source cannot be opened or decoded."""


class DetectorError(AffectstreamError):
    """The face detector model is missing or cannot be loaded."""


class SchemaVersionError(AffectstreamError):
    """A stream entry has an unknown schema version `v` or is not valid for its version."""
