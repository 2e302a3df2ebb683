"""@ft.traced and @tracer.traced on every kind of callable."""

from __future__ import annotations

import asyncio
import inspect
import pickle

import ferrotrace as ft
import pytest
from conftest import by_name, flushed_spans, read_spans


# Decorated at import time, before any test configures the global tracer.
@ft.traced
def module_level(a, b=2, *args, c, **kwargs):
    """Module-level docstring."""
    return (a, b, args, c, kwargs)


@ft.traced("named_module_level")
def named_module_level(x):
    return x + 1


@ft.traced()
async def module_coroutine(x):
    return x


def test_pickle_round_trip_returns_same_wrapper():
    for fn in (module_level, named_module_level, module_coroutine):
        assert pickle.loads(pickle.dumps(fn)) is fn


# --------------------------------------------------------------------------
# Decorator forms
# --------------------------------------------------------------------------


def test_decorated_before_configure_uses_tracer_at_call_time(tmp_path):
    first = ft.configure(service_name="first", output_dir=tmp_path / "first")
    try:
        assert module_level(1, c=3) == (1, 2, (), 3, {})
        second = ft.configure(service_name="second", output_dir=tmp_path / "second")
        try:
            assert named_module_level(1) == 2
            assert second.flush()
        finally:
            second.shutdown()
        assert first.flush()
    finally:
        first.shutdown()
        ft.configure(service_name="idle", output_dir=None)
    [a] = read_spans(tmp_path / "first")
    [b] = read_spans(tmp_path / "second")
    assert a["name"] == "module_level"
    assert a["service"] == "first"
    assert b["name"] == "named_module_level"
    assert b["service"] == "second"


def test_global_decorator_forms(global_tracer, global_dir):
    @ft.traced
    def bare():
        return "bare"

    @ft.traced()
    def called():
        return "called"

    @ft.traced("custom-name")
    def named():
        return "named"

    @ft.traced("client-call", kind="client", tags={"peer.service": "db", "n": 1})
    def with_options():
        return "opts"

    assert bare() == "bare"
    assert called() == "called"
    assert named() == "named"
    assert with_options() == "opts"
    recs = by_name(flushed_spans(global_tracer, global_dir))
    qual = "test_global_decorator_forms.<locals>."
    assert set(recs) == {qual + "bare", qual + "called", "custom-name", "client-call"}
    assert recs["client-call"]["kind"] == "client"
    assert recs["client-call"]["attributes"] == {"peer.service": "db", "n": 1}
    assert recs[qual + "bare"]["kind"] == "internal"
    assert all(r["service"] == "global" for r in recs.values())


def test_get_tracer_returns_configured_tracer(global_tracer):
    assert ft.get_tracer() is global_tracer


def test_tracer_traced_forms(tracer, out_dir):
    @tracer.traced()
    def plain(x):
        return x * 2

    @tracer.traced("explicit")
    def explicit(x):
        return x * 3

    @tracer.traced("srv", kind="server", tags={"k": "v"})
    def srv():
        return None

    assert plain(2) == 4
    assert explicit(2) == 6
    assert srv() is None
    recs = by_name(flushed_spans(tracer, out_dir))
    assert set(recs) == {"test_tracer_traced_forms.<locals>.plain", "explicit", "srv"}
    assert recs["srv"]["kind"] == "server"
    assert recs["srv"]["attributes"] == {"k": "v"}
    assert all(r["service"] == "test" for r in recs.values())


def test_traced_bad_arguments():
    with pytest.raises(TypeError):
        ft.traced(123)
    with pytest.raises(ValueError):

        @ft.traced("x", kind="bogus")
        def f():
            pass


def test_nested_traced_calls_form_a_tree(tracer, out_dir):
    @tracer.traced("leaf")
    def leaf():
        return ft.current_span()

    @tracer.traced("middle")
    def middle():
        return leaf(), ft.current_span()

    @tracer.traced("top")
    def top():
        return middle()

    with tracer.start_span("request") as request:
        leaf_span, middle_span = top()
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["top"]["parent_id"] == request.span_id
    assert recs["middle"]["parent_id"] == recs["top"]["span_id"]
    assert recs["leaf"]["parent_id"] == recs["middle"]["span_id"]
    assert leaf_span.span_id == recs["leaf"]["span_id"]
    assert middle_span.span_id == recs["middle"]["span_id"]
    assert len({r["trace_id"] for r in recs.values()}) == 1


