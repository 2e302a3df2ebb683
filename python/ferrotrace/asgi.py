"""ASGI middleware: one server span per HTTP request (FastAPI, Starlette, any ASGI app).

    from ferrotrace.asgi import TracingMiddleware
    app.add_middleware(TracingMiddleware)                  # FastAPI / Starlette
    app.add_middleware(TracingMiddleware, tracer=tracer, exclude_paths=["/health"])

Each request gets a server span named ``METHOD route-template`` (``GET
/items/{item_id}``, from the route the framework matched; just ``METHOD``
when none matched), continuing the caller's trace when the request carries
trace context headers in a format of the tracer the span is recorded into:
its ``propagators=``, else ``FERROTRACE_PROPAGATORS``/``OTEL_PROPAGATORS``,
else W3C ``traceparent``, resolved once when that tracer was made (never per
request). Without ``tracer=`` the middleware follows the global tracer.

The span carries the OpenTelemetry HTTP semantic-convention attributes,
fails on 5xx and on exceptions (recorded, then re-raised unchanged), and
ends when the last body chunk is sent, so streaming responses are timed in
full. The trace id is returned in a response header (``x-trace-id`` by
default). Websocket and lifespan traffic passes through untouched.

No request or response header is recorded but ``Host`` and ``User-Agent``:
``Authorization``, ``Cookie`` and ``Set-Cookie`` never reach the span, and
sensitive query values in ``url.query`` are redacted by the tracer's
``redact_keys`` rules (README, "Security and privacy").
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, MutableMapping
from typing import Any, Callable

import ferrotrace as ft
from ferrotrace._core import _finish_server_span, _server_response_start, _start_server_span

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TracingMiddleware:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        tracer: Any = None,
        exclude_paths: Iterable[str] = (),
        response_header: str | None = "x-trace-id",
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.exclude_paths = frozenset(exclude_paths)
        self.response_header = (
            response_header.lower().encode("latin-1") if response_header else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        tracer = self.tracer if self.tracer is not None else ft.get_tracer()
        # The per-request work is three Rust calls: start (scope attributes,
        # incoming trace context), response start (status, trace id header),
        # finish (route template and span name).
        span = _start_server_span(tracer, scope)
        header = self.response_header
        responded = []

        # A plain function returning send's awaitable: no extra coroutine
        # frame per message, which showed in requests per second.
        def traced_send(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                responded.append(True)
                _server_response_start(span, message, header)
            return send(message)

        with span:
            try:
                await self.app(scope, receive, traced_send)
            except BaseException as exc:
                if not responded:
                    span.set_tag("http.response.status_code", 500)
                span.set_tag("error.type", type(exc).__qualname__)
                raise
            finally:
                _finish_server_span(span, scope)
