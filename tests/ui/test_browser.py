"""The dashboard in a real browser: Debian's Chromium driven by Playwright.

``autotrack ui`` runs as a subprocess on a free loopback port over a store filled with real runs
(tests/ui/store_fill.py) plus one run that is still training in another process. Each test opens
a fresh browser context, fails on any console error or uncaught exception, and leaves a
screenshot of each page it looked at in ``test-output/screenshots/`` (or AUTOTRACK_SCREENSHOTS).

Without Chromium these tests skip, unless AUTOTRACK_REQUIRE_BROWSER=1 (set by .ci/run, which
installs it), where a missing browser is a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

import autotrack
from tests.ui.store_fill import XSS, XSS_NAME, fill

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("AUTOTRACK_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("AUTOTRACK_SCREENSHOTS") or ROOT / "test-output" / "screenshots")
TOKEN = "ui-test-token"


def _need_browser() -> Any:
    required = os.environ.get("AUTOTRACK_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed")
    if not os.path.exists(CHROMIUM):
        if required:
            pytest.fail(f"AUTOTRACK_REQUIRE_BROWSER=1 but there is no browser at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UI:
    """``autotrack ui`` in a subprocess."""

    def __init__(self, uri: str, log: Path, token: str | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        env.pop("AUTOTRACK_TOKEN", None)
        if token:
            env["AUTOTRACK_TOKEN"] = token
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "autotrack", "ui", "--uri", uri, "--port", str(self.port)],
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/ui/api/info", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"autotrack ui did not start: {log.read_text(errors='replace')}")
                time.sleep(0.2)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


LIVE = textwrap.dedent("""
    import sys, time, autotrack
    run = autotrack.start_run(name="live-run", uri=sys.argv[1], experiment="mnist", params={"lr": 0.03})
    for step in range(100000):
        run.log_metrics({"live_loss": 1.0 / (1 + step)}, step=step)
        if step == 5:
            print("started", flush=True)
        time.sleep(0.05)
