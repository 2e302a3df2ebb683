"""`ferrotrace serve`: receivers fed by real clients, the Jaeger-shaped query
API, bad input at the edge, the live index, and the command's lifecycle.

Each test runs the real command in a subprocess (`python -m ferrotrace serve
DIR --port 0`) and talks HTTP to it; waiting for the index (which follows the
files) polls until a generous deadline, it never asserts a time.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import ferrotrace as ft
import pytest

DEADLINE_S = 20.0


class Server:
    def __init__(
        self,
        directory: Path,
        *extra: str,
        preexec_fn: Callable[[], object] | None = None,
    ) -> None:
        self.dir = directory
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ferrotrace", "serve", str(directory), "--port", "0"]
            + list(extra or ("--otlp-port", "0")),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=preexec_fn,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()
        if "UI and API at" not in self.banner:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"server did not start: {self.banner!r} {err!r}")
        self.url = self.banner.split("UI and API at ")[1].split("/ ")[0]

    def request(
        self,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(
            self.url + path, data=body, headers=headers or {}, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def api(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request(path)
        return status, json.loads(body)

    def wait_for(self, path: str, ready: Callable[[Any], bool]) -> Any:
        """Polls a GET until `ready(json)`; fails with the last answer."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            status, doc = self.api(path)
            if status == 200 and ready(doc):
                return doc
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: still {status} {doc}")
            time.sleep(0.05)

    def stop(self, signalled: bool = False) -> tuple[int, str, str]:
        if not signalled and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # A server that did not stop fails the test, and is not left
            # running (and serving) after it.
            self.proc.kill()
            self.proc.communicate()
            raise
        return self.proc.returncode, out, err


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "traces")
    yield s
    code, _, err = s.stop()
    assert code == 0, err
    assert "Traceback" not in err


def trace_of(s: Server, trace_id: str) -> dict[str, Any]:
    doc = s.wait_for(f"/api/traces/{trace_id}", lambda d: bool(d["data"]))
    return doc["data"][0]


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


# --------------------------------------------------------------------------
# Receivers, fed by real clients
# --------------------------------------------------------------------------


