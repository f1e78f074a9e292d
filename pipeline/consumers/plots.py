"""Per-track plots of a video's results: valence and arousal over time and an expression-probability strip.

matplotlib runs on its Agg backend (no display needed) and is imported only when a plot is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectstream.pipeline.types import FrameResult


@dataclass
class TrackSeries:
    """One track's values over the frames it appears in (NaN where valence/arousal are missing)."""

    track: int
    labels: list[str]
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    valence: list[float] = field(default_factory=list)
    arousal: list[float] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)
    exprs: list[str] = field(default_factory=list)


def track_series(results: Iterable[FrameResult]) -> dict[int, TrackSeries]:
    """Group a video's face results by track id, in frame order."""
    tracks: dict[int, TrackSeries] = {}
    for r in sorted(results, key=lambda r: r.frame):
        for f in r.faces:
            s = tracks.get(f.track)
            if s is None:
                s = tracks[f.track] = TrackSeries(f.track, list(f.probs))
            s.frames.append(r.frame)
            s.times.append(r.pts)
            s.valence.append(np.nan if f.valence is None else f.valence)
            s.arousal.append(np.nan if f.arousal is None else f.arousal)
            s.probs.append([f.probs.get(label, 0.0) for label in s.labels])
            s.exprs.append(f.expr)
    return tracks


def _with_gaps(series: TrackSeries, values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Times and values with a NaN wherever the track skips frames, so lines do not bridge gaps."""
    t, v = [], []
    for i, (frame, time_s, value) in enumerate(zip(series.frames, series.times, values, strict=True)):
        if i and frame - series.frames[i - 1] > 1:
            t.append(time_s)
            v.append(np.nan)
        t.append(time_s)
        v.append(value)
    return np.asarray(t), np.asarray(v, dtype=float)


def _strip_cells(series: TrackSeries) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges in time and a classes x cells matrix; frames the track skips become blank cells."""
    t = np.asarray(series.times, dtype=float)
    half = float(np.median(np.diff(t))) / 2 if len(t) > 1 else 0.02
    nan = [np.nan] * len(series.labels)
    edges, cols = [t[0] - half], [series.probs[0]]
    for i in range(1, len(t)):
        if series.frames[i] - series.frames[i - 1] > 1:
            edges += [t[i - 1] + half, t[i] - half]
            cols += [nan, series.probs[i]]
        else:
            edges.append((t[i - 1] + t[i]) / 2)
            cols.append(series.probs[i])
    edges.append(t[-1] + half)
    return np.asarray(edges), np.asarray(cols, dtype=float).T


def plot_track(series: TrackSeries, path: str | Path, *, title: str = "") -> Path:
    """Write one PNG: valence and arousal lines (range -1..1) above an expression-probability strip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, (ax_va, ax_strip) = plt.subplots(
        2, 1, figsize=(10, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1.3]}, layout="constrained"
    )
    try:
        for values, name, colour in (
            (series.valence, "valence", "#1f77b4"),
            (series.arousal, "arousal", "#d62728"),
        ):
            t, v = _with_gaps(series, values)
            ax_va.plot(t, v, color=colour, lw=1.4, label=name)
        ax_va.axhline(0, color="0.6", lw=0.8)
        ax_va.set_ylim(-1.05, 1.05)
        ax_va.set_ylabel("value")
        ax_va.legend(loc="upper right", ncols=2, fontsize=9)
        ax_va.grid(alpha=0.3)
        ax_va.set_title(title or f"track {series.track}: {len(series.frames)} frames")

        edges, probs = _strip_cells(series)
        mesh = ax_strip.pcolormesh(
            edges,
            np.arange(len(series.labels) + 1),
            np.ma.masked_invalid(probs),
            cmap="magma",
            vmin=0,
            vmax=1,
        )
        ax_strip.set_yticks(np.arange(len(series.labels)) + 0.5, series.labels, fontsize=8)
        ax_strip.invert_yaxis()
        ax_strip.set_xlabel("time (s)")
        # one colourbar for both axes keeps their x extents equal; shrunk and anchored beside the strip
        fig.colorbar(
            mesh, ax=[ax_va, ax_strip], label="probability", pad=0.01, shrink=0.36, anchor=(0.0, 0.0)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def write_track_plots(
    results: Iterable[FrameResult], out_dir: str | Path, *, min_frames: int = 3, prefix: str = "track"
) -> list[Path]:
    """One PNG per track seen in at least `min_frames` frames; returns the written paths (may be none)."""
    tracks = track_series(results)
    chosen = [s for s in tracks.values() if len(s.frames) >= min_frames]
    out_dir = Path(out_dir)
    written = []
    for s in sorted(chosen, key=lambda s: s.track):
        span = f"{s.times[0]:.1f}-{s.times[-1]:.1f} s"
        title = f"track {s.track}: {len(s.frames)} frames, {span}"
        written.append(plot_track(s, out_dir / f"{prefix}_{s.track}.png", title=title))
    return written
