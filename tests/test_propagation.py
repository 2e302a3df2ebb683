"""Propagation: ft.inject / ft.extract, every parsing rule of every format, carriers, interop."""

from __future__ import annotations

import email
import http.client
import io
import logging
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any
from wsgiref.headers import Headers as WsgiHeaders

import ferrotrace as ft
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TP = f"00-{TRACE}-{SPAN}-01"
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
CANONICAL_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]")
ALL = ["tracecontext", "b3", "b3multi", "xtrace"]
HEADER_NAMES = [
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-trace-id",
    "x-span-id",
    "x-sampled",
]


@pytest.fixture(autouse=True)
def _no_propagator_env(monkeypatch):
    monkeypatch.delenv("FERROTRACE_PROPAGATORS", raising=False)
    monkeypatch.delenv("OTEL_PROPAGATORS", raising=False)


def ids(ctx: ft.SpanContext | None) -> tuple[str, str, bool] | None:
    return None if ctx is None else (ctx.trace_id, ctx.span_id, ctx.sampled)


def tp(value: str) -> tuple[str, str, bool] | None:
    return ids(ft.extract({"traceparent": value}))


def check_context(ctx: ft.SpanContext | None) -> None:
    """Whatever extract returns is well formed."""
    if ctx is None:
        return
    assert HEX32.fullmatch(ctx.trace_id) and ctx.trace_id != "0" * 32, ctx
    assert HEX16.fullmatch(ctx.span_id) and ctx.span_id != "0" * 16, ctx
    assert isinstance(ctx.sampled, bool)
    assert ctx.is_remote
    if ctx.tracestate is not None:
        assert ctx.tracestate
        # Normalised: re-parsing it changes nothing.
        again = ft.extract({"traceparent": TP, "tracestate": ctx.tracestate})
        assert again is not None and again.tracestate == ctx.tracestate
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    assert CANONICAL_TRACEPARENT.fullmatch(headers["traceparent"]), headers


# --------------------------------------------------------------------------
# traceparent
# --------------------------------------------------------------------------

TRACEPARENT_ACCEPTED = [
    (f"00-{TRACE}-{SPAN}-01", True),
    (f"00-{TRACE}-{SPAN}-00", False),
    # Flags: only the sampled bit counts.
    (f"00-{TRACE}-{SPAN}-ff", True),
    (f"00-{TRACE}-{SPAN}-02", False),
    (f"00-{TRACE}-{SPAN}-03", True),
    # Optional whitespace around the value.
    (f" 00-{TRACE}-{SPAN}-01", True),
    (f"\t00-{TRACE}-{SPAN}-01", True),
    (f"00-{TRACE}-{SPAN}-01 ", True),
    (f"00-{TRACE}-{SPAN}-01\t", True),
    (f"\t 00-{TRACE}-{SPAN}-01 \t", True),
    # Future versions: ids kept, extra fields after a dash ignored.
    (f"01-{TRACE}-{SPAN}-01", True),
    (f"cc-{TRACE}-{SPAN}-01", True),
    (f"cc-{TRACE}-{SPAN}-00", False),
    (f"cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like", True),
    (f"fe-{TRACE}-{SPAN}-01-", True),
]


@pytest.mark.parametrize(("value", "sampled"), TRACEPARENT_ACCEPTED)
def test_traceparent_accepted(value, sampled):
    ctx = ft.extract({"traceparent": value})
    assert ids(ctx) == (TRACE, SPAN, sampled)
    check_context(ctx)


TRACEPARENT_REJECTED = [
    "",
    " ",
    "00",
    f"00-{TRACE}",
    f"00-{TRACE}-{SPAN}",
    f"00-{TRACE}-{SPAN}-",
    f"00-{TRACE}-{SPAN}-0",
    # Version ff is forbidden; version 00 is exactly 55 characters.
    f"ff-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-01.",
    f"00-{TRACE}-{SPAN}-01-",
    f"00-{TRACE}-{SPAN}-01-what-the-future-will-be-like",
    # A future version's extra fields must follow a dash.
    f"cc-{TRACE}-{SPAN}-01.what-the-future-will-be-like",
    # Version.
    f".0-{TRACE}-{SPAN}-01",
    f"0.-{TRACE}-{SPAN}-01",
    f"000-{TRACE}-{SPAN}-01",
    f"0000-{TRACE}-{SPAN}-01",
    f"0-{TRACE}-{SPAN}-01",
    f"0A-{TRACE}-{SPAN}-01",
    f"FF-{TRACE}-{SPAN}-01",
    # Trace id.
    f"00-{'0' * 32}-{SPAN}-01",
    f"00-.{TRACE[1:]}-{SPAN}-01",
    f"00-{TRACE[:31]}.-{SPAN}-01",
    f"00-{TRACE}3-{SPAN}-01",
    f"00-{TRACE[:31]}-{SPAN}-01",
    f"00-{TRACE.upper()}-{SPAN}-01",
    # Parent id.
    f"00-{TRACE}-{'0' * 16}-01",
    f"00-{TRACE}-.{SPAN[1:]}-01",
    f"00-{TRACE}-{SPAN[:15]}.-01",
    f"00-{TRACE}-{SPAN}7-01",
    f"00-{TRACE}-{SPAN[:15]}-01",
    f"00-{TRACE}-{SPAN.upper()}-01",
    # Flags.
    f"00-{TRACE}-{SPAN}-.0",
    f"00-{TRACE}-{SPAN}-0.",
    f"00-{TRACE}-{SPAN}-001",
    f"00-{TRACE}-{SPAN}-1",
    f"00-{TRACE}-{SPAN}-0A",
    # Whitespace that is not OWS, or not at the ends; other separators.
    f"00-{TRACE}-{SPAN}-01\n",
    f"00-{TRACE}-{SPAN}-01\r",
    f"\u00a000-{TRACE}-{SPAN}-01",
    f"00 -{TRACE}-{SPAN}-01",
    f"00_{TRACE}_{SPAN}_01",
    # Junk.
    "\x00" * 55,
    "-" * 55,
    "\udc80" * 55,
    f"cc-{TRACE}-{SPAN}-01-" + "x" * (1 << 20),
]


