"""The model registry's conformance cases, run against every backend (a mixin of StoreConformance):
the Python API only (``register_model``, ``set_alias``, ``get_model``, ...), so the same cases
hold on a local folder, ``memory://``, S3 and a tracking server (where the server numbers events).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

import autotrack
from autotrack import AmbiguousArtifactError, ArtifactNotFoundError, ModelNotFoundError

__all__ = ["RegistryConformance", "atomic_moto", "logged_run", "at_once"]


def logged_run(uri: str, folder: Path, files: dict[str, tuple[bytes, str]], *, best: str | None = None):
    """A finished run that logged ``files`` (name -> (bytes, kind)); ``best`` marks a checkpoint best."""
    folder.mkdir(parents=True, exist_ok=True)
    with autotrack.start_run(uri=uri) as run:
        for name, (data, kind) in files.items():
            path = folder / name.replace("/", "_")
            path.write_bytes(data)
            run.log_artifact(str(path), name=name, kind=kind)
        if best is not None:
            run.update_artifact(best, {"best": True})
    return autotrack.get_run(run.id, uri=uri)


def at_once(writer, n: int) -> dict[int, object]:
    """``writer(i)`` for i in range(n), each in its own thread, all at once: what each returned
    (an exception in any thread fails the test, naming it)."""
    got: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            got[i] = writer(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    return got


def atomic_moto(monkeypatch, uri: str) -> None:
    """moto checks ``If-None-Match: *`` and stores the object in two steps, so two PUTs of one
    key at the same instant can both pass the check; S3 does both at once. One lock around moto's
    PUT gives it S3's guarantee, so a test of concurrent writers tests autotrack, not moto."""
    if not uri.startswith("s3://"):
        return
    from moto.s3.responses import S3Response

    lock = threading.Lock()
    original = S3Response.put_object

    def put_object(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "put_object", put_object)


