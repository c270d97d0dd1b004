"""The compare view's "why they differ" section in a real browser (issue 17): two runs of a
script in a throw-away git repository, the second with a param and a line of code changed (the
line holding markup, which must show as text). Reuses the harness of ``test_browser.py``
(``autotrack ui`` in a subprocess, Chromium, any console error fails); the report file shows the
same section, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Iterator

import pytest

from tests.integrations.reproduce_helpers import make_repo, record
from tests.ui.test_browser import CHROMIUM, ROOT, SHOTS, UI, _need_browser, ready, shot

pytestmark = pytest.mark.slow

MARKUP = "<img src=x onerror=alert(1)>"
SCRIPT = """
    import random, sys, autotrack
    random.seed(1)
    lr = float(sys.argv[1]) if len(sys.argv) > 1 else 0.1
    with autotrack.start_run(name=f"lr {lr}", params={"lr": lr}) as run:
        w = 0.0
        for step in range(5):
            w += lr * (random.random() - w)
            run.log_metrics({"w": w, "seen": step}, step=step)
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict[str, Any]]:
    sync_playwright = _need_browser()
    base = tmp_path_factory.mktemp("ui-explain")
    repo = make_repo(base / "repo", {"train.py": SCRIPT})
    a = record(repo)
    path = os.path.join(repo, "train.py")
    with open(path) as fh:
        body = fh.read()
    with open(path, "w") as fh:  # a line of code changed, uncommitted: the recorded diff shows it
        fh.write(body.replace("w += lr * (random.random() - w)", f"w += 0.25 * lr * (random.random() - w)  # {MARKUP}"))
    b = record(repo, "train.py", "0.2")
    uri = os.path.join(repo, "store")
    ui = UI(uri, base / "ui.log")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield {"uri": uri, "a": a.id, "b": b.id, "ui": ui, "browser": browser, "base": base}
        browser.close()
    ui.stop()


@pytest.fixture
def page(world) -> Iterator[Any]:
    context = world["browser"].new_context(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog opened: {d.message}"), d.dismiss()))
    yield pg
    context.close()
    assert problems == []


def check_why(pg: Any, world: dict[str, Any]) -> None:
    why = pg.get_by_test_id("section-why")
    causes = why.locator("[data-testid=why-causes] > li")
    assert [c.get_attribute("data-cause") for c in causes.all()] == ["params", "code"]
    assert "params changed: lr: 0.1 -> 0.2" in causes.nth(0).inner_text()
    diff = why.get_by_test_id("why-diff").inner_text()
    assert f"+        w += 0.25 * lr * (random.random() - w)  # {MARKUP}" in diff  # shown as text, never parsed as a tag
    assert why.locator("pre .add").count() == 1 and why.locator("pre .del").count() == 1
    assert pg.locator("img").count() == 0
    rows = why.locator("[data-testid=why-divergence] tbody tr")
    assert rows.all_inner_texts()[0].startswith("w\tstep 0\t")  # "seen" is the same in both: not listed
    assert rows.count() == 1
    a, b = rows.first.locator("td.num").all_inner_texts()
    assert float(a) != float(b)


def test_compare_view_says_why_two_runs_differ(world, page) -> None:
    page.goto(f"{world['ui'].url}/#/compare/{world['a']},{world['b']}")
    ready(page, "compare")
    check_why(page, world)
    shot(page, "compare-why")
    page.goto(f"{world['ui'].url}/#/compare/{world['a']},{world['a']}")  # the same run twice: nothing differs
    ready(page, "compare")
    assert page.get_by_test_id("why-no-cause").count() == 1 and page.get_by_test_id("why-same").count() == 1


def test_report_of_two_runs_has_the_same_section(world, page) -> None:
    out = world["base"] / "report.html"
    done = subprocess.run([sys.executable, "-m", "autotrack", "report", world["a"], world["b"], "--uri", world["uri"],
                           "-o", str(out)], check=False, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    page.goto(out.as_uri())
    ready(page, "compare")
    check_why(page, world)
    shot(page, "report-why")
