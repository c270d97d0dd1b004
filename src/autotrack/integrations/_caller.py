"""Whose code asked for a fit: the user's, or a library's on the user's behalf.

scikit-learn fits estimators inside its own helpers (``f1_score`` and ``log_loss`` fit a
``LabelEncoder``/``LabelBinarizer``, ``cross_val_score`` a clone per fold), and other libraries
do the same. Those fits are not the user's training, so autolog records a fit only when the code
that called ``fit`` is the user's. That is decided by where the calling code lives, not by a list
of classes or helpers:

* the user's: ``__main__`` (a script, ``python -m``, ``-c``, a notebook cell), code not read from
  a file (``<stdin>``), any file outside the interpreter's library folders (a project, a package
  installed editable, a test suite), a package installed from a local folder (``pip install .``:
  its ``direct_url.json`` says ``dir_info``) and the package ``python -m`` runs;
* a library's: a file in a ``site-packages``/``dist-packages`` folder, and scikit-learn, XGBoost,
  LightGBM or CatBoost themselves wherever they are installed.

Frames that only pass the call on are skipped: the standard library's (a thread pool running
``est.fit``), autotrack's, wrapt's, and methods of the very object being fitted (scikit-learn's
``set_output`` wraps ``fit_transform``; an estimator method that calls ``self.fit``): the caller
is whoever called them. Decided once per code file.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import sysconfig
from typing import Any

__all__ = ["called_by_user"]

_FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "catboost")
_PASSING = ("autotrack", "wrapt")
_STDLIB = tuple({os.path.join(os.path.normcase(os.path.realpath(sysconfig.get_paths()[key])), "")
                 for key in ("stdlib", "platstdlib")})


def called_by_user(instance: Any) -> bool:
    """Whether the code that called this fit of ``instance`` is the user's (see the module doc)."""
    frame = sys._getframe(1)
    while frame is not None:
        top = (frame.f_globals.get("__name__") or "").partition(".")[0]
        kind = "pass" if top in _PASSING or _method_of(frame, instance) else \
            "user" if top in ("__main__", _main_package()) else _kind(top, frame.f_code.co_filename)
        if kind != "pass":
            return kind == "user"
        frame = frame.f_back
    return True  # only dispatch above (a thread's start): no library is known to have asked


def _method_of(frame: Any, instance: Any) -> bool:
    code = frame.f_code
    return bool(code.co_argcount) and code.co_varnames[0] == "self" and frame.f_locals.get("self") is instance


def _main_package() -> str:
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return (getattr(spec, "name", None) or "__main__").partition(".")[0]


@functools.lru_cache(maxsize=512)
def _kind(top: str, filename: str) -> str:
    """``user``, ``library``, or ``pass`` for the standard library, which only dispatches a call
    (``concurrent.futures``, ``threading``): the caller is further up."""
    if top in _FRAMEWORKS:
        return "library"
    if filename.startswith("<"):
        return "user"
    path = os.path.normcase(os.path.realpath(filename))
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return "user" if _installed_from_folder(top) else "library"
    return "pass" if path.startswith(_STDLIB) else "user"


def _installed_from_folder(top: str) -> bool:
    import importlib.metadata

    try:
        text = importlib.metadata.distribution(top).read_text("direct_url.json")
        return bool(text) and "dir_info" in json.loads(text)
    except (importlib.metadata.PackageNotFoundError, ValueError, OSError):
        return False
