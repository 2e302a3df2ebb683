"""Run by a freshly installed ferrotrace, in its own virtualenv: records three
spans in OUTPUT_DIR, reads them back, and prints as one JSON line what the
caller needs to check that the installed copy (not a source tree) did it.
Exits 1 if the three spans are not in the files.

Used by tests/test_packaging.py (a wheel) and `make check-dist` (the sdist).
Usage: python packaging_smoke.py OUTPUT_DIR
"""

from __future__ import annotations

import json
import pathlib
import sys


def main(output_dir: str) -> None:
    import ferrotrace
    from ferrotrace import _core

    tracer = ferrotrace.Tracer(service_name="packaged", output_dir=output_dir)
    with tracer.start_span("packaged.outer", tags={"check": "installed"}) as outer:
        outer.set_tag("python", sys.version.split()[0])
        with tracer.start_span("packaged.inner"):
            pass

    @tracer.traced()
    def work(x: int) -> int:
        return x * 2

    result = work(21)
    flushed = tracer.flush(timeout=10.0)
    metrics = tracer.metrics()
    tracer.shutdown()
    names = sorted(
        json.loads(line)["name"]
        for path in pathlib.Path(output_dir).glob("spans*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    )
    print(
        json.dumps(
            {
                "spans": names,
                "package": ferrotrace.__file__,
                "core": _core.__file__,
                "version": ferrotrace.__version__,
                "result": result,
                "flushed": flushed,
                "spans_written": metrics["spans_written"],
                "spans_dropped": metrics["spans_dropped"],
            }
        )
    )
    if len(names) != 3 or "packaged.inner" not in names:
        sys.exit(f"packaging_smoke: expected 3 spans in {output_dir}, found {names}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: packaging_smoke.py OUTPUT_DIR")
    main(sys.argv[1])