def test_recursion(tracer, out_dir):
    @tracer.traced("fact")
    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    assert fact(5) == 120
    recs = flushed_spans(tracer, out_dir)
    assert len(recs) == 5
    ids = {r["span_id"]: r for r in recs}
    roots = [r for r in recs if r["parent_id"] is None]
    assert len(roots) == 1
    for r in recs:
        if r["parent_id"] is not None:
            assert r["parent_id"] in ids


# --------------------------------------------------------------------------
# Results, exceptions, metadata
# --------------------------------------------------------------------------


def test_arguments_and_return_values_pass_through(tracer):
    sentinel = object()

    @tracer.traced()
    def f(a, b=2, *args, c, **kwargs):
        return a, b, args, c, kwargs, sentinel

    assert f(1, c=3) == (1, 2, (), 3, {}, sentinel)
    assert f(1, 5, 6, 7, c=3, d=4) == (1, 5, (6, 7), 3, {"d": 4}, sentinel)
    assert f(1, c=3)[-1] is sentinel
    with pytest.raises(TypeError):
        f()  # missing arguments: the function's own TypeError


def test_exception_is_the_same_object_and_recorded(tracer, out_dir):
    exc = ValueError("boom")

    @tracer.traced("failing")
    def failing():
        raise exc

    with pytest.raises(ValueError) as info:
        failing()
    assert info.value is exc
    assert info.value.__traceback__ is not None
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "ValueError"
    assert rec["error"]["message"] == "boom"
    assert "boom" in rec["error"]["stack"]
    # The stack is the real traceback (on Python < 3.12 the exception has no
    # __traceback__ yet when the Rust wrapper sees it).
    assert rec["error"]["stack"].startswith("Traceback (most recent call last):")
    assert "in failing" in rec["error"]["stack"]
    assert ft.current_span() is None


def test_metadata_is_preserved(tracer):
    def plain(a: int, b: str = "x", *, c: float = 1.0) -> str:
        """Plain doc."""
        return b

    async def coro(a, b=1):
        """Coro doc."""
        return a

    def gen(n):
        """Gen doc."""
        yield n

    async def agen(n):
        """Agen doc."""
        yield n

    for fn in (plain, coro, gen, agen):
        for decorate in (tracer.traced(), ft.traced, ft.traced("n")):
            w = decorate(fn)
            assert w.__name__ == fn.__name__
            assert w.__qualname__ == fn.__qualname__
            assert w.__doc__ == fn.__doc__
            assert w.__wrapped__ is fn
            assert w.__module__ == fn.__module__
            assert inspect.signature(w) == inspect.signature(fn)
            assert inspect.iscoroutinefunction(w) == inspect.iscoroutinefunction(fn)
            assert inspect.isgeneratorfunction(w) == inspect.isgeneratorfunction(fn)
            assert inspect.isasyncgenfunction(w) == inspect.isasyncgenfunction(fn)
    assert inspect.iscoroutinefunction(tracer.traced()(coro))
    assert inspect.isgeneratorfunction(tracer.traced()(gen))
    assert inspect.isasyncgenfunction(tracer.traced()(agen))
    assert not inspect.iscoroutinefunction(tracer.traced()(plain))


def test_module_level_metadata():
    assert module_level.__name__ == "module_level"
    assert module_level.__doc__ == "Module-level docstring."
    assert str(inspect.signature(module_level)) == "(a, b=2, *args, c, **kwargs)"


# --------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------


