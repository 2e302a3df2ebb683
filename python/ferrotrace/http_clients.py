"""Client spans for outgoing HTTP requests, with the trace context injected.

    ft.instrument_httpx()          # every httpx.Client and httpx.AsyncClient
    ft.instrument_httpx(client)    # one client
    ft.instrument_requests()       # every requests.Session (and requests.get, ...)
    ft.instrument_requests(session)

Each request becomes a client span ``METHOD`` with the OpenTelemetry HTTP
client attributes (``http.request.method``, ``url.full``, ``server.address``,
``server.port``, ``http.response.status_code``); 4xx and 5xx responses and
transport errors mark it failed (errors are re-raised unchanged). The trace
context headers of the configured propagators are added to the request.
Instrumenting twice is harmless.

No header is recorded (``Authorization``, ``Cookie`` and ``Set-Cookie``
never reach the span). ``url.full`` is stored without credentials
(``REDACTED:REDACTED@``) and with sensitive query values redacted, by the
tracer's ``redact_keys`` rules, in Rust (README, "Security and privacy").
"""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import urlsplit

import ferrotrace as ft

_MARK = "__ferrotrace_instrumented__"


def _client_attributes(method: str, url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    attributes: dict[str, Any] = {"http.request.method": method, "url.full": url}
    if parts.hostname:
        attributes["server.address"] = parts.hostname
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    if port:
        attributes["server.port"] = port
    return attributes


def _start(tracer: Any, method: str, url: str) -> Any:
    tracer = tracer if tracer is not None else ft.get_tracer()
    return tracer.start_span(method, kind="client", tags=_client_attributes(method, url))


def _record_response(span: Any, status_code: int) -> None:
    span.set_status(status_code)
    span.set_tag("http.response.status_code", status_code)


def instrument_httpx(client: Any = None, tracer: Any = None) -> None:
    """Traces requests of one httpx client, or of every client when none is given."""
    import httpx

    def wrap_sync(send):
        @functools.wraps(send)
        def traced_send(self, request, *args, **kwargs):
            with _start(tracer, request.method, str(request.url)) as span:
                ft.inject(request.headers, span=span)
                response = send(self, request, *args, **kwargs)
                _record_response(span, response.status_code)
                return response

        setattr(traced_send, _MARK, True)
        return traced_send

    def wrap_async(send):
        @functools.wraps(send)
        async def traced_send(self, request, *args, **kwargs):
            with _start(tracer, request.method, str(request.url)) as span:
                ft.inject(request.headers, span=span)
                response = await send(self, request, *args, **kwargs)
                _record_response(span, response.status_code)
                return response

        setattr(traced_send, _MARK, True)
        return traced_send

    if client is None:
        for cls, wrap in ((httpx.Client, wrap_sync), (httpx.AsyncClient, wrap_async)):
            if not getattr(cls.send, _MARK, False):
                cls.send = wrap(cls.send)
        return
    if isinstance(client, httpx.AsyncClient):
        wrap = wrap_async
    elif isinstance(client, httpx.Client):
        wrap = wrap_sync
    else:
        raise TypeError(
            f"instrument_httpx() takes an httpx.Client or AsyncClient, not {type(client).__name__}"
        )
    if not getattr(client.send, _MARK, False):
        unbound = type(client).send
        traced = wrap(unbound)
        client.send = functools.partial(traced, client)
        setattr(client.send, _MARK, True)


def instrument_requests(session: Any | None = None, tracer: Any = None) -> None:
    """Traces requests of one requests.Session, or of every session when none is given."""
    import requests

    def wrap(send):
        @functools.wraps(send)
        def traced_send(self, request, **kwargs):
            with _start(tracer, request.method or "GET", request.url or "") as span:
                ft.inject(request.headers, span=span)
                response = send(self, request, **kwargs)
                _record_response(span, response.status_code)
                return response

        setattr(traced_send, _MARK, True)
        return traced_send

    if session is None:
        if not getattr(requests.Session.send, _MARK, False):
            requests.Session.send = wrap(requests.Session.send)
        return
    if not isinstance(session, requests.Session):
        raise TypeError(
            f"instrument_requests() takes a requests.Session, not {type(session).__name__}"
        )
    if not getattr(session.send, _MARK, False):
        session.send = functools.partial(wrap(type(session).send), session)
        setattr(session.send, _MARK, True)
