"""Storage backends: where runs go. ``backend_for(uri)`` picks one by the URI's scheme."""

from autotrack.backends.base import Backend, backend_for, register_backend, registered_backends

__all__ = ["Backend", "backend_for", "register_backend", "registered_backends"]
