"""The web UI of `ferrotrace serve`, in headless Chromium driven by Playwright.

The server runs as the real command over a directory of span files written by
real tracers; the browser loads its pages as a user would. Screenshots go to
tests/artifacts/ (not committed). The 10,000-span trace's render time is
printed and saved in tests/artifacts/render-times.json: it is a measurement,
never an assertion (speed belongs in benchmarks, not in tests).

Chromium is Debian's package (`apt-get install chromium`); Playwright's own
browser download is never used. Without Chromium or Playwright these tests
are skipped with the reason, unless REQUIRE_BROWSER_TESTS=1 (CI) makes that
a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ferrotrace as ft
import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 20_000
CHROMIUM_CANDIDATES = [
    os.environ.get("CHROMIUM_PATH", ""),
    "/usr/lib/chromium/chromium",
    shutil.which("chromium") or "",
    shutil.which("chromium-browser") or "",
]


def chromium_path() -> str | None:
    return next((p for p in CHROMIUM_CANDIDATES if p and os.access(p, os.X_OK)), None)


def why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright; never `playwright install`)"
    if chromium_path() is None:
        return "Chromium not found (apt-get install chromium, or set CHROMIUM_PATH)"
    return None


_missing = why_no_browser()
if _missing is None:
    from playwright.sync_api import expect
if _missing and os.environ.get("REQUIRE_BROWSER_TESTS") == "1":
    raise RuntimeError(f"browser tests required but cannot run: {_missing}")
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser tests skipped: {_missing}")

# Markup that would run or load something if any page put span text into
# HTML. Each sets window.__xss or opens a dialog if it ever executes.
XSS_SERVICE = "<img src=x onerror=\"window.__xss='service'\">svc"
XSS_NAME = "<script>window.__xss='name'</script>op"
XSS_KEY = "<svg onload=\"window.__xss='key'\">k"
XSS_VALUE = "\"><img src=x onerror=alert('value')>"
XSS_MESSAGE = "<iframe src=\"javascript:alert('message')\"></iframe>boom"


class Server:
    """`python -m ferrotrace serve DIR --port 0`, stopped with SIGTERM."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ferrotrace", "serve", str(directory), "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        banner = self.proc.stdout.readline()
        if "UI and API at" not in banner:
            self.proc.kill()
            raise AssertionError(f"server did not start: {banner!r} {self.proc.communicate()}")
        self.url = banner.split("UI and API at ")[1].split("/ ")[0]

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # fail, without leaving a server running
            self.proc.communicate()
            raise
        assert self.proc.returncode == 0, err
        assert "Traceback" not in err


def write_traces(directory: Path) -> dict[str, str]:
    """A checkout (frontend → payments, which fails), a healthy search, and a
    trace whose every string is an XSS payload. Returns their trace ids."""
    frontend = ft.Tracer(service_name="frontend", output_dir=str(directory))
    payments = ft.Tracer(
        service_name="payments",
        output_dir=str(directory),
        resource_attributes={"deployment.environment": "test", "host.name": "pay-1"},
    )
    hostile = ft.Tracer(service_name=XSS_SERVICE, output_dir=str(directory))
    ids = {}
    with frontend.start_span("GET /checkout", kind="server", tags={"http.method": "GET"}) as root:
        with frontend.start_span("render cart", tags={"items": 3}):
            time.sleep(0.002)
        with frontend.start_span("POST /pay", kind="client") as call:
            with payments.start_span("charge card", kind="server", parent=call) as charge:
                charge.add_event("card checked", {"card.brand": "visa"})
                with payments.start_span("db.query", kind="client", tags={"db.system": "sqlite"}):
                    time.sleep(0.003)
                charge.set_error(
                    "CardDeclined: insufficient funds",
                    stack='Traceback (most recent call last):\n  File "pay.py", line 9\n',
                )
        root.set_error("payment failed")
    ids["checkout"] = root.trace_id
    with frontend.start_span("GET /search", kind="server") as search:
        with frontend.start_span("query index"):
            time.sleep(0.001)
    ids["search"] = search.trace_id
    with frontend.start_span("GET /evil", kind="server") as evil_root:
        with hostile.start_span(XSS_NAME, kind="server", parent=evil_root) as evil:
            evil.set_attribute(XSS_KEY, XSS_VALUE)
            evil.set_error(XSS_MESSAGE)
    ids["xss"] = evil_root.trace_id
    for t in (frontend, payments, hostile):
        assert t.shutdown()
    return ids


