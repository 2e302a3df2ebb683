"""Export from Python: OTLP/HTTP (protobuf and JSON, gzip or not), Zipkin v2 and
console, checked by a local sink (tests/otlp_sink.py) that decodes every OTLP
request with the official opentelemetry-proto classes."""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from conftest import clean_env, read_spans
from otlp_sink import (
    Blackhole,
    Request,
    Response,
    Sink,
    attributes,
    closed_port,
    decode_otlp,
    otlp_spans,
    span_count,
)

# opentelemetry.proto.trace.v1 enums, by number (what the wire carries).
KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2
FLAG_SAMPLED = 0x01
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200

REMOTE_TRACE = "0af7651916cd43dd8448eb211c80319c"
REMOTE_PARENT = "b7ad6b7169203331"


@pytest.fixture
def make_tracer(make_tracer):
    """conftest's factory, with the collector draining only when told (by
    flush, shutdown, or a quarter-full buffer): the spans a test makes in one
    go then leave in one batch, so the requests a scripted sink sees are
    exactly the ones the test expects."""

    def make(output_dir: Any = None, **kwargs: Any) -> ft.Tracer:
        kwargs.setdefault("flush_interval_ms", 60_000)
        return make_tracer(output_dir, **kwargs)

    return make


@pytest.fixture
def sink():
    with Sink() as s:
        yield s


def ferrotrace_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ferrotrace"]


def delivered(requests: list[Request]) -> list[Request]:
    """The requests the sink accepted."""
    return [r for r in requests if r.status == 200]


