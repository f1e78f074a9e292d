"""Small statistics and memory helpers shared by the benchmarks."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Sequence
from pathlib import Path


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty sequence; 0.0 when empty."""
    if not values:
        return 0.0
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return float(data[lo] + (data[hi] - data[lo]) * (pos - lo))


def summary(runs: Sequence[float], digits: int = 1) -> dict:
    """{median, runs} of repeated measurements, rounded."""
    return {"median": round(median(runs), digits), "runs": [round(r, digits) for r in runs]}


def _status_kib(pid: int, field: str) -> int:
    """A `/proc/<pid>/status` memory field (VmRSS, VmHWM) in KiB; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024.0


def peak_rss_mib(pid: int) -> float:
    """The kernel's high-water mark of the process's resident set (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024.0


class PeakSampler:
    """Samples the peak RSS of the processes `pids()` returns, every `every_s`, in a daemon thread.

    VmHWM only grows, so the last sample of a process before it exits is its peak (within `every_s`).
    """

    def __init__(self, pids: Callable[[], Sequence[int]], every_s: float = 0.25) -> None:
        self._pids = pids
        self._every = every_s
        self._stop = threading.Event()
        self.peak_mib = 0.0
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def sample(self) -> None:
        for pid in self._pids():
            self.peak_mib = max(self.peak_mib, peak_rss_mib(pid))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
