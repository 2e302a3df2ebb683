"""Spans: ids, parenting, properties, attributes, events, status, errors, finish."""

from __future__ import annotations

import json
import math

import ferrotrace as ft
import pytest
from conftest import HEX16, HEX32, by_name, flushed_spans
from hypothesis import given, settings
from hypothesis import strategies as st


class MyError(Exception):
    pass


class Outer:
    class NestedError(RuntimeError):
        pass


# --------------------------------------------------------------------------
# ids and parenting
# --------------------------------------------------------------------------


def test_root_span_ids_and_record(tracer, out_dir):
    with tracer.start_span("root") as span:
        assert HEX32.fullmatch(span.trace_id)
        assert HEX16.fullmatch(span.span_id)
        assert span.parent_id is None
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["trace_id"] == span.trace_id
    assert rec["span_id"] == span.span_id
    assert rec["parent_id"] is None
    assert rec["name"] == "root"
    assert rec["service"] == "test"
    assert rec["kind"] == "internal"
    assert rec["status"] == "ok"
    assert rec["attributes"] == {}
    assert rec["events"] == []
    assert rec["error"] is None


def test_nested_with_blocks_form_a_tree(tracer, out_dir):
    with tracer.start_span("root") as root:
        with tracer.start_span("child") as child:
            with tracer.start_span("grandchild") as grandchild:
                pass
        with tracer.start_span("sibling") as sibling:
            pass
    assert child.parent_id == root.span_id
    assert grandchild.parent_id == child.span_id
    assert sibling.parent_id == root.span_id
    assert {s.trace_id for s in (root, child, grandchild, sibling)} == {root.trace_id}
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["root"]["parent_id"] is None
    assert recs["child"]["parent_id"] == recs["root"]["span_id"]
    assert recs["grandchild"]["parent_id"] == recs["child"]["span_id"]
    assert recs["sibling"]["parent_id"] == recs["root"]["span_id"]
    assert len({r["trace_id"] for r in recs.values()}) == 1
    assert len({r["span_id"] for r in recs.values()}) == 4


def test_separate_roots_start_separate_traces(tracer):
    with tracer.start_span("a") as a:
        pass
    with tracer.start_span("b") as b:
        pass
    assert a.trace_id != b.trace_id
    assert b.parent_id is None


def test_span_ids_are_unique(tracer):
    ids = set()
    trace_ids = set()
    for _ in range(2000):
        s = tracer.start_span("x")
        ids.add(s.span_id)
        trace_ids.add(s.trace_id)
        s.finish()
    assert len(ids) == 2000
    assert len(trace_ids) == 2000


def test_start_span_without_with_is_not_current_but_explicit_parent_works(tracer, out_dir):
    parent = tracer.start_span("parent")
    assert ft.current_span() is None
    child = tracer.start_span("child", parent=parent)
    orphan = tracer.start_span("orphan")
    assert child.parent_id == parent.span_id
    assert child.trace_id == parent.trace_id
    assert orphan.parent_id is None
    assert orphan.trace_id != parent.trace_id
    for s in (child, orphan, parent):
        s.finish()
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["child"]["parent_id"] == recs["parent"]["span_id"]


def test_explicit_parent_overrides_current_span(tracer):
    other = tracer.start_span("other")
    with tracer.start_span("current"):
        child = tracer.start_span("child", parent=other)
        child.finish()
    other.finish()
    assert child.parent_id == other.span_id
    assert child.trace_id == other.trace_id


def test_parent_none_means_current_span(tracer):
    with tracer.start_span("current") as current:
        child = tracer.start_span("child", parent=None)
        child.finish()
    assert child.parent_id == current.span_id


def test_remote_parent_span_context(tracer, out_dir):
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent_span_id = "00f067aa0ba902b7"
    ctx = ft.SpanContext(trace_id, parent_span_id)
    assert ctx.trace_id == trace_id
    assert ctx.span_id == parent_span_id
    assert ctx.sampled is True
    assert ctx.is_remote is True
    with tracer.start_span("handle", kind="server", parent=ctx) as span:
        with tracer.start_span("inner") as inner:
            pass
    assert span.trace_id == trace_id
    assert span.parent_id == parent_span_id
    assert inner.parent_id == span.span_id
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["handle"]["trace_id"] == trace_id
    assert recs["handle"]["parent_id"] == parent_span_id
    assert recs["handle"]["kind"] == "server"
    assert recs["handle"].get("remote_parent") is True
    assert recs["inner"].get("remote_parent", False) is False


