"""Opening an artifact whose bytes are gone says which artifact of which run, and why.

Two reasons: the writer released them (a checkpoint rotated out: an artifact update with
``{"superseded": true, "kept": false, "superseded_by": ...}``), or the store lost them. Either
way the reader raises ``ArtifactNotFoundError`` naming the artifact and the run (and, for lost
bytes, the store), never a ``FileNotFoundError`` with a path inside the store. The metadata is
written here with ``update_artifact`` as a manual run would, so these tests do not depend on
what the writer does when it releases.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import autotrack
from autotrack import ArtifactNotFoundError


@pytest.fixture
def checkpoints(tmp_path: Path) -> tuple[str, str]:
    uri = str(tmp_path / "store")
    for epoch in (1, 2, 3):
        (tmp_path / f"epoch={epoch}.ckpt").write_bytes(f"weights of epoch {epoch}".encode())
    with autotrack.start_run(uri=uri) as run:
        for epoch in (1, 2, 3):
            run.log_artifact(tmp_path / f"epoch={epoch}.ckpt", name=f"checkpoints/epoch={epoch}.ckpt", kind="checkpoint")
        run.update_artifact("checkpoints/epoch=1.ckpt",
                            {"superseded": True, "kept": False, "superseded_by": "checkpoints/epoch=3.ckpt"})
        run.update_artifact("checkpoints/epoch=2.ckpt", {"superseded": True, "kept": True, "superseded_by": None})
    return uri, run.id


def test_a_released_artifact_says_it_was_released(checkpoints: tuple[str, str], tmp_path: Path) -> None:
    uri, run_id = checkpoints
    art = autotrack.get_run(run_id, uri=uri).artifact("checkpoints/epoch=1.ckpt")
    for attempt in (art.open, art.read_bytes, lambda: art.download(tmp_path / "out.ckpt")):
        with pytest.raises(ArtifactNotFoundError) as info:
            attempt()
        assert str(info.value) == (f"artifact 'checkpoints/epoch=1.ckpt' of run {run_id[:8]} was released: "
                                   "superseded by checkpoints/epoch=3.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_released_without_a_successor(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    (tmp_path / "a.bin").write_bytes(b"a")
    with autotrack.start_run(uri=uri) as run:
        run.log_artifact(tmp_path / "a.bin")
        run.update_artifact("a.bin", {"superseded": True, "kept": False, "superseded_by": None})
    with pytest.raises(ArtifactNotFoundError, match=r"'a.bin' of run \w{8} was released: superseded"):
        autotrack.get_run(run.id, uri=uri).artifact("a.bin").read_bytes()


def test_superseded_but_kept_opens_normally(checkpoints: tuple[str, str]) -> None:
    uri, run_id = checkpoints
    rec = autotrack.get_run(run_id, uri=uri)
    assert rec.artifact("epoch=2.ckpt").read_bytes() == b"weights of epoch 2"  # kept: another reference
    assert rec.artifact("epoch=3.ckpt").read_bytes() == b"weights of epoch 3"


def test_bytes_missing_from_the_store_name_the_artifact_run_and_store(checkpoints: tuple[str, str]) -> None:
    uri, run_id = checkpoints
    art = autotrack.get_run(run_id, uri=uri).artifact("epoch=3.ckpt")
    stored = Path(uri) / "artifacts" / art.sha256[:2] / art.sha256  # the file store's layout
    stored.unlink()
    with pytest.raises(ArtifactNotFoundError) as info:
        art.read_bytes()
    message = str(info.value)
    assert "'checkpoints/epoch=3.ckpt'" in message and run_id[:8] in message and uri in message
    assert str(stored) not in message and not isinstance(info.value, FileNotFoundError)
    assert isinstance(info.value, autotrack.AutotrackError)
