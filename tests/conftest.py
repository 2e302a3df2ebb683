"""Shared fixtures and strict readers for ferrotrace's JSONL output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# The tracer (and OpenTelemetry, which some tests use alongside it) reads its
# defaults from FERROTRACE_* and OTEL_* variables, possibly as soon as it is
# imported. Whatever the developer's shell exports (a sampler, a propagator, an
# exporter, ...) must not change what the tests see, so every such variable is
# removed here, before anything below imports ferrotrace or opentelemetry.
# Subprocesses inherit this cleaned environment; tests that want a variable set
# it themselves (monkeypatch.setenv, clean_env(NAME=...)).
TRACER_ENV_PREFIXES = ("FERROTRACE_", "OTEL_")


def is_tracer_variable(name: str) -> bool:
    return name.startswith(TRACER_ENV_PREFIXES)


if "ferrotrace" in sys.modules or "opentelemetry" in sys.modules:
    raise RuntimeError(
        "ferrotrace or opentelemetry was imported before tests/conftest.py could clear the "
        "FERROTRACE_*/OTEL_* environment variables; a pytest plugin must not import them"
    )
for _name in [n for n in os.environ if is_tracer_variable(n)]:
    del os.environ[_name]

import ferrotrace as ft  # noqa: E402  (only after the environment is clean)
import pytest  # noqa: E402

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
KINDS = {"internal", "server", "client", "producer", "consumer"}


# --------------------------------------------------------------------------
# Strict JSONL reading
# --------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name!r}")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate keys in JSON object: {keys}")
    return dict(pairs)


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN/Infinity and duplicate keys."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicates)


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Every line of one file, strictly: UTF-8, '\\n'-terminated, one JSON object each."""
    data = Path(path).read_bytes()
    text = data.decode("utf-8", errors="strict")
    records = []
    if not text:
        return records
    # Split on "\n" only: U+0085, U+2028 etc. may appear raw inside JSON strings.
    *lines, tail = text.split("\n")
    assert tail == "", f"{path}: unterminated last line {tail[:200]!r}"
    for body in lines:
        record = strict_loads(body)
        assert isinstance(record, dict), f"{path}: not an object: {body[:200]!r}"
        records.append(record)
    return records


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_attr_value(v: Any) -> None:
    if isinstance(v, list):
        for item in v:
            assert isinstance(item, (str, bool, int, float)), item
    else:
        assert isinstance(v, (str, bool, int, float)), v


def check_span_record(r: dict[str, Any]) -> None:
    """The span record contract of DESIGN.md."""
    required = {
        "trace_id",
        "span_id",
        "parent_id",
        "name",
        "service",
        "kind",
        "start_ns",
        "end_ns",
        "duration_ms",
        "status",
        "attributes",
        "events",
        "error",
    }
    assert required <= r.keys(), f"missing keys {required - r.keys()} in {r}"
    assert HEX32.fullmatch(r["trace_id"]) and r["trace_id"] != "0" * 32, r["trace_id"]
    assert HEX16.fullmatch(r["span_id"]) and r["span_id"] != "0" * 16, r["span_id"]
    assert r["parent_id"] is None or HEX16.fullmatch(r["parent_id"]), r["parent_id"]
    assert isinstance(r["name"], str)
    assert isinstance(r["service"], str)
    assert r["kind"] in KINDS
    assert _is_int(r["start_ns"]) and _is_int(r["end_ns"])
    assert r["end_ns"] >= r["start_ns"] > 1_500_000_000 * 10**9  # epoch ns, after 2017
    assert _is_number(r["duration_ms"]) and r["duration_ms"] >= 0
    assert r["status"] in ("ok", "error")
    assert isinstance(r["attributes"], dict)
    for v in r["attributes"].values():
        _check_attr_value(v)
    assert isinstance(r["events"], list)
    for e in r["events"]:
        assert {"name", "ts_ns", "level", "attributes"} <= e.keys(), e
        assert isinstance(e["name"], str) and isinstance(e["level"], str)
        assert _is_int(e["ts_ns"])
        assert isinstance(e["attributes"], dict)
        for v in e["attributes"].values():
            _check_attr_value(v)
    if r["error"] is not None:
        assert {"type", "message", "stack"} <= r["error"].keys(), r["error"]
        assert isinstance(r["error"]["type"], str)
        assert isinstance(r["error"]["message"], str)
        assert r["error"]["stack"] is None or isinstance(r["error"]["stack"], str)
    for key in ("dropped_attributes_count", "dropped_events_count", "dropped_links_count"):
        if key in r:
            assert _is_int(r[key]) and r[key] > 0
    if "remote_parent" in r:
        assert isinstance(r["remote_parent"], bool)
    # Spans made through the OpenTelemetry API: their scope and links.
    if "scope" in r:
        assert isinstance(r["scope"]["name"], str), r["scope"]
        assert set(r["scope"]) <= {"name", "version", "schema_url"}, r["scope"]
    if "links" in r:
        assert isinstance(r["links"], list) and r["links"], r["links"]
        for link in r["links"]:
            assert HEX32.fullmatch(link["trace_id"]) and HEX16.fullmatch(link["span_id"]), link
            assert isinstance(link["attributes"], dict), link
            for v in link["attributes"].values():
                _check_attr_value(v)


