"""Markdown table of fault-trial rows (the JSON lines that $AFFECTSTREAM_FAULT_REPORT collects).

python -m tests.faults.table var/faults.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def table(rows: list[dict]) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        for audit in row.get("files", []):
            kind = "file" if row.get("kind") != "archive job" else "archive job"
            groups[(row["fault"], kind)].append(
                {"audit": audit, "recover_s": row.get("recover_s"), "trial": id(row)}
            )
        if row.get("prefix"):  # the pass of a run that was killed: a gap-free prefix
            groups[(row["fault"], "file (killed run's pass)")].append(
                {"audit": row["prefix"], "recover_s": None, "trial": id(row)}
            )
        for audit in row.get("cameras", []):
            groups[(row["fault"], "camera")].append(
                {"audit": audit, "recover_s": row.get("recover_s"), "trial": id(row)}
            )
    lines = ["| fault | source kind | trials | streams | frames expected | published | duplicates | gaps | out of order "
             "| lost events | recover s (median) |", "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for (fault, kind), items in groups.items():
        audits = [i["audit"] for i in items]
        expected = sum(a["expected"] or 0 for a in audits) if kind != "camera" else "-"
        whole = kind == "file"  # `run` passes end with an eof event (archive jobs report in their job hash)
        lost = sum(1 for a in audits if a["events"][-1:] != ["eof"]) if whole else "-"
        recover = [i["recover_s"] for i in items if i["recover_s"] not in (None, -1)]
        median = f"{statistics.median(recover):.2f}" if recover else "-"
        lines.append(
            f"| {fault} | {kind} | {len({i['trial'] for i in items})} | {len(audits)} | {expected} | {sum(a['published'] for a in audits)} "
            f"| {sum(a['duplicates'] for a in audits)} | {sum(a['gaps'] for a in audits)} "
            f"| {sum(not a['in_order'] for a in audits)} | {lost} | {median} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]))
