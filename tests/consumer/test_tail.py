"""`affectstream tail` against a real Redis: table, JSON lines, -n, globs, --follow."""

from __future__ import annotations

import io
import json
import threading
import time

from affectstream.pipeline.cli.main import main as cli_main
from affectstream.pipeline.consumers.tail import tail
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.writer import ResultPublisher
from tests.consumer.test_consume import make_result


def test_table_newest_entries_over_a_glob(redis_url, capsys):
    client = connect(redis_url)
    publisher = ResultPublisher(client, maxlen=1000)
    for i in range(6):
        publisher.publish([make_result("cam-1", i), make_result("cam-2", i, faces=0)])
    publisher.publish([make_result("lobby", 0)])
    assert cli_main(["tail", "cam-*", "-n", "4", "--redis", redis_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["time", "source", "frame", "pts"]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) == 4 and {r[1] for r in rows} == {"cam-1", "cam-2"}
    assert sorted(int(r[2]) for r in rows) == [4, 4, 5, 5]  # the newest, over both sources
    cam1 = next(line for line in lines if " cam-1 " in line)
    assert "#1 " in cam1 and " V" in cam1 and " A+0.25" in cam1
    assert next(line for line in lines if " cam-2 " in line).rstrip().endswith("-")  # no face


def test_json_lines_and_missing_source(redis_url, capsys):
    client = connect(redis_url)
    ResultPublisher(client, maxlen=1000).publish([make_result("cam-1", i) for i in range(3)])
    assert cli_main(["tail", "cam-1", "--json", "-n", "2", "--redis", redis_url]) == 0
    objs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [o["frame"] for o in objs] == [1, 2]
    assert objs[0]["faces"][0]["expr"] and objs[0]["n"] == 1 and "-" in objs[0]["id"]
    assert cli_main(["tail", "nope-*", "--redis", redis_url]) == 2
    err = capsys.readouterr().err
    assert "no results stream matches" in err and "cam-1" in err


def test_follow_prints_backlog_then_new_entries_once(redis_url):
    client = connect(redis_url)
    publisher = ResultPublisher(client, maxlen=1000)
    publisher.publish([make_result("cam-1", i) for i in range(3)])
    out = io.StringIO()
    deadline = time.monotonic() + 10

    def produce() -> None:
        time.sleep(0.3)
        publisher.publish([make_result("cam-1", 3), make_result("cam-7", 0)])  # cam-7: a new stream

    threading.Thread(target=produce, daemon=True).start()
    stop = lambda: "cam-7" in out.getvalue() or time.monotonic() > deadline  # noqa: E731
    printed = tail(connect(redis_url), ["cam-*"], n=2, follow=True, as_json=True, out=out, should_stop=stop)
    got = [(o["source"], o["frame"]) for o in map(json.loads, out.getvalue().splitlines())]
    assert got == [("cam-1", 1), ("cam-1", 2), ("cam-1", 3), ("cam-7", 0)] and printed == 4
