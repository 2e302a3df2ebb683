"""The `ferrotrace` command: what the span files in a directory say.

    ferrotrace stats [DIR]                 per-operation latency table
    ferrotrace traces [DIR] [filters]      find traces (--service, --operation, --tag K=V, ...)
    ferrotrace tree TRACE_ID [DIR]         one trace as a tree
    ferrotrace deps [DIR] [--format F]     the service graph
    ferrotrace errors [DIR]                errors grouped by fingerprint
    ferrotrace critical-path TRACE_ID [DIR]
    ferrotrace serve [DIR]                 receive OTLP/Zipkin, Jaeger query API, web UI

DIR defaults to $FERROTRACE_OUTPUT_DIR, else `traces`. Every subcommand takes
`--json` for scripts. The work is done in Rust (`ferrotrace._core`); this
module parses arguments and presents results: with rich when it is installed
and stdout is a terminal (`pip install ferrotrace[cli]`), else plain aligned
text. Exit status: 0 on success, 1 when something asked for is not there (a
directory, a trace), 2 for usage errors, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Callable, NoReturn, TextIO

from ferrotrace import _core

PROG = "ferrotrace"
EXIT_NOT_FOUND = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cmd | head`

#: Inputs smaller than this are read without a progress bar.
PROGRESS_MIN_BYTES = 32 << 20


class CommandError(Exception):
    """A failure to report as one line on stderr, with an exit status."""

    def __init__(self, message: str, status: int = EXIT_NOT_FOUND) -> None:
        super().__init__(message)
        self.status = status


class UsageError(CommandError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, not the usage text."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zµ]*)", re.IGNORECASE)
_UNITS_MS = {
    "": 1.0,
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "ms": 1.0,
    "s": 1e3,
    "m": 60e3,
    "min": 60e3,
    "h": 3600e3,
}


def parse_duration(text: str) -> float:
    """`200ms`, `1.5s`, `300us`, `2m` (a bare number is milliseconds) -> ms."""
    match = _DURATION.fullmatch(text.strip())
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS_MS:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: use a number and a unit, e.g. 300us, 200ms, 1.5s, 2m"
        )
    value = float(match.group(1)) * _UNITS_MS[unit]
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: too large")
    return value


_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def parse_trace_id(text: str) -> str:
    trace_id = text.strip().lower()
    if not _TRACE_ID.fullmatch(trace_id) or trace_id == "0" * 32:
        raise argparse.ArgumentTypeError(
            f"invalid trace id {text!r}: expected 32 hex digits (not all zeros)"
        )
    return trace_id


def parse_tag(text: str) -> tuple[str, str]:
    """`KEY=VALUE` -> (key, value); the value is matched as text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid tag {text!r}: expected KEY=VALUE")
    return key, value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: expected an integer >= 0")
    return value


# --------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------


def format_ms(ms: float | None) -> str:
    """Milliseconds for humans: 0.042ms, 12.3ms, 4.57s, 3m05s."""
    if ms is None:
        return "-"
    if ms < 1:
        return f"{ms:.3f}ms"
    if ms < 1000:
        return f"{ms:.1f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f}s"
    minutes, seconds = divmod(ms / 1000, 60)
    return f"{int(minutes)}m{seconds:04.1f}s"


def _percent(fraction: float | None) -> str:
    return "-" if fraction is None else f"{fraction * 100:.1f}%"


def _local_time(ns: int) -> str:
    stamp = datetime.fromtimestamp(ns / 1e9)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}"


class Column:
    def __init__(self, title: str, numeric: bool = False, style: str | None = None) -> None:
        self.title = title
        self.numeric = numeric
        self.style = style