def test_unsampled_remote_parent_is_not_written(tracer, out_dir):
    ctx = ft.SpanContext("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", sampled=False)
    with tracer.start_span("handle", parent=ctx) as span:
        with tracer.start_span("inner") as inner:
            assert inner.is_recording() is False
    assert span.sampled is False
    assert inner.sampled is False
    with tracer.start_span("kept") as kept:
        pass
    assert kept.sampled is True
    assert [r["name"] for r in flushed_spans(tracer, out_dir)] == ["kept"]
    m = tracer.metrics()
    assert m["spans_unsampled"] == 2
    assert m["spans_finished"] == 3
    assert m["spans_dropped"] == 0


@pytest.mark.parametrize(
    "trace_id, span_id",
    [
        ("0" * 32, "00f067aa0ba902b7"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "0" * 16),
        ("4bf92f3577b34da6a3ce929d0e0e473", "00f067aa0ba902b7"),
        ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b"),
        ("4bf92f3577b34da6a3ce929d0e0e473g", "00f067aa0ba902b7"),
        ("", ""),
    ],
)
def test_invalid_span_context_raises_value_error(trace_id, span_id):
    with pytest.raises(ValueError):
        ft.SpanContext(trace_id, span_id)


@pytest.mark.parametrize("bad", [42, "00f067aa0ba902b7", object()])
def test_parent_of_wrong_type_raises_type_error(tracer, bad):
    with pytest.raises(TypeError):
        tracer.start_span("x", parent=bad)
    assert tracer.metrics()["spans_created"] == 0


def test_span_context_property(tracer):
    with tracer.start_span("s") as span:
        ctx = span.context
    assert isinstance(ctx, ft.SpanContext)
    assert ctx.trace_id == span.trace_id
    assert ctx.span_id == span.span_id
    assert ctx.sampled is True
    assert ctx.is_remote is False


def test_span_of_one_tracer_parents_span_of_another(tracer, make_tracer, tmp_path):
    other_dir = tmp_path / "other"
    other = make_tracer(other_dir, service_name="other")
    with tracer.start_span("outer") as outer:
        with other.start_span("inner") as inner:
            assert ft.current_span() is inner
    assert inner.parent_id == outer.span_id
    assert inner.trace_id == outer.trace_id
    assert inner.service == "other"
    [rec] = flushed_spans(other, other_dir)
    assert rec["service"] == "other"
    assert rec["parent_id"] == outer.span_id


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------


def test_properties_while_open_and_after_finish(tracer, out_dir):
    span = tracer.start_span("op", kind="client")
    assert span.name == "op"
    assert span.service == "test"
    assert span.kind == "client"
    assert span.status == "unset"
    assert span.end_ns is None
    assert span.duration_ms is None
    assert span.is_finished is False
    assert span.is_recording() is True
    assert span.sampled is True
    assert isinstance(span.start_ns, int) and span.start_ns > 1_500_000_000 * 10**9
    span.finish()
    assert span.is_finished is True
    assert span.is_recording() is False
    assert isinstance(span.end_ns, int) and span.end_ns >= span.start_ns
    assert isinstance(span.duration_ms, float) and span.duration_ms >= 0
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["start_ns"] == span.start_ns
    assert rec["end_ns"] == span.end_ns
    assert rec["duration_ms"] == pytest.approx(span.duration_ms)
    assert rec["kind"] == "client"


def test_with_returns_the_span_and_sets_current(tracer):
    span = tracer.start_span("s")
    with span as entered:
        assert entered is span
        assert ft.current_span() is span
    assert ft.current_span() is None
    assert span.is_finished


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, "internal"),
        ("internal", "internal"),
        ("server", "server"),
        ("client", "client"),
        ("producer", "producer"),
        ("consumer", "consumer"),
        ("SERVER", "server"),
        ("Client", "client"),
        ("PrOdUcEr", "producer"),
    ],
)
def test_kind(tracer, out_dir, given, expected):
    with tracer.start_span("k", kind=given) as span:
        assert span.kind == expected
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["kind"] == expected


