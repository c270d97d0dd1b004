"""Moments of a run's life that an adapter must act at: a run is about to start, a framework's fit
begins recording, a run is about to finish.

Why: an adapter whose run has no natural end (a plain PyTorch loop: no ``fit`` call, so its run
ends where the next one starts, or with the process) has to act when *autotrack* starts or ends
a run, not when its framework does. Wrapping autotrack's own ``start_run``/``Run.finish`` from an
adapter is fragile (a name imported before the wrap is not wrapped) and stacks badly when two
adapters do it; these listeners are the explicit alternative.

The events, and what a listener is called with:

* ``run_starting()``: ``start_run`` is about to make a run (before it reads the active run, so a
  listener may still end or detach one);
* ``fit_beginning(recorder)``: a ``FitRecorder`` of some framework is about to begin (join or
  start) its run (``recorder.framework``, ``recorder.record``);
* ``run_finishing(run, status)``: ``run.finish`` was called, exactly once per run: the run is
  still writable (totals go in now) and ``run.status`` already reads ``status``.

Listeners run on the calling thread, in the order added, each guarded (an error in one is
reported once and counted, never raised into training; raised in strict mode). With no listener
an event costs one dict lookup. ``on``/``off`` are idempotent; an adapter adds its listeners in
``enable`` and removes them in ``disable`` (``autolog(disable=True)``).
"""

from __future__ import annotations

from autotrack import _forksafe

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

__all__ = ["EVENTS", "on", "off", "emit", "listeners"]

EVENTS = ("run_starting", "fit_beginning", "run_finishing")
_listeners: dict[str, tuple[Callable[..., Any], ...]] = {name: () for name in EVENTS}  # replaced, never mutated
_lock = _forksafe.lock()


def _check(event: str) -> None:
    if event not in _listeners:
        raise ValueError(f"unknown event {event!r}; known: {EVENTS}")


def on(event: str, listener: Callable[..., Any]) -> None:
    """Call ``listener`` at ``event`` from now on (once, however often it is added)."""
    _check(event)
    with _lock:
        if listener not in _listeners[event]:
            _listeners[event] = (*_listeners[event], listener)


def off(event: str, listener: Callable[..., Any]) -> None:
    """Stop calling ``listener`` at ``event`` (nothing if it was not added)."""
    _check(event)
    with _lock:
        _listeners[event] = tuple(fn for fn in _listeners[event] if fn != listener)


def listeners(event: str) -> tuple[Callable[..., Any], ...]:
    """The listeners of ``event`` now (for tests: an adapter's ``disable`` leaves none of its own)."""
    _check(event)
    return _listeners[event]


def emit(event: str, *args: Any) -> None:
    """Call the listeners of ``event``; each one's error is reported (``_safety.report``) and the
    next one still runs (in strict mode the first error is raised once all have run)."""
    found = _listeners[event]  # a snapshot: a listener may add or remove listeners
    if not found:
        return
    first: BaseException | None = None
    for listener in found:
        try:
            listener(*args)
        except Exception as exc:  # noqa: BLE001 - an adapter's bug never reaches training
            from autotrack._safety import report

            try:
                report(f"an autotrack {event} listener", exc, stacklevel=None)
            except Exception as raised:  # noqa: BLE001 - strict mode: after the others ran
                first = first or raised
    if first is not None:
        raise first