# --------------------------------------------------------------------------
# The mapping, in every encoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip"])
@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_every_field_decodes_with_the_official_classes(
    make_tracer, out_dir, sink, monkeypatch, protocol, compression
):
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "team=pay%20ments,region=eu%2Cwest,deployment.environment=test"
    )
    t = make_tracer(
        out_dir,
        service_name="checkout",
        exporters=["jsonl", "otlp"],
        otlp_endpoint=sink.url(),
        otlp_protocol=protocol,
        otlp_compression=compression,
        max_attributes=16,
        max_events=2,
    )
    remote = ft.extract(
        {"traceparent": f"00-{REMOTE_TRACE}-{REMOTE_PARENT}-01", "tracestate": "vendor=abc,o=x"}
    )
    assert remote is not None
    with t.start_span("GET /orders/{id}", kind="server", parent=remote) as root:
        root.set_tags(
            {
                "int": 42,
                "negative": -(2**63),
                "double": 2.5,
                "bool": True,
                "str": "héllo",
                "strs": ["a", "b"],
                "ints": [1, 2, 3],
                "doubles": [0.5, 1.5],
                "bools": [True, False],
                "huge": 2**70,
            }
        )
        root.set_status("ok")
        with t.start_span("fetch", kind="client") as child:
            child.log("cache miss", key="u:1")
            child.log("slow answer", level="warning")
            child.set_status("error", "backend said no")
        with pytest.raises(ValueError), t.start_span("validate"):
            raise ValueError("bad order id")
        with t.start_span("publish", kind="producer") as crowded:
            for i in range(20):
                crowded.set_tag(f"k{i}", i)
            for i in range(5):
                crowded.log(f"e{i}")
        with t.start_span("consume", kind="consumer"):
            pass
    assert t.flush(timeout=10.0) is True

    requests = sink.requests
    assert requests
    for r in requests:
        assert r.path == "/v1/traces"
        wanted_type = "application/json" if protocol == "http/json" else "application/x-protobuf"
        assert r.headers["content-type"] == wanted_type
        if compression == "gzip":
            assert r.headers["content-encoding"] == "gzip"
            assert r.raw[:2] == b"\x1f\x8b"
        else:
            assert "content-encoding" not in r.headers
            assert r.raw == r.body
    exported = otlp_spans(requests)
    files = {s["span_id"]: s for s in read_spans(out_dir)}
    assert len(exported) == len(files) == 5
    assert {span.span_id.hex() for _, _, span in exported} == set(files)

    resource, scope, _ = exported[0]
    res = attributes(resource.attributes)
    assert res["service.name"] == "checkout"
    assert res["telemetry.sdk.name"] == "ferrotrace"
    assert res["telemetry.sdk.language"] == "python"
    assert res["telemetry.sdk.version"] == ft.__version__
    assert res["host.name"] == socket.gethostname()
    assert res["process.pid"] == os.getpid()
    assert res["team"] == "pay ments"
    assert res["region"] == "eu,west"
    assert res["deployment.environment"] == "test"
    assert scope.name == "ferrotrace" and scope.version == ft.__version__

    spans = {span.name: span for _, _, span in exported}
    for span in spans.values():
        record = files[span.span_id.hex()]
        assert span.trace_id.hex() == REMOTE_TRACE
        assert span.start_time_unix_nano == record["start_ns"]
        assert span.end_time_unix_nano == record["end_ns"]
        assert span.kind == KIND[record["kind"]]
        assert span.flags & 0xFF == FLAG_SAMPLED
        assert span.flags & FLAG_HAS_IS_REMOTE
        assert span.trace_state == "vendor=abc,o=x"

    root = spans["GET /orders/{id}"]
    assert root.parent_span_id.hex() == REMOTE_PARENT
    assert root.flags & FLAG_IS_REMOTE
    assert root.status.code == STATUS_OK
    kinds = {kv.key: kv.value.WhichOneof("value") for kv in root.attributes}
    assert kinds == {
        "int": "int_value",
        "negative": "int_value",
        "double": "double_value",
        "bool": "bool_value",
        "str": "string_value",
        "strs": "array_value",
        "ints": "array_value",
        "doubles": "array_value",
        "bools": "array_value",
        "huge": "string_value",
    }
    assert attributes(root.attributes) == {
        "int": 42,
        "negative": -(2**63),
        "double": 2.5,
        "bool": True,
        "str": "héllo",
        "strs": ["a", "b"],
        "ints": [1, 2, 3],
        "doubles": [0.5, 1.5],
        "bools": [True, False],
        "huge": str(2**70),
    }
    assert root.dropped_attributes_count == 0 and root.dropped_events_count == 0

    child = spans["fetch"]
    assert child.parent_span_id == root.span_id
    assert not child.flags & FLAG_IS_REMOTE
    assert child.status.code == STATUS_ERROR
    assert child.status.message == "backend said no"
    assert [e.name for e in child.events] == ["cache miss", "slow answer"]
    assert attributes(child.events[0].attributes) == {"key": "u:1"}
    assert attributes(child.events[1].attributes) == {"level": "warning"}
    record = files[child.span_id.hex()]
    assert [e.time_unix_nano for e in child.events] == [e["ts_ns"] for e in record["events"]]
    for event in child.events:
        assert child.start_time_unix_nano <= event.time_unix_nano <= child.end_time_unix_nano

    failed = spans["validate"]
    assert failed.parent_span_id == root.span_id
    assert failed.status.code == STATUS_ERROR
    assert "bad order id" in failed.status.message
    (exception,) = [e for e in failed.events if e.name == "exception"]
    fields = attributes(exception.attributes)
    assert fields["exception.type"] == "ValueError"
    assert fields["exception.message"] == "bad order id"
    assert 'raise ValueError("bad order id")' in fields["exception.stacktrace"]

    crowded = spans["publish"]
    assert len(crowded.attributes) == 16 and crowded.dropped_attributes_count == 4
    assert len(crowded.events) == 2 and crowded.dropped_events_count == 3
    assert spans["consume"].status.code == STATUS_UNSET

    m = t.metrics()
    assert m["spans_exported"] == 5
    assert m["spans_export_dropped"] == 0 and m["export_errors"] == 0


def test_resource_attributes_keyword(make_tracer, sink, monkeypatch):
    # Like every option, the keyword replaces its environment variable.
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=ops")
    t = make_tracer(
        None,
        service_name="api",
        exporters=["otlp"],
        otlp_endpoint=sink.url(),
        resource_attributes={"deployment.environment": "prod", "k8s.namespace.name": "shop"},
    )
    make_spans(t, 1)
    assert t.flush(timeout=10.0) is True
    resource, _, _ = otlp_spans(sink.requests)[0]
    res = attributes(resource.attributes)
    assert res["deployment.environment"] == "prod"
    assert res["k8s.namespace.name"] == "shop"
    assert res["service.name"] == "api"
    assert "team" not in res


