"""A host whose wall clock is off, for fault tests (never installed, never imported by the package).

A test puts this folder first on `PYTHONPATH` of a process it starts and sets `AFFECTSTREAM_TEST_CLOCK_OFFSET_S`:
Python imports `sitecustomize` at start-up, before any module of ours, so `time.time` (and `time.time_ns`) of
that process, and of the processes it starts (they inherit the environment), read that many seconds off.
Monotonic clocks are left alone, as a wrong wall clock leaves them. (libfaketime crashes the supervisor.)
"""

import os
import time

OFFSET_ENV = "AFFECTSTREAM_TEST_CLOCK_OFFSET_S"
_offset = float(os.environ.get(OFFSET_ENV) or 0.0)

if _offset:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _offset
    time.time_ns = lambda: _time_ns() + int(_offset * 1e9)
