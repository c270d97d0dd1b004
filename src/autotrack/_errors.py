"""autotrack's exceptions, as one tree: catch ``AutotrackError`` to catch them all."""

from __future__ import annotations

__all__ = [
    "AutotrackError",
    "ConfigError",
    "BackendUnavailableError",
    "RunNotFoundError",
    "AmbiguousRunError",
    "ArtifactNotFoundError",
    "AmbiguousArtifactError",
    "IntegrityError",
    "ModelNotFoundError",
]


class AutotrackError(Exception):
    """Base of every error autotrack raises on purpose."""


class ConfigError(AutotrackError, ValueError):
    """A URI, scheme or setting autotrack cannot use (e.g. an unknown ``foo://`` scheme)."""


class BackendUnavailableError(ConfigError, ImportError):
    """The backend for a URI needs an optional package that is not installed."""


class RunNotFoundError(AutotrackError, LookupError):
    """No run has this id or id prefix."""


class AmbiguousRunError(RunNotFoundError):
    """An id prefix matches more than one run."""


class ArtifactNotFoundError(AutotrackError, LookupError):
    """The run has no artifact of that name."""


class AmbiguousArtifactError(ArtifactNotFoundError):
    """A file name matches several artifacts of the run (``checkpoint-1/model.safetensors``,
    ``checkpoint-2/model.safetensors``): the message lists them; give the full name."""


class IntegrityError(AutotrackError, OSError):
    """Stored bytes no longer match their recorded sha256."""


class ModelNotFoundError(AutotrackError, LookupError):
    """The model registry has no model, version or alias of that name; the message says which,
    and what there is instead."""