@pytest.mark.parametrize("value", TRACEPARENT_REJECTED)
def test_traceparent_rejected(value):
    assert ft.extract({"traceparent": value}) is None


@pytest.mark.parametrize(
    ("parent_name", "state_name"),
    [
        ("traceparent", "tracestate"),
        ("TraceParent", "TraceState"),
        ("TrAcEpArEnT", "TrAcEsTaTe"),
        ("TRACEPARENT", "TRACESTATE"),
    ],
)
def test_header_names_match_in_any_case(parent_name, state_name):
    ctx = ft.extract({parent_name: TP, state_name: "a=1"})
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ctx is not None and ctx.tracestate == "a=1"


@pytest.mark.parametrize(
    "name", ["trace-parent", "trace.parent", "traceparent ", "traceparent\x00"]
)
def test_wrong_header_names_are_ignored(name):
    assert ft.extract({name: TP}) is None


def test_traceparent_twice_is_invalid():
    other = f"00-{'1' * 32}-{SPAN}-01"
    assert ft.extract([("traceparent", TP), ("traceparent", other)]) is None
    # Even the same value, and even spelled differently.
    assert ft.extract([("traceparent", TP), ("TraceParent", TP)]) is None
    assert ft.extract({"traceparent": [TP, TP]}) is None


def test_future_version_is_reinjected_as_version_00():
    ctx = ft.extract({"traceparent": f"cc-{TRACE}-{SPAN}-ff-future"})
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    # Only the flags version 00 defines go out: sampled and random.
    assert headers == {"traceparent": f"00-{TRACE}-{SPAN}-03"}


# --------------------------------------------------------------------------
# tracestate
# --------------------------------------------------------------------------


def members(first: int, last: int) -> str:
    return ",".join(f"bar{i:02}={i:02}" for i in range(first, last + 1))


KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")

TRACESTATE_ACCEPTED = [
    (["foo=1"], "foo=1"),
    (["foo=1,bar=2"], "foo=1,bar=2"),
    (["foo=1 \t , \t bar=2, \t baz=3"], "foo=1,bar=2,baz=3"),
    ([" foo=1"], "foo=1"),
    (["\tfoo=1"], "foo=1"),
    (["foo=1 "], "foo=1"),
    (["\t foo=1 \t"], "foo=1"),
    (["foo=1,,bar=2"], "foo=1,bar=2"),
    ([",foo=1, ,"], "foo=1"),
    (["foo=1", ""], "foo=1"),
    (["", "foo=1"], "foo=1"),
    (["foo=1,bar=2", "rojo=1,congo=2", "baz=3"], "foo=1,bar=2,rojo=1,congo=2,baz=3"),
    (["a=1"], "a=1"),
    ([f"{KEY_CHARS}=1"], f"{KEY_CHARS}=1"),
    ([f"{KEY_CHARS}@a-z0-9_-*/=1"], f"{KEY_CHARS}@a-z0-9_-*/=1"),
    (["z" * 256 + "=1"], "z" * 256 + "=1"),
    (["t" * 241 + "@" + "v" * 14 + "=1"], "t" * 241 + "@" + "v" * 14 + "=1"),
    (["1tenant@sys=1"], "1tenant@sys=1"),
    # The current W3C key grammar: a digit may lead, "@" may appear anywhere after.
    (["1foo=1"], "1foo=1"),
    (["foo@=1,bar=2"], "foo@=1,bar=2"),
    (["foo@@bar=1,bar=2"], "foo@@bar=1,bar=2"),
    (["foo@bar@baz=1,bar=2"], "foo@bar@baz=1,bar=2"),
    (["foo=1", "t" * 242 + "@v=1"], "foo=1," + "t" * 242 + "@v=1"),
    (["foo=1", "t@" + "v" * 15 + "=1"], "foo=1,t@" + "v" * 15 + "=1"),
    (["t@1v=1"], "t@1v=1"),
    # A repeated key keeps its first member ("vendors MAY discard duplicate keys").
    (["foo=1,foo=1"], "foo=1"),
    (["foo=1,foo=2"], "foo=1"),
    (["foo=1", "foo=2"], "foo=1"),
    ([f"foo={VALUE_CHARS}"], f"foo={VALUE_CHARS}"),
    (["foo= 1"], "foo= 1"),
    (["foo=" + "v" * 256], "foo=" + "v" * 256),
    ([members(1, 10), members(11, 20), members(21, 30), members(31, 32)], members(1, 32)),
]


@pytest.mark.parametrize(("values", "expected"), TRACESTATE_ACCEPTED)
def test_tracestate_accepted_and_normalised(values, expected):
    carrier = [("traceparent", TP)] + [("tracestate", v) for v in values]
    ctx = ft.extract(carrier)
    assert ctx is not None and ctx.tracestate == expected


