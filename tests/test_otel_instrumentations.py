"""The real opentelemetry-instrumentation packages from PyPI, recording through
ferrotrace.otel.TracerProvider (README.md, "OpenTelemetry instrumentations")."""

from __future__ import annotations

import asyncio
import http.server
import logging
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.instrumentation")

import ferrotrace as ft  # noqa: E402
from conftest import by_name, clean_env, flushed_spans, read_spans  # noqa: E402
from ferrotrace.otel import TracerProvider  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def provider(tracer):
    return TracerProvider(tracer)


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})  # type: ignore[attr-defined]
        status = 503 if self.path.startswith("/fail") else 200
        body = b"ok"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server (127.0.0.1) recording the headers it receives."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    [span] = [s for s in spans if s["name"] == name]
    return span


def traceparent_of(span: dict[str, Any]) -> str:
    return f"00-{span['trace_id']}-{span['span_id']}-03"  # sampled, random (a trace started here)


def client_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in spans if s["kind"] == "client"]


def test_requests(tracer, out_dir, provider, http_server):
    requests = pytest.importorskip("requests")
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    url, seen = http_server
    RequestsInstrumentor().instrument(tracer_provider=provider)
    try:
        with tracer.start_span("caller"):
            assert requests.get(f"{url}/items").status_code == 200
            assert requests.get(f"{url}/fail").status_code == 503
    finally:
        RequestsInstrumentor().uninstrument()
    spans = flushed_spans(tracer, out_dir)
    caller = one(spans, "caller")
    ok, failed = client_spans(spans)
    for span, headers in zip((ok, failed), seen):
        assert span["parent_id"] == caller["span_id"]
        assert span["scope"]["name"] == "opentelemetry.instrumentation.requests"
        assert headers["traceparent"] == traceparent_of(span)
    assert ok["name"] == "GET" and ok["status"] == "ok"
    assert failed["status"] == "error"
    # The service graph names the callee from the instrumentation's
    # attributes (here the URL: requests' default conventions name no host).
    assert {"caller": "test", "callee": "127.0.0.1", "calls": 2} in tracer.service_dependencies()


def test_httpx_sync_and_async(tracer, out_dir, provider, http_server):
    httpx = pytest.importorskip("httpx")
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    url, seen = http_server
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    try:
        with tracer.start_span("caller"):
            with httpx.Client() as client:
                assert client.get(f"{url}/sync").status_code == 200

            async def fetch() -> int:
                async with httpx.AsyncClient() as client:
                    return (await client.get(f"{url}/async")).status_code

            assert asyncio.run(fetch()) == 200
    finally:
        HTTPXClientInstrumentor().uninstrument()
    spans = flushed_spans(tracer, out_dir)
    caller = one(spans, "caller")
    clients = client_spans(spans)
    assert len(clients) == 2
    for span, headers in zip(clients, seen):
        assert span["parent_id"] == caller["span_id"]
        assert span["scope"]["name"] == "opentelemetry.instrumentation.httpx"
        assert headers["traceparent"] == traceparent_of(span)


def test_aiohttp_client(tracer, out_dir, provider, http_server):
    aiohttp = pytest.importorskip("aiohttp")
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    url, seen = http_server
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)

    async def main() -> list[int]:
        statuses = []
        with tracer.start_span("caller"):
            async with aiohttp.ClientSession() as session:
                for path in ("/a", "/fail"):
                    async with session.get(f"{url}{path}") as response:
                        statuses.append(response.status)
                        # The request span is current between the trace
                        # config's callbacks (attached in one, detached in
                        # another); the caller is current again after.
            assert ft.current_span() is not None and ft.current_span().name == "caller"
        return statuses

    try:
        assert asyncio.run(main()) == [200, 503]
    finally:
        AioHttpClientInstrumentor().uninstrument()
    spans = flushed_spans(tracer, out_dir)
    caller = one(spans, "caller")
    ok, failed = client_spans(spans)
    for span, headers in zip((ok, failed), seen):
        assert span["parent_id"] == caller["span_id"]
        assert span["scope"]["name"] == "opentelemetry.instrumentation.aiohttp_client"
        assert headers["traceparent"] == traceparent_of(span)
    assert ok["status"] == "ok" and failed["status"] == "error"