@pytest.mark.parametrize("kind", ["rpc", "", "servers", "internal "])
def test_unknown_kind_raises_value_error(tracer, kind):
    with pytest.raises(ValueError):
        tracer.start_span("k", kind=kind)


@pytest.mark.parametrize("name", [None, 1, b"bytes", ["x"], 1.5])
def test_non_str_name_raises_type_error(tracer, name):
    with pytest.raises(TypeError, match="str"):
        tracer.start_span(name)
    assert tracer.metrics()["spans_created"] == 0


def test_str_subclass_name_is_accepted(tracer, out_dir):
    class Name(str):
        pass

    with tracer.start_span(Name("sub")):
        pass
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "sub"


# --------------------------------------------------------------------------
# finish / end
# --------------------------------------------------------------------------


def test_finish_is_idempotent(tracer, out_dir):
    span = tracer.start_span("once")
    span.finish()
    end_ns = span.end_ns
    span.finish()
    span.end()
    span.finish(duration_ms=999.0)
    assert span.end_ns == end_ns
    recs = flushed_spans(tracer, out_dir)
    assert len(recs) == 1
    assert recs[0]["end_ns"] == end_ns
    m = tracer.metrics()
    assert m["spans_finished"] == 1
    assert m["spans_written"] == 1


def test_with_exit_after_explicit_finish_writes_once(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.finish()
        assert span.is_finished
    assert len(flushed_spans(tracer, out_dir)) == 1


def test_finish_duration_override(tracer, out_dir):
    span = tracer.start_span("timed")
    span.finish(duration_ms=45.0)
    assert span.duration_ms == pytest.approx(45.0)
    assert span.end_ns - span.start_ns == 45_000_000
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["duration_ms"] == pytest.approx(45.0)
    assert rec["end_ns"] - rec["start_ns"] == 45_000_000


def test_finish_duration_zero(tracer, out_dir):
    span = tracer.start_span("instant")
    span.finish(duration_ms=0)
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["duration_ms"] == 0
    assert rec["end_ns"] == rec["start_ns"]


@pytest.mark.parametrize("bad", [-1.0, -0.001, float("nan"), float("inf"), float("-inf")])
def test_finish_bad_duration_raises_and_leaves_span_open(tracer, out_dir, bad):
    span = tracer.start_span("s")
    with pytest.raises(ValueError):
        span.finish(duration_ms=bad)
    assert span.is_finished is False
    span.finish()
    assert len(flushed_spans(tracer, out_dir)) == 1


def test_end_alias(tracer, out_dir):
    span = tracer.start_span("ended")
    span.end()
    assert span.is_finished
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "ended"


def test_measured_duration_matches_bounds(tracer, out_dir):
    with tracer.start_span("m") as span:
        sum(range(10_000))
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["duration_ms"] == pytest.approx((rec["end_ns"] - rec["start_ns"]) / 1e6, abs=1e-3)
    assert rec["end_ns"] == span.end_ns


def test_child_lies_within_parent(tracer, out_dir):
    with tracer.start_span("parent"):
        with tracer.start_span("child"):
            sum(range(1000))
    recs = by_name(flushed_spans(tracer, out_dir))
    p, c = recs["parent"], recs["child"]
    assert p["start_ns"] <= c["start_ns"] <= c["end_ns"] <= p["end_ns"]


# --------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------


def test_tags_and_attributes(tracer, out_dir):
    with tracer.start_span("a", tags={"db.system": "postgresql", "n": 1}) as span:
        span.set_tag("rows", 3)
        span.set_attribute("ratio", 0.5)
        span.set_tags({"flag": True, "b": "x"})
        span.set_attributes({"list": [1, 2, 3], "n": 2})
        assert span.attributes == {
            "db.system": "postgresql",
            "n": 2,
            "rows": 3,
            "ratio": 0.5,
            "flag": True,
            "b": "x",
            "list": [1, 2, 3],
        }
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"] == {
        "db.system": "postgresql",
        "n": 2,
        "rows": 3,
        "ratio": 0.5,
        "flag": True,
        "b": "x",
        "list": [1, 2, 3],
    }
    assert rec["attributes"]["flag"] is True
    assert isinstance(rec["attributes"]["n"], int)
    assert isinstance(rec["attributes"]["ratio"], float)


