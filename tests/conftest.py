"""Test-wide settings: strict mode (autotrack's own errors raise), fast flushes and heartbeats,
a private spool folder so no test writes to the real home directory, and the quick subset
(``pytest -m "not slow"``, the table below)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading

import pytest

os.environ["AUTOTRACK_STRICT"] = "1"
os.environ.setdefault("AUTOTRACK_FLUSH_SECONDS", "0.2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The spool folders a user's own runs use: the one AUTOTRACK_SPOOL_DIR names, else the default.
REAL_SPOOLS = sorted({p for p in (os.environ.get("AUTOTRACK_SPOOL_DIR"), os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "autotrack", "unsent")) if p})
# A private spool for the whole session, set before any fixture runs: _isolated_store below sets
# one per test, but session and module fixtures (servers, the browser tests' live run) start
# before it and their child processes inherit os.environ; with the variable unset they spooled
# into ~/.cache/autotrack/unsent. Child processes that drop AUTOTRACK_* get nothing from this:
# _real_spool_untouched catches them.
SESSION_SPOOL = tempfile.mkdtemp(prefix="autotrack-test-spool-")
os.environ["AUTOTRACK_SPOOL_DIR"] = SESSION_SPOOL


def _listing(folder: str) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


@pytest.fixture(autouse=True, scope="session")
def _real_spool_untouched():
    """The suite fails if it left anything in the user's real spool folder."""
    before = {folder: _listing(folder) for folder in REAL_SPOOLS}
    yield
    added = {folder: sorted(_listing(folder) - names) for folder, names in before.items()}
    added = {folder: names for folder, names in added.items() if names}
    shutil.rmtree(SESSION_SPOOL, ignore_errors=True)
    if added:
        pytest.fail(f"the test session wrote into the real spool folder: {added}", pytrace=False)


# Imports made on one of autotrack's threads without holding ``_starter.IMPORTS``, which a fork
# waits for: forked in the middle of one, a child (a DataLoader worker, a pool worker starting
# its own run) hangs on that module's import lock. Caught here for every test of the suite.
_UNGUARDED_IMPORTS: list[str] = []


def _audit_imports(event: str, args: tuple) -> None:
    if event != "import":
        return
    thread = threading.current_thread().name
    starter = sys.modules.get("autotrack._starter")
    if thread.startswith("autotrack-") and starter is not None and not starter.IMPORTS._is_owned():
        _UNGUARDED_IMPORTS.append(f"{thread}: {args[0]}")


sys.addaudithook(_audit_imports)


@pytest.fixture(autouse=True)
def _imports_on_our_threads_are_fork_safe():
    _UNGUARDED_IMPORTS.clear()
    yield
    found, _UNGUARDED_IMPORTS[:] = list(_UNGUARDED_IMPORTS), []
    assert not found, f"imports on autotrack's threads without _starter.IMPORTS (unsafe under fork): {found}"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Each test gets its own default store, spool dir and working directory."""
    monkeypatch.setenv("AUTOTRACK_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.delenv("AUTOTRACK_URI", raising=False)
    monkeypatch.delenv("AUTOTRACK_EXPERIMENT", raising=False)
    monkeypatch.chdir(tmp_path)
    import autotrack._safety as _safety

    _safety._warned.clear()  # "warned once per kind" is per process; each test starts afresh
    import autotrack._sampler as _sampler

    _sampler._notes = None  # what the system probe found is per process too (tests fake NVML)
    yield
    import autotrack._run as _run

    for run in _run.active_runs():  # a failing test must not leak its run into the next
        try:
            run.finish("failed", "test ended with the run open")
        except Exception:
            pass
    from autotrack import _autolog

    if _autolog._settings is not None or _autolog._wanted:  # nor its autolog(): patches would stay on
        import autotrack

        autotrack.autolog(disable=True)


@pytest.fixture
def lenient(monkeypatch):
    """Non-strict mode, as users run: autotrack's errors are warnings, never exceptions."""
    monkeypatch.setenv("AUTOTRACK_STRICT", "0")


