"""Where runs go (URI/experiment resolution) and how a URI picks its backend."""

from __future__ import annotations

import os
import sys

import pytest

import autotrack
from autotrack._config import resolve_experiment, resolve_uri
from autotrack.backends import backend_for, register_backend, registered_backends
from autotrack.backends.file import FileStore


def test_uri_order(tmp_path, monkeypatch):
    assert resolve_uri() == "./autotrack-runs"
    (tmp_path / "pyproject.toml").write_text('[tool.autotrack]\nuri = "from-pyproject"\nexperiment = "pp"\n')
    sub = tmp_path / "pkg" / "scripts"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    assert resolve_uri() == str(tmp_path / "from-pyproject"), "relative to the config file"
    assert resolve_experiment() == "pp"
    (sub / "autotrack.toml").write_text('uri = "s3://bucket/runs"\nexperiment = "toml"\n')
    assert resolve_uri() == "s3://bucket/runs" and resolve_experiment() == "toml"
    monkeypatch.setenv("AUTOTRACK_URI", "memory://env")
    monkeypatch.setenv("AUTOTRACK_EXPERIMENT", "envexp")
    assert resolve_uri() == "memory://env" and resolve_experiment() == "envexp"
    assert resolve_uri("explicit") == "explicit" and resolve_experiment("x") == "x"


def test_nearest_pyproject_without_section_stops_search(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.autotrack]\nuri = "outer"\n')
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "pyproject.toml").write_text('[project]\nname = "x"\n')
    monkeypatch.chdir(inner)
    assert resolve_uri() == "./autotrack-runs"


def test_an_edited_config_file_is_read_again(tmp_path):
    """The parsed file is kept between runs (issue 20) only while it is the same file."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.autotrack]\nuri = "first"\n')
    assert resolve_uri() == str(tmp_path / "first")
    pyproject.write_text('[tool.autotrack]\nuri = "second-store"\n')
    assert resolve_uri() == str(tmp_path / "second-store")
    pyproject.write_text('[project]\nname = "x"\n')  # no longer about us: not even parsed
    assert resolve_uri() == "./autotrack-runs"
    pyproject.write_text('[tool.autotrack]\nuri = 3\n')
    with pytest.raises(autotrack.ConfigError, match="line 2"):
        resolve_uri()
    with pytest.raises(autotrack.ConfigError, match="line 2"):  # and said every time, not once
        resolve_uri()


def test_a_run_looks_for_the_config_file_once_and_through_a_symlinked_folder(tmp_path, monkeypatch):
    """``start_run`` resolves the store and the experiment with one look (issue 20: each look is
    a few system calls on the training thread); a working folder reached through a symlink finds
    the same file and places the store relative to the real folder, as before."""
    import autotrack._config as config

    real = tmp_path / "real"
    (real / "sub").mkdir(parents=True)
    (real / "pyproject.toml").write_text('[tool.autotrack]\nuri = "runs-here"\nexperiment = "linked"\n')
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    monkeypatch.chdir(tmp_path / "link" / "sub")
    looks = []
    monkeypatch.setattr(config, "file_config", lambda cwd=None, _real=config.file_config: looks.append(cwd) or _real(cwd))
    with autotrack.start_run() as run:
        pass
    assert len(looks) == 1
    assert run.uri == os.path.join(os.path.realpath(real), "runs-here") and run.experiment == "linked"
    assert autotrack.get_run(run.id, uri=str(real / "runs-here")).experiment == "linked"


def test_default_store_is_local_folder(tmp_path):
    with autotrack.start_run() as run:
        run.log_metrics({"a": 1})
    assert (tmp_path / "autotrack-runs" / "runs" / run.id / "run.json").exists()
    assert autotrack.last_run().id == run.id


def test_env_uri_used_by_runs_and_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTRACK_URI", str(tmp_path / "envstore"))
    monkeypatch.setenv("AUTOTRACK_EXPERIMENT", "churn")
    with autotrack.start_run():
        pass
    (rec,) = autotrack.runs()
    assert rec.experiment == "churn" and rec.uri == str(tmp_path / "envstore")


def test_file_uri_and_memory_uri_get_file_store():
    assert isinstance(backend_for("file:///tmp/x"), FileStore)
    assert isinstance(backend_for("memory://cfg-test"), FileStore)


def test_unknown_scheme_is_one_clear_error():
    with pytest.raises(autotrack.ConfigError, match=r"unknown URI scheme nosuch://"):
        autotrack.runs(uri="nosuch://x")


def test_missing_optional_package_says_what_to_install(monkeypatch):
    import fsspec

    def missing(protocol):
        raise ImportError("Install s3fs to access S3")

    monkeypatch.setattr(fsspec, "get_filesystem_class", missing)
    with pytest.raises(autotrack.BackendUnavailableError, match=r"s3:// needs s3fs \(pip install 'autotrack-ml\[s3\]'\)"):
        backend_for("s3://bucket-never-made/x")


def test_register_backend_validates_and_refuses_clobber():
    class NotABackend:
        pass

    with pytest.raises(autotrack.ConfigError, match="lacks create_run"):
        register_backend("bad", NotABackend)
    register_backend("mine", FileStore, clobber=True)
    with pytest.raises(autotrack.ConfigError, match="already registered"):
        register_backend("mine", FileStore)
    assert registered_backends()["mine"] is FileStore
    with pytest.raises(TypeError):
        registered_backends()["x"] = 1  # read-only view


def test_entry_point_plugin(tmp_path, monkeypatch):
    (tmp_path / "myplugin.py").write_text(
        "from autotrack.backends.file import FileStore\n"
        "class PluginStore(FileStore):\n"
        "    def __init__(self, uri):\n"
        "        super().__init__('memory://plugin/' + uri.split('://', 1)[1])\n"
    )
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[autotrack.backends]\nplugged = myplugin:PluginStore\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with autotrack.start_run(uri="plugged://a") as run:
        run.log_metrics({"x": 1.0})
    assert autotrack.last_run("plugged://a").id == run.id
    assert type(backend_for("plugged://a")).__name__ == "PluginStore"
    sys.modules.pop("myplugin", None)


def test_relative_path_means_cwd_of_the_call(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    monkeypatch.chdir(a)
    first = backend_for("runs")
    monkeypatch.chdir(b)
    assert backend_for("runs") is not first
    assert backend_for("runs").root == os.path.join(str(b), "runs")


def test_local_folder_needs_no_fsspec(tmp_path):
    """A run in a local folder (path or file://) never imports fsspec (~100-150 ms at start_run)."""
    import subprocess
    import textwrap

    code = textwrap.dedent(f"""
        import sys
        import autotrack
        for uri in ({str(tmp_path / 'a')!r}, {'file://' + str(tmp_path / 'b')!r}):
            with autotrack.start_run(uri=uri) as run:
                run.log_metrics({{"loss": 1.0}}, step=1)
            assert autotrack.get_run(run.id, uri=uri).metrics["loss"][0].value == 1.0
        print("fsspec" in sys.modules)
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOTRACK_")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_local_store_fs_made_on_demand(tmp_path):
    store = FileStore(str(tmp_path / "s"))
    assert store.local and store.root == str(tmp_path / "s")
    assert store.fs.protocol[0] == "file"  # fsspec's LocalFileSystem, for callers that want one
    assert FileStore("file://" + str(tmp_path / "s")).root == store.root
    assert not FileStore("memory://cfg-lazy").local
