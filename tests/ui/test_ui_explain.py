"""The compare view's "why they differ" section through the dashboard's JSON and the report file:
the same ranked causes and first divergent steps as ``autotrack explain`` (issue 17), without a
browser (test_browser_explain.py draws them)."""

from __future__ import annotations

import json
import os
import re

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

import autotrack  # noqa: E402
from autotrack.cli import main  # noqa: E402
from autotrack.server.app import create_app  # noqa: E402
from autotrack.ui import _data  # noqa: E402
from autotrack.ui._report import report_html  # noqa: E402
from tests.integrations.reproduce_helpers import git, make_repo, record  # noqa: E402


def client(uri: str) -> TestClient:
    return TestClient(create_app(uri, read_only=True), base_url="http://127.0.0.1")


@pytest.fixture
def three(tmp_path):
    uri = str(tmp_path / "store")
    ids = {}
    for name, lr in (("a", 0.1), ("b", 0.2), ("c", 0.1)):
        with autotrack.start_run(name=name, uri=uri, params={"lr": lr, "opt": "sgd"}) as run:
            for step in range(5):
                run.log_metrics({"loss": 1 / (1 + step * lr), "only_" + name: 1.0}, step=step, epoch=step // 2)
            ids[name] = run.id
    return uri, ids


def test_two_runs_get_explains_causes_and_divergence_as_the_cli_gives_them(three, capsys) -> None:
    uri, ids = three
    c = client(uri)
    why = c.get("/ui/api/compare", params={"ids": f"{ids['a']},{ids['b']}"}).json()["why"]
    assert why["causes"][0]["cause"] == "params" and why["causes"][0]["changed"] == {"lr": [0.1, 0.2]}
    assert why["divergence"]["loss"] == {"index": 1, "step": 1, "epoch": 0, "a": 1 / 1.1, "b": 1 / 1.2}
    assert why["divergence"]["only_a"] == {"missing": "b"} and why["divergence"]["only_b"] == {"missing": "a"}
    assert why["same_results"] is False
    assert main(["explain", ids["a"], ids["b"], "--uri", uri, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert why["causes"] == cli["causes"] and why["divergence"] == cli["divergence"]
    # "last" and prefixes resolve as everywhere; the order of the ids is A then B
    back = c.get("/ui/api/compare", params={"ids": f"{ids['b'][:10]},{ids['a']}"}).json()["why"]
    assert back["causes"][0]["changed"] == {"lr": [0.2, 0.1]}


def test_one_or_three_runs_have_no_why_and_a_failure_costs_only_the_section(three, monkeypatch) -> None:
    uri, ids = three
    c = client(uri)
    assert c.get("/ui/api/compare", params={"ids": ",".join(ids.values())}).json()["why"] is None
    assert c.get("/ui/api/compare", params={"ids": ids["a"]}).json()["why"] is None

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("autotrack._explain.explain", broken)
    cmp = c.get("/ui/api/compare", params={"ids": f"{ids['a']},{ids['b']}"})
    assert cmp.status_code == 200
    assert cmp.json()["why"] == {"error": "RuntimeError: boom"} and cmp.json()["differences"]["params"]


SCRIPT = """
    import random, sys, autotrack
    random.seed(1)
    with autotrack.start_run(params={"lr": 0.1}) as run:
        w = 0.0
        for step in range(4):
            w += 0.1 * (random.random() - w)
            run.log_metrics({"w": w}, step=step)
"""


def test_code_change_the_server_shows_the_recorded_diff_and_the_report_the_commits_diff(tmp_path, monkeypatch) -> None:
    repo = make_repo(tmp_path / "repo", {"train.py": SCRIPT})
    a = record(repo)
    path = os.path.join(repo, "train.py")
    with open(path) as fh:
        body = fh.read()
    with open(path, "w") as fh:
        fh.write("# <b>start</b>\n" + body.replace("w += 0.1 *", "w += 0.5 *") + "\n" * 500)
    b = record(repo)  # an uncommitted change: the recorded diff shows it
    git(repo, "commit", "-qam", "faster")
    c2 = record(repo)  # committed: only a repository holds the diff between the commits
    uri = os.path.join(repo, "store")
    cli = client(uri)
    why = cli.get("/ui/api/compare", params={"ids": f"{a.id},{b.id}"}).json()["why"]
    code = why["causes"][0]
    assert code["cause"] == "code" and "+        w += 0.5 *" in code["uncommitted_diff"]
    assert code["uncommitted_diff_lines"] > _data.DIFF_LINES == len(code["uncommitted_diff"].splitlines())
    assert why["divergence"]["w"]["step"] == 0
    served = cli.get("/ui/api/compare", params={"ids": f"{a.id},{c2.id}"}).json()["why"]["causes"][0]
    assert served["cause"] == "code" and served["summary"].startswith("code changed: commit ")
    assert "commits_diff" not in served  # the server never reads a git repository on its machine
    page = report_html([a, c2])
    data = json.loads(re.search(r'<script id="autotrack-data" type="application/json">(.*?)</script>', page, re.S).group(1))
    reported = data["compare"]["why"]["causes"][0]
    assert "+        w += 0.5 *" in reported["commits_diff"] and reported["commits_diff_lines"] > _data.DIFF_LINES
    assert "+# <b>start</b>" in reported["commits_diff"]
    assert "<b>start</b>" not in page  # inside the JSON block, "<" is written as an escape
