"""Random state: recorded at ``autolog()`` and at each run's start, restored there in a replay.

A run whose author never set a seed still drew its random numbers from somewhere: python's
``random`` and numpy's global generator are seeded from the OS when they are imported, Keras 3
draws its initializer seeds from python's ``random``, scikit-learn's ``random_state=None`` from
numpy's. Recording the states of those generators at the two points autotrack sees early (the
``autolog()`` call, and a run's start) is what lets ``autotrack reproduce`` replay such a run:
the replay restores them at the same two points. A module imported after ``autolog()`` (numpy,
torch) is read as it is imported, before the program can draw from it, and restored there too.

Outside a replay this module only reads: autotrack never changes a seed or a state. Reading is
cheap (tens of microseconds, a few KB) and happens on the calling thread because the state
must be the one of that moment; turning it into JSON (base64) happens on the run's capture
thread. Only generators of modules already imported are read: nothing here imports a framework.

A replay is asked for by ``AUTOTRACK_REPLAY``: the path of a JSON file written by
``autotrack reproduce`` (``{"run", "run_index", "random_state", "tags", "out"}``).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - autolog() reads states here: its imports are kept few
    from typing import Any

__all__ = [
    "REPLAY_ENV",
    "RESULT_ENV_VARS",
    "SAME",
    "add_to_environment",
    "after_run_start",
    "at_run_start",
    "encode",
    "on_autolog",
    "replay_spec",
    "resolved",
    "restore",
    "snapshot",
]

REPLAY_ENV = "AUTOTRACK_REPLAY"
SAME = "same as autolog"  # a run-start state equal to the one recorded at autolog()

# Environment variables that change what a program computes (hashing, kernels, threads): recorded
# with the command so that a replay sets them again, and compared by ``autotrack explain``.
RESULT_ENV_VARS = (
    "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING",
    "TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC", "TF_ENABLE_ONEDNN_OPTS", "TF_INTRA_OP_PARALLELISM_THREADS",
    "TF_INTER_OP_PARALLELISM_THREADS", "KERAS_BACKEND", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "PL_GLOBAL_SEED",
    "PL_SEED_WORKERS", "XLA_FLAGS", "NVIDIA_TF32_OVERRIDE", "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
)

_autolog_state: dict[str, Any] = {}  # raw states at autolog() (or at the import of a module after it)
_hooked = False
_runs_started = 0
_replay: dict[str, Any] | None = None
_replay_read = False


# -- reading and writing generator states ------------------------------------------------------
def _read(name: str) -> Any:
    """The raw state of one generator, or None when its module is not loaded (never imports)."""
    if name == "random":
        mod = sys.modules.get("random")
        return mod.getstate() if mod is not None else None
    if name == "numpy":
        mod = sys.modules.get("numpy.random")
        get = getattr(mod, "get_state", None)
        return get(legacy=True) if callable(get) else None
    if name == "torch":
        torch = sys.modules.get("torch")
        get = getattr(torch, "get_rng_state", None)
        return get() if callable(get) else None
    if name == "torch.cuda":
        cuda = getattr(sys.modules.get("torch"), "cuda", None)
        if cuda is None or not hasattr(cuda, "is_initialized") or not cuda.is_initialized():
            return None  # reading it would initialise CUDA
        return cuda.get_rng_state_all()
    if name == "tensorflow":
        ops = sys.modules.get("tensorflow.python.ops.stateful_random_ops")
        gen = getattr(ops, "global_generator", None)  # created on first use: never create it here
        return None if gen is None else (int(gen.algorithm), [int(x) for x in gen.state.numpy().tolist()])
    raise ValueError(name)


GENERATORS = ("random", "numpy", "torch", "torch.cuda", "tensorflow")


def snapshot(names: tuple[str, ...] = GENERATORS) -> dict[str, Any]:
    """Raw states of the loaded generators; a generator that cannot be read is left out."""
    out: dict[str, Any] = {}
    for name in names:
        try:
            state = _read(name)
        except Exception:  # noqa: BLE001 - an odd or half-imported module: no state, no failure
            continue
        if state is not None:
            out[name] = state
    return out


def _b64(data: bytes) -> str:
    import base64  # here, not at the top: autolog() only reads states, and its import time is budgeted

    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    import base64

    return base64.b64decode(text)


def _tensor_bytes(tensor: Any) -> bytes:
    return bytes(tensor.tolist())  # a uint8 tensor; tolist() needs no numpy


def _encode_one(name: str, state: Any) -> Any:
    import struct

    if name == "random":
        version, internal, gauss = state
        return {"version": version, "state": _b64(struct.pack(f"<{len(internal)}I", *internal)), "gauss_next": gauss}
    if name == "numpy":
        kind, keys, pos, has_gauss, cached = state
        return {"kind": str(kind), "keys": _b64(keys.astype("<u4").tobytes()), "pos": int(pos),
                "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    if name == "torch":  # 5 KB, half of it zeros (64-bit words holding 32-bit values)
        import zlib

        return {"zlib": _b64(zlib.compress(_tensor_bytes(state), 9))}
    if name == "torch.cuda":
        return [_b64(_tensor_bytes(t)) for t in state]
    if name == "tensorflow":
        return {"algorithm": state[0], "state": state[1]}
    raise ValueError(name)


def encode(raw: dict[str, Any]) -> dict[str, Any]:
    """JSON for the run's environment: bytes as base64 (every store takes strings)."""
    out = {}
    for name, state in raw.items():
        try:
            out[name] = _encode_one(name, state)
        except Exception:  # noqa: BLE001 - one odd state does not cost the others
            continue
    return out


