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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (`/proc/<pid>/stat`), None when it is gone."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    return _status_kib(pid, "VmRSS") / 1024.0


def peak_rss_mib(pid: int) -> float:
    """The kernel's high-water mark of the process's resident set (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024.0


class PeakSampler:
    """Samples the peak RSS and CPU time of the processes `pids()` returns, every `every_s`, in a daemon thread.

    VmHWM only grows, so the last sample of a process before it exits is its peak (within `every_s`).
    CPU samples (wall time, summed CPU seconds) let `cpu_between` tell the CPU a run used in a window,
    which, unlike throughput, hardly depends on what else the machine is running.
    """

    def __init__(self, pids: Callable[[], Sequence[int]], every_s: float = 0.25) -> None:
        self._pids = pids
        self._every = every_s
        self._stop = threading.Event()
        self.peak_mib = 0.0
        self.cpu: list[tuple[float, float]] = []  # (unix time, CPU seconds summed over the processes)
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def sample(self) -> None:
        import time

        total, seen = 0.0, False
        for pid in self._pids():
            self.peak_mib = max(self.peak_mib, peak_rss_mib(pid))
            cpu = cpu_seconds(pid)
            if cpu is not None:
                total, seen = total + cpu, True
        if seen:
            self.cpu.append((time.time(), total))

    def cpu_between(self, start: float, end: float) -> float | None:
        """CPU seconds used between two unix times (linear between samples); None without samples."""
        if len(self.cpu) < 2:
            return None

        def at(t: float) -> float:
            prev = self.cpu[0]
            for cur in self.cpu:
                if cur[0] >= t:
                    if cur[0] == prev[0]:
                        return cur[1]
                    return prev[1] + (cur[1] - prev[1]) * (t - prev[0]) / (cur[0] - prev[0])
                prev = cur
            return prev[1]

        return at(end) - at(start)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
