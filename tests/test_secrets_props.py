"""Property-based checks (hypothesis) that no generated secret survives masking or source naming, and
that the config loader turns any YAML into a `Config` or a `ConfigError`, never anything else."""

from __future__ import annotations

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affectstream.pipeline.config import load_config
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.masking import mask_text, mask_url, register_url
from affectstream.pipeline.sources.spec import source_name_from_url

# Secrets hold any printable character, URL delimiters included (`@`, `:`, `/`, `%40`, unicode), and
# start with a marker that no host or path below can contain, so a hit can only be a leak.
_SECRET_CHARS = st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"))
secrets_ = st.builds(lambda body: "Q9" + body, st.text(_SECRET_CHARS, min_size=2, max_size=24))
users = st.one_of(
    st.just(""), st.text(_SECRET_CHARS.filter(lambda c: c not in ":@"), min_size=1, max_size=12)
)
hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True),
    st.from_regex(r"1[0-9]{0,2}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}", fullmatch=True),
    st.just("[::1]"),
)
paths = st.lists(st.text(string.ascii_lowercase + string.digits + "_.-", min_size=1, max_size=8), max_size=3)
ports = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
schemes = st.sampled_from(["rtsp", "rtsps", "http", "https", "redis", "rediss"])


@st.composite
def urls_with_secret(draw):
    secret = draw(secrets_)
    user = draw(users)
    path = "/".join(draw(paths))
    trailing = draw(st.sampled_from(["", "/"]))
    query = draw(st.sampled_from(["", "?token={s}", "?a=1&password={s}", "?pwd={s}&x=y"]))
    url = f"{draw(schemes)}://{user}:{secret}@{draw(hosts)}{draw(ports)}/{path}{trailing}{query.format(s=secret)}"
    return url, secret


def _leaks(secret: str, text: str) -> bool:
    return secret in text


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(urls_with_secret())
def test_no_secret_survives_mask_url_or_source_naming(case):
    url, secret = case
    assert not _leaks(secret, mask_url(url)), mask_url(url)
    name = source_name_from_url(url)
    assert not _leaks(secret, name) and name and all(c.isalnum() or c in "_.-" for c in name), name


@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    urls_with_secret(),
    st.sampled_from(
        [
            "cannot open {u}: Connection refused",
            "Invalid data found when processing input: '{u}'",
            "Error 111 connecting to {u}. Connection refused.",
            "[rtsp @ 0x55d] method DESCRIBE failed: 401 Unauthorized ({u})",
        ]
    ),
)
def test_no_secret_survives_mask_text_in_error_messages(case, template):
    """Free text cannot hold a whitespace-free secret boundary, so secrets here have no spaces."""
    url, secret = case
    if any(c.isspace() for c in secret):
        return
    masked = mask_text(template.format(u=url))
    assert not _leaks(secret, masked), masked


@settings(max_examples=500, deadline=None)
@given(urls_with_secret())
def test_registered_secrets_are_masked_even_alone(case):
    """FFmpeg and redis-py may quote a password alone (e.g. percent-decoded): registered ones go too."""
    url, secret = case
    register_url(url)
    assert not _leaks(secret, mask_text(f"auth failed for password {secret} (decoded)"))


def test_known_leak_shapes_from_the_issue():
    assert mask_url("rtsp://alice:p@ss@Leak9@127.0.0.1/x") == "rtsp://alice:***@127.0.0.1/x"
    assert source_name_from_url("rtsp://alice:Secret@host:8554/") == "host_8554"
    assert source_name_from_url("rtsp://alice:Secret@host:8554") == "host_8554"
    assert "Secret" not in source_name_from_url("rtsp://alice:Secret@host/?password=Secret")
    assert mask_url("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert mask_url("http://h/live.m3u8?token=abc&x=1") == "http://h/live.m3u8?token=***&x=1"


# -- the config loader over generated YAML -------------------------------------------------------
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["auto", "fp16", "onnxruntime", "1e30", "${NOPE}", "${X:-3}", "-1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
_sections = {
    "redis": ["url", "data_dir", "maxlen"],
    "detector": ["model", "backend", "input_size", "threshold", "detect_every", "providers"],
    "engine": ["backend", "model", "max_batch", "precision", "threads"],
    "batch": ["max_batch", "max_wait_ms", "file_max_wait_ms"],
    "workers": ["count", "heartbeat_s", "stale_after_s", "restart_backoff_s"],
    "metrics": ["host", "port"],
    "smoothing": ["window"],
}


@st.composite
def configs(draw):
    doc = {}
    for section in draw(st.lists(st.sampled_from([*_sections, "sources", "bogus"]), max_size=4, unique=True)):
        if section == "sources":
            doc["sources"] = draw(
                st.one_of(
                    _values,
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "url": st.one_of(
                                    st.sampled_from(["rtsp://h/s", "rtsp://u:p@h:1/", "x.txt", "/nope.mp4"]),
                                    _scalars,
                                )
                            },
                            optional={
                                "name": _scalars,
                                "timeout_s": _scalars,
                                "queue_size": _scalars,
                                "live": _scalars,
                            },
                        ),
                        max_size=2,
                    ),
                )
            )
        elif section == "bogus":
            doc["bogus"] = draw(_values)
        else:
            keys = draw(st.lists(st.sampled_from(_sections[section]), max_size=3, unique=True))
            doc[section] = draw(st.one_of(_values, st.fixed_dictionaries({k: _values for k in keys})))
    return doc


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(configs())
def test_config_loader_raises_only_config_errors(tmp_path, doc):
    path = tmp_path / "c.yaml"
    try:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    except yaml.YAMLError:
        return
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).strip()  # a reason, never an empty message


@pytest.mark.parametrize(
    "text",
    [
        "redis: {url: 'redis://:p@ss@h:99999/0'}",
        "redis: {url: 'redis://h:port/0'}",
        "redis: {url: 'redis://u:Q9x@h/notadb'}",
        "redis: {url: 'http://u:Q9x@h/'}",
    ],
)
def test_malformed_redis_url_is_one_masked_line(tmp_path, text):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "c.yaml")
    message = str(err.value)
    assert "\n" not in message and "Q9x" not in message and "p@ss" not in message, message
