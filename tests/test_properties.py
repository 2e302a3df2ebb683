"""Property tests: random programs of span operations, interleaved across
threads and asyncio tasks, never raise into traced code and lose no span.

Each example is a tracer (random sampling, tail rule, buffer and limits)
and a program: per worker (a thread, or an asyncio task), a list of
operations (start a child span, end it, tag, log, error, finish a span
another worker may hold, call a traced function that returns or raises).
After the workers join and a flush, the counters must balance exactly:

    spans_created == spans_finished
    spans_finished == spans_written + spans_dropped + spans_unsampled

and every written line must be a valid span of this program.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
REQUIRED = {
    "trace_id": str,
    "span_id": str,
    "parent_id": (str, type(None)),
    "name": str,
    "service": str,
    "kind": str,
    "start_ns": int,
    "end_ns": int,
    "duration_ms": (int, float),
    "status": str,
    "attributes": dict,
    "events": list,
    "error": (dict, type(None)),
}


class BadStr:
    """A tag value whose str() and repr() raise: conversion must not."""

    def __str__(self) -> str:
        raise RuntimeError("no str for you")

    __repr__ = __str__


class Failure(Exception):
    pass


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\x00", "line\nbreak", "é" * 50]),
    st.binary(max_size=10),
    st.lists(st.integers() | st.text(max_size=5), max_size=4),
    st.builds(BadStr),
)
keys = st.one_of(st.text(max_size=12), st.integers(), st.sampled_from(["", "a" * 300]))
names = st.text(max_size=16)
kinds = st.sampled_from([None, "server", "client", "producer", "consumer", "internal"])

operation = st.one_of(
    st.tuples(st.just("start"), names, kinds),
    st.tuples(st.just("end")),
    st.tuples(st.just("tag"), keys, values),
    st.tuples(st.just("log"), names, st.dictionaries(st.text(max_size=8), values, max_size=3)),
    st.tuples(st.just("error"), st.booleans()),
    st.tuples(st.just("status"), st.sampled_from([200, 404, 500, "ok", "error", -1])),
    st.tuples(st.just("detached"), names),
    st.tuples(st.just("finish"), st.integers(0, 50)),
    st.tuples(st.just("tag_other"), st.integers(0, 50), keys, values),
    st.tuples(st.just("traced"), st.booleans()),
)
programs = st.lists(st.lists(operation, max_size=25), min_size=1, max_size=4)
tracer_options = st.fixed_dictionaries(
    {
        "sample_rate": st.sampled_from([1.0, 0.0, 0.5]),
        "keep_errors": st.booleans(),
        "buffer_size": st.sampled_from([4, 65536]),
        "max_attributes": st.sampled_from([2, 128]),
        "max_events": st.sampled_from([1, 128]),
        "max_attribute_length": st.sampled_from([3, 4096]),
    }
)


class Run:
    """One example's shared state: the tracer and every span started."""

    def __init__(self, tracer: ft.Tracer) -> None:
        self.tracer = tracer
        self.spans: list[Any] = []
        self.lock = threading.Lock()
        self.problems: list[str] = []

        @tracer.traced
        def work(fail: bool, token: object) -> object:
            if fail:
                raise Failure(token)
            return token

        @tracer.traced
        async def awork(fail: bool, token: object) -> object:
            await asyncio.sleep(0)
            if fail:
                raise Failure(token)
            return token

        self.work = work
        self.awork = awork

    def add(self, span: Any) -> None:
        with self.lock:
            self.spans.append(span)

    def pick(self, i: int) -> Any | None:
        with self.lock:
            return self.spans[i % len(self.spans)] if self.spans else None

    def check_traced_result(self, fail: bool, call: Any) -> None:
        token = object()
        try:
            result = call(fail, token)
        except Failure as e:
            if not fail or e.args != (token,):
                self.problems.append(f"traced call raised {e!r} (fail={fail})")
        else:
            if fail or result is not token:
                self.problems.append(f"traced call returned {result!r} (fail={fail})")

    def step(self, op: tuple[Any, ...], current: Any | None) -> None:
        """One operation other than start/end (and traced calls in tasks)."""
        kind = op[0]
        if kind == "tag" and current is not None:
            current.set_tag(op[1], op[2])
        elif kind == "log" and current is not None:
            current.log(op[1], **op[2])
        elif kind == "error" and current is not None:
            error = Failure("boom") if op[1] else "a message"
            current.set_error(error)
        elif kind == "status" and current is not None:
            current.set_status(op[1])
        elif kind == "detached":
            self.add(self.tracer.start_span(op[1]))
        elif kind == "finish":
            span = self.pick(op[1])
            if span is not None:
                span.finish()
        elif kind == "tag_other":
            span = self.pick(op[1])
            if span is not None:
                span.set_tag(op[2], op[3])


def run_thread(run: Run, ops: list[tuple[Any, ...]], barrier: threading.Barrier) -> None:
    def interpret(i: int, current: Any | None) -> int:
        while i < len(ops):
            op = ops[i]
            i += 1
            if op[0] == "start":
                with run.tracer.start_span(op[1], kind=op[2]) as span:
                    run.add(span)
                    i = interpret(i, span)
            elif op[0] == "end":
                return i
            elif op[0] == "traced":
                run.check_traced_result(op[1], run.work)
            else:
                run.step(op, current)
        return i

    try:
        barrier.wait(timeout=10)
        interpret(0, None)
    except BaseException as e:  # noqa: BLE001 - any escape is the failure we look for
        run.problems.append(f"thread raised {e!r}")


