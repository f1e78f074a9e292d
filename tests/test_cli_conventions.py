"""The command's conventions: --version, logging options before or after the verb (and in workers),
one exit-status table (bad config, missing file, unreachable Redis, missing extra), consistent options,
`config check|show|schema` and `--set`."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest

import affectstream.pipeline.cli.main as cli_main
from affectstream.pipeline.cli.main import build_parser, main
from affectstream.pipeline.logs import JsonFormatter, setup_logging
from affectstream.settings.env import LOG_FORMAT as FORMAT_ENV
from affectstream.settings.env import LOG_LEVEL as LEVEL_ENV
from affectstream.settings.overrides import nested, parse_set
from tests.conftest import REPO, need_shared

NO_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: refused at once


def cli(
    *args: str, block: str = "", env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`affectstream ARGS` in a fresh interpreter; `block` makes that module unimportable (a missing extra)."""
    prelude = f"import sys; sys.modules[{block!r}] = None; " if block else "import sys; "
    code = prelude + "from affectstream.pipeline.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(autouse=True)
def _restore_logging_env(monkeypatch):
    """Start each test with no logging choice in os.environ."""
    for name in (LEVEL_ENV, FORMAT_ENV):
        monkeypatch.delenv(name, raising=False)
    yield
    setup_logging(logging.INFO, "text")


@pytest.fixture
def bad_config(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("engine: {backend: tensorflow}\n")
    return str(path)


def test_version_and_a_help_without_developer_notes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("affectstream ")
    text = build_parser().format_help()
    assert "no logic lives here" not in text and "--log-format" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--log-level", "debug", "--log-format", "json", "config", "schema"],
        ["config", "schema", "--log-level", "debug", "--log-format", "json"],
        ["-v", "--log-format", "json", "config", "schema"],
        ["config", "schema", "-v", "--log-format", "json"],
    ],
)
def test_logging_options_before_or_after_the_verb_reach_the_environment(argv, capsys, monkeypatch):
    seen = _environment_while_running(monkeypatch)
    assert main(argv) == 0
    assert seen == [{LEVEL_ENV: "debug", FORMAT_ENV: "json"}]  # what the verb's worker processes inherit
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
    assert logging.getLogger().level == logging.DEBUG
    assert LEVEL_ENV not in os.environ and FORMAT_ENV not in os.environ  # restored: no leak to later commands


def test_an_option_before_the_verb_is_not_reset_by_the_verb(capsys, monkeypatch):
    seen = _environment_while_running(monkeypatch)
    assert main(["--log-format", "json", "config", "schema"]) == 0
    assert seen == [{LEVEL_ENV: None, FORMAT_ENV: "json"}]


def _environment_while_running(monkeypatch) -> list[dict]:
    """The logging variables as `main` sets up logging (the verb and its workers run with them)."""

    seen: list[dict] = []

    def spy(*args, **kwargs):
        seen.append({name: os.environ.get(name) for name in (LEVEL_ENV, FORMAT_ENV)})
        setup_logging(*args, **kwargs)

    monkeypatch.setattr(cli_main, "setup_logging", spy)
    return seen


def test_json_log_lines_are_masked_objects(capsys):
    record = logging.LogRecord(
        "affectstream.pipeline.runtime.worker",
        logging.WARNING,
        __file__,
        1,
        "cannot open %s",
        ("rtsp://alice:pa55word@cam/s",),
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert set(line) == {"time", "level", "logger", "process", "message"}
    assert (
        line["level"] == "warning"
        and "pa55word" not in line["message"]
        and "alice:***@cam" in line["message"]
    )


def test_a_bad_log_level_in_the_environment_is_a_config_error(monkeypatch, capsys):
    monkeypatch.setenv(LEVEL_ENV, "loud")
    assert main(["config", "schema"]) == 2
    assert "AFFECTSTREAM_LOG_LEVEL: 'loud' is not allowed" in capsys.readouterr().err


def test_set_parser():
    pairs = [
        parse_set("engine.threads=2"),
        parse_set("detector.input_size=[320, 320]"),
        parse_set("redis.url="),
    ]
    assert nested(pairs) == {
        "engine": {"threads": 2},
        "detector": {"input_size": [320, 320]},
        "redis": {"url": None},
    }
    with pytest.raises(SystemExit) as exc:
        main(["run", "--set", "engine.threads"])
    assert exc.value.code == 2


def test_config_check_show_schema(tmp_path, bad_config, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("sources:\n  - {name: cam, url: 'rtsp://alice:pa55word@cam.local/s'}\n")
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "check", bad_config]) == 2
    assert "engine.backend: 'tensorflow' is not allowed" in capsys.readouterr().err
    assert main(["config", "show", str(good), "--set", "engine.threads=3", "--json"]) == 0
    shown = capsys.readouterr().out
    assert json.loads(shown)["engine"]["threads"] == 3 and "pa55word" not in shown
    assert main(["config", "schema"]) == 0
    assert "properties" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["run", "--workers", "0"], ["archive", "work", "-j", "0"]])