@pytest.fixture
def store(tmp_path):
    """A fresh local store URI."""
    return str(tmp_path / "store")


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server for the whole session (see tests/s3_server.py); skipped without moto/s3fs."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    pytest.importorskip("boto3")
    from tests.s3_server import S3Server

    server = S3Server.start()
    yield server
    server.stop()


@pytest.fixture
def s3_store(s3_server):
    """A fresh bucket on the moto server; the store URI is ``s3://<bucket>/runs``."""
    return f"s3://{s3_server.make_bucket()}/runs"


# The quick subset, `pytest -m "not slow"`. Rule: a test is slow when it took 0.75 s or more
# (setup + call + teardown) in a full run measured with `pytest -p no:cacheprovider --durations=0`
# on the 2-core development machine, otherwise idle; it is listed here by file (under tests/) and
# test name, with all its parameter sets. "*" marks a module whose tests all start processes,
# servers or a browser, fuzz, or train a heavy framework; QUICK keeps one or two of those as the
# module's smoke test, so that the quick subset still runs every integration and every backend.
# A new test that is slow by this rule goes in the table (tests/test_suite_setup.py checks that
# every name here exists and that each integration and backend keeps a quick test).
SLOW_EVERYWHERE = {  # the store conformance suite's deliberate waits, for every store
    "test_store_hanging_at_exit_loses_nothing", "test_slow_upload_keeps_a_live_run_alive",
}
SLOW = {
    "integrations/test_seed_capture.py": "*",              # frameworks seeded in fresh processes
    "integrations/test_lightning_namespaces_ddp.py": "*",  # DDP worker processes
    "integrations/test_keras.py": "*",                     # Keras/TensorFlow fits, 1-8 s each
    "integrations/test_transformers.py": "*",              # Trainer runs, 1-3 s each
    "server/test_resilience.py": "*",                      # servers killed and restarted
    "server/test_fuzz.py": "*",                            # schemathesis against a server
    "core/test_schema_fuzz.py": "*",                       # hypothesis over stored documents
    "core/test_concurrent_writers.py": "*",                # six writer processes
    "ui/test_browser.py": "*",                             # Chromium
    "test_bench_quick.py": "*",                            # the benchmarks, once each
    "core/test_autolog_undo.py": "test_disable_before_import_keeps_the_framework_off",
    "core/test_data_fingerprint.py": """
        test_2gb_non_contiguous_array_is_read_in_bounded_time_and_memory test_hashes_are_stable_across_processes
        test_large_array_is_sampled_deterministically test_large_coo_and_csr_matrices_are_not_converted
        test_long_dicts_are_sampled_in_bounded_time_and_memory test_long_lists_are_sampled_in_bounded_time_and_memory
        test_nested_and_circular_long_lists_stay_bounded""",
    "core/test_lifecycle.py": "test_live_run_in_another_process_is_running "
                              "test_sigkill_leaves_a_readable_run_reported_killed_once_stale",
    "core/test_run_properties.py": "test_any_sequence_of_calls_reads_back",
    "core/test_store_s3.py": """
        test_artifacts_round_trip test_backend_hands_back_markers_not_errors test_bad_segments_are_skipped_and_named
        test_cli_over_a_corrupt_store test_corrupt_runs_are_listed_and_hide_nothing test_get_run_prefixes
        test_runs_order_and_filters test_registry_concurrent_registrations_share_no_number
        test_registry_register_alias_resolve_download test_registry_picks_the_model_else_the_best_checkpoint_else_lists
        test_registry_pins_bytes_a_rotation_would_free""",
    # the model registry: writer processes started at once, servers, Keras/transformers/Lightning fits
    "core/test_registry.py": "test_concurrent_writer_processes_on_a_local_store test_concurrent_writer_processes_on_s3",
    "core/test_cli_models.py": "test_a_user_registers_promotes_and_fetches",
    "server/test_registry_http.py": "test_two_server_workers_number_events_into_one_store "
                                    "test_python_api_over_a_server_with_scoped_tokens",
    "server/test_conformance.py": "test_registry_concurrent_registrations_share_no_number",
    "integrations/test_register_as.py": "test_lightning_registers_the_best_checkpoint "
                                        "test_keras_callback_option_autolog_and_the_best_checkpoint "
                                        "test_transformers_callback_option_and_autolog_register_the_weights",
    "integrations/test_lightning.py": "test_failing_backend_cannot_stop_fit test_test_after_fit_lands_in_the_fit_run",
    "integrations/test_sklearn.py": """
        test_autolog_before_sklearn_is_imported test_callable_refit_marks_best_index
        test_default_model_format_is_joblib_and_imports_no_skops test_max_tuning_runs
        test_skops_on_request_and_joblib_fallback""",
    "integrations/test_lightgbm.py": "test_callback_alone_ends_its_runs_at_the_programs_end",
    "integrations/test_catboost.py": "test_callback_alone_runs_end_with_the_program",
    "integrations/test_torch_loop.py": """
        test_the_run_ends_with_the_process test_lightning_drives_torch_itself_one_run_not_two
        test_transformers_trainer_is_left_to_its_adapter test_autolog_then_import_torch_enables_it_and_imports_nothing_more""",
    "integrations/test_xgboost.py": """
        test_callback_alone_a_training_that_raised_is_failed_at_the_programs_end
        test_nothing_is_wrapped_in_a_fresh_process_until_autolog test_sklearn_api_early_stopping_and_rf
        test_sklearn_helper_in_a_custom_metric_writes_nothing_into_the_run""",
    "integrations/test_optuna.py": "test_autolog_tracks_trials_and_a_framework_inside_a_trial_records_into_it "
                                   "test_processes_sharing_an_rdb_storage_record_one_parent_run",  # XGBoost; 3 processes
    "integrations/test_ray.py": "*",                       # a local Ray cluster (~10 s to start) and its workers
    "server/test_api.py": "test_body_limits_413 test_missing_or_wrong_token_is_401",
    "server/test_http_transport.py": "test_https_verifies_the_server_with_the_system_store "
                                     "test_non_json_error_page_and_retried_503",
    "ui/test_ui_api.py": "test_runs_table_reads_no_segments",
    "test_examples.py": "test_custom_loop_runs_as_the_readme_says",
    "integrations/test_reproduce_frameworks.py": "*",      # each records and replays a framework script: 2 processes
    "core/test_explain_reproduce.py": """
        test_a_changed_line_of_code_is_named_first_with_the_diff test_reproduce_unseeded_plain_script_from_the_cli
        test_replay_restores_the_recorded_state_only_in_replay_mode test_reproduce_refuses_what_it_cannot_rebuild
        test_a_changed_package_version_is_named_first test_same_seeded_script_twice_has_no_cause_and_identical_metrics
        test_unseeded_runs_differ_by_random_state_and_the_cli_says_so
        test_threads_and_a_gpu_without_deterministic_kernels_are_named""",
    "ui/test_browser_explain.py": "*",                     # Chromium
    "ui/test_ui_explain.py": "test_code_change_the_server_shows_the_recorded_diff_and_the_report_the_commits_diff",
    "core/test_rng_state.py": "test_replay_restores_at_autolog_and_import_in_a_fresh_interpreter",
}
QUICK = {
    "integrations/test_keras.py": {"test_callback_alone_records_a_complete_run",
                                   "test_autolog_one_run_per_fit_and_the_users_list_untouched"},
    "integrations/test_transformers.py": {"test_train_records_params_seeds_metrics_summary",
                                          "test_exception_fails_the_run_and_propagates"},
}


def is_slow(module: str, name: str) -> bool:
    """``module``: a test file's path under tests/ ("core/test_cli.py"); ``name``: the test
    function's name without its parameters."""
    listed = SLOW.get(module, "")
    if name in QUICK.get(module, ()):
        return False
    return name in SLOW_EVERYWHERE or listed.strip() == "*" or name in listed.split()


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        module = os.path.relpath(str(item.path), here).replace(os.sep, "/")
        if is_slow(module, getattr(item, "originalname", item.name)):
            item.add_marker(pytest.mark.slow)
