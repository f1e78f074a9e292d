import pytest

from affectstream.pipeline.errors import ConfigError, RedisUnavailable
from affectstream.pipeline.masking import mask_text, mask_url
from affectstream.pipeline.streams.connection import EmbeddedRedis, connect


def test_mask_url_hides_password_keeps_user_and_host():
    assert mask_url("rtsp://admin:s3cret@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert mask_url("redis://:pw@localhost:6379/0") == "redis://:***@localhost:6379/0"
    assert mask_url("rtsp://cam.local/stream") == "rtsp://cam.local/stream"


def test_mask_text_hides_passwords_inside_messages():
    text = "could not open rtsp://u:hunter2@h/x and http://h/p?token=abc&x=1"
    masked = mask_text(text)
    assert "hunter2" not in masked and "abc" not in masked
    assert "rtsp://u:***@h/x" in masked


def test_connect_real_server(redis_url):
    client = connect(redis_url)
    assert client.ping()


def test_connect_bad_scheme_and_unreachable():
    with pytest.raises(ConfigError, match="scheme"):
        connect("http://localhost:6379")
    with pytest.raises(RedisUnavailable) as err:
        connect("redis://user:topsecret@127.0.0.1:1/0", timeout_s=0.5)
    assert "topsecret" not in str(err.value)


def test_password_and_acl_user(tmp_path):
    server = EmbeddedRedis(tmp_path / "r")
    with server:
        admin = connect(server.url)
        admin.acl_setuser("cam", enabled=True, passwords=["+pw1"], commands=["+@all"], keys=["*"])
        user_url = f"unix://cam:pw1@{server.socket}"
        assert connect(user_url).ping()


def test_embedded_unix_socket(tmp_path):
    with EmbeddedRedis(tmp_path / "data") as server:
        assert server.url.startswith("unix://")
        client = connect(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
