"""Conformance tests for a store with broken files in it: one bad file never hides a run.

A mixin of :class:`tests.store_conformance.StoreConformance`, so it runs against every backend.
Each test builds a store with healthy runs next to every kind of damage found in the wild (a
``run.json`` that is ``[]``, ``"x"``, ``null``, empty, cut short, garbage, a directory, wrongly
typed fields, another run's document; a stray ``runs/README``; symbolic link loops; bad event
segments) and checks, through the public API only (``runs``, ``get_run``, ``last_run``, the
``RunRecord`` fields, ``autotrack runs --json`` / ``show``), that healthy runs read as before
and each broken one is listed as ``corrupt`` or has its bad files in ``problems``.

Hooks a subclass provides (writing behind the backend's back, as a user or a crash would):

``write_raw(uri, relpath, data: bytes)``
    write ``data`` at ``relpath`` (e.g. ``runs/<id>/run.json``) under the store's root.
``make_dir(uri, relpath)``
    make ``relpath`` a directory (on an object store: a key below it, e.g. ``relpath/.keep``).
``make_symlink(uri, relpath, target)``
    optional: a symbolic link at ``relpath`` pointing to ``target`` (relative to its folder);
    the link cases are skipped for a backend without one.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
import uuid
from typing import Any


import autotrack
from autotrack.backends import backend_for
from autotrack.cli import main

__all__ = ["CorruptStoreConformance"]

_HOUR_AGO = (_dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(hours=1)).isoformat()
_GOOD_SEGMENT = {"format": 1, "seq": 0, "time": 1.0, "params": [["p", 1, 1.0]],
                 "metrics": {"loss": {"step": [0, 1], "epoch": [0, 0], "value": [0.5, 0.25], "time_ms": [1, 2]}}}


def _doc(run_id: str, **fields: Any) -> dict[str, Any]:
    doc = {"format": 1, "id": run_id, "name": f"run-{run_id[:6]}", "experiment": "default", "parent_id": None,
           "framework": None, "status": "finished", "start_time": _HOUR_AGO, "end_time": _HOUR_AGO,
           "heartbeat": time.time() - 3600, "heartbeat_interval": 15.0, "pid": 1}
    doc.update(fields)
    return doc


def _bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# name -> (run.json bytes, or a dict of fields to break a valid document with; words of the reason)
_BROKEN_DOCS: dict[str, tuple[Any, str]] = {
    "array": (b"[]", "not a JSON object"),
    "string": (b'"x"', "not a JSON object"),
    "null": (b"null", "not a JSON object"),
    "empty": (b"", "empty file"),
    "truncated": (None, "not valid JSON"),  # filled in with half of a valid document
    "garbage": (b"\x00\xff\xfe\x89PNG garbage", "not valid JSON"),
    "yesterday": ({"start_time": "yesterday"}, 'start_time "yesterday"'),
    "naive": ({"start_time": "2026-01-01T00:00:00"}, "UTC offset"),
    "heartbeat": ({"heartbeat": "soon"}, "heartbeat"),
    "name": ({"name": 5}, "name 5"),
    "summary": ({"summary": {"metrics": [1, 2]}}, "summary"),
    "status": ({"status": None}, "status"),
}


class CorruptStoreConformance:
    """Mixin: needs the subclass's ``store_uri`` fixture and its ``write_raw``/``make_dir`` hooks."""

    # -- the store --------------------------------------------------------------------------
    def _build_corrupt_store(self, uri: str, tmp_path: Any) -> dict[str, Any]:
        backend = backend_for(uri)
        healthy, corrupt = [], {}
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights" * 100)
        for k in range(2):  # healthy runs written as the writer does, an hour ago
            doc = _doc(uuid.uuid4().hex, name=f"healthy-{k}")
            backend.create_run(doc)
            backend.append(doc["id"], 0, dict(_GOOD_SEGMENT, run_id=doc["id"]))
            healthy.append(doc["id"])
        for case, (content, words) in _BROKEN_DOCS.items():
            run_id = uuid.uuid4().hex
            if isinstance(content, dict):
                content = _bytes(_doc(run_id, **{"name": f"broken-{case}", **content}))
            elif content is None:
                content = _bytes(_doc(run_id))[:40]
            self.write_raw(uri, f"runs/{run_id}/run.json", content)
            backend.append(run_id, 0, dict(_GOOD_SEGMENT, run_id=run_id))  # its events are fine
            corrupt[run_id] = (f"runs/{run_id}/run.json", words, case)
        copy = uuid.uuid4().hex  # a folder copied whole: its run.json names the first healthy run
        self.write_raw(uri, f"runs/{copy}/run.json", _bytes(_doc(healthy[0], name="the-copy")))
        corrupt[copy] = (f"runs/{copy}/run.json", "not the name of its folder", "copy")
        folder = uuid.uuid4().hex
        self.make_dir(uri, f"runs/{folder}/run.json")
        corrupt[folder] = (f"runs/{folder}/run.json", "directory", "directory")
        lost = uuid.uuid4().hex  # events, but its run.json is gone
        self.write_raw(uri, f"runs/{lost}/events/00000000.json", _bytes(dict(_GOOD_SEGMENT, run_id=lost)))
        corrupt[lost] = (f"runs/{lost}/run.json", "missing", "missing")
        self.write_raw(uri, "runs/README", b"these are autotrack runs\n")  # not a run: not listed
        self.make_dir(uri, f"runs/{uuid.uuid4().hex}")  # an empty run folder (being created): not listed
        if hasattr(self, "make_symlink"):
            looped = uuid.uuid4().hex
            self.make_symlink(uri, f"runs/{looped}/run.json", "run.json")
            corrupt[looped] = (f"runs/{looped}/run.json", "symbolic link loop", "looped-file")
            self_link = uuid.uuid4().hex
            self.make_symlink(uri, f"runs/{self_link}", self_link)
            corrupt[self_link] = (f"runs/{self_link}", "symbolic link loop", "looped-folder")

        segments = _doc(uuid.uuid4().hex, name="bad-segments")  # a healthy run.json, some bad segments
        sid = segments["id"]
        backend.create_run(segments)
        backend.append(sid, 0, dict(_GOOD_SEGMENT, run_id=sid))
        bad_segments = {
            1: (b'{"format": 1, "seq": 1, "par', "not valid JSON"),
            2: (b"[]", "not a JSON object"),
            4: (_bytes({"seq": 4, "metrics": {"acc": {"step": [0, 1], "epoch": [0], "value": [1.0, 2.0],
                                                      "time_ms": [1, 2]}}}), "unequal lengths"),
            5: (_bytes({"seq": 5, "params": [["only-two", 1]]}), "params"),
            7: (b"\xff\xfe\x00", "not valid JSON"),
        }
        for seq, (content, _words) in bad_segments.items():
            self.write_raw(uri, f"runs/{sid}/events/{seq:08d}.json", content)
        self.make_dir(uri, f"runs/{sid}/events/00000006.json")
        bad_segments[6] = (None, "directory")
        backend.append(sid, 3, {"format": 1, "run_id": sid, "seq": 3, "time": 2.0, "params": [["q", 2, 2.0]],
                                "metrics": {"loss": {"step": [2], "epoch": [1], "value": [0.125], "time_ms": [3]}},
                                "status": {"status": "finished", "end_time": _HOUR_AGO, "error": None}})
        healthy.append(sid)

        with autotrack.start_run(uri=uri, name="newest", params={"lr": 0.1}) as run:  # written by autotrack
            run.log_metric("loss", 0.5, step=0)
            run.log_artifact(model, kind="model")
        healthy.append(run.id)
        return {"uri": uri, "healthy": healthy, "corrupt": corrupt, "segments": sid, "bad_segments": bad_segments,
                "newest": run.id, "copy_of": healthy[0]}

    # -- the tests --------------------------------------------------------------------------
    def test_corrupt_runs_are_listed_and_hide_nothing(self, store_uri, tmp_path):
        store = self._build_corrupt_store(store_uri, tmp_path)
        listed = {r.id: r for r in autotrack.runs(uri=store_uri)}
        assert set(listed) == set(store["healthy"]) | set(store["corrupt"])  # README, empty folder: not runs
        for run_id in store["healthy"]:
            assert listed[run_id].status == "finished", run_id
        for run_id, (file, words, case) in store["corrupt"].items():
            rec = listed[run_id]
            assert rec.status == "corrupt", case
            assert rec.problems[0]["file"] == file, case
            assert words in rec.problems[0]["reason"], (case, rec.problems[0])
            json.dumps(rec.to_dict())  # every field readable, plain data
            repr(rec), rec.duration, rec.final_metrics, rec.artifacts, rec.environment

        assert {r.id for r in autotrack.runs(uri=store_uri, status="corrupt")} == set(store["corrupt"])
        assert {r.id for r in autotrack.runs(uri=store_uri, status="finished")} == set(store["healthy"])
        assert autotrack.last_run(uri=store_uri).id == store["newest"]
        assert autotrack.get_run("last", uri=store_uri).id == store["newest"]
        for run_id in store["healthy"]:
            assert autotrack.get_run(run_id[:12], uri=store_uri).id == run_id
        original = autotrack.get_run(store["copy_of"], uri=store_uri)  # the copy does not shadow it
        assert original.status == "finished" and original.name == "healthy-0"
        newest = autotrack.get_run(store["newest"], uri=store_uri)
        assert newest.params == {"lr": 0.1} and newest.problems == []
        assert newest.artifact("model.bin").read_bytes() == b"weights" * 100

        # a corrupt run still shows what could be read: valid fields of its document, its events
        by_case = {case: run_id for run_id, (_f, _w, case) in store["corrupt"].items()}
        rec = autotrack.get_run(by_case["yesterday"], uri=store_uri)
        assert rec.name == "broken-yesterday" and rec.start_time is None
        assert rec.params == {"p": 1} and [p.value for p in rec.metrics["loss"]] == [0.5, 0.25]
        assert autotrack.get_run(by_case["array"], uri=store_uri).params == {"p": 1}

    def test_bad_segments_are_skipped_and_named(self, store_uri, tmp_path):
        store = self._build_corrupt_store(store_uri, tmp_path)
        rec = autotrack.get_run(store["segments"], uri=store_uri)
        assert rec.status == "finished" and rec.name == "bad-segments"
        assert rec.params == {"p": 1, "q": 2}  # segments 0 and 3, around the bad ones
        assert [p.value for p in rec.metrics["loss"]] == [0.5, 0.25, 0.125]
        assert "acc" not in rec.metrics
        problems = {p["file"]: p["reason"] for p in rec.problems}
        expected = {f"runs/{rec.id}/events/{seq:08d}.json": words for seq, (_c, words) in store["bad_segments"].items()}
        assert set(problems) == set(expected)
        for file, words in expected.items():
            assert words in problems[file], (file, problems[file])
        assert json.loads(json.dumps(rec.to_dict()))["problems"] == rec.problems

    def test_backend_hands_back_markers_not_errors(self, store_uri, tmp_path):
        store = self._build_corrupt_store(store_uri, tmp_path)
        backend = backend_for(store_uri)
        docs = backend.list_runs()
        assert all(isinstance(d, dict) and isinstance(d.get("id"), str) for d in docs)
        ids = [d["id"] for d in docs]
        assert len(ids) == len(set(ids))  # the copied folder is listed under its own name
        markers = {d["id"]: d["corrupt"] for d in docs if "corrupt" in d}
        for case in ("array", "string", "null", "empty", "truncated", "garbage", "copy", "directory", "missing"):
            run_id = next(i for i, (_f, _w, c) in store["corrupt"].items() if c == case)
            assert markers[run_id]["file"] == store["corrupt"][run_id][0]
            assert isinstance(markers[run_id]["reason"], str) and markers[run_id]["reason"]
        segments = backend.read_segments(store["segments"])
        assert all(isinstance(s, dict) for s in segments)
        unreadable = {s["seq"]: s["corrupt"] for s in segments if "corrupt" in s}
        assert set(unreadable) == {1, 2, 6, 7}  # 4 and 5 parse: the reader's schema rejects them
        assert unreadable[6]["file"] == f"runs/{store['segments']}/events/00000006.json"

    def test_cli_over_a_corrupt_store(self, store_uri, tmp_path, capsys):
        store = self._build_corrupt_store(store_uri, tmp_path)
        code = main(["runs", "--json", "--uri", store_uri])
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        rows = {r["id"]: r for r in json.loads(out)}
        assert set(rows) == set(store["healthy"]) | set(store["corrupt"])
        for run_id, (file, _words, _case) in store["corrupt"].items():
            assert rows[run_id]["status"] == "corrupt" and rows[run_id]["problems"][0]["file"] == file

        code = main(["runs", "-n", "0", "--uri", store_uri])
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        assert "corrupt" in out
        for file, _words, _case in store["corrupt"].values():
            assert file in out

        broken = next(i for i, (_f, _w, c) in store["corrupt"].items() if c == "yesterday")
        code = main(["show", broken[:10], "--uri", store_uri])
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        assert f"runs/{broken}/run.json" in out and 'start_time "yesterday"' in out
        assert "broken-yesterday" in out and "loss" in out  # and everything else it could read

        code = main(["show", store["segments"], "--uri", store_uri])
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        for seq in store["bad_segments"]:
            assert f"events/{seq:08d}.json" in out
        code = main(["show", "last", "--json", "--uri", store_uri])
        out, err = capsys.readouterr()
        assert code == 0 and json.loads(out)["id"] == store["newest"]