async def run_task(run: Run, ops: list[tuple[Any, ...]]) -> None:
    async def interpret(i: int, current: Any | None) -> int:
        while i < len(ops):
            op = ops[i]
            i += 1
            await asyncio.sleep(0)
            if op[0] == "start":
                with run.tracer.start_span(op[1], kind=op[2]) as span:
                    if ft.current_span() is not span:
                        run.problems.append("a task's span is not its current span")
                    run.add(span)
                    i = await interpret(i, span)
                if ft.current_span() is not current:
                    run.problems.append("the current span was not restored")
            elif op[0] == "end":
                return i
            elif op[0] == "traced":
                token = object()
                try:
                    result = await run.awork(op[1], token)
                except Failure as e:
                    if not op[1] or e.args != (token,):
                        run.problems.append(f"async traced call raised {e!r}")
                else:
                    if op[1] or result is not token:
                        run.problems.append(f"async traced call returned {result!r}")
            else:
                run.step(op, current)
        return i

    try:
        await interpret(0, None)
    except BaseException as e:  # noqa: BLE001
        run.problems.append(f"task raised {e!r}")


def check_accounting(run: Run, out: Path) -> None:
    tracer = run.tracer
    for span in run.spans:
        span.finish()  # the detached spans nobody finished; others: no-op
    flushed = tracer.flush(timeout=20.0)
    m = tracer.metrics()
    created = len({s.span_id for s in run.spans})
    assert m["spans_buffered"] == 0, m
    assert m["spans_created"] == m["spans_finished"], m
    # Traced calls make spans too (not in run.spans): at least ours.
    assert m["spans_finished"] >= created, m
    assert m["spans_finished"] == m["spans_written"] + m["spans_dropped"] + m["spans_unsampled"], m
    # With nothing lost, a flush has no reason to fail. (Drops at a full
    # buffer before the flush began do not make it return False: "lost
    # meanwhile" is during the flush.)
    assert flushed or m["spans_dropped"] > 0, m

    # Lines end at "\n" only: a name may hold U+0085 or U+2028 raw (valid
    # JSON), which str.splitlines() would also split at.
    lines = [
        line
        for f in sorted(out.glob("spans-*.jsonl"))
        for line in f.read_text(encoding="utf-8").split("\n")
        if line
    ]
    assert len(lines) == m["spans_written"], m
    seen: set[str] = set()
    ours = {s.span_id: s for s in run.spans}
    for line in lines:
        record = json.loads(line)
        for key, kind in REQUIRED.items():
            assert isinstance(record[key], kind), (key, line)
        assert HEX32.fullmatch(record["trace_id"]) and HEX16.fullmatch(record["span_id"]), line
        assert record["service"] == "props"
        assert record["end_ns"] >= record["start_ns"], line
        assert math.isfinite(record["duration_ms"]) and record["duration_ms"] >= 0, line
        assert record["status"] in ("ok", "error"), line
        assert record["span_id"] not in seen, "a span written twice"
        seen.add(record["span_id"])
        span = ours.get(record["span_id"])
        if span is not None:
            assert span.trace_id == record["trace_id"]
            assert span.parent_id == record["parent_id"]


@pytest.mark.parametrize("workers", ["threads", "tasks"])
@settings(
    # A few seconds in the suite; PROPERTY_EXAMPLES=2000 for a longer hunt.
    max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(program=programs, options=tracer_options)
def test_random_programs_never_raise_and_account_for_every_span(
    tmp_path_factory, workers, program, options
):
    out = tmp_path_factory.mktemp("props")
    tracer = ft.Tracer("props", out, flush_interval_ms=5, **options)
    run = Run(tracer)
    try:
        if workers == "threads":
            barrier = threading.Barrier(len(program))
            threads = [
                threading.Thread(target=run_thread, args=(run, ops, barrier)) for ops in program
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert not any(t.is_alive() for t in threads), "a worker hung"
        else:

            async def main() -> None:
                await asyncio.gather(*(run_task(run, ops) for ops in program))

            asyncio.run(main())
        assert run.problems == []
        check_accounting(run, out)
    finally:
        tracer.shutdown(timeout=10.0)
        for f in out.iterdir():
            f.unlink()
        out.rmdir()


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=30),
        st.from_regex(r"\s*[0-9]{0,400}(\.[0-9]*)?\s*(ns|us|µs|ms|s|m|min|h|S|MS|x)?\s*"),
    )
)
def test_cli_durations_parse_to_milliseconds_or_a_usage_error(text):
    """The CLI's `--min-duration`/`--max-duration` type: a clear argparse
    error or a finite, non-negative number of milliseconds; never a crash."""
    from ferrotrace.cli import parse_duration

    try:
        ms = parse_duration(text)
    except argparse.ArgumentTypeError as e:
        assert "invalid duration" in str(e)
    else:
        assert isinstance(ms, float) and math.isfinite(ms) and ms >= 0