def test_an_unsampled_local_root_is_not_exported_and_a_fresh_trace_has_no_remote_bit(
    make_tracer, sink
):
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    with t.start_span("root"):
        with t.start_span("child"):
            pass
    assert t.flush(timeout=10.0) is True
    spans = {span.name: span for _, _, span in otlp_spans(sink.requests)}
    assert set(spans) == {"root", "child"}
    assert spans["root"].parent_span_id == b""
    assert spans["root"].trace_state == ""
    assert spans["root"].flags & FLAG_HAS_IS_REMOTE
    assert not spans["root"].flags & FLAG_IS_REMOTE
    assert spans["child"].parent_span_id == spans["root"].span_id


# --------------------------------------------------------------------------
# Headers and endpoint rules
# --------------------------------------------------------------------------


def test_headers_and_user_agent(make_tracer, sink):
    t = make_tracer(
        None,
        exporters=["otlp"],
        otlp_endpoint=sink.url(),
        otlp_headers={"api-key": "secret", "X-Tenant": "blue"},
    )
    with t.start_span("op"):
        pass
    assert t.flush(timeout=10.0) is True
    (request,) = sink.requests
    assert request.headers["api-key"] == "secret"
    assert request.headers["x-tenant"] == "blue"
    assert request.headers["user-agent"].startswith(f"ferrotrace/{ft.__version__}")


def test_headers_from_the_environment_are_percent_decoded(make_tracer, sink, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,x-generic=1")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-traces=2")
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    with t.start_span("op"):
        pass
    assert t.flush(timeout=10.0) is True
    (request,) = sink.requests
    assert request.headers["x-traces"] == "2"
    # The signal-specific variable replaces the generic one, as in the SDKs.
    assert "x-generic" not in request.headers
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
    t2 = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    with t2.start_span("op"):
        pass
    assert t2.flush(timeout=10.0) is True
    assert sink.requests[1].headers["api-key"] == "a b"
    assert sink.requests[1].headers["x-generic"] == "1"


@pytest.mark.parametrize(
    ("env", "path"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "{base}"}, "/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "{base}/"}, "/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "{base}/otlp"}, "/otlp/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{base}/custom/path"}, "/custom/path"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{base}"}, "/"),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1/ignored",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "{base}/traces-only",
            },
            "/traces-only",
        ),
    ],
)
def test_endpoint_rules(make_tracer, sink, monkeypatch, env, path):
    base = f"http://127.0.0.1:{sink.port}"
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(base=base))
    monkeypatch.setenv("FERROTRACE_EXPORTERS", "otlp")
    t = make_tracer(None)
    assert t.config["exporters"] == ["otlp"]
    with t.start_span("op"):
        pass
    assert t.flush(timeout=10.0) is True
    assert [r.path for r in sink.requests] == [path]


