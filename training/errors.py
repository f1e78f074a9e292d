"""Named exceptions of the training package."""


class TrainingError(Exception):
    """Base class of training errors."""


class ConfigError(TrainingError):
    """A recipe or argument names a bad value; the message names it and the allowed values."""


class DataError(TrainingError):
    """A dataset file is missing or malformed; the message names the file."""


class CheckpointError(TrainingError):
    """A checkpoint cannot be loaded or does not match the model it is loaded into."""
