"""`ferrotrace stats` over 1M spans beside a plain-Python baseline, in one run.

Writes 1,000,000 spans (50 operations across 4 services, ~10-span traces
that cross services, 2 processes per service, each process's spans in its own
file in finish order) as JSONL into a temporary directory, then times:

* `python -m ferrotrace stats DIR --json` (the streaming Rust path, exact
  nearest-rank percentiles), in a child process; its peak RSS is read with
  `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss` (it is the first child);
* the same with `--sketch` (one quantile sketch per operation: memory
  bounded by the number of operations, not the span count);
* a plain-Python baseline in a child process: `json.loads` each line, group
  durations by (service, name), sort, nearest-rank p50/p95/p99;

and checks that both give the same counts and percentiles. Later children's
peak RSS comes from `os.wait4`.

Target (issue 3): `stats` in at most 3 s and at least 10x faster than the
baseline. Usage: python benches/bench_analysis.py [--spans N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVICES = ("frontend", "api", "auth", "inventory")
# 50 operations: (service, name, kind). A trace is a frontend page that calls
# the api, which calls auth and inventory; each calls its own internals.
PAGES = [f"GET /{page}" for page in ("", "cart", "checkout", "search", "product/{id}")]
PAGES += [f"POST /{page}" for page in ("cart", "checkout", "login", "logout", "review")]
API_ROUTES = [
    f"{method} /api/v1/{res}"
    for method in ("GET", "POST", "PUT", "DELETE")
    for res in ("orders", "users", "carts", "items", "prices")
]
AUTH_OPS = ["auth.verify", "auth.load_user", "auth.check_scope", "auth.issue_token"]
AUTH_OPS += ["SELECT users", "redis GET"]
INVENTORY_OPS = [
    "inventory.reserve",
    "inventory.lookup",
    "SELECT stock",
    "UPDATE stock",
    "redis MGET",
    "kafka publish",
]
FRONTEND_INTERNAL = ["render", "template.load", "session.load", "http.client"]
API_INTERNAL = ["serialize", "validate", "cache.get", "http.client"]
OPERATIONS = (
    [("frontend", op) for op in PAGES + FRONTEND_INTERNAL]
    + [("api", op) for op in API_ROUTES + API_INTERNAL]
    + [("auth", op) for op in AUTH_OPS]
    + [("inventory", op) for op in INVENTORY_OPS]
)
assert len(set(OPERATIONS)) == 50, len(set(OPERATIONS))

BASE_NS = 1_760_000_000_000_000_000
ERROR_MESSAGES = (
    ("TimeoutError", "query {n} timed out after {ms}ms"),
    ("KeyError", "'user:{n}'"),
    ("ConnectionError", "connection to 10.0.{n}.1:5432 refused"),
)


class Node:
    __slots__ = ("service", "name", "kind", "children", "self_ms", "start", "end", "span_id")

    def __init__(self, service: str, name: str, kind: str) -> None:
        self.service, self.name, self.kind = service, name, kind
        self.children: list[Node] = []
        self.self_ms = 0.0
        self.start = self.end = 0
        self.span_id = ""


def _trace_tree(rng: random.Random) -> Node:
    root = Node("frontend", rng.choice(PAGES), "server")
    root.children.append(Node("frontend", "session.load", "internal"))
    for _ in range(rng.choice((1, 1, 2))):
        client = Node("frontend", "http.client", "client")
        api = Node("api", rng.choice(API_ROUTES), "server")
        client.children.append(api)
        root.children.append(client)
        auth_client = Node("api", "http.client", "client")
        auth = Node("auth", "auth.verify", "server")
        auth.children.append(Node("auth", rng.choice(AUTH_OPS[1:]), "internal"))
        auth_client.children.append(auth)
        api.children.append(auth_client)
        api.children.append(Node("api", rng.choice(API_INTERNAL[:3]), "internal"))
        if rng.random() < 0.6:
            inv = Node("inventory", rng.choice(INVENTORY_OPS[:2]), "server")
            inv.children.append(Node("inventory", rng.choice(INVENTORY_OPS[2:]), "client"))
            api.children.append(inv)
    root.children.append(Node("frontend", rng.choice(("render", "template.load")), "internal"))
    return root


def _assign_times(node: Node, start: int, rng: random.Random) -> None:
    """Children run one after another inside their parent, with gaps of self time."""
    node.self_ms = rng.lognormvariate(0.0, 0.8)
    node.start = start
    at = start + int(node.self_ms * 0.3e6)
    for child in node.children:
        _assign_times(child, at, rng)
        at = child.end + int(rng.expovariate(5.0) * 1e6)
    node.end = at + int(node.self_ms * 0.7e6)


def _walk(node: Node, parent: Node | None, out: list[tuple[Node, Node | None]]) -> None:
    for child in node.children:
        _walk(child, node, out)
    out.append((node, parent))  # finish order: children before their parent


def write_spans(directory: Path, total_spans: int, seed: int = 7) -> int:
    """Writes about `total_spans` spans; returns the exact count."""
    rng = random.Random(seed)
    files = {}
    for i, service in enumerate(SERVICES):
        (directory / service).mkdir(parents=True, exist_ok=True)
        for proc in (0, 1):
            name = directory / service / f"spans-{4000 + 10 * i + proc}.jsonl"
            files[(service, proc)] = open(name, "w", encoding="utf-8")  # noqa: SIM115
    written = 0
    clock = BASE_NS
    try:
        while written < total_spans:
            root = _trace_tree(rng)
            clock += int(rng.expovariate(1.0) * 1e6)
            _assign_times(root, clock, rng)
            trace_id = f"{rng.getrandbits(128) | 1:032x}"
            spans: list[tuple[Node, Node | None]] = []
            _walk(root, None, spans)
            for node, _ in spans:
                node.span_id = f"{rng.getrandbits(64) | 1:016x}"
            procs = {service: rng.randrange(2) for service in SERVICES}
            leaves = [node for node, _ in spans if not node.children]
            failed = rng.choice(leaves) if rng.random() < 0.03 else None
            for node, parent in spans:
                error = "null"
                status = "ok"
                if node is failed:
                    error_type, template = rng.choice(ERROR_MESSAGES)
                    message = template.format(n=rng.randrange(1000), ms=rng.randrange(5000))
                    error = json.dumps({"type": error_type, "message": message, "stack": None})
                    status = "error"
                parent_id = f'"{parent.span_id}"' if parent else "null"
                duration = (node.end - node.start) / 1e6
                files[(node.service, procs[node.service])].write(
                    f'{{"trace_id":"{trace_id}","span_id":"{node.span_id}",'
                    f'"parent_id":{parent_id},"name":"{node.name}","service":"{node.service}",'
                    f'"kind":"{node.kind}","start_ns":{node.start},"end_ns":{node.end},'
                    f'"duration_ms":{duration!r},"status":"{status}",'
                    f'"attributes":{{"service.version":"1.4.2","host.name":"{node.service}-{procs[node.service]}",'
                    f'"http.status_code":{500 if status == "error" else 200}}},'
                    f'"events":[],"error":{error}}}\n'
                )
            written += len(spans)
    finally:
        for f in files.values():
            f.close()
    return written


BASELINE = r"""
import json, math, sys
from collections import defaultdict
from pathlib import Path

