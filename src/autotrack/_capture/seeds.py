"""Seed capture: which seeds the user set, through which call, recorded into the runs that follow.

autotrack never sets a seed itself. It wraps the seeding functions of libraries as they are
imported (``autotrack._hooks``, so the order of imports does not matter) and notes each call
in a process-wide table. A run copies that table when it starts and receives later calls as they
happen. Environment variables that fix seeds (``PYTHONHASHSEED``, ``PL_GLOBAL_SEED``) are read at
run start too.

A call made before autotrack was imported is not seen by any wrapper, but some frameworks keep
the seed they were given: those are read at run start as well, under names of their own so they
are never mistaken for a captured call (``_REMEMBERED``). ``torch.initial_seed`` is recorded even
when nobody seeded torch: it is the seed torch drew for itself, and ``torch.manual_seed`` with it
replays the run. Only modules already in ``sys.modules`` are read: a run start never imports a
framework, and each read is an attribute lookup or two (microseconds).
"""

from __future__ import annotations

import os
import sys

from autotrack import _forksafe
from autotrack._hooks import when_imported

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

__all__ = ["install_seed_hooks", "uninstall_seed_hooks", "record_seed", "seeds_snapshot", "recorded_seeds"]

_seeds: dict[str, Any] = {}
_listeners: list[Callable[[str, Any], None]] = []
_lock = _forksafe.lock()
_installed = False
_registered = False  # post-import hooks are registered once; they do nothing while uninstalled
_patched: set[tuple[str, str]] = set()
_restore: list[tuple[Any, str, Any, Any]] = []  # (module, attribute, original, our wrapper)


def add_listener(fn: Callable[[str, Any], None]) -> None:
    _listeners.append(fn)


def record_seed(source: str, value: Any) -> None:
    """Remember a seed for runs that start later, and hand it to the runs recording now."""
    if value is None:
        return
    value = _plain(value)
    with _lock:
        _seeds[source] = value
    if not _listeners:
        return
    from autotrack._safety import guard

    for listener in list(_listeners):
        with guard("recording a seed"):
            listener(source, value)


def _plain(value: Any) -> Any:
    """Seeds are stored as JSON: a numpy or torch integer must not end up as its repr, and an odd
    value (a string seed, an object) is kept as text rather than lost."""
    if not isinstance(value, (int, float, str)) and hasattr(value, "__index__"):
        return int(value)
    return value if isinstance(value, (int, float, str)) else repr(value)


def recorded_seeds() -> dict[str, Any]:
    with _lock:
        return dict(_seeds)


def seeds_snapshot() -> dict[str, Any]:
    """Seeds a new run starts with: calls seen so far plus what the environment fixes."""
    out = recorded_seeds()
    for var in ("PYTHONHASHSEED", "PL_GLOBAL_SEED"):
        raw = os.environ.get(var)
        if raw not in (None, "", "random"):
            try:
                out[var] = int(raw)  # type: ignore[arg-type]
            except ValueError:
                out[var] = raw
    from autotrack._safety import guard

    for source, module, read in _REMEMBERED:
        mod = sys.modules.get(module)
        if mod is None:
            continue
        with guard(f"reading {source}"):
            value = read(mod)
            if value is not None:
                out[source] = _plain(value)
    return out


def _keras_seed(rng_utils: Any) -> Any:
    """``keras.utils.set_random_seed`` keeps its seed in Keras' global state (one per thread)."""
    get = getattr(rng_utils, "get_random_seed", None)  # not in every Keras 3 release: then the state itself
    if callable(get):
        return get()
    state = sys.modules.get("keras.src.backend.common.global_state")
    return getattr(getattr(state, "GLOBAL_STATE_TRACKER", None), "global_random_seed", None)


def _tf_seed(context: Any) -> Any:
    """The eager context's global seed; ``context_safe`` because ``context()`` would create one,
    and not ``random_seed.get_seed`` because that draws an op seed and so shifts later random ops."""
    return getattr(context.context_safe(), "_seed", None)


# (source name, module that must already be imported, how to read what it remembers)
_REMEMBERED: list[tuple[str, str, Callable[[Any], Any]]] = [
    # hasattr: a run may start while torch is still being imported (an import hook, a thread)
    ("torch.initial_seed", "torch", lambda torch: torch.initial_seed() if hasattr(torch, "initial_seed") else None),
    ("keras.global_seed", "keras.src.utils.rng_utils", _keras_seed),
    ("tf.global_seed", "tensorflow.python.eager.context", _tf_seed),
]


def _first_arg(args: tuple[Any, ...], kwargs: dict[str, Any], *names: str) -> Any:
    if args:
        return args[0]
    for name in names:
        if name in kwargs:
            return kwargs[name]
    return None


def _wrap(original: Callable[..., Any], source: str, names: tuple[str, ...], use_result: bool) -> Callable[..., Any]:
    """A plain function wrapper (no wrapt: patching must stay cheap on the training thread)."""
    import functools

    from autotrack._safety import guard

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)  # the user's call runs first and its errors propagate
        if not _installed:
            return result  # a copy kept by a module after uninstall_seed_hooks(): inert
        value = result if use_result and isinstance(result, int) else _first_arg(args, kwargs, *names)
        with guard("recording a seed"):
            record_seed(source, value)
        return result

    wrapper.__autotrack_seed__ = True  # type: ignore[attr-defined]
    return wrapper


