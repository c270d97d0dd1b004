"""``autotrack explain`` / ``diff --explain`` and ``autotrack reproduce``'s refusals, on a plain
Python training script (no framework) kept in a throw-away git repository. A param, a data
file, a package version and a line of code are changed in turn: explain names exactly that
cause first."""

from __future__ import annotations

import json
import os
import sys

import pytest

import autotrack
from autotrack.cli import main
from tests.integrations.reproduce_helpers import git, make_repo, record, replay

SCRIPT = """
    import argparse, random, autotrack
    p = argparse.ArgumentParser(); p.add_argument("--lr", type=float, default=0.1); p.add_argument("--seed", type=int)
    args = p.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    else:
        autotrack.autolog()
    data = [float(line) for line in open("data/train.csv")]
    with autotrack.start_run(params={"lr": args.lr}) as run:
        run.log_data("train", data)
        w = 0.0
        for step in range(6):
            x = random.choice(data)
            w += args.lr * (x - w)
            run.log_metrics({"w": w}, step=step)
"""


@pytest.fixture
def repo(tmp_path):
    path = make_repo(tmp_path / "repo", {"train.py": SCRIPT, ".gitignore": "store/\ndata/\n"})
    os.makedirs(os.path.join(path, "data"))
    with open(os.path.join(path, "data", "train.csv"), "w") as fh:
        fh.write("1\n2\n3\n4\n5\n")
    return path


def edit_record(run, **environment):
    """Edit the recorded run as a hand (or another tool) would: a later segment whose
    ``environment`` replaces the recorded one (readers take the last)."""
    env = dict(run.environment)
    for key, value in environment.items():
        env[key] = {**env.get(key, {}), **value} if isinstance(value, dict) else value
    events = os.path.join(run._backend.root, "runs", run.id, "events")
    seq = len([n for n in os.listdir(events) if n.endswith(".json")])
    with open(os.path.join(events, f"{seq:08d}.json"), "w") as fh:
        json.dump({"format": 1, "run_id": run.id, "seq": seq, "time": 0.0, "environment": env}, fh)
    return autotrack.get_run(run.id, uri=run._backend.root)


def first_cause(a, b):
    from autotrack._explain import explain

    found = explain(a, b)
    return found["causes"][0]["cause"] if found["causes"] else None, found


def test_same_seeded_script_twice_has_no_cause_and_identical_metrics(repo):
    a, b = record(repo, "train.py", "--seed", "1"), record(repo, "train.py", "--seed", "1")
    cause, found = first_cause(a, b)
    assert cause is None and found["divergence"] == {} and found["same_results"]


def test_a_changed_param_is_named_first(repo):
    a, b = record(repo, "train.py", "--seed", "1"), record(repo, "train.py", "--seed", "1", "--lr", "0.2")
    cause, found = first_cause(a, b)
    assert cause == "params" and found["causes"][0]["changed"] == {"lr": [0.1, 0.2]}
    assert [c["cause"] for c in found["causes"]] == ["params"]
    assert found["divergence"]["w"]["step"] == 0


def test_a_changed_data_file_is_named_first(repo):
    a = record(repo, "train.py", "--seed", "1")
    with open(os.path.join(repo, "data", "train.csv"), "a") as fh:
        fh.write("6\n")
    b = record(repo, "train.py", "--seed", "1")
    cause, found = first_cause(a, b)
    assert cause == "data" and "train" in found["causes"][0]["changed"]
    assert [c["cause"] for c in found["causes"]] == ["data"]


def test_a_changed_package_version_is_named_first(repo):
    a, b = record(repo, "train.py", "--seed", "1"), record(repo, "train.py", "--seed", "1")
    b = edit_record(b, packages={"numpy": "0.0.1", "some-unrelated-tool": "9"})
    cause, found = first_cause(a, b)
    assert cause == "packages"
    assert "numpy" in found["causes"][0]["changed"] and "some-unrelated-tool" not in found["causes"][0]["changed"]
    assert [c["cause"] for c in found["causes"]] == ["packages"]


