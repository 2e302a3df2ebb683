"""FastAPI/Starlette middleware, httpx/requests propagation, log correlation."""

from __future__ import annotations

import asyncio
import http.server
import logging
import threading

import ferrotrace as ft
import httpx
import pytest
import requests
from conftest import flushed_spans
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from ferrotrace.asgi import TracingMiddleware

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def make_app(tracer: ft.Tracer) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=tracer, exclude_paths=["/health"])

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        with tracer.start_span("load") as span:
            span.set_tag("item", item_id)
        return {"id": item_id}

    @app.get("/health")
    async def health() -> dict:
        return {"ok": True}

    @app.get("/boom")
    async def boom() -> dict:
        raise RuntimeError("kaboom")

    @app.get("/teapot")
    async def teapot() -> dict:
        raise HTTPException(status_code=503, detail="unavailable")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            for i in range(3):
                await asyncio.sleep(0.02)
                yield f"{i}\n".encode()

        return StreamingResponse(chunks())

    return app


@pytest.fixture
def app_tracer(make_tracer, tmp_path):
    return make_tracer(tmp_path, service_name="web")


def test_server_span_per_request_with_route_name_and_attributes(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer))
    response = client.get("/items/42?x=1", headers={"user-agent": "pytest-agent"})
    assert response.status_code == 200
    spans = {s["name"]: s for s in flushed_spans(app_tracer, tmp_path)}
    server = spans["GET /items/{item_id}"]
    assert server["kind"] == "server"
    assert server["status"] == "ok"
    a = server["attributes"]
    assert a["http.request.method"] == "GET"
    assert a["url.path"] == "/items/42"
    assert a["url.query"] == "x=1"
    assert a["http.route"] == "/items/{item_id}"
    assert a["http.response.status_code"] == 200
    assert a["user_agent.original"] == "pytest-agent"
    assert a["server.address"] == "testserver"
    assert "client.address" in a
    # The handler's span is the server span's child; the trace id is returned.
    assert spans["load"]["parent_id"] == server["span_id"]
    assert response.headers["x-trace-id"] == server["trace_id"]


def test_incoming_trace_context_is_continued(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer))
    client.get("/items/1", headers={"traceparent": f"00-{TRACE}-{PARENT}-01"})
    server = next(s for s in flushed_spans(app_tracer, tmp_path) if s["kind"] == "server")
    assert server["trace_id"] == TRACE
    assert server["parent_id"] == PARENT
    assert server["remote_parent"] is True


# Which header formats the middleware reads: those of the tracer it records
# into, resolved when it is built.

B3 = {"b3": f"{TRACE}-{PARENT}-1"}
W3C = {"traceparent": f"00-{TRACE}-{PARENT}-01"}


