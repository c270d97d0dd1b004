"""The dashboard's System section in a real browser (issue 18): a run sampled with the fake NVML
(two GPUs) and a run that held 600 MiB more, their run pages and their comparison. Reuses the
browser harness of ``test_browser.py`` (``autotrack ui`` in a subprocess, Chromium, any console
error fails)."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Iterator

import pytest

import autotrack
from autotrack import _sampler
from tests.core.fake_nvml import pynvml as fake
from tests.ui.test_browser import CHROMIUM, SHOTS, UI, _need_browser, drawn, ready, shot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Any]]:
    sync_playwright = _need_browser()
    base = tmp_path_factory.mktemp("ui-system")
    uri = str(base / "runs")
    mp = pytest.MonkeyPatch()
    mp.setattr(_sampler, "MIN_SECONDS", 0.05)
    mp.setenv("AUTOTRACK_SYSTEM_METRICS_SECONDS", "0.2")
    mp.setitem(sys.modules, "pynvml", fake)
    fake.reset(procs=[[(os.getpid(), 3 * 2**30)], []])
    ids = {}
    import psutil

    # "hungry" holds at least as much again as the process already does: a suite that has loaded
    # every framework starts well above 1 GiB, and the diff names a peak 1.5 x the other's
    held_mib = psutil.Process().memory_info().rss // 2**20
    try:
        for name, ballast_mib in (("lean", 0), ("hungry", max(600, held_mib + 100))):
            with autotrack.start_run(name=name, uri=uri) as run:
                ballast = bytearray(ballast_mib * 2**20)
                for i in range(0, len(ballast), 4096):
                    ballast[i] = 1
                for step in range(12):
                    run.log_metrics({"loss": 1.0 / (step + 1)}, step=step * 10)
                    time.sleep(0.07)
                del ballast
            ids[name] = run.id
    finally:
        mp.undo()
        fake.reset()
    ui = UI(uri, base / "ui.log")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield {"uri": uri, "ids": ids, "ui": ui, "browser": browser}
        browser.close()
    ui.stop()


@pytest.fixture
def page(world) -> Iterator[Any]:
    context = world["browser"].new_context(viewport={"width": 1300, "height": 900})
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    yield pg
    context.close()
    assert problems == []


def test_run_page_has_a_system_section_with_charts(world, page) -> None:
    page.goto(f"{world['ui'].url}/#/run/{world['ids']['lean']}")
    ready(page, "run")
    info = page.get_by_test_id("system-info").inner_text()
    assert info.startswith("every 0.2 s;") and "GPU: 2 x Fake H200 via NVML" in info
    peaks = page.get_by_test_id("system-peaks").inner_text()
    assert "process memory (RSS, with children)" in peaks and "GPU 0 memory of the process" in peaks
    charts = page.get_by_test_id("system-charts")
    titles = charts.locator("figcaption strong").all_inner_texts()
    assert any("gpu/*/utilization_percent" in t for t in titles), titles  # both GPUs on one chart
    page.locator("[data-testid=section-system] details summary").click()  # the table is folded
    table = page.get_by_test_id("system-table").inner_text()
    assert "450 W" in table and "process/cpu_percent" in table
    page.wait_for_timeout(200)
    assert drawn(page) and all(n > 100 for n in drawn(page)), "a chart canvas is blank"
    shot(page, "run-page-system")


def test_compare_says_what_the_hardware_did_differently(world, page) -> None:
    lean, hungry = world["ids"]["lean"], world["ids"]["hungry"]
    page.goto(f"{world['ui'].url}/#/compare/{lean},{hungry}")
    ready(page, "compare")
    text = page.get_by_test_id("section-differences").inner_text()
    assert f"run {hungry[:8]}'s peak process memory" in text
    assert page.get_by_test_id("system-charts").count() == 1
    shot(page, "compare-system")
