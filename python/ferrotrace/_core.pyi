"""Type stubs for the Rust extension module `ferrotrace._core`."""

from collections.abc import Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import Any, Callable, Literal, Protocol, final

__version__: str
__all__ = [
    "Span",
    "SpanContext",
    "TracedCall",
    "Tracer",
    "__version__",
    "_after_fork_in_child",
    "_flush_all",
    "_global_tracer",
    "_reset_current",
    "_set_current",
    "_set_global_tracer",
    "_shutdown_all",
    "current_span",
    "extract",
    "inject",
]

_Kind = Literal["internal", "server", "client", "producer", "consumer"]
_Value = Any

@final
class SpanContext:
    """A span's identity as carried between processes."""

    def __new__(
        cls,
        trace_id: str,
        span_id: str,
        sampled: bool = True,
        is_remote: bool = True,
        tracestate: str | None = None,
    ) -> SpanContext: ...
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def is_remote(self) -> bool: ...
    @property
    def trace_flags(self) -> int: ...
    @property
    def tracestate(self) -> str | None:
        """The W3C tracestate received with this context (normalised), or None."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class Span:
    """One timed operation. Use it in a `with` block or call `finish()`."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int | None: ...
    @property
    def duration_ms(self) -> float | None: ...
    @property
    def status(self) -> str: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def is_finished(self) -> bool: ...
    @property
    def attributes(self) -> dict[str, Any]: ...
    @property
    def context(self) -> SpanContext: ...
    def is_recording(self) -> bool: ...
    def update_name(self, name: str) -> None: ...
    def set_tag(self, key: Any, value: _Value) -> None: ...
    def set_attribute(self, key: Any, value: _Value) -> None: ...
    def set_tags(self, tags: Mapping[Any, _Value]) -> None: ...
    def set_attributes(self, tags: Mapping[Any, _Value]) -> None: ...
    def log(
        self,
        message: Any,
        attributes: Mapping[Any, _Value] | None = None,
        *,
        level: str | None = None,
        timestamp: int | None = None,
        **fields: _Value,
    ) -> None: ...
    def add_event(
        self,
        name: Any,
        attributes: Mapping[Any, _Value] | None = None,
        *,
        level: str | None = None,
        timestamp: int | None = None,
        **fields: _Value,
    ) -> None: ...
    def set_status(self, status: int | str | Any, description: Any | None = None) -> None: ...
    def set_error(self, error: Any, stack: Any | None = None) -> None: ...
    def record_exception(self, exception: BaseException) -> None: ...
    def finish(self, duration_ms: float | None = None) -> None: ...
    def end(self, end_time: int | None = None) -> None: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __enter__(self) -> Span: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class Tracer:
    """Creates spans and writes them to JSONL files from a background thread."""

    def __new__(
        cls,
        service_name: str | None = None,
        output_dir: str | PathLike[str] | None = ...,
        *,
        buffer_size: int | None = None,
        flush_interval_ms: float | None = None,
        sample_rate: float | None = None,
        max_attributes: int | None = None,
        max_attribute_length: int | None = None,
        max_events: int | None = None,
        max_file_size_mb: float | None = None,
        max_recent_traces: int | None = None,
        max_traces_per_second: float | None = None,
        parent_based: bool | None = None,
        keep_errors: bool | None = None,
        keep_slower_than_ms: float | None = None,
        propagators: str | list[str] | None = None,
    ) -> Tracer: ...
    def start_span(
        self,
        name: str,
        kind: _Kind | str | Any | None = None,
        tags: Mapping[Any, _Value] | None = None,
        parent: Span | SpanContext | None = None,
    ) -> Span: ...
    @property
    def service_name(self) -> str: ...
    @property
    def propagators(self) -> list[str]: ...
    @property
    def output_dir(self) -> str | None: ...
    @property
    def config(self) -> dict[str, Any]: ...
    def files(self) -> list[str]: ...
    def flush(self, timeout: float = 5.0) -> bool: ...
    def shutdown(self, timeout: float = 5.0) -> bool: ...
    def metrics(self) -> dict[str, int]: ...
    def get_trace(self, trace_id: str) -> dict[str, Any] | None: ...
    def latency_stats(
        self, operation: str | None = None, service: str | None = None
    ) -> dict[str, Any]: ...
    def error_traces(self, limit: int | None = None) -> list[dict[str, Any]]: ...
    def slow_traces(self, threshold_ms: float) -> list[dict[str, Any]]: ...
    def service_dependencies(self) -> list[dict[str, Any]]: ...
    def traced(
        self,
        name: str | Callable[..., Any] | None = None,
        *,
        kind: str | None = None,
        tags: Mapping[Any, _Value] | None = None,
    ) -> Any: ...

@final
class TracedCall:
    """The Rust half of `@traced` (see ferrotrace._decorators)."""

    def __new__(
        cls,
        func: Callable[..., Any],
        name: str,
        kind: str | None = None,
        tags: Mapping[Any, _Value] | None = None,
        tracer: Tracer | None = None,
    ) -> TracedCall: ...
    @property
    def name(self) -> str: ...
    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> Any: ...
    def start_span(self) -> Span: ...

def current_span() -> Span | None: ...

class _HeaderSetter(Protocol):
    def __setitem__(self, name: str, value: str, /) -> Any: ...

_Propagators = str | Sequence[str] | None

def inject(
    carrier: _HeaderSetter | list[Any],
    span: Span | SpanContext | None = None,
    propagators: _Propagators = None,
) -> None:
    """Writes the active span's context (or `span`'s) into `carrier` as headers.

    `carrier[name] = value` for a mapping; a list gets `(name, value)` pairs
    (bytes when it already holds bytes names). Nothing is written when there
    is no span. `propagators`: names among "tracecontext", "b3", "b3multi",
    "xtrace" (default: the global tracer's, else FERROTRACE_PROPAGATORS /
    OTEL_PROPAGATORS, else "tracecontext").
    """

def extract(carrier: Any, propagators: _Propagators = None) -> SpanContext | None:
    """Reads a trace context from incoming headers, or None if there is no valid one.

    `carrier`: a mapping (dict, framework headers) or a list of (name, value)
    pairs; names match in any case, str or bytes (Latin-1). Junk never raises.
    """

def _set_current(span: Span) -> Any: ...
def _reset_current(token: Any) -> None: ...
def _set_global_tracer(tracer: Tracer | None) -> None: ...
def _global_tracer() -> Tracer | None: ...
def _after_fork_in_child() -> None: ...
def _shutdown_all(timeout: float = 5.0) -> bool: ...
def _flush_all(timeout: float = 5.0) -> bool: ...
