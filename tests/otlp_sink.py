"""A local receiver for the export tests: an HTTP(S) server on 127.0.0.1 that
records every request (method, path, headers, body after gzip) and answers
from a script (a list of responses, then 200 with an empty OTLP response).

It decodes OTLP with the official opentelemetry-proto classes only: protobuf
with `FromString`, JSON by checking the OTLP/JSON rules and then parsing with
`google.protobuf.json_format`, which refuses unknown or misspelled fields.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

EMPTY_PROTO_RESPONSE = ExportTraceServiceResponse().SerializeToString()


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw: bytes  # as sent (maybe gzip)
    body: bytes  # after Content-Encoding
    status: int  # what the sink answered
    at: float = field(default_factory=time.monotonic)


@dataclass
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # None: an empty OTLP response in the request's own encoding


class Sink:
    """Records requests; answers `script`ed responses in order, then 200."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self._script: list[Response] = []
        self._lock = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                raw = self._read_body()
                headers = {k.lower(): v for k, v in self.headers.items()}
                body = raw
                if headers.get("content-encoding", "").lower() == "gzip":
                    body = gzip.decompress(raw)
                with sink._lock:
                    response = sink._script.pop(0) if sink._script else Response()
                    request = Request("POST", self.path, headers, raw, body, response.status)
                    sink.requests.append(request)
                    sink._lock.notify_all()
                out = response.body
                content_type = headers.get("content-type", "application/x-protobuf")
                if out is None:
                    out = b"{}" if "json" in content_type else EMPTY_PROTO_RESPONSE
                self.send_response(response.status)
                self.send_header("Content-Type", content_type)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    parts = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(parts)
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/v1/traces") -> str:
        host = "localhost" if self.scheme == "https" else "127.0.0.1"
        return f"{self.scheme}://{host}:{self.port}{path}"

    def script(self, *responses: Response) -> None:
        with self._lock:
            self._script.extend(responses)

    def wait_for(self, done: Callable[[list[Request]], bool], timeout: float = 20.0) -> None:
        """Waits until `done(requests)`; fails with what arrived if it never is."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done(self.requests):
                left = deadline - time.monotonic()
                assert left > 0, f"sink: condition not met; got {len(self.requests)} requests"
                self._lock.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------
# OTLP decoding
# --------------------------------------------------------------------------

HEX_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _check_otlp_json(node: Any, path: str = "") -> None:
    """The OTLP/JSON rules protobuf's own JSON mapping does not enforce."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _check_otlp_json(item, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        where = f"{path}.{key}"
        assert "_" not in key, f"{where}: keys are lowerCamelCase"
        if key in HEX_ID_FIELDS:
            assert isinstance(value, str), where
            width = 32 if key == "traceId" else 16
            assert len(value) == width and value == value.lower(), f"{where}: hex, got {value!r}"
            int(value, 16)
        elif key in ("kind", "code"):
            assert isinstance(value, int) and not isinstance(value, bool), (
                f"{where}: enums are integers, got {value!r}"
            )
        elif key.endswith("UnixNano") or key == "intValue":
            assert isinstance(value, str) and value.lstrip("-").isdigit(), (
                f"{where}: 64-bit integers are decimal strings, got {value!r}"
            )
        _check_otlp_json(value, where)


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    if isinstance(node, dict):
        return {
            k: base64.b64encode(bytes.fromhex(v)).decode()
            if k in HEX_ID_FIELDS and isinstance(v, str)
            else _hex_ids_to_base64(v)
            for k, v in node.items()
        }
    return node


def decode_otlp(request: Request) -> ExportTraceServiceRequest:
    """The request as the official message, protobuf or OTLP/JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type == "application/json":
        doc = json.loads(request.body)
        _check_otlp_json(doc)
        return json_format.ParseDict(_hex_ids_to_base64(doc), ExportTraceServiceRequest())
    assert content_type == "application/x-protobuf", content_type
    return ExportTraceServiceRequest.FromString(request.body)


def otlp_spans(requests: list[Request]) -> list[tuple[Any, Any, Any]]:
    """Every (resource, scope, span) in `requests`."""
    out = []
    for request in requests:
        message = decode_otlp(request)
        for rs in message.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    out.append((rs.resource, ss.scope, span))
    return out


def span_count(requests: list[Request]) -> int:
    return len(otlp_spans(requests))


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


# --------------------------------------------------------------------------
# Endpoints that misbehave
# --------------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Blackhole:
    """Accepts connections (the kernel does, from the backlog) and never answers."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
