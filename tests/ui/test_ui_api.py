"""The dashboard's JSON, the report file and the commands, without a browser (test_browser.py
drives the pages themselves). Every store here is filled through autotrack's public API."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

import autotrack  # noqa: E402
from autotrack.cli import main  # noqa: E402
from autotrack.server.app import create_app  # noqa: E402
from autotrack.ui._downsample import minmax_indices  # noqa: E402
from autotrack.ui._report import report_html  # noqa: E402

XSS = "<script>alert(1)</script>"


@pytest.fixture
def filled(tmp_path):
    uri = str(tmp_path / "store")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"weights" * 1000)
    ids = {}
    for name, lr, exp in (("a", 0.1, "e1"), ("b", 0.01, "e1"), ("c", 0.5, "e2")):
        with autotrack.start_run(name=name, uri=uri, experiment=exp, params={"lr": lr, "opt": "sgd"}) as run:
            for step in range(30):
                run.log_metrics({"loss": 1 / (1 + step * lr)}, step=step, epoch=step // 10)
            ids[name] = run.id
    with autotrack.start_run(name="x", uri=uri, experiment="e2", params={"note": XSS}) as run:
        run.log_artifact(str(ckpt), kind="checkpoint")
        run.update_artifact("model.ckpt", {"best": True})
        ids["x"] = run.id
    with pytest.raises(ZeroDivisionError):
        with autotrack.start_run(name="boom", uri=uri, experiment="e2") as run:
            ids["boom"] = run.id
            run.log_metrics({"loss": float("nan")}, step=0)
            1 / 0
    return uri, ids


def client(uri: str, **kw) -> TestClient:
    return TestClient(create_app(uri, **kw), base_url="http://127.0.0.1")


def test_runs_table_filters_sorts_and_pages(filled) -> None:
    uri, ids = filled
    c = client(uri, read_only=True)
    page = c.get("/ui/api/runs").json()
    assert page["total"] == 5 and page["all"] == 5
    assert [r["name"] for r in page["rows"]] == ["boom", "x", "c", "b", "a"]  # newest first
    assert page["facets"]["experiment"] == {"e1": 2, "e2": 3}
    assert page["facets"]["status"] == {"failed": 1, "finished": 4}
    assert page["facets"]["framework"] == {"manual": 5}
    assert {k["key"] for k in page["param_keys"]} == {"lr", "opt", "note"}
    assert page["param_keys"][0]["key"] in ("lr", "note")  # the varying ones first
    a = next(r for r in page["rows"] if r["name"] == "a")
    assert a["params"] == {"lr": 0.1, "opt": "sgd"}
    assert a["metrics"]["loss"]["count"] == 30 and a["metrics"]["loss"]["min"] == a["metrics"]["loss"]["last"]
    assert a["metrics"]["loss"]["max"] == 1.0

    names = lambda q: [r["name"] for r in c.get("/ui/api/runs", params=q).json()["rows"]]  # noqa: E731
    assert names({"experiment": "e1"}) == ["b", "a"]
    assert names({"status": "failed"}) == ["boom"]
    assert names({"q": "lr=0.01"}) == ["b"]
    assert names({"q": "SCRIPT"}) == ["x"]  # text search is case-blind and looks at param values
    assert names({"sort": "param:lr", "order": "asc"}) == ["b", "a", "c", "boom", "x"]  # absent last, newest first
    assert names({"sort": "metric:loss:last", "order": "asc"}) == ["c", "a", "b", "boom", "x"]  # NaN counts as absent
    assert names({"sort": "name", "order": "asc"}) == ["a", "b", "boom", "c", "x"]
    p2 = c.get("/ui/api/runs", params={"limit": 2, "offset": 2}).json()
    assert [r["name"] for r in p2["rows"]] == ["c", "b"] and p2["total"] == 5
    bad = c.get("/ui/api/runs", params={"sort": "nope"})
    assert bad.status_code == 400 and "cannot sort by" in bad.json()["error"]
    assert c.get("/ui/api/runs", params={"limit": "x"}).status_code == 400


def test_run_page_data(filled) -> None:
    uri, ids = filled
    c = client(uri, read_only=True)
    run = c.get(f"/ui/api/runs/{ids['x'][:10]}").json()  # a unique prefix works
    assert run["id"] == ids["x"] and run["params"] == {"note": XSS}
    assert run["artifacts"][0]["name"] == "model.ckpt" and run["artifacts"][0]["metadata"]["best"] is True
    assert run["environment"]["python"]["version"]
    boom = c.get(f"/ui/api/runs/{ids['boom']}").json()
    assert boom["status"] == "failed" and "ZeroDivisionError" in boom["error"]
    assert boom["metrics"]["loss"]["last"] == "NaN"  # JSON has no NaN: the page gets the word
    series = c.get(f"/ui/api/runs/{ids['boom']}/series").json()
    assert series["loss"]["count"] == 1 and series["loss"]["nonfinite"] == 1 and series["loss"]["value"] == []
    a = c.get(f"/ui/api/runs/{ids['a']}/series").json()["loss"]
    assert a["step"] == list(range(30)) and a["epoch"][-1] == 2 and len(a["time"]) == 30
    missing = c.get("/ui/api/runs/ffffffffffff")
    assert missing.status_code == 404 and "no run" in missing.json()["error"]


def test_artifact_download_is_the_recorded_bytes(filled) -> None:
    uri, ids = filled
    c = client(uri, read_only=True)
    art = autotrack.get_run(ids["x"], uri=uri).artifacts[0]
    res = c.get(f"/ui/api/runs/{ids['x']}/artifacts/{art.sha256}")
    assert res.status_code == 200 and hashlib.sha256(res.content).hexdigest() == art.sha256
    assert 'filename="model.ckpt"' in res.headers["content-disposition"]
    assert c.get(f"/ui/api/runs/{ids['a']}/artifacts/{art.sha256}").status_code == 404  # not that run's


def test_compare_lists_only_what_differs(filled) -> None:
    uri, ids = filled
    c = client(uri, read_only=True)
    cmp = c.get("/ui/api/compare", params={"ids": f"{ids['a']},{ids['b']},{ids['c']}"}).json()
    assert [r["name"] for r in cmp["runs"]] == ["a", "b", "c"]
    assert cmp["differences"]["params"] == {"lr": [0.1, 0.01, 0.5]}  # "opt" is the same: not listed
    assert "experiment" in cmp["differences"]["run"]
    assert cmp["sections"][0] == "run" and "params" in cmp["sections"]
    assert c.get("/ui/api/compare").status_code == 400


def test_long_series_are_downsampled_keeping_spikes(tmp_path) -> None:
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri) as run:
        for i in range(100_000):
            run.log_metric("loss", 100.0 if i == 54_321 else -5.0 if i == 7 else 1.0 + (i % 7) / 100, step=i)
    c = client(uri, read_only=True)
    s = c.get(f"/ui/api/runs/{run.id}/series").json()["loss"]
    assert s["count"] == 100_000 and s["shown"] <= 2002 and len(s["value"]) == s["shown"]
    assert 100.0 in s["value"] and -5.0 in s["value"]  # the spike and the dip survive
    assert s["step"][0] == 0 and s["step"][-1] == 99_999 and s["step"] == sorted(s["step"])
    small = c.get(f"/ui/api/runs/{run.id}/series", params={"buckets": 10}).json()["loss"]
    assert small["shown"] <= 22


def test_minmax_indices() -> None:
    assert minmax_indices([]) == []
    assert minmax_indices([3.0, 1.0, 2.0]) == [0, 1, 2]
    assert minmax_indices([1.0, float("nan"), float("inf"), 2.0]) == [0, 3]
    values = [math.sin(i / 50) for i in range(10_000)]
    picked = minmax_indices(values, 100)
    assert picked[0] == 0 and picked[-1] == 9_999 and len(picked) <= 202
    assert max(values[i] for i in picked) == max(values) and min(values[i] for i in picked) == min(values)


def test_token_guards_the_data_not_the_page(filled) -> None:
    uri, _ = filled
    c = client(uri, token="s3cret", read_only=True)
    assert c.get("/").status_code == 200  # the page itself holds no data: it asks for the token
    assert c.get("/ui/api/info").json()["token_required"] is True
    assert c.get("/ui/api/runs").status_code == 401
    assert c.get("/ui/api/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/ui/api/runs", headers={"Authorization": "Bearer s3cret"}).json()["total"] == 5


def test_page_is_served_strict_and_read_only(filled) -> None:
    uri, _ = filled
    ro = client(uri, read_only=True)
    page = ro.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert ro.get("/ui/static/app.js").status_code == 200
    assert ro.get("/ui/static/vendor/uPlot.iife.min.js").status_code == 200
    assert ro.get("/ui/static/vendor/uPlot.LICENSE").status_code == 200
    assert ro.get("/api/v1/runs").status_code == 200  # reading the API is fine...
    assert ro.put("/api/v1/runs/abc", json={}).status_code in (404, 405)  # ...writing is not there
    rw = client(uri)  # autotrack serve: the dashboard at / next to the full API
    assert rw.get("/").status_code == 200 and rw.get("/ui/api/runs").json()["total"] == 5
    assert rw.put("/api/v1/runs/abc", json={}).status_code == 200


def test_report_is_one_self_contained_file(filled, tmp_path) -> None:
    uri, ids = filled
    out = tmp_path / "report.html"
    assert main(["report", ids["a"], ids["b"], ids["x"], "--uri", uri, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing loaded from anywhere
    assert "<link" not in text and 'src="' not in text
    assert XSS not in text  # the recorded script text is inside JSON with < escaped
    data = json.loads(re.search(r'<script id="autotrack-data" type="application/json">(.*?)</script>',
                                text, re.S).group(1))
    assert data["order"] == [ids["a"], ids["b"], ids["x"]]
    assert data["runs"][ids["x"]]["params"]["note"] == XSS
    assert data["compare"]["differences"]["params"]["lr"] == [0.1, 0.01, None]
    assert data["series"][ids["a"]]["loss"]["count"] == 30
    one = report_html([autotrack.get_run(ids["a"], uri=uri)])
    assert '"compare":null' in one


def test_report_command_errors_in_one_line(filled, tmp_path, capsys) -> None:
    uri, _ = filled
    assert main(["report", "nope", "--uri", uri, "-o", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("autotrack: error: no run with id 'nope'") and err.count("\n") == 1


def test_runs_table_reads_no_segments(tmp_path) -> None:
    """Not a timing test (bench/ times 10,000 runs): the summary in each run document is what
    the table is built from, so a page never reads segments."""
    uri = str(tmp_path / "store")
    for i in range(30):
        with autotrack.start_run(uri=uri, params={"i": i}) as run:
            run.log_metrics({"loss": float(i)}, step=0)
    from autotrack.backends.base import backend_for

    backend = backend_for(uri)
    reads = []
    original = backend.read_segments
    backend.read_segments = lambda run_id: reads.append(run_id) or original(run_id)  # type: ignore[method-assign]
    from autotrack.ui._data import RunIndex

    t = time.perf_counter()
    page = RunIndex(backend).page(sort="metric:loss", limit=5)
    assert time.perf_counter() - t < 5
    assert [r["params"]["i"] for r in page["rows"]] == [29, 28, 27, 26, 25]
    assert reads == []


@pytest.fixture
def corrupt_store(tmp_path):
    """Healthy runs next to every kind of broken file (tests/store_corrupt.py builds it)."""
    from tests.core.test_store_local import TestLocalStore  # imported here: not collected twice

    return TestLocalStore()._build_corrupt_store(str(tmp_path / "store"), tmp_path)


def test_corrupt_runs_in_the_table_and_on_their_pages(corrupt_store) -> None:
    store = corrupt_store
    c = client(store["uri"], read_only=True)
    page = c.get("/ui/api/runs", params={"limit": 500}).json()
    rows = {r["id"]: r for r in page["rows"]}
    assert set(rows) == set(store["healthy"]) | set(store["corrupt"])
    assert page["facets"]["status"]["corrupt"] == len(store["corrupt"])
    for run_id, (file, words, _case) in store["corrupt"].items():
        assert rows[run_id]["status"] == "corrupt"
        assert rows[run_id]["problems"][0]["file"] == file and words in rows[run_id]["problems"][0]["reason"]
    assert all("problems" not in rows[i] for i in store["healthy"])
    for sort in ("name", "status", "experiment", "framework", "start_time", "duration", "param:p", "metric:loss:min"):
        for order in ("asc", "desc"):
            res = c.get("/ui/api/runs", params={"sort": sort, "order": order, "q": "run"})
            assert res.status_code == 200, (sort, order, res.text)
    assert {r["id"] for r in c.get("/ui/api/runs", params={"status": "corrupt", "limit": 500}).json()["rows"]} == \
        set(store["corrupt"])

    for run_id in [*store["corrupt"], *store["healthy"]]:
        run = c.get(f"/ui/api/runs/{run_id}")
        assert run.status_code == 200, (run_id, run.text)
        assert c.get(f"/ui/api/runs/{run_id}/series").status_code == 200
        if run_id in store["corrupt"]:
            assert run.json()["status"] == "corrupt" and run.json()["problems"][0]["file"] == store["corrupt"][run_id][0]
    bad = c.get(f"/ui/api/runs/{store['segments']}").json()
    assert bad["status"] == "finished" and bad["params"] == {"p": 1, "q": 2}
    assert {p["file"].rsplit("/", 1)[-1] for p in bad["problems"]} == \
        {f"{seq:08d}.json" for seq in store["bad_segments"]}
    assert c.get(f"/ui/api/runs/{store['newest']}").json()["problems"] == []
    some = list(store["corrupt"])[:10] + [store["segments"], store["newest"]]
    cmp = c.get("/ui/api/compare", params={"ids": ",".join(some)})
    assert cmp.status_code == 200 and len(cmp.json()["runs"]) == len(some)
    assert c.get("/api/v1/runs").status_code == 200  # the API passes the markers on
    array = next(i for i, (_f, _w, case) in store["corrupt"].items() if case == "array")
    assert c.get(f"/api/v1/runs/{array}").json() == {
        "id": array, "corrupt": {"file": f"runs/{array}/run.json", "reason": "not a JSON object but an array"}}
    segs = c.get(f"/api/v1/runs/{store['segments']}/segments").json()
    assert [s["seq"] for s in segs] == [0, 1, 2, 3, 4, 5, 6, 7] and "corrupt" in segs[1]

    html = report_html([autotrack.get_run(i, uri=store["uri"]) for i in some[:3]])
    data = json.loads(re.search(r'<script id="autotrack-data" type="application/json">(.*?)</script>',
                                html, re.S).group(1))
    assert data["runs"][some[0]]["problems"][0]["file"] == store["corrupt"][some[0]][0]


def test_released_or_lost_artifact_is_a_404_that_says_so(tmp_path) -> None:
    uri = str(tmp_path / "store")
    (tmp_path / "a.ckpt").write_bytes(b"one")
    (tmp_path / "b.ckpt").write_bytes(b"two")
    with autotrack.start_run(uri=uri) as run:
        run.log_artifact(tmp_path / "a.ckpt", kind="checkpoint")
        run.log_artifact(tmp_path / "b.ckpt", kind="checkpoint")
        run.update_artifact("a.ckpt", {"superseded": True, "kept": False, "superseded_by": "b.ckpt"})
    rec = autotrack.get_run(run.id, uri=uri)
    c = client(uri, read_only=True)
    res = c.get(f"/ui/api/runs/{run.id}/artifacts/{rec.artifact('a.ckpt').sha256}")
    assert res.status_code == 404 and "was released: superseded by b.ckpt" in res.json()["error"]
    sha = rec.artifact("b.ckpt").sha256
    (tmp_path / "store" / "artifacts" / sha[:2] / sha).unlink()
    res = c.get(f"/ui/api/runs/{run.id}/artifacts/{sha}")
    assert res.status_code == 404 and "missing from the store" in res.json()["error"]


def test_text_with_no_utf8_form_fails_no_page(tmp_path) -> None:
    """A lone surrogate (the writer keeps one from an undecodable file name, as a \\udcxx escape)
    cannot be sent as UTF-8: it goes out escaped, and the table of every other run still loads."""
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri, name="fine") as other:
        other.log_metric("x", 1.0)
    with autotrack.start_run(uri=uri, name="bad\udc80name") as run:  # stored as the JSON escape "\udc80"
        run.log_metric("x", 2.0)
    c = client(uri, read_only=True)
    for url in ("/ui/api/runs", f"/ui/api/runs/{run.id}", f"/ui/api/runs/{run.id}/series",
                f"/ui/api/compare?ids={run.id},{other.id}", "/api/v1/runs", f"/api/v1/runs/{run.id}"):
        res = c.get(url)
        assert res.status_code == 200, (url, res.text)
    assert {r["name"] for r in c.get("/ui/api/runs").json()["rows"]} == {"fine", "bad\udc80name"}
    assert "bad" in report_html([autotrack.get_run(run.id, uri=uri)])


def test_last_is_a_run_id_in_every_route(filled, tmp_path) -> None:
    """``last`` names the newest run on the command line and in the API: the pages' JSON too."""
    uri, ids = filled
    c = client(uri, read_only=True)
    run = c.get("/ui/api/runs/last")
    assert run.status_code == 200 and run.json()["id"] == ids["boom"]
    assert c.get("/ui/api/runs/last/series").json()["loss"]["count"] == 1
    cmp = c.get("/ui/api/compare", params={"ids": f"last,{ids['a']}"}).json()
    assert [r["id"] for r in cmp["runs"]] == [ids["boom"], ids["a"]]
    (tmp_path / "w.bin").write_bytes(b"newest")
    with autotrack.start_run(uri=uri, name="newest") as newest:  # started a moment ago: still found
        newest.log_artifact(tmp_path / "w.bin")
    assert c.get("/ui/api/runs/last").json()["id"] == newest.id
    sha = autotrack.get_run(newest.id, uri=uri).artifacts[0].sha256
    res = c.get(f"/ui/api/runs/last/artifacts/{sha}")
    assert res.status_code == 200 and res.content == b"newest"
    empty = client(str(tmp_path / "empty"), read_only=True).get("/ui/api/runs/last")
    assert empty.status_code == 404 and "no runs" in empty.json()["error"]