def test_opentelemetry_sdk_otlp_protobuf_exporter(server: Server) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    provider = TracerProvider(
        resource=Resource.create({"service.name": "py-otel", "deployment.environment": "test"})
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=server.url + "/v1/traces"))
    )
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("GET /orders", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.response.status_code", 500)
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.add_event("retry", {"attempt": 2})
            try:
                raise ValueError("no such order")
            except ValueError as e:
                child.record_exception(e)
                child.set_status(Status(StatusCode.ERROR, "no such order"))
    provider.shutdown()
    trace_id = format(root.get_span_context().trace_id, "032x")
    child_id = format(child.get_span_context().span_id, "016x")
    root_id = format(root.get_span_context().span_id, "016x")

    trace = trace_of(server, trace_id)
    assert trace["traceID"] == trace_id
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert set(spans) == {root_id, child_id}
    db = spans[child_id]
    assert db["operationName"] == "SELECT orders"
    assert db["references"] == [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": root_id}]
    assert tags(db)["span.kind"] == ("string", "client")
    assert tags(db)["error"] == ("bool", True)
    assert tags(db)["db.system"] == ("string", "postgresql")
    assert tags(spans[root_id])["http.response.status_code"] == ("int64", 500)
    events = [{f["key"]: f["value"] for f in log["fields"]} for log in db["logs"]]
    assert {"event": "retry", "attempt": 2} in events
    assert any(e.get("exception.type") == "ValueError" for e in events)
    assert db["duration"] >= 0 and db["startTime"] > 1_600_000_000_000_000
    process = trace["processes"][db["processID"]]
    assert process["serviceName"] == "py-otel"
    assert ("deployment.environment", "test") in {(t["key"], t["value"]) for t in process["tags"]}

    # The same spans are in DIR as ordinary span records.
    analysis = ft.analyze(server.dir)
    stored = analysis.get_trace(trace_id)
    assert stored is not None and stored["span_count"] == 2 and stored["status"] == "error"
    failed = next(s for s in stored["spans"] if s["span_id"] == child_id)
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "no such order"
    assert failed["resource"]["service.name"] == "py-otel"


def test_ferrotrace_otlp_json_exporter(server: Server) -> None:
    tracer = ft.Tracer(
        service_name="ft-json",
        output_dir=None,
        exporters=["otlp"],
        otlp_protocol="http/json",
        otlp_endpoint=server.url + "/v1/traces",
    )
    with tracer.start_span("checkout", kind="server", tags={"cart.items": 3, "vip": True}) as s:
        with tracer.start_span("charge", kind="client", tags={"amount": 9.5}):
            pass
    tracer.shutdown()
    assert tracer.metrics()["spans_exported"] == 2

    trace = trace_of(server, s.trace_id)
    by_name = {sp["operationName"]: sp for sp in trace["spans"]}
    assert tags(by_name["checkout"])["cart.items"] == ("int64", 3)
    assert tags(by_name["checkout"])["vip"] == ("bool", True)
    assert tags(by_name["charge"])["amount"] == ("float64", 9.5)
    assert trace["processes"][by_name["charge"]["processID"]]["serviceName"] == "ft-json"


def test_opentelemetry_zipkin_json_exporter(server: Server) -> None:
    from opentelemetry.exporter.zipkin.json import ZipkinExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    provider = TracerProvider(resource=Resource.create({"service.name": "zipkin-svc"}))
    provider.add_span_processor(
        SimpleSpanProcessor(ZipkinExporter(endpoint=server.url + "/api/v2/spans"))
    )
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER) as span:
        span.set_attribute("queue", "orders")
    provider.shutdown()
    trace = trace_of(server, format(span.get_span_context().trace_id, "032x"))
    (only,) = trace["spans"]
    assert only["operationName"] == "publish"
    assert tags(only)["span.kind"] == ("string", "producer")
    assert tags(only)["queue"] == ("string", "orders")
    assert trace["processes"][only["processID"]]["serviceName"] == "zipkin-svc"


NODE_CLIENT = r"""
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const resources = require('@opentelemetry/resources');
const resource = resources.resourceFromAttributes
  ? resources.resourceFromAttributes({ 'service.name': 'node-svc' })
  : new resources.Resource({ 'service.name': 'node-svc' });
const exporter = new OTLPTraceExporter({ url: process.argv[2] });
const provider = new NodeTracerProvider({
  resource, spanProcessors: [new SimpleSpanProcessor(exporter)],
});
const span = provider.getTracer('tests').startSpan('node-op', { attributes: { n: 7 } });
span.end();
provider.forceFlush().then(() => provider.shutdown()).then(
  () => { console.log(span.spanContext().traceId); },
  (e) => { console.error(e); process.exit(1); });
"""


def node_modules() -> Path | None:
    """Where `npm install @opentelemetry/sdk-trace-node @opentelemetry/exporter-trace-otlp-http
    @opentelemetry/resources` put its node_modules: $NODE_OTEL_MODULES."""
    path = os.environ.get("NODE_OTEL_MODULES")
    if path and (Path(path) / "@opentelemetry" / "sdk-trace-node").is_dir():
        return Path(path)
    return None


@pytest.mark.skipif(
    shutil.which("node") is None or node_modules() is None,
    reason="the Node client needs node and NODE_OTEL_MODULES pointing at a "
    "node_modules with @opentelemetry/sdk-trace-node, exporter-trace-otlp-http and resources",
)
def test_opentelemetry_js_sdk_otlp_exporter(server: Server, tmp_path: Path) -> None:
    modules = node_modules()
    assert modules is not None
    script = tmp_path / "client.js"
    script.write_text(NODE_CLIENT)
    done = subprocess.run(
        ["node", str(script), server.url + "/v1/traces"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(modules)},
    )
    assert done.returncode == 0, done.stderr
    trace = trace_of(server, done.stdout.strip())
    (only,) = trace["spans"]
    assert only["operationName"] == "node-op"
    assert tags(only)["n"] == ("int64", 7)
    assert trace["processes"][only["processID"]]["serviceName"] == "node-svc"


# --------------------------------------------------------------------------
# The index: files already there, files written live by other processes
# --------------------------------------------------------------------------


def write_spans(directory: Path, service: str, n: int, fail: bool = False) -> list[str]:
    tracer = ft.Tracer(service_name=service, output_dir=str(directory))
    ids = []
    for i in range(n):
        with tracer.start_span("job", kind="server", tags={"i": i}) as s:
            with tracer.start_span("step", kind="client"):
                if fail and i == 0:
                    tracer.start_span("boom").finish()
            if fail and i == 0:
                s.set_error("it broke")
        ids.append(s.trace_id)
    tracer.shutdown()
    return ids


def test_files_already_in_dir_are_indexed_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "traces"
    ids = write_spans(directory, "before", 5)
    s = Server(directory)
    try:
        assert "10 spans indexed" in s.banner
        status, doc = s.api("/api/traces?service=before&limit=0")
        assert status == 200
        assert sorted(t["traceID"] for t in doc["data"]) == sorted(ids)
        assert doc["total"] == 5 and doc["errors"] is None
    finally:
        assert s.stop()[0] == 0


def test_retention_evicts_oldest_traces_whole_and_counts_them(tmp_path: Path) -> None:
    directory = tmp_path / "traces"
    ids = write_spans(directory, "kept", 5)  # 5 traces of 2 spans
    s = Server(directory, "--otlp-port", "0", "--max-spans", "4")
    try:
        index = s.api("/api/ferrotrace/status")[1]["data"]["index"]
        assert (index["traces"], index["spans"]) == (2, 4)
        assert (index["traces_evicted"], index["spans_evicted"]) == (3, 6)
        held = [t["traceID"] for t in s.api("/api/traces?limit=0")[1]["data"]]
        assert len(held) == 2 and set(held) <= set(ids)
        assert all(len(s.api(f"/api/traces/{t}")[1]["data"][0]["spans"]) == 2 for t in held)
        # The files keep everything.
        assert ft.analyze(directory).latency_stats()["count"] == 10
    finally:
        assert s.stop()[0] == 0


def test_spans_written_by_a_tracer_in_another_process_appear_live(server: Server) -> None:
    script = (
        "import ferrotrace as ft, sys\n"
        "t = ft.Tracer(service_name='worker', output_dir=sys.argv[1])\n"
        "with t.start_span('tick') as s: pass\n"
        "t.shutdown()\n"
        "print(s.trace_id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(server.dir)], capture_output=True, text=True, check=True
    )
    trace = trace_of(server, done.stdout.strip())
    assert trace["spans"][0]["operationName"] == "tick"
    assert server.api("/api/services")[1]["data"] == ["worker"]


# --------------------------------------------------------------------------
# Query API
# --------------------------------------------------------------------------


@pytest.fixture
def loaded(tmp_path: Path) -> Iterator[tuple[Server, list[str], list[str]]]:
    directory = tmp_path / "traces"
    api_ids = write_spans(directory, "api", 3, fail=True)
    tracer = ft.Tracer(service_name="billing", output_dir=str(directory))
    for _ in range(2):
        with tracer.start_span("invoice", kind="server"):
            pass
    tracer.shutdown()
    s = Server(directory)
    yield s, api_ids, []
    assert s.stop()[0] == 0


def test_services_and_operations(loaded: tuple[Server, list[str], list[str]]) -> None:
    s, _, _ = loaded
    assert s.api("/api/services") == (
        200,
        {"data": ["api", "billing"], "total": 2, "limit": 0, "offset": 0, "errors": None},
    )
    status, doc = s.api("/api/services/api/operations")
    assert status == 200 and doc["data"] == ["boom", "job", "step"]
    status, doc = s.api("/api/operations?service=api&spanKind=client")
    assert doc["data"] == [{"name": "step", "spanKind": "client"}]
    status, doc = s.api("/api/operations?service=api")
    assert {"name": "job", "spanKind": "server"} in doc["data"] and len(doc["data"]) == 3
    assert s.api("/api/services/nobody/operations")[1]["data"] == []


def test_trace_search_filters(loaded: tuple[Server, list[str], list[str]]) -> None:
    s, api_ids, _ = loaded

    def found(query: str) -> list[str]:
        status, doc = s.api("/api/traces?" + query)
        assert status == 200, doc
        return sorted(t["traceID"] for t in doc["data"])

    assert found("service=api") == sorted(api_ids)
    assert len(found("service=billing&operation=invoice")) == 2
    assert found("service=api&operation=invoice") == []
    assert found("service=api&tags=" + urllib.request.quote('{"i":"1"}')) == sorted([api_ids[1]])
    assert found("service=api&tags=" + urllib.request.quote('{"error":"true"}')) == [api_ids[0]]
    assert found("service=api&tag=i:2") == [api_ids[2]]
    assert len(found("service=api&limit=2")) == 2
    assert found("service=api&minDuration=1h") == []
    assert found("service=api&maxDuration=1h") == sorted(api_ids)
    now_us = int(time.time() * 1e6)
    assert found(f"service=api&start={now_us + 60_000_000}") == []
    assert found(f"service=api&start={now_us - 600_000_000}&end={now_us + 1}") == sorted(api_ids)


@pytest.mark.parametrize(
    "query, reason",
    [
        ("minDuration=fast", "minDuration"),
        ("maxDuration=-1s", "maxDuration"),
        ("minDuration=2s&maxDuration=1s", "min_duration"),
        ("start=yesterday", "start"),
        ("start=20&end=10", "start_ns"),
        ("limit=-3", "limit"),
        ("tags=notjson", "tags"),
        ("tags=[1]", "tags"),
        ("tag=nocolon", "tag"),
        ("service=a&service=b", "more than once"),
    ],
)
def test_bad_search_parameters_are_400_with_the_reason(
    loaded: tuple[Server, list[str], list[str]], query: str, reason: str
) -> None:
    status, doc = loaded[0].api("/api/traces?" + query)
    assert status == 400
    assert doc["data"] is None
    (error,) = doc["errors"]
    assert error["code"] == 400 and reason in error["msg"]


def test_get_trace_ids(loaded: tuple[Server, list[str], list[str]]) -> None:
    s, api_ids, _ = loaded
    status, doc = s.api(f"/api/traces/{api_ids[0]}")
    assert status == 200 and len(doc["data"][0]["spans"]) == 3
    status, doc = s.api("/api/traces/" + "a" * 32)
    assert status == 404 and "not found" in doc["errors"][0]["msg"]
    for bad in ["xyz", "0", "a" * 33]:
        status, doc = s.api(f"/api/traces/{bad}")
        assert status == 400 and doc["errors"][0]["code"] == 400


def test_dependencies(tmp_path: Path) -> None:
    directory = tmp_path / "traces"
    front = ft.Tracer(service_name="front", output_dir=str(directory))
    back = ft.Tracer(service_name="back", output_dir=str(directory))
    for _ in range(3):
        with front.start_span("GET /", kind="server"):
            headers: dict[str, str] = {}
            with front.start_span("call back", kind="client"):
                ft.inject(headers)
                with back.start_span("handle", kind="server", parent=ft.extract(headers)):
                    pass
    front.shutdown()
    back.shutdown()
    s = Server(directory)
    try:
        status, doc = s.api("/api/dependencies")
        assert status == 200
        assert doc["data"] == [{"parent": "front", "child": "back", "callCount": 3}]
        now_ms = int(time.time() * 1000)
        window = f"/api/dependencies?endTs={now_ms - 3_600_000}&lookback=60000"
        assert s.api(window)[1]["data"] == []
        status, doc = s.api("/api/dependencies?endTs=soon")
        assert status == 400 and "endTs" in doc["errors"][0]["msg"]
        status, doc = s.api("/api/dependencies?lookback=1.5")
        assert status == 400 and "lookback" in doc["errors"][0]["msg"]
    finally:
        assert s.stop()[0] == 0


def test_unknown_api_paths_and_methods(server: Server) -> None:
    status, _, body = server.request("/api/nothing")
    assert status == 404 and json.loads(body)["errors"][0]["code"] == 404
    status, _, _ = server.request("/api/services", body=b"{}", method="POST")
    assert status == 405
    status, headers, _ = server.request("/v1/traces")
    assert status == 405 and headers["allow"] == "POST"


# --------------------------------------------------------------------------
# UI files: compiled in, no path reaches the filesystem
# --------------------------------------------------------------------------


def test_ui_routes_serve_the_embedded_page_and_nothing_else(server: Server) -> None:
    for path in ["/", "/trace/4bf92f3577b34da6a3ce929d0e0e4736", "/ui/index.html"]:
        status, headers, body = server.request(path)
        assert status == 200, path
        assert headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b"ferrotrace" in body
    for path in ["/ui/../../../../etc/passwd", "/ui/%2e%2e/Cargo.toml", "/etc/passwd", "/ui/"]:
        status, _, body = server.request(path)
        assert status == 404, path
        assert b"root:" not in body


# --------------------------------------------------------------------------
# Bad input at the edge
# --------------------------------------------------------------------------

PROTOBUF = {"Content-Type": "application/x-protobuf"}


def otlp_json(trace_id: str, name: str = "op") -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [{"key": "service.name", "value": {"stringValue": "raw"}}]
                    },
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": trace_id,
                                    "spanId": "00f067aa0ba902b7",
                                    "name": name,
                                    "kind": "SPAN_KIND_SERVER",
                                    "startTimeUnixNano": str(time.time_ns()),
                                    "endTimeUnixNano": str(time.time_ns() + 1000),
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    ).encode()