def test_zero_workers_is_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "0 is not allowed; at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [["health"], ["archive", "status"], ["archive", "retry"]])
def test_detector_only_on_verbs_that_use_it(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*verb, "--detector", "x.onnx"])
    assert exc.value.code == 2


# --- the exit-status table, verb by verb -------------------------------------------------------------

CONFIG_VERBS = [
    ["run"],
    ["demo", "--source", "x.mp4"],
    ["health"],
    ["archive", "status"],
    ["archive", "work"],
    ["engine", "build"],
]


@pytest.mark.parametrize("verb", CONFIG_VERBS + [["config", "check"]])
def test_bad_config_exits_2(verb, bad_config, capsys):
    argv = [*verb, bad_config] if verb[0] == "config" else [*verb, "-c", bad_config]
    assert main(argv) == 2
    assert "engine.backend" in capsys.readouterr().err


@pytest.mark.parametrize("verb", CONFIG_VERBS + [["config", "check"]])
def test_missing_config_file_exits_2(verb, tmp_path, capsys):
    missing = str(tmp_path / "missing.yaml")
    assert main([*verb, missing] if verb[0] == "config" else [*verb, "-c", missing]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_missing_input_files_exit_2(tmp_path, capsys):
    gone = str(tmp_path / "gone.mp4")
    assert main(["archive", "submit", "--redis", NO_REDIS, "-o", str(tmp_path / "out"), gone]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["evaluate-abaw", "--pred", gone, "--annotations", gone]) == 2
    assert main(["probe", gone]) == 2
    assert main(["engine", "info", str(tmp_path / "gone.plan")]) == 2
    assert main(["engine", "convert", gone, "--to", "fp16", "-o", str(tmp_path / "out.onnx")]) == 2
    assert main(["run", "--source", gone, "--redis", NO_REDIS]) == 2  # the config check comes first


@pytest.mark.parametrize(
    "verb",
    [
        ["run", "--source", "x=rtsp://h/s"],
        ["health"],
        ["tail", "cam"],
        ["archive", "status"],
        ["archive", "retry"],
        ["archive", "work"],
    ],
)
def test_unreachable_redis_exits_1(verb, capsys):
    assert main([*verb, "--redis", NO_REDIS]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Redis" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, module, extra",
    [
        (["dashboard", "--redis", NO_REDIS], "starlette", "ui"),
        (["train", "-c", "configs/model/ferplus_mtlgcn.yaml"], "torch", "train"),
        # checked before any work: the video does not even exist, the Redis is unreachable
        (["render", "gone.mp4", "-o", "out.mp4", "--plots", "plots"], "matplotlib", "ui"),
        (["run", "--source", "x=rtsp://h/s", "--redis", NO_REDIS], "av", "worker"),
        (["demo", "--redis", NO_REDIS], "insightface", "worker"),
    ],
)
def test_missing_extra_exits_3_with_the_install_line(argv, module, extra):
    proc = cli(*argv, block=module)
    assert proc.returncode == 3, proc.stderr
    assert f"pip install 'affectstream[{extra}]'" in proc.stderr and "Traceback" not in proc.stderr


def test_worker_processes_log_in_the_chosen_format(redis_url, tmp_path):
    video = need_shared("media", "videos", "single_face.mp4")
    env = {"AFFECTSTREAM_DETECTOR": str(need_shared("models", "scrfd_500m.onnx"))}
    proc = cli(
        "run", "--redis", redis_url, "--source", f"clip={video}", "--log-format", "json", env=env, timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    lines = [
        json.loads(line) for line in proc.stderr.splitlines() if line.strip()
    ]  # every line is one object
    workers = {line["process"] for line in lines} - {"MainProcess"}
    assert workers, proc.stderr


def test_archive_submit_takes_detector_and_engine_from_the_config(tmp_path):
    from affectstream.pipeline.cli.archive import job_params
    from affectstream.pipeline.config import load_config

    cfg = tmp_path / "archive.yaml"
    cfg.write_text(
        "detector: {model: det.onnx, input_size: [320, 320], detect_every: 2}\nengine: {model: m.onnx}\n"
    )
    argv = ["archive", "submit", "-c", str(cfg), "-o", str(tmp_path / "out"), "v.mp4"]
    args = build_parser().parse_args(argv)
    params = job_params(args, load_config(args.config))
    assert (params["detector"], params["model"], params["det_size"], params["detect_every"]) == (
        "det.onnx",
        "m.onnx",
        320,
        2,
    )
    args = build_parser().parse_args([*argv, "--det-size", "640", "--model", "other.onnx"])
    params = job_params(args, load_config(args.config))
    assert (params["model"], params["det_size"], params["detect_every"]) == ("other.onnx", 640, 2)
    # without -c the job keeps its own defaults (the worker's detector, the shipped model)
    args = build_parser().parse_args(["archive", "submit", "-o", "out", "v.mp4"])
    params = job_params(args, load_config(None))
    assert (params["detector"], params["model"], params["det_size"], params["detect_every"]) == (
        "",
        "default",
        640,
        1,
    )