def test_fastapi_honours_the_incoming_traceparent(tracer, out_dir, provider):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = fastapi.FastAPI()
    otel = provider.get_tracer("tests.app")

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        with tracer.start_span("load-item"), otel.start_as_current_span("cache"):
            pass
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("handler failed")

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/items/7", headers={"traceparent": f"00-{TRACE}-{SPAN}-01"})
            assert response.json() == {"id": 7}
            assert client.get("/boom").status_code == 500
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    spans = flushed_spans(tracer, out_dir)
    servers = {s["name"]: s for s in spans if s["kind"] == "server"}
    server = servers["GET /items/{item_id}"]
    assert server["trace_id"] == TRACE
    assert server["parent_id"] == SPAN and server["remote_parent"] is True
    assert server["scope"]["name"] == "opentelemetry.instrumentation.fastapi"
    assert server["attributes"]["http.route"] == "/items/{item_id}"
    ids = {s["span_id"]: s for s in spans}
    load = {name: one(spans, name) for name in ("load-item", "cache")}
    assert load["load-item"]["parent_id"] == server["span_id"]
    assert ids[load["cache"]["parent_id"]]["name"] == "load-item"
    failed = servers["GET /boom"]
    assert failed["status"] == "error"
    assert failed["trace_id"] != TRACE and failed["parent_id"] is None
    # A trace summary for each request's local root.
    assert tracer.get_trace(TRACE)["root_span_id"] == server["span_id"]


def test_sqlalchemy_over_sqlite(tracer, out_dir, provider):
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    engine = sqlalchemy.create_engine("sqlite://")
    SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider)
    try:
        with tracer.start_span("request") as request:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("CREATE TABLE t (x INTEGER)"))
                conn.execute(sqlalchemy.text("INSERT INTO t VALUES (1)"))
                assert conn.execute(sqlalchemy.text("SELECT x FROM t")).scalar() == 1
                with pytest.raises(sqlalchemy.exc.OperationalError):
                    conn.execute(sqlalchemy.text("SELECT * FROM missing"))
            # The engine hooks attached and detached the query spans.
            assert ft.current_span() is request
    finally:
        SQLAlchemyInstrumentor().uninstrument()
        # Closes the pooled sqlite3 connection: Python 3.13 warns about an
        # unclosed one when it is collected, in whatever test runs then.
        engine.dispose()
    spans = flushed_spans(tracer, out_dir)
    queries = [s for s in spans if s["attributes"].get("db.system") == "sqlite"]
    statements = [s["attributes"].get("db.statement") for s in queries]
    assert "SELECT x FROM t" in statements and "SELECT * FROM missing" in statements
    request_rec = one(spans, "request")
    assert all(q["parent_id"] == request_rec["span_id"] for q in queries)
    assert all(q["kind"] == "client" for q in queries)
    [failed] = [
        q for q in queries if q["attributes"].get("db.statement") == "SELECT * FROM missing"
    ]
    assert failed["status"] == "error"
    assert "no such table" in failed["attributes"]["status_description"]
    # ferrotrace's analysis works on the instrumentation's spans.
    analysis = ft.analyze(out_dir)
    operations = {op["operation"] for op in analysis.operations()}
    assert {q["name"] for q in queries} <= operations
    [group] = analysis.error_groups()
    assert group["operation"] == failed["name"]


def test_dbapi_over_sqlite3(tracer, out_dir, provider):
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

    conn = SQLite3Instrumentor.instrument_connection(
        sqlite3.connect(":memory:"), tracer_provider=provider
    )
    with tracer.start_span("request") as request:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE t (x INTEGER)")
        cursor.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        cursor.execute("SELECT sum(x) FROM t")
        assert cursor.fetchone() == (3,)
        with pytest.raises(sqlite3.OperationalError):
            cursor.execute("SELEC nonsense")
    conn.close()
    spans = flushed_spans(tracer, out_dir)
    queries = [s for s in spans if s["attributes"].get("db.system") == "sqlite"]
    assert [q["name"] for q in queries] == ["CREATE", "INSERT", "SELECT", "SELEC"]
    assert all(q["parent_id"] == request.span_id for q in queries)
    assert all(q["scope"]["name"] == "opentelemetry.instrumentation.sqlite3" for q in queries)
    failed = queries[-1]
    assert failed["status"] == "error"
    assert failed["error"]["type"] == "sqlite3.OperationalError"
    assert failed["attributes"]["error.type"] == "sqlite3.OperationalError"