def test_garbage_bodies_are_400_in_the_request_encoding(server: Server) -> None:
    from google.rpc.status_pb2 import Status as RpcStatus
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    status, headers, body = server.request("/v1/traces", b"\xff\x00garbage", PROTOBUF)
    assert status == 400 and headers["content-type"] == "application/x-protobuf"
    rpc = RpcStatus.FromString(body)
    assert rpc.code == 3 and "protobuf" in rpc.message
    status, headers, body = server.request(
        "/v1/traces", b"{not json", {"Content-Type": "application/json"}
    )
    assert status == 400 and json.loads(body)["code"] == 3
    status, _, body = server.request("/v1/traces", b"[1,2]", {"Content-Type": "application/json"})
    assert status == 400
    status, _, body = server.request("/api/v2/spans", b"{}", {"Content-Type": "application/json"})
    assert status == 400 and b"Zipkin" in body
    # A valid empty request is a success with no partial failure.
    status, _, body = server.request("/v1/traces", b"", PROTOBUF)
    assert status == 200 and not ExportTraceServiceResponse.FromString(body).HasField(
        "partial_success"
    )


def test_bad_spans_are_rejected_alone_as_partial_success(server: Server) -> None:
    doc = json.loads(otlp_json("4bf92f3577b34da6a3ce929d0e0e4736"))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append(dict(spans[0], traceId="not-hex", spanId="00f067aa0ba902b8"))
    status, _, body = server.request(
        "/v1/traces", json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "1" and "trace id" in partial["errorMessage"]
    assert len(trace_of(server, "4bf92f3577b34da6a3ce929d0e0e4736")["spans"]) == 1
    status, doc = server.api("/api/ferrotrace/status")
    assert doc["data"]["spans_rejected"] == 1 and doc["data"]["spans_received"] == 1


def test_gzip_bodies_and_gzip_bombs(server: Server) -> None:
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    status, _, _ = server.request("/v1/traces", gzip.compress(otlp_json(trace_id)), headers)
    assert status == 200
    trace_of(server, trace_id)
    # 1 GiB of zeros in ~1 MiB: inflating stops at the 20 MiB limit.
    bomb = gzip.compress(b"\0" * (1 << 30), compresslevel=9)
    assert len(bomb) < 2 << 20
    status, _, body = server.request("/v1/traces", bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert status == 413
    status, _, _ = server.request("/v1/traces", b"nope", {**PROTOBUF, "Content-Encoding": "gzip"})
    assert status == 400
    status, _, _ = server.request("/v1/traces", b"x", {**PROTOBUF, "Content-Encoding": "br"})
    assert status == 415
    # Still serving, nothing lost.
    assert trace_of(server, trace_id)["spans"][0]["operationName"] == "op"


def test_oversized_bodies_are_413(tmp_path: Path) -> None:
    s = Server(tmp_path / "t", "--otlp-port", "0", "--max-body-mb", "1")
    try:
        # Announced too big: refused before the body is read.
        head = b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\n"
        head += b"Content-Type: application/x-protobuf\r\n"
        answer = raw_request(s.url, head + b"Content-Length: %d\r\n\r\n" % (2 << 20))
        assert answer.startswith(b"HTTP/1.1 413")
        # Chunked, with no length announced: cut at the limit while reading.
        host, port = s.url.removeprefix("http://").rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(40):
                    sock.sendall(b"10000\r\n" + b"\0" * 65536 + b"\r\n")
            except OSError:
                pass  # the server stopped reading at the limit
            assert sock.recv(65536).startswith(b"HTTP/1.1 413")
        assert s.api("/api/services")[0] == 200
    finally:
        assert s.stop()[0] == 0


def test_wrong_content_types_are_415(server: Server) -> None:
    for path, content_type in [
        ("/v1/traces", "text/plain"),
        ("/v1/traces", "application/grpc"),
        ("/api/v2/spans", "application/x-thrift"),
    ]:
        status, _, _ = server.request(path, b"{}", {"Content-Type": content_type})
        assert status == 415, (path, content_type)


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def test_host_header_must_name_this_server(server: Server) -> None:
    port = server.url.rsplit(":", 1)[1]
    ok = raw_request(
        server.url, f"GET /api/services HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode()
    )
    assert ok.startswith(b"HTTP/1.1 200")
    for host in ["evil.example", f"attacker.example:{port}", "127.0.0.1.nip.io"]:
        refused = raw_request(
            server.url, f"GET /api/services HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        )
        assert refused.startswith(b"HTTP/1.1 421"), host
    refused = raw_request(server.url, b"GET /api/services HTTP/1.0\r\n\r\n")
    assert refused.startswith(b"HTTP/1.0 403") or refused.startswith(b"HTTP/1.1 403")


def test_cors_only_for_the_allowed_origin(server: Server, tmp_path: Path) -> None:
    _, headers, _ = server.request("/api/services", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in headers
    s = Server(tmp_path / "cors", "--otlp-port", "0", "--cors-origin", "http://localhost:3000")
    try:
        _, headers, _ = s.request("/api/services", headers={"Origin": "http://localhost:3000"})
        assert headers["access-control-allow-origin"] == "http://localhost:3000"
        _, headers, _ = s.request("/api/services", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in headers
        status, headers, _ = s.request(
            "/v1/traces", method="OPTIONS", headers={"Origin": "http://localhost:3000"}
        )
        assert status == 204 and "POST" in headers["access-control-allow-methods"]
    finally:
        assert s.stop()[0] == 0


def test_malformed_input_never_loses_stored_data(server: Server) -> None:
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4736"
    assert (
        server.request("/v1/traces", otlp_json(trace_id), {"Content-Type": "application/json"})[0]
        == 200
    )
    trace_of(server, trace_id)
    junk = [b"\x00" * 100, os.urandom(4096), b'{"resourceSpans":[{"scopeSpans":[{"spans":[{}]}]}]}']
    for body in junk:
        for ct in ["application/x-protobuf", "application/json"]:
            status, _, _ = server.request("/v1/traces", body, {"Content-Type": ct})
            assert status in (200, 400)
    # A client that connects and sends half a request, then nothing.
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    stalled = socket.create_connection((host, int(port)))
    stalled.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nab")
    try:
        assert trace_of(server, trace_id)["spans"][0]["operationName"] == "op"
        analysis = ft.analyze(server.dir)
        assert analysis.get_trace(trace_id) is not None
    finally:
        stalled.close()


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------


def test_the_otlp_port_serves_only_the_otlp_receiver(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        otlp_port = probe.getsockname()[1]
    s = Server(tmp_path / "t", "--otlp-port", str(otlp_port))
    try:
        otlp = f"http://127.0.0.1:{otlp_port}"
        assert f"OTLP/HTTP also at {otlp}/v1/traces" in s.banner
        trace_id = "9bf92f3577b34da6a3ce929d0e0e4736"
        req = urllib.request.Request(
            otlp + "/v1/traces", otlp_json(trace_id), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        trace_of(s, trace_id)
        for path in ["/api/services", "/", "/api/v2/spans"]:
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(otlp + path, timeout=30)
            e.value.close()
            assert e.value.code == 404, path
    finally:
        assert s.stop()[0] == 0


def test_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ferrotrace", "serve", str(tmp_path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "port is in use" in done.stderr and str(port) in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_directory_that_cannot_be_made_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "ferrotrace", "serve", str(blocker / "sub"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "traces directory" in done.stderr and "Traceback" not in done.stderr


def test_a_bad_cors_origin_is_a_one_line_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ferrotrace", "serve", str(tmp_path), "--port", "0"]
        + ["--otlp-port", "0", "--cors-origin", "bad\norigin"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("ferrotrace serve: --cors-origin")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_sigterm_and_ctrl_c_stop_cleanly_with_every_span_on_disk(tmp_path: Path) -> None:
    for sig in [signal.SIGTERM, signal.SIGINT]:
        directory = tmp_path / sig.name
        s = Server(directory)
        trace_id = "7bf92f3577b34da6a3ce929d0e0e4736"
        assert (
            s.request("/v1/traces", otlp_json(trace_id), {"Content-Type": "application/json"})[0]
            == 200
        )
        s.proc.send_signal(sig)
        code, out, err = s.stop(signalled=True)
        assert code == 0, err
        assert "stopped" in out and "Traceback" not in err
        assert ft.analyze(directory).get_trace(trace_id) is not None


def test_ctrl_c_stops_a_server_started_with_sigint_ignored(tmp_path: Path) -> None:
    # How a script's background job (`ferrotrace serve &`) starts: SIGINT is
    # ignored, and Python then installs no KeyboardInterrupt handler.
    s = Server(tmp_path / "traces", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    s.proc.send_signal(signal.SIGINT)
    code, out, err = s.stop(signalled=True)
    assert code == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_received_spans_work_with_the_cli(server: Server) -> None:
    trace_id = "8bf92f3577b34da6a3ce929d0e0e4736"
    server.request(
        "/v1/traces", otlp_json(trace_id, "cli-op"), {"Content-Type": "application/json"}
    )
    done = subprocess.run(
        [sys.executable, "-m", "ferrotrace", "stats", str(server.dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cli-op" in done.stdout