def test_methods_classmethods_staticmethods(tracer, out_dir):
    traced = tracer.traced

    class Service:
        factor = 10

        def __init__(self):
            self.base = 1

        @traced()
        def method(self, x):
            return self.base + x

        @traced()
        @classmethod
        def cm_outer(cls, x):
            return cls.factor * x

        @classmethod
        @traced()
        def cm_inner(cls, x):
            return cls.factor + x

        @traced()
        @staticmethod
        def sm_outer(x):
            return -x

        @staticmethod
        @traced()
        def sm_inner(x):
            return x * x

    s = Service()
    assert s.method(2) == 3
    assert Service.cm_outer(2) == 20
    assert s.cm_outer(3) == 30
    assert Service.cm_inner(2) == 12
    assert Service.sm_outer(2) == -2
    assert s.sm_inner(3) == 9
    assert Service.sm_inner(4) == 16
    assert Service.method.__name__ == "method"
    assert inspect.signature(Service.cm_outer) == inspect.signature(lambda x: None)
    recs = flushed_spans(tracer, out_dir)
    names = sorted(r["name"] for r in recs)
    q = "test_methods_classmethods_staticmethods.<locals>.Service."
    assert names == sorted(
        [
            q + "method",
            q + "cm_outer",
            q + "cm_outer",
            q + "cm_inner",
            q + "sm_outer",
            q + "sm_inner",
            q + "sm_inner",
        ]
    )


# --------------------------------------------------------------------------
# Async functions
# --------------------------------------------------------------------------


def test_async_function(tracer, out_dir):
    @tracer.traced("inner")
    async def inner():
        await asyncio.sleep(0)
        return ft.current_span()

    @tracer.traced("outer")
    async def outer(x):
        me = ft.current_span()
        await asyncio.sleep(0)
        seen = await inner()
        assert ft.current_span() is me
        return x, me, seen

    coro = outer(5)
    # Calling does not start the span; awaiting does.
    assert tracer.metrics()["spans_created"] == 0
    x, outer_span, inner_span = asyncio.run(coro)
    assert x == 5
    assert inner_span.parent_id == outer_span.span_id
    recs = by_name(flushed_spans(tracer, out_dir))
    assert recs["outer"]["span_id"] == outer_span.span_id
    assert recs["inner"]["parent_id"] == recs["outer"]["span_id"]


def test_async_function_exception(tracer, out_dir):
    exc = KeyError("async")

    @tracer.traced("afail")
    async def afail():
        await asyncio.sleep(0)
        raise exc

    with pytest.raises(KeyError) as info:
        asyncio.run(afail())
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "KeyError"


def test_async_cancellation_finishes_span(tracer, out_dir):
    started = None

    @tracer.traced("slow")
    async def slow():
        nonlocal started
        started.set()
        await asyncio.sleep(60)

    async def main():
        nonlocal started
        started = asyncio.Event()
        task = asyncio.create_task(slow())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "slow"
    assert tracer.metrics()["active_spans"] == 0


def test_concurrent_traced_coroutines(tracer, out_dir):
    @tracer.traced("leaf")
    async def leaf(i):
        await asyncio.sleep(0)
        return ft.current_span()

    @tracer.traced("branch")
    async def branch(i):
        me = ft.current_span()
        child = await leaf(i)
        return me, child

    async def main():
        return await asyncio.gather(*(branch(i) for i in range(50)))

    for me, child in asyncio.run(main()):
        assert child.parent_id == me.span_id
        assert child.trace_id == me.trace_id
    assert len(flushed_spans(tracer, out_dir)) == 100


# --------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------


def test_generator_span_covers_iteration_and_is_current_only_inside(tracer, out_dir):
    seen_inside = []

    @tracer.traced("gen")
    def gen(n):
        for i in range(n):
            seen_inside.append(ft.current_span())
            with tracer.start_span(f"inside{i}"):
                pass
            yield i
        return "done"

    with tracer.start_span("consumer") as consumer:
        g = gen(3)
        items = []
        for i, item in enumerate(g):
            items.append(item)
            # Between steps the consumer's span is current, not the generator's.
            assert ft.current_span() is consumer
            with tracer.start_span(f"outside{i}"):
                pass
    assert items == [0, 1, 2]
    recs = by_name(flushed_spans(tracer, out_dir))
    gen_rec = recs["gen"]
    assert gen_rec["parent_id"] == consumer.span_id
    assert all(s.span_id == gen_rec["span_id"] for s in seen_inside)
    for i in range(3):
        assert recs[f"inside{i}"]["parent_id"] == gen_rec["span_id"]
        assert recs[f"outside{i}"]["parent_id"] == consumer.span_id
        # The generator span covers the whole iteration.
        assert gen_rec["start_ns"] <= recs[f"outside{i}"]["start_ns"]
        assert recs[f"outside{i}"]["end_ns"] <= gen_rec["end_ns"]
    assert gen_rec["status"] == "ok"


