"""Markdown table of fault-trial rows (the JSON lines that $AFFECTSTREAM_FAULT_REPORT collects).

python -m tests.faults.table var/faults.jsonl
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def table(rows: list[dict]) -> str:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        accounts = defaultdict(list)  # source -> the closing accounts of its workers (`accounting {...}`)
        for account in row.get("accounts", []):
            accounts[account["source"]].append(account)
        for audit in row.get("files", []):
            kind = "file" if row.get("kind") != "archive job" else "archive job"
            groups[(row["fault"], kind)].append(
                {
                    "audit": audit,
                    "recover_s": row.get("recover_s"),
                    "trial": id(row),
                    "accounts": accounts.get(audit["source"]),
                }
            )
        if row.get("prefix"):  # the pass of a run that was killed: a gap-free prefix
            groups[(row["fault"], "file (killed run's pass)")].append(
                {"audit": row["prefix"], "recover_s": None, "trial": id(row)}
            )
        for audit in row.get("cameras", []):
            groups[(row["fault"], "camera")].append(
                {
                    "audit": audit,
                    "recover_s": row.get("recover_s"),
                    "trial": id(row),
                    "accounts": accounts.get(audit["source"]),
                }
            )
    lines = [
        "| fault | source kind | trials | streams | frames expected | published | duplicates | gaps | out of order "
        "| lost events | recover s (median) | decoded = published + dropped (reasons) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
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
            f"| {sum(not a['in_order'] for a in audits)} | {lost} | {median} | {_accounts(items)} |"
        )
    return "\n".join(lines)


def _accounts(items: list[dict]) -> str:
    """`decoded = published + dropped` summed over the group's accounts, with the drops by reason."""
    found = [a for i in items for a in (i.get("accounts") or [])]
    if not found:
        return "-"
    decoded, published = sum(a["decoded"] for a in found), sum(a["published"] for a in found)
    reasons: dict[str, int] = defaultdict(int)
    for a in found:
        for reason, n in a["dropped"].items():
            reasons[reason] += n
    holds = all(a["decoded"] == a["published"] + sum(a["dropped"].values()) + a["in_flight"] for a in found)
    why = ", ".join(f"{r} {n}" for r, n in sorted(reasons.items()))
    return f"{decoded} = {published} + {sum(reasons.values())}{f' ({why})' if why else ''}{'' if holds else ' (does not hold)'}"


if __name__ == "__main__":
    lines = [line for path in sys.argv[1:] for line in Path(path).read_text().splitlines()]
    print(table([json.loads(line) for line in lines if line.strip()]))