durations = defaultdict(list)
errors = defaultdict(int)
for path in sorted(Path(sys.argv[1]).rglob("spans*.jsonl")):
    with open(path, encoding="utf-8") as f:
        for line in f:
            span = json.loads(line)
            key = (span["service"], span["name"])
            durations[key].append(span["duration_ms"])
            errors[key] += span["status"] == "error"
rows = []
for (service, name), values in durations.items():
    values.sort()
    n = len(values)
    rank = lambda p: values[max(1, math.ceil(p / 100 * n)) - 1]
    rows.append({"service": service, "operation": name, "count": n,
                 "error_count": errors[(service, name)], "total_ms": sum(values),
                 "p50": rank(50), "p95": rank(95), "p99": rank(99)})
rows.sort(key=lambda r: -r["total_ms"])
json.dump(rows, sys.stdout)
"""


def _timed(cmd: list[str]) -> tuple[float, str, float]:
    """Runs `cmd`; returns its wall time, stdout and peak RSS in MiB (from
    wait4's rusage: the same ru_maxrss RUSAGE_CHILDREN reports, per child)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"{cmd!r} failed ({proc.returncode}): {err.read().strip()}")
        return elapsed, out.read(), _mib(usage.ru_maxrss)


def _mib(max_rss: int) -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    return max_rss / (1 << 20) if sys.platform == "darwin" else max_rss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the spans here and keep them")
    args = parser.parse_args()

    directory = args.keep or Path(tempfile.mkdtemp(prefix="ferrotrace-bench-"))
    try:
        start = time.perf_counter()
        spans = write_spans(directory, args.spans)
        size = sum(p.stat().st_size for p in directory.rglob("spans*.jsonl"))
        print(
            f"wrote {spans:,} spans ({size / 1e6:.0f} MB, {len(OPERATIONS)} operations, "
            f"{len(SERVICES)} services, 8 files) in {time.perf_counter() - start:.1f}s"
        )

        py = sys.executable
        stats = [py, "-m", "ferrotrace", "stats", str(directory), "--json"]
        rust_s, out, _ = _timed(stats)
        # The first child, so RUSAGE_CHILDREN's peak is its own.
        rust_rss = _mib(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        sketch_s, sketch_out, sketch_rss = _timed([*stats, "--sketch"])
        base_s, base_out, base_rss = _timed([py, "-c", BASELINE, str(directory)])

        ours = {(r["service"], r["operation"]): r for r in json.loads(out)}
        theirs = {(r["service"], r["operation"]): r for r in json.loads(base_out)}
        assert ours.keys() == theirs.keys() and len(ours) == 50, (len(ours), len(theirs))
        for key, r in theirs.items():
            for field in ("count", "error_count", "p50", "p95", "p99"):
                assert ours[key][field] == r[field], (key, field, ours[key][field], r[field])
        worst = 0.0
        for r in json.loads(sketch_out):
            exact = ours[(r["service"], r["operation"])]
            for p in ("p50", "p95", "p99"):
                worst = max(worst, abs(r[p] - exact[p]) / exact[p])

        speedup = base_s / rust_s
        rows = [
            ("ferrotrace stats --json", rust_s, rust_rss, "exact nearest-rank"),
            ("ferrotrace stats --json --sketch", sketch_s, sketch_rss, f"within {worst:.2%}"),
            ("plain Python (json.loads, sort)", base_s, base_rss, "exact nearest-rank"),
        ]
        for name, seconds, rss, note in rows:
            print(f"  {name:34} {seconds:6.2f} s  peak RSS {rss:5.0f} MiB  {note}")
        print(f"  speed-up {speedup:.1f}x; counts and percentiles identical to the baseline")
        ok = rust_s <= 3.0 and speedup >= 10.0
        print(f"  target (<= 3 s and >= 10x): {'met' if ok else 'MISSED'}")
    finally:
        if args.keep is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