def test_single_value_metrics_are_named_for_a_table(tmp_path) -> None:
    """A metric with one value (every scikit-learn score) is listed in ``single_value_metrics``:
    the run page and the compare view show those as a table of values, not as one-dot charts."""
    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri, name="one") as one:
        for step in range(5):
            one.log_metrics({"loss": 1.0 / (step + 1)}, step=step)
        one.log_metrics({"test_accuracy": 0.91, "fit_time": 0.25, "sometimes": 1.0})
    with autotrack.start_run(uri=uri, name="two") as two:
        two.log_metrics({"test_accuracy": 0.87, "loss": 0.5})
        for step in range(3):
            two.log_metrics({"sometimes": float(step)}, step=step)
    c = client(uri, read_only=True)
    run = c.get(f"/ui/api/runs/{one.id}").json()
    assert run["single_value_metrics"] == ["fit_time", "sometimes", "test_accuracy"]
    assert run["metrics"]["test_accuracy"]["last"] == 0.91
    assert c.get(f"/ui/api/runs/{two.id}").json()["single_value_metrics"] == ["loss", "test_accuracy"]
    cmp = c.get("/ui/api/compare", params={"ids": f"{one.id},{two.id}"}).json()
    # one value in every run that has it; "loss" and "sometimes" have a curve in one of them
    assert cmp["single_value_metrics"] == ["fit_time", "test_accuracy"]
    assert [r["metrics"]["test_accuracy"]["last"] for r in cmp["runs"]] == [0.91, 0.87]


