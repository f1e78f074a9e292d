"""The one table of Redis replies (pipeline/streams/replies.py): what a server-wide refusal, a lost script
and a fault of one key mean for a write; the replies of a real redis-server where one can be made here."""

from __future__ import annotations

import time

import pytest
import redis

from affectstream.pipeline.streams.connection import connect
from affectstream.pipeline.streams.replies import (
    PERMANENT,
    RELOAD,
    REPLY_CLASS,
    TRANSIENT,
    error_class,
    is_transient,
)
from affectstream.pipeline.streams.writer import StreamWriter

SERVER_WIDE = [
    "OOM",
    "MISCONF",
    "READONLY",
    "LOADING",
    "BUSY",
    "MASTERDOWN",
    "NOREPLICAS",
    "TRYAGAIN",
    "CLUSTERDOWN",
]


@pytest.mark.parametrize("code", SERVER_WIDE)
def test_server_wide_refusals_are_transient_plain_or_quoted_by_a_script(code):
    assert REPLY_CLASS[code] == TRANSIENT
    assert error_class(redis.ResponseError(f"{code} the server says no for now")) == TRANSIENT
    quoted = f"Error running script (call to f_1): @user_script:31: -{code} the server says no"
    assert error_class(redis.ResponseError(quoted)) == TRANSIENT


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), PERMANENT),
        (redis.ResponseError("NOPERM this user has no permissions to run the 'xadd' command"), PERMANENT),
        (redis.ResponseError("ERR wrong number of arguments for 'xadd' command"), PERMANENT),
        (redis.ResponseError("NOSCRIPT No matching script. Please use EVAL."), RELOAD),
        (redis.ResponseError("something nobody listed"), PERMANENT),
        # redis-py keeps the codes it maps to classes in `status_code`, not in the text
        (
            redis.exceptions.OutOfMemoryError("command not allowed when used memory", status_code="OOM"),
            TRANSIENT,
        ),
        (
            redis.exceptions.TryAgainError("Multiple keys request during rehashing", status_code="TRYAGAIN"),
            TRANSIENT,
        ),
        (redis.ConnectionError("Connection reset by peer"), TRANSIENT),
        (redis.TimeoutError("Timeout reading from socket"), TRANSIENT),
        (redis.AuthenticationError("invalid username-password pair"), PERMANENT),
        (ValueError("not a Redis error"), PERMANENT),
    ],
)
def test_every_other_reply_has_one_class(exc, expected):
    assert error_class(exc) == expected
    assert is_transient(exc) == (expected != PERMANENT)


def test_replies_of_a_real_server(redis_url):
    """WRONGTYPE from the publish script is permanent; MISCONF (an RDB save that failed) is transient."""
    client = connect(redis_url)
    writer = StreamWriter(client)
    client.set("k", "a string")
    out = writer.write({"k": [("1-0", {"a": "1"})]}, 100)["k"]
    assert isinstance(out, redis.ResponseError) and error_class(out) == PERMANENT, out
    with pytest.raises(redis.exceptions.NoScriptError) as noscript:
        client.evalsha("0" * 40, 0)
    assert error_class(noscript.value) == RELOAD
    dir_before = client.config_get("dir")["dir"]
    client.config_set("save", "3600 1")
    client.config_set("dir", "/proc")  # the RDB cannot be written there: the save fails
    try:
        client.bgsave()
        for _ in range(100):
            if client.info("persistence")["rdb_last_bgsave_status"] == "err":
                break
            time.sleep(0.05)
        out = writer.write({"s": [("1-0", {"a": "1"})]}, 100)["s"]
        assert isinstance(out, redis.ResponseError) and "MISCONF" in str(out), out
        assert error_class(out) == TRANSIENT
        # MISCONF refuses PING too: a worker starting now must not say "cannot reach Redis"
        with pytest.raises(redis.ResponseError, match="MISCONF"):
            client.ping()
        connect(redis_url).close()
    finally:
        client.config_set("dir", dir_before)
        client.bgsave()
        client.config_set("save", "")