async def plain_asgi_app(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def server_parents(middleware: TracingMiddleware, tracer: ft.Tracer, directory, *requests):
    """(trace_id, parent_id) of the server span of each request, sent with those headers."""
    client = TestClient(middleware)
    for headers in requests:
        assert client.get("/", headers=headers).status_code == 200
    spans = flushed_spans(tracer, directory)
    assert len(spans) == len(requests)
    by_start = sorted(spans, key=lambda s: s["start_ns"])
    return [(s["trace_id"], s["parent_id"]) for s in by_start]


def test_middleware_continues_b3_with_the_formats_of_its_tracer(
    make_tracer, tmp_path, global_tracer
):
    b3_tracer = make_tracer(tmp_path / "b3", service_name="web", propagators=["b3"])
    middleware = TracingMiddleware(plain_asgi_app, tracer=b3_tracer)
    # The global tracer reads traceparent; the middleware's tracer only b3.
    b3_request, w3c_request = server_parents(middleware, b3_tracer, tmp_path / "b3", B3, W3C)
    assert b3_request == (TRACE, PARENT)
    assert w3c_request[0] != TRACE and w3c_request[1] is None


def test_middleware_defaults_to_tracecontext(app_tracer, tmp_path):
    middleware = TracingMiddleware(plain_asgi_app, tracer=app_tracer)
    w3c_request, b3_request = server_parents(middleware, app_tracer, tmp_path, W3C, B3)
    assert w3c_request == (TRACE, PARENT)
    assert b3_request[0] != TRACE and b3_request[1] is None


@pytest.mark.parametrize("given", ["tracer", "global"])
def test_middleware_ignores_environment_changes_after_construction(
    given, make_tracer, tmp_path, monkeypatch
):
    # A tracer's formats come from the environment when it is made (no
    # propagators=), and only then: never per request.
    monkeypatch.setenv("OTEL_PROPAGATORS", "b3")
    directory = tmp_path / given
    if given == "tracer":
        tracer = make_tracer(directory, service_name="web")
        middleware = TracingMiddleware(plain_asgi_app, tracer=tracer)
    else:
        tracer = ft.configure(service_name="web", output_dir=directory)
        middleware = TracingMiddleware(plain_asgi_app)
    try:
        monkeypatch.setenv("OTEL_PROPAGATORS", "tracecontext")
        b3_request, w3c_request = server_parents(middleware, tracer, directory, B3, W3C)
    finally:
        if given == "global":
            tracer.shutdown(timeout=10.0)
            ft.configure(service_name="idle", output_dir=None, propagators=["tracecontext"])
    assert b3_request == (TRACE, PARENT)
    assert w3c_request[0] != TRACE and w3c_request[1] is None


def test_middleware_without_a_tracer_follows_a_reconfigured_global_tracer(global_tracer, tmp_path):
    middleware = TracingMiddleware(plain_asgi_app)
    directory = tmp_path / "b3-global"
    b3_global = ft.configure(service_name="b3-global", output_dir=directory, propagators=["b3"])
    try:
        b3_request, w3c_request = server_parents(middleware, b3_global, directory, B3, W3C)
    finally:
        b3_global.shutdown(timeout=10.0)
    assert b3_request == (TRACE, PARENT)
    assert w3c_request[0] != TRACE and w3c_request[1] is None


def test_junk_trace_headers_start_a_new_trace(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer))
    client.get("/items/1", headers={"traceparent": "00-zz-garbage" + "x" * 10_000})
    server = next(s for s in flushed_spans(app_tracer, tmp_path) if s["kind"] == "server")
    assert server["parent_id"] is None


def test_exceptions_are_recorded_and_reraised(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer), raise_server_exceptions=False)
    assert client.get("/boom").status_code == 500
    [server] = flushed_spans(app_tracer, tmp_path)
    assert server["name"] == "GET /boom"
    assert server["status"] == "error"
    assert server["error"]["type"] == "RuntimeError"
    assert server["error"]["message"] == "kaboom"
    assert server["attributes"]["http.response.status_code"] == 500
    # With the default TestClient the very same exception reaches the caller.
    with pytest.raises(RuntimeError, match="kaboom"):
        TestClient(make_app(app_tracer)).get("/boom")


def test_5xx_responses_fail_the_span_and_4xx_do_not(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer))
    assert client.get("/teapot").status_code == 503
    assert client.get("/missing").status_code == 404
    spans = flushed_spans(app_tracer, tmp_path)
    by_status = {s["attributes"]["http.response.status_code"]: s for s in spans}
    assert by_status[503]["status"] == "error"
    assert by_status[404]["status"] == "ok"
    assert by_status[404]["name"] == "GET"  # no route matched: no template


def test_excluded_paths_and_streaming(app_tracer, tmp_path):
    client = TestClient(make_app(app_tracer))
    assert client.get("/health").status_code == 200
    body = client.get("/stream").text
    assert body == "0\n1\n2\n"
    [span] = flushed_spans(app_tracer, tmp_path)
    assert span["name"] == "GET /stream"
    # Timed to the last chunk: three 20 ms pauses.
    assert span["duration_ms"] >= 55