class RegistryConformance:
    """Mixin: every test takes the subclass's ``store_uri`` fixture (a fresh, empty store)."""

    def test_registry_register_alias_resolve_download(self, store_uri, tmp_path):
        first = logged_run(store_uri, tmp_path / "a", {"model.joblib": (b"weights one", "model")})
        second = logged_run(store_uri, tmp_path / "b", {"model.joblib": (b"weights two", "model")})
        assert autotrack.models(uri=store_uri) == []
        v1 = autotrack.register_model("churn", run=first.id[:8], uri=store_uri, metadata={"auc": 0.91})
        v2 = autotrack.register_model("churn", run=second, artifact="model.joblib", uri=store_uri)
        assert (v1.version, v2.version) == (1, 2)
        assert (v1.run_id, v1.artifact, v1.size) == (first.id, "model.joblib", len(b"weights one"))
        assert v1.sha256 == hashlib.sha256(b"weights one").hexdigest() and v1.metadata == {"auc": 0.91}
        assert v1.aliases == [] and isinstance(v1.by, str) and v1.by and v1.created.tzinfo is not None

        moved = autotrack.set_alias("churn", "production", 1, uri=store_uri)
        assert moved.version == 1 and moved.aliases == ["production"]
        autotrack.set_alias("churn", "staging", version=2, uri=store_uri)
        autotrack.set_alias("churn", "production", 2, uri=store_uri)  # moves; the previous is recorded
        prod = autotrack.get_model("churn@production", uri=store_uri)
        assert (prod.version, prod.run_id, prod.sha256) == (2, second.id, v2.sha256)
        assert prod.aliases == ["production", "staging"]
        assert prod.run.id == second.id and prod.run.artifact("model.joblib").sha256 == prod.sha256
        assert autotrack.get_model("churn/1", uri=store_uri).aliases == []
        assert autotrack.get_model("churn", uri=store_uri).version == 2
        assert autotrack.get_model("churn@latest", uri=store_uri).version == 2
        path = prod.download(tmp_path / "out" / "served.joblib")
        assert Path(path).read_bytes() == b"weights two"
        with autotrack.get_model("churn/1", uri=store_uri).open() as fh:
            assert fh.read() == b"weights one"

        (model,) = autotrack.models(uri=store_uri)
        assert model.name == "churn" and model.aliases == {"production": 2, "staging": 2}
        assert [v.version for v in model.versions] == [1, 2] and model.latest.version == 2
        history = autotrack.model_history("churn", uri=store_uri)
        assert [(e.seq, e.action, e.version, e.alias, e.previous) for e in history] == [
            (0, "register", 1, None, None), (1, "register", 2, None, None), (2, "set_alias", 1, "production", None),
            (3, "set_alias", 2, "staging", None), (4, "set_alias", 2, "production", 1)]
        assert history[4].run_id == second.id and history[4].sha256 == v2.sha256
        assert all(e.by == v1.by and e.time is not None for e in history)

        autotrack.delete_alias("churn", "staging", uri=store_uri)
        last = autotrack.model_history("churn", uri=store_uri)[-1]
        assert (last.action, last.alias, last.version, last.previous) == ("delete_alias", "staging", None, 2)
        assert autotrack.get_model("churn@production", uri=store_uri).aliases == ["production"]
        autotrack.set_alias("churn", "production", 1, uri=store_uri)  # a rollback is one more set_alias
        assert autotrack.get_model("churn@production", uri=store_uri).version == 1

    def test_registry_errors_say_what_exists(self, store_uri, tmp_path):
        run = logged_run(store_uri, tmp_path, {"model.pt": (b"m", "model")})
        with pytest.raises(ModelNotFoundError, match="no model 'churn'"):
            autotrack.get_model("churn", uri=store_uri)
        with pytest.raises(ModelNotFoundError, match="no model 'churn'"):
            autotrack.set_alias("churn", "production", 1, uri=store_uri)
        autotrack.register_model("churn", run=run.id, uri=store_uri)
        with pytest.raises(ModelNotFoundError, match=r"has no version 7 \(versions: 1\)"):
            autotrack.get_model("churn/7", uri=store_uri)
        with pytest.raises(ModelNotFoundError, match=r"has no version 3"):
            autotrack.set_alias("churn", "production", 3, uri=store_uri)
        with pytest.raises(ModelNotFoundError, match=r"has no alias 'production' \(aliases: none\)"):
            autotrack.get_model("churn@production", uri=store_uri)
        with pytest.raises(ModelNotFoundError, match="has no alias 'staging'"):
            autotrack.delete_alias("churn", "staging", uri=store_uri)
        with pytest.raises(ModelNotFoundError, match=r"no model 'nope' .*\(models: churn\)"):
            autotrack.get_model("nope@production", uri=store_uri)
        assert issubclass(ModelNotFoundError, LookupError)
        for bad in ("bad name", "../x", "", "-x", "a/b@c", "x" * 129, "churn/0", "churn/x"):
            with pytest.raises(ValueError):
                autotrack.get_model(bad, uri=store_uri)
        with pytest.raises(ValueError, match="reserved"):
            autotrack.set_alias("churn", "latest", 1, uri=store_uri)
        with pytest.raises(ValueError, match="invalid alias"):
            autotrack.set_alias("churn", "prod uction", 1, uri=store_uri)
        with pytest.raises(ValueError, match="invalid model name"):
            autotrack.register_model("../etc", run=run.id, uri=store_uri)
        with pytest.raises(ArtifactNotFoundError, match="has no artifact 'other.pt'"):
            autotrack.register_model("churn", run=run.id, artifact="other.pt", uri=store_uri)
        with pytest.raises(autotrack.RunNotFoundError):
            autotrack.register_model("churn", run="f" * 32, uri=store_uri)
        assert [e.action for e in autotrack.model_history("churn", uri=store_uri)] == ["register"]

    def test_registry_picks_the_model_else_the_best_checkpoint_else_lists(self, store_uri, tmp_path):
        one = logged_run(store_uri, tmp_path / "1", {"epoch=0.ckpt": (b"c0", "checkpoint"),
                                                      "model.keras": (b"final", "model")})
        assert autotrack.register_model("m", run=one.id, uri=store_uri).artifact == "model.keras"
        best = logged_run(store_uri, tmp_path / "2", {"epoch=0.ckpt": (b"b0", "checkpoint"),
                                                       "epoch=1.ckpt": (b"b1", "checkpoint")}, best="epoch=1.ckpt")
        v = autotrack.register_model("m", run=best.id, uri=store_uri)
        assert (v.artifact, v.sha256) == ("epoch=1.ckpt", hashlib.sha256(b"b1").hexdigest())
        two = logged_run(store_uri, tmp_path / "3", {"a.pt": (b"a", "model"), "b.pt": (b"b", "model")})
        with pytest.raises(AmbiguousArtifactError, match=r"2 model artifacts \(a.pt, b.pt\)"):
            autotrack.register_model("m", run=two.id, uri=store_uri)
        none = logged_run(store_uri, tmp_path / "4", {"notes.txt": (b"n", "file"), "e.ckpt": (b"e", "checkpoint")})
        with pytest.raises(ArtifactNotFoundError, match=r"name the artifact to register, one of: notes.txt, e.ckpt"):
            autotrack.register_model("m", run=none.id, uri=store_uri)
        assert [v.version for v in autotrack.models(uri=store_uri)[0].versions] == [1, 2]

    def test_registry_pins_bytes_a_rotation_would_free(self, store_uri, tmp_path):
        """A registered checkpoint rotated out keeps its bytes (``kept: true``); an unregistered one
        rotated the same way is freed; a released one cannot be registered."""
        with autotrack.start_run(uri=store_uri) as run:
            for epoch in range(3):
                path = tmp_path / f"epoch={epoch}.ckpt"
                path.write_bytes(f"checkpoint {epoch}".encode())
                run.log_artifact(str(path), kind="checkpoint")
            assert run.flush()
            registered = autotrack.register_model("rot", run=run, artifact="epoch=0.ckpt", uri=store_uri)
            run.release_artifact("epoch=0.ckpt", superseded_by="epoch=2.ckpt")
            run.release_artifact("epoch=1.ckpt", superseded_by="epoch=2.ckpt")
        record = autotrack.get_run(run.id, uri=store_uri)
        assert record.artifact("epoch=0.ckpt").metadata["kept"] is True
        assert record.artifact("epoch=1.ckpt").metadata["kept"] is False  # nothing else held those bytes
        assert autotrack.get_model("rot/1", uri=store_uri).read_bytes() == b"checkpoint 0"
        assert registered.read_bytes() == b"checkpoint 0"
        with pytest.raises(ArtifactNotFoundError, match="was released"):
            autotrack.register_model("rot", run=run.id, artifact="epoch=1.ckpt", uri=store_uri)

    def test_registry_concurrent_registrations_share_no_number(self, store_uri, tmp_path, monkeypatch):
        atomic_moto(monkeypatch, store_uri)
        runs = [logged_run(store_uri, tmp_path / str(i), {"model.bin": (f"model {i}".encode(), "model")})
                for i in range(4)]

        def writer(i: int) -> list[int]:
            mine = [autotrack.register_model("race", run=runs[i].id, uri=store_uri).version for _ in range(3)]
            autotrack.set_alias("race", f"w{i}", mine[0], uri=store_uri)
            return mine

        got = at_once(writer, 4)
        numbers = sorted(n for ns in got.values() for n in ns)
        assert numbers == list(range(1, 13))  # none lost, none shared
        history = autotrack.model_history("race", uri=store_uri)
        assert [e.seq for e in history] == list(range(16))
        versions = {v.version: v for v in autotrack.models(uri=store_uri)[0].versions}
        for i, ns in got.items():
            assert {versions[n].run_id for n in ns} == {runs[i].id}
            assert autotrack.get_model(f"race@w{i}", uri=store_uri).version == ns[0]