TRACESTATE_DROPPED = [
    [""],
    [" \t "],
    [",,"],
    ["foo =1"],
    ["FOO=1"],
    ["foo.bar=1"],
    ["=1"],
    ["foo=1", "z" * 257 + "=1"],
    ["@foo=1,bar=2"],
    ["foo=bar=baz"],
    ["foo=,bar=3"],
    ["foo"],
    ["foo=a\tb"],
    ["foo=caf\u00e9"],
    ["foo=" + "v" * 257],
    [members(1, 10), members(11, 20), members(21, 30), members(31, 33)],
    ["a=1," * 100_000],
]


@pytest.mark.parametrize("values", TRACESTATE_DROPPED, ids=lambda v: repr(v)[:40])
def test_tracestate_dropped_whole_but_traceparent_kept(values):
    carrier = [("traceparent", TP)] + [("tracestate", v) for v in values]
    ctx = ft.extract(carrier)
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ctx is not None and ctx.tracestate is None


def test_tracestate_needs_a_valid_traceparent():
    assert ft.extract({"tracestate": "foo=1"}) is None
    assert ft.extract({"traceparent": f"00-{'0' * 32}-{SPAN}-01", "tracestate": "foo=1"}) is None


def test_tracestate_is_passed_on_by_inject():
    ctx = ft.extract({"traceparent": TP, "tracestate": "rojo=00f067aa0ba902b7 , congo=t61rcWkgMzE"})
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    assert headers == {
        "traceparent": TP,
        "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    }


# --------------------------------------------------------------------------
# B3 and X-Trace-ID
# --------------------------------------------------------------------------

SHORT = "a3ce929d0e0e4736"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{TRACE}-{SPAN}", (TRACE, SPAN, True)),
        (f"{TRACE}-{SPAN}-1", (TRACE, SPAN, True)),
        (f"{TRACE}-{SPAN}-d", (TRACE, SPAN, True)),
        (f"{TRACE}-{SPAN}-0", (TRACE, SPAN, False)),
        (f"{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90", (TRACE, SPAN, True)),
        (f"{SHORT}-{SPAN}-1", ("0" * 16 + SHORT, SPAN, True)),
        (f" {TRACE}-{SPAN}-0\t", (TRACE, SPAN, False)),
        # Sampling-only forms carry no ids to continue.
        ("0", None),
        ("1", None),
        ("d", None),
        ("", None),
        (f"{TRACE}-", None),
        (f"{TRACE[:31]}-{SPAN}", None),
        (f"{TRACE[:24]}-{SPAN}", None),
        (f"{TRACE.upper()}-{SPAN}", None),
        (f"{'0' * 32}-{SPAN}", None),
        (f"{TRACE}-{'0' * 16}", None),
        (f"{TRACE}-{SPAN}-2", None),
        (f"{TRACE}-{SPAN}-true", None),
        (f"{TRACE}-{SPAN}-05e3ac9a4f6e3b90", None),
        (f"{TRACE}-{SPAN}-1-05e3ac9a4f6e3b9", None),
        (f"{TRACE}-{SPAN}-1-05e3ac9a4f6e3b90-1", None),
    ],
)
def test_b3_single(value, expected):
    assert ids(ft.extract({"b3": value}, propagators=["b3"])) == expected


def test_b3_single_twice_is_invalid():
    v = f"{TRACE}-{SPAN}-1"
    assert ft.extract([("b3", v), ("B3", v)], propagators="b3") is None


def b3m(**fields: str) -> dict[str, str]:
    names = {
        "trace": "X-B3-TraceId",
        "span": "X-B3-SpanId",
        "sampled": "X-B3-Sampled",
        "flags": "X-B3-Flags",
        "parent": "X-B3-ParentSpanId",
    }
    return {names[k]: v for k, v in fields.items()}


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        (b3m(trace=TRACE, span=SPAN), (TRACE, SPAN, True)),
        (b3m(trace=TRACE, span=SPAN, sampled="1"), (TRACE, SPAN, True)),
        (b3m(trace=TRACE, span=SPAN, sampled="0"), (TRACE, SPAN, False)),
        (b3m(trace=TRACE, span=SPAN, sampled="true"), (TRACE, SPAN, True)),
        (b3m(trace=TRACE, span=SPAN, sampled="false"), (TRACE, SPAN, False)),
        (b3m(trace=TRACE, span=SPAN, flags="1"), (TRACE, SPAN, True)),
        (b3m(trace=TRACE, span=SPAN, flags="1", sampled="0"), (TRACE, SPAN, True)),
        (b3m(trace=TRACE, span=SPAN, flags="0", sampled="0"), (TRACE, SPAN, False)),
        (b3m(trace=TRACE, span=SPAN, parent="junk"), (TRACE, SPAN, True)),
        (b3m(trace=SHORT, span=SPAN), ("0" * 16 + SHORT, SPAN, True)),
        (b3m(trace=TRACE), None),
        (b3m(span=SPAN), None),
        (b3m(trace=TRACE.upper(), span=SPAN), None),
        (b3m(trace="0" * 32, span=SPAN), None),
        (b3m(trace=TRACE, span="0" * 16), None),
        (b3m(trace=TRACE, span=SPAN, sampled="yes"), None),
        (b3m(trace=TRACE, span=SPAN, sampled="d"), None),
    ],
)
def test_b3_multi(carrier, expected):
    assert ids(ft.extract(carrier, propagators=["b3multi"])) == expected


