"""A consumer-group member run as a real subprocess by test_consume.py.

It reads one batch of deliveries, prints their ids as one JSON line, and then hangs without
acknowledging, so the test can SIGKILL it "mid-processing".
"""

import json
import sys
import time

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.read import GroupReader


def main() -> None:
    url, source, group, consumer, want = sys.argv[1:6]
    reader = GroupReader(connect(url), [source], group, consumer, start="0", block_ms=200)
    got: list[str] = []
    deadline = time.monotonic() + 20
    while len(got) < int(want) and time.monotonic() < deadline:
        got += [d.id for d in reader.read()]
    print(json.dumps(got), flush=True)
    time.sleep(600)  # "processing": killed before it can acknowledge


if __name__ == "__main__":
    main()
