"""The OpenTelemetry API bridge: OpenTelemetry-API spans are ferrotrace spans,
with one current span for both APIs (ferrotrace.otel, README.md,
"OpenTelemetry instrumentations")."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

trace = pytest.importorskip("opentelemetry.trace")

import ferrotrace as ft  # noqa: E402
from conftest import by_name, flushed_spans, run_python  # noqa: E402
from ferrotrace.otel import TracerProvider  # noqa: E402
from opentelemetry import baggage, context, propagate  # noqa: E402
from opentelemetry.trace import Link, SpanKind, Status, StatusCode  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.fixture
def provider(tracer):
    return TracerProvider(tracer)


@pytest.fixture
def otel(provider):
    return provider.get_tracer("tests.otel", "1.2.3")


def remote_context(sampled: bool = True, tracestate: str | None = None) -> context.Context:
    headers = {"traceparent": f"00-{TRACE}-{SPAN}-{'01' if sampled else '00'}"}
    if tracestate:
        headers["tracestate"] = tracestate
    return propagate.extract(headers)


# --------------------------------------------------------------------------
# Spans made through the API are ferrotrace spans
# --------------------------------------------------------------------------


def test_api_spans_are_recorded_with_their_scope(tracer, out_dir, otel):
    with otel.start_as_current_span(
        "GET /items", kind=SpanKind.SERVER, attributes={"http.route": "/items", "none": None}
    ) as span:
        assert isinstance(span, ft.Span) and isinstance(span, trace.Span)
        assert span.kind is SpanKind.SERVER
        assert span.name == "GET /items"
        assert span.attributes == {"http.route": "/items"}
        span.set_attribute("http.response.status_code", 200)
        span.set_attributes({"a": [1, 2], "skipped": None})
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "GET /items"
    assert rec["kind"] == "server"
    assert rec["service"] == "test"
    assert rec["parent_id"] is None
    # None values are left out, as the SDK leaves them.
    assert rec["attributes"] == {
        "http.route": "/items",
        "http.response.status_code": 200,
        "a": [1, 2],
    }
    assert rec["scope"] == {"name": "tests.otel", "version": "1.2.3"}
    assert isinstance(otel, trace.Tracer)


def test_get_span_context_is_a_real_span_context(otel):
    with otel.start_as_current_span("s") as span:
        ctx = span.get_span_context()
        assert isinstance(ctx, trace.SpanContext)
        assert ctx.is_valid and not ctx.is_remote
        assert format(ctx.trace_id, "032x") == span.trace_id
        assert format(ctx.span_id, "016x") == span.span_id
        assert isinstance(ctx.trace_flags, trace.TraceFlags) and ctx.trace_flags.sampled
        assert isinstance(ctx.trace_state, trace.TraceState)
        assert span.get_span_context() is ctx  # made once


def test_tracers_are_cached_per_scope(provider):
    assert provider.get_tracer("a", "1") is provider.get_tracer("a", "1")
    assert provider.get_tracer("a", "1") is not provider.get_tracer("a", "2")


def test_provider_takes_only_a_ferrotrace_tracer():
    with pytest.raises(TypeError, match="ferrotrace Tracer"):
        TracerProvider(tracer="nope")  # type: ignore[arg-type]


def test_provider_without_tracer_follows_the_global_one(global_tracer, global_dir):
    otel = TracerProvider().get_tracer("tests.global")
    with otel.start_as_current_span("via-global"):
        pass
    [rec] = flushed_spans(global_tracer, global_dir)
    assert rec["name"] == "via-global" and rec["service"] == "global"


# --------------------------------------------------------------------------
# One current span for both APIs
# --------------------------------------------------------------------------


def test_one_current_span_both_ways(tracer, out_dir, otel):
    with otel.start_as_current_span("otel-root") as root:
        assert trace.get_current_span() is root
        assert ft.current_span() is root
        with tracer.start_span("native") as native:
            assert trace.get_current_span() is native
            assert ft.current_span() is native
            with otel.start_as_current_span("otel-leaf") as leaf:
                assert ft.current_span() is leaf
            assert trace.get_current_span() is native
        assert ft.current_span() is root
    assert ft.current_span() is None
    assert trace.get_current_span() is trace.INVALID_SPAN
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["native"]["parent_id"] == recs["otel-root"]["span_id"]
    assert recs["otel-leaf"]["parent_id"] == recs["native"]["span_id"]
    assert len({r["trace_id"] for r in recs.values()}) == 1


def test_start_span_is_not_made_current(otel):
    with otel.start_span("detached") as span:
        assert trace.get_current_span() is not span
        assert ft.current_span() is None
    assert span.is_finished


def test_propagate_inject_writes_ferrotrace_ids(tracer):
    with tracer.start_span("native") as native:
        headers: dict[str, str] = {}
        propagate.inject(headers)
    assert headers["traceparent"] == f"00-{native.trace_id}-{native.span_id}-03"


def test_other_context_keys_survive_ferrotrace_spans(tracer, otel):
    token = context.attach(baggage.set_baggage("user", "42"))
    try:
        suppressed = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
        with tracer.start_span("native"), otel.start_as_current_span("api"):
            assert baggage.get_baggage("user") == "42"
            assert context.get_value(context._SUPPRESS_INSTRUMENTATION_KEY) is True
        context.detach(suppressed)
        headers: dict[str, str] = {}
        with tracer.start_span("native"):
            propagate.inject(headers)
        assert headers["baggage"] == "user=42"
        assert baggage.get_baggage("user") == "42"
    finally:
        context.detach(token)
    assert baggage.get_baggage("user") is None


def test_tokens_attached_in_one_hook_are_detached_in_another(tracer, out_dir, otel):
    # The shape of sqlalchemy's engine hooks and the asgi middleware: a span
    # is attached by one callback and detached by another.
    state: dict[str, object] = {}

    def before() -> None:
        span = otel.start_span("query")
        state["span"] = span
        state["token"] = context.attach(trace.set_span_in_context(span))

    def after() -> None:
        context.detach(state["token"])  # type: ignore[arg-type]
        state["span"].end()  # type: ignore[attr-defined]

    with tracer.start_span("request") as request:
        before()
        with tracer.start_span("inside"):
            pass
        after()
        assert ft.current_span() is request
        with tracer.start_span("after-hooks"):
            pass
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["inside"]["parent_id"] == recs["query"]["span_id"]
    assert recs["query"]["parent_id"] == recs["request"]["span_id"]
    assert recs["after-hooks"]["parent_id"] == recs["request"]["span_id"]


def test_detach_undoes_a_ferrotrace_activation_and_the_reverse(tracer):
    outer = tracer.start_span("outer")
    token = ft._core._set_current(outer)
    otel_token = context.attach(context.set_value("k", "v"))
    assert ft.current_span() is outer and context.get_value("k") == "v"
    context.detach(otel_token)
    assert ft.current_span() is outer and context.get_value("k") is None
    context.detach(token)  # a ferrotrace token is an OpenTelemetry token
    assert ft.current_span() is None
    outer.finish()


def test_use_span_with_our_spans(tracer, out_dir, otel):
    span = otel.start_span("used")
    native = tracer.start_span("native-used")
    with pytest.raises(KeyError):
        with trace.use_span(span, end_on_exit=True):
            assert ft.current_span() is span
            with trace.use_span(native, end_on_exit=True):
                assert ft.current_span() is native
            raise KeyError("k")
    assert ft.current_span() is None
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["native-used"]["parent_id"] is None  # started before use_span
    used = recs["used"]
    assert used["status"] == "error"
    assert used["attributes"]["status_description"] == "KeyError: 'k'"
    assert used["attributes"]["error.type"] == "KeyError"
    assert [e["name"] for e in used["events"]] == ["exception"]


def test_explicit_context_names_the_parent(tracer, out_dir, otel):
    with tracer.start_span("current"):
        empty = otel.start_span("empty-context", context=context.Context())
        empty.end()
        invalid = otel.start_span(
            "invalid-span", context=trace.set_span_in_context(trace.INVALID_SPAN)
        )
        invalid.end()
    with otel.start_as_current_span("elsewhere") as elsewhere:
        pass
    named = otel.start_span("named", context=trace.set_span_in_context(elsewhere))
    named.end()
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["empty-context"]["parent_id"] is None
    assert recs["invalid-span"]["parent_id"] is None
    assert recs["empty-context"]["trace_id"] != recs["current"]["trace_id"]
    assert recs["named"]["parent_id"] == recs["elsewhere"]["span_id"]
    assert recs["named"]["trace_id"] == recs["elsewhere"]["trace_id"]


def test_remote_parent_from_extracted_context(tracer, out_dir, otel):
    with otel.start_as_current_span(
        "handle", context=remote_context(tracestate="vendor=v1"), kind=SpanKind.SERVER
    ) as span:
        assert span.get_span_context().trace_state.to_header() == "vendor=v1"
        out: dict[str, str] = {}
        propagate.inject(out)
    # While the extracted context is current, native spans continue it too.
    token = context.attach(remote_context())
    with tracer.start_span("native-server"):
        pass
    context.detach(token)
    recs = by_name(flushed_spans(tracer, out_dir))
    for name in ("handle", "native-server"):
        assert recs[name]["trace_id"] == TRACE
        assert recs[name]["parent_id"] == SPAN
        assert recs[name]["remote_parent"] is True
    assert out["traceparent"] == f"00-{TRACE}-{recs['handle']['span_id']}-01"
    assert out["tracestate"] == "vendor=v1"


def test_unsampled_remote_parent_is_honoured(tracer, out_dir, otel):
    with otel.start_as_current_span("handle", context=remote_context(sampled=False)) as span:
        assert not span.is_recording()
        assert not span.get_span_context().trace_flags.sampled
        out: dict[str, str] = {}
        propagate.inject(out)
    assert out["traceparent"].endswith("-00")
    assert flushed_spans(tracer, out_dir) == []
    assert tracer.metrics()["spans_finished"] == 1


# --------------------------------------------------------------------------
# Span API
# --------------------------------------------------------------------------


def test_escaping_exception_is_recorded_and_fails_the_span(tracer, out_dir, otel):
    error = ValueError("bad input")
    with pytest.raises(ValueError) as caught:
        with otel.start_as_current_span("fails"):
            raise error
    assert caught.value is error
    assert ft.current_span() is None
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["attributes"]["status_description"] == "ValueError: bad input"
    assert rec["attributes"]["error.type"] == "ValueError"
    assert rec["error"]["type"] == "ValueError"
    assert rec["error"]["message"] == "bad input"
    assert "raise error" in rec["error"]["stack"]
    [event] = rec["events"]
    assert event["name"] == "exception"
    attrs = event["attributes"]
    assert attrs["exception.type"] == "ValueError"
    assert attrs["exception.message"] == "bad input"
    assert "raise error" in attrs["exception.stacktrace"]
    assert attrs["exception.escaped"] == "True"


def test_exception_options_of_start_as_current_span(tracer, out_dir, otel):
    with pytest.raises(RuntimeError):
        with otel.start_as_current_span("not-recorded", record_exception=False):
            raise RuntimeError("x")
    with pytest.raises(RuntimeError):
        with otel.start_as_current_span("status-kept", set_status_on_exception=False):
            raise RuntimeError("y")

    class Stop(BaseException):
        pass

    # Only an Exception fails the span (use_span's rule): not BaseException.
    with pytest.raises(Stop):
        with otel.start_as_current_span("base-exception"):
            raise Stop()
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["not-recorded"]["status"] == "error"
    assert recs["not-recorded"]["events"] == [] and recs["not-recorded"]["error"] is None
    assert recs["not-recorded"]["attributes"]["error.type"] == "RuntimeError"
    assert recs["status-kept"]["status"] == "ok"
    assert [e["name"] for e in recs["status-kept"]["events"]] == ["exception"]
    assert recs["base-exception"]["status"] == "ok" and recs["base-exception"]["events"] == []


def test_with_start_span_records_the_exception_like_the_sdk(tracer, out_dir, otel):
    with pytest.raises(KeyError):
        with otel.start_span("block") as span:
            raise KeyError("missing")
    assert span.is_finished
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "KeyError"
    assert rec["attributes"]["status_description"] == "KeyError: 'missing'"


def test_record_exception_does_not_fail_the_span(tracer, out_dir, otel):
    with otel.start_as_current_span("handled") as span:
        try:
            raise TimeoutError("retrying")
        except TimeoutError as exc:
            span.record_exception(exc, attributes={"attempt": 1}, timestamp=1_700_000_000 * 10**9)
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"
    assert rec["error"]["type"] == "TimeoutError"
    [event] = rec["events"]
    assert event["ts_ns"] == 1_700_000_000 * 10**9
    assert event["attributes"]["attempt"] == 1
    assert event["attributes"]["exception.escaped"] == "False"


def test_set_status_follows_the_specification(tracer, out_dir, otel):
    with otel.start_as_current_span("ok-is-final") as span:
        span.set_status(StatusCode.OK)
        span.set_status(StatusCode.ERROR, "too late")
    with otel.start_as_current_span("unset-ignored") as span:
        span.set_status(Status(StatusCode.ERROR, "broken"))
        span.set_status(Status(StatusCode.UNSET))
    with otel.start_as_current_span("code-and-description") as span:
        span.set_status(StatusCode.ERROR, "db down")
        assert span.status == "error"
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["ok-is-final"]["status"] == "ok"
    assert "status_description" not in recs["ok-is-final"]["attributes"]
    assert recs["unset-ignored"]["status"] == "error"
    assert recs["unset-ignored"]["attributes"]["status_description"] == "broken"
    assert recs["code-and-description"]["attributes"]["status_description"] == "db down"


def test_links_events_update_name_and_times(tracer, out_dir, otel):
    linked = trace.SpanContext(
        int(TRACE, 16),
        int(SPAN, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
        trace_state=trace.TraceState([("k", "v")]),
    )
    with tracer.start_span("native-target") as target:
        pass
    start = 1_700_000_000_000_000_000
    span = otel.start_span(
        "batch",
        links=[Link(linked, {"messaging.message.id": "m1"}), Link(trace.INVALID_SPAN_CONTEXT)],
        start_time=start,
    )
    span.add_link(target.get_span_context(), {"why": "native"})
    span.add_link(target)  # a ferrotrace Span works too
    span.add_event("received", {"count": 3}, start + 1_000)
    span.add_event("no timestamp")
    span.update_name("batch process")
    span.end(end_time=start + 5_000_000)
    recs = by_name(flushed_spans(tracer, out_dir))
    rec = recs["batch process"]
    assert rec["start_ns"] == start and rec["end_ns"] == start + 5_000_000
    assert rec["duration_ms"] == 5.0
    assert rec["links"] == [
        {
            "trace_id": TRACE,
            "span_id": SPAN,
            "attributes": {"messaging.message.id": "m1"},
            "tracestate": "k=v",
        },
        {"trace_id": target.trace_id, "span_id": target.span_id, "attributes": {"why": "native"}},
        {"trace_id": target.trace_id, "span_id": target.span_id, "attributes": {}},
    ]
    assert [(e["name"], e["attributes"]) for e in rec["events"]] == [
        ("received", {"count": 3}),
        ("no timestamp", {}),
    ]
    assert rec["events"][0]["ts_ns"] == start + 1_000


def test_api_misuse_is_a_type_error(tracer, otel):
    class Looping:
        @property
        def status_code(self):
            return self

    with otel.start_as_current_span("s") as span:
        with pytest.raises(TypeError, match="SpanContext"):
            span.add_link("not a context")
        with pytest.raises(TypeError, match="SpanContext"):
            span.add_link(type("Half", (), {"is_valid": True})())
        with pytest.raises(TypeError, match="Status"):
            span.set_status(Looping())
    with pytest.raises(TypeError, match="Link"):
        otel.start_span("bad-links", links=[object()])
    with pytest.raises(TypeError, match="Link"):
        otel.start_span("bad-links", links=3)
    with pytest.raises(TypeError, match="Context"):
        otel.start_span("bad-context", context=42)
    with pytest.raises(TypeError, match="str"):
        otel.start_span(42)
    assert ft.current_span() is None
    # Refused calls leave no span open.
    metrics = tracer.metrics()
    assert metrics["spans_created"] == metrics["spans_finished"] == 1


def test_unsampled_spans_record_nothing_but_propagate(make_tracer, tmp_path):
    out = tmp_path / "unsampled"
    tracer = make_tracer(out, sample_rate=0.0)
    otel = TracerProvider(tracer).get_tracer("tests.unsampled")
    with otel.start_as_current_span("dropped", attributes={"k": 1}) as span:
        assert not span.is_recording()
        span.set_attribute("x", 1)
        span.add_event("e")
        span.record_exception(ValueError("v"))
        ctx = span.get_span_context()
        assert ctx.is_valid and not ctx.trace_flags.sampled
        headers: dict[str, str] = {}
        propagate.inject(headers)
        assert headers["traceparent"].endswith("-02")  # random trace id, not sampled
        with otel.start_as_current_span("child") as child:
            assert child.trace_id == span.trace_id and not child.is_recording()
    assert tracer.flush(timeout=10.0)
    assert not list(out.glob("spans*.jsonl")) or flushed_spans(tracer, out) == []
    assert tracer.metrics()["spans_finished"] == 2


def test_tail_rules_keep_failed_api_traces(make_tracer, tmp_path):
    out = tmp_path / "tail"
    tracer = make_tracer(out, sample_rate=0.0, keep_errors=True)
    otel = TracerProvider(tracer).get_tracer("tests.tail")
    with otel.start_as_current_span("fine"):
        with tracer.start_span("fine-child"):
            pass
    with pytest.raises(ValueError):
        with otel.start_as_current_span("failing") as span:
            # Head-sampled out but held for the tail decision: recorded, and
            # propagated as not sampled.
            assert span.is_recording() and not span.get_span_context().trace_flags.sampled
            with tracer.start_span("failing-child"):
                pass
            raise ValueError("kept")
    names = sorted(s["name"] for s in flushed_spans(tracer, out))
    assert names == ["failing", "failing-child"]


def test_start_as_current_span_decorates_sync_and_async_functions(tracer, out_dir, otel):
    @otel.start_as_current_span("sync-op", attributes={"k": "v"})
    def work(x: int) -> int:
        with tracer.start_span("inside-sync"):
            return x + 1

    @otel.start_as_current_span("async-op")
    async def awork(x: int) -> int:
        await asyncio.sleep(0)
        with tracer.start_span("inside-async"):
            await asyncio.sleep(0)
        return x * 2

    assert work.__name__ == "work"
    assert work(1) == 2 and work(2) == 3
    assert asyncio.run(awork(4)) == 8
    spans = flushed_spans(tracer, out_dir)
    sync_ops = [s for s in spans if s["name"] == "sync-op"]
    assert len(sync_ops) == 2 and len({s["trace_id"] for s in sync_ops}) == 2
    assert all(s["attributes"] == {"k": "v"} for s in sync_ops)
    inner = [s for s in spans if s["name"] == "inside-sync"]
    assert {s["parent_id"] for s in inner} == {s["span_id"] for s in sync_ops}
    (aop,) = [s for s in spans if s["name"] == "async-op"]
    (ainner,) = [s for s in spans if s["name"] == "inside-async"]
    assert ainner["parent_id"] == aop["span_id"]
    # The async span ends when the coroutine does, not when it is created.
    assert aop["end_ns"] >= ainner["end_ns"]


def test_a_context_manager_is_entered_once(otel):
    cm = otel.start_as_current_span("once")
    with cm:
        with pytest.raises(RuntimeError, match="already entered"):
            cm.__enter__()


def test_end_on_exit_false_leaves_the_span_open(tracer, out_dir, otel):
    with otel.start_as_current_span("open", end_on_exit=False) as span:
        pass
    assert not span.is_finished and ft.current_span() is None
    span.end()
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "open"


# --------------------------------------------------------------------------
# Mixed traces across threads, tasks and async generators
# --------------------------------------------------------------------------


def test_mixed_trace_across_asyncio_tasks_threads_and_async_generators(tracer, out_dir, otel):
    @ft.traced("native-agen", tracer=tracer)
    async def numbers():
        for i in range(2):
            with otel.start_as_current_span(f"agen-step-{i}"):
                await asyncio.sleep(0)
            yield i

    async def task(n: int) -> None:
        with otel.start_as_current_span(f"task-{n}"):
            await asyncio.sleep(0)
            with tracer.start_span(f"task-{n}-native"):
                await asyncio.sleep(0)

    def in_thread() -> None:
        with otel.start_as_current_span("thread-otel"):
            with tracer.start_span("thread-native"):
                pass

    async def main() -> None:
        with otel.start_as_current_span("root"):
            await asyncio.gather(task(1), task(2))
            async for _ in numbers():
                # The generator's span is not current between its steps.
                with tracer.start_span("consumer"):
                    pass
            ctx = contextvars.copy_context()
            with ThreadPoolExecutor(1) as pool:
                pool.submit(ctx.run, in_thread).result()
            t = threading.Thread(target=contextvars.copy_context().run, args=(in_thread,))
            t.start()
            t.join()

    asyncio.run(main())
    spans = flushed_spans(tracer, out_dir)
    assert len({s["trace_id"] for s in spans}) == 1
    ids = {s["span_id"]: s for s in spans}
    one = {s["name"]: s for s in spans}

    def parent(name: str) -> str:
        return ids[one[name]["parent_id"]]["name"]

    assert parent("task-1") == parent("task-2") == "root"
    assert parent("task-1-native") == "task-1" and parent("task-2-native") == "task-2"
    assert parent("native-agen") == "root"
    assert parent("agen-step-0") == parent("agen-step-1") == "native-agen"
    consumers = [s for s in spans if s["name"] == "consumer"]
    assert len(consumers) == 2 and all(ids[c["parent_id"]]["name"] == "root" for c in consumers)
    threaded = [s for s in spans if s["name"] == "thread-otel"]
    assert len(threaded) == 2 and all(ids[t["parent_id"]]["name"] == "root" for t in threaded)
    assert all(
        ids[s["parent_id"]]["name"] == "thread-otel" for s in spans if s["name"] == "thread-native"
    )


def test_log_correlation_sees_api_spans(otel, caplog):
    ft.instrument_logging()
    with caplog.at_level(logging.INFO, logger="tests.otel"):
        with otel.start_as_current_span("logged") as span:
            logging.getLogger("tests.otel").info("inside")
    [record] = [r for r in caplog.records if r.getMessage() == "inside"]
    assert record.trace_id == span.trace_id and record.span_id == span.span_id


# --------------------------------------------------------------------------
# Processes: import isolation, entry points, coexistence with the SDK
# --------------------------------------------------------------------------


def test_import_ferrotrace_never_imports_opentelemetry(tmp_path):
    run_python(
        """
        import sys
        import ferrotrace as ft
        tracer = ft.Tracer(service_name="plain", output_dir=None)
        with tracer.start_span("s"):
            pass
        ft.instrument_logging()
        assert not [m for m in sys.modules if m.startswith("opentelemetry")], sorted(sys.modules)
        """,
        cwd=tmp_path,
    )


def test_tracer_provider_entry_point(tmp_path):
    from conftest import clean_env, read_spans

    out = tmp_path / "out"
    run_python(
        """
        from opentelemetry import trace
        import ferrotrace.otel
        provider = trace.get_tracer_provider()
        assert isinstance(provider, ferrotrace.otel.TracerProvider), provider
        with trace.get_tracer("entry.point").start_as_current_span("from-entry-point"):
            pass
        """,
        cwd=tmp_path,
        env=clean_env(
            OTEL_PYTHON_TRACER_PROVIDER="ferrotrace",
            FERROTRACE_OUTPUT_DIR=str(out),
            OTEL_SERVICE_NAME="entry",
        ),
    )
    [rec] = read_spans(out)
    assert rec["name"] == "from-entry-point" and rec["service"] == "entry"
    assert rec["scope"] == {"name": "entry.point"}


def test_coexistence_with_an_sdk_provider_already_set(tmp_path):
    pytest.importorskip("opentelemetry.sdk.trace")
    from conftest import clean_env, read_spans

    out = tmp_path / "out"
    proc = run_python(
        """
        import logging
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider as SdkProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import ferrotrace as ft
        from ferrotrace.otel import TracerProvider, configure_opentelemetry

        logging.basicConfig(level=logging.WARNING)
        exporter = InMemorySpanExporter()
        sdk = SdkProvider()
        sdk.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(sdk)

        ours = TracerProvider()              # says so clearly
        assert configure_opentelemetry() is None
        assert trace.get_tracer_provider() is sdk  # nothing replaced

        with trace.get_tracer("instrumentation").start_as_current_span("sdk-span") as s:
            with ours.get_tracer("ours").start_as_current_span("ferrotrace-span") as f:
                assert trace.get_current_span() is f
            with ft.get_tracer().start_span("native") as n:
                pass
        assert [x.name for x in exporter.get_finished_spans()] == ["sdk-span"]
        sdk_ctx = s.get_span_context()
        assert f.trace_id == format(sdk_ctx.trace_id, "032x")
        assert n.parent_id == format(sdk_ctx.span_id, "016x")
        print("ok")
        """,
        cwd=tmp_path,
        env=clean_env(FERROTRACE_OUTPUT_DIR=str(out), OTEL_SERVICE_NAME="coexist"),
    )
    assert "ok" in proc.stdout
    assert "already the global one" in proc.stderr
    assert "OTEL_PYTHON_CONFIGURATOR=ferrotrace" in proc.stderr
    names = sorted(r["name"] for r in read_spans(out))
    assert names == ["ferrotrace-span", "native"]
    assert all(r["remote_parent"] for r in read_spans(out))


def test_configurator_takes_the_service_name_from_resource_attributes(tmp_path):
    from conftest import clean_env

    proc = run_python(
        """
        from opentelemetry import trace
        import ferrotrace as ft
        from ferrotrace.otel import Configurator, TracerProvider
        Configurator().configure(auto_instrumentation_version="test")
        assert isinstance(trace.get_tracer_provider(), TracerProvider)
        print(ft.get_tracer().service_name)
        """,
        cwd=tmp_path,
        env=clean_env(
            OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.name=from%20resource",
            FERROTRACE_OUTPUT_DIR=str(tmp_path / "out"),
        ),
    )
    assert proc.stdout.strip() == "from resource"


def test_a_custom_runtime_context_is_used_through_its_methods(tmp_path):
    # OTEL_PYTHON_CONTEXT can select another runtime context: the bridge then
    # goes through its attach/get_current/detach instead of the ContextVar.
    proc = run_python(
        """
        import contextvars
        from opentelemetry import baggage, context, trace
        import opentelemetry.context as context_module

        class Runtime(context_module._RuntimeContext):
            def __init__(self):
                self.var = contextvars.ContextVar("custom", default=context.Context())
                self.calls = 0
            def attach(self, ctx):
                self.calls += 1
                return self.var.set(ctx)
            def get_current(self):
                return self.var.get()
            def detach(self, token):
                self.var.reset(token)

        runtime = context_module._RUNTIME_CONTEXT = Runtime()
        import ferrotrace as ft
        from ferrotrace.otel import TracerProvider
        tracer = ft.Tracer(service_name="custom", output_dir=None)
        otel = TracerProvider(tracer).get_tracer("custom")
        token = context.attach(baggage.set_baggage("k", "v"))
        with otel.start_as_current_span("api") as api:
            with tracer.start_span("native") as native:
                assert trace.get_current_span() is native
                assert baggage.get_baggage("k") == "v"
            assert ft.current_span() is api
        context.detach(token)
        assert ft.current_span() is None and baggage.get_baggage("k") is None
        assert native.parent_id == api.span_id
        assert runtime.calls == 3
        print("ok")
        """,
        cwd=tmp_path,
    )
    assert proc.stdout.strip() == "ok"


@pytest.mark.parametrize("flags", ["00", "01", "02", "03"])
def test_the_w3c_random_flag_passes_through_the_bridge(tracer, otel, flags):
    ctx = propagate.extract({"traceparent": f"00-{TRACE}-{SPAN}-{flags}"})
    with otel.start_as_current_span("handle", context=ctx, kind=SpanKind.SERVER) as span:
        assert span.get_span_context().trace_flags == int(flags, 16)
        with tracer.start_span("native") as native:
            assert native.context.trace_flags == int(flags, 16)
        out: dict[str, str] = {}
        propagate.inject(out)
    assert out["traceparent"].endswith(f"-{flags}")