def test_b3_multi_repeated_headers_are_invalid():
    pairs = [("x-b3-traceid", TRACE), ("x-b3-spanid", SPAN), ("X-B3-SpanId", SPAN)]
    assert ft.extract(pairs, propagators=["b3multi"]) is None


UUID = "550e8400-e29b-41d4-a716-446655440000"


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ({"X-Trace-ID": TRACE, "X-Span-ID": SPAN}, (TRACE, SPAN, True)),
        ({"x-trace-id": TRACE.upper(), "x-span-id": SPAN.upper()}, (TRACE, SPAN, True)),
        ({"X-Trace-ID": UUID, "X-Span-ID": SPAN}, (UUID.replace("-", ""), SPAN, True)),
        ({"X-Trace-ID": UUID.upper(), "X-Span-ID": SPAN}, (UUID.replace("-", ""), SPAN, True)),
        # The seeds' 128-bit span ids fold to their low 64 bits.
        (
            {"X-Trace-ID": UUID, "X-Span-ID": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"},
            (UUID.replace("-", ""), "80b400c04fd430c8", True),
        ),
        ({"X-Trace-ID": SHORT, "X-Span-ID": SPAN}, ("0" * 16 + SHORT, SPAN, True)),
        ({"X-Trace-ID": TRACE, "X-Span-ID": SPAN, "X-Sampled": "0"}, (TRACE, SPAN, False)),
        ({"X-Trace-ID": TRACE, "X-Span-ID": SPAN, "X-Sampled": "false"}, (TRACE, SPAN, False)),
        ({"X-Trace-ID": TRACE, "X-Span-ID": SPAN, "X-Sampled": "1"}, (TRACE, SPAN, True)),
        ({"X-Trace-ID": TRACE}, None),
        ({"X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": "0" * 32, "X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": TRACE, "X-Span-ID": "0" * 16}, None),
        ({"X-Trace-ID": "{" + UUID + "}", "X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": "urn:uuid:" + UUID, "X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": UUID.replace("-", "", 1) + "-", "X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": TRACE[:31], "X-Span-ID": SPAN}, None),
        ({"X-Trace-ID": TRACE, "X-Span-ID": SPAN[:15]}, None),
        ({"X-Trace-ID": "not-a-trace-id", "X-Span-ID": SPAN}, None),
    ],
)
def test_xtrace(carrier, expected):
    assert ids(ft.extract(carrier, propagators=["xtrace"])) == expected


# --------------------------------------------------------------------------
# Choosing formats
# --------------------------------------------------------------------------

B3_TRACE = "a3ce929d0e0e4736a3ce929d0e0e4736"
BOTH = {"traceparent": TP, "b3": f"{B3_TRACE}-05e3ac9a4f6e3b90-0"}


def test_extraction_tries_each_format_in_order():
    assert ids(ft.extract(BOTH, propagators=["tracecontext", "b3"])) == (TRACE, SPAN, True)
    assert ids(ft.extract(BOTH, propagators=["b3", "tracecontext"])) == (
        B3_TRACE,
        "05e3ac9a4f6e3b90",
        False,
    )
    assert ids(ft.extract(BOTH, propagators="b3, tracecontext"))[0] == B3_TRACE
    # An invalid first format falls through.
    broken = {"traceparent": TP, "b3": "junk"}
    assert ids(ft.extract(broken, propagators=["b3", "tracecontext"])) == (TRACE, SPAN, True)
    assert ft.extract(BOTH, propagators=["xtrace"]) is None
    assert ft.extract(BOTH, propagators=[]) is None
    assert ft.extract(BOTH, propagators="none") is None


def test_default_is_tracecontext_only():
    assert ids(ft.extract(BOTH)) == (TRACE, SPAN, True)
    assert ft.extract({"b3": BOTH["b3"]}) is None
    headers: dict[str, str] = {}
    ft.inject(headers, span=ft.SpanContext(TRACE, SPAN))
    assert headers == {"traceparent": TP}


@pytest.mark.parametrize(
    ("propagators", "error"),
    [
        ("jaeger", ValueError),
        (["tracecontext", "xray"], ValueError),
        ("baggage", ValueError),
        ([1], TypeError),
        (42, TypeError),
    ],
)
def test_bad_propagators_raise(propagators, error):
    with pytest.raises(error):
        ft.extract({}, propagators=propagators)
    with pytest.raises(error):
        ft.inject({}, span=ft.SpanContext(TRACE, SPAN), propagators=propagators)


@pytest.fixture
def configure_global():
    """Reconfigures the global tracer (under the test's environment).

    The formats are resolved when a tracer is made, so the one restored
    afterwards names its own instead of reading the test's environment.
    """
    yield lambda: ft.configure(service_name="propagation", output_dir=None)
    ft.configure(service_name="idle", output_dir=None, propagators=["tracecontext"])


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FERROTRACE_PROPAGATORS": "b3"}, ["b3"]),
        ({"OTEL_PROPAGATORS": "b3multi,tracecontext"}, ["b3multi", "tracecontext"]),
        ({"FERROTRACE_PROPAGATORS": "xtrace", "OTEL_PROPAGATORS": "b3"}, ["xtrace"]),
        ({"OTEL_PROPAGATORS": "tracecontext,baggage"}, ["tracecontext"]),
        ({"FERROTRACE_PROPAGATORS": "none"}, []),
        ({"FERROTRACE_PROPAGATORS": " ", "OTEL_PROPAGATORS": "b3"}, ["b3"]),
    ],
)
def test_default_formats_come_from_the_environment(monkeypatch, configure_global, env, expected):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    configure_global()
    with ft.get_tracer().start_span("outgoing") as span:
        headers: dict[str, str] = {}
        ft.inject(headers)
    written = {
        "tracecontext": "traceparent",
        "b3": "b3",
        "b3multi": "x-b3-traceid",
        "xtrace": "x-trace-id",
    }
    assert sorted(headers.keys() & set(written.values())) == sorted(written[p] for p in expected)
    found = ft.extract(headers)
    if expected:
        assert found is not None and found.span_id == span.span_id
    else:
        assert found is None


