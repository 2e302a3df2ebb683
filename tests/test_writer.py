"""The JSONL files: names, rotation, trace summaries, odd values, limits, overload, failures."""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import ferrotrace as ft
import pytest
from conftest import (
    by_name,
    flushed_spans,
    read_jsonl,
    read_spans,
    read_traces,
    span_files,
    trace_files,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def ferrotrace_warnings(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "ferrotrace" and r.levelno == logging.WARNING]


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def test_file_names_and_files_list(tracer, out_dir):
    with tracer.start_span("root"):
        pass
    assert tracer.flush() is True
    pid = os.getpid()
    spans = span_files(out_dir)
    traces = trace_files(out_dir)
    assert len(spans) == 1 and len(traces) == 1
    assert re.fullmatch(rf"spans-test-{pid}-\d+\.jsonl", spans[0].name), spans[0].name
    assert re.fullmatch(rf"traces-test-{pid}-\d+\.jsonl", traces[0].name), traces[0].name
    listed = {Path(p).resolve() for p in tracer.files()}
    assert listed == {spans[0].resolve(), traces[0].resolve()}
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([spans[0].name, traces[0].name])


def test_output_dir_is_created_recursively(make_tracer, tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    t = make_tracer(deep)
    assert t.output_dir == str(deep)
    with t.start_span("x"):
        pass
    assert len(flushed_spans(t, deep)) == 1


def test_no_files_before_any_span(make_tracer, tmp_path):
    d = tmp_path / "empty"
    t = make_tracer(d)
    assert t.flush() is True
    assert t.files() == []
    assert not d.exists() or list(d.iterdir()) == []


def test_output_dir_none_writes_nothing(make_tracer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    t = make_tracer(None)
    assert t.output_dir is None
    with t.start_span("x") as s:
        s.set_tag("k", "v")
    assert t.flush() is True
    assert t.files() == []
    assert list(tmp_path.iterdir()) == []
    m = t.metrics()
    assert m["spans_finished"] == 1
    assert m["spans_written"] == 0
    assert m["write_errors"] == 0
    assert s.to_dict()["attributes"] == {"k": "v"}


def test_service_name_with_path_characters_stays_inside_output_dir(make_tracer, tmp_path):
    d = tmp_path / "out"
    service = "../../evil service/ü"
    t = make_tracer(d, service_name=service)
    with t.start_span("x"):
        pass
    [rec] = flushed_spans(t, d)
    assert rec["service"] == service
    for p in t.files():
        assert Path(p).resolve().parent == d.resolve()
    assert sorted(tmp_path.iterdir()) == [d]


def test_two_tracers_sharing_a_directory(make_tracer, tmp_path):
    d = tmp_path / "shared"
    a = make_tracer(d, service_name="alpha")
    b = make_tracer(d, service_name="beta")
    c = make_tracer(d, service_name="alpha")
    for i in range(200):
        for t in (a, b, c):
            with t.start_span(f"{t.service_name}-{i}"):
                pass
    for t in (a, b, c):
        assert t.flush()
    assert len(set(a.files()) | set(b.files()) | set(c.files())) == 6
    spans = read_spans(d)
    assert len(spans) == 600
    assert len({s["span_id"] for s in spans}) == 600
    for path in span_files(d):
        services = {r["service"] for r in read_jsonl(path)}
        assert len(services) == 1
        assert path.name.startswith(f"spans-{services.pop()}-")
    assert len(read_traces(d)) == 600


def test_interval_flush_writes_without_explicit_flush(make_tracer, tmp_path):
    import time

    d = tmp_path / "interval"
    t = make_tracer(d, flush_interval_ms=20)
    with t.start_span("periodic"):
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not span_files(d):
        time.sleep(0.01)
    while time.monotonic() < deadline and not read_spans(d):
        time.sleep(0.01)
    assert [r["name"] for r in read_spans(d)] == ["periodic"]


def test_flush_returns_true_and_everything_is_on_disk(tracer, out_dir):
    for i in range(5000):
        with tracer.start_span("s", tags={"i": i}):
            pass
    assert tracer.flush(timeout=30) is True
    spans = read_spans(out_dir)
    assert sorted(r["attributes"]["i"] for r in spans) == list(range(5000))
    m = tracer.metrics()
    assert m["spans_written"] == 5000
    assert m["spans_dropped"] == 0


def test_rotation_by_size(make_tracer, tmp_path):
    d = tmp_path / "rot"
    max_mb = 0.001
    limit = int(max_mb * 1024 * 1024)
    t = make_tracer(d, max_file_size_mb=max_mb)
    n = 40
    for i in range(n):
        with t.start_span("rotating", tags={"i": i, "pad": "x" * 100}):
            pass
        assert t.flush()
    files = span_files(d)
    assert len(files) >= 3
    suffixes = [int(re.fullmatch(r"spans-test-\d+-(\d+)\.jsonl", p.name).group(1)) for p in files]
    assert len(set(suffixes)) == len(files)
    for p in files:
        lines = read_jsonl(p)
        assert lines
        assert p.stat().st_size <= limit or len(lines) == 1
    spans = read_spans(d)
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(n))
    assert {Path(p).resolve() for p in t.files()} >= {p.resolve() for p in files}


def test_rotation_with_large_bursts_loses_nothing(make_tracer, tmp_path):
    d = tmp_path / "burst"
    t = make_tracer(d, max_file_size_mb=0.01)
    for burst in range(5):
        for i in range(300):
            with t.start_span("b", tags={"i": burst * 300 + i}):
                pass
        assert t.flush()
    spans = read_spans(d)
    assert sorted(s["attributes"]["i"] for s in spans) == list(range(1500))
    assert len(span_files(d)) >= 2


# --------------------------------------------------------------------------
# Trace summaries
# --------------------------------------------------------------------------


def test_trace_summary(tracer, out_dir):
    with tracer.start_span("checkout", kind="server") as root:
        with tracer.start_span("db"):
            pass
        with tracer.start_span("payment") as pay:
            pay.set_error("declined")
            with tracer.start_span("retry"):
                pass
    with tracer.start_span("healthy"):
        pass
    assert tracer.flush()
    recs = by_name(read_spans(out_dir))
    summaries = {t["operation"]: t for t in read_traces(out_dir)}
    assert set(summaries) == {"checkout", "healthy"}
    s = summaries["checkout"]
    assert s["trace_id"] == root.trace_id
    assert s["root_span_id"] == root.span_id
    assert s["service"] == "test"
    assert s["start_ns"] == recs["checkout"]["start_ns"]
    assert s["duration_ms"] == pytest.approx(recs["checkout"]["duration_ms"])
    assert s["span_count"] == 4
    assert s["error_count"] == 1
    assert s["status"] == "error"
    h = summaries["healthy"]
    assert h["span_count"] == 1
    assert h["error_count"] == 0
    assert h["status"] == "ok"
    assert tracer.metrics()["traces_written"] == 2


def test_no_summary_until_root_finishes(tracer, out_dir):
    root = tracer.start_span("root")
    for _ in range(3):
        tracer.start_span("child", parent=root).finish()
    assert tracer.flush()
    assert read_traces(out_dir) == []
    root.finish()
    assert tracer.flush()
    [summary] = read_traces(out_dir)
    assert summary["span_count"] == 4
    assert summary["root_span_id"] == root.span_id


def test_straggler_after_root_does_not_add_a_summary(tracer, out_dir):
    root = tracer.start_span("root")
    late = tracer.start_span("late", parent=root)
    root.finish()
    assert tracer.flush()
    late.finish()
    assert tracer.flush()
    summaries = read_traces(out_dir)
    assert len(summaries) == 1
    assert summaries[0]["root_span_id"] == root.span_id
    assert len(read_spans(out_dir)) == 2


def test_remote_parent_local_root_gets_a_summary(tracer, out_dir):
    ctx = ft.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    with tracer.start_span("handle", kind="server", parent=ctx) as span:
        with tracer.start_span("work"):
            pass
    assert tracer.flush()
    [summary] = read_traces(out_dir)
    assert summary["trace_id"] == ctx.trace_id
    assert summary["root_span_id"] == span.span_id
    assert summary["span_count"] == 2
    assert summary["operation"] == "handle"


# --------------------------------------------------------------------------
# Odd values
# --------------------------------------------------------------------------


class Custom:
    def __str__(self):
        return "custom!"


class Unprintable:
    def __str__(self):
        raise RuntimeError("nope")


@pytest.mark.parametrize(
    "value, expected",
    [
        (object, str(object)),
        (Custom(), "custom!"),
        (Unprintable(), "<unprintable Unprintable>"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (2**64, "18446744073709551616"),
        (-(2**63) - 1, "-9223372036854775809"),
        (2**63 - 1, 2**63 - 1),
        (-(2**63), -(2**63)),
        (10**40, str(10**40)),
        (None, "None"),
        (b"bytes", "b'bytes'"),
        ({"a": 1}, "{'a': 1}"),
        ({1, 2}.__class__.__name__, "set"),
        ((1, "a", True), [1, "a", True]),
        ([1.5, float("nan"), Custom()], [1.5, "NaN", "custom!"]),
        ([], []),
        (True, True),
        (False, False),
        (0, 0),
        (-0.0, -0.0),
        (1e308, 1e308),
        ("", ""),
        ('quote " backslash \\ newline \n nul \x00 del \x7f emoji 😀', None),
    ],
    ids=lambda v: repr(v)[:30],
)
def test_odd_attribute_values(tracer, out_dir, value, expected):
    if expected is None:
        expected = value
    with tracer.start_span("odd") as span:
        span.set_tag("v", value)
    [rec] = flushed_spans(tracer, out_dir)
    got = rec["attributes"]["v"]
    assert got == expected
    assert type(got) is type(expected)
    assert span.to_dict()["attributes"]["v"] == expected


def replaced(expected: str) -> re.Pattern[str]:
    """`expected` as an exact pattern: each lone surrogate must come out as
    exactly one U+FFFD (never as a surrogate, invalid UTF-8, or several)."""
    return re.compile(re.escape(expected))


def matches(expected: str, got: str) -> bool:
    return replaced(expected).fullmatch(got) is not None


def test_a_surrogate_counts_as_one_character_when_truncating(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, max_attribute_length=2)
    with tracer.start_span("s") as span:
        span.set_tag("v", "\ud800abc")
    assert span.attributes["v"] == "\ufffda"


def test_lone_surrogates_in_values_become_replacement_characters(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.set_tag("mid", "lone \ud800 surrogate")
        span.set_tag("only", "\udfff")
        span.set_tag("list", ["\ud83d", "ok"])
        span.set_tag("pair", "\ud83d\ude00")
    [rec] = flushed_spans(tracer, out_dir)
    a = rec["attributes"]
    assert matches("lone \ufffd surrogate", a["mid"]), a["mid"]
    assert matches("\ufffd", a["only"]), a["only"]
    assert matches("\ufffd", a["list"][0]) and a["list"][1] == "ok", a["list"]
    # Two lone surrogates (not a pair in a Python str): two replacements.
    assert a["pair"] == "\ufffd\ufffd", a["pair"]
    assert span.to_dict()["attributes"] == a


def test_odd_keys_names_and_messages(tracer, out_dir):
    with tracer.start_span("name \ud800 with surrogate", tags={1: "int key"}) as span:
        span.set_tag(None, "none key")
        span.set_tag(("t", 1), "tuple key")
        span.set_tag("key \udc80", "surrogate key")
        span.set_tag(Unprintable(), "unprintable key")
        span.log("event \ud800", {"a\ud800": "b\udc00"}, level="WARN\ud800")
        span.set_error(ValueError("msg \ud800"))
    [rec] = flushed_spans(tracer, out_dir)
    assert matches("name \ufffd with surrogate", rec["name"]), rec["name"]
    attrs = rec["attributes"]
    assert attrs["1"] == "int key"
    assert attrs["None"] == "none key"
    assert attrs["('t', 1)"] == "tuple key"
    [skey] = [k for k, v in attrs.items() if v == "surrogate key"]
    assert matches("key \ufffd", skey), skey
    assert attrs["<unprintable Unprintable>"] == "unprintable key"
    [event] = rec["events"]
    assert matches("event \ufffd", event["name"]), event["name"]
    [(ek, ev)] = event["attributes"].items()
    assert matches("a\ufffd", ek) and matches("b\ufffd", ev), event
    assert "\ud800" not in event["level"]
    assert matches("msg \ufffd", rec["error"]["message"]), rec["error"]


def test_odd_service_name(make_tracer, tmp_path):
    d = tmp_path / "svc"
    t = make_tracer(d, service_name='svc \ud800 "q"')
    with t.start_span("x"):
        pass
    [rec] = flushed_spans(t, d)
    assert matches('svc \ufffd "q"', rec["service"]), rec["service"]
    [summary] = read_traces(d)
    assert summary["service"] == rec["service"]
    assert t.service_name == rec["service"]


def test_set_tag_with_raising_str_never_raises(tracer, out_dir):
    class Bad:
        def __str__(self):
            raise ValueError("bad")

        def __repr__(self):
            raise ValueError("bad repr")

    with tracer.start_span("s") as span:
        span.set_tag("bad", Bad())
        span.set_tags({"bad2": [Bad()]})
        span.log(Bad(), x=Bad())
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"]["bad"] == "<unprintable Bad>"
    assert rec["attributes"]["bad2"] == ["<unprintable Bad>"]
    assert rec["events"][0]["name"] == "<unprintable Bad>"
    assert rec["events"][0]["attributes"] == {"x": "<unprintable Bad>"}


# --------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------


def test_max_attribute_length_truncates_characters(make_tracer, tmp_path):
    d = tmp_path / "len"
    t = make_tracer(d, max_attribute_length=5)
    with t.start_span("s", tags={"start": "abcdefgh"}) as span:
        span.set_tag("ascii", "abcdefgh")
        span.set_tag("exact", "abcde")
        span.set_tag("multibyte", "héllo wörld")
        span.set_tag("emoji", "😀😀😀😀😀😀😀")
        span.set_tag("list", ["abcdefgh", 123456789, "xy"])
        span.set_tag("number", 12345678901234)
    [rec] = flushed_spans(t, d)
    a = rec["attributes"]
    assert a["start"] == "abcde"
    assert a["ascii"] == "abcde"
    assert a["exact"] == "abcde"
    assert a["multibyte"] == "héllo"
    assert a["emoji"] == "😀" * 5
    assert a["list"] == ["abcde", 123456789, "xy"]
    assert a["number"] == 12345678901234


def test_default_max_attribute_length(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.set_tag("big", "é" * 10_000)
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"]["big"] == "é" * 4096


def test_max_attributes_drops_and_counts(make_tracer, tmp_path):
    d = tmp_path / "count"
    t = make_tracer(d, max_attributes=3)
    with t.start_span("s", tags={"a": 1, "b": 2}) as span:
        span.set_tag("c", 3)
        span.set_tag("d", 4)
        span.set_tags({"e": 5, "f": 6})
        span.set_tag("a", 100)  # replacing an existing key is allowed at the limit
        assert span.attributes == {"a": 100, "b": 2, "c": 3}
    with t.start_span("within", tags={"x": 1}):
        pass
    recs = by_name(flushed_spans(t, d))
    assert recs["s"]["attributes"] == {"a": 100, "b": 2, "c": 3}
    assert recs["s"]["dropped_attributes_count"] == 3
    assert "dropped_attributes_count" not in recs["within"]
    assert t.metrics()["attributes_dropped"] == 3


def test_default_max_attributes(tracer, out_dir):
    with tracer.start_span("s") as span:
        for i in range(200):
            span.set_tag(f"k{i}", i)
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"] == {f"k{i}": i for i in range(128)}
    assert rec["dropped_attributes_count"] == 72
    assert tracer.metrics()["attributes_dropped"] == 72


def test_max_attributes_zero(make_tracer, tmp_path):
    d = tmp_path / "zero"
    t = make_tracer(d, max_attributes=0)
    with t.start_span("s", tags={"a": 1}) as span:
        span.set_tag("b", 2)
    [rec] = flushed_spans(t, d)
    assert rec["attributes"] == {}
    assert rec["dropped_attributes_count"] == 2


def test_max_events_drops_and_counts(make_tracer, tmp_path):
    d = tmp_path / "events"
    t = make_tracer(d, max_events=2)
    with t.start_span("s") as span:
        for i in range(5):
            span.log(f"e{i}")
    with t.start_span("few") as span:
        span.log("only")
    recs = by_name(flushed_spans(t, d))
    assert [e["name"] for e in recs["s"]["events"]] == ["e0", "e1"]
    assert recs["s"]["dropped_events_count"] == 3
    assert "dropped_events_count" not in recs["few"]
    assert t.metrics()["events_dropped"] == 3


def test_default_max_events(tracer, out_dir):
    with tracer.start_span("s") as span:
        for i in range(130):
            span.log("e", i=i)
    [rec] = flushed_spans(tracer, out_dir)
    assert len(rec["events"]) == 128
    assert rec["dropped_events_count"] == 2


# --------------------------------------------------------------------------
# Overload and failures
# --------------------------------------------------------------------------


def test_full_buffer_drops_counts_and_warns_once(make_tracer, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    d = tmp_path / "full"
    t = make_tracer(d, buffer_size=8, flush_interval_ms=60000)
    n = 20_000
    for _ in range(n):
        t.start_span("flood").finish()
    assert t.flush(timeout=30)
    m = t.metrics()
    assert m["spans_finished"] == n
    assert m["spans_dropped"] > 0
    assert m["spans_dropped"] == m["spans_finished"] - m["spans_written"]
    assert m["spans_dropped_buffer_full"] == m["spans_dropped"]
    assert len(read_spans(d)) == m["spans_written"]
    # More overflow later does not warn again.
    for _ in range(n):
        t.start_span("flood2").finish()
    assert t.flush(timeout=30)
    t.metrics()
    assert len(ferrotrace_warnings(caplog)) == 1
    assert "buffer" in ferrotrace_warnings(caplog)[0].getMessage()


def test_unwritable_output_dir(make_tracer, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="ferrotrace")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    d = blocker / "sub"
    t = make_tracer(d)
    with t.start_span("root"):
        for _ in range(9):
            with t.start_span("child") as s:
                s.set_tag("k", "v")
    # flush() says the spans did not reach disk.
    assert t.flush(timeout=10) is False
    m = t.metrics()
    assert m["write_errors"] >= 1
    assert m["spans_written"] == 0
    assert m["spans_dropped"] == 10
    assert m["spans_dropped_write_error"] == 10
    for _ in range(5):
        t.start_span("more").finish()
    t.flush(timeout=10)
    m = t.metrics()
    assert m["spans_dropped"] == 15
    assert len(ferrotrace_warnings(caplog)) == 1
    assert blocker.read_text() == "not a directory"


def test_writing_resumes_when_directory_becomes_writable(make_tracer, tmp_path):
    blocker = tmp_path / "later"
    blocker.write_text("x")
    t = make_tracer(blocker)
    t.start_span("lost").finish()
    t.flush(timeout=10)
    assert t.metrics()["spans_dropped"] == 1
    blocker.unlink()
    t.start_span("kept").finish()
    assert t.flush(timeout=10)
    assert [r["name"] for r in read_spans(blocker)] == ["kept"]
    m = t.metrics()
    assert m["spans_written"] == 1
    assert m["spans_dropped"] == 1


def test_four_threads_twenty_thousand_spans_each(make_tracer, tmp_path):
    d = tmp_path / "threads"
    t = make_tracer(d, buffer_size=200_000)
    per_thread = 20_000
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(per_thread):
                with t.start_span(f"t{n}"):
                    pass
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors
    assert t.flush(timeout=60)
    lines = 0
    names: dict[str, int] = {}
    ids = set()
    for path in span_files(d):
        for rec in read_jsonl(path):
            lines += 1
            names[rec["name"]] = names.get(rec["name"], 0) + 1
            ids.add(rec["span_id"])
    assert lines == 4 * per_thread
    assert len(ids) == 4 * per_thread
    assert names == {f"t{n}": per_thread for n in range(4)}
    m = t.metrics()
    assert m["spans_dropped"] == 0
    assert m["spans_written"] == 4 * per_thread
    assert m["traces_written"] == 4 * per_thread


# --------------------------------------------------------------------------
# Property-based: anything goes in, strict JSON comes out
# --------------------------------------------------------------------------

_any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
_scalar_in = st.one_of(
    _any_text,
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.none(),
    st.binary(max_size=5),
    st.just(Unprintable()),
    st.just(Custom()),
)
_value_in = st.one_of(
    _scalar_in,
    st.lists(_scalar_in, max_size=4),
    st.lists(_scalar_in, max_size=4).map(tuple),
    st.lists(st.lists(st.integers(), max_size=2), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def _has_surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def _expected_scalar(v):
    """What a scalar attribute value is stored as, or None if it is not a scalar."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else str(v)
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, str):
        return v
    return None


def _display(v):
    try:
        return str(v)
    except Exception:
        return f"<unprintable {type(v).__name__}>"


def _expected(v):
    scalar = _expected_scalar(v)
    if scalar is not None:
        return scalar
    if type(v) in (list, tuple):
        out = []
        for item in v:
            s = _expected_scalar(item)
            out.append(s if s is not None else _display(item))
        return out
    return _display(v)


def _same(expected, got) -> bool:
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and len(got) == len(expected)
            and all(_same(e, g) for e, g in zip(expected, got))
        )
    if isinstance(expected, str) and _has_surrogate(expected):
        pattern = "".join(
            "\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else re.escape(c) for c in expected
        )
        return isinstance(got, str) and re.fullmatch(pattern, got) is not None
    return type(got) is type(expected) and got == expected


@settings(max_examples=60, deadline=None)
@given(values=st.lists(_value_in, min_size=1, max_size=6), name=_any_text, event=_any_text)
def test_arbitrary_values_make_strict_json_lines(tmp_path_factory, values, name, event):
    d = tmp_path_factory.mktemp("prop")
    t = ft.Tracer(service_name="prop", output_dir=d)
    try:
        with t.start_span(name) as span:
            for i, v in enumerate(values):
                span.set_tag(f"k{i}", v)
            span.log(event, {f"e{i}": v for i, v in enumerate(values)})
        assert t.flush(timeout=10)
        [rec] = read_spans(d)  # strict UTF-8, strict JSON, contract-shaped
        [summary] = read_traces(d)
        assert summary["root_span_id"] == rec["span_id"]
        assert _same(name, rec["name"])
        assert _same(event, rec["events"][0]["name"])
        for i, v in enumerate(values):
            assert _same(_expected(v), rec["attributes"][f"k{i}"]), (v, rec["attributes"][f"k{i}"])
            assert _same(_expected(v), rec["events"][0]["attributes"][f"e{i}"])
    finally:
        t.shutdown()
