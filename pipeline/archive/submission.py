"""`archive submission`: the challenge's submission files from an `archive` output folder.

The recent ABAW challenges take one file per task (`image_location,valence,arousal` rows such as
`video/00001.jpg,0.25,-0.1`, or `image_location,Neutral,...,Other` rows `video/00001.jpg,4`). They are
assembled from the per-video `VA/` and `EXPR/` files, frame for frame, so `evaluate-abaw` scores both
forms alike. The per-frame decisions (`frames/<video>.csv`) are copied beside them (not for upload: they
let `evaluate-abaw` report the filled share of a submission too).
"""

from __future__ import annotations

from pathlib import Path

from affectstream.pipeline.errors import ConfigError
from affectstream.scoring.abaw import read_expr, read_va, submission_text, write_atomic

READERS = {"VA": read_va, "EXPR": read_expr}


def write_submission(out: str | Path, dest: str | Path) -> dict[str, Path]:
    """Write `<dest>/VA.txt` and `<dest>/EXPR.txt` (and copy `frames/` there).

    `dest` should lie outside `out`: `evaluate-abaw --pred out` would otherwise find every prediction twice.

    Returns:
        {task: path written}.

    Raises:
        ConfigError: `out` holds no `VA/` or `EXPR/` prediction files.
    """
    out = Path(out)
    dest = Path(dest)
    written = {}
    for kind, reader in READERS.items():
        videos = {p.stem: reader(p) for p in sorted((out / kind).glob("*.txt"))}
        if videos:
            written[kind] = write_atomic(dest / f"{kind}.txt", submission_text(kind, videos))
    if not written:
        raise ConfigError(
            f"{out}: no VA/*.txt or EXPR/*.txt prediction files (an `archive submit --output` folder)"
        )
    for path in sorted((out / "frames").glob("*.csv")):
        write_atomic(dest / "frames" / path.name, path.read_text(encoding="utf-8"))
    return written