def write_big_trace(directory: Path, n: int) -> str:
    """One trace of `n` spans: a root, 100 requests of (n - 1) / 100 spans
    each, nested three deep, over three services."""
    tracers = [
        ft.Tracer(service_name=s, output_dir=str(directory), buffer_size=1 << 16)
        for s in ("gateway", "orders", "inventory")
    ]
    made = 1
    with tracers[0].start_span("batch import", kind="server") as root:
        while made < n:
            with tracers[1].start_span(f"order {made}", parent=root) as order:
                made += 1
                for j in range(min(98, n - made)):
                    tracer = tracers[2] if j % 2 else tracers[1]
                    with tracer.start_span(f"item {j}", parent=order) as item:
                        if j == 50 and made < 200:
                            item.set_error("out of stock")
                    made += 1
    for t in tracers:
        assert t.shutdown()
    return root.trace_id


def send_otlp_json(server: Server) -> str:
    """A span received over OTLP/JSON, with resource attributes as another
    language's SDK sends them; returns its trace id once it is indexed."""
    trace_id = "5b8efff798038103d269b633813fc60c"
    now = time.time_ns()
    attr = lambda k, v: {"key": k, "value": {"stringValue": v}}  # noqa: E731
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        attr("service.name", "inventory-go"),
                        attr("host.name", "inv-7"),
                        attr("deployment.environment", "test"),
                    ]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "reserve stock",
                                "kind": 2,
                                "startTimeUnixNano": str(now - 5_000_000),
                                "endTimeUnixNano": str(now),
                                "attributes": [attr("sku", "A-1")],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    req = urllib.request.Request(
        server.url + "/v1/traces",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    deadline = time.monotonic() + 20
    while not server.api("/api/traces?service=inventory-go")["data"]:
        assert time.monotonic() < deadline, "the OTLP span was not indexed"
        time.sleep(0.05)
    return trace_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    directory = tmp_path_factory.mktemp("ui") / "traces"
    ids = write_traces(directory)
    ids["big"] = write_big_trace(directory, 10_000)
    server = Server(directory)
    try:
        ids["otlp"] = send_otlp_json(server)
        assert server.api(f"/api/traces/{ids['big']}")["data"][0]["spans"].__len__() == 10_000
        yield server, ids
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh page that records dialogs, page errors and console errors."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Script errors only: a 4xx the page asked for on purpose is logged
        # by the browser as "Failed to load resource".
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(m.text)
                if m.type == "error" and not m.text.startswith("Failed to load resource")
                else None
            ),
        )

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)

    def assert_clean(self) -> None:
        assert self.dialogs == []
        assert self.errors == []
        assert self.page.evaluate("window.__xss") is None


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    p = Page(browser)
    yield p
    p.context.close()


