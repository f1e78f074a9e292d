from pathlib import Path

import pytest

from affectstream.pipeline.cli.run import parse_source_arg
from affectstream.pipeline.config import Config, load_config
from affectstream.pipeline.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_defaults_are_typed_and_frozen():
    cfg = load_config()
    assert isinstance(cfg, Config)
    assert cfg.engine.backend == "onnxruntime" and cfg.batch.max_batch == 32
    with pytest.raises(AttributeError):
        cfg.engine.max_batch = 3  # frozen


def test_user_yaml_merges_over_defaults(tmp_path):
    cfg = load_config(
        write(tmp_path, "batch:\n  max_wait_ms: 25\nsources:\n  - {name: cam, url: rtsp://h/s}\n")
    )
    assert cfg.batch.max_wait_ms == 25.0 and cfg.batch.max_batch == 32 and cfg.batch.file_max_wait_ms == 100.0
    assert cfg.sources[0].name == "cam" and cfg.sources[0].url == "rtsp://h/s"


@pytest.mark.parametrize(
    "text, match",
    [
        (
            "engine:\n  backend: tensorflow\n",
            r"engine.backend: 'tensorflow' is not allowed; allowed values: 'onnxruntime', 'tensorrt', 'torch'",
        ),
        (
            "engine:\n  max_batchh: 4\n",
            r"engine.max_batchh: unknown key; allowed keys: backend, model, max_batch",
        ),
        ("batch:\n  max_batch: 0\n", r"batch.max_batch: 0 is out of range; allowed: from 1 to 4096"),
        (
            "batch:\n  file_max_wait_ms: -5\n",
            r"batch.file_max_wait_ms: -5.0 is out of range; allowed: from 0 to 60000",
        ),
        ("detector:\n  input_size: [640]\n", r"detector.input_size"),
        ("workers:\n  count: two\n", r"workers.count: expected int"),
        ("sources:\n  - {name: a, url: x.mp4}\n  - {name: a, url: y.mp4}\n", r"are both named 'a'"),
        ("sources:\n  - {name: a}\n", r"sources\[0\]: expected a mapping with at least `url`"),
        ("sources:\n  - {url: rtsp://h/s, colour: red}\n", r"sources\[0\].colour: unknown key"),
    ],
)
def test_bad_values_name_path_and_allowed(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_env_interpolation(tmp_path, monkeypatch):
    monkeypatch.setenv("CAM_PW", "pw")
    cfg = load_config(
        write(
            tmp_path,
            "sources:\n  - {name: c, url: 'rtsp://u:${CAM_PW}@h/s'}\nredis:\n  url: ${NOPE:-redis://localhost:6379/0}\n",
        )
    )
    assert cfg.sources[0].url == "rtsp://u:pw@h/s"
    assert cfg.redis.url == "redis://localhost:6379/0"
    monkeypatch.delenv("CAM_PW")
    with pytest.raises(ConfigError, match=r"sources\[0\].url: environment variable CAM_PW is not set"):
        load_config(write(tmp_path, "sources:\n  - {name: c, url: 'rtsp://u:${CAM_PW}@h/s'}\n"))


def test_numbers_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MAXLEN", "5000")
    cfg = load_config(write(tmp_path, "redis:\n  maxlen: ${MAXLEN}\nworkers:\n  heartbeat_s: ${BEAT:-0.5}\n"))
    assert (cfg.redis.maxlen, cfg.workers.heartbeat_s) == (5000, 0.5)
    monkeypatch.setenv("MAXLEN", "lots")
    with pytest.raises(ConfigError, match=r"redis.maxlen: expected int, got 'lots'"):
        load_config(write(tmp_path, "redis:\n  maxlen: ${MAXLEN}\n"))


def test_folder_source_expands_to_one_source_per_video(tmp_path):
    for name in ("b.mp4", "a.mov", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    cfg = load_config(overrides={"sources": [{"url": str(tmp_path)}]})
    assert [s.name for s in cfg.sources] == ["a", "b"]
    with pytest.raises(ConfigError, match="matches no video file"):
        load_config(overrides={"sources": [{"url": str(tmp_path / "*.mkv")}]})


def test_overrides_append_sources_and_set_values():
    cfg = load_config(
        overrides={"redis": {"url": "redis://h:1/0"}, "sources": [parse_source_arg("cam=rtsp://h/s?a=b")]}
    )
    assert cfg.redis.url == "redis://h:1/0"
    assert (cfg.sources[0].name, cfg.sources[0].url) == ("cam", "rtsp://h/s?a=b")
    assert parse_source_arg("rtsp://h/s?x=1") == {"url": "rtsp://h/s?x=1"}


@pytest.mark.parametrize("name", ["demo.yaml", "rtsp_cameras.yaml", "folder.yaml"])
def test_example_configs_validate(name, monkeypatch, shared):
    monkeypatch.setenv("AFFECTSTREAM_REDIS_URL", "redis://localhost:6379/0")
    monkeypatch.setenv("CAM_PASSWORD", "x")
    monkeypatch.setenv("AFFECTSTREAM_SHARED", str(shared))
    cfg = load_config(REPO / "configs" / "pipeline" / name)
    assert cfg.engine.backend == "onnxruntime"


def test_smoothing_window_validated(tmp_path):
    assert load_config().smoothing.window == 1
    with pytest.raises(ConfigError, match=r"smoothing.window: 0 is out of range; allowed: from 1 to 1000"):
        load_config(write(tmp_path, "smoothing:\n  window: 0\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "workers:\n  restart_backoff_s: -1\n",
            "workers.restart_backoff_s: -1.0 is out of range; allowed: from 0 to 3600",
        ),
        (
            "detector:\n  input_size: [0, 0]\n",
            "detector.input_size: (0, 0) is out of range; allowed: from 32 to 1920",
        ),
        (
            "detector:\n  input_size: [641, 333]\n",
            "detector.input_size: [641, 333] is not allowed; each side must be a multiple of 32",
        ),
        ("detector:\n  threshold: 5\n", "detector.threshold: 5.0 is out of range; allowed: from 0.0 to 1.0"),
        ("metrics:\n  port: 70000\n", "metrics.port: 70000 is out of range; allowed: from 0 to 65535"),
        ("redis:\n  maxlen: 1e30\n", "redis.maxlen: 1000000000000000019884624838656 is out of range"),
        ("batch:\n  max_wait_ms: .nan\n", "batch.max_wait_ms: expected a finite float, got nan"),
        (
            "redis:\n  url: 'redis://admin:Q9-leak@h:99999/0'\n",
            "redis url 'redis://admin:***@h:99999/0' is malformed",
        ),
        ("sources:\n  - {{url: '{txt}'}}\n", "is not a video file"),
        ("sources:\n  - {{url: '{missing}'}}\n", "does not exist or is not a file"),
    ],
)
def test_run_refuses_bad_values_with_exit_2_and_no_traceback(tmp_path, capsys, text, message):
    """The values that once passed validation and then crashed or hung workers (issue 12)."""
    from affectstream.pipeline.cli.main import main

    txt = tmp_path / "notes.txt"
    txt.write_text("not a video\n")
    cfg = write(tmp_path, text.format(txt=txt, missing=tmp_path / "gone.mp4"))
    assert main(["run", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "Q9-leak" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_schema_describes_the_resolved_config_and_secrets_stay_masked(tmp_path, monkeypatch):
    import json

    import jsonschema

    from affectstream.pipeline.config import json_schema, resolved

    monkeypatch.setenv("CAM_PW", "Q9secret")
    cfg = load_config(
        write(
            tmp_path,
            "redis: {url: 'redis://u:Q9redis@h:1/0'}\n"
            "sources:\n  - {name: c, url: 'rtsp://u:${CAM_PW}@h/s'}\n",
        )
    )
    plain, schema = resolved(cfg), json_schema()
    jsonschema.validate(plain, schema)
    assert "Q9secret" not in json.dumps(plain) and "Q9redis" not in json.dumps(plain)
    assert plain["sources"][0]["url"] == "rtsp://u:***@h/s" and plain["detector"]["input_size"] == [640, 640]
    max_batch = schema["$defs"]["BatchConfig"]["properties"]["max_batch"]
    assert (max_batch["default"], max_batch["minimum"], max_batch["maximum"]) == (32, 1, 4096)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"engine": {"backend": "tensorflow"}}, schema)
