"""Plain-text tables for the commands' summaries (demo, models, benchmarks)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_table(
    header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "", rule: bool = False
) -> str:
    """Columns as wide as their widest cell, two spaces apart; the last column is not padded.

    Args:
        header: Column names.
        rows: Cells, formatted with `str` (format floats before, to choose their digits).
        align: One `<` (left) or `>` (right) per column; missing ones are `<`.
        rule: A line of dashes under the header.
    """
    table = [list(map(str, header))] + [list(map(str, row)) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    sides = align.ljust(len(header), "<")

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if a == ">" else c.ljust(w) for c, w, a in zip(cells[:-1], widths, sides, strict=False)
        ]
        last = cells[-1].rjust(widths[-1]) if sides[len(cells) - 1] == ">" else cells[-1]
        return "  ".join([*padded, last]).rstrip()

    lines = (
        [line(table[0])] + (["-" * len(line(table[0]))] if rule else []) + [line(row) for row in table[1:]]
    )
    return "\n".join(lines)