def test_unknown_names_in_the_environment_are_skipped_with_a_warning(
    monkeypatch, configure_global, caplog
):
    monkeypatch.setenv("OTEL_PROPAGATORS", "jaeger,b3")
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        configure_global()
        ctx = ft.extract({"b3": f"{TRACE}-{SPAN}", "traceparent": TP})
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ctx is not None and ctx.tracestate is None
    assert ft.extract({"traceparent": TP}) is None
    assert any("jaeger" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------
# Carriers
# --------------------------------------------------------------------------


class CustomMapping(Mapping):
    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def http_message(*lines: str) -> http.client.HTTPMessage:
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return http.client.parse_headers(io.BytesIO(raw))


CARRIERS = {
    "dict": lambda: {"TraceParent": TP, "tracestate": "a=1"},
    "dict of bytes": lambda: {b"traceparent": TP.encode(), b"TRACESTATE": b"a=1"},
    "dict of lists": lambda: {"traceparent": [TP], "tracestate": ["a=1"]},
    "list of str pairs": lambda: [("traceparent", TP), ("tracestate", "a=1")],
    "asgi bytes pairs": lambda: [
        (b"host", b"x"),
        (b"traceparent", TP.encode()),
        (b"tracestate", b"a=1"),
    ],
    "tuple of lists": lambda: (["traceparent", TP], ["tracestate", "a=1"]),
    "mapping": lambda: CustomMapping({"traceparent": TP, "tracestate": "a=1"}),
    "mappingproxy": lambda: MappingProxyType({"traceparent": TP, "tracestate": "a=1"}),
    "http.client": lambda: http_message(f"Traceparent: {TP}", "Tracestate: a=1"),
    "email": lambda: email.message_from_string(f"traceparent: {TP}\ntracestate: a=1\n\n"),
    "wsgiref": lambda: WsgiHeaders([("Traceparent", TP), ("Tracestate", "a=1")]),
}


@pytest.mark.parametrize("make", CARRIERS.values(), ids=CARRIERS.keys())
def test_carrier_kinds(make):
    ctx = ft.extract(make())
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ctx is not None and ctx.tracestate == "a=1"


def test_latin1_bytes_are_decoded():
    ctx = ft.extract([(b"traceparent", f"cc-{TRACE}-{SPAN}-01-\xe9".encode("latin-1"))])
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ft.extract([(b"traceparent", TP.encode() + b"\xe9")]) is None
    assert ft.extract({"traceparent": bytearray(TP.encode())}) is not None


def test_repeated_headers_are_seen_in_multi_value_carriers():
    two = http_message(f"traceparent: {TP}", f"traceparent: {TP}")
    assert ft.extract(two) is None
    split = http_message(f"traceparent: {TP}", "tracestate: a=1", "tracestate: b=2")
    ctx = ft.extract(split)
    assert ctx is not None and ctx.tracestate == "a=1,b=2"
    dup = http_message(f"traceparent: {TP}", "tracestate: a=1", "tracestate: a=2")
    ctx = ft.extract(dup)
    assert ctx is not None and ctx.tracestate == "a=1"


def test_starlette_headers():
    datastructures = pytest.importorskip("starlette.datastructures")
    raw = [(b"traceparent", TP.encode()), (b"tracestate", b"a=1"), (b"tracestate", b"b=2")]
    ctx = ft.extract(datastructures.Headers(raw=raw))
    assert ids(ctx) == (TRACE, SPAN, True)
    assert ctx is not None and ctx.tracestate == "a=1,b=2"
    twice = datastructures.Headers(raw=[(b"traceparent", TP.encode())] * 2)
    assert ft.extract(twice) is None


def test_httpx_headers():
    httpx = pytest.importorskip("httpx")
    headers = httpx.Headers([("traceparent", TP), ("tracestate", "a=1"), ("tracestate", "b=2")])
    ctx = ft.extract(headers)
    assert ctx is not None and ctx.tracestate == "a=1,b=2"
    assert ft.extract(httpx.Headers([("traceparent", TP)] * 2)) is None
    out = httpx.Headers()
    ft.inject(out, span=ctx)
    assert out["traceparent"] == TP and out["tracestate"] == "a=1,b=2"


def test_requests_case_insensitive_dict():
    structures = pytest.importorskip("requests.structures")
    headers = structures.CaseInsensitiveDict({"TRACEPARENT": TP})
    assert ids(ft.extract(headers)) == (TRACE, SPAN, True)
    out = structures.CaseInsensitiveDict()
    ft.inject(out, span=ft.SpanContext(TRACE, SPAN))
    assert out["TraceParent"] == TP


class ExplodingItems(Mapping):
    def __getitem__(self, key: Any) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    "carrier",
    [
        {},
        (),
        [],
        {1: TP, None: TP, ("traceparent",): TP},
        {"traceparent": None},
        {"traceparent": 42},
        {"traceparent": [[TP]]},
        {"traceparent": "\udc80" * 60},
        ["traceparent", 42, None, ("traceparent",), ("traceparent", TP, "x")],
        [(b"traceparent", b"\xff" * 55)],
        {"x" * 10_000: TP},
        {"traceparent": "0" * (1 << 22)},
        {"tracestate": "a=1," * 100_000, "traceparent": "junk"},
        [("traceparent", "junk")] * 10_000,
        ExplodingItems(),
    ],
    ids=lambda c: type(c).__name__ + ":" + repr(c)[:30],
)
def test_junk_carriers_yield_none(carrier):
    assert ft.extract(carrier) is None


