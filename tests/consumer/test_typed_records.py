"""Typed consumer records against a real Redis: events typed (v2, and v1 entries still read), `tail --json`
without "None", replay from a time (`tail --since/--from`, `start=timedelta`), one set of expression labels."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import jsonschema
import pytest

from affectstream.engines import default_model_path
from affectstream.engines.errors import ModelFileError
from affectstream.engines.labels import EXPRESSIONS, canonical_label
from affectstream.engines.spec import EngineSpec
from affectstream.pipeline.cli.main import main as cli_main
from affectstream.pipeline.errors import SchemaVersionError
from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.encode import encode_frame
from affectstream.pipeline.streams.events import decode_event, read_events
from affectstream.pipeline.streams.keys import events_key, frames_key
from affectstream.pipeline.streams.read import read_all, read_results
from affectstream.pipeline.streams.schema import validate_event
from affectstream.pipeline.streams.since import parse_duration, redis_now
from affectstream.pipeline.streams.writer import publish_event
from affectstream.training.labels import LABEL_SETS
from tests.conftest import need_shared
from tests.consumer.test_consume import make_result
from tests.test_run_files import run_cli


def test_a_run_s_events_come_back_typed(redis_url):
    video = need_shared("media", "videos", "single_face.mp4")
    code, out = run_cli("--source", f"clip={video}", redis_url=redis_url)
    assert code == 0, out
    client = connect(redis_url)
    for _id, fields in client.xrange(events_key("clip")):
        stored = {k.decode(): v.decode() for k, v in fields.items()}
        validate_event(stored)
        assert stored["v"] == "2" and "None" not in stored.values() and "True" not in stored.values()
    started, eof = list(read_events(client, ["clip"]))
    assert started.kind == "started" and started.detail["live"] is False
    assert (started.detail["width"], started.detail["height"], started.detail["frames"]) == (640, 360, 72)
    assert started.detail["fps"] == pytest.approx(30.0) and started.detail["codec"] == "h264"
    assert eof.kind == "eof" and eof.detail["frames"] == eof.detail["decoded"] == 72
    assert isinstance(eof.ts, float) and eof.worker


def test_details_without_a_value_stay_absent_and_v1_entries_read_alike(redis_url):
    client = connect(redis_url)
    publish_event(client, "cam", "started", {"live": True, "fps": None, "width": 1280, "url": "rtsp://x/s"})
    # What events v1 stored for the same event (no `v`, Python's spellings).
    client.xadd(
        events_key("cam"), {"kind": "started", "source": "cam", "ts": "1.5", "live": "True", "fps": "None"}
    )
    new, old = read_events(client, ["cam"])
    assert new.detail == {"live": True, "width": 1280, "url": "rtsp://x/s"}
    assert old.detail == {"live": True} and old.ts == 1.5
    with pytest.raises(SchemaVersionError, match="v='9'"):
        decode_event({"v": "9", "kind": "eof", "source": "cam", "ts": "1"})
    with pytest.raises(SchemaVersionError, match="frames"):
        decode_event({"v": "2", "kind": "eof", "source": "cam", "ts": "1", "frames": "many"})
    with pytest.raises(jsonschema.ValidationError):
        validate_event({"v": "2", "kind": "eof", "source": "cam", "ts": "1", "frames": "None"})


def test_tail_json_numbers_are_numbers_and_absent_is_absent(redis_url, capsys):
    client = connect(redis_url)
    result = make_result("cam-1", 3, faces=2)  # the second face has no arousal
    result.faces[1].valence = None
    client.xadd(frames_key("cam-1"), encode_frame(result))
    assert cli_main(["tail", "cam-1", "--json", "--redis", redis_url]) == 0
    (obj,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (obj["frame"], obj["n"]) == (3, 2) and isinstance(obj["pts"], float)
    assert isinstance(obj["latency_ms"], float) and isinstance(obj["ts"], float)
    first, second = obj["faces"]
    assert isinstance(first["valence"], float) and isinstance(first["arousal"], float)
    assert "valence" not in second and "arousal" not in second
    assert isinstance(second["track"], int) and all(isinstance(p, float) for p in second["probs"].values())


def _write_at(client, source: str, frame: int, at_s: float) -> None:
    """A live source's entry added at Redis time `at_s` (its id is that time in ms, as the workers' are)."""
    result = make_result(source, frame)
    result.ts = at_s
    client.xadd(frames_key(source), encode_frame(result), id=f"{int(at_s * 1000)}-0")


def test_replay_from_a_time_on_redis_s_clock(redis_url, capsys):
    client = connect(redis_url)
    now = redis_now(client)
    for frame, ago_s in enumerate((3600, 1200, 300, 30)):
        _write_at(client, "cam-a", frame, now - ago_s)
    _write_at(client, "cam-b", 0, now - 100)

    got = read_results(client, ["cam-*"], start=timedelta(minutes=10), follow=False)
    assert sorted((e.source, e.result.frame) for e in got) == [("cam-a", 2), ("cam-a", 3), ("cam-b", 0)]

    assert cli_main(["tail", "cam-a", "--since", "25m", "--json", "--redis", redis_url]) == 0
    assert [json.loads(x)["frame"] for x in capsys.readouterr().out.splitlines()] == [1, 2, 3]
    at = datetime.fromtimestamp(now - 600).astimezone().isoformat()
    assert cli_main(["tail", "cam-a", "--from", at, "--json", "--redis", redis_url]) == 0
    assert [json.loads(x)["frame"] for x in capsys.readouterr().out.splitlines()] == [2, 3]
    # bad values are usage errors naming the forms they take
    with pytest.raises(SystemExit) as exit_:
        cli_main(["tail", "cam-a", "--since", "ten minutes", "--redis", redis_url])
    assert exit_.value.code == 2 and "10m" in capsys.readouterr().err
    assert parse_duration("1h30m") == timedelta(minutes=90) and parse_duration("45") == timedelta(seconds=45)


def test_one_set_of_expression_labels():
    spec = EngineSpec.from_json(EngineSpec.from_onnx(default_model_path()).to_json())
    assert set(spec.labels) <= set(EXPRESSIONS)
    for label_set in LABEL_SETS.values():
        assert set(label_set.labels) <= set(EXPRESSIONS), label_set.name
    # A model file that spells them otherwise publishes the one set; its own classes keep their names.
    other = EngineSpec(
        "m",
        (48, 48),
        "gray",
        (0.5,),
        (0.5,),
        ("neutral", "Happiness", "sadness", "angry", "Smirk"),
        True,
        spec.template,
    )
    assert other.labels == ("Neutral", "Happy", "Sad", "Anger", "Smirk")
    with pytest.raises(ModelFileError, match="twice"):
        EngineSpec("m", (48, 48), "gray", (0.5,), (0.5,), ("Happy", "happiness"), True, spec.template)
    assert canonical_label("Other") == "Other" and canonical_label(" FEARFUL ") == "Fear"


def test_entries_written_with_other_names_read_in_the_one_set(redis_url):
    client = connect(redis_url)
    result = make_result("archive", 0)
    face = result.faces[0]
    face.probs = {"Neutral": 0.1, "Happiness": 0.7, "Sadness": 0.2}
    face.expr = "Happiness"
    client.xadd(frames_key("archive"), encode_frame(result), id="1-1")
    (entry,) = read_all(client, "archive")
    assert entry.result.faces[0].expr == "Happy"
    assert set(entry.result.faces[0].probs) == {"Neutral", "Happy", "Sad"}