def check_trace_record(r: dict[str, Any]) -> None:
    required = {
        "trace_id",
        "root_span_id",
        "service",
        "operation",
        "start_ns",
        "duration_ms",
        "span_count",
        "error_count",
        "status",
    }
    assert required <= r.keys(), f"missing keys {required - r.keys()} in {r}"
    assert HEX32.fullmatch(r["trace_id"])
    assert HEX16.fullmatch(r["root_span_id"])
    assert isinstance(r["service"], str) and isinstance(r["operation"], str)
    assert _is_int(r["start_ns"])
    assert _is_number(r["duration_ms"]) and r["duration_ms"] >= 0
    assert _is_int(r["span_count"]) and r["span_count"] >= 1
    assert _is_int(r["error_count"]) and 0 <= r["error_count"] <= r["span_count"]
    assert r["status"] in ("ok", "error")


def span_files(directory: Path | str) -> list[Path]:
    return sorted(Path(directory).glob("spans*.jsonl"))


def trace_files(directory: Path | str) -> list[Path]:
    return sorted(Path(directory).glob("traces*.jsonl"))


def read_spans(directory: Path | str) -> list[dict[str, Any]]:
    """Every span record in `directory`, each checked against the contract."""
    spans = []
    for path in span_files(directory):
        for record in read_jsonl(path):
            check_span_record(record)
            spans.append(record)
    return spans


def read_traces(directory: Path | str) -> list[dict[str, Any]]:
    """Every trace-summary record in `directory`, each checked against the contract."""
    traces = []
    for path in trace_files(directory):
        for record in read_jsonl(path):
            check_trace_record(record)
            traces.append(record)
    return traces


def by_name(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Spans keyed by name; names must be unique."""
    out: dict[str, dict[str, Any]] = {}
    for s in spans:
        assert s["name"] not in out, f"duplicate span name {s['name']!r}"
        out[s["name"]] = s
    return out


def flushed_spans(tracer: ft.Tracer, directory: Path | str) -> list[dict[str, Any]]:
    assert tracer.flush(timeout=10.0) is True
    return read_spans(directory)


# --------------------------------------------------------------------------
# Subprocesses
# --------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FERROTRACE_*/OTEL_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not is_tracer_variable(k)}
    env.update(extra)
    return env


def run_python(
    code: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Runs `code` in a fresh interpreter; fails the test on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    )
    return proc


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """Stray tracers (the global one, subprocesses') write to a temp dir. The
    outside FERROTRACE_*/OTEL_* variables are already gone (see the top of this file)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FERROTRACE_OUTPUT_DIR", str(tmp_path_factory.mktemp("stray-traces")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _no_leaked_current_span():
    assert ft.current_span() is None, "a previous test left a span active"
    yield
    assert ft.current_span() is None, "the test left a span active"


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "traces"


@pytest.fixture
def tracer(out_dir: Path):
    t = ft.Tracer(service_name="test", output_dir=out_dir)
    yield t
    t.shutdown(timeout=10.0)


@pytest.fixture
def make_tracer(tmp_path: Path):
    """Factory for tracers with custom options; all are shut down afterwards."""
    made: list[ft.Tracer] = []

    def make(output_dir: Path | str | None = None, **kwargs: Any) -> ft.Tracer:
        kwargs.setdefault("service_name", "test")
        t = ft.Tracer(output_dir=output_dir, **kwargs)
        made.append(t)
        return t

    yield make
    for t in made:
        t.shutdown(timeout=10.0)


@pytest.fixture
def global_tracer(tmp_path: Path):
    """The global tracer (behind ft.traced), writing to tmp_path/'global'."""
    directory = tmp_path / "global"
    t = ft.configure(service_name="global", output_dir=directory)
    yield t
    t.shutdown(timeout=10.0)
    # Leave an idle global tracer behind rather than one pointing at a deleted dir.
    ft.configure(service_name="idle", output_dir=None)


@pytest.fixture
def global_dir(tmp_path: Path) -> Path:
    return tmp_path / "global"