@pytest.mark.parametrize("carrier", [None, 42, "traceparent", object(), 1.5])
def test_a_carrier_that_is_not_a_mapping_is_a_type_error(carrier):
    with pytest.raises(TypeError, match="mapping"):
        ft.extract(carrier)


def test_keyboard_interrupt_from_a_carrier_propagates():
    class Interrupting(CustomMapping):
        def __iter__(self) -> Iterator[Any]:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ft.extract(Interrupting({}))


# --------------------------------------------------------------------------
# inject
# --------------------------------------------------------------------------


def test_inject_writes_the_active_span(tracer):
    headers: dict[str, str] = {}
    with tracer.start_span("client", kind="client") as span:
        ft.inject(headers)
    # 03: sampled, and (W3C Level 2) a trace id ferrotrace made is random.
    assert headers == {"traceparent": f"00-{span.trace_id}-{span.span_id}-03"}


def test_inject_without_a_span_writes_nothing():
    headers = {"keep": "me"}
    assert ft.inject(headers) is None
    assert headers == {"keep": "me"}


def test_inject_an_explicit_span_or_context(tracer):
    with tracer.start_span("a") as a:
        with tracer.start_span("b"):
            headers: dict[str, str] = {}
            ft.inject(headers, span=a)
    assert headers["traceparent"] == f"00-{a.trace_id}-{a.span_id}-03"
    ctx = ft.SpanContext(TRACE, SPAN, sampled=False, tracestate="k=v")
    headers = {}
    ft.inject(headers, span=ctx)
    assert headers == {"traceparent": f"00-{TRACE}-{SPAN}-00", "tracestate": "k=v"}


def test_unsampled_spans_propagate_without_the_sampled_flag(make_tracer):
    t = make_tracer(sample_rate=0.0)
    with t.start_span("dropped") as span:
        headers: dict[str, str] = {}
        ft.inject(headers)
    assert not span.sampled
    # 02: not sampled, random trace id.
    assert headers["traceparent"] == f"00-{span.trace_id}-{span.span_id}-02"


def test_inject_into_header_lists_replaces_earlier_values():
    ctx = ft.SpanContext(TRACE, SPAN)
    asgi = [(b"host", b"example"), (b"TraceParent", b"stale")]
    ft.inject(asgi, span=ctx)
    assert asgi == [(b"host", b"example"), (b"traceparent", TP.encode())]
    kafka: list[Any] = [("traceparent", "stale"), ("key", b"v")]
    ft.inject(kafka, span=ctx, propagators=["tracecontext", "xtrace"])
    assert kafka == [
        ("key", b"v"),
        ("traceparent", TP),
        ("x-trace-id", TRACE),
        ("x-span-id", SPAN),
        ("x-sampled", "1"),
    ]


@pytest.mark.parametrize("carrier", [42, (), "headers", frozenset()])
def test_inject_into_something_immutable_is_a_type_error(carrier):
    with pytest.raises(TypeError):
        ft.inject(carrier, span=ft.SpanContext(TRACE, SPAN))


def test_inject_rejects_a_span_of_the_wrong_type():
    with pytest.raises(TypeError, match="Span"):
        ft.inject({}, span="00-abc")


@pytest.mark.parametrize("propagator", ALL)
@pytest.mark.parametrize("sampled", [True, False])
def test_inject_extract_round_trip(propagator, sampled):
    ctx = ft.SpanContext(TRACE, SPAN, sampled=sampled, tracestate="a=1,b@c=2")
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx, propagators=[propagator])
    assert all(name == name.lower() for name in headers)
    back = ft.extract(headers, propagators=[propagator])
    assert ids(back) == (TRACE, SPAN, sampled)
    assert back is not None and back.is_remote
    expected_state = "a=1,b@c=2" if propagator == "tracecontext" else None
    assert back.tracestate == expected_state


def test_inject_every_format_at_once():
    headers: dict[str, str] = {}
    ft.inject(headers, span=ft.SpanContext(TRACE, SPAN), propagators=ALL)
    assert headers == {
        "traceparent": TP,
        "b3": f"{TRACE}-{SPAN}-1",
        "x-b3-traceid": TRACE,
        "x-b3-spanid": SPAN,
        "x-b3-sampled": "1",
        "x-trace-id": TRACE,
        "x-span-id": SPAN,
        "x-sampled": "1",
    }


def test_extracted_context_continues_the_trace(tracer):
    ctx = ft.extract({"traceparent": f"00-{TRACE}-{SPAN}-01"})
    with tracer.start_span("handle", kind="server", parent=ctx) as span:
        assert span.trace_id == TRACE
        assert span.parent_id == SPAN
        headers: dict[str, str] = {}
        ft.inject(headers)
    assert headers["traceparent"] == f"00-{TRACE}-{span.span_id}-01"


