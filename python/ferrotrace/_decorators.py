"""`@traced`: a span around every call of a function.

Works on plain functions, methods, coroutine functions, generators and async
generators. The wrapper is a real Python function made with
`functools.update_wrapper`, so `inspect.signature`, `__name__`, `__doc__`,
`inspect.iscoroutinefunction` and friends, descriptors (methods) and pickling
by qualified name all behave exactly as for the undecorated function.

For plain functions the span work happens in one Rust call (`TracedCall.call`).
Generators keep their span active only while their body runs (each `next`,
`send` or `throw`), never between steps, so the consumer's own spans are not
mistaken for the generator's children.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar, overload

from ferrotrace._core import TracedCall, _reset_current, _set_current

F = TypeVar("F", bound=Callable[..., Any])


@overload
def traced(name: F) -> F: ...
@overload
def traced(
    name: str | None = None,
    *,
    kind: str | None = None,
    tags: dict[str, Any] | None = None,
    tracer: Any = None,
) -> Callable[[F], F]: ...


def traced(name=None, *, kind=None, tags=None, tracer=None):
    """Traces calls of the decorated function.

    ``@traced`` / ``@traced()`` name the span after the function's qualified
    name; ``@traced("name", kind="client", tags={...})`` sets them. Without
    ``tracer`` the global tracer (see ``configure``) is used, as configured
    at call time.
    """
    if name is not None and not isinstance(name, str):
        if callable(name) or isinstance(name, (classmethod, staticmethod)):
            return _decorate(name, None, kind, tags, tracer)
        raise TypeError(f"traced() name must be a str, not {type(name).__name__}")

    def decorator(fn):
        return _decorate(fn, name, kind, tags, tracer)

    return decorator


def _decorate(fn, name, kind, tags, tracer):
    if isinstance(fn, (classmethod, staticmethod)):
        return type(fn)(_decorate(fn.__func__, name, kind, tags, tracer))
    if not callable(fn):
        raise TypeError(f"@traced decorates functions, not {type(fn).__name__}")
    span_name = name or getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not isinstance(span_name, str):
        span_name = repr(fn)
    call = TracedCall(fn, span_name, kind, tags, tracer)
    if inspect.isasyncgenfunction(fn):
        wrapper = _async_generator_wrapper(fn, call)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine_wrapper(fn, call)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _generator_wrapper(fn, call)
    else:
        invoke = call.call

        def wrapper(*args, **kwargs):
            return invoke(args, kwargs)

    functools.update_wrapper(wrapper, fn)
    return wrapper


def _coroutine_wrapper(fn, call):
    start_span = call.start_span

    async def wrapper(*args, **kwargs):
        with start_span():
            return await fn(*args, **kwargs)

    return wrapper


def _generator_wrapper(fn, call):
    def wrapper(*args, **kwargs):
        span = call.start_span()
        try:
            gen = fn(*args, **kwargs)
            to_send = None
            to_throw = None
            while True:
                token = _set_current(span)
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = gen.throw(exc)
                    else:
                        item = gen.send(to_send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    _reset_current(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = _set_current(span)
                    try:
                        gen.close()
                    finally:
                        _reset_current(token)
                    raise
                except BaseException as exc:
                    to_throw = exc
                    to_send = None
        except BaseException as exc:
            span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        finally:
            span.finish()

    return wrapper


def _async_generator_wrapper(fn, call):
    async def wrapper(*args, **kwargs):
        span = call.start_span()
        try:
            agen = fn(*args, **kwargs)
            to_send = None
            to_throw = None
            while True:
                token = _set_current(span)
                try:
                    if to_throw is not None:
                        exc, to_throw = to_throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(to_send)
                except StopAsyncIteration:
                    return
                finally:
                    _reset_current(token)
                try:
                    to_send = yield item
                except GeneratorExit:
                    token = _set_current(span)
                    try:
                        await agen.aclose()
                    finally:
                        _reset_current(token)
                    raise
                except BaseException as exc:
                    to_throw = exc
                    to_send = None
        except BaseException as exc:
            span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        finally:
            span.finish()

    return wrapper
