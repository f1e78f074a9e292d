"""`archive status`: one progress bar per job, then totals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

BAR = 24


def bar(done: int, total: int) -> str:
    """`[#########...............]` for `done` of `total` (all dots when the total is unknown)."""
    filled = min(BAR, BAR * done // total) if total > 0 else 0
    return "[" + "#" * filled + "." * (BAR - filled) + "]"


def format_status(rows: list[dict[str, str]]) -> str:
    """The table `archive status` prints for `jobs.list_jobs` rows."""
    if not rows:
        return "no archive jobs (queue some with `affectstream archive submit --output DIR PATHS...`)"
    lines = []
    states: Counter = Counter()
    frames_done = frames_total = 0
    for job in rows:
        done, total = int(job.get("frames_done") or 0), int(job.get("frames_total") or 0)
        state = job.get("state", "?")
        states[state] += 1
        frames_done, frames_total = frames_done + done, frames_total + max(total, done)
        pct = f"{100 * done // total:3d}%" if total else "  ?%"
        note = job.get("worker", "") if state == "running" else job.get("reason", "")
        if state == "running" and int(job.get("attempts") or 1) > 1:
            note += f" (attempt {job['attempts']})"
        lines.append(
            f"{job['id']}  {bar(done, total)} {pct} {done:>7}/{total:<7} {state:<7} "
            f"{Path(job['path']).name}  {note}".rstrip()
        )
    summary = ", ".join(f"{states[s]} {s}" for s in ("queued", "running", "done", "failed") if states[s])
    lines.append(f"{len(rows)} job(s): {summary}; frames {frames_done}/{frames_total}")
    return "\n".join(lines)
