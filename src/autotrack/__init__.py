"""autotrack: every training run recorded -- params, metrics, checkpoints, seeds, environment.

``import autotrack`` stays light (no ML framework, no pandas, no fsspec until a run or a read
needs a store): names are resolved on first use.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not ``typing``: importing it costs several ms of the import budget
__version__ = "0.1.0"

__all__ = [
    "__version__",
    "autolog",
    "start_run",
    "active_run",
    "seed_everything",
    "runs",
    "get_run",
    "last_run",
    "runs_dataframe",
    "register_model",
    "set_alias",
    "delete_alias",
    "get_model",
    "models",
    "model_history",
    "ModelVersion",
    "RegisteredModel",
    "ModelEvent",
    "Run",
    "RunRecord",
    "MetricPoint",
    "ArtifactRecord",
    "register_backend",
    "error_counts",
    "AutotrackError",
    "ConfigError",
    "BackendUnavailableError",
    "RunNotFoundError",
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "AmbiguousArtifactError",
    "IntegrityError",
    "ModelNotFoundError",
    "AutotrackWarning",
]

_LAZY = {
    "autolog": "autotrack._autolog",
    "start_run": "autotrack._run",
    "active_run": "autotrack._run",
    "Run": "autotrack._run",
    "seed_everything": "autotrack._seeding",
    "runs": "autotrack._records",
    "get_run": "autotrack._records",
    "last_run": "autotrack._records",
    "RunRecord": "autotrack._records",
    "MetricPoint": "autotrack._records",
    "ArtifactRecord": "autotrack._records",
    "runs_dataframe": "autotrack._frame",
    "register_model": "autotrack._registry",
    "set_alias": "autotrack._registry",
    "delete_alias": "autotrack._registry",
    "get_model": "autotrack._registry",
    "models": "autotrack._registry",
    "model_history": "autotrack._registry",
    "ModelVersion": "autotrack._registry",
    "RegisteredModel": "autotrack._registry",
    "ModelEvent": "autotrack._registry",
    "register_backend": "autotrack.backends.base",
    "error_counts": "autotrack._safety",
    "AutotrackWarning": "autotrack._safety",
    "AutotrackError": "autotrack._errors",
    "ConfigError": "autotrack._errors",
    "BackendUnavailableError": "autotrack._errors",
    "RunNotFoundError": "autotrack._errors",
    "AmbiguousRunError": "autotrack._errors",
    "ArtifactNotFoundError": "autotrack._errors",
    "AmbiguousArtifactError": "autotrack._errors",
    "IntegrityError": "autotrack._errors",
    "ModelNotFoundError": "autotrack._errors",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'autotrack' has no attribute {name!r}")
    __import__(module)
    value = getattr(sys.modules[module], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from autotrack._autolog import autolog
    from autotrack._errors import (AmbiguousArtifactError, AmbiguousRunError, ArtifactNotFoundError, AutotrackError,
                                   BackendUnavailableError, ConfigError, IntegrityError, ModelNotFoundError,
                                   RunNotFoundError)
    from autotrack._frame import runs_dataframe
    from autotrack._records import ArtifactRecord, MetricPoint, RunRecord, get_run, last_run, runs
    from autotrack._registry import (ModelEvent, ModelVersion, RegisteredModel, delete_alias, get_model,
                                     model_history, models, register_model, set_alias)
    from autotrack._run import Run, active_run, start_run
    from autotrack._safety import AutotrackWarning, error_counts
    from autotrack._seeding import seed_everything
    from autotrack.backends.base import register_backend
