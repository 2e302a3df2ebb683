"""Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/).

    .venv/bin/python fuzz/make_seeds.py

The span files and request bodies are real: a tracer writes JSONL and
exports the same spans over OTLP (protobuf and JSON) and Zipkin to a local
sink (tests/otlp_sink.py). Header, environment and duration seeds are
written by hand below. Ids are random, so a rerun changes the files, not
what they cover.
"""

from __future__ import annotations

import gzip
import pathlib
import sys
import tempfile
import zlib

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent / "tests"))

import ferrotrace as ft  # noqa: E402
from otlp_sink import Sink  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"

HEADERS = {
    "traceparent_sampled": f"traceparent: 00-{TRACE}-{SPAN}-01\n",
    "traceparent_random": f"traceparent: 00-{TRACE}-{SPAN}-02\n",
    "traceparent_future": f"traceparent: cc-{TRACE}-{SPAN}-03-extra\n",
    "traceparent_tracestate": (
        f"traceparent: 00-{TRACE}-{SPAN}-03\n"
        "tracestate: rojo=00f067aa0ba902b7, congo=t61rcWkgMzE\n"
        "tracestate: foo@bar=1,x=a b\n"
    ),
    "b3_single": f"b3: {TRACE}-{SPAN}-1-{SPAN}\n",
    "b3_single_64": f"b3: {TRACE[16:]}-{SPAN}-d\n",
    "b3_multi": (
        f"x-b3-traceid: {TRACE}\nx-b3-spanid: {SPAN}\nx-b3-sampled: true\nx-b3-flags: 1\n"
    ),
    "xtrace_uuid": (
        f"x-trace-id: 4BF92F35-77B3-4DA6-A3CE-929D0E0E4736\nx-span-id: {TRACE}\nx-sampled: false\n"
    ),
    "everything": (
        f"b3: junk\ntraceparent: 00-{TRACE}-{SPAN}-00\nx-trace-id: {TRACE[16:]}\n"
        f"x-span-id: {SPAN}\n"
    ),
    "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT",
    "propagator_list": "tracecontext, b3multi,baggage,none",
}

CONFIG = {
    "ferrotrace": (
        "FERROTRACE_SERVICE_NAME=api\nFERROTRACE_SAMPLE_RATE=0.25\nFERROTRACE_BUFFER_SIZE=4096\n"
        "FERROTRACE_OUTPUT_DIR=none\nFERROTRACE_PROPAGATORS=b3,tracecontext\n"
    ),
    "otel": (
        "OTEL_SERVICE_NAME=api\nOTEL_TRACES_SAMPLER=parentbased_traceidratio\n"
        "OTEL_TRACES_SAMPLER_ARG=0.5\nOTEL_RESOURCE_ATTRIBUTES=team=core,region=eu%2Dwest\n"
        "OTEL_SDK_DISABLED=false\nOTEL_PROPAGATORS=tracecontext,baggage\n"
    ),
    "exporters": (
        "OTEL_TRACES_EXPORTER=otlp,zipkin\nOTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318\n"
        "OTEL_EXPORTER_OTLP_PROTOCOL=http/json\nOTEL_EXPORTER_OTLP_HEADERS=api-key=abc%20d\n"
        "OTEL_EXPORTER_OTLP_COMPRESSION=gzip\nOTEL_EXPORTER_OTLP_TIMEOUT=2500\n"
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT=https://zipkin:9411/api/v2/spans\n"
    ),
    "key_values": "a=1, b = two ,c=%41%42",
}

DURATIONS = ["1.5s", "100ms", "1h30m", "250us", "0", "+2m0.5s", "3µs", "7ns"]


def traced_work(tracer: ft.Tracer) -> None:
    remote = ft.extract({"traceparent": f"00-{TRACE}-{SPAN}-03", "tracestate": "vendor=v1"})
    with tracer.start_span("GET /orders/{id}", kind="server", parent=remote) as server:
        server.set_tag("http.request.method", "GET")
        server.set_tag("ratio", 0.5)
        server.set_tag("tags", ["a", "b"])
        with tracer.start_span("SELECT orders", kind="client", tags={"db.system": "sqlite"}) as db:
            db.log("rows", count=3)
        try:
            with tracer.start_span("charge", kind="producer"):
                raise ValueError('card declined \u2013 "quoted"\n')
        except ValueError:
            pass
    with tracer.start_span("batch", kind="consumer") as batch:
        batch.add_link(server.context, {"messaging.batch": 2})
        batch.set_status(500)


def write(target: str, name: str, data: bytes) -> None:
    directory = ROOT / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def main() -> None:
    for name, text in HEADERS.items():
        write("propagation", name, text.encode())
    for name, text in CONFIG.items():
        write("config", name, text.encode())
    for i, text in enumerate(DURATIONS):
        write("duration", f"d{i}", text.encode())
    with tempfile.TemporaryDirectory() as tmp, Sink() as sink:
        for protocol in ["http/protobuf", "http/json"]:
            tracer = ft.Tracer(
                "seeds",
                tmp,
                exporters=["jsonl", "otlp", "zipkin"],
                otlp_endpoint=sink.url("/v1/traces"),
                otlp_protocol=protocol,
                zipkin_endpoint=sink.url("/api/v2/spans"),
                resource_attributes={"deployment.environment": "fuzz"},
            )
            traced_work(tracer)
            assert tracer.flush(timeout=10.0)
            tracer.shutdown(timeout=10.0)
        for i, request in enumerate(sink.requests):
            if request.path == "/api/v2/spans":
                write("zipkin", f"zipkin{i}.json", request.body)
            elif request.headers.get("content-type") == "application/json":
                write("otlp_json", f"otlp{i}.json", request.body)
            else:
                write("otlp_protobuf", f"otlp{i}.pb", request.body)
        lines = b"".join(p.read_bytes() for p in sorted(pathlib.Path(tmp).glob("spans-*.jsonl")))
    write("jsonl", "spans.jsonl", lines)
    write("jsonl", "spans.jsonl.gz", gzip.compress(lines, mtime=0))
    write("jsonl", "one_line", lines.splitlines(keepends=True)[0])
    serve_body_seeds()


def serve_body_seeds() -> None:
    """serve_body: the request bodies above behind an encoding byte (0
    none, 1 gzip, 2 deflate), as the edge of `ferrotrace serve` gets them."""
    encoders = [lambda b: b, lambda b: gzip.compress(b, mtime=0), zlib.compress]
    for target in ["otlp_protobuf", "otlp_json", "zipkin"]:
        seed = next(f for f in sorted((ROOT / "corpus" / target).iterdir()) if "." in f.name)
        for which, encode in enumerate(encoders):
            data = bytes([which]) + encode(seed.read_bytes())
            write("serve_body", f"{target}.{which}", data)


if __name__ == "__main__":
    main()