def test_lifespan_and_websocket_pass_through(app_tracer, tmp_path):
    app = make_app(app_tracer)
    events = []

    @app.websocket("/ws")
    async def ws(socket: WebSocket):
        await socket.accept()
        await socket.send_text("hi")
        await socket.close()

    app.router.on_startup.append(lambda: events.append("startup"))
    with TestClient(app) as client:
        with client.websocket_connect("/ws") as socket:
            assert socket.receive_text() == "hi"
    assert events == ["startup"]
    assert flushed_spans(app_tracer, tmp_path) == []


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        code = 500 if self.path == "/fail" else 200
        body = (self.headers.get("traceparent") or "").encode()
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_httpx_client_spans_inject_context(app_tracer, tmp_path, echo_server):
    client = httpx.Client()
    ft.instrument_httpx(client, tracer=app_tracer)
    ft.instrument_httpx(client, tracer=app_tracer)  # twice is harmless
    with app_tracer.start_span("parent") as parent:
        sent = client.get(echo_server + "/ok").text
        failed = client.get(echo_server + "/fail")
    assert failed.status_code == 500
    spans = flushed_spans(app_tracer, tmp_path)
    calls = [s for s in spans if s["kind"] == "client"]
    assert len(calls) == 2
    ok = next(s for s in calls if s["attributes"]["http.response.status_code"] == 200)
    assert sent == f"00-{parent.trace_id}-{ok['span_id']}-03"
    assert ok["parent_id"] == parent.span_id
    assert ok["name"] == "GET"
    assert ok["attributes"]["url.full"] == echo_server + "/ok"
    assert ok["attributes"]["server.address"] == "127.0.0.1"
    bad = next(s for s in calls if s["attributes"]["http.response.status_code"] == 500)
    assert bad["status"] == "error"


def test_httpx_async_client(app_tracer, tmp_path, echo_server):
    async def run():
        async with httpx.AsyncClient() as client:
            ft.instrument_httpx(client, tracer=app_tracer)
            with app_tracer.start_span("parent"):
                return (await client.get(echo_server + "/ok")).text

    header = asyncio.run(run())
    [call] = [s for s in flushed_spans(app_tracer, tmp_path) if s["kind"] == "client"]
    assert header == f"00-{call['trace_id']}-{call['span_id']}-03"


def test_httpx_transport_errors_are_recorded_and_reraised(app_tracer, tmp_path):
    client = httpx.Client()
    ft.instrument_httpx(client, tracer=app_tracer)
    with pytest.raises(httpx.ConnectError):
        client.get("http://127.0.0.1:9/unreachable")
    [call] = flushed_spans(app_tracer, tmp_path)
    assert call["status"] == "error"
    assert call["error"]["type"] == "httpx.ConnectError"


def test_requests_session_spans_inject_context(app_tracer, tmp_path, echo_server):
    session = requests.Session()
    ft.instrument_requests(session, tracer=app_tracer)
    with app_tracer.start_span("parent") as parent:
        sent = session.get(echo_server + "/ok").text
    [call] = [s for s in flushed_spans(app_tracer, tmp_path) if s["kind"] == "client"]
    assert sent == f"00-{parent.trace_id}-{call['span_id']}-03"
    assert call["attributes"]["http.response.status_code"] == 200


def test_instrumenting_wrong_objects_is_a_type_error():
    with pytest.raises(TypeError):
        ft.instrument_httpx(object())
    with pytest.raises(TypeError):
        ft.instrument_requests(object())


def test_log_records_carry_trace_and_span_ids(app_tracer, caplog):
    ft.instrument_logging()
    ft.instrument_logging()
    logger = logging.getLogger("app-under-test")
    caplog.set_level(logging.INFO, logger="app-under-test")
    logger.info("outside")
    with app_tracer.start_span("work") as span:
        logger.info("inside")
    outside, inside = caplog.records
    assert (outside.trace_id, outside.span_id) == ("", "")
    assert (inside.trace_id, inside.span_id) == (span.trace_id, span.span_id)
    formatter = logging.Formatter("%(trace_id)s/%(span_id)s %(message)s")
    assert formatter.format(inside) == f"{span.trace_id}/{span.span_id} inside"


def test_routes_inside_a_mount_keep_their_prefix(app_tracer, tmp_path):
    sub = FastAPI()

    @sub.get("/users/{user_id}")
    async def user(user_id: int) -> dict:
        return {"id": user_id}

    app = FastAPI()
    app.add_middleware(TracingMiddleware, tracer=app_tracer)
    app.mount("/v2", sub)
    assert TestClient(app).get("/v2/users/5").json() == {"id": 5}
    [span] = flushed_spans(app_tracer, tmp_path)
    assert span["name"] == "GET /v2/users/{user_id}"
    assert span["attributes"]["http.route"] == "/v2/users/{user_id}"