def _resolve(dotted: str) -> Any:
    """``tensorflow.random`` may be a lazily loaded attribute rather than an importable module."""
    root, *rest = dotted.split(".")
    obj = sys.modules.get(root)
    for part in rest:
        if obj is None:
            return None
        found = sys.modules.get(f"{obj.__name__}.{part}") if hasattr(obj, "__name__") else None
        obj = found if found is not None else getattr(obj, part, None)
    return obj


_EMPTY: dict[str, Any] = {}

# packages that re-export a seeding function under their own name (``pl.seed_everything``)
_REEXPORTERS = {"lightning_fabric": ("pytorch_lightning",), "lightning": ()}


_by_root: tuple[int, dict[str, list[Any]]] = (-1, {})


def _modules_under(root: str) -> list[Any]:
    """The loaded modules of one top-level package. Thousands once TensorFlow or torch is loaded,
    and ``autolog()`` patches five functions: one pass over ``sys.modules`` serves them all while
    no module is imported in between (~1 ms a pass with TensorFlow)."""
    global _by_root
    count, groups = _by_root
    if count != len(sys.modules):
        groups = {r: [] for r in _ROOTS}
        for name, mod in list(sys.modules.items()):
            found = groups.get(name.partition(".")[0])
            if found is not None:
                found.append(mod)
        _by_root = (len(sys.modules), groups)
    return groups.get(root, [])


def _patch(holder_name: str, attr: str, source: str, names: tuple[str, ...], use_result: bool = False) -> None:
    """Wrap ``holder.attr`` and every other loaded module attribute bound to the same function."""
    holder = _resolve(holder_name)
    original = getattr(holder, attr, None) if holder is not None else None
    if original is None or getattr(original, "__autotrack_seed__", False):
        return
    wrapped = _wrap(original, source, names, use_result)
    setattr(holder, attr, wrapped)
    _restore.append((holder, attr, original, wrapped))
    root = holder_name.split(".")[0]
    roots = (root, *_REEXPORTERS.get(root, ()))
    # the module's own __dict__: a getattr could make a lazy module import things
    for mod in (mod for r in roots for mod in _modules_under(r)):
        try:
            if getattr(mod, "__dict__", _EMPTY).get(attr) is original:
                setattr(mod, attr, wrapped)
                _restore.append((mod, attr, original, wrapped))
        except Exception:  # noqa: BLE001 - odd entries in sys.modules, modules refusing setattr
            continue
    _patched.add((holder_name, attr))


# (module to wait for, module holding the function, attribute, source name, argument names, use result)
_TARGETS: list[tuple[str, str, str, str, tuple[str, ...], bool]] = [
    ("random", "random", "seed", "random.seed", ("a",), False),
    ("numpy", "numpy.random", "seed", "numpy.random.seed", ("seed",), False),
    ("torch", "torch", "manual_seed", "torch.manual_seed", ("seed",), False),
    ("tensorflow", "tensorflow.random", "set_seed", "tf.random.set_seed", ("seed",), False),
    ("keras", "keras.utils", "set_random_seed", "keras.utils.set_random_seed", ("seed",), False),
    ("keras", "keras.src.utils.rng_utils", "set_random_seed", "keras.utils.set_random_seed", ("seed",), False),
    ("lightning", "lightning.fabric.utilities.seed", "seed_everything", "lightning.seed_everything", ("seed",), True),
    ("lightning_fabric", "lightning_fabric.utilities.seed", "seed_everything", "lightning.seed_everything", ("seed",), True),
]


def _hook_for(targets: list[tuple[str, str, str, str, tuple[str, ...], bool]]) -> Callable[[Any], None]:
    def hook(_module: Any) -> None:
        from autotrack._safety import guard

        if not _installed:
            return  # uninstalled: a module imported later stays as it is

        for _, holder, attr, source, names, use_result in targets:
            with guard("installing seed capture"):
                _patch(holder, attr, source, names, use_result)

    return hook


_ROOTS = {r for _, holder, *_ in _TARGETS for root in [holder.partition(".")[0]]
          for r in (root, *_REEXPORTERS.get(root, ()))}


def install_seed_hooks() -> None:
    """Idempotent; cheap: nothing is imported that the user has not imported. Called by
    ``autolog()`` and when a run starts, undone by ``autolog(disable=True)``."""
    global _installed, _registered
    if _installed:
        return
    _installed = True
    by_trigger: dict[str, list[tuple[str, str, str, str, tuple[str, ...], bool]]] = {}
    for target in _TARGETS:
        by_trigger.setdefault(target[0], []).append(target)
    for trigger, targets in by_trigger.items():
        hook = _hook_for(targets)
        if not _registered:
            when_imported(trigger, hook)  # at once for modules already imported, and at each import
        elif trigger in sys.modules:
            hook(sys.modules[trigger])
    _registered = True


def uninstall_seed_hooks() -> None:
    """Put every seeding function back as it was (the same object). A module that copied a
    wrapper meanwhile (``from torch import manual_seed`` after it was patched) keeps it, inert."""
    global _installed
    _installed = False
    while _restore:
        module, attr, original, wrapped = _restore.pop()
        try:
            if getattr(module, "__dict__", _EMPTY).get(attr) is wrapped:
                setattr(module, attr, original)
        except Exception:  # noqa: BLE001 - a module refusing setattr: leave it
            continue
    _patched.clear()