def test_search_lists_traces_and_plots_them(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, ids = site
    p = page.page
    p.goto(server.url + "/")
    p.wait_for_selector(".result")
    listed = p.eval_on_selector_all(".result", "els => els.map(e => e.dataset.traceId)")
    assert set(ids.values()) <= set(listed)
    dots = p.eval_on_selector_all(".scatter-plot circle", "els => els.map(e => e.dataset.traceId)")
    assert sorted(dots) == sorted(listed)
    # Failed traces are drawn as errors in both views.
    checkout = p.locator(f'.result[data-trace-id="{ids["checkout"]}"]')
    assert "2 errors" in checkout.inner_text()
    assert p.locator(f'circle.error[data-trace-id="{ids["checkout"]}"]').count() == 1
    assert p.locator(f'circle.error[data-trace-id="{ids["search"]}"]').count() == 0
    page.screenshot("search")

    # The form's query goes into the URL and narrows the results.
    p.select_option("select[name=service]", "payments")
    p.fill("input[name=minDuration]", "1us")
    p.click("button[type=submit]")
    expect(p.locator(".result")).to_have_count(1)
    assert "service=payments" in p.url and "minDuration=1us" in p.url
    assert p.locator(".result").get_attribute("data-trace-id") == ids["checkout"]

    # The URL alone reproduces the search (shareable).
    p.goto(server.url + "/?service=frontend&errors=1")
    p.wait_for_selector(".result")
    errors_only = p.eval_on_selector_all(".result", "els => els.map(e => e.dataset.traceId)")
    assert ids["checkout"] in errors_only and ids["search"] not in errors_only
    assert p.locator("input[name=errors]").is_checked()

    # Slowest first, as the URL asks.
    p.goto(server.url + "/?order=slowest")
    p.wait_for_selector(".result")
    durations = p.eval_on_selector_all(".result", "els => els.map(e => +e.dataset.duration)")
    assert len(durations) > 2 and durations == sorted(durations, reverse=True)

    # A bad duration is the server's reason on the page, not a blank page.
    p.goto(server.url + "/?minDuration=soon")
    p.wait_for_selector(".notice.error")
    assert "minDuration" in p.locator(".notice.error").inner_text()

    # A click on a dot opens the trace.
    p.goto(server.url + "/")
    p.locator(f'circle[data-trace-id="{ids["search"]}"]').click()
    p.wait_for_url(f"**/trace/{ids['search']}*")
    page.assert_clean()


def test_new_traces_appear_without_a_reload(
    site: tuple[Server, dict[str, str]], page: Page, tmp_path: Path
) -> None:
    server, _ = site
    p = page.page
    p.goto(server.url + "/?service=latecomer")
    p.wait_for_selector(".notice")
    late = ft.Tracer(service_name="latecomer", output_dir=str(server.dir))
    with late.start_span("arrived later") as s:
        pass
    assert late.shutdown()
    p.wait_for_selector(f'.result[data-trace-id="{s.trace_id}"]')
    assert "1 new" in p.locator(".status").inner_text()


def test_trace_page_waterfall_errors_and_details(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, ids = site
    p = page.page
    trace = server.api(f"/api/traces/{ids['checkout']}")["data"][0]
    p.goto(server.url + f"/trace/{ids['checkout']}")
    p.wait_for_selector(".row")
    # Every span has a row, in tree order under the root.
    rows = p.eval_on_selector_all(".row", "els => els.map(e => e.dataset.spanId)")
    assert sorted(rows) == sorted(s["spanID"] for s in trace["spans"])
    names = p.eval_on_selector_all(".row .op", "els => els.map(e => e.textContent)")
    assert names[0] == "GET /checkout"
    assert names.index("charge card") < names.index("db.query")
    # The failed spans are marked, and only those.
    failed = p.eval_on_selector_all(".row.error .op", "els => els.map(e => e.textContent)")
    assert sorted(failed) == ["GET /checkout", "charge card"]
    assert p.locator(".row.error .error-mark").count() == 2
    # Services have their own colours; the critical path is drawn.
    colours = p.eval_on_selector_all(
        ".row",
        "els => Object.fromEntries(els.map(e => [e.querySelector('.svc').textContent,"
        " e.querySelector('.span-bar').style.background]))",
    )
    assert colours["frontend"] != colours["payments"]
    assert p.locator(".row.critical").count() >= 2
    assert p.locator(".row.critical .cp-seg").count() >= 2

    # The detail panel: attributes, events, the error and its stack, resource.
    p.locator(".row", has_text="charge card").click()
    detail = p.locator(".span-detail")
    detail.wait_for(state="visible")
    text = detail.inner_text()
    assert "CardDeclined: insufficient funds" in text
    assert 'File "pay.py", line 9' in detail.locator("pre.stack").inner_text()
    assert "card checked" in text and "visa" in text
    assert "span.kind" in text and "server" in text
    assert "span=" in p.url  # the selection is shareable
    page.screenshot("trace-detail")

    # Collapse the root: only it remains; expand again: all rows.
    p.locator(".row").first.locator("button.toggle").click()
    assert p.locator(".row").count() == 1
    p.get_by_role("button", name="Expand all").click()
    assert p.locator(".row").count() == len(trace["spans"])

    # Find: matching rows are marked; "only matching" keeps them and their ancestors.
    p.fill("input.find", "sqlite")
    expect(p.locator(".row.match")).to_have_count(1)
    assert p.locator(".row.match .op").inner_text() == "db.query"
    p.get_by_label("Only matching").check()
    expect(p.locator(".row")).to_have_count(4)
    shown = p.eval_on_selector_all(".row .op", "els => els.map(e => e.textContent)")
    assert shown == ["GET /checkout", "POST /pay", "charge card", "db.query"]
    assert "find=sqlite" in p.url

    # A shared URL restores the find and the selected span.
    p.goto(p.url)
    p.wait_for_selector(".row.selected")
    assert p.locator(".row.selected .op").inner_text() == "charge card"
    page.assert_clean()


def test_span_details_show_the_resource(site: tuple[Server, dict[str, str]], page: Page) -> None:
    server, ids = site
    p = page.page
    p.goto(server.url + f"/trace/{ids['otlp']}")
    p.locator(".row", has_text="reserve stock").click()
    resource = page.page.locator(".span-detail section", has_text="Resource")
    rows = resource.locator("tr").all_inner_texts()
    assert rows[0] == "service.name\tinventory-go"
    assert sorted(rows[1:]) == ["deployment.environment\ttest", "host.name\tinv-7"]
    assert "sku\tA-1" in p.locator(".span-detail").inner_text()
    page.assert_clean()


def test_unknown_and_malformed_trace_ids_say_so(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, _ = site
    p = page.page
    p.goto(server.url + "/trace/0123456789abcdef0123456789abcdef")
    assert "was not found" in p.locator(".notice.error").inner_text()
    p.goto(server.url + "/trace/not-hex")
    assert "not a trace id" in p.locator(".notice.error").inner_text()


def test_ten_thousand_span_trace_renders_virtualised(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, ids = site
    p = page.page
    p.goto(server.url + f"/trace/{ids['big']}")
    p.wait_for_selector("#main[data-render-ms]")
    figures = p.evaluate(
        "({render_ms: +document.getElementById('main').dataset.renderMs,"
        " fetch_ms: +document.getElementById('main').dataset.fetchMs,"
        " spans: +document.getElementById('main').dataset.spanCount})"
    )
    assert figures["spans"] == 10_000
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "render-times.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"\n10,000-span trace: rendered in {figures['render_ms']:.0f} ms "
        f"(API fetch {figures['fetch_ms']:.0f} ms)"
    )
    # Only the rows in view exist in the page, however long the trace.
    in_dom = p.locator(".row").count()
    assert 0 < in_dom < 200
    # The last span is reachable by scrolling: the list has room for every span.
    p.eval_on_selector(".timeline-body", "e => { e.scrollTop = e.scrollHeight; }")
    p.wait_for_selector(".row .op:text-is('item 97')")
    # Find reaches a span deep in the trace and reveals it.
    p.fill("input.find", "order 9802")
    expect(p.locator(".match-info")).to_have_text("1 match")
    p.keyboard.press("Enter")
    p.wait_for_selector(".row.selected .op:text-is('order 9802')")
    # Collapsing the root leaves one row.
    p.eval_on_selector(".timeline-body", "e => { e.scrollTop = 0; }")
    p.fill("input.find", "")
    p.locator(".row").first.locator("button.toggle").click()
    expect(p.locator(".row")).to_have_count(1)
    page.screenshot("big-trace")
    page.assert_clean()


def test_service_graph_operations_and_error_groups(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, ids = site
    p = page.page
    p.goto(server.url + "/graph")
    edge = p.locator('.edge[data-parent="frontend"][data-child="payments"]')
    edge.wait_for()
    assert "1 call · 100% errors" in (edge.text_content() or "")
    assert p.locator('.node[data-service="payments"]').count() == 1
    row = p.locator("table.edges tr", has_text="payments")
    assert row.locator("td").all_inner_texts()[2:] == ["1", "1", "100%"]
    page.screenshot("service-graph")

    p.goto(server.url + "/operations")
    p.wait_for_selector("table.sortable tbody tr")
    p.get_by_role("button", name="Count").click()
    p.wait_for_url("**/operations?order=count")
    p.wait_for_selector("th.sorted >> text=Count")
    counts = p.eval_on_selector_all(
        "table.sortable tbody tr", "rows => rows.map(r => +r.children[2].textContent)"
    )
    assert counts == sorted(counts, reverse=True)
    charge = p.locator("table.sortable tbody tr", has_text="charge card")
    assert charge.locator("td").all_inner_texts()[3:5] == ["1", "100%"]
    page.screenshot("operations")

    p.goto(server.url + "/errors")
    group = p.locator("table.error-groups tbody tr", has_text="insufficient funds")
    group.wait_for()
    group.get_by_role("link", name="trace").click()
    p.wait_for_url(f"**/trace/{ids['checkout']}")
    page.assert_clean()


def test_hostile_span_text_is_shown_as_text(
    site: tuple[Server, dict[str, str]], page: Page
) -> None:
    server, ids = site
    p = page.page
    planted = (
        "document.querySelectorAll('main img, main script, main iframe, main svg[onload],"
        " main [onerror], main [onload]').length"
    )
    p.goto(server.url + "/")
    p.wait_for_selector(f'.result[data-trace-id="{ids["xss"]}"]')
    assert XSS_SERVICE in p.locator(f'.result[data-trace-id="{ids["xss"]}"]').inner_text()
    assert p.evaluate(planted) == 0

    p.goto(server.url + f"/trace/{ids['xss']}")
    p.wait_for_selector(".row")
    assert XSS_NAME in p.locator(".row .op").all_inner_texts()
    assert XSS_SERVICE in p.locator(".row .svc").all_inner_texts()
    p.locator(".row", has_text="window.__xss='name'").click()
    detail = p.locator(".span-detail")
    detail.wait_for(state="visible")
    text = detail.inner_text()
    for payload in (XSS_KEY, XSS_VALUE, XSS_MESSAGE, XSS_SERVICE, XSS_NAME):
        assert payload in text
    p.fill("input.find", "<script>")
    expect(p.locator(".row.match")).to_have_count(1)
    assert p.evaluate(planted) == 0
    page.screenshot("xss-trace")

    pages = {
        "/graph": "table.edges",
        "/operations": "table.sortable",
        "/errors": "table.error-groups",
        "/?service=" + urllib.parse.quote(XSS_SERVICE): ".result",
    }
    for path, ready in pages.items():
        p.goto(server.url + path)
        p.wait_for_selector(ready)
        assert XSS_SERVICE in p.locator(ready).inner_text(), path
        if path == "/errors":
            assert XSS_MESSAGE in p.locator(ready).inner_text()
        assert p.evaluate(planted) == 0, path
    page.assert_clean()
