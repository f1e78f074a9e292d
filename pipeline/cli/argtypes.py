"""Argument types shared by the verbs: a bad value is a usage error (exit 2) that names it."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An int of at least 1 (`--workers 0` is refused, not silently the default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed; at least 1")
    return value


def det_size(text: str) -> tuple[int, int] | str:
    """A detector input size: `N` (square), `WxH`, or `auto`; sides positive multiples of 32."""
    from affectstream.pipeline.errors import DetectorError
    from affectstream.pipeline.frames.scrfd import check_input_size

    if text == "auto":
        return text
    w, _, h = text.lower().partition("x")
    try:
        size = (int(w), int(h or w))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"detector size {text!r} is not N, WxH or auto (e.g. 640x384)"
        ) from None
    try:
        check_input_size(size)  # the detector's own rule, checked before anything starts
    except DetectorError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return size
