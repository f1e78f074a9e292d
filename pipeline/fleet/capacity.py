"""How many cameras this member holds: a number from the config, or what `bench capacity` measured here.

`fleet.max_sources: auto` reads the file `affectstream bench capacity` writes
(`$AFFECTSTREAM_CAPACITY_FILE`, default `var/capacity.json`). The file names the machine it was measured
on (CPU model and count): a capacity measured on a 16-core server must not make a 2-core member claim 16
cameras, so a file from another machine, like a missing or unreadable one, gives `FALLBACK`.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from pathlib import Path
from typing import Any

from affectstream.settings import env

log = logging.getLogger(__name__)

# What the issue measured for a 2-core box at detect-every-frame defaults: the safe guess without a file.
FALLBACK = 3
DEFAULT_FILE = "var/capacity.json"


def capacity_file() -> Path:
    return Path(os.environ.get(env.CAPACITY_FILE) or DEFAULT_FILE)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_facts() -> dict[str, Any]:
    """What a measured capacity depends on and a member can check cheaply: CPU model and count."""
    return {"cpu": cpu_model(), "cores": os.cpu_count()}


def member_capacity(value: int | str) -> int:
    """Cameras this member claims: `value` itself when a number, else ("auto") the measured capacity.

    Falls back to `FALLBACK` with one log line when the file is missing, unreadable or from another machine.
    """
    if isinstance(value, int):
        return value
    path = capacity_file()
    try:
        data = json.loads(path.read_text())
        measured, machine = int(data["capacity"]), data["machine"]
    except FileNotFoundError:
        log.info("capacity: %s not found (run `affectstream bench capacity`); using %d", path, FALLBACK)
        return FALLBACK
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("capacity: %s unreadable (%s); using %d", path, exc, FALLBACK)
        return FALLBACK
    here = machine_facts()
    if {k: machine.get(k) for k in here} != here:
        log.warning(
            "capacity: %s was measured on %s x%s, this is %s x%s; using %d",
            path,
            machine.get("cpu"),
            machine.get("cores"),
            here["cpu"],
            here["cores"],
            FALLBACK,
        )
        return FALLBACK
    if measured < 1:  # not even one camera met the targets here: hold one anyway, not none
        log.warning("capacity: %s says %d cameras meet the targets; using 1", path, measured)
        return 1
    return measured


def write_capacity(path: Path, capacity: int, details: dict[str, Any]) -> None:
    """Store a measured capacity with this machine's facts (what `member_capacity("auto")` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"capacity": capacity, "machine": machine_facts(), **details}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # a member starting meanwhile reads the old file or the new one, never half of one
