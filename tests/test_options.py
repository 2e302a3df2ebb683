"""The option table: one list drives keywords, environment, tracer.config and the README."""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

import ferrotrace as ft
import pytest
from conftest import clean_env, read_spans, run_python

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = ft._core._options()
NAMES = [o["name"] for o in OPTIONS]


def test_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- options:[^\n]*-->\n(.*?)<!-- /options -->", readme, re.S)
    assert found, "README.md lost its options markers"
    assert found.group(1) == ft._core._options_markdown(), "run `make docs`"
    for option in OPTIONS:
        assert f"| `{option['name']}` |" in found.group(1)
        for var in option["env"]:
            assert f"`{var}`" in found.group(1)


def test_stub_lists_every_option_as_a_keyword():
    tree = ast.parse((ROOT / "python/ferrotrace/_core.pyi").read_text(encoding="utf-8"))
    tracer = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tracer")
    new = next(n for n in tracer.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    params = [a.arg for a in new.args.args[1:]] + [a.arg for a in new.args.kwonlyargs]
    assert sorted(params) == sorted(NAMES)


def test_config_shows_every_option(tmp_path):
    t = ft.Tracer("svc", tmp_path)
    try:
        assert sorted(t.config) == sorted(NAMES)
        assert t.config["exporters"] == ["jsonl"]
        assert t.config["propagators"] == ["tracecontext"]
        assert t.config["otlp_endpoint"] == "http://localhost:4318/v1/traces"
        assert t.config["otlp_headers"] == {}
    finally:
        t.shutdown()


def test_unknown_keyword_names_the_known_ones(tmp_path):
    with pytest.raises(TypeError, match="unknown_option.*buffer_size"):
        ft.Tracer(output_dir=tmp_path, unknown_option=1)
    with pytest.raises(TypeError, match="multiple values"):
        ft.Tracer("a", service_name="b")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exporters": ["jsonl", "kafka"]}, ValueError),
        ({"exporters": 3}, TypeError),
        ({"otlp_protocol": "grpc"}, ValueError),
        ({"otlp_endpoint": "collector:4318"}, ValueError),
        ({"otlp_headers": ["a=b"]}, TypeError),
        ({"otlp_timeout": 0}, ValueError),
        ({"otlp_compression": "zstd"}, ValueError),
        ({"zipkin_endpoint": "ftp://x"}, ValueError),
        ({"parent_based": "yes"}, TypeError),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else v.__name__,
)
def test_bad_export_keywords(tmp_path, kwargs, error):
    with pytest.raises(error):
        ft.Tracer(output_dir=tmp_path, **kwargs)


def test_export_options_from_keywords(tmp_path):
    t = ft.Tracer(
        output_dir=tmp_path,
        exporters="jsonl,console",
        otlp_endpoint="https://collector.example:4318/v1/traces",
        otlp_protocol="HTTP/JSON",
        otlp_headers={"api-key": "k", "x-n": 3},
        otlp_compression="gzip",
        otlp_timeout=2500,
        resource_attributes={"deployment.environment": "test"},
    )
    try:
        c = t.config
        assert c["exporters"] == ["jsonl", "console"]
        assert c["otlp_protocol"] == "http/json"
        assert c["otlp_headers"] == {"api-key": "k", "x-n": "3"}
        assert c["otlp_compression"] == "gzip"
        assert c["otlp_timeout"] == 2500
        assert c["resource_attributes"] == {"deployment.environment": "test"}
    finally:
        t.shutdown()


def test_export_options_from_the_environment(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "jsonl")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%20ecret,team=a")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "9")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,k=%E2%9C%93")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        t = ft.Tracer(output_dir=tmp_path)
    try:
        c = t.config
        assert c["otlp_endpoint"] == "http://collector:4318/v1/traces"
        assert c["otlp_headers"] == {"api-key": "s ecret", "team": "a"}
        assert c["otlp_timeout"] == 1500
        assert c["resource_attributes"] == {"deployment.environment": "prod", "k": "\u2713"}
        assert c["otlp_protocol"] == "http/protobuf"
        messages = [r.getMessage() for r in caplog.records if r.name == "ferrotrace"]
        assert len(messages) == 1 and "OTEL_EXPORTER_OTLP_PROTOCOL" in messages[0]
    finally:
        t.shutdown()


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("FERROTRACE_EXPORTERS", "jsonl,kafka"),
        ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
        ("OTEL_SDK_DISABLED", "maybe"),
    ],
)
def test_bad_environment_values_warn_and_keep_files(tmp_path, monkeypatch, caplog, var, raw):
    monkeypatch.setenv(var, raw)
    with caplog.at_level(logging.WARNING, logger="ferrotrace"):
        t = ft.Tracer("svc", tmp_path)
    try:
        warnings = [r.getMessage() for r in caplog.records if r.name == "ferrotrace"]
        assert len(warnings) == 1 and var in warnings[0]
        with t.start_span("x"):
            pass
        assert t.flush(timeout=10.0)
        assert [s["name"] for s in read_spans(tmp_path)] == ["x"]
    finally:
        t.shutdown()


def test_no_exporters_write_nothing_and_count_everything(tmp_path):
    t = ft.Tracer("svc", tmp_path, exporters=["none"])
    try:
        with t.start_span("x"):
            pass
        assert t.flush(timeout=10.0)
        m = t.metrics()
        assert m["spans_finished"] == 1
        assert m["spans_written"] == 0 and m["spans_exported"] == 0
        assert not list(tmp_path.iterdir())
        assert t.latency_stats()["count"] == 1, "analysis still sees the span"
    finally:
        t.shutdown()


def test_sdk_disabled_records_nothing(tmp_path):
    code = """
        import ferrotrace as ft
        t = ft.Tracer("svc")
        with t.start_span("x") as s:
            s.set_tag("k", 1)
            assert not s.sampled and not s.is_recording()
        assert t.flush(timeout=10)
        m = t.metrics()
        assert m["spans_finished"] == 1 and m["spans_unsampled"] == 1, m
        assert m["spans_written"] == 0, m
        print("ok")
    """
    env = clean_env(OTEL_SDK_DISABLED="true", FERROTRACE_OUTPUT_DIR=str(tmp_path))
    assert run_python(code, tmp_path, env=env).stdout.strip() == "ok"
    assert not list(tmp_path.glob("spans*"))


def test_propagators_are_resolved_once(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_PROPAGATORS", "b3")
    t = ft.Tracer(output_dir=tmp_path)
    monkeypatch.setenv("OTEL_PROPAGATORS", "xtrace")
    try:
        assert t.propagators == ["b3"]
        assert t.config["propagators"] == ["b3"]
    finally:
        t.shutdown()
