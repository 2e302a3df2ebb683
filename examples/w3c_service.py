"""The W3C Trace Context test harness's service contract, traced with ferrotrace.

    python examples/w3c_service.py --port 5000
    # then, from a checkout of w3c/trace-context (needs aiohttp):
    SPEC_LEVEL=2 python test/test.py http://127.0.0.1:5000/test

`POST /test` carries a JSON list of {"url", "arguments"}. For each element the
service POSTs `arguments` as JSON to `url` with the propagated headers, each
call in a new client span, children of the server span that continued the
incoming trace context (traceparent + tracestate). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import ferrotrace as ft


class TestServiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    tracer: ft.Tracer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        if self.path != "/test":
            self._reply(404, b"not found")
            return
        try:
            calls = json.loads(body or b"[]")
        except ValueError:
            self._reply(400, b"body must be a JSON list")
            return
        parent = ft.extract(self.headers)
        with self.tracer.start_span("POST /test", kind="server", parent=parent):
            for call in calls if isinstance(calls, list) else []:
                self._call(call.get("url"), call.get("arguments", []))
        self._reply(200, b"ok")

    def _call(self, url: object, arguments: object) -> None:
        if not isinstance(url, str):
            return
        with self.tracer.start_span("POST", kind="client", tags={"url.full": url}) as span:
            headers = {"content-type": "application/json"}
            ft.inject(headers, span=span)
            request = urllib.request.Request(
                url, data=json.dumps(arguments).encode(), headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    span.set_status(response.status)
                    response.read()
            except OSError as exc:
                span.set_error(exc)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--output-dir", default=None, help="JSONL directory (default: no files)")
    args = parser.parse_args()
    TestServiceHandler.tracer = ft.configure(
        service_name="w3c-test-service", output_dir=args.output_dir
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), TestServiceHandler)
    print(f"w3c test service on http://127.0.0.1:{args.port}/test", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