def _restore_one(name: str, state: Any) -> bool:
    import struct

    if name == "random":
        mod = sys.modules.get("random")
        if mod is None:
            return False
        data = _unb64(state["state"])
        internal = struct.unpack(f"<{len(data) // 4}I", data)
        mod.setstate((state["version"], internal, state["gauss_next"]))
        return True
    if name == "numpy":
        np, nprandom = sys.modules.get("numpy"), sys.modules.get("numpy.random")
        if np is None or nprandom is None:
            return False  # not np.random: in numpy 2 that attribute imports it, and this may run in its import hook
        keys = np.frombuffer(_unb64(state["keys"]), dtype="<u4").astype(np.uint32)
        nprandom.set_state((state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]))
        return True
    if name == "torch":
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "set_rng_state"):
            return False
        import zlib

        data = zlib.decompress(_unb64(state["zlib"])) if isinstance(state, dict) else _unb64(state)
        torch.set_rng_state(torch.tensor(list(data), dtype=torch.uint8))
        return True
    if name == "torch.cuda":
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None)
        if cuda is None or not cuda.is_available():
            return False
        states = [torch.tensor(list(_unb64(s)), dtype=torch.uint8) for s in state]
        cuda.set_rng_state_all(states[:cuda.device_count()])
        return True
    if name == "tensorflow":
        ops = sys.modules.get("tensorflow.python.ops.stateful_random_ops")
        if ops is None:
            return False
        tf = sys.modules["tensorflow"]
        gen = ops.get_global_generator()
        if int(gen.algorithm) != int(state["algorithm"]):
            gen = tf.random.Generator.from_state(state["state"], state["algorithm"])
            tf.random.set_global_generator(gen)
        else:
            gen.reset(tf.constant(state["state"], dtype=tf.int64))
        return True
    return False


def restore(encoded: dict[str, Any], names: tuple[str, ...] | None = None) -> list[str]:
    """Set the generators of loaded modules to recorded states (replay only); what was set."""
    done = []
    for name, state in (encoded or {}).items():
        if names is not None and name not in names:
            continue
        from autotrack._safety import guard

        with guard(f"restoring the {name} random state"):
            if _restore_one(name, state):
                done.append(name)
    return done


# -- the replay spec ---------------------------------------------------------------------------
def replay_spec() -> dict[str, Any] | None:
    """The replay this process was started for by ``autotrack reproduce``, or None (read once)."""
    global _replay, _replay_read
    if not _replay_read:
        _replay_read = True
        path = os.environ.get(REPLAY_ENV)
        if path:
            import json

            from autotrack._safety import guard

            with guard("reading the replay file"):
                with open(path, encoding="utf-8") as fh:
                    _replay = json.load(fh)
    return _replay


def _recorded(point: str) -> dict[str, Any]:
    spec = replay_spec() or {}
    return resolved(spec.get("random_state") if isinstance(spec, dict) else None, point)