def test_threading(tracer, out_dir, provider):
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor

    otel = provider.get_tracer("tests.threading")
    ThreadingInstrumentor().instrument()
    try:
        with tracer.start_span("main") as main:

            def work() -> None:
                with otel.start_as_current_span("in-thread"):
                    with tracer.start_span("native-in-thread"):
                        pass

            thread = threading.Thread(target=work)
            thread.start()
            thread.join()
    finally:
        ThreadingInstrumentor().uninstrument()
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["in-thread"]["parent_id"] == main.span_id
    assert recs["native-in-thread"]["parent_id"] == recs["in-thread"]["span_id"]


def test_logging(tracer, provider, caplog):
    from opentelemetry.instrumentation.logging import LoggingInstrumentor

    LoggingInstrumentor().instrument(
        tracer_provider=provider, set_logging_format=False, inject_trace_context=True
    )
    # A record made outside any span carries otelTraceID ("0") exactly when
    # injection is on, whatever the current span. The releases that still
    # support Python 3.9 (up to 0.62b1) predate `inject_trace_context` and
    # inject only with `set_logging_format=True` (whose logging.basicConfig
    # does nothing here: pytest's handlers are already on the root logger).
    if not hasattr(logging.makeLogRecord({}), "otelTraceID"):
        LoggingInstrumentor().uninstrument()
        LoggingInstrumentor().instrument(tracer_provider=provider, set_logging_format=True)
        assert hasattr(logging.makeLogRecord({}), "otelTraceID")
    try:
        with caplog.at_level(logging.INFO, logger="tests.logging"):
            with tracer.start_span("native") as native:
                logging.getLogger("tests.logging").info("native")
            with provider.get_tracer("t").start_as_current_span("api") as api:
                logging.getLogger("tests.logging").info("api")
    finally:
        LoggingInstrumentor().uninstrument()
    by_message = {r.getMessage(): r for r in caplog.records}
    for message, span in (("native", native), ("api", api)):
        record = by_message[message]
        assert record.otelTraceID == span.trace_id
        assert record.otelSpanID == span.span_id
        assert record.otelTraceSampled is True
        assert record.otelServiceName == "test"


# --------------------------------------------------------------------------
# opentelemetry-instrument
# --------------------------------------------------------------------------

APP = """
import http.server, logging, sqlite3, threading
import requests
import ferrotrace as ft
from opentelemetry import trace

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.traceparents.append(self.headers.get("traceparent"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.traceparents = []
threading.Thread(target=server.serve_forever, daemon=True).start()

tracer = trace.get_tracer("app")
with tracer.start_as_current_span("job") as job:
    requests.get(f"http://127.0.0.1:{server.server_address[1]}/ping")
    cursor = sqlite3.connect(":memory:").cursor()
    cursor.execute("CREATE TABLE t (x INTEGER)")
    cursor.execute("INSERT INTO t VALUES (1)")
    logging.getLogger("app").warning("done")
server.shutdown()
print("provider", type(trace.get_tracer_provider()).__module__)
print("exporters", ",".join(ft.get_tracer().config["exporters"]))
print("parent_based", ft.get_tracer().config["parent_based"])
print("traceparent", server.traceparents[0])
"""


def test_opentelemetry_instrument_runs_an_app_on_ferrotrace(tmp_path):
    pytest.importorskip("requests")
    instrument = shutil.which("opentelemetry-instrument", path=str(Path(sys.executable).parent))
    if instrument is None:
        pytest.skip("opentelemetry-instrument is not installed (opentelemetry-instrumentation)")
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(APP))
    out = tmp_path / "out"
    proc = subprocess.run(
        [instrument, sys.executable, str(app)],
        cwd=tmp_path,
        env=clean_env(
            OTEL_PYTHON_DISTRO="ferrotrace",
            OTEL_PYTHON_CONFIGURATOR="ferrotrace",
            OTEL_SERVICE_NAME="instrumented",
            OTEL_TRACES_EXPORTER="jsonl,console",
            OTEL_TRACES_SAMPLER="always_on",
            FERROTRACE_OUTPUT_DIR=str(out),
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["provider"] == "ferrotrace.otel"
    assert lines["exporters"] == "jsonl,console"
    assert lines["parent_based"] == "False"
    spans = read_spans(out)
    assert {s["service"] for s in spans} == {"instrumented"}
    job = one(spans, "job")
    scopes = {s["scope"]["name"] for s in spans if s["parent_id"] == job["span_id"]}
    assert "opentelemetry.instrumentation.requests" in scopes
    assert "opentelemetry.instrumentation.sqlite3" in scopes
    [http_call] = [s for s in spans if s["kind"] == "client" and "requests" in s["scope"]["name"]]
    assert lines["traceparent"] == traceparent_of(http_call)