def test_captions_say_point_for_one_point() -> None:
    """The page's own text: "1 point", never "1 points" (the script builds every caption with
    one helper)."""
    from autotrack.ui._routes import STATIC_DIR

    script = (STATIC_DIR / "app.js").read_text(encoding="utf-8")
    assert '" points' not in script and "' points" not in script
    assert "function plural(" in script


# -- the Models page ---------------------------------------------------------------------------
@pytest.fixture
def registered(tmp_path):
    """churn v1 (run m1) and v2 (run m2, other params and data); production -> v1, staging -> v2;
    and a run ``other`` that produced no version."""
    uri = str(tmp_path / "models-store")
    ids = {}
    for name, lr, rows in (("m1", 0.1, [[1.0]]), ("m2", 0.01, [[1.0], [2.0]])):
        model = tmp_path / name / "model.bin"
        model.parent.mkdir()
        model.write_bytes(name.encode() * 1000)
        with autotrack.start_run(name=name, uri=uri, params={"lr": lr, "note": XSS}) as run:
            run.log_data("train", rows)
            run.log_metrics({"val_loss": lr * 2}, step=0)
            run.log_artifact(str(model), kind="model")
            ids[name] = run.id
    with autotrack.start_run(name="other", uri=uri) as run:
        ids["other"] = run.id
    autotrack.register_model("churn", ids["m1"], "model.bin", uri=uri)
    autotrack.register_model("churn", ids["m2"], uri=uri)
    autotrack.set_alias("churn", "production", 1, uri=uri)
    autotrack.set_alias("churn", "staging", 2, uri=uri)
    return uri, ids


