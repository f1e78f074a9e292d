"""The dashboard web app: Starlette, one server-sent-events stream of snapshots, static page and JS.

Routes: `/` (page), `/static/*` (JS, CSS: shipped in the package, no CDN), `/api/state` (one
snapshot as JSON), `/events` (SSE: a snapshot every `interval_s`), `/api/snapshot/{source}` (the
source's latest picture, when workers write them: `snapshots.enabled`), `/healthz`. With a token every
route but `/healthz` needs it: `?token=T` (the page then keeps it in a cookie),
`Authorization: Bearer T`, or that cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from affectstream.pipeline.consumers.dashboard.state import DashboardState
from affectstream.pipeline.errors import ConfigError
from affectstream.pipeline.streams import keys

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "affectstream_token"
# How long one page request keeps a source's snapshots coming (`keys.snapshot_request_key`); the page
# asks every few seconds while it shows the source, so workers stop soon after the last page closes.
SNAPSHOT_REQUEST_S = 15
NO_SNAPSHOT = (
    "no snapshot of {source} yet: snapshots are off by default (they show faces); a run writes them "
    "with `snapshots: {{enabled: true}}` in its config, every few seconds while a page asks"
)


class TokenGuard:
    """ASGI middleware: every request but `/healthz` must carry the token (query, bearer or cookie)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    def _ok(self, value: str | None) -> bool:
        return (
            value is not None and value != "" and secrets.compare_digest(value.encode(), self.token.encode())
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        request = Request(scope)
        auth = request.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        query = request.query_params.get("token")
        if not (self._ok(query) or self._ok(bearer) or self._ok(request.cookies.get(COOKIE))):
            response = PlainTextResponse("dashboard token required: open /?token=<token>", status_code=401)
            return await response(scope, receive, send)
        if self._ok(query):
            # Remember the token so the page's own requests (JS, CSS, SSE) need not repeat it.
            async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message.setdefault("headers", []).append((b"set-cookie", cookie.encode()))
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        return await self.app(scope, receive, send)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class LoopbackHostGuard:
    """ASGI middleware for tokenless (loopback) mode: answer only requests whose `Host` is a loopback
    name, so a web page cannot reach the dashboard through a DNS name rebound to 127.0.0.1."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = Request(scope).headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name.lower() not in LOOPBACK_HOSTS:
                response = PlainTextResponse(
                    "dashboard answers only Host: localhost, 127.0.0.1 or [::1] without a token",
                    status_code=421,
                )
                return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def create_app(
    state: DashboardState, *, token: str | None = None, interval_s: float = 0.5, poll: bool = True
) -> Starlette:
    """The ASGI app over `state`; with `poll`, a background thread feeds `state` from Redis."""

    async def index(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def api_state(_request: Request) -> JSONResponse:
        return JSONResponse(state.snapshot())

    def snapshot(request: Request) -> Response:  # sync: Starlette runs it in its thread pool (Redis I/O)
        source = request.path_params["source"]
        if not keys.KEY_SAFE_NAME.fullmatch(source):
            return PlainTextResponse(f"not a source name: {keys.KEY_SAFE_RULE}", status_code=400)
        client = state.client
        headers = {"cache-control": "no-store"}
        try:
            client.set(keys.snapshot_request_key(source), "1", ex=SNAPSHOT_REQUEST_S)
            jpeg = client.get(keys.snapshot_key(source))
        except redis.RedisError as exc:
            return PlainTextResponse(
                f"cannot read Redis: {type(exc).__name__}", status_code=503, headers=headers
            )
        if not jpeg:
            return PlainTextResponse(NO_SNAPSHOT.format(source=source), status_code=404, headers=headers)
        return Response(
            jpeg, media_type="image/jpeg", headers={**headers, "x-content-type-options": "nosniff"}
        )

    async def healthz(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def events(_request: Request) -> StreamingResponse:
        async def stream():
            # StreamingResponse cancels this generator when the client goes away.
            yield "retry: 2000\n\n"
            while True:
                yield f"event: snapshot\ndata: {json.dumps(state.snapshot(), separators=(',', ':'))}\n\n"
                await asyncio.sleep(interval_s)

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette):
        stop = threading.Event()
        thread = None
        if poll:
            thread = threading.Thread(target=state.run, args=(stop,), name="dashboard-redis", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=5)

    routes = [
        Route("/", index),
        Route("/api/state", api_state),
        Route("/api/snapshot/{source}", snapshot),
        Route("/events", events),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(TokenGuard, token=token) if token else Middleware(LoopbackHostGuard)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not token:
        raise ConfigError(
            f"dashboard host {host!r} is reachable from other machines: set --token to allow it"
        )


def serve(
    redis_url: str, *, host: str = "127.0.0.1", port: int = 8050, token: str | None = None, **settings: Any
) -> None:
    """Run the dashboard until interrupted; `settings` go to `DashboardState` (stale_s, forget_after_s,
    drop_warning)."""
    import uvicorn

    from affectstream.pipeline.masking import mask_url
    from affectstream.pipeline.streams.connection import connect

    check_bind(host, token)
    app = create_app(DashboardState(connect(redis_url), **settings), token=token)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    log.info(
        "dashboard of %s on http://%s:%d/%s", mask_url(redis_url), shown, port, "?token=***" if token else ""
    )
    # SSE responses never end by themselves: bound the graceful shutdown so Ctrl-C exits promptly
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=2)
