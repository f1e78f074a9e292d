"""`affectstream cameras add|rm|ls|import` on a real Redis: round trips, masked credentials, `${ENV}`
references kept as written, bad input refused with exit 2 and nothing stored."""

from __future__ import annotations

import json
import string

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectstream.pipeline.cli.main import main
from affectstream.pipeline.fleet.cameras import (
    add_cameras,
    check_camera,
    list_cameras,
    read_change_log,
    remove_camera,
)
from affectstream.pipeline.streams.keys import (
    FLEET_CAMERAS,
    FLEET_CHANGES,
    FLEET_V1_CAMERAS,
    FLEET_VERSION,
    lease_key,
)
from tests.fleet.test_status import lease, member


def ls(redis_url: str, capsys) -> dict:
    assert main(["cameras", "ls", "--json", "--redis", redis_url]) == 0
    return json.loads(capsys.readouterr().out)


def test_add_ls_rm_round_trip(redis_url, capsys):
    assert (
        main(
            [
                "cameras",
                "add",
                "lobby",
                "rtsp://cam1/stream1",
                "--redis",
                redis_url,
                "--set",
                "rtsp_transport=udp",
                "--set",
                "timeout_s=3",
            ]
        )
        == 0
    )
    assert "added camera lobby: rtsp://cam1/stream1" in capsys.readouterr().out
    assert main(["cameras", "add", "door", "rtsp://cam2/s", "--redis", redis_url]) == 0
    assert main(["cameras", "add", "door", "rtsp://cam3/s", "--redis", redis_url]) == 0
    assert "replaced camera door" in capsys.readouterr().out

    listed = ls(redis_url, capsys)
    assert [c["name"] for c in listed["cameras"]] == ["door", "lobby"]
    lobby = listed["cameras"][1]
    assert lobby["options"] == {"rtsp_transport": "udp", "timeout_s": 3}
    assert lobby["owner"] == "" and lobby["lease_age_s"] is None and listed["unreadable"] == []
    assert listed["cameras"][0]["url"] == "rtsp://cam3/s"

    assert main(["cameras", "rm", "lobby", "--redis", redis_url]) == 0
    assert main(["cameras", "rm", "lobby", "--redis", redis_url]) == 1
    assert "camera lobby is not in the fleet" in capsys.readouterr().err
    assert [c["name"] for c in ls(redis_url, capsys)["cameras"]] == ["door"]


def test_ls_table_names_owner_lease_age_and_unreadable_entries(redis_url, capsys):
    client = redis.Redis.from_url(redis_url)
    assert main(["cameras", "add", "lobby", "rtsp://cam1/s", "--redis", redis_url]) == 0
    assert main(["cameras", "add", "door", "rtsp://cam2/s", "--redis", redis_url]) == 0
    lease(client, "lobby", "vm-1-77-w0", age_s=42.0)
    member(client, "vm-1-77", {"lobby": {"fps": 25.0}}, host="vm-1")
    client.hset(FLEET_CAMERAS, "broken", "{not json")
    capsys.readouterr()

    assert main(["cameras", "ls", "--redis", redis_url]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["camera", "owner", "lease", "age", "options", "url"]
    assert lines[1].split()[:2] == ["door", "(unowned)"]
    lobby_row = lines[2].split()
    assert lobby_row[:2] == ["lobby", "vm-1-77"] and lobby_row[2].startswith("42.") and lobby_row[3] == "s"
    assert "broken" in err

    lobby = ls(redis_url, capsys)["cameras"][1]
    assert lobby["owner"] == "vm-1-77" and lobby["worker"] == "vm-1-77-w0"
    assert 41 < lobby["lease_age_s"] < 45
    client.close()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bad name", "rtsp://cam/s"], "camera name"),
        (["cam", "ftp://cam/s"], "unsupported scheme"),
        (["cam", "rtsp://cam/s", "--set", "timeout_s=-1"], "timeout_s"),
        (["cam", "rtsp://cam/s", "--set", "colour=red"], "colour"),
        (["cam", "rtsp://cam/s", "--set", "name=other"], "'name' is not an option"),
        (["cam", "rtsp://cam/s", "--set", "live=false"], "'live' is not an option"),
    ],
)
def test_a_bad_camera_exits_2_and_stores_nothing(redis_url, capsys, argv, message):
    assert main(["cameras", "add", *argv, "--redis", redis_url]) == 2
    assert message in capsys.readouterr().err
    client = redis.Redis.from_url(redis_url)
    assert client.hlen(FLEET_CAMERAS) == 0
    client.close()