def test_spans_continuing_a_remote_context_pass_its_tracestate_on(tracer):
    ctx = ft.extract({"traceparent": TP, "tracestate": "congo=t61rcWkgMzE"})
    with tracer.start_span("handle", kind="server", parent=ctx):
        with tracer.start_span("call", kind="client") as client:
            assert client.context.tracestate == "congo=t61rcWkgMzE"
            headers: dict[str, str] = {}
            ft.inject(headers)
    assert headers["tracestate"] == "congo=t61rcWkgMzE"


# --------------------------------------------------------------------------
# W3C Trace Context Level 2: the random trace flag (0x02)
# --------------------------------------------------------------------------


def flags_of(traceparent: str) -> int:
    return int(traceparent.rsplit("-", 1)[1], 16)


def test_a_trace_started_here_carries_the_random_flag(tracer):
    with tracer.start_span("root") as root:
        with tracer.start_span("child") as child:
            headers: dict[str, str] = {}
            ft.inject(headers)
    assert flags_of(headers["traceparent"]) == 0x03
    assert root.context.random and child.context.random
    assert root.context.trace_flags == child.context.trace_flags == 0x03


@pytest.mark.parametrize("incoming", ["00", "01", "02", "03"])
def test_a_continued_trace_passes_the_incoming_random_flag_on(tracer, incoming):
    ctx = ft.extract({"traceparent": f"00-{TRACE}-{SPAN}-{incoming}"})
    assert ctx is not None and ctx.trace_flags == int(incoming, 16)
    assert ctx.random is bool(int(incoming, 16) & 0x02)
    with tracer.start_span("handle", kind="server", parent=ctx):
        with tracer.start_span("call", kind="client") as call:
            headers: dict[str, str] = {}
            ft.inject(headers)
    # The random bit is the trace's, unchanged through every generation;
    # the sampled bit is this tracer's decision (parent-based by default).
    random_bit = int(incoming, 16) & 0x02
    assert flags_of(headers["traceparent"]) & 0x02 == random_bit
    assert flags_of(headers["traceparent"]) & 0x01 == int(call.sampled)
    assert headers["traceparent"].split("-")[1] == TRACE


def test_the_random_flag_survives_an_unsampled_remote_parent(make_tracer):
    # The W3C harness's case: flags 02 (random, not sampled). The span is not
    # recorded, but the flag must still go out.
    t = make_tracer()
    ctx = ft.extract({"traceparent": f"00-{TRACE}-{SPAN}-02"})
    with t.start_span("handle", kind="server", parent=ctx) as span:
        headers: dict[str, str] = {}
        ft.inject(headers)
    assert not span.sampled
    assert headers["traceparent"] == f"00-{TRACE}-{span.span_id}-02"


def test_future_version_flags_keep_the_random_bit():
    ctx = ft.extract({"traceparent": f"cc-{TRACE}-{SPAN}-fe-future"})
    assert ctx is not None and ctx.random and not ctx.sampled
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    assert headers["traceparent"] == f"00-{TRACE}-{SPAN}-02"


@pytest.mark.parametrize("propagator", ["b3", "b3multi", "xtrace"])
def test_formats_without_a_random_flag_continue_without_it(tracer, propagator):
    headers: dict[str, str] = {}
    ft.inject(headers, span=ft.SpanContext(TRACE, SPAN, random=True), propagators=[propagator])
    ctx = ft.extract(headers, propagators=[propagator])
    assert ctx is not None and not ctx.random
    with tracer.start_span("handle", parent=ctx):
        out: dict[str, str] = {}
        ft.inject(out)
    assert flags_of(out["traceparent"]) == 0x01


def test_span_context_random_argument():
    assert not ft.SpanContext(TRACE, SPAN).random
    ctx = ft.SpanContext(TRACE, SPAN, sampled=False, random=True)
    assert ctx.random and ctx.trace_flags == 0x02
    assert "random=True" in repr(ctx)
    assert ctx != ft.SpanContext(TRACE, SPAN, sampled=False)
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    assert headers["traceparent"] == f"00-{TRACE}-{SPAN}-02"


# --------------------------------------------------------------------------
# SpanContext
# --------------------------------------------------------------------------


def test_span_context_tracestate():
    ctx = ft.SpanContext(TRACE, SPAN, tracestate=" a=1 , b=2 ")
    assert ctx.tracestate == "a=1,b=2"
    assert ft.SpanContext(TRACE, SPAN).tracestate is None
    assert ft.SpanContext(TRACE, SPAN, tracestate="").tracestate is None
    assert ctx == ft.SpanContext(TRACE, SPAN, tracestate="a=1,b=2")
    assert ctx != ft.SpanContext(TRACE, SPAN)
    assert "tracestate='a=1,b=2'" in repr(ctx)
    with pytest.raises(ValueError, match="tracestate"):
        ft.SpanContext(TRACE, SPAN, tracestate="A=1")


# --------------------------------------------------------------------------
# OpenTelemetry interop
# --------------------------------------------------------------------------


@pytest.fixture
def otel():
    trace = pytest.importorskip("opentelemetry.trace")
    tracecontext = pytest.importorskip("opentelemetry.trace.propagation.tracecontext")
    return trace, tracecontext.TraceContextTextMapPropagator()