""")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Any]]:
    sync_playwright = _need_browser()
    base = tmp_path_factory.mktemp("ui")
    uri = str(base / "runs")
    ids = fill(uri, str(base / "checkpoints"))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), AUTOTRACK_FLUSH_SECONDS="0.2")
    live = subprocess.Popen([sys.executable, "-c", LIVE, uri], env=env, stdout=subprocess.PIPE)
    assert live.stdout is not None and live.stdout.readline().strip() == b"started"
    ui = UI(uri, base / "ui.log")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield {"uri": uri, "ids": ids, "ui": ui, "browser": browser, "base": base}
        browser.close()
    ui.stop()
    live.send_signal(signal.SIGTERM)
    live.wait(20)


@pytest.fixture
def page(world, request) -> Iterator[Any]:
    context = world["browser"].new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True,
                                         bypass_csp=True)  # the escaping must hold without CSP's help
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert problems == [], f"the browser console reported errors in {request.node.name}"


def ready(pg: Any, view: str) -> None:
    pg.wait_for_selector(f"body[data-ready='{view}']", timeout=20_000)


def shot(pg: Any, name: str) -> None:
    pg.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def drawn(pg: Any) -> list[int]:
    """For each chart canvas, how many of its pixels are painted (0: an empty chart)."""
    return pg.evaluate("""() => Array.from(document.querySelectorAll('.chart canvas')).map(c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
        return n; })""")


def row_names(pg: Any) -> list[str]:
    return pg.locator("table.runs tbody td.name a[data-testid=run-link]").all_inner_texts()  # not the badges


def test_runs_table_filter_and_live_run(world, page) -> None:
    page.goto(world["ui"].url + "/")
    ready(page, "runs")
    names = row_names(page)
    assert set(names) >= {"baseline", "bigger-lr", "diverged", "LogisticRegression", "live-run", XSS_NAME}
    live = page.locator("tr", has=page.locator("a", has_text="live-run"))
    assert live.locator(".status-running .pulse").count() == 1
    assert "running" in page.locator(".live-note").inner_text()
    shot(page, "runs-table")

    page.select_option("[data-testid=filter-experiment]", "tabular")
    page.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 1")
    ready(page, "runs")
    assert row_names(page) == ["LogisticRegression"]
    page.select_option("[data-testid=filter-experiment]", "")
    ready(page, "runs")
    page.fill("[data-testid=filter-text]", "bigger")
    page.wait_for_function("document.querySelectorAll('table.runs tbody tr').length === 1")
    assert row_names(page) == ["bigger-lr"]
    assert "1–1 of 1" in page.get_by_test_id("page-info").inner_text()
    shot(page, "runs-table-filtered")

    page.goto(world["ui"].url + "/#/?sort=name&order=asc")
    ready(page, "runs")
    assert row_names(page) == sorted(row_names(page))


def test_run_page_draws_charts_and_refreshes_live(world, page) -> None:
    page.goto(world["ui"].url + "/")
    ready(page, "runs")
    page.click("a[data-testid=run-link] >> text=baseline")
    ready(page, "run")
    assert page.get_by_test_id("run-name").inner_text() == "baseline"
    assert page.locator(".chart canvas").count() == 3
    page.wait_for_timeout(200)
    assert all(n > 500 for n in drawn(page)), "a chart canvas is blank"
    assert "0.01" in page.get_by_test_id("params").inner_text()
    assert "random.seed" in page.get_by_test_id("seeds").inner_text()
    assert "best" in page.get_by_test_id("artifacts").inner_text()
    assert "python" in page.get_by_test_id("environment").inner_text()
    page.select_option("[data-testid=x-axis]", "epoch")
    assert page.locator(".chart canvas").count() == 3
    shot(page, "run-page")

    page.goto(world["ui"].url + "/")
    ready(page, "runs")
    page.click("a[data-testid=run-link] >> text=live-run")
    ready(page, "run")
    caption = page.locator("figure[class*=chart-card] figcaption").first
    first = caption.inner_text()
    page.wait_for_function("t => document.querySelector('figure.chart-card figcaption').innerText !== t",
                           arg=first, timeout=20_000)
    assert "live" in page.locator(".live-note").inner_text()
    shot(page, "run-page-live")


def test_failed_run_shows_its_traceback(world, page) -> None:
    page.goto(world["ui"].url + "/#/run/" + world["ids"]["failed"])
    ready(page, "run")
    assert "FloatingPointError: loss is NaN at step 0" in page.get_by_test_id("traceback").inner_text()
    assert page.locator(".status-failed").count() == 1
    shot(page, "run-failed")


def test_select_two_runs_and_compare(world, page) -> None:
    page.goto(world["ui"].url + "/#/?experiment=mnist")
    ready(page, "runs")
    for name in ("baseline", "bigger-lr"):
        page.locator("tr", has=page.locator("a", has_text=re.compile(f"^{name}$"))).get_by_test_id("select-run").check()
    page.get_by_test_id("compare-button").click()
    ready(page, "compare")
    diff = page.get_by_test_id("diff-table")
    assert diff.locator("tr[data-key=lr]").inner_text().split("\t")[-2:] == ["0.01", "0.05"]
    assert diff.locator("tr[data-key='train/sha256']").count() == 1  # the data differs too
    assert diff.locator("tr[data-key='random.seed']").count() == 1
    assert diff.locator("tr[data-key=optimizer]").count() == 0  # the same in both: not listed
    assert page.locator(".chart canvas").count() == 3
    page.wait_for_timeout(200)
    assert all(n > 500 for n in drawn(page))
    assert page.locator(".chart").first.locator(".u-legend .u-series").count() == 3  # x + two runs
    assert page.locator("[data-testid=scatter] circle").count() == 2
    shot(page, "compare")


def test_download_artifact_is_the_recorded_bytes(world, page, tmp_path) -> None:
    run = autotrack.get_run(world["ids"]["baseline"], uri=world["uri"])
    art = run.artifacts[0]
    page.goto(world["ui"].url + "/#/run/" + run.id)
    ready(page, "run")
    with page.expect_download() as info:
        page.get_by_test_id("artifact-link").first.click()
    dest = tmp_path / "got.ckpt"
    info.value.save_as(dest)
    assert info.value.suggested_filename == "baseline.ckpt"
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == art.sha256


def test_recorded_html_is_shown_as_text(world, page) -> None:
    page.goto(world["ui"].url + "/")
    ready(page, "runs")
    page.locator("a[data-testid=run-link]", has_text="onerror").click()
    ready(page, "run")
    assert page.get_by_test_id("run-name").inner_text() == XSS_NAME
    assert XSS in page.get_by_test_id("params").inner_text()
    assert XSS in page.get_by_test_id("tags").inner_text()
    assert page.locator("img[src=x]").count() == 0 and page.locator("#app script").count() == 0
    page.wait_for_timeout(300)  # an injected handler would have fired by now (the page fixture fails on dialogs)
    shot(page, "run-xss")


def test_token_is_asked_for_and_sent(world, page) -> None:
    ui = UI(world["uri"], world["base"] / "ui-token.log", token=TOKEN)
    try:
        seen: list[str | None] = []
        page.on("request", lambda r: seen.append(r.headers.get("authorization")) if "/ui/api/runs" in r.url else None)
        page.on("console", lambda m: None)
        page.goto(ui.url + "/")
        page.get_by_test_id("token-form").wait_for()
        shot(page, "token-form")
        page.get_by_test_id("token-input").fill("wrong")
        page.keyboard.press("Enter")
        page.get_by_text("not accepted").wait_for()
        page.get_by_test_id("token-input").fill(TOKEN)
        page.keyboard.press("Enter")
        ready(page, "runs")
        assert "baseline" in row_names(page)
        assert seen[-1] == f"Bearer {TOKEN}"
        # the failed attempts are 401 responses, which Chromium logs as console errors by design
        page.problems[:] = [p for p in page.problems if "401" not in p]  # type: ignore[attr-defined]
    finally:
        ui.stop()


def test_report_opens_offline(world, page, tmp_path) -> None:
    out = tmp_path / "report.html"
    ids = world["ids"]
    done = subprocess.run([sys.executable, "-m", "autotrack", "report", ids["baseline"], ids["bigger-lr"], "--uri",
                           world["uri"], "-o", str(out)], env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outside: list[str] = []
    page.route("**/*", lambda route: (outside.append(route.request.url), route.abort())
               if not route.request.url.startswith(("file:", "data:", "blob:")) else route.continue_())
    page.goto(out.as_uri())
    ready(page, "compare")
    assert page.locator(".chart canvas").count() == 3
    page.wait_for_timeout(200)
    assert all(n > 500 for n in drawn(page))
    assert page.get_by_test_id("diff-table").locator("tr[data-key=lr]").count() == 1
    shot(page, "report-compare")
    page.locator("a", has_text=re.compile("^baseline$")).first.click()
    ready(page, "run")
    assert page.get_by_test_id("run-name").inner_text() == "baseline"
    shot(page, "report-run")
    assert outside == []


def test_admin_deletes_a_run_and_the_owner_is_shown(world, tmp_path, monkeypatch) -> None:
    """On a tracking server with tokens: the table says which token ran what; an admin token's
    run page has "delete run", which asks first; a write token's has none."""
    from tests.server.helpers import ServerProcess

    store = str(tmp_path / "served")
    tokens = {}
    for name, scope in (("alice", "write"), ("ops", "admin")):
        out = subprocess.run([sys.executable, "-m", "autotrack", "token", "create", name, "--scope", scope,
                              "--uri", store], env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        tokens[name] = out.stdout.strip()
    server = ServerProcess(store, token=None).start()
    try:
        monkeypatch.setenv("AUTOTRACK_TOKEN", tokens["alice"])
        with autotrack.start_run(uri=server.url, name="alices-run") as run:
            run.log_metric("loss", 0.5, step=0)
        context = world["browser"].new_context(viewport={"width": 1300, "height": 900})
        pg = context.new_page()
        asked: list[str] = []
        pg.on("dialog", lambda d: (asked.append(d.message), d.accept()))
        for who in ("alice", "ops"):
            pg.goto(server.url + "/")
            pg.evaluate("sessionStorage.clear()")
            pg.reload()
            pg.get_by_test_id("token-form").wait_for()
            pg.get_by_test_id("token-input").fill(tokens[who])
            pg.keyboard.press("Enter")
            ready(pg, "runs")
            assert pg.get_by_test_id("owner").all_inner_texts() == ["alice"]
            pg.click("a[data-testid=run-link] >> text=alices-run")
            ready(pg, "run")
            assert "alice" in pg.get_by_test_id("run-facts").inner_text()
            pg.wait_for_timeout(300)
            assert pg.get_by_test_id("delete-run").count() == (1 if who == "ops" else 0)
        shot(pg, "run-page-admin")
        pg.get_by_test_id("delete-run").click()
        ready(pg, "runs")
        assert asked and "Delete run alices-run" in asked[0]
        assert row_names(pg) == []
        assert autotrack.runs(uri=store) == []
        context.close()
    finally:
        server.stop()


def test_single_value_metrics_are_a_table_not_charts(world, page) -> None:
    """A scikit-learn fit logs each score once: the run page lists them in a table of values
    (no chart of one dot), and the compare view does the same next to the other runs' curves."""
    ids = world["ids"]
    page.goto(world["ui"].url + "/#/run/" + ids["sklearn"])
    ready(page, "run")
    values = page.get_by_test_id("metric-values")
    assert values.locator("tbody tr").count() == 6
    row = values.locator("tr[data-metric=training_accuracy]").inner_text().split("\t")
    assert row[0] == "training_accuracy" and 0 < float(row[1]) <= 1
    assert page.locator(".chart canvas").count() == 0 and page.get_by_test_id("charts").count() == 0
    assert "points" not in page.get_by_test_id("section-metrics").inner_text()
    shot(page, "run-page-single-values")

    page.goto(world["ui"].url + "/#/compare/" + ids["baseline"] + "," + ids["sklearn"])
    ready(page, "compare")
    table = page.get_by_test_id("compare-values")
    cells = table.locator("tr[data-metric=training_f1] td").all_inner_texts()
    assert cells[0] == "—" and 0 < float(cells[1]) <= 1  # baseline has no such metric
    assert page.locator(".chart canvas").count() == 3  # baseline's curves are still charts
    page.wait_for_timeout(200)
    assert all(n > 500 for n in drawn(page))
    shot(page, "compare-single-values")


def test_models_page_versions_aliases_what_changed_and_badges(world, page) -> None:
    """Two versions of a model from two runs, an alias moved: the Models page lists it, the
    model's page shows each version with its aliases and run, what changed between them, and the
    history; the runs that produced a version carry a badge in the table and on their page."""
    uri, ids = world["uri"], world["ids"]
    autotrack.register_model("vision", ids["baseline"], "baseline.ckpt", uri=uri)
    autotrack.register_model("vision", ids["bigger-lr"], "bigger-lr.ckpt", uri=uri)
    autotrack.set_alias("vision", "production", 1, uri=uri)
    autotrack.set_alias("vision", "staging", 2, uri=uri)
    autotrack.set_alias("vision", "production", 2, uri=uri)  # the rollout

    page.goto(world["ui"].url + "/")
    ready(page, "runs")
    page.get_by_test_id("nav-models").click()
    ready(page, "models")
    row = page.locator("tr[data-model=vision]")
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == ["vision", "2", "v2"] and ids["bigger-lr"][:8] in cells[4]
    assert row.locator(".alias").all_inner_texts() == ["production → v2", "staging → v2"]
    shot(page, "models")

    row.get_by_test_id("model-link").click()
    ready(page, "model")
    assert page.get_by_test_id("model-name").inner_text() == "vision"
    versions = page.get_by_test_id("versions")
    assert versions.locator("tbody tr").count() == 2
    v2, v1 = versions.locator("tr[data-version='2']"), versions.locator("tr[data-version='1']")
    assert v2.locator(".alias").all_inner_texts() == ["production", "staging"] and v1.locator(".alias").count() == 0
    assert "bigger-lr" in v2.get_by_test_id("version-run").inner_text() and "finished" in v2.inner_text()
    changes = page.get_by_test_id("version-diff")
    assert changes.locator("tr[data-key=lr]").inner_text().split("\t")[-2:] == ["0.01", "0.05"]
    assert changes.locator("tr[data-section=model][data-key=sha256]").count() == 1
    assert changes.locator("tr[data-key='train/sha256']").count() == 1  # the data changed too
    history = page.get_by_test_id("history").locator("tbody tr").all_inner_texts()
    assert len(history) == 5 and "production → v1" in history[2] and "production: v1 → v2" in history[-1]
    shot(page, "model-page")
    page.select_option("[data-testid=pick-b]", "1")  # a version against itself: nothing changed
    ready(page, "model")
    assert page.get_by_test_id("version-diff").get_by_test_id("no-differences").count() == 1

    v1 = page.get_by_test_id("versions").locator("tr[data-version='1']")
    v1.get_by_test_id("version-run").click()
    ready(page, "run")
    assert page.get_by_test_id("run-name").inner_text() == "baseline"
    assert page.get_by_test_id("model-badge").all_inner_texts() == ["vision v1"]

    page.goto(world["ui"].url + "/#/?experiment=mnist")
    ready(page, "runs")
    bigger = page.locator("tr", has=page.locator("a[data-testid=run-link]", has_text=re.compile("^bigger-lr$")))
    bigger.get_by_test_id("model-badge").wait_for(timeout=20_000)  # the badges are cached for 2 s
    assert bigger.get_by_test_id("model-badge").inner_text() == "vision v2, production, staging"
    shot(page, "runs-table-badges")
    bigger.get_by_test_id("model-badge").click()
    ready(page, "model")
