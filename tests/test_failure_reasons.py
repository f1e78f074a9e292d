"""Failures keep their real reason: a silent RTSP server is a timeout, a TLS handshake failure says TLS."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from affectstream.pipeline.errors import RedisUnavailable
from affectstream.pipeline.sources import _av
from affectstream.pipeline.sources.spec import SourceSpec
from affectstream.pipeline.streams.connection import connect
from tests.conftest import missing


def test_a_server_that_accepts_and_never_answers_is_a_timeout():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held: list[socket.socket] = []

    def hold() -> None:  # accept the connection and never answer
        with contextlib.suppress(OSError):  # closed before anyone connected
            held.append(server.accept()[0])

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    spec = SourceSpec(
        name="silent", url=f"rtsp://viewer:Q9-pw@127.0.0.1:{server.getsockname()[1]}/x", timeout_s=1.5
    )
    try:
        with pytest.raises(Exception) as err:
            _av.open_container(spec)
        reason = _av.describe_error(err.value, spec, opening=True)
    finally:
        server.close()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
    assert "timed out" in reason and "Invalid data" not in reason and "Q9-pw" not in reason, reason


def test_tls_verification_failure_keeps_its_reason(tmp_path):
    """rediss:// to a server whose certificate nobody signed: the message says the certificate failed
    verification (masked, one line), not just `ConnectionError`."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        missing("openssl is needed to make a self-signed certificate (apt-get install openssl)")
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve():
        try:
            conn, _ = server.accept()
            with conn, context.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(RedisUnavailable) as err:
            connect(f"rediss://:Q9-tls-pw@127.0.0.1:{server.getsockname()[1]}/0", timeout_s=3)
    finally:
        server.close()
        thread.join(timeout=5)
    message = str(err.value)
    assert "certificate verify failed" in message.lower(), message
    assert "Q9-tls-pw" not in message and message.count("\n") == 0, message
