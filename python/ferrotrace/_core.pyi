"""Type stubs for the Rust extension module `ferrotrace._core`."""

from collections.abc import Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import Any, Callable, Literal, Protocol, TypedDict, final

from typing_extensions import disjoint_base

__version__: str
__all__ = [
    "Analysis",
    "CurrentSpan",
    "OTelSpan",
    "OTelTracer",
    "Span",
    "SpanContext",
    "TracedCall",
    "Tracer",
    "__version__",
    "_after_fork_in_child",
    "_after_fork_in_parent",
    "_before_fork",
    "_options",
    "_options_markdown",
    "_otel_install",
    "_flush_all",
    "_global_tracer",
    "_reset_current",
    "_set_current",
    "_set_global_tracer",
    "_finish_server_span",
    "_server_response_start",
    "_shutdown_all",
    "_start_server_span",
    "analyze",
    "current_span",
    "extract",
    "inject",
    "operation_stats",
    "serve",
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
        random: bool = False,
    ) -> SpanContext: ...
    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def sampled(self) -> bool: ...
    @property
    def random(self) -> bool:
        """W3C Level 2 random flag (0x02): the trace id's rightmost 7 bytes are random."""
    @property
    def is_remote(self) -> bool: ...
    @property
    def trace_flags(self) -> int:
        """The W3C trace flags: sampled (0x01) | random (0x02)."""
    @property
    def tracestate(self) -> str | None:
        """The W3C tracestate received with this context (normalised), or None."""
    def __eq__(self, value: object, /) -> bool: ...

