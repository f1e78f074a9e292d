"""Subcommands `bridge mqtt` and `bridge webhook`: track events (and frames) to an MQTT broker or an HTTP
endpoint, at least once, through a consumer group (`pipeline.consumers.bridge`)."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading

from affectstream.settings import env

REDIS_HELP = "Redis URL: redis[s]://, unix://, redis[s]+cluster://, redis[s]+sentinel://HOSTS/SERVICE (docs/deploy.md; default: $AFFECTSTREAM_REDIS_URL, else the embedded server)"


def _bridge(args: argparse.Namespace, sink, kinds: list[str]) -> int:
    from affectstream.pipeline.consumers.bridge import GroupBridge
    from affectstream.pipeline.streams.connection import redis_session

    args.sources = args.sources or ["*"]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with redis_session(args.redis or os.environ.get(env.REDIS_URL)) as (_url, client):
        bridge = GroupBridge(
            client,
            args.sources,
            kinds,
            args.group,
            args.consumer,
            start="0" if args.from_start else "$",
        )
        print(
            f"bridging {', '.join(kinds)} of {' '.join(args.sources)} as {args.consumer} of group {args.group}",
            file=sys.stderr,
            flush=True,
        )
        try:
            delivered = bridge.run(sink.send, stop.is_set)
        finally:
            close = getattr(sink, "close", None)
            if close is not None:
                close()
    print(f"delivered {delivered} entries", file=sys.stderr)
    return 0


def cmd_mqtt(args: argparse.Namespace) -> int:
    from affectstream.pipeline.errors import require

    require("paho")
    from affectstream.pipeline.consumers.mqtt_sink import MqttSink

    sink = MqttSink(args.url, qos=args.qos, retain=args.retain, prefix=args.topic_prefix, ca=args.ca)
    return _bridge(args, sink, ["tracks", "frames"] if args.frames else ["tracks"])


def cmd_webhook(args: argparse.Namespace) -> int:
    from affectstream.pipeline.consumers.webhook_sink import WebhookSink

    return _bridge(args, WebhookSink(args.url, timeout_s=args.timeout), ["tracks"])


def _common(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--redis", metavar="URL", help=REDIS_HELP)
    p.add_argument(
        "--source",
        dest="sources",
        action="append",
        metavar="NAME",
        help="source name or glob, repeatable (default: every source, '*')",
    )
    p.add_argument("--group", default=f"bridge-{name}", help=f"consumer group (default bridge-{name})")
    p.add_argument(
        "--consumer",
        default=socket.gethostname(),
        help="this bridge's name in the group: the same name resumes its own entries (default: the host name)",
    )
    p.add_argument(
        "--from-start",
        action="store_true",
        help="a new group starts with everything kept (default: entries added from now on)",
    )
    p.set_defaults(sources=None)


def register(subparsers) -> None:
    """Add `bridge mqtt` and `bridge webhook` to the `affectstream` command."""
    bridge = subparsers.add_parser(
        "bridge", help="track events (and frames) to MQTT or a webhook, at least once"
    )
    verbs = bridge.add_subparsers(dest="bridge", metavar="{mqtt,webhook}", required=True)

    p = verbs.add_parser("mqtt", help="publish track events (and frames) to an MQTT broker")
    p.add_argument("url", metavar="mqtt[s]://[USER:PASSWORD@]HOST[:PORT]", help="the broker")
    _common(p, "mqtt")
    p.add_argument("--frames", action="store_true", help="also every frame, on <prefix>/<source>/frames")
    p.add_argument(
        "--qos", type=int, choices=(0, 1, 2), default=1, help="MQTT QoS (default 1: at least once)"
    )
    p.add_argument("--retain", action="store_true", help="publish retained messages")
    p.add_argument(
        "--topic-prefix", default="affectstream", help="topics' first level (default affectstream)"
    )
    p.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts:// (default: the system's)")
    p.set_defaults(handler=cmd_mqtt)

    p = verbs.add_parser("webhook", help="POST track events to an HTTP endpoint (Idempotency-Key header)")
    p.add_argument("url", metavar="http[s]://HOST[:PORT]/PATH", help="the endpoint")
    _common(p, "webhook")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each answer (default 10)")
    p.set_defaults(handler=cmd_webhook)
