"""Fixtures of the consumer-side tests: a real pipeline processor, a dashboard served by uvicorn."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from tests.conftest import need_shared


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def small_processor(model_path):
    """The real pipeline (SCRFD-500M at 320x192, an MTL-GCN on ONNX Runtime), kept cheap with
    detect_every=3: the tracker carries boxes in between, the engine still runs on every frame."""
    from affectstream.pipeline.frames.build import build_processor

    detector = need_shared("models", "scrfd_500m.onnx")

    def make(detect_every: int = 3):
        return build_processor(
            detector=str(detector), model=model_path, detect_every=detect_every, det_size=(320, 192)
        )

    return make


@contextlib.contextmanager
def serve_app(app, port: int | None = None):
    """Run an ASGI app with uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