def test_keyword_wins_over_environment(make_tracer, sink, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    t = make_tracer(
        None, exporters=["otlp"], otlp_endpoint=sink.url("/kw"), otlp_protocol="http/protobuf"
    )
    assert t.config["otlp_endpoint"] == sink.url("/kw")
    with t.start_span("op"):
        pass
    assert t.flush(timeout=10.0) is True
    (request,) = sink.requests
    assert request.path == "/kw"
    assert request.headers["content-type"] == "application/x-protobuf"


def test_protocol_and_compression_from_the_environment(make_tracer, sink, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    t = make_tracer(None, otlp_endpoint=sink.url())
    with t.start_span("op"):
        pass
    assert t.flush(timeout=10.0) is True
    (request,) = sink.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-encoding"] == "gzip"
    assert span_count(sink.requests) == 1


def test_ferrotrace_exporters_wins_over_otel_traces_exporter(make_tracer, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    monkeypatch.setenv("FERROTRACE_EXPORTERS", "jsonl, console")
    assert make_tracer(None).config["exporters"] == ["jsonl", "console"]
    monkeypatch.setenv("FERROTRACE_EXPORTERS", "none")
    assert make_tracer(None).config["exporters"] == []
    monkeypatch.delenv("FERROTRACE_EXPORTERS")
    assert make_tracer(None).config["exporters"] == ["zipkin"]


# --------------------------------------------------------------------------
# Retries and failures
# --------------------------------------------------------------------------


def make_spans(t: ft.Tracer, n: int, name: str = "op") -> set[str]:
    ids = set()
    for i in range(n):
        with t.start_span(name, tags={"i": i}) as span:
            ids.add(span.span_id)
    return ids


def test_503_then_200_delivers_each_span_once(make_tracer, sink):
    sink.script(Response(503), Response(503))
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url(), otlp_timeout=10_000)
    ids = make_spans(t, 50)
    assert t.flush(timeout=15.0) is True
    assert [r.status for r in sink.requests] == [503, 503, 200]
    accepted = [span.span_id.hex() for _, _, span in otlp_spans(delivered(sink.requests))]
    assert sorted(accepted) == sorted(ids)
    m = t.metrics()
    assert m["spans_exported"] == 50
    assert m["spans_export_dropped"] == 0 and m["export_errors"] == 0


@pytest.mark.parametrize("status", [429, 502, 504])
def test_the_other_retryable_statuses(make_tracer, sink, status):
    sink.script(Response(status))
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    ids = make_spans(t, 3)
    assert t.flush(timeout=15.0) is True
    assert [r.status for r in sink.requests] == [status, 200]
    assert {s.span_id.hex() for _, _, s in otlp_spans(delivered(sink.requests))} == ids


def http_date(seconds_from_now: float) -> str:
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=seconds_from_now
    )
    return email.utils.format_datetime(when, usegmt=True)


@pytest.mark.parametrize("retry_after", ["2", "date"])
def test_retry_after_is_honoured(make_tracer, sink, retry_after):
    # The policy's own first backoff is 100-200 ms, so a gap of about two
    # seconds is the server's Retry-After at work. (A lower bound: a slow
    # machine cannot make it fail.)
    value = http_date(3) if retry_after == "date" else retry_after
    sink.script(Response(503, {"Retry-After": value}))
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url(), otlp_timeout=20_000)
    make_spans(t, 1)
    assert t.flush(timeout=25.0) is True
    first, second = sink.requests
    assert (first.status, second.status) == (503, 200)
    assert second.at - first.at >= 1.5


def test_400_is_never_retried_and_counted_with_one_warning(make_tracer, sink, caplog):
    sink.script(
        Response(400, {"Content-Type": "text/plain"}, b"bad payload"),
        Response(400, {"Content-Type": "text/plain"}, b"bad payload"),
    )
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    make_spans(t, 10)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        assert t.flush(timeout=10.0) is False
        # The same failure again: still one warning.
        make_spans(t, 5)
        assert t.flush(timeout=10.0) is False
        t.metrics()
    assert [r.status for r in sink.requests] == [400, 400]
    m = t.metrics()
    assert m["spans_exported"] == 0
    assert m["spans_export_dropped"] == 15
    assert m["export_errors"] == 2
    warnings = ferrotrace_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "400" in warnings[0]


def test_a_partial_success_counts_the_rejected_spans(make_tracer, sink, caplog):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    answer = ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 2
    answer.partial_success.error_message = "two spans too old"
    sink.script(Response(200, body=answer.SerializeToString()))
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    make_spans(t, 5)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        assert t.flush(timeout=10.0) is False
    m = t.metrics()
    assert m["spans_exported"] == 3 and m["spans_export_dropped"] == 2
    (warning,) = ferrotrace_warnings(caplog)
    assert "two spans too old" in warning


# The traced program of the dead/blackholed endpoint tests. An atexit handler
# registered before ferrotrace is imported runs after ferrotrace's own, so it
# sees the metrics once the exit deadline has passed.
EXIT_PROGRAM = """
import atexit, json, sys, time
state = {}
atexit.register(lambda: print(json.dumps({"loop": state["loop"],
                                          "after_exit": state["tracer"].metrics()}), flush=True))
import ferrotrace as ft
from pathlib import Path
out = Path(sys.argv[1])
t = ft.Tracer("svc", out, exporters=["jsonl", "otlp"], otlp_endpoint=sys.argv[2],
              otlp_timeout=60_000, flush_interval_ms=20)
state["tracer"] = t
for i in range(1000):
    with t.start_span("op", tags={"i": i}):
        pass
# The loop is over before the exporter has given up: traced code never waited for it.
state["loop"] = t.metrics()
# The files do not wait for the network either.
while sum(len(p.read_bytes().splitlines()) for p in out.glob("spans*.jsonl")) < 1000:
    time.sleep(0.01)
state["files_done"] = t.metrics()
assert state["files_done"]["spans_exported"] == 0, state
"""