def test_a_changed_line_of_code_is_named_first_with_the_diff(repo):
    a = record(repo, "train.py", "--seed", "1")
    path = os.path.join(repo, "train.py")
    with open(path) as fh:
        body = fh.read()
    with open(path, "w") as fh:
        fh.write(body.replace("w += args.lr * (x - w)", "w += args.lr * (x - w) * 0.5"))
    b = record(repo, "train.py", "--seed", "1")
    cause, found = first_cause(a, b)
    assert cause == "code" and [c["cause"] for c in found["causes"]] == ["code"]
    assert "+        w += args.lr * (x - w) * 0.5" in found["causes"][0]["uncommitted_diff"]
    git(repo, "commit", "-qam", "halve")  # now two commits: the diff between them is given
    c = record(repo, "train.py", "--seed", "1")
    cause, found = first_cause(a, c)
    assert cause == "code" and "* 0.5" in found["causes"][0]["commits_diff"]


def test_unseeded_runs_differ_by_random_state_and_the_cli_says_so(repo, capsys):
    a, b = record(repo), record(repo)
    cause, found = first_cause(a, b)
    assert cause == "random" and "random at" in found["causes"][0]["summary"]
    uri = os.path.join(repo, "store")
    assert main(["explain", a.id, b.id, "--uri", uri]) == 0
    out = capsys.readouterr().out
    assert "1. seeds or random state differ" in out and "metrics: first divergence" in out and "w: step" in out
    assert main(["diff", a.id, b.id, "--uri", uri, "--explain", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["explain"]["causes"][0]["cause"] == "random"


def test_reproduce_unseeded_plain_script_from_the_cli(repo, capsys, monkeypatch):
    # Importing Ray (tests/integrations/test_ray.py, earlier in the same suite process) puts its
    # vendored packages' folder on sys.path: this process would then list packages (colorama) that
    # the fresh interpreter of the recorded script did not have
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "thirdparty_files" not in p])
    a = record(repo)
    uri = os.path.join(repo, "store")
    assert main(["reproduce", a.id[:8], "--uri", uri]) == 1  # data/ is ignored by git: not in the worktree
    err = capsys.readouterr().err
    assert "git ignores data in" in err and "--link PATH uses your checkout's copy" in err
    assert main(["reproduce", a.id[:8], "--uri", uri, "--link", "data"]) == 0
    out = capsys.readouterr().out
    assert "code: data linked from" in out
    assert "environment: same Python and packages as recorded" in out
    assert "verdict: IDENTICAL" in out and f"reproduces={a.id[:8]}" in out
    new = autotrack.last_run(uri=uri)
    assert new.tags == {"reproduces": a.id} and [p.value for p in new.metrics["w"]] == [p.value for p in a.metrics["w"]]


def test_reproduce_refuses_what_it_cannot_rebuild(repo, capsys, tmp_path):
    a = record(repo, "train.py", "--seed", "1")
    uri = os.path.join(repo, "store")
    capped = edit_record(a, git={"diff_truncated": True, "diff_bytes": 600_000})
    assert main(["reproduce", capped.id, "--uri", uri]) == 1
    assert "diff was capped" in capsys.readouterr().err
    gone = edit_record(a, git={"diff_truncated": False, "commit": "0" * 40})
    assert main(["reproduce", gone.id, "--uri", uri]) == 1
    assert "commit 000000000000 is not in the repository" in capsys.readouterr().err
    nogit = edit_record(a, git=None)
    assert main(["reproduce", nogit.id, "--uri", uri]) == 1
    assert "was not started from a git checkout" in capsys.readouterr().err
    # --in DIR: the user's own folder (here the checkout itself) is used instead
    assert main(["reproduce", nogit.id, "--uri", uri, "--in", repo]) == 0
    out = capsys.readouterr().out
    assert f"code: the folder {repo} (--in)" in out and "verdict: IDENTICAL" in out


