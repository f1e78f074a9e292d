"""Logging set-up: every record goes through `mask_text`, so no password reaches a log.

The level and format come from `AFFECTSTREAM_LOG_LEVEL` and `AFFECTSTREAM_LOG_FORMAT` (text or json).
The CLI writes its `--log-level`/`--log-format` there before anything starts, so worker processes,
which call `setup_logging()` with no arguments, log the way the command line asked.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.masking import mask_text
from affectstream.settings import env

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


class MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, process, message (masked), and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": record.processName,
            "message": mask_text(record.getMessage()),
        }
        if record.exc_info:
            line["exc"] = mask_text(self.formatException(record.exc_info))
        return json.dumps(line)


def _choice(value: str | None, env: str, allowed: tuple[str, ...], default: str) -> str:
    value = (value or os.environ.get(env) or default).lower()
    if value not in allowed:
        raise ConfigError(f"{env}: {value!r} is not allowed; allowed values: {', '.join(allowed)}")
    return value


def setup_logging(level: int | str | None = None, fmt: str | None = None) -> None:
    """Log to stderr at `level` in `fmt`; each left out is read from the environment (default info, text)."""
    if not isinstance(level, int):
        level = getattr(logging, _choice(level, env.LOG_LEVEL, LEVELS, "info").upper())
    handler = logging.StreamHandler()
    if _choice(fmt, env.LOG_FORMAT, FORMATS, "text") == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            MaskingFormatter("%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


@contextmanager
def logging_env(level: str | None = None, fmt: str | None = None) -> Iterator[None]:
    """Within the block, worker processes started here log at `level` in `fmt` (None: left as it is);
    the environment is restored afterwards, so a command run in-process (tests, tools) does not change
    how later processes log."""
    saved = {name: os.environ.get(name) for name in (env.LOG_LEVEL, env.LOG_FORMAT)}
    for value, name in ((level, env.LOG_LEVEL), (fmt, env.LOG_FORMAT)):
        if value:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
