"""ferrotrace: distributed tracing for Python services with a Rust core.

Spans are recorded in Rust and written to JSONL files by a background thread;
see README.md for the guide and every configuration option.
"""

from ferrotrace._core import (
    Analysis,
    Span,
    SpanContext,
    Tracer,
    __version__,
    analyze,
    current_span,
    extract,
    inject,
)
from ferrotrace._decorators import traced
from ferrotrace._global import configure, get_tracer
from ferrotrace._lifecycle import install_process_hooks
from ferrotrace.http_clients import instrument_httpx, instrument_requests
from ferrotrace.log_correlation import instrument_logging
from ferrotrace.threads import ContextThreadPoolExecutor, bind_context

install_process_hooks()

__all__ = [
    "Analysis",
    "ContextThreadPoolExecutor",
    "Span",
    "SpanContext",
    "Tracer",
    "__version__",
    "analyze",
    "bind_context",
    "configure",
    "current_span",
    "extract",
    "get_tracer",
    "inject",
    "instrument_httpx",
    "instrument_logging",
    "instrument_requests",
    "traced",
]