def test_models_list_versions_history_and_badges(registered) -> None:
    uri, ids = registered
    c = client(uri, read_only=True)
    (model,) = c.get("/ui/api/models").json()["models"]
    assert model["name"] == "churn" and model["versions"] == 2 and model["latest"] == 2
    assert model["aliases"] == {"production": 1, "staging": 2} and model["latest_run"] == ids["m2"]
    detail = c.get("/ui/api/models/churn").json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]  # newest first
    v2, v1 = detail["versions"]
    assert v1["aliases"] == ["production"] and v2["aliases"] == ["staging"]
    assert v1["run"]["id"] == ids["m1"] and v1["run"]["name"] == "m1" and v1["run"]["status"] == "finished"
    assert v1["artifact"] == "model.bin" and len(v1["sha256"]) == 64 and v1["size"] == 2000
    assert [(e["action"], e["version"], e["alias"]) for e in detail["history"]] == [
        ("register", 1, None), ("register", 2, None), ("set_alias", 1, "production"), ("set_alias", 2, "staging")]
    rows = {r["id"]: r for r in c.get("/ui/api/runs").json()["rows"]}
    assert rows[ids["m1"]]["models"] == [{"name": "churn", "version": 1, "aliases": ["production"]}]
    assert rows[ids["m2"]]["models"] == [{"name": "churn", "version": 2, "aliases": ["staging"]}]
    assert "models" not in rows[ids["other"]]
    assert c.get(f"/ui/api/runs/{ids['m1']}").json()["models"] == [
        {"name": "churn", "version": 1, "aliases": ["production"]}]
    assert c.get(f"/ui/api/runs/{ids['other']}").json()["models"] == []