class Output:
    """Tables and text on stdout: rich on a terminal (when installed), else plain."""

    def __init__(self, stream: TextIO, console: Any | None) -> None:
        self.stream = stream
        self.console = console

    def table(
        self,
        columns: list[Column],
        rows: list[list[str]],
        alerts: frozenset[int] | set[int] = frozenset(),
    ) -> None:
        """Rows of cells; `alerts` are indexes of rows to highlight (errors)."""
        if self.console is not None:
            from rich import box
            from rich.table import Table

            table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
            for column in columns:
                table.add_column(
                    column.title,
                    justify="right" if column.numeric else "left",
                    style=column.style,
                    overflow="fold",
                )
            for i, row in enumerate(rows):
                table.add_row(*row, style="red" if i in alerts else None)
            self.console.print(table)
            return
        widths = [len(c.title) for c in columns]
        for row in rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
        for cells in [[c.title for c in columns], *rows]:
            parts = [
                cell.rjust(width) if column.numeric else cell.ljust(width)
                for column, cell, width in zip(columns, cells, widths)
            ]
            self.stream.write("  ".join(parts).rstrip() + "\n")

    def text(self, text: str, error_marker: str | None = None) -> None:
        if self.console is None:
            self.stream.write(text + "\n")
            return
        from rich.text import Text

        rendered = Text(text)
        if error_marker:
            rendered.highlight_regex(re.escape(error_marker) + ".*", "bold red")
        rendered.highlight_regex(r"\(([^()]*)\) - ", "cyan")
        self.console.print(rendered, highlight=False, markup=False, soft_wrap=True)


def _rich_console(stream: TextIO) -> Any | None:
    if not stream.isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream)