@pytest.mark.parametrize("endpoint", ["dead", "blackholed"])
def test_exit_is_bounded_whatever_the_endpoint_does(tmp_path, endpoint):
    with Blackhole() as hole:
        port = closed_port() if endpoint == "dead" else hole.port
        out = tmp_path / "traces"
        started = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(EXIT_PROGRAM),
                str(out),
                f"http://127.0.0.1:{port}/v1/traces",
            ],
            env=clean_env(FERROTRACE_EXIT_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    # A hang check, not a benchmark: the exporter would wait 60 s.
    assert took < 10, f"exit took {took:.1f}s"
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loop"]["spans_finished"] == 1000
    assert report["loop"]["spans_exported"] == 0
    assert report["loop"]["export_errors"] == 0
    after = report["after_exit"]
    assert after["spans_exported"] == 0
    # Dead: every attempt failed until exit's deadline. Blackholed: the request
    # was still in flight at the deadline; the exporter was abandoned, its
    # spans counted.
    assert after["spans_export_dropped"] == 1000
    if endpoint == "dead":
        assert after["export_errors"] >= 1
    spans = read_spans(out)
    assert len(spans) == 1000
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(1000))


# --------------------------------------------------------------------------
# https
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    """A self-signed CA and a server certificate it signed for localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = tmp_path_factory.mktemp("ca")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferrotrace test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (directory / "server.pem").write_bytes(cert.public_bytes(pem))
    (directory / "server.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory


@pytest.fixture
def https_sink(private_ca):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(private_ca / "server.pem", private_ca / "server.key")
    with Sink(tls=context) as s:
        yield s


def test_https_with_a_private_ca(make_tracer, https_sink, private_ca):
    t = make_tracer(
        None,
        exporters=["otlp"],
        otlp_endpoint=https_sink.url(),
        otlp_certificate=str(private_ca / "ca.pem"),
    )
    ids = make_spans(t, 3)
    assert t.flush(timeout=10.0) is True
    assert {s.span_id.hex() for _, _, s in otlp_spans(https_sink.requests)} == ids
    assert t.metrics()["spans_exported"] == 3


def test_https_certificate_from_the_environment(make_tracer, https_sink, private_ca, monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(private_ca / "ca.pem"))
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=https_sink.url())
    make_spans(t, 2)
    assert t.flush(timeout=10.0) is True
    assert span_count(https_sink.requests) == 2


def test_https_without_the_ca_fails_and_is_counted(make_tracer, https_sink, caplog):
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=https_sink.url(), otlp_timeout=1500)
    make_spans(t, 4)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        assert t.flush(timeout=10.0) is False
    assert https_sink.requests == []
    m = t.metrics()
    assert m["spans_exported"] == 0
    assert m["spans_export_dropped"] == 4
    assert m["export_errors"] >= 1
    (warning,) = ferrotrace_warnings(caplog)
    assert "certificate" in warning.lower() or "tls" in warning.lower(), warning


# --------------------------------------------------------------------------
# Configuration errors
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "option", "default"),
    [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "otlp_protocol", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift", "otlp_protocol", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "otlp_compression", "none"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "otlp_timeout", 10_000),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-5", "otlp_timeout", 10_000),
        ("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign", "otlp_headers", {}),
        ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz", "otlp_headers", {}),
        ("OTEL_TRACES_EXPORTER", "otlp,jaeger", "exporters", ["jsonl"]),
        ("FERROTRACE_EXPORTERS", "carrier-pigeon", "exporters", ["jsonl"]),
    ],
)
def test_a_bad_environment_value_warns_once_and_is_ignored(
    make_tracer, monkeypatch, caplog, name, value, option, default
):
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        t = make_tracer(None)
    assert t.config[option] == default
    warnings = ferrotrace_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert name in warnings[0]


@pytest.mark.parametrize("value", ["no-equals", "k=%zz", "k=v,=empty-key"])
def test_a_bad_resource_environment_is_ignored_with_a_warning(
    make_tracer, sink, monkeypatch, caplog, value
):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", value)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        t = make_tracer(None, service_name="svc", exporters=["otlp"], otlp_endpoint=sink.url())
    (warning,) = ferrotrace_warnings(caplog)
    assert "OTEL_RESOURCE_ATTRIBUTES" in warning
    make_spans(t, 1)
    assert t.flush(timeout=10.0) is True
    resource, _, _ = otlp_spans(sink.requests)[0]
    res = attributes(resource.attributes)
    assert res["service.name"] == "svc"
    assert "k" not in res and "no-equals" not in res


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exporters": ["otlp", "jaeger"]}, ValueError),
        ({"exporters": 5}, TypeError),
        ({"exporters": [1]}, TypeError),
        ({"otlp_protocol": "grpc"}, ValueError),
        ({"otlp_compression": "zstd"}, ValueError),
        ({"otlp_timeout": -1}, ValueError),
        ({"otlp_timeout": "soon"}, TypeError),
        ({"otlp_headers": "api-key=x"}, TypeError),
        ({"otlp_endpoint": "not a url", "exporters": ["otlp"]}, ValueError),
        ({"otlp_endpoint": "ftp://host/v1/traces", "exporters": ["otlp"]}, ValueError),
        ({"zipkin_endpoint": "nope", "exporters": ["zipkin"]}, ValueError),
        ({"otlp_certificate": "/does/not/exist.pem", "exporters": ["otlp"]}, ValueError),
        ({"resource_attributes": ["a=b"]}, TypeError),
    ],
)
def test_bad_keywords_raise(kwargs, error):
    with pytest.raises(error):
        ft.Tracer("svc", None, **kwargs)


def test_a_certificate_that_is_not_pem_is_a_value_error(tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="certificate"):
        ft.Tracer("svc", None, exporters=["otlp"], otlp_certificate=str(bad))


# --------------------------------------------------------------------------
# Several exporters, Zipkin, console
# --------------------------------------------------------------------------


def test_several_exporters_at_once(make_tracer, out_dir, sink, capfd):
    with Sink() as zipkin:
        t = make_tracer(
            out_dir,
            service_name="multi",
            exporters=["jsonl", "otlp", "zipkin", "console"],
            otlp_endpoint=sink.url(),
            zipkin_endpoint=zipkin.url("/api/v2/spans"),
        )
        ids = make_spans(t, 7)
        with pytest.raises(KeyError), t.start_span("lookup"):
            raise KeyError("u:1")
        assert t.flush(timeout=10.0) is True
        zipkin_ids = {s["id"] for r in zipkin.requests for s in json.loads(r.body)}
    err = capfd.readouterr().err
    files = {s["span_id"] for s in read_spans(out_dir)}
    otlp = {s.span_id.hex() for _, _, s in otlp_spans(sink.requests)}
    assert len(files) == 8 and ids < files
    assert otlp == files == zipkin_ids
    lines = [line for line in err.splitlines() if " multi " in line]
    assert len(lines) == 8
    for span_id in files:
        (line,) = [line for line in lines if f"span={span_id}" in line]
        assert line.startswith(("19", "20"))  # an ISO-8601 timestamp
        assert " ms" in line
    (failed,) = [line for line in lines if " lookup " in line]
    assert "ERROR" in failed and "KeyError" in failed
    m = t.metrics()
    assert m["spans_written"] == 8
    assert m["spans_exported"] == 3 * 8  # otlp + zipkin + console
    assert m["spans_export_dropped"] == 0 and m["export_errors"] == 0


def test_zipkin_v2_fields(make_tracer, out_dir):
    with Sink() as zipkin:
        t = make_tracer(
            out_dir,
            service_name="shop",
            exporters=["jsonl", "zipkin"],
            zipkin_endpoint=zipkin.url("/api/v2/spans"),
        )
        remote = ft.extract({"traceparent": f"00-{REMOTE_TRACE}-{REMOTE_PARENT}-01"})
        with t.start_span("GET /cart", kind="server", parent=remote) as root:
            root.set_tags({"http.status_code": 200, "ratio": 0.5, "ok": True, "tags": ["a", "b"]})
            root.set_status("ok")
            with t.start_span("SELECT cart", kind="client") as db:
                db.set_tag("peer.service", "postgres")
                db.log("rows read", rows=3)
            with t.start_span("GET /price", kind="client") as call:
                call.set_tags({"server.address": "prices.internal", "server.port": 8443})
            with t.start_span("send", kind="producer", tags={"server.address": "10.0.0.7"}):
                pass
            with t.start_span("instant") as instant:
                instant.finish(duration_ms=0.0)
            with pytest.raises(RuntimeError), t.start_span("render"):
                raise RuntimeError("template missing")
        assert t.flush(timeout=10.0) is True
        payload = []
        for request in zipkin.requests:
            assert request.path == "/api/v2/spans"
            assert request.headers["content-type"] == "application/json"
            payload += json.loads(request.body)
    files = {s["span_id"]: s for s in read_spans(out_dir)}
    spans = {s["name"]: s for s in payload}
    assert len(spans) == len(files) == 6
    for s in payload:
        record = files[s["id"]]
        assert s["traceId"] == REMOTE_TRACE
        assert s["localEndpoint"] == {"serviceName": "shop"}
        assert isinstance(s["timestamp"], int) and isinstance(s["duration"], int)
        assert s["timestamp"] == record["start_ns"] // 1000
        assert s["duration"] >= 1
        assert abs(s["duration"] - (record["end_ns"] - record["start_ns"]) / 1000) <= 1
        assert all(isinstance(v, str) for v in s.get("tags", {}).values()), s
        if record["kind"] == "internal":
            assert "kind" not in s
        else:
            assert s["kind"] == record["kind"].upper()
        assert ("error" in s.get("tags", {})) == (record["status"] == "error")
    root = spans["GET /cart"]
    assert root["parentId"] == REMOTE_PARENT
    assert root["tags"]["http.status_code"] == "200"
    assert root["tags"]["ratio"] == "0.5"
    assert root["tags"]["ok"] == "true"
    assert json.loads(root["tags"]["tags"]) == ["a", "b"]
    assert root["tags"]["otel.status_code"] == "OK"
    assert "remoteEndpoint" not in root
    db = spans["SELECT cart"]
    assert db["parentId"] == root["id"]
    assert db["remoteEndpoint"] == {"serviceName": "postgres"}
    (annotation,) = db["annotations"]
    assert annotation["value"].startswith("rows read")
    assert json.loads(annotation["value"].split(": ", 1)[1]) == {"rows": 3}
    event_ns = files[db["id"]]["events"][0]["ts_ns"]
    assert annotation["timestamp"] == event_ns // 1000
    assert spans["GET /price"]["remoteEndpoint"] == {"serviceName": "prices.internal", "port": 8443}
    assert spans["send"]["remoteEndpoint"] == {"ipv4": "10.0.0.7"}
    assert spans["instant"]["duration"] == 1
    assert "otel.status_code" not in spans["instant"].get("tags", {})
    failed = spans["render"]
    assert failed["tags"]["otel.status_code"] == "ERROR"
    assert "template missing" in failed["tags"]["error"]
    assert any(a["value"].startswith("exception") for a in failed["annotations"])
    assert t.metrics()["spans_exported"] == 6


# --------------------------------------------------------------------------
# Volume, fork, shutdown, disabled
# --------------------------------------------------------------------------


def test_200k_spans_reach_files_and_otlp_with_none_lost(make_tracer, out_dir, sink):
    n = 200_000
    t = make_tracer(
        out_dir, exporters=["jsonl", "otlp"], otlp_endpoint=sink.url(), buffer_size=262_144
    )
    for i in range(n):
        with t.start_span("op", tags={"i": i}):
            pass
    assert t.flush(timeout=120.0) is True
    m = t.metrics()
    assert m["spans_written"] == n and m["spans_dropped"] == 0
    assert m["spans_exported"] == n and m["spans_export_dropped"] == 0
    exported = [s.span_id for _, _, s in otlp_spans(sink.requests)]
    assert len(exported) == len(set(exported)) == n
    files = {s["span_id"] for s in read_spans(out_dir)}
    assert {i.hex() for i in exported} == files
    # Big batches are split into requests well under collectors' body limits.
    assert len(sink.requests) > 1
    assert max(len(r.body) for r in sink.requests) < 8 * 1024 * 1024


def test_after_fork_the_child_exports_its_own_spans(tmp_path, sink):
    code = f"""
    import os, sys
    import ferrotrace as ft
    t = ft.Tracer("forky", None, exporters=["otlp"], otlp_endpoint={sink.url()!r})
    with t.start_span("before-fork"):
        pass
    pid = os.fork()
    if pid == 0:
        with t.start_span("in-child"):
            pass
        os._exit(0 if t.flush(timeout=10.0) else 3)
    with t.start_span("in-parent"):
        pass
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert t.flush(timeout=10.0)
    print(os.getpid(), pid)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    parent_pid, child_pid = map(int, proc.stdout.split())
    by_name: dict[str, Any] = {}
    for resource, _, span in otlp_spans(sink.requests):
        assert span.name not in by_name, f"{span.name} exported twice"
        by_name[span.name] = attributes(resource.attributes)["process.pid"]
    assert by_name == {"before-fork": parent_pid, "in-parent": parent_pid, "in-child": child_pid}


