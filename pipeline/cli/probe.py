"""`affectstream probe URL`: open one source, print its events and decode rate (camera debugging)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from affectstream.pipeline.masking import mask_url
from affectstream.pipeline.sources.spec import RTSP_TRANSPORTS

# What the summary repeats from the started/recovered events.
STREAM_FACTS = ("codec", "width", "height", "fps", "transport")


def register(subparsers) -> None:
    """Add the `probe` subcommand to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "probe",
        help="open a video source, print its events and how fast it decodes",
        description="Open a file, RTSP/HTTP(S)/HLS URL or /dev/video* device with the pipeline's reader "
        "and report stream info, events and the decode rate. Passwords in URLs are masked.",
    )
    p.add_argument("url", help="file path, rtsp://, http(s):// (also .m3u8) URL, or /dev/video*")
    p.add_argument("--name", default="probe", help="source id shown in events")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: no limit)")
    p.add_argument("--seconds", type=float, default=10.0, help="live sources: stop after this long")
    p.add_argument("--live", choices=("auto", "yes", "no"), default="auto", help="newest-frame policy")
    p.add_argument("--realtime", action="store_true", help="files: replay at the native frame rate")
    p.add_argument("--timeout", type=float, default=5.0, help="open/socket timeout, seconds (timeout_s)")
    p.add_argument(
        "--rtsp-transport",
        choices=RTSP_TRANSPORTS,
        default="auto",
        help="RTSP lower transport; auto: TCP, then UDP when the server refuses TCP (461)",
    )
    p.add_argument(
        "--silent-after",
        type=float,
        default=5.0,
        help="live: a connected source that delivers no frame this long is down (silent_after_s)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=probe)


def probe(args: argparse.Namespace) -> int:
    """Run the probe; exit 0 when at least one frame was decoded, 1 otherwise."""
    from affectstream.pipeline.errors import SourceError
    from affectstream.pipeline.sources import SourceSpec, open_source

    if "://" not in args.url and not Path(args.url).exists():  # a typo, not a camera that is down
        raise SourceError(f"{args.url}: no such file or device")
    live = {"auto": None, "yes": True, "no": False}[args.live]
    spec = SourceSpec(
        args.name,
        args.url,
        live=live,
        realtime=args.realtime,
        timeout_s=args.timeout,
        rtsp_transport=args.rtsp_transport,
        silent_after_s=args.silent_after,
    )
    t0 = time.monotonic()
    stream: dict = {}  # what the last started/recovered event said about the stream
    last_reason: list[str] = []

    def on_event(name: str, kind: str, detail: dict) -> None:
        if kind in ("started", "recovered"):
            stream.update({k: detail.get(k) for k in STREAM_FACTS if k in detail})
        if "reason" in detail:
            last_reason[:] = [detail["reason"]]
        print(f"{time.monotonic() - t0:7.2f}s  {kind:<12} {json.dumps(detail, default=str)}", flush=True)

    src = open_source(spec, on_event).start()
    taken = 0
    first_at: float | None = None
    last_at: float | None = None
    deadline = t0 + args.seconds
    try:
        while not src.finished:
            if (args.frames and taken >= args.frames) or (spec.live and time.monotonic() > deadline):
                break
            if src.get(0.2) is not None:
                taken += 1
                last_at = time.monotonic()
                first_at = first_at or last_at
    finally:
        src.stop()
    stats = src.stats
    summary = {
        "source": mask_url(args.url),
        "frames": taken,
        "decoded": stats.decoded,
        "dropped": stats.dropped,
        "corrupt": stats.corrupt,
        "reconnects": stats.reconnects,
        "state": stats.state,
        **stream,
        "first_frame_s": round(first_at - t0, 3) if first_at is not None else None,
        "fps": round((taken - 1) / (last_at - first_at), 1)
        if first_at is not None and last_at is not None and taken > 1 and last_at > first_at
        else None,
    }
    if not taken and last_reason:
        summary["reason"] = last_reason[0]
    if args.json:
        print(json.dumps(summary))
    else:
        print("  ".join(f"{k}={v}" for k, v in summary.items()))
    return 0 if taken else 1
