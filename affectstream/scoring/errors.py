"""Named exceptions of the scoring package (no numpy here: the CLI imports this module at start)."""


class ScoringError(ValueError):
    """Base class of bad annotation or prediction files; the CLI reports them without a traceback."""

    exit_code = 2  # a bad input file is a usage error (pipeline.errors.EXIT_USAGE)


class AnnotationFormatError(ScoringError):
    """A VA, EXPR or submission file does not follow the format; the message names the file and line."""


class LayoutError(ScoringError):
    """An Aff-Wild2 release folder lacks (or has two of) a task's annotations; the message names the path."""
