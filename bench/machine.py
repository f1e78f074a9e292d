"""What the numbers were measured on: CPU, memory, library versions, and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

from affectstream.pipeline.fleet.capacity import cpu_model


def _mem_total_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return 0.0


def _version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cv2() -> str:
    try:
        import cv2
    except ImportError:
        return "not installed"
    return cv2.__version__


def busy_processes(min_cpu: float = 20.0) -> list[str]:
    """Other processes using at least `min_cpu` % CPU right now (`ps`), e.g. a training job.

    Benchmarks share the machine; naming what else ran makes noisy numbers explainable.
    """
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid=,pcpu=,args="], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    mine = {os.getpid(), os.getppid()}
    busy = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and int(parts[0]) not in mine and float(parts[1]) >= min_cpu:
            busy.append(f"{parts[1]}% {parts[2][:100]}")
    return busy


def describe() -> dict:
    """A JSON-friendly description of this machine and the software versions that matter."""
    load = os.getloadavg()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": {
            **{m: _version(m) for m in ("onnxruntime", "av", "numpy", "insightface", "redis")},
            "opencv": _cv2(),
        },
        "loadavg_at_start": [round(x, 2) for x in load],
        "busy_processes_at_start": busy_processes(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def finish(machine: dict) -> dict:
    """Add the load at the end of the run."""
    machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    machine["busy_processes_at_end"] = busy_processes()
    return machine
