"""Redaction of secrets (README, "Security and privacy"): the `redact_keys`
rules, applied in Rust before a value is stored anywhere (files, exports,
the in-process stores), through every way an attribute is set; URL
credentials and sensitive query values; and the integrations, which never
record credential headers."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import ferrotrace as ft
import httpx
import pytest
import requests
from conftest import flushed_spans, read_spans, span_files
from ferrotrace.asgi import TracingMiddleware
from otlp_sink import Sink, attributes, otlp_spans

MARK = "[REDACTED]"
SECRET = "s3cr3t-value"

DEFAULT_RULES = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "authorization",
    "cookie",
    "session",
    "credentials",
    "api_key",
    "access_token",
    "refresh_token",
    "private_key",
    "client_secret",
    "credit_card",
    "card_number",
    "set_cookie",
]

REDACTED_KEYS = [
    "db.password",
    "x-api-key",
    "http.request.header.authorization",
    "session_id",
    "user_token",
    # Case and `-` do not matter.
    "DB.Password",
    "X-API-KEY",
    "http.response.header.set-cookie",
    "passwd",
    "pwd",
    "app.secret",
    "apikey",
    "browser.cookie",
    "aws.credentials",
    "oauth.access_token",
    "oauth.refresh_token",
    "tls.private_key",
    "client_secret",
    "payment.credit_card",
    "card_number",
]

KEPT_KEYS = [
    "gen_ai.usage.input_tokens",
    "tokens_in",
    "auth.method",
    "http.request.method",
    "passwords_changed",
    "tokenizer",
]


def one_span(tracer: ft.Tracer, directory: Any, name: str) -> dict[str, Any]:
    [span] = [s for s in flushed_spans(tracer, directory) if s["name"] == name]
    return span


def raw_lines(directory: Any) -> str:
    return "".join(p.read_text(encoding="utf-8") for p in span_files(directory))


# --------------------------------------------------------------------------
# The rules
# --------------------------------------------------------------------------


def test_default_rules_redact_and_keep_the_issue_examples(make_tracer, out_dir):
    t = make_tracer(out_dir)
    tags = {key: SECRET for key in REDACTED_KEYS + KEPT_KEYS}
    with t.start_span("work", tags=tags):
        pass
    attrs = one_span(t, out_dir, "work")["attributes"]
    for key in REDACTED_KEYS:
        assert attrs[key] == MARK, key  # the key is kept, its value is not
    for key in KEPT_KEYS:
        assert attrs[key] == SECRET, key
    assert t.config["redact_keys"] == DEFAULT_RULES


@pytest.mark.parametrize(
    "value", [42, 1.5, True, ["a", SECRET], ("t", 1), {"nested": SECRET}, b"bytes", None]
)
def test_values_of_any_type_become_the_marker(make_tracer, out_dir, value):
    t = make_tracer(out_dir)
    with t.start_span("work") as span:
        span.set_tag("db.password", value)
        span.set_tag("gen_ai.usage.input_tokens", 12)
    attrs = one_span(t, out_dir, "work")["attributes"]
    assert attrs["db.password"] == MARK
    assert attrs["gen_ai.usage.input_tokens"] == 12


def test_the_marker_is_never_cut_by_the_length_limit(make_tracer, out_dir):
    t = make_tracer(out_dir, max_attribute_length=3)
    with t.start_span("work", tags={"api_key": SECRET, "note": "abcdef"}):
        pass
    attrs = one_span(t, out_dir, "work")["attributes"]
    assert attrs == {"api_key": MARK, "note": "abc"}


def test_a_list_replaces_the_defaults(make_tracer, out_dir):
    # Words match whole segments; rules with `_` or `.` match anywhere.
    t = make_tracer(out_dir, redact_keys=["Card", "my-key", " ", "card"])
    assert t.config["redact_keys"] == ["card", "my_key"]
    tags = {
        "payment.card": SECRET,
        "CARD_holder": SECRET,
        "cards": "kept",
        "x.my_keys": SECRET,
        "MY-KEY": SECRET,
        "db.password": "kept",
    }
    with t.start_span("work", tags=tags):
        pass
    attrs = one_span(t, out_dir, "work")["attributes"]
    assert attrs == {
        "payment.card": MARK,
        "CARD_holder": MARK,
        "cards": "kept",
        "x.my_keys": MARK,
        "MY-KEY": MARK,
        "db.password": "kept",
    }


def test_an_empty_list_turns_redaction_off(make_tracer, out_dir):
    t = make_tracer(out_dir, redact_keys=[])
    assert t.config["redact_keys"] == []
    url = "https://u:pw@h.example/p?token=abc"
    with t.start_span("work", tags={"db.password": SECRET, "url.full": url}):
        pass
    attrs = one_span(t, out_dir, "work")["attributes"]
    assert attrs == {"db.password": SECRET, "url.full": url}


def test_the_environment_variable(make_tracer, out_dir, monkeypatch):
    monkeypatch.setenv("FERROTRACE_REDACT_KEYS", " Card , x-thing,,")
    t = make_tracer(out_dir)
    assert t.config["redact_keys"] == ["card", "x_thing"]
    with t.start_span("work", tags={"card": SECRET, "a.x-thing": SECRET, "db.password": "k"}):
        pass
    attrs = one_span(t, out_dir, "work")["attributes"]
    assert attrs == {"card": MARK, "a.x-thing": MARK, "db.password": "k"}
    # The keyword wins over the variable.
    assert make_tracer(None, redact_keys=["pin"]).config["redact_keys"] == ["pin"]
    monkeypatch.setenv("FERROTRACE_REDACT_KEYS", "none")
    assert make_tracer(None).config["redact_keys"] == []
    monkeypatch.setenv("FERROTRACE_REDACT_KEYS", "  ")
    assert make_tracer(None).config["redact_keys"] == DEFAULT_RULES


def test_a_string_keyword_is_comma_separated(make_tracer):
    assert make_tracer(None, redact_keys="pin, Cvv").config["redact_keys"] == ["pin", "cvv"]


@pytest.mark.parametrize(("value", "error"), [(3, TypeError), ([1], TypeError), ({}, TypeError)])
def test_bad_keywords_raise(make_tracer, value, error):
    with pytest.raises(error, match="redact_keys"):
        make_tracer(None, redact_keys=value)


# --------------------------------------------------------------------------
# Every way an attribute is set, every place it is stored
# --------------------------------------------------------------------------


def test_every_entry_path_of_the_native_api(make_tracer, out_dir):
    t = make_tracer(out_dir)
    with t.start_span("work", tags={"start.token": SECRET}) as span:
        span.set_tag("tag.password", SECRET)
        span.set_attribute("attr.secret", SECRET)
        span.set_tags({"tags.api_key": SECRET, "tags.kept": 1})
        span.set_attributes({"attrs.cookie": SECRET})
        span.log("login", {"event.password": SECRET}, user_token=SECRET, user="ann")
        span.add_event("retry", {"session_id": SECRET})
        try:
            raise ValueError("boom")
        except ValueError as exc:
            span.record_exception(exc, attributes={"exc.credentials": SECRET})
    rec = one_span(t, out_dir, "work")
    assert rec["attributes"] == {
        "start.token": MARK,
        "tag.password": MARK,
        "attr.secret": MARK,
        "tags.api_key": MARK,
        "tags.kept": 1,
        "attrs.cookie": MARK,
    }
    events = {e["name"]: e["attributes"] for e in rec["events"]}
    assert events["login"] == {"event.password": MARK, "user_token": MARK, "user": "ann"}
    assert events["retry"] == {"session_id": MARK}
    assert events["exception"]["exc.credentials"] == MARK
    assert SECRET not in raw_lines(out_dir)


def test_the_in_process_store_holds_redacted_values(make_tracer):
    t = make_tracer(None)
    with t.start_span("root", tags={"db.password": SECRET}) as root:
        root.log("e", {"api_key": SECRET})
    assert t.flush(timeout=10.0) is True
    trace = t.get_trace(root.trace_id)
    [span] = trace["spans"]
    assert span["attributes"]["db.password"] == MARK
    assert SECRET not in json.dumps(trace)


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_otlp_exports_carry_redacted_values(make_tracer, protocol):
    with Sink() as sink:
        t = make_tracer(
            None,
            exporters=["otlp"],
            otlp_endpoint=sink.url(),
            otlp_protocol=protocol,
            resource_attributes={"deploy.api_key": SECRET, "deployment.environment": "prod"},
        )
        with t.start_span("work", tags={"db.password": SECRET, "db.system": "pg"}) as span:
            span.log("e", {"session_id": SECRET})
        assert t.flush(timeout=10.0) is True
        [(resource, _, exported)] = otlp_spans(sink.requests)
        for request in sink.requests:
            assert SECRET.encode() not in request.body
    assert attributes(exported.attributes) == {"db.password": MARK, "db.system": "pg"}
    assert attributes(exported.events[0].attributes) == {"session_id": MARK}
    res = attributes(resource.attributes)
    assert res["deploy.api_key"] == MARK
    assert res["deployment.environment"] == "prod"


# --------------------------------------------------------------------------
# URL attributes, whatever sets them
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "given", "stored"),
    [
        ("url.query", "token=abc&page=2", "token=REDACTED&page=2"),
        (
            "url.full",
            "https://alice:pw@api.example.com/v1?access_token=t&page=2&Signature=s#top",
            "https://REDACTED:REDACTED@api.example.com/v1?access_token=REDACTED&page=2"
            "&Signature=REDACTED#top",
        ),
        ("http.url", "http://h/p?api-key=k&q=shoes", "http://h/p?api-key=REDACTED&q=shoes"),
        ("http.target", "/login?password=pw&next=/", "/login?password=REDACTED&next=/"),
        ("url.full", "https://h/p?page=2&max_tokens=5", "https://h/p?page=2&max_tokens=5"),
        (
            "url.full",
            "https://h/cb#access_token=t&state=s",
            "https://h/cb#access_token=REDACTED&state=s",
        ),
        ("url.path", "/p?token=abc", "/p?token=abc"),  # not a URL-with-query attribute
    ],
)
def test_url_attributes_lose_credentials_and_sensitive_query_values(
    make_tracer, out_dir, key, given, stored
):
    t = make_tracer(out_dir)
    with t.start_span("work", tags={key: given}):
        pass
    assert one_span(t, out_dir, "work")["attributes"][key] == stored


# --------------------------------------------------------------------------
# The integrations
# --------------------------------------------------------------------------


async def _echo_app(scope: dict, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"set-cookie", f"sid={SECRET}".encode()), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


def test_asgi_middleware_records_no_credentials(make_tracer, out_dir):
    t = make_tracer(out_dir)
    app = TracingMiddleware(_echo_app, tracer=t)
    transport = httpx.ASGITransport(app=app)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
            return await client.get(
                "/items",
                params={"token": SECRET, "page": "2"},
                headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}"},
            )

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.headers["set-cookie"] == f"sid={SECRET}"  # the app's response is untouched
    [server] = flushed_spans(t, out_dir)
    assert server["kind"] == "server"
    assert server["attributes"]["url.query"] == "token=REDACTED&page=2"
    assert SECRET not in raw_lines(out_dir)


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body = b"ok"
        self.send_response(200)
        self.send_header("Set-Cookie", f"sid={SECRET}")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _call_with_credentials(get: Any, host: str) -> None:
    response = get(
        f"http://alice:{SECRET}@{host}/ok?access_token={SECRET}&page=2",
        headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("library", ["httpx", "requests"])
def test_http_client_spans_record_no_credentials(make_tracer, out_dir, echo_server, library):
    t = make_tracer(out_dir)
    if library == "httpx":
        client: Any = httpx.Client()
        ft.instrument_httpx(client, tracer=t)
    else:
        client = requests.Session()
        ft.instrument_requests(client, tracer=t)
    with client:
        _call_with_credentials(client.get, echo_server)
    [call] = flushed_spans(t, out_dir)
    assert call["kind"] == "client"
    assert (
        call["attributes"]["url.full"]
        == f"http://REDACTED:REDACTED@{echo_server}/ok?access_token=REDACTED&page=2"
    )
    assert SECRET not in raw_lines(out_dir)


# --------------------------------------------------------------------------
# The OpenTelemetry API bridge and real instrumentations
# --------------------------------------------------------------------------


def test_otel_bridge_spans_are_redacted(tracer, out_dir):
    pytest.importorskip("opentelemetry")
    from ferrotrace.otel import TracerProvider
    from opentelemetry.trace import Link

    otel = TracerProvider(tracer).get_tracer("tests.redact")
    with otel.start_as_current_span("linked") as linked:
        pass
    link = Link(linked.get_span_context(), attributes={"link.token": SECRET, "link.n": 1})
    with otel.start_as_current_span(
        "work", attributes={"db.password": SECRET, "db.name": "shop"}, links=[link]
    ) as span:
        span.set_attribute("http.request.header.authorization", [f"Bearer {SECRET}"])
        span.set_attributes({"x-api-key": SECRET})
        span.add_event("e", {"session_id": SECRET})
    rec = one_span(tracer, out_dir, "work")
    assert rec["attributes"] == {
        "db.password": MARK,
        "db.name": "shop",
        "http.request.header.authorization": MARK,
        "x-api-key": MARK,
    }
    assert rec["events"][0]["attributes"] == {"session_id": MARK}
    assert rec["links"][0]["attributes"] == {"link.token": MARK, "link.n": 1}
    assert SECRET not in raw_lines(out_dir)


def test_otel_instrumentations_url_and_captured_headers(tracer, out_dir, monkeypatch, echo_server):
    pytest.importorskip("opentelemetry.instrumentation.requests")
    pytest.importorskip("opentelemetry.instrumentation.fastapi")
    import fastapi
    from fastapi.testclient import TestClient
    from ferrotrace.otel import TracerProvider
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    provider = TracerProvider(tracer)
    # Header capture asked for explicitly: the captured values are redacted
    # by key (http.request.header.authorization, ...cookie, ...set_cookie).
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "authorization,cookie"
    )
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "set-cookie")
    app = fastapi.FastAPI()

    @app.get("/items")
    async def items() -> Any:
        return fastapi.responses.JSONResponse({"n": 1}, headers={"set-cookie": f"sid={SECRET}"})

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    RequestsInstrumentor().instrument(tracer_provider=provider)
    try:
        with TestClient(app) as client:
            assert client.get(
                f"/items?token={SECRET}&page=2",
                headers={"Authorization": f"Bearer {SECRET}", "Cookie": f"sid={SECRET}"},
            ).json() == {"n": 1}
        assert requests.get(f"http://{echo_server}/ok?api_key={SECRET}").status_code == 200
    finally:
        RequestsInstrumentor().uninstrument()
        FastAPIInstrumentor.uninstrument_app(app)
    spans = flushed_spans(tracer, out_dir)
    server = next(s for s in spans if s["kind"] == "server")
    captured = {k: v for k, v in server["attributes"].items() if ".header." in k}
    assert captured == {
        "http.request.header.authorization": MARK,
        "http.request.header.cookie": MARK,
        "http.response.header.set_cookie": MARK,
    }
    client_span = next(s for s in spans if s["kind"] == "client")
    urls = {k: v for k, v in client_span["attributes"].items() if k in ("url.full", "http.url")}
    assert urls and all(v.endswith("/ok?api_key=REDACTED") for v in urls.values())
    assert SECRET not in raw_lines(out_dir)
    assert SECRET not in json.dumps(read_spans(out_dir))