def test_shutdown_stops_the_exporters(make_tracer, sink):
    t = make_tracer(None, exporters=["otlp"], otlp_endpoint=sink.url())
    make_spans(t, 3)
    assert t.shutdown(timeout=10.0) is True
    assert span_count(sink.requests) == 3
    requests = len(sink.requests)
    make_spans(t, 4)
    t.flush(timeout=1.0)
    m = t.metrics()
    assert m["spans_exported"] == 3
    assert m["spans_dropped_after_shutdown"] == 4
    time.sleep(0.3)  # nothing may arrive late either
    assert len(sink.requests) == requests


def test_sdk_disabled_exports_nothing(make_tracer, out_dir, sink, monkeypatch, caplog, capfd):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jsonl,otlp,console")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.url())
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        t = make_tracer(out_dir, service_name="off")
    make_spans(t, 5)
    t.flush(timeout=2.0)
    assert sink.requests == []
    assert " off " not in capfd.readouterr().err
    assert not out_dir.exists() or read_spans(out_dir) == []
    m = t.metrics()
    assert m["spans_exported"] == 0 and m["spans_written"] == 0
    assert ferrotrace_warnings(caplog) == []


# --------------------------------------------------------------------------
# End to end: the multi-service demo exporting OTLP
# --------------------------------------------------------------------------


