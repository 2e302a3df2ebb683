"""Carrying the active span into thread pools.

`asyncio.to_thread` copies the caller's context, but `loop.run_in_executor`
and `ThreadPoolExecutor.submit` do not: work they run would start new traces.
Wrap the callable with `bind_context`, or use `ContextThreadPoolExecutor`::

    await loop.run_in_executor(None, ft.bind_context(work), arg)
    pool.submit(ft.bind_context(work), arg)

    with ft.ContextThreadPoolExecutor() as pool:
        pool.submit(work, arg)           # context carried automatically
"""

from __future__ import annotations

import contextvars
import functools
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def bind_context(fn: Callable[..., T]) -> Callable[..., T]:
    """Returns a callable that runs `fn` in a copy of the *current* context.

    Spans started by `fn` (in whatever thread runs it) are children of the
    span active where `bind_context` was called.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> T:
        # A copy per call: one Context cannot be entered by two threads at once.
        return context.copy().run(fn, *args, **kwargs)

    return run_in_context


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks see the submitter's active span."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
