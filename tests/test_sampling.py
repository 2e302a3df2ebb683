"""Head sampling (ratio, rate limit, parent-based) and tail rules."""

from __future__ import annotations

import ferrotrace as ft
import pytest
from conftest import flushed_spans, read_traces


def test_unsampled_spans_propagate_and_count_but_are_not_written(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, sample_rate=0.0)
    with tracer.start_span("root", tags={"a": 1}) as root:
        root.set_tag("b", object())
        root.log("ignored", k=1)
        with tracer.start_span("child") as child:
            assert ft.current_span() is child
    assert not root.sampled and not child.sampled
    assert not root.is_recording()
    assert child.trace_id == root.trace_id and child.parent_id == root.span_id
    assert child.context.trace_flags == 0x02  # random, not sampled
    assert root.is_finished and root.duration_ms is not None
    assert flushed_spans(tracer, tmp_path) == []
    m = tracer.metrics()
    assert m["spans_created"] == m["spans_finished"] == 2
    assert m["spans_unsampled"] == 2
    assert m["traces_started"] == m["traces_completed"] == 1
    assert m["active_spans"] == 0 and m["spans_written"] == 0 and m["spans_dropped"] == 0


def test_errors_on_unsampled_spans_still_count(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, sample_rate=0.0)
    with pytest.raises(KeyError):
        with tracer.start_span("root"):
            raise KeyError("k")
    assert tracer.metrics()["errors"] == 1


@pytest.mark.parametrize("status", ["error", 503])
def test_set_status_on_unsampled_spans_is_kept_and_counted_as_when_sampled(
    make_tracer, tmp_path, status
):
    seen = {}
    for rate in (1.0, 0.0):
        tracer = make_tracer(tmp_path / f"rate-{rate}", sample_rate=rate)
        spans = []
        with tracer.start_span("root") as root:
            spans.append(root)
            for _ in range(2):
                with tracer.start_span("child") as child:
                    spans.append(child)
                    child.set_status(status)
            root.set_status(status)
        assert tracer.flush(timeout=10.0) is True
        seen[rate] = ([s.status for s in spans], tracer.metrics()["errors"])
    assert seen[1.0] == (["error", "error", "error"], 3)
    assert seen[0.0] == seen[1.0]


def test_ratio_is_decided_per_trace_and_deterministic(make_tracer, tmp_path):
    a = make_tracer(tmp_path / "a", sample_rate=0.5)
    b = make_tracer(tmp_path / "b", sample_rate=0.5)
    decisions = []
    for _ in range(400):
        with a.start_span("root") as root:
            with a.start_span("child") as child:
                assert child.sampled == root.sampled
            # Another service with the same rate agrees on the same trace id.
            ctx = ft.SpanContext(root.trace_id, root.span_id, sampled=True, is_remote=True)
            other = b.start_span("x", parent=ctx)
            other.finish()
        decisions.append(root.sampled)
    assert 120 < sum(decisions) < 280
    spans = flushed_spans(a, tmp_path / "a")
    assert len(spans) == 2 * sum(decisions)


def test_parent_based_follows_the_remote_flag(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, sample_rate=0.0)
    sampled_parent = ft.SpanContext("a" * 32, "b" * 16, sampled=True)
    unsampled_parent = ft.SpanContext("c" * 32, "d" * 16, sampled=False)
    with tracer.start_span("kept", parent=sampled_parent) as kept:
        pass
    with tracer.start_span("dropped", parent=unsampled_parent) as dropped:
        pass
    assert kept.sampled and not dropped.sampled
    [rec] = flushed_spans(tracer, tmp_path)
    assert rec["name"] == "kept" and rec["trace_id"] == "a" * 32 and rec["parent_id"] == "b" * 16
    assert rec["remote_parent"] is True


def test_parent_based_can_be_turned_off(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, sample_rate=0.0, parent_based=False)
    ctx = ft.SpanContext("a" * 32, "b" * 16, sampled=True)
    with tracer.start_span("x", parent=ctx) as span:
        pass
    assert not span.sampled


def test_rate_limit_caps_new_traces(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, max_traces_per_second=5)
    sampled = 0
    for _ in range(200):
        with tracer.start_span("root") as root:
            with tracer.start_span("child"):
                pass
        sampled += root.sampled
    # A burst of one second's worth, plus whatever refilled while looping.
    assert 5 <= sampled < 50
    assert len(flushed_spans(tracer, tmp_path)) == 2 * sampled


def test_tail_rules_keep_failed_and_slow_traces(make_tracer, tmp_path):
    tracer = make_tracer(tmp_path, sample_rate=0.0, keep_errors=True, keep_slower_than_ms=50)
    for i in range(6):
        try:
            with tracer.start_span(f"root-{i}") as root:
                with tracer.start_span(f"child-{i}") as child:
                    child.set_tag("i", i)
                    if i == 1:
                        raise ValueError("failed")
                if i == 2:
                    root.finish(duration_ms=80.0)
        except ValueError:
            pass
    spans = flushed_spans(tracer, tmp_path)
    assert sorted(s["name"] for s in spans) == ["child-1", "child-2", "root-1", "root-2"]
    child = next(s for s in spans if s["name"] == "child-1")
    assert child["attributes"] == {"i": 1} and child["status"] == "error"
    summaries = read_traces(tmp_path)
    assert sorted(t["operation"] for t in summaries) == ["root-1", "root-2"]
    m = tracer.metrics()
    assert m["traces_kept_by_tail"] == 2
    assert m["spans_unsampled"] == 8
    assert m["spans_written"] == 4


def test_sampling_from_otel_environment(make_tracer, tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    tracer = make_tracer(tmp_path)
    assert tracer.config["sample_rate"] == 0.0
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    tracer = make_tracer(tmp_path)
    assert tracer.config["sample_rate"] == 0.25
    assert tracer.config["parent_based"] is True
    monkeypatch.setenv("FERROTRACE_SAMPLE_RATE", "0.75")
    assert make_tracer(tmp_path).config["sample_rate"] == 0.75


def test_bad_sampling_keywords_raise(make_tracer):
    with pytest.raises(ValueError):
        make_tracer(None, max_traces_per_second=-1)
    with pytest.raises(ValueError):
        make_tracer(None, keep_slower_than_ms=float("nan"))
    with pytest.raises(TypeError):
        make_tracer(None, keep_errors="yes")
