"""Source names (issue 24, DESIGN.md "Names"): one rule, `[A-Za-z0-9._-]{1,100}` matched whole, wherever a
name enters (config `sources[].name`, `--source NAME=URL`, `cameras add`, `--member`); names derived from a
URL or file name are sanitised to it; two sources of one run that would write one stream are a config error.
"""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from affectstream.pipeline.cli.main import main
from affectstream.pipeline.cli.run import parse_source_arg
from affectstream.pipeline.config import load_config
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.sources.spec import SourceSpec, SourceSpecError, source_name_from_url
from affectstream.pipeline.streams import keys

NO_REDIS = "redis://127.0.0.1:1/0"  # refused at once: a name check must come before any connection
RULE = "is not allowed; use 1-100 letters, digits, '_', '.' or '-'"
BAD_NAMES = ["a}{b", "p:q", "x\nFORGED line", "cam\n", "", " ", "a b", "a" * 101, "caf\u00e9", "tab\there"]
SAFE = string.ascii_letters + string.digits + "_.-"


# -- the rule -----------------------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(st.text(SAFE, min_size=1, max_size=100))
def test_an_accepted_name_makes_keys_that_round_trip(name):
    assert keys.is_key_safe(name) and keys.check_name(name) == name
    for key in (keys.frames_key(name), keys.events_key(name), keys.lease_key(name), keys.snapshot_key(name)):
        assert keys.source_of(key) == name
        tag = key.split("{", 1)[1].rsplit("}", 1)[0]
        assert not set(tag) & set("{}:") and not any(c.isspace() for c in tag)
    assert keys.source_of_stream(keys.frames_key(name)) == name
    assert keys.source_of_stream(keys.events_key(name), keys.EVENTS_SUFFIX) == name


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=120))
def test_the_rule_is_the_whole_string(text):
    ok = keys.is_key_safe(text)
    assert ok == (1 <= len(text) <= 100 and all(c in SAFE for c in text))
    if not ok:
        with pytest.raises(ValueError, match="use 1-100 letters"):
            keys.check_name(text)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=300))
def test_a_derived_name_follows_the_rule(text):
    assert keys.is_key_safe(keys.safe_name(text))
    assert keys.is_key_safe(source_name_from_url(text))
    assert keys.is_key_safe(source_name_from_url(f"/videos/{text}.mp4"))
    assert keys.is_key_safe(source_name_from_url(f"rtsp://user:pw@{text}:8554/"))


def test_derived_names_are_sanitised_and_cut_to_100():
    assert source_name_from_url("/v/a}{b.mp4") == "a_b"
    assert source_name_from_url("/v/x\nFORGED line.mp4") == "x_FORGED_line"
    assert source_name_from_url("/v/" + "n" * 150 + ".mp4") == "n" * 100
    assert source_name_from_url("rtsp://cam:8554/") == "cam_8554"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_source_spec_refuses_a_bad_name(name):
    with pytest.raises(SourceSpecError) as exc:
        SourceSpec(name=name, url="rtsp://h/s")
    assert str(exc.value) == f"SourceSpec.name: {name!r} {RULE}"
    SourceSpec(name="a" * 100, url="rtsp://h/s")  # the longest allowed


# -- config -------------------------------------------------------------------------------------------
def _config(tmp_path, sources: list):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"sources": sources}))
    return path


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_config_name_is_refused_with_the_rule(tmp_path, name):
    path = _config(tmp_path, [{"name": "cam0", "url": "rtsp://h/s"}, {"name": name, "url": "rtsp://h/t"}])
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(exc.value) == f"sources[1].name: {name!r} {RULE}"


def test_a_bad_prefix_of_a_folder_is_refused(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").touch()
    with pytest.raises(ConfigError, match=r"sources\[0\]\.name: 'p:q' is not allowed"):
        load_config(_config(tmp_path, [{"name": "p:q", "url": str(tmp_path / "v")}]))
    cfg = load_config(_config(tmp_path, [{"name": "p" * 99, "url": str(tmp_path / "v")}]))
    assert [s.name for s in cfg.sources] == ["p" * 99 + "-"]  # derived: cut to 100


def test_config_check_exits_2_with_the_rule(tmp_path, capsys):
    path = _config(tmp_path, [{"name": "x\nFORGED line", "url": "rtsp://h/s"}])
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"sources[0].name: 'x\\nFORGED line' {RULE}" in err and "\nFORGED" not in err


def test_two_files_whose_names_sanitise_alike_are_a_config_error(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "cam 1.mp4").touch()
    (tmp_path / "b" / "cam_1.mp4").touch()
    path = _config(tmp_path, [str(tmp_path / "a" / "cam 1.mp4"), str(tmp_path / "b" / "cam_1.mp4")])
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert "cam 1.mp4" in message and "cam_1.mp4" in message and "affect:{cam_1}:frames" in message
    assert main(["run", "-c", str(path), "--redis", NO_REDIS]) == 2
    assert "are both named 'cam_1'" in capsys.readouterr().err


def test_a_folder_expansion_colliding_with_a_named_source_is_a_config_error(tmp_path):
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "door.mp4").touch()
    (tmp_path / "other.mp4").touch()
    path = _config(tmp_path, [{"name": "door", "url": str(tmp_path / "other.mp4")}, str(tmp_path / "v")])
    with pytest.raises(ConfigError, match=r"other\.mp4.* and .*door\.mp4.* are both named 'door'"):
        load_config(path)


def test_a_source_flag_colliding_with_a_config_source_is_a_config_error(tmp_path):
    path = _config(tmp_path, [{"name": "cam", "url": "rtsp://h/s"}])
    with pytest.raises(ConfigError, match="are both named 'cam'"):
        load_config(path, {"sources": [parse_source_arg("cam=rtsp://h/t")]})


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["cam\n", "p:q", "a}{b", "x\nFORGED line", "a b", "a" * 101])
def test_a_bad_source_flag_name_exits_2(name, capsys):
    assert main(["run", "--source", f"{name}=rtsp://h/s", "--redis", NO_REDIS]) == 2
    err = capsys.readouterr().err
    assert f"the name {name!r} {RULE}" in err and "cannot reach Redis" not in err


def test_source_flag_forms():
    assert parse_source_arg("cam.1_a-b=rtsp://h/s?x=1") == {"name": "cam.1_a-b", "url": "rtsp://h/s?x=1"}
    assert parse_source_arg("rtsp://h/s?x=1") == {"url": "rtsp://h/s?x=1"}
    assert parse_source_arg("./a=b.mp4") == {"url": "./a=b.mp4"}  # a path with `=`: not a name
    assert parse_source_arg("clip.mp4") == {"url": "clip.mp4"}


@pytest.mark.parametrize("member", ["m\n", "p:q", "a b", "m" * 101])
def test_a_bad_member_id_exits_2(member, capsys):
    assert main(["run", "--fleet", "--member", member, "--redis", NO_REDIS]) == 2
    err = capsys.readouterr().err
    assert f"fleet.member: {member!r} {RULE}" in err


def test_a_member_id_of_100_characters_is_taken():
    cfg = load_config(None, {"fleet": {"enabled": True, "member": "m" * 100}})
    assert cfg.fleet.member == "m" * 100


@pytest.mark.parametrize("name", ["cam\n", "p:q", "a}{b", "a" * 101])
def test_a_bad_camera_name_exits_2_before_redis(name, capsys):
    assert main(["cameras", "add", name, "rtsp://cam/s", "--redis", NO_REDIS]) == 2
    err = capsys.readouterr().err
    assert f"camera name: {name!r} {RULE}" in err and "cannot reach Redis" not in err
