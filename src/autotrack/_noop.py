"""A run that records nothing: for ``AUTOTRACK_DISABLE=1`` and non-zero ranks of a distributed job."""

from __future__ import annotations

from typing import Any

__all__ = ["NoopRun"]


class NoopRun:
    id = ""
    name = ""
    experiment = ""
    framework = None
    parent_id = None
    status = "running"
    uri = ""

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        return None

    log_params = log_metrics = log_metric = log_artifact = update_artifact = release_artifact = _nothing
    set_tags = log_seeds = log_data = set_framework = _nothing

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def finish(self, status: str = "finished", error: str | None = None) -> None:
        self.status = status

    def reopen(self) -> "NoopRun":
        return self

    def __enter__(self) -> "NoopRun":
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.finish()
        return False

    def __repr__(self) -> str:
        return "<autotrack.NoopRun>"