@pytest.mark.parametrize("sampled", [True, False])
def test_what_we_inject_opentelemetry_extracts(otel, sampled):
    trace, propagator = otel
    ctx = ft.SpanContext(TRACE, SPAN, sampled=sampled, tracestate="rojo=00f067aa0ba902b7,congo=t61")
    headers: dict[str, str] = {}
    ft.inject(headers, span=ctx)
    theirs = trace.get_current_span(propagator.extract(headers)).get_span_context()
    assert theirs.is_valid and theirs.is_remote
    assert format(theirs.trace_id, "032x") == TRACE
    assert format(theirs.span_id, "016x") == SPAN
    assert theirs.trace_flags.sampled is sampled
    assert list(theirs.trace_state.items()) == [("rojo", "00f067aa0ba902b7"), ("congo", "t61")]


@pytest.mark.parametrize("sampled", [True, False])
def test_what_opentelemetry_injects_we_extract(otel, sampled):
    trace, propagator = otel
    state = trace.TraceState([("vendor", "v1"), ("tenant@sys", "x y")])
    theirs = trace.SpanContext(
        trace_id=int(TRACE, 16),
        span_id=int(SPAN, 16),
        is_remote=False,
        trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if sampled else 0),
        trace_state=state,
    )
    headers: dict[str, str] = {}
    propagator.inject(headers, context=trace.set_span_in_context(trace.NonRecordingSpan(theirs)))
    ours = ft.extract(headers)
    assert ids(ours) == (TRACE, SPAN, sampled)
    assert ours is not None and ours.tracestate == "vendor=v1,tenant@sys=x y"


def test_opentelemetry_sees_the_random_flag(otel, tracer):
    trace, propagator = otel
    with tracer.start_span("root") as span:
        flags = span.get_span_context().trace_flags
    assert isinstance(flags, trace.TraceFlags) and flags == 0x03 and flags.sampled
    theirs = trace.SpanContext(
        trace_id=int(TRACE, 16),
        span_id=int(SPAN, 16),
        is_remote=False,
        trace_flags=trace.TraceFlags(0x02),
    )
    headers: dict[str, str] = {}
    propagator.inject(headers, context=trace.set_span_in_context(trace.NonRecordingSpan(theirs)))
    ours = ft.extract(headers)
    assert ours is not None and ours.random and not ours.sampled


def test_opentelemetry_sdk_spans_and_ours_share_traces(otel, tracer):
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    trace, propagator = otel
    provider = sdk_trace.TracerProvider()
    otel_tracer = provider.get_tracer("interop")
    with otel_tracer.start_as_current_span("upstream") as upstream:
        headers: dict[str, str] = {}
        propagator.inject(headers)
    with tracer.start_span("ours", kind="server", parent=ft.extract(headers)) as ours:
        out: dict[str, str] = {}
        ft.inject(out)
    up = upstream.get_span_context()
    assert ours.trace_id == format(up.trace_id, "032x")
    assert ours.parent_id == format(up.span_id, "016x")
    with otel_tracer.start_span("downstream", context=propagator.extract(out)) as downstream:
        down = downstream
    assert down.parent is not None
    assert format(down.parent.span_id, "016x") == ours.span_id
    assert format(down.get_span_context().trace_id, "032x") == ours.trace_id


# --------------------------------------------------------------------------
# Properties: junk never raises, never yields a malformed id
# --------------------------------------------------------------------------

header_names = st.sampled_from(HEADER_NAMES).flatmap(
    lambda n: st.sampled_from([n, n.upper(), n.title()])
)
near_valid = st.one_of(
    st.from_regex(
        r"[ \t]{0,2}[0-9a-fA-F.]{1,3}-[0-9a-fA-F]{30,33}-[0-9a-fA-F]{15,17}-[0-9a-fA-F]{1,3}"
        r"(-[ -~]{0,8})?[ \t]{0,2}",
        fullmatch=True,
    ),
    st.from_regex(r"[0-9a-fA-F]{15,33}-[0-9a-f]{15,17}(-[01dD](-[0-9a-f]{16})?)?", fullmatch=True),
    st.from_regex(r"[a-z0-9@=_*/, \t-]{0,40}", fullmatch=True),
)
values = st.one_of(st.text(max_size=80), near_valid)
byte_values = st.one_of(st.binary(max_size=80), near_valid.map(lambda s: s.encode("latin-1")))
propagator_lists = st.lists(st.sampled_from(ALL), unique=True)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(header_names, values), max_size=8), propagator_lists)
def test_random_text_headers_never_raise(pairs, propagators):
    check_context(ft.extract(pairs, propagators=propagators))
    check_context(ft.extract(dict(pairs), propagators=propagators))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.tuples(header_names.map(str.encode), byte_values), max_size=8),
    propagator_lists,
)
def test_random_byte_headers_never_raise(pairs, propagators):
    check_context(ft.extract(pairs, propagators=propagators))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=20), st.binary(max_size=20)), values))
def test_random_keys_never_raise(carrier):
    check_context(ft.extract(carrier, propagators=ALL))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
    st.integers(0, 255),
    st.sampled_from(["00", "01", "7f", "cc", "fe"]),
)
def test_valid_traceparents_are_accepted_exactly(trace_id, span_id, flags, version):
    value = f"{version}-{trace_id:032x}-{span_id:016x}-{flags:02x}"
    expected = (f"{trace_id:032x}", f"{span_id:016x}", bool(flags & 1))
    assert tp(value) == expected
    upper = value.upper()
    assert tp(upper) == (expected if upper == value else None)