def test_attributes_property_is_a_copy(tracer, out_dir):
    with tracer.start_span("a", tags={"k": "v"}) as span:
        attrs = span.attributes
        attrs["k"] = "changed"
        attrs["new"] = 1
        assert span.attributes == {"k": "v"}
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"] == {"k": "v"}


def test_set_tags_requires_a_mapping(tracer):
    with tracer.start_span("a") as span:
        with pytest.raises(TypeError):
            span.set_tags([("k", "v")])
        with pytest.raises(TypeError):
            span.set_tags(42)


def test_start_span_tags_requires_a_mapping(tracer):
    with pytest.raises(TypeError):
        tracer.start_span("a", tags=[("k", "v")])


def test_set_tag_after_finish_is_ignored(tracer, out_dir):
    span = tracer.start_span("a", tags={"before": 1})
    span.finish()
    assert tracer.flush()
    span.set_tag("after", 2)
    span.set_tags({"after2": 3})
    span.log("late")
    span.set_status("error")
    span.set_error(ValueError("late"))
    assert span.attributes == {"before": 1}
    assert span.status != "error"
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"] == {"before": 1}
    assert rec["status"] == "ok"
    assert rec["error"] is None
    assert rec["events"] == []


# --------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------


def test_log_events(tracer, out_dir):
    with tracer.start_span("ev") as span:
        span.log("cache miss", level="warning", key="u:1")
        span.log("plain")
        span.add_event("with attrs", {"a": 1, "b": [True, False]})
        span.log("both", {"x": 1}, level="ERROR", y="z")
        span.log("stamped", timestamp=1_700_000_000_000_000_000)
    [rec] = flushed_spans(tracer, out_dir)
    events = rec["events"]
    assert [e["name"] for e in events] == ["cache miss", "plain", "with attrs", "both", "stamped"]
    assert events[0]["level"] == "warning"
    assert events[0]["attributes"] == {"key": "u:1"}
    assert events[1]["level"] == "info"
    assert events[1]["attributes"] == {}
    assert events[2]["attributes"] == {"a": 1, "b": [True, False]}
    assert events[3]["level"] == "error"
    assert events[3]["attributes"] == {"x": 1, "y": "z"}
    assert events[4]["ts_ns"] == 1_700_000_000_000_000_000
    for e in events[:4]:
        assert rec["start_ns"] <= e["ts_ns"] <= rec["end_ns"]
    assert events[0]["ts_ns"] <= events[1]["ts_ns"] <= events[2]["ts_ns"] <= events[3]["ts_ns"]


def test_log_event_attributes_must_be_a_mapping(tracer):
    with tracer.start_span("ev") as span:
        with pytest.raises(TypeError):
            span.log("x", [("a", 1)])


# --------------------------------------------------------------------------
# Status
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code, kind, expected",
    [
        (200, "internal", "ok"),
        (201, "server", "ok"),
        (302, "client", "ok"),
        (404, "server", "ok"),
        (404, "client", "error"),
        (400, "internal", "error"),
        (499, "client", "error"),
        (500, "server", "error"),
        (503, "client", "error"),
        (599, "internal", "error"),
    ],
)
def test_set_status_http_code(tracer, out_dir, code, kind, expected):
    with tracer.start_span("s", kind=kind) as span:
        span.set_status(code)
        assert span.status == expected
        assert span.attributes["status_code"] == code
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == expected
    assert rec["attributes"]["status_code"] == code
    assert isinstance(rec["attributes"]["status_code"], int)
    assert tracer.metrics()["errors"] == (1 if expected == "error" else 0)


@pytest.mark.parametrize(
    "status, expected, written",
    [
        ("ok", "ok", "ok"),
        ("OK", "ok", "ok"),
        ("error", "error", "error"),
        ("Error", "error", "error"),
        ("unset", "unset", "ok"),
    ],
)
def test_set_status_string(tracer, out_dir, status, expected, written):
    with tracer.start_span("s") as span:
        span.set_status(status)
        assert span.status == expected
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == written