def test_what_changed_between_two_versions(registered) -> None:
    uri, ids = registered
    c = client(uri, read_only=True)
    for a, b in (("production", "staging"), ("1", "2"), ("v1", "latest")):
        diff = c.get("/ui/api/models/churn/diff", params={"a": a, "b": b}).json()
        assert [v["version"] for v in diff["versions"]] == [1, 2], (a, b)
    assert [v["run"]["id"] for v in diff["versions"]] == [ids["m1"], ids["m2"]]
    assert diff["sections"][:1] == ["model"] and {"params", "data", "metrics"} <= set(diff["sections"])
    d = diff["differences"]
    assert d["model"]["version"] == [1, 2] and d["model"]["sha256"][0] != d["model"]["sha256"][1]
    assert d["params"] == {"lr": [0.1, 0.01]}  # the note is the same: not a difference
    assert d["data"]["train/rows"] == [1, 2] and d["metrics"]["val_loss"] == [0.2, 0.02]
    same = c.get("/ui/api/models/churn/diff", params={"a": "2", "b": "staging"}).json()
    assert same["sections"] == [] and same["differences"] == {}


def test_models_errors_are_404_and_guarded(registered) -> None:
    uri, _ = registered
    c = client(uri, read_only=True)
    for path in ("/ui/api/models/nosuch", "/ui/api/models/churn/diff?a=1&b=9",
                 "/ui/api/models/churn/diff?a=1&b=canary"):
        res = c.get(path)
        assert res.status_code == 404 and "not found" in res.json()["error"], path
    assert c.get("/ui/api/models/churn/diff?a=1").status_code == 400
    guarded = client(uri, token="s3cret", read_only=True)
    assert guarded.get("/ui/api/models").status_code == 401
    assert guarded.get("/ui/api/models/churn").status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    assert guarded.get("/ui/api/models", headers=auth).json()["models"][0]["name"] == "churn"
    empty = client(str(registered[0]) + "-none", read_only=True)
    assert empty.get("/ui/api/models").json() == {"models": []}


def test_a_version_whose_run_was_deleted_keeps_its_row(registered) -> None:
    uri, ids = registered
    admin = client(uri, token="admin-token")
    auth = {"Authorization": "Bearer admin-token"}
    assert admin.delete(f"/api/v1/runs/{ids['m1']}", headers=auth).status_code == 200
    detail = admin.get("/ui/api/models/churn", headers=auth).json()
    v1 = detail["versions"][1]
    assert v1["version"] == 1 and v1["run"] is None and v1["run_id"] == ids["m1"]
    assert autotrack.get_model("churn@production", uri=uri).open().read() == b"m1" * 1000  # bytes pinned
    res = admin.get("/ui/api/models/churn/diff?a=1&b=2", headers=auth)
    assert res.status_code == 404 and ids["m1"][:8] in res.json()["error"]
