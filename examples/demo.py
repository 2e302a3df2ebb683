"""ferrotrace demo: traces nested, failing, async and threaded work, then
reports where the JSONL files are and what was written.

Run with `make demo` (or `python examples/demo.py [OUTPUT_DIR]`).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import shutil
import sys
import time
from pathlib import Path

import ferrotrace as ft

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "demo-traces")
if OUT.exists():
    shutil.rmtree(OUT)

tracer = ft.configure(service_name="demo-shop", output_dir=str(OUT))


class PaymentDeclined(Exception):
    pass


@ft.traced("db.query", kind="client", tags={"db.system": "postgresql"})
def query(sql: str) -> int:
    ft.current_span().set_tag("db.statement", sql)
    time.sleep(random.uniform(0.001, 0.004))
    return 3


@ft.traced
def charge(order_id: int) -> None:
    if order_id % 4 == 0:
        raise PaymentDeclined(f"card declined for order {order_id}")
    time.sleep(0.002)


def checkout(order_id: int) -> None:
    with tracer.start_span("POST /checkout", kind="server", tags={"order.id": order_id}) as span:
        rows = query("SELECT * FROM cart WHERE order_id = $1")
        span.log("cart loaded", rows=rows)
        try:
            charge(order_id)
            span.set_status(200)
        except PaymentDeclined as exc:
            span.set_status(402)
            span.log("payment failed", level="warning", reason=str(exc))


@ft.traced("recommendations.fetch")
async def fetch_recommendations(user: int) -> list[int]:
    await asyncio.sleep(random.uniform(0.001, 0.01))
    return [user, user + 1]


@ft.traced("GET /home")
async def home(user: int) -> int:
    parts = await asyncio.gather(*(fetch_recommendations(user + i) for i in range(3)))
    return sum(len(p) for p in parts)


async def serve_homepages() -> None:
    await asyncio.gather(*(home(user) for user in range(5)))


def resize(image: int) -> int:
    with tracer.start_span("image.resize", tags={"image.id": image}):
        time.sleep(0.001)
        return image


def batch_job() -> None:
    with tracer.start_span("batch.thumbnails"):
        with ft.ContextThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(resize, range(8)))


def main() -> None:
    random.seed(7)
    for order_id in range(1, 9):
        checkout(order_id)
    asyncio.run(serve_homepages())
    batch_job()
    try:
        with tracer.start_span("nightly.report"):
            raise RuntimeError("report template missing")
    except RuntimeError:
        pass  # the span recorded it; the demo carries on

    tracer.flush()
    spans = [json.loads(line) for f in sorted(OUT.glob("spans*.jsonl")) for line in f.open()]
    traces = [json.loads(line) for f in sorted(OUT.glob("traces*.jsonl")) for line in f.open()]
    print(f"wrote {len(spans)} spans and {len(traces)} trace summaries to {OUT.resolve()}/")
    for f in sorted(OUT.iterdir()):
        print(f"  {f.name}  ({f.stat().st_size} bytes)")
    by_name = collections.Counter(s["name"] for s in spans)
    errors = [s for s in spans if s["status"] == "error"]
    print("\nspans per operation:")
    for name, count in by_name.most_common():
        durations = sorted(s["duration_ms"] for s in spans if s["name"] == name)
        print(f"  {name:24s} {count:3d}  max {durations[-1]:7.2f} ms")
    print(f"\n{len(errors)} failed spans:")
    for s in errors:
        print(f"  {s['name']}: {s['error']['type']}: {s['error']['message']}")
    slowest = max(traces, key=lambda t: t["duration_ms"])
    print(
        f"\nslowest trace {slowest['trace_id']} ({slowest['operation']}): "
        f"{slowest['duration_ms']:.2f} ms, {slowest['span_count']} spans"
    )
    m = tracer.metrics()
    print(
        f"metrics: {m['spans_written']} written, {m['spans_dropped']} dropped, "
        f"{m['errors']} errors, {m['write_errors']} write errors"
    )


if __name__ == "__main__":
    main()