def test_set_status_can_be_changed_back(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.set_status("error")
        span.set_status("ok")
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"


def test_set_status_description(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.set_status("error", "upstream timed out")
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert "upstream timed out" in json.dumps(rec)


def test_set_status_bad_values(tracer):
    with tracer.start_span("s") as span:
        with pytest.raises(ValueError):
            span.set_status("weird")
        with pytest.raises(TypeError):
            span.set_status(object())
        assert span.status == "unset"


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def test_exception_escaping_with_marks_error_and_propagates_same_object(tracer, out_dir):
    exc = ValueError("bad input")
    with pytest.raises(ValueError) as info:
        with tracer.start_span("failing") as span:
            raise exc
    assert info.value is exc
    assert span.status == "error"
    assert span.is_finished
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "ValueError"
    assert rec["error"]["message"] == "bad input"
    assert "Traceback" in rec["error"]["stack"]
    assert "bad input" in rec["error"]["stack"]
    assert "test_exception_escaping_with_marks_error" in rec["error"]["stack"]
    m = tracer.metrics()
    assert m["errors"] == 1


def test_exception_type_is_module_qualified(tracer, out_dir):
    with pytest.raises(MyError):
        with tracer.start_span("mine"):
            raise MyError("m")
    with pytest.raises(Outer.NestedError):
        with tracer.start_span("nested"):
            raise Outer.NestedError("n")
    with pytest.raises(json.JSONDecodeError):
        with tracer.start_span("stdlib"):
            json.loads("{")
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["mine"]["error"]["type"] == f"{MyError.__module__}.MyError"
    assert recs["nested"]["error"]["type"] == f"{Outer.__module__}.Outer.NestedError"
    assert recs["stdlib"]["error"]["type"] == "json.decoder.JSONDecodeError"


def test_exception_in_child_marks_child_and_parent_when_it_escapes_both(tracer, out_dir):
    with pytest.raises(KeyError):
        with tracer.start_span("parent"):
            with tracer.start_span("child"):
                raise KeyError("k")
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["child"]["status"] == "error"
    assert recs["parent"]["status"] == "error"
    assert recs["child"]["error"]["type"] == "KeyError"
    assert tracer.metrics()["errors"] == 2


def test_exception_caught_inside_parent_leaves_parent_ok(tracer, out_dir):
    with tracer.start_span("parent") as parent:
        try:
            with tracer.start_span("child"):
                raise RuntimeError("handled")
        except RuntimeError:
            pass
        assert ft.current_span() is parent
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["child"]["status"] == "error"
    assert recs["parent"]["status"] == "ok"
    assert recs["parent"]["error"] is None


@pytest.mark.parametrize(
    "exc",
    [GeneratorExit(), StopIteration(), SystemExit(0), SystemExit(), SystemExit(None)],
    ids=["GeneratorExit", "StopIteration", "SystemExit(0)", "SystemExit()", "SystemExit(None)"],
)
def test_non_error_exceptions(tracer, out_dir, exc):
    with pytest.raises(type(exc)) as info:
        with tracer.start_span("s"):
            raise exc
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"
    assert rec["error"] is None
    assert tracer.metrics()["errors"] == 0


@pytest.mark.parametrize(
    "exc",
    [SystemExit(1), SystemExit("fatal"), KeyboardInterrupt()],
    ids=["SystemExit(1)", "SystemExit(msg)", "KeyboardInterrupt"],
)
def test_other_base_exceptions_are_errors(tracer, out_dir, exc):
    with pytest.raises(type(exc)) as info:
        with tracer.start_span("s"):
            raise exc
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == type(exc).__name__


def test_set_error_with_exception(tracer, out_dir):
    with tracer.start_span("s") as span:
        try:
            raise MyError("caught")
        except MyError as e:
            span.set_error(e)
        assert span.status == "error"
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == f"{MyError.__module__}.MyError"
    assert rec["error"]["message"] == "caught"
    assert "Traceback" in rec["error"]["stack"]


def test_set_error_with_message_and_stack(tracer, out_dir):
    with tracer.start_span("msg") as span:
        span.set_error("something broke")
    with tracer.start_span("stacked") as span2:
        span2.set_error(ValueError("v"), stack="custom stack")
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["msg"]["status"] == "error"
    assert recs["msg"]["error"]["message"] == "something broke"
    assert recs["stacked"]["error"]["type"] == "ValueError"
    assert recs["stacked"]["error"]["stack"] == "custom stack"


def test_record_exception(tracer, out_dir):
    with tracer.start_span("s") as span:
        span.record_exception(TypeError("t"))
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "TypeError"
    assert rec["error"]["message"] == "t"


def test_exception_with_unprintable_message(tracer, out_dir):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    exc = Unprintable()
    with pytest.raises(Unprintable) as info:
        with tracer.start_span("u"):
            raise exc
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"].endswith("Unprintable")
    assert "Unprintable" in rec["error"]["message"]


# --------------------------------------------------------------------------
# to_dict
# --------------------------------------------------------------------------


def test_to_dict_open_and_finished(tracer, out_dir):
    span = tracer.start_span("d", kind="producer", tags={"k": "v"})
    span.log("e", a=1)
    open_dict = span.to_dict()
    assert open_dict["end_ns"] is None
    assert open_dict["duration_ms"] is None
    assert open_dict["name"] == "d"
    assert open_dict["trace_id"] == span.trace_id
    assert open_dict["span_id"] == span.span_id
    assert open_dict["parent_id"] is None
    assert open_dict["kind"] == "producer"
    assert open_dict["attributes"] == {"k": "v"}
    assert [e["name"] for e in open_dict["events"]] == ["e"]
    span.set_status("error")
    span.finish()
    done = span.to_dict()
    [rec] = flushed_spans(tracer, out_dir)
    assert done == rec
    json.dumps(done, allow_nan=False)


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------


def test_metrics_counts(tracer):
    m = tracer.metrics()
    for key in (
        "traces_started",
        "traces_completed",
        "spans_created",
        "spans_finished",
        "spans_dropped",
        "errors",
        "active_traces",
        "active_spans",
        "spans_written",
        "write_errors",
        "spans_dropped_buffer_full",
        "spans_dropped_write_error",
        "spans_dropped_after_shutdown",
        "spans_unsampled",
        "traces_written",
        "attributes_dropped",
        "events_dropped",
    ):
        assert m[key] == 0, key
    assert all(type(v) is int for v in m.values())

    root = tracer.start_span("root")
    with tracer.start_span("c1", parent=root):
        pass
    c2 = tracer.start_span("c2", parent=root)
    m = tracer.metrics()
    assert m["spans_created"] == 3
    assert m["spans_finished"] == 1
    assert m["active_spans"] == 2
    assert m["traces_started"] == 1
    assert m["active_traces"] == 1
    c2.set_error("x")
    c2.finish()
    root.finish()
    assert tracer.flush()
    m = tracer.metrics()
    assert m["spans_created"] == 3
    assert m["spans_finished"] == 3
    assert m["active_spans"] == 0
    assert m["traces_started"] == 1
    assert m["traces_completed"] == 1
    assert m["active_traces"] == 0
    assert m["errors"] == 1
    assert m["spans_written"] == 3
    assert m["traces_written"] == 1
    assert m["spans_dropped"] == 0
    assert m["write_errors"] == 0


# --------------------------------------------------------------------------
# Property-based: what goes in comes out
# --------------------------------------------------------------------------

_json_scalar = st.one_of(
    st.text(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
_attr_value = st.one_of(_json_scalar, st.lists(_json_scalar, max_size=5))


@settings(max_examples=150, deadline=None)
@given(
    name=st.text(),
    attrs=st.dictionaries(st.text(), _attr_value, max_size=8),
    event=st.text(),
)
def test_values_round_trip_through_the_record(name, attrs, event):
    t = ft.Tracer(service_name="prop", output_dir=None)
    try:
        with t.start_span(name, tags=attrs) as span:
            span.log(event, level="debug", **{"k": 1})
        d = span.to_dict()
        line = json.dumps(d, allow_nan=False, ensure_ascii=False)
        line.encode("utf-8", errors="strict")
        assert d["name"] == name
        assert d["attributes"] == attrs
        for k, v in attrs.items():
            got = d["attributes"][k]
            if isinstance(v, float):
                assert isinstance(got, float) and (got == v or (v == 0 and got == 0))
                assert math.copysign(1, got) == math.copysign(1, v) or v != 0
            elif isinstance(v, bool):
                assert got is v
        assert d["events"][0]["name"] == event
        assert span.attributes == attrs
    finally:
        t.shutdown()


@settings(max_examples=100, deadline=None)
@given(value=st.text(), limit=st.integers(min_value=1, max_value=20))
def test_truncation_is_by_characters(value, limit):
    t = ft.Tracer(service_name="prop", output_dir=None, max_attribute_length=limit)
    try:
        with t.start_span("s", tags={"v": value}) as span:
            span.set_tag("l", [value, 1])
        d = span.to_dict()
        assert d["attributes"]["v"] == value[:limit]
        assert d["attributes"]["l"] == [value[:limit], 1]
    finally:
        t.shutdown()


# --------------------------------------------------------------------------
# Concurrency on one span, record reuse
# --------------------------------------------------------------------------


def test_concurrent_finish_writes_each_span_once(tracer, out_dir):
    import threading

    spans = [tracer.start_span(f"s{i}") for i in range(500)]
    barrier = threading.Barrier(4)

    def finish_all():
        barrier.wait(timeout=10)
        for s in spans:
            s.finish()

    threads = [threading.Thread(target=finish_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    recs = flushed_spans(tracer, out_dir)
    assert sorted(r["name"] for r in recs) == sorted(f"s{i}" for i in range(500))
    m = tracer.metrics()
    assert m["spans_finished"] == 500
    assert m["spans_written"] == 500


def test_concurrent_set_tag_on_one_span(tracer, out_dir):
    import threading

    barrier = threading.Barrier(4)
    with tracer.start_span("shared") as span:

        def tag(n):
            barrier.wait(timeout=10)
            for i in range(25):
                span.set_tag(f"t{n}-{i}", i)

        threads = [threading.Thread(target=tag, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["attributes"] == {f"t{n}-{i}": i for n in range(4) for i in range(25)}


def test_finished_span_keeps_its_data_while_many_more_are_written(tracer, out_dir):
    with tracer.start_span("keeper", tags={"k": "v"}) as keeper:
        keeper.log("event", x=1)
    before = keeper.to_dict()
    for i in range(5000):
        with tracer.start_span("filler", tags={"i": i, "k": "other"}) as s:
            s.log("filler event")
    assert tracer.flush()
    assert keeper.to_dict() == before
    assert keeper.attributes == {"k": "v"}
    assert keeper.name == "keeper"
    recs = [r for r in flushed_spans(tracer, out_dir) if r["name"] == "keeper"]
    assert recs == [before]


def test_timestamps_are_wall_clock_nanoseconds(tracer, out_dir):
    import time

    before = time.time_ns()
    with tracer.start_span("clock") as span:
        time.sleep(0.02)
    after = time.time_ns()
    # Generous bounds: this checks units and epoch, not precision.
    assert before - 1_000_000_000 <= span.start_ns <= after + 1_000_000_000
    assert before - 1_000_000_000 <= span.end_ns <= after + 1_000_000_000
    # The span lasted at least as long as the sleep inside it.
    assert span.duration_ms >= 19.0
    assert span.end_ns - span.start_ns >= 19_000_000
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["duration_ms"] >= 19.0


def test_public_names():
    for name in (
        "Tracer",
        "Span",
        "SpanContext",
        "traced",
        "configure",
        "get_tracer",
        "current_span",
        "bind_context",
        "ContextThreadPoolExecutor",
    ):
        assert hasattr(ft, name), name
    assert isinstance(ft.__version__, str)


def test_reentering_a_span_keeps_the_context_right(tracer):
    with tracer.start_span("outer") as outer:
        with outer:
            assert ft.current_span() is outer
        # The inner exit finished the span but must restore the outer block's context.
        assert ft.current_span() is outer
    assert ft.current_span() is None
    assert outer.is_finished