@disjoint_base
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
        timestamp: int | None = None,
        *,
        level: str | None = None,
        **fields: _Value,
    ) -> None: ...
    def set_status(self, status: int | str | Any, description: Any | None = None) -> None: ...
    def set_error(self, error: Any, stack: Any | None = None) -> None: ...
    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[Any, _Value] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """An `exception` event and the span's error; the span fails."""
    def get_span_context(self) -> Any:
        """The span's context as `opentelemetry.trace.SpanContext` (needs opentelemetry-api)."""
    def add_link(self, context: Any, attributes: Mapping[Any, _Value] | None = None) -> None:
        """Links to an OpenTelemetry or ferrotrace `SpanContext`, or a `Span`."""
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
        max_files: int | None = None,
        compress_rotated: bool | None = None,
        max_recent_traces: int | None = None,
        max_traces_per_second: float | None = None,
        parent_based: bool | None = None,
        keep_errors: bool | None = None,
        keep_slower_than_ms: float | None = None,
        propagators: str | list[str] | None = None,
        exporters: str | Sequence[str] | None = None,
        otlp_endpoint: str | None = None,
        otlp_protocol: Literal["http/protobuf", "http/json"] | None = None,
        otlp_headers: Mapping[str, str] | None = None,
        otlp_compression: Literal["gzip", "none"] | None = None,
        otlp_timeout: int | None = None,
        otlp_certificate: str | PathLike[str] | None = None,
        zipkin_endpoint: str | None = None,
        resource_attributes: Mapping[str, Any] | None = None,
        redact_keys: str | Sequence[str] | None = None,
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
class OTelSpan(Span):
    """A span made through the OpenTelemetry API (see ferrotrace.otel).

    `kind` is an `opentelemetry.trace.SpanKind`; `with span:` does not make it
    current; `set_status` follows OpenTelemetry's rules; `record_exception`
    leaves the status alone.
    """

    @property
    def kind(self) -> Any: ...  # type: ignore[override]
    def set_attribute(self, key: Any, value: _Value) -> None: ...
    def set_attributes(self, attributes: Mapping[Any, _Value]) -> None: ...  # type: ignore[override]
    def set_status(self, status: Any, description: Any | None = None) -> None: ...
    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[Any, _Value] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None: ...
    def __enter__(self) -> OTelSpan: ...
    def __exit__(  # type: ignore[override]
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...

@final
class CurrentSpan:
    """What `OTelTracer.start_as_current_span` returns: a context manager that
    starts a span when entered and makes it current, and a decorator."""

    def __enter__(self) -> OTelSpan: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool: ...
    def _recreate(self) -> CurrentSpan: ...
    def __call__(self, func: Callable[..., Any]) -> Any: ...

@final
class OTelTracer:
    """An `opentelemetry.trace.Tracer` of one instrumentation scope."""

    def __new__(
        cls,
        tracer: Tracer | None,
        name: Any,
        version: Any | None = None,
        schema_url: Any | None = None,
    ) -> OTelTracer: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    def start_span(
        self,
        name: str,
        context: Any | None = None,
        kind: Any | None = None,
        attributes: Mapping[Any, _Value] | None = None,
        links: Sequence[Any] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> OTelSpan: ...
    def start_as_current_span(
        self,
        name: str,
        context: Any | None = None,
        kind: Any | None = None,
        attributes: Mapping[Any, _Value] | None = None,
        links: Sequence[Any] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan: ...

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
def _after_fork_in_parent() -> None: ...
def _before_fork() -> None: ...
def _options() -> list[dict[str, Any]]: ...
def _options_markdown() -> str: ...
def _otel_install() -> None: ...
def _shutdown_all(timeout: float = 5.0) -> bool: ...
def _flush_all(timeout: float = 5.0) -> bool: ...
def _start_server_span(tracer: Tracer, scope: dict[str, Any]) -> Span: ...
def _server_response_start(span: Span, message: dict[str, Any], header: bytes | None) -> None: ...
def _finish_server_span(span: Span, scope: dict[str, Any]) -> None: ...

# Analysis over span files. Results are plain dicts and lists; these shapes
# are for type checkers only.

class _LatencyStats(TypedDict):
    count: int
    min: float
    max: float
    avg: float
    p50: float
    p95: float
    p99: float

class _TraceSummary(TypedDict):
    trace_id: str
    root_span_id: str | None
    service: str
    operation: str
    status: Literal["ok", "error"]
    start_ns: int
    duration_ms: float
    span_count: int
    error_count: int

class _Trace(_TraceSummary):
    spans: list[dict[str, Any]]

_OperationSort = Literal["total", "count", "errors", "p50", "p95", "p99", "self", "name"]
_TagValue = str | bool | int | float

class _Dependency(TypedDict):
    caller: str
    callee: str
    calls: int

class _Operation(TypedDict):
    service: str
    operation: str
    count: int
    error_count: int
    error_rate: float
    min: float
    max: float
    avg: float
    p50: float
    p95: float
    p99: float
    total_ms: float
    self_ms: float | None
    time_share: float | None

class _ErrorGroup(TypedDict):
    fingerprint: str
    type: str
    message: str
    example_message: str
    service: str
    operation: str
    count: int
    first_seen_ns: int
    last_seen_ns: int
    example_trace_id: str

class _PathSegment(TypedDict):
    span_id: str
    name: str
    service: str
    start_ns: int
    end_ns: int
    duration_ms: float

class _SkippedLine(TypedDict):
    path: str
    line: int
    error: str

class _ReadReport(TypedDict):
    files: int
    lines: int
    spans: int
    skipped_lines: int
    duplicate_spans: int
    first_skipped: _SkippedLine | None

class _AnalysisReport(_ReadReport):
    path: str

class _OperationStats(TypedDict):
    operations: list[_Operation]
    precision: Literal["exact", "sketch"]
    report: _ReadReport

_Progress = Callable[[int, int], object]

@final
class Analysis:
    """Spans read from files, assembled into traces. Create with `analyze(path)`."""

    def get_trace(self, trace_id: str) -> _Trace | None:
        """The trace dict, or None if no span of that trace was read."""
    def latency_stats(
        self, operation: str | None = None, service: str | None = None
    ) -> _LatencyStats:
        """Exact nearest-rank latency stats (ms) of span durations."""
    def error_traces(self, limit: int | None = None) -> list[_Trace]:
        """Traces with a failed span, most recent first; a bad limit is a ValueError."""
    def slow_traces(self, threshold_ms: float) -> list[_Trace]:
        """Traces at least `threshold_ms` long, slowest first."""
    def service_dependencies(self) -> list[_Dependency]:
        """Caller -> callee edges between services with call counts."""
    def operations(
        self,
        *,
        service: str | None = None,
        sort: _OperationSort = "total",
        limit: int | None = None,
    ) -> list[_Operation]:
        """Per-(service, operation) statistics, most total time first by default."""
    def error_groups(
        self, *, service: str | None = None, limit: int | None = None
    ) -> list[_ErrorGroup]:
        """Failed spans grouped by fingerprint, most frequent first."""
    def critical_path(self, trace_id: str) -> list[_PathSegment] | None:
        """The spans that determined the trace's latency, in time order."""
    def render_tree(self, trace_id: str) -> str | None:
        """The trace drawn as a text tree."""
    def find_traces(
        self,
        *,
        service: str | None = None,
        operation: str | None = None,
        tags: Mapping[str, _TagValue] | None = None,
        errors: bool = False,
        min_duration_ms: float | None = None,
        max_duration_ms: float | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
        order: Literal["recent", "slowest"] = "recent",
    ) -> list[_TraceSummary]:
        """Trace summaries (no spans) matching every filter given.

        `service`, `operation` and `tags` must hold on one span; durations and
        the start window apply to the trace (its root).
        """
    def report(self) -> _AnalysisReport:
        """Files, lines and spans read; malformed lines skipped."""
    @property
    def span_count(self) -> int: ...
    @property
    def trace_count(self) -> int: ...
    @property
    def skipped_lines(self) -> int: ...
    @property
    def files(self) -> int: ...

def analyze(path: str | PathLike[str], *, progress: _Progress | None = None) -> Analysis:
    """Reads every spans*.jsonl and spans*.jsonl.gz file under `path` (or the one file) into traces.

    Raises FileNotFoundError if `path` does not exist, OSError if it cannot be
    read; malformed lines are skipped and counted. `progress(bytes_read,
    bytes_total)` is called every 100 ms while reading.
    """

def operation_stats(
    path: str | PathLike[str],
    *,
    exact: bool = True,
    progress: _Progress | None = None,
    service: str | None = None,
    sort: _OperationSort = "total",
    limit: int | None = None,
) -> _OperationStats:
    """Per-operation statistics streamed from span files without keeping spans."""

def serve(
    dir: str | PathLike[str],
    *,
    host: str = ...,  # "127.0.0.1"
    port: int = 16686,
    otlp_port: int | None = ...,  # 4318
    cors_origin: str | None = None,
    max_spans: int | None = ...,  # 1000000
    max_body_mb: float = 20.0,
    on_listening: Callable[[dict[str, Any]], object] | None = None,
) -> None:
    """Runs `ferrotrace serve` over `dir` with the GIL released until a signal
    handler raises (KeyboardInterrupt on Ctrl-C), then raises that exception.

    `on_listening(info)` is called once requests are accepted, with `url`,
    `otlp_url` (or None), `spans_loaded` and `load_seconds`. OSError when the
    directory or a port cannot be used; ValueError for bad options.
    """