def resolved(random_state: Any, point: str) -> dict[str, Any]:
    """The states recorded at ``point`` ("autolog" or "run_start"), references resolved."""
    if not isinstance(random_state, dict) or not isinstance(random_state.get(point), dict):
        return {}
    base = random_state.get("autolog") if isinstance(random_state.get("autolog"), dict) else {}
    return {name: base.get(name) if state == SAME else state for name, state in random_state[point].items()
            if state != SAME or name in base}


# -- the two points ----------------------------------------------------------------------------
def _at_import(name: str) -> Any:
    """A generator's module imported after ``autolog()``: its state as imported (restored first in a replay)."""
    def hook(_module: Any) -> None:
        if name in _autolog_state or not _hooked:
            return
        from autotrack._safety import guard

        with guard("reading a random state"):
            recorded = _recorded("autolog")
            if name in recorded:
                restore(recorded, (name,))
            _autolog_state.update(snapshot((name,)))

    return hook


def on_autolog() -> None:
    """``autolog()``: the states now (restored from the record first in a replay), once per process."""
    global _hooked
    if _hooked:
        return
    _hooked = True
    recorded = _recorded("autolog")
    if recorded:
        restore(recorded, tuple(n for n in recorded if n in ("random", "numpy", "torch", "tensorflow")))
    _autolog_state.update(snapshot())
    from autotrack._hooks import when_imported

    for name, module in (("random", "random"), ("numpy", "numpy.random"), ("torch", "torch")):  # numpy.random: lazy in numpy 2
        if name not in _autolog_state:
            when_imported(module, _at_import(name))


def at_run_start() -> dict[str, Any] | None:
    """A run starts: its index in this process and the raw states (restored first in a replay,
    for the run of the recorded index). Never raises: None when the states could not be read."""
    from autotrack._safety import guard

    global _runs_started
    index = _runs_started
    _runs_started += 1
    with guard("reading the random state"):
        spec = replay_spec()
        replayed = bool(spec) and spec.get("run_index", 0) == index
        if replayed:
            restore(_recorded("run_start"))
        return {"index": index, "run_start": snapshot(), "autolog": dict(_autolog_state), "replayed": replayed}
    return None


def after_run_start(run: Any, start: dict[str, Any] | None) -> None:
    """The replayed run, once it can record: tagged ``reproduces=<id>``, and named to the
    waiting ``autotrack reproduce`` (the script may record into another store than it reads)."""
    spec = replay_spec()
    if not spec or not start or not start.get("replayed"):
        return
    from autotrack._safety import guard

    with guard("tagging a replayed run"):
        tags = spec.get("tags") or {}
        if tags:
            run.set_tags(tags)
        out = spec.get("out")
        if out:
            import json

            with open(out, "w", encoding="utf-8") as fh:
                json.dump({"run": run.id, "uri": run.uri}, fh)


def _determinism() -> dict[str, Any]:
    """What makes kernels nondeterministic or thread-dependent, for the loaded frameworks."""
    out: dict[str, Any] = {}
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "are_deterministic_algorithms_enabled"):
        cudnn = getattr(getattr(torch, "backends", None), "cudnn", None)
        out["torch"] = {"deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
                        "cudnn_deterministic": bool(getattr(cudnn, "deterministic", False)),
                        "cudnn_benchmark": bool(getattr(cudnn, "benchmark", False)),
                        "threads": int(torch.get_num_threads())}
    config = sys.modules.get("tensorflow.python.framework.config")
    enabled = getattr(config, "is_op_determinism_enabled", None)
    if callable(enabled):
        out["tensorflow"] = {"op_determinism": bool(enabled())}
    return out


def add_to_environment(env: dict[str, Any], start: dict[str, Any] | None) -> None:
    """On the capture thread: the random states, the result-changing variables, the determinism flags."""
    command = env.get("command")
    if isinstance(command, dict):
        command["env"] = {k: os.environ[k] for k in RESULT_ENV_VARS if k in os.environ}
    try:
        env["determinism"] = _determinism()
    except Exception:  # noqa: BLE001 - a half-imported framework: say nothing rather than fail
        env["determinism"] = {}
    if start:
        first, now = encode(start["autolog"]), encode(start["run_start"])
        # a generator nobody drew from between the two points: said once (2.5 KB a generator)
        now = {name: SAME if first.get(name) == state else state for name, state in now.items()}
        env["random_state"] = {"run_index": start["index"], "autolog": first, "run_start": now}