def test_strict_refuses_a_different_environment_and_env_writes_requirements(repo, capsys, tmp_path):
    a = record(repo, "train.py", "--seed", "1")
    uri = os.path.join(repo, "store")
    old = edit_record(a, packages={"numpy": "0.0.1"}, python={"version": "2.7.18"})
    assert main(["reproduce", old.id, "--uri", uri, "--strict"]) == 1
    captured = capsys.readouterr()
    assert "numpy 0.0.1 (recorded) ->" in captured.out and "python 2.7.18 (recorded)" in captured.out
    assert "--strict: the environment differs" in captured.err
    assert main(["env", old.id, "--uri", uri, "--json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert changes["changed"]["numpy"][0] == "0.0.1" and changes["python"][0] == "2.7.18"
    req = str(tmp_path / "req.txt")
    assert main(["env", old.id, "--uri", uri, "--requirements", "-o", req]) == 0
    lines = open(req).read().splitlines()
    assert "numpy==0.0.1" in lines and any(line.startswith("autotrack-ml==") for line in lines)
    assert lines[1].startswith("# recorded with Python 2.7.18")


def test_replay_restores_the_recorded_state_only_in_replay_mode(repo):
    a = record(repo)
    result = replay(a, repo, link=("data",))
    assert result["verdict"] == "identical"
    plain = record(repo)  # no replay: the OS seeds python's random anew
    assert plain.metrics["w"][-1].value != a.metrics["w"][-1].value or plain.data == a.data


def test_reproduce_json_is_the_whole_answer_on_stdout(repo, capsys):
    a = record(repo, "train.py", "--seed", "1")
    uri = os.path.join(repo, "store")
    assert main(["reproduce", a.id[:8], "--uri", uri, "--link", "data", "--json"]) == 0
    captured = capsys.readouterr()
    same = json.loads(captured.out)  # stdout holds only the answer; the progress went to stderr
    assert f"reproducing {a.id[:8]}" in captured.err and "command: python train.py --seed 1" in captured.err
    assert same["verdict"] == "identical" and same["original"] == a.id and same["run"] != a.id
    assert same["divergence"] == {} and same["causes"] == [] and same["models"] == {}
    assert same["status"] == ["finished", "finished"] and same["exit_status"] == 0
    assert same["environment"]["recorded"] and not same["environment"]["changed"]
    assert any(n.startswith("code: data linked from") for n in same["notes"])
    assert autotrack.get_run(same["run"], uri=uri).tags == {"reproduces": a.id}
    with open(os.path.join(repo, "data", "train.csv"), "w") as fh:  # the data changed since: differs, says why
        fh.write("10\n20\n30\n40\n50\n")
    assert main(["reproduce", a.id, "--uri", uri, "--link", "data", "--json"]) == 1
    differs = json.loads(capsys.readouterr().out)
    assert differs["verdict"] == "differs" and differs["causes"][0]["cause"] == "data"
    assert "sha256" in differs["causes"][0]["changed"]["train"] and differs["status"] == ["finished", "finished"]
    assert differs["divergence"]["w"]["step"] == 0 and differs["divergence"]["w"]["a"] == a.metrics["w"][0].value


def test_a_recorded_commit_is_never_passed_to_git_as_an_option(repo, tmp_path):
    from autotrack._explain import explain

    a = record(repo, "train.py", "--seed", "1")
    target = tmp_path / "written-by-git"
    evil = edit_record(a, git={"commit": f"--output={target}"})
    found = explain(evil, a)
    assert found["causes"][0]["cause"] == "code" and found["causes"][0].get("commits_diff") is None
    assert not target.exists()


def test_threads_and_a_gpu_without_deterministic_kernels_are_named(repo):
    from autotrack._explain import explain

    a, b = record(repo, "train.py", "--seed", "1"), record(repo, "train.py", "--seed", "1")
    threads = edit_record(b, determinism={"torch": {"threads": 64, "deterministic_algorithms": True}})
    found = explain(a, threads)
    assert [c["cause"] for c in found["causes"]] == ["hardware"] and "torch threads" in found["causes"][0]["changed"]
    gpu = edit_record(b, hardware={"gpus": [{"name": "H200"}]}, determinism={"torch": {"deterministic_algorithms": False}})
    causes = explain(a, gpu)["causes"]
    assert [c["cause"] for c in causes] == ["hardware", "nondeterminism"]
    assert causes[1]["flags"] == ["B: torch deterministic algorithms off on a GPU"]


def test_model_files_that_differ_only_in_when_they_were_saved_hold_the_same_weights(tmp_path):
    import zipfile

    from autotrack._weights import same_weights

    def archive(name, weights, saved):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("metadata.json", json.dumps({"date_saved": saved}))
            z.writestr("config.json", json.dumps({"shared_object_id": {"mon": 140101, "tue": 290733}[saved], "units": 8}))
            z.writestr("model.weights.h5", weights)
        return str(path)

    uri = str(tmp_path / "store")
    with autotrack.start_run(uri=uri) as run:
        for name, weights, saved in (("a.keras", b"w1", "mon"), ("b.keras", b"w1", "tue"), ("c.keras", b"w2", "mon")):
            run.log_artifact(archive(name, weights, saved), kind="model")
    arts = {a.name: a for a in autotrack.get_run(run.id, uri=uri).artifacts}
    assert arts["a.keras"].sha256 != arts["b.keras"].sha256 and same_weights(arts["a.keras"], arts["b.keras"])
    assert not same_weights(arts["a.keras"], arts["c.keras"])
