"""Which SCRFD ONNX file the face detector loads: a configured path, or an insightface model pack.

The detector is configured as a path (`detector.model`, `--detector`, `$AFFECTSTREAM_DETECTOR`) or as
an insightface model-pack name, whose detector is looked up under `~/.insightface/models/<pack>/` and,
where the network allows, downloaded by insightface first. Offline (as everywhere here) a pack that is
not on disk is an error naming where the file is expected and how to point affectstream at another one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path

from affectstream.pipeline.errors import DetectorError
from affectstream.settings import env

log = logging.getLogger(__name__)

# Detector file inside the insightface model packs that carry one (the zip names of the packs).
PACK_DETECTORS = {
    "buffalo_l": "det_10g.onnx",
    "buffalo_m": "det_2.5g.onnx",
    "buffalo_s": "det_500m.onnx",
    "buffalo_sc": "det_500m.onnx",
    "antelopev2": "scrfd_10g_bnkps.onnx",
}
DEFAULT_PACK = "buffalo_sc"  # the detector when none is configured: insightface's smallest pack with SCRFD
_FIX = "set AFFECTSTREAM_DETECTOR or pass --detector PATH (e.g. ../shared/models/scrfd_500m.onnx)"


def configured_detector(model: str | None = None) -> str:
    """The detector to load: `model`, else `$AFFECTSTREAM_DETECTOR`, else the shared folder's SCRFD-500M
    when it is there (`shared_detector`), else `DEFAULT_PACK`."""
    return model or os.environ.get(env.DETECTOR) or shared_detector() or DEFAULT_PACK


def shared_detector() -> str | None:
    """`models/scrfd_500m.onnx` of the shared folder (`$AFFECTSTREAM_SHARED`, default `../shared`), as an
    absolute path, when that file exists: in a checkout, the commands work offline with nothing set by hand
    (README); elsewhere there is no such folder and the insightface pack is the default."""
    path = Path(os.environ.get(env.SHARED) or "../shared") / "models" / "scrfd_500m.onnx"
    return str(path.resolve()) if path.is_file() else None


def _insightface_root(root: str | Path | None) -> Path:
    return Path(root if root is not None else "~/.insightface").expanduser()


def _find_in_pack(pack_dir: Path) -> Path | None:
    if not pack_dir.is_dir():
        return None
    found = sorted(pack_dir.glob("det_*.onnx")) or sorted(pack_dir.glob("*scrfd*.onnx"))
    return found[0] if found else None


def resolve_detector(model: str, *, root: str | Path | None = None, download: bool = True) -> Path:
    """Find the SCRFD ONNX file for a configured detector.

    Args:
        model: A path to an ONNX file (anything ending in `.onnx` or containing a path separator),
            or an insightface model-pack name such as `buffalo_l` or `buffalo_sc`, whose detector
            (`det_*.onnx`) is looked up under `<root>/models/<pack>/`.
        root: insightface's data root; default `~/.insightface`.
        download: For a pack that is not on disk, let insightface download it first (needs network).

    Returns:
        The ONNX file.

    Raises:
        DetectorError: The file is missing (and could not be downloaded); the message names the path
            where the file is expected and how to point affectstream at another one.
    """
    text = str(model).strip()
    if not text:
        raise DetectorError(f"no detector model configured; {_FIX}")
    candidate = Path(text).expanduser()
    if text.endswith(".onnx") or os.sep in text or "/" in text:
        if candidate.is_file():
            return candidate.resolve()
        if candidate.is_dir() and (found := _find_in_pack(candidate)):
            return found.resolve()
        raise DetectorError(f"detector model {candidate} does not exist; put the ONNX file there or {_FIX}")

    pack_dir = _insightface_root(root) / "models" / text
    found = _find_in_pack(pack_dir)
    if found is None and download:
        found = _download_pack(text, pack_dir)
    if found is not None:
        return found.resolve()
    where = pack_dir / PACK_DETECTORS.get(text, "det_*.onnx")
    raise DetectorError(
        f"detector model pack {text!r} has no detector: put the SCRFD ONNX file at {where} "
        f"(insightface could not download it), or {_FIX}"
    )


def _download_pack(pack: str, pack_dir: Path) -> Path | None:
    """Ask insightface to download a model pack; None when it cannot (offline, unknown pack)."""
    from insightface.utils import storage

    out = io.StringIO()  # insightface prints progress to stdout; keep it out of the worker's output
    try:
        with contextlib.redirect_stdout(out):
            storage.download("models", pack, root=str(pack_dir.parent.parent))
    except Exception as exc:  # requests / zipfile / OS errors: the caller reports the path instead
        log.warning("insightface could not download model pack %r: %s", pack, exc)
        return None
    return _find_in_pack(pack_dir)