def test_the_multi_service_demo_exports_every_span(tmp_path, sink, monkeypatch):
    import asyncio
    import importlib.util

    demo_path = Path(__file__).resolve().parent.parent / "examples" / "services" / "run_demo.py"
    spec = importlib.util.spec_from_file_location("run_demo_export", demo_path)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    # The services inherit this environment: files and OTLP both.
    monkeypatch.setenv("FERROTRACE_EXPORTERS", "jsonl,otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{sink.port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    urls, processes = demo.start_services(tmp_path)
    try:
        statuses = asyncio.run(demo.drive(urls["frontend"], requests=24, concurrency=4))
    finally:
        demo.stop_services(processes)
    assert all(p.returncode == 0 for p in processes)
    assert statuses == {200: 22, 502: 2}

    files = {s["span_id"]: s for s in read_spans(tmp_path)}
    exported: dict[str, Any] = {}
    for resource, _, span in otlp_spans(sink.requests):
        span_id = span.span_id.hex()
        assert span_id not in exported, "a span exported twice"
        exported[span_id] = (attributes(resource.attributes)["service.name"], span)
    assert set(exported) == set(files)
    assert {service for service, _ in exported.values()} == set(demo.TOPOLOGY)
    for span_id, (service, span) in exported.items():
        assert files[span_id]["service"] == service
        assert span.name == files[span_id]["name"]

    traces: dict[str, list[Any]] = {}
    for service, span in exported.values():
        traces.setdefault(span.trace_id.hex(), []).append((service, span))
    assert len(traces) == 24
    full = [t for t in traces.values() if {svc for svc, _ in t} == set(demo.TOPOLOGY)]
    assert len(full) == 23  # user 17 stops at auth
    for trace in traces.values():
        ids = {span.span_id for _, span in trace}
        roots = [(svc, span) for svc, span in trace if not span.parent_span_id]
        assert len(roots) == 1 and roots[0][0] == "frontend"
        for svc, span in trace:
            if span.parent_span_id:
                assert span.parent_span_id in ids, f"dangling parent of {svc} {span.name}"
        # A server span below the root is the child of its caller's client span.
        by_id = {span.span_id: (svc, span) for svc, span in trace}
        for svc, span in trace:
            if span.kind == KIND["server"] and span.parent_span_id:
                caller, parent = by_id[span.parent_span_id]
                assert parent.kind == KIND["client"] and caller != svc
                assert span.flags & FLAG_IS_REMOTE
    for request in sink.requests:
        assert request.headers["content-encoding"] == "gzip"
        decode_otlp(request)