def test_generator_return_value_send_and_yield_from(tracer, out_dir):
    @tracer.traced("echo")
    def echo():
        total = 0
        while True:
            got = yield total
            if got is None:
                return total
            total += got

    def driver():
        result = yield from echo()
        return result

    d = driver()
    assert next(d) == 0
    assert d.send(5) == 5
    assert d.send(7) == 12
    with pytest.raises(StopIteration) as info:
        d.send(None)
    assert info.value.value == 12
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["name"] == "echo"
    assert rec["status"] == "ok"


def test_generator_exception_propagates(tracer, out_dir):
    exc = RuntimeError("gen failed")

    @tracer.traced("gen")
    def gen():
        yield 1
        raise exc

    g = gen()
    assert next(g) == 1
    with pytest.raises(RuntimeError) as info:
        next(g)
    assert info.value is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["message"] == "gen failed"


def test_generator_throw_is_delivered(tracer, out_dir):
    @tracer.traced("gen")
    def gen():
        try:
            yield 1
        except ValueError as e:
            yield f"caught {e}"
        yield 3

    g = gen()
    assert next(g) == 1
    assert g.throw(ValueError("x")) == "caught x"
    assert list(g) == [3]
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"


def test_generator_closed_early_finishes_ok(tracer, out_dir):
    cleaned = []

    @tracer.traced("gen")
    def gen():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            cleaned.append(ft.current_span())

    g = gen()
    for item in g:
        if item == 2:
            break
    g.close()
    assert len(cleaned) == 1
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"
    assert rec["error"] is None
    assert cleaned[0] is not None and cleaned[0].span_id == rec["span_id"]


def test_unstarted_generator_creates_no_span_until_iterated(tracer, out_dir):
    @tracer.traced("gen")
    def gen():
        yield 1

    g = gen()
    assert inspect.isgenerator(g)
    assert list(g) == [1]
    assert len(flushed_spans(tracer, out_dir)) == 1


# --------------------------------------------------------------------------
# Async generators
# --------------------------------------------------------------------------


def test_async_generator(tracer, out_dir):
    @tracer.traced("agen")
    async def agen(n):
        for i in range(n):
            with tracer.start_span(f"inside{i}"):
                await asyncio.sleep(0)
            yield i

    async def main():
        items = []
        with tracer.start_span("consumer") as consumer:
            async for item in agen(3):
                assert ft.current_span() is consumer
                items.append(item)
                with tracer.start_span(f"outside{item}"):
                    await asyncio.sleep(0)
        return consumer, items

    consumer, items = asyncio.run(main())
    assert items == [0, 1, 2]
    recs = by_name(flushed_spans(tracer, out_dir))
    agen_rec = recs["agen"]
    assert agen_rec["parent_id"] == consumer.span_id
    for i in range(3):
        assert recs[f"inside{i}"]["parent_id"] == agen_rec["span_id"]
        assert recs[f"outside{i}"]["parent_id"] == consumer.span_id
        assert agen_rec["start_ns"] <= recs[f"outside{i}"]["start_ns"]
        assert recs[f"outside{i}"]["end_ns"] <= agen_rec["end_ns"]


def test_async_generator_exception_and_asend(tracer, out_dir):
    exc = ValueError("agen failed")

    @tracer.traced("acc")
    async def acc():
        total = 0
        while True:
            got = yield total
            if got is None:
                raise exc
            total += got

    async def main():
        g = acc()
        assert await g.__anext__() == 0
        assert await g.asend(2) == 2
        assert await g.asend(3) == 5
        with pytest.raises(ValueError) as info:
            await g.asend(None)
        return info.value

    assert asyncio.run(main()) is exc
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "error"
    assert rec["error"]["type"] == "ValueError"


def test_async_generator_closed_early(tracer, out_dir):
    @tracer.traced("agen")
    async def agen():
        i = 0
        while True:
            yield i
            i += 1

    async def main():
        g = agen()
        async for item in g:
            if item == 3:
                break
        await g.aclose()

    asyncio.run(main())
    [rec] = flushed_spans(tracer, out_dir)
    assert rec["status"] == "ok"
    assert rec["error"] is None
