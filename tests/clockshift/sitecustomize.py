"""A host whose wall clock is off, or is stepped mid-run, for fault tests (never installed, never imported
by the package).

A test puts this folder first on `PYTHONPATH` of a process it starts, and sets either
- `AFFECTSTREAM_TEST_CLOCK_OFFSET_S`: the clock is that many seconds off for the process's whole life, or
- `AFFECTSTREAM_TEST_CLOCK_FILE`: a file holding the offset in seconds, re-read as it changes: writing it
  steps the clock of every process of the run at once, mid-run.
Python imports `sitecustomize` at start-up, before any module of ours, so `time.time` (and `time.time_ns`)
of that process, and of the processes it starts (they inherit the environment), read off by the offset.
Monotonic clocks are left alone, as a wrong or stepped wall clock leaves them. (libfaketime crashes the
supervisor.)
"""

import os
import time

OFFSET_ENV = "AFFECTSTREAM_TEST_CLOCK_OFFSET_S"
FILE_ENV = "AFFECTSTREAM_TEST_CLOCK_FILE"

_fixed = float(os.environ.get(OFFSET_ENV) or 0.0)
_path = os.environ.get(FILE_ENV)

if _fixed or _path:
    _time, _time_ns, _monotonic = time.time, time.time_ns, time.monotonic
    _state = {"offset": _fixed, "read_at": -1.0}

    def _offset() -> float:
        if _path and _monotonic() - _state["read_at"] > 0.05:  # at most 20 reads a second
            _state["read_at"] = _monotonic()
            try:
                with open(_path) as fh:
                    _state["offset"] = _fixed + float(fh.read().strip() or 0)
            except (OSError, ValueError):
                pass
        return _state["offset"]

    time.time = lambda: _time() + _offset()
    time.time_ns = lambda: _time_ns() + int(_offset() * 1e9)
