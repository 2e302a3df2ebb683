"""The active span: nesting, threads, thread pools, asyncio."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import ferrotrace as ft
import pytest
from conftest import by_name, flushed_spans


def test_current_span_nesting_and_restore(tracer):
    assert ft.current_span() is None
    with tracer.start_span("a") as a:
        assert ft.current_span() is a
        with tracer.start_span("b") as b:
            assert ft.current_span() is b
        assert ft.current_span() is a
    assert ft.current_span() is None


def test_current_span_restored_after_exception(tracer):
    with tracer.start_span("outer") as outer:
        with pytest.raises(RuntimeError):
            with tracer.start_span("inner"):
                raise RuntimeError
        assert ft.current_span() is outer
    assert ft.current_span() is None


def test_finish_inside_with_does_not_change_current(tracer):
    with tracer.start_span("outer") as outer:
        s = tracer.start_span("explicit")
        s.finish()
        assert ft.current_span() is outer


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


def test_threads_each_see_their_own_current_span(tracer, out_dir):
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    ids: dict[int, tuple[str, str]] = {}

    def work(i: int) -> None:
        try:
            assert ft.current_span() is None
            with tracer.start_span(f"root{i}") as root:
                barrier.wait(timeout=10)
                assert ft.current_span() is root
                with tracer.start_span(f"child{i}") as child:
                    barrier.wait(timeout=10)
                    assert ft.current_span() is child
                barrier.wait(timeout=10)
                assert ft.current_span() is root
            ids[i] = (root.span_id, root.trace_id)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    recs = by_name(flushed_spans(tracer, out_dir))
    for i in range(n):
        root_id, trace_id = ids[i]
        assert recs[f"root{i}"]["span_id"] == root_id
        assert recs[f"child{i}"]["parent_id"] == root_id
        assert recs[f"child{i}"]["trace_id"] == trace_id
    assert len({recs[f"root{i}"]["trace_id"] for i in range(n)}) == n


def test_plain_thread_pool_starts_a_new_trace(tracer, out_dir):
    def work():
        assert ft.current_span() is None
        with tracer.start_span("task") as s:
            return s.trace_id, s.parent_id

    with ThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_span("outer") as outer:
            trace_id, parent_id = pool.submit(work).result(timeout=30)
    assert parent_id is None
    assert trace_id != outer.trace_id


def test_bind_context_with_plain_executor(tracer, out_dir):
    def work(x, *, y):
        current = ft.current_span()
        with tracer.start_span("task") as s:
            return current, s, x + y

    with ThreadPoolExecutor(max_workers=2) as pool:
        with tracer.start_span("outer") as outer:
            current, task, total = pool.submit(ft.bind_context(work), 1, y=2).result(timeout=30)
    assert total == 3
    assert current is outer
    assert task.parent_id == outer.span_id
    assert task.trace_id == outer.trace_id
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["task"]["parent_id"] == recs["outer"]["span_id"]


def test_bind_context_captures_at_bind_time(tracer):
    with tracer.start_span("binder") as binder:
        bound = ft.bind_context(ft.current_span)
    with tracer.start_span("caller"):
        assert bound() is binder
    assert bound() is binder
    assert ft.current_span() is None


def test_bound_callable_runs_concurrently_in_many_threads(tracer, out_dir):
    barrier = threading.Barrier(4)

    def work(i):
        with tracer.start_span(f"w{i}") as s:
            barrier.wait(timeout=10)
            return s.parent_id

    with tracer.start_span("outer") as outer:
        bound = ft.bind_context(work)
    with ThreadPoolExecutor(max_workers=4) as pool:
        parents = list(pool.map(bound, range(4)))
    assert parents == [outer.span_id] * 4


def test_bind_context_preserves_metadata_and_exceptions():
    def work(a, b=2):
        """Doc."""
        raise ValueError(a)

    bound = ft.bind_context(work)
    assert bound.__name__ == "work"
    assert bound.__doc__ == "Doc."
    with pytest.raises(ValueError) as info:
        bound("x")
    assert info.value.args == ("x",)


def test_context_thread_pool_executor_submit_and_map(tracer, out_dir):
    def work(i):
        with tracer.start_span(f"task{i}") as s:
            return s.parent_id, s.trace_id

    with ft.ContextThreadPoolExecutor(max_workers=2) as pool:
        with tracer.start_span("outer") as outer:
            submitted = pool.submit(work, 0).result(timeout=30)
            mapped = list(pool.map(work, [1, 2, 3]))
        # Tasks submitted outside any span start their own traces.
        after = pool.submit(work, 4).result(timeout=30)
    for parent_id, trace_id in [submitted, *mapped]:
        assert parent_id == outer.span_id
        assert trace_id == outer.trace_id
    assert after[0] is None
    assert after[1] != outer.trace_id
    recs = by_name(flushed_spans(tracer, out_dir))
    assert len(recs) == 6


def test_context_thread_pool_executor_context_is_per_submit(tracer):
    with ft.ContextThreadPoolExecutor(max_workers=1) as pool:
        with tracer.start_span("first") as first:
            f1 = pool.submit(ft.current_span)
        with tracer.start_span("second") as second:
            f2 = pool.submit(ft.current_span)
        assert f1.result(timeout=30) is first
        assert f2.result(timeout=30) is second


def test_span_opened_in_a_thread_is_not_current_in_main(tracer):
    started = threading.Event()
    release = threading.Event()

    def work():
        with tracer.start_span("background"):
            started.set()
            release.wait(timeout=10)

    t = threading.Thread(target=work)
    t.start()
    assert started.wait(timeout=10)
    try:
        assert ft.current_span() is None
    finally:
        release.set()
        t.join(timeout=30)


# --------------------------------------------------------------------------
# asyncio
# --------------------------------------------------------------------------


def test_asyncio_tasks_never_cross_link(tracer, out_dir):
    n = 300

    async def task(i: int):
        with tracer.start_span(f"root{i}") as root:
            await asyncio.sleep(0)
            assert ft.current_span() is root
            with tracer.start_span(f"child{i}") as child:
                await asyncio.sleep(0)
                assert ft.current_span() is child
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            assert ft.current_span() is root
        return root.span_id, root.trace_id

    async def main():
        return await asyncio.gather(*(task(i) for i in range(n)))

    results = asyncio.run(main())
    recs = by_name(flushed_spans(tracer, out_dir))
    assert len(recs) == 2 * n
    for i, (root_id, trace_id) in enumerate(results):
        root, child = recs[f"root{i}"], recs[f"child{i}"]
        assert root["span_id"] == root_id
        assert root["parent_id"] is None
        assert root["trace_id"] == trace_id
        assert child["parent_id"] == root_id
        assert child["trace_id"] == trace_id
    assert len({r["trace_id"] for r in recs.values()}) == n


def test_asyncio_tasks_inherit_the_creating_span(tracer, out_dir):
    async def child(i):
        await asyncio.sleep(0)
        with tracer.start_span(f"child{i}") as s:
            await asyncio.sleep(0)
        return s

    async def main():
        with tracer.start_span("parent") as parent:
            tasks = [asyncio.create_task(child(i)) for i in range(10)]
            children = await asyncio.gather(*tasks)
            assert ft.current_span() is parent
        return parent, children

    parent, children = asyncio.run(main())
    for c in children:
        assert c.parent_id == parent.span_id
        assert c.trace_id == parent.trace_id


def test_run_in_executor_with_bind_context(tracer, out_dir):
    def blocking(x):
        with tracer.start_span("blocking") as s:
            return s, x * 2

    async def main():
        loop = asyncio.get_running_loop()
        with tracer.start_span("handler") as handler:
            bound_result = await loop.run_in_executor(None, ft.bind_context(blocking), 21)
            unbound_result = await loop.run_in_executor(None, blocking, 1)
        return handler, bound_result, unbound_result

    handler, (bound_span, value), (unbound_span, _) = asyncio.run(main())
    assert value == 42
    assert bound_span.parent_id == handler.span_id
    assert bound_span.trace_id == handler.trace_id
    assert unbound_span.parent_id is None
    assert unbound_span.trace_id != handler.trace_id


def test_asyncio_to_thread_carries_context(tracer):
    async def main():
        with tracer.start_span("handler") as handler:
            seen = await asyncio.to_thread(ft.current_span)
        return handler, seen

    handler, seen = asyncio.run(main())
    assert seen is handler


def test_asyncio_exception_in_span_propagates(tracer, out_dir):
    exc = LookupError("async")

    async def main():
        with tracer.start_span("a"):
            await asyncio.sleep(0)
            raise exc

    with pytest.raises(LookupError) as info:
        asyncio.run(main())
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "LookupError"