def test_no_redis_is_exit_1_and_no_embedded_server_is_started(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("AFFECTSTREAM_REDIS_URL", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(f"redis: {{data_dir: {tmp_path / 'redis'}}}\n")
    assert main(["cameras", "ls", "-c", str(config)]) == 1
    assert "no embedded server running" in capsys.readouterr().err
    assert not (tmp_path / "redis").exists()
    assert main(["fleet", "status", "--redis", "redis://127.0.0.1:1/0"]) == 1
    assert "cannot reach Redis" in capsys.readouterr().err


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    password=st.text(
        alphabet=string.ascii_letters + string.digits + "!%&'()*+,-./:;<=>?@[]^_`{|}~",
        min_size=1,
        max_size=24,
    )
)
def test_ls_masks_any_password(redis_url, capsys, password):
    url = f"rtsp://viewer:{password}@cam.example:8554/stream1"
    assert main(["cameras", "add", "cam", url, "--redis", redis_url]) == 0
    added = capsys.readouterr()
    assert main(["cameras", "ls", "--redis", redis_url]) == 0
    table = capsys.readouterr().out
    shown = ls(redis_url, capsys)["cameras"][0]["url"]
    assert shown == "rtsp://viewer:***@cam.example:8554/stream1"
    for out in (added.out, added.err, table):
        assert f":{password}@" not in out and "viewer:***@cam.example:8554/stream1" in out + added.out


def test_env_references_are_stored_and_shown_as_written(redis_url, capsys, monkeypatch):
    monkeypatch.delenv("CAM_PW", raising=False)  # the operator need not have the secret
    url = "rtsp://viewer:${CAM_PW}@10.0.0.7/stream1"
    assert main(["cameras", "add", "gate", url, "--redis", redis_url]) == 0
    assert "stored in Redis" not in capsys.readouterr().err
    assert ls(redis_url, capsys)["cameras"][0]["url"] == url
    client = redis.Redis.from_url(redis_url)
    assert list_cameras(client)["gate"].url == url
    client.close()
    # A default value may hold the secret itself: masked.
    assert main(["cameras", "add", "gate", "rtsp://v:${CAM_PW:-hunter22}@h/s", "--redis", redis_url]) == 0
    assert "stored in Redis" in capsys.readouterr().err
    assert ls(redis_url, capsys)["cameras"][0]["url"] == "rtsp://v:***@h/s"


def test_import_takes_live_sources_as_written_and_refuses_files(redis_url, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CAM_PW", raising=False)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    config = tmp_path / "fleet.yaml"
    config.write_text(f"""
sources:
  - {{name: lobby, url: "rtsp://viewer:${{CAM_PW}}@10.0.0.7/stream1", rtsp_transport: udp}}
  - "rtsp://10.0.0.8:8554/door"
  - {{name: hls, url: "https://cdn.example/live.m3u8", live: true}}
  - {{name: clip, url: {clip}}}
  - {{name: folder, url: {tmp_path}}}
  - {{name: usb, url: /dev/video0}}
""")
    assert main(["cameras", "add", "door", "rtsp://old/s", "--redis", redis_url]) == 0
    capsys.readouterr()
    assert main(["cameras", "import", "-c", str(config), "--redis", redis_url]) == 0
    out, err = capsys.readouterr()
    assert "imported 3 camera(s)" in out and "2 new, 1 replaced" in out
    assert "sources[3] clip: a file" in err and "sources[4] folder: a file" in err
    assert "sources[5] usb: a local device" in err
    client = redis.Redis.from_url(redis_url)
    cameras = list_cameras(client)
    client.close()
    assert sorted(cameras) == ["door", "hls", "lobby"]
    assert cameras["lobby"].url == "rtsp://viewer:${CAM_PW}@10.0.0.7/stream1"
    assert cameras["lobby"].options == {"rtsp_transport": "udp"}
    assert cameras["door"].url == "rtsp://10.0.0.8:8554/door"


@pytest.mark.parametrize(
    "sources, message",
    [
        ("[{name: clip, url: /no/such.mp4}]", "no live source to import"),
        (
            "[{name: a, url: 'rtsp://h/a'}, {name: b, url: 'rtsp://h/b', timeout_s: 0}]",
            "sources[1]: camera b",
        ),
        ("[{name: a, url: 'rtsp://h/a'}, {name: a, url: 'rtsp://h/b'}]", "two sources are named 'a'"),
        ("[{name: a}]", "sources[0]: expected a mapping with at least `url`"),
        ("{a: 1}", "sources: expected a list"),
    ],
)
def test_a_bad_import_exits_2_and_stores_nothing(redis_url, capsys, tmp_path, sources, message):
    config = tmp_path / "bad.yaml"
    config.write_text(f"sources: {sources}\n")
    assert main(["cameras", "import", "-c", str(config), "--redis", redis_url]) == 2
    assert message in capsys.readouterr().err
    client = redis.Redis.from_url(redis_url)
    assert client.hlen(FLEET_CAMERAS) == 0
    client.close()


def test_import_needs_a_config(redis_url, capsys):
    assert main(["cameras", "import", "--redis", redis_url]) == 2
    assert "-c CONFIG" in capsys.readouterr().err


def test_without_a_url_the_running_embedded_server_is_used(tmp_path, monkeypatch, capsys):
    """What `run` without a Redis URL started on this machine is the fleet's Redis: the commands find it."""
    from affectstream.pipeline.streams.connection import EmbeddedRedis

    monkeypatch.delenv("AFFECTSTREAM_REDIS_URL", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        f"redis: {{data_dir: {tmp_path / 'redis'}}}\nsources: ['rtsp://v:${{UNSET_PW}}@cam/s']\n"
    )
    with EmbeddedRedis(tmp_path / "redis", aof=False):
        assert main(["cameras", "add", "cam", "rtsp://cam/s", "-c", str(config)]) == 0
        assert main(["cameras", "ls", "--json", "-c", str(config)]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["cameras"][0]["name"] == "cam"


def test_every_change_bumps_the_version_and_is_logged(redis_url):
    """What members read instead of the whole list (pipeline.fleet.view): a version, and the names changed."""
    client = redis.Redis.from_url(redis_url)
    add_cameras(client, [check_camera("a", "rtsp://a/s"), check_camera("b", "rtsp://b/s")])
    remove_camera(client, "a")
    add_cameras(client, [check_camera(f"c{i}", "rtsp://c/s") for i in range(150)])  # too many to list
    assert int(client.hget(FLEET_VERSION, "cameras")) == 3
    log = [(v, op, names) for _id, v, op, names in read_change_log(client, "0-0")]
    assert log == [(1, "add", ["a", "b"]), (2, "rm", ["a"]), (3, "reload", [])]
    assert client.xlen(FLEET_CHANGES) == 3
    client.close()


def test_rm_clears_the_fence_of_a_dead_member_and_leaves_a_live_ones(redis_url, capsys):
    client = redis.Redis.from_url(redis_url)
    for name in ("gone", "held"):
        assert main(["cameras", "add", name, "rtsp://cam/s", "--redis", redis_url]) == 0
    member(client, "vm-1-77", {}, host="vm-1")
    lease(client, "gone", "vm-9-1-w0")  # its member is not alive
    lease(client, "held", "vm-1-77-w0")
    assert main(["cameras", "rm", "gone", "--redis", redis_url]) == 0
    assert main(["cameras", "rm", "held", "--redis", redis_url]) == 0
    assert not client.exists(lease_key("gone"))  # a run of that name may start
    assert client.exists(lease_key("held"))  # its owner releases it in its next round
    client.close()


def test_migrate_moves_a_schema_1_list(redis_url, capsys):
    client = redis.Redis.from_url(redis_url)
    old = check_camera("lobby", "rtsp://viewer:${PW}@lobby/s", {"timeout_s": 3})
    client.hset(
        FLEET_V1_CAMERAS,
        mapping={"lobby": old.to_json(), "door": check_camera("door", "rtsp://d/s").to_json()},
    )
    assert main(["cameras", "add", "door", "rtsp://new-door/s", "--redis", redis_url]) == 0
    assert main(["fleet", "migrate", "--redis", redis_url]) == 0
    assert "moved 1 camera(s)" in capsys.readouterr().out
    cameras = list_cameras(client)
    assert cameras["lobby"].url == old.url and cameras["lobby"].options == {"timeout_s": 3}
    assert cameras["door"].url == "rtsp://new-door/s"  # the schema 2 entry wins
    assert not client.exists(FLEET_V1_CAMERAS)
    assert main(["fleet", "migrate", "--redis", redis_url]) == 0
    assert "nothing to migrate" in capsys.readouterr().out
    client.close()