class _Progress:
    """A progress bar on stderr for large inputs, when both ends are terminals."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self.task: Any = None
        self.plain = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total < PROGRESS_MIN_BYTES:
            return
        if self.bar is None and not self.plain:
            try:
                from rich.console import Console
                from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
            except ImportError:
                self.plain = True
            else:
                self.bar = Progress(
                    "reading spans",
                    BarColumn(),
                    DownloadColumn(),
                    TimeRemainingColumn(),
                    console=Console(file=sys.stderr),
                    transient=True,
                )
                self.bar.start()
                self.task = self.bar.add_task("read", total=total)
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)
        else:
            sys.stderr.write(
                f"\rreading spans: {done * 100 // max(total, 1)}% of {total >> 20} MiB"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        elif self.plain:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def _checked_directory(directory: str) -> str:
    if not os.path.exists(directory):
        raise CommandError(f"{directory}: no such file or directory")
    return directory


def _warn_skipped(report: dict[str, Any], directory: str) -> None:
    if report["files"] == 0:
        raise CommandError(f"{directory}: no span files (spans*.jsonl, spans*.jsonl.gz) found")
    skipped = report["skipped_lines"]
    if skipped:
        first = report.get("first_skipped") or {}
        where = f"{first.get('path')}:{first.get('line')}" if first else "?"
        detail = " ".join(str(first.get("error", "")).split())
        plural = "line" if skipped == 1 else "lines"
        print(
            f"{PROG}: skipped {skipped:,} malformed {plural} (first at {where}: {detail})",
            file=sys.stderr,
        )


def _read(args: argparse.Namespace, reader: Callable[..., Any]) -> Any:
    """Runs a `_core` reader with a progress bar when it is worth one."""
    directory = _checked_directory(args.dir)
    progress = _Progress(sys.stdout.isatty() and sys.stderr.isatty())
    try:
        return reader(directory, progress=progress)
    finally:
        progress.close()


def _analyze(args: argparse.Namespace) -> _core.Analysis:
    analysis = _read(args, _core.analyze)
    _warn_skipped(analysis.report(), args.dir)
    return analysis


def _emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def _output() -> Output:
    return Output(sys.stdout, _rich_console(sys.stdout))


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------

#: `stats --sort` keys; the sorting itself is the query layer's (Rust).
_STATS_SORT = ("count", "errors", "name", "p50", "p95", "p99", "self", "total")


def cmd_stats(args: argparse.Namespace) -> None:
    select = {"service": args.service, "sort": args.sort, "limit": args.limit or None}
    if args.self_time:
        ops = _analyze(args).operations(**select)
    else:
        result = _read(
            args,
            lambda path, progress: _core.operation_stats(
                path, exact=not args.sketch, progress=progress, **select
            ),
        )
        _warn_skipped(result["report"], args.dir)
        ops = result["operations"]
    if args.json:
        _emit_json(ops)
        return
    columns = [
        Column("SERVICE", style="cyan"),
        Column("OPERATION"),
        Column("COUNT", numeric=True),
        Column("ERRORS", numeric=True),
        Column("ERR%", numeric=True),
        Column("P50", numeric=True),
        Column("P95", numeric=True),
        Column("P99", numeric=True),
        Column("TOTAL", numeric=True),
    ]
    if args.self_time:
        columns += [Column("SELF", numeric=True), Column("SHARE", numeric=True)]
    rows = []
    for op in ops:
        row = [
            op["service"],
            op["operation"],
            f"{op['count']:,}",
            f"{op['error_count']:,}",
            _percent(op["error_rate"]),
            format_ms(op["p50"]),
            format_ms(op["p95"]),
            format_ms(op["p99"]),
            format_ms(op["total_ms"]),
        ]
        if args.self_time:
            row += [format_ms(op["self_ms"]), _percent(op["time_share"])]
        rows.append(row)
    alerts = {i for i, op in enumerate(ops) if op["error_count"]}
    _output().table(columns, rows, alerts)


def cmd_traces(args: argparse.Namespace) -> None:
    analysis = _analyze(args)
    try:
        traces = analysis.find_traces(
            service=args.service,
            operation=args.operation,
            tags=dict(args.tag),
            errors=args.errors,
            min_duration_ms=args.min_duration,
            max_duration_ms=args.max_duration,
            limit=args.limit or None,
            order=args.sort,
        )
    except ValueError as e:  # an empty range, e.g. --min-duration above --max-duration
        raise UsageError(f"{PROG} traces: {e}") from None
    if args.json:
        _emit_json(traces)
        return
    columns = [
        Column("TRACE ID"),
        Column("START"),
        Column("SERVICE", style="cyan"),
        Column("OPERATION"),
        Column("DURATION", numeric=True),
        Column("SPANS", numeric=True),
        Column("ERRORS", numeric=True),
    ]
    rows = [
        [
            t["trace_id"],
            _local_time(t["start_ns"]),
            t["service"],
            t["operation"],
            format_ms(t["duration_ms"]),
            f"{t['span_count']:,}",
            f"{t['error_count']:,}",
        ]
        for t in traces
    ]
    alerts = {i for i, t in enumerate(traces) if t["error_count"]}
    _output().table(columns, rows, alerts)


def _no_trace(args: argparse.Namespace, analysis: _core.Analysis) -> CommandError:
    return CommandError(
        f"no trace {args.trace_id} in {args.dir} "
        f"({analysis.trace_count:,} traces in {analysis.files:,} files)"
    )


def cmd_tree(args: argparse.Namespace) -> None:
    analysis = _analyze(args)
    if args.json:
        trace = analysis.get_trace(args.trace_id)
        if trace is None:
            raise _no_trace(args, analysis)
        _emit_json(trace)
        return
    tree = analysis.render_tree(args.trace_id)
    if tree is None:
        raise _no_trace(args, analysis)
    _output().text(tree, error_marker="✗ error")


def cmd_critical_path(args: argparse.Namespace) -> None:
    analysis = _analyze(args)
    path = analysis.critical_path(args.trace_id)
    if path is None:
        raise _no_trace(args, analysis)
    if args.json:
        _emit_json(path)
        return
    total = sum(segment["duration_ms"] for segment in path)
    origin = path[0]["start_ns"] if path else 0
    rows = [
        [
            str(i),
            segment["name"],
            segment["service"],
            "+" + format_ms((segment["start_ns"] - origin) / 1e6),
            format_ms(segment["duration_ms"]),
            _percent(segment["duration_ms"] / total if total else 0.0),
        ]
        for i, segment in enumerate(path, 1)
    ]
    columns = [
        Column("#", numeric=True),
        Column("SPAN"),
        Column("SERVICE", style="cyan"),
        Column("AT", numeric=True),
        Column("DURATION", numeric=True),
        Column("SHARE", numeric=True),
    ]
    _output().table(columns, rows)


def _dot_id(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_deps(args: argparse.Namespace) -> None:
    edges = _analyze(args).service_dependencies()
    form = "json" if args.json else args.format
    if form == "json":
        _emit_json(edges)
    elif form == "dot":
        lines = ["digraph services {", "  rankdir=LR;", "  node [shape=box];"]
        lines += [
            f'  {_dot_id(e["caller"])} -> {_dot_id(e["callee"])} [label="{e["calls"]}"];'
            for e in edges
        ]
        sys.stdout.write("\n".join([*lines, "}"]) + "\n")
    elif form == "mermaid":
        services = sorted({e["caller"] for e in edges} | {e["callee"] for e in edges})
        ids = {service: f"s{i}" for i, service in enumerate(services)}
        lines = ["graph LR"]
        lines += [f'  {ids[s]}["{s.replace(chr(34), "#quot;")}"]' for s in services]
        lines += [f"  {ids[e['caller']]} -->|{e['calls']}| {ids[e['callee']]}" for e in edges]
        sys.stdout.write("\n".join(lines) + "\n")
    else:
        columns = [
            Column("CALLER", style="cyan"),
            Column("CALLEE", style="cyan"),
            Column("CALLS", numeric=True),
        ]
        rows = [[e["caller"], e["callee"], f"{e['calls']:,}"] for e in edges]
        _output().table(columns, rows)


def cmd_errors(args: argparse.Namespace) -> None:
    groups = _analyze(args).error_groups(service=args.service, limit=args.limit or None)
    if args.json:
        _emit_json(groups)
        return
    columns = [
        Column("COUNT", numeric=True),
        Column("SERVICE", style="cyan"),
        Column("OPERATION"),
        Column("ERROR", style="red"),
        Column("LAST SEEN"),
        Column("EXAMPLE TRACE"),
    ]
    rows = [
        [
            f"{g['count']:,}",
            g["service"],
            g["operation"],
            f"{g['type']}: {g['message']}" if g["message"] else g["type"],
            _local_time(g["last_seen_ns"]),
            g["example_trace_id"],
        ]
        for g in groups
    ]
    _output().table(columns, rows)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return port


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1", "[::1]") or host.startswith("127.")


def cmd_serve(args: argparse.Namespace) -> None:
    """Runs `ferrotrace serve` until Ctrl-C or SIGTERM; both stop it cleanly (exit 0)."""

    def listening(info: dict[str, Any]) -> None:
        if not _is_loopback(args.host):
            print(
                f"{PROG} serve: warning: listening on {args.host}, not only this machine: "
                "anyone who can reach it can read every trace and send spans (no authentication)",
                file=sys.stderr,
            )
        otlp = f", OTLP/HTTP also at {info['otlp_url']}" if info["otlp_url"] else ""
        print(
            f"{PROG} serve: UI and API at {info['url']}/ (OTLP: {info['url']}/v1/traces, "
            f"Zipkin: {info['url']}/api/v2/spans{otlp}); {info['spans_loaded']} spans "
            f"indexed from {args.dir} in {info['load_seconds']:.2f} s. Ctrl-C stops.",
            flush=True,
        )

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # SIGINT too, explicitly: a process started as a background job of a
    # script inherits SIGINT ignored (and Python then installs no handler),
    # where Ctrl-C or `kill -INT` must still stop the server.
    previous = {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _core.serve(
            args.dir,
            host=args.host,
            port=args.port,
            otlp_port=args.otlp_port or None,
            cors_origin=args.cors_origin,
            max_spans=args.max_spans,
            max_body_mb=args.max_body_mb,
            on_listening=listening,
        )
    except KeyboardInterrupt:
        print(f"{PROG} serve: stopped", flush=True)
    except (OSError, ValueError) as e:
        raise CommandError(f"{PROG} serve: {e}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    default_dir = os.environ.get("FERROTRACE_OUTPUT_DIR") or "traces"
    parser = _Parser(
        prog=PROG,
        description="Analyse the span files (spans*.jsonl[.gz]) that ferrotrace services wrote.",
        epilog=f"DIR defaults to $FERROTRACE_OUTPUT_DIR, else 'traces' (now: {default_dir}).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_core.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, run: Callable[[argparse.Namespace], None], help: str) -> _Parser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(run=run)
        return sub

    def directory(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "dir",
            metavar="DIR",
            nargs="?",
            default=default_dir,
            help="a directory of span files (searched at any depth), or one file",
        )
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")

    def trace_id(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("trace_id", metavar="TRACE_ID", type=parse_trace_id)

    sub = command("stats", cmd_stats, "per-operation counts, errors and latency percentiles")
    directory(sub)
    sub.add_argument("--service", help="only this service's operations")
    sub.add_argument("--sort", choices=_STATS_SORT, default="total")
    sub.add_argument("--limit", type=_count, default=0, metavar="N", help="at most N rows")
    precision = sub.add_mutually_exclusive_group()
    precision.add_argument(
        "--sketch",
        action="store_true",
        help="percentiles within 1%% from a sketch per operation: memory independent of size",
    )
    precision.add_argument(
        "--self-time",
        action="store_true",
        help="assemble traces to add self time and time share (memory grows with spans)",
    )

    sub = command("traces", cmd_traces, "find traces (most recent first)")
    directory(sub)
    sub.add_argument("--service", help="with a span of this service")
    sub.add_argument("--operation", help="with a span of this name")
    sub.add_argument("--errors", action="store_true", help="only failed traces")
    sub.add_argument(
        "--tag",
        type=parse_tag,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with a span having this attribute (repeatable: all on one span, with --service "
        "and --operation); also error=true, span.kind=client",
    )
    sub.add_argument(
        "--min-duration",
        type=parse_duration,
        metavar="D",
        help="at least this long: 300us, 200ms, 1.5s, 2m",
    )
    sub.add_argument("--max-duration", type=parse_duration, metavar="D", help="at most this long")
    sub.add_argument("--sort", choices=["recent", "slowest"], default="recent")
    sub.add_argument("--limit", type=_count, default=20, metavar="N", help="default 20; 0: all")

    sub = command("tree", cmd_tree, "draw one trace as a tree")
    trace_id(sub)
    directory(sub)

    sub = command("deps", cmd_deps, "the service graph: who calls whom, how often")
    directory(sub)
    sub.add_argument("--format", choices=["text", "dot", "mermaid", "json"], default="text")

    sub = command("errors", cmd_errors, "errors grouped by fingerprint, most frequent first")
    directory(sub)
    sub.add_argument("--service", help="only this service's errors")
    sub.add_argument("--limit", type=_count, default=0, metavar="N", help="at most N groups")

    sub = command(
        "critical-path",
        cmd_critical_path,
        "the spans that determined a trace's end-to-end latency",
    )
    trace_id(sub)
    directory(sub)

    sub = command(
        "serve",
        cmd_serve,
        "receive spans (OTLP/HTTP, Zipkin) into DIR and serve a Jaeger-compatible query API "
        "and web UI over every span file in it",
    )
    sub.add_argument(
        "dir",
        metavar="DIR",
        nargs="?",
        default=default_dir,
        help="where received spans are written and span files are read (created if missing)",
    )
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sub.add_argument(
        "--port", type=_port, default=16686, help="UI, query API and receivers (default 16686)"
    )
    sub.add_argument(
        "--otlp-port",
        type=_port,
        default=4318,
        help="POST /v1/traces also here, the SDKs' default (default 4318; 0: not served)",
    )
    sub.add_argument(
        "--cors-origin",
        metavar="ORIGIN",
        help="allow cross-origin requests from this origin (e.g. http://localhost:3000)",
    )
    sub.add_argument(
        "--max-spans",
        type=_count,
        default=1_000_000,
        metavar="N",
        help="spans kept searchable, oldest traces evicted first (default 1000000, about "
        "1.1 GiB; 0: all); files are never deleted",
    )
    sub.add_argument(
        "--max-body-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="request body limit, compressed and decompressed (default 20)",
    )
    return parser


def _fail(message: str) -> None:
    print(" ".join(message.split()), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        args.run(args)
        sys.stdout.flush()
    except CommandError as e:
        message = str(e)
        _fail(message if message.startswith(PROG) else f"{PROG}: {message}")
        return e.status
    except FileNotFoundError as e:
        _fail(f"{PROG}: {e.filename}: no such file or directory")
        return EXIT_NOT_FOUND
    except BrokenPipeError:
        # The reader went away (`ferrotrace traces | head`): stop quietly,
        # and keep the interpreter's final flush from complaining too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as e:
        _fail(f"{PROG}: {e.filename or ''}: {e.strerror or e}")
        return EXIT_NOT_FOUND
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
