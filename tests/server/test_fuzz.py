"""Fuzz the served OpenAPI document with schemathesis: whatever comes in, never a 5xx."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from autotrack.server.openapi import openapi_spec  # noqa: E402

schema = schemathesis.openapi.from_dict(openapi_spec())
try:  # positive and negative (invalid) data both
    schema.config.generation.update(modes=list(schemathesis.GenerationMode))
except Exception:  # noqa: BLE001 - an older schemathesis: its default modes
    pass


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, server):
    case.call_and_validate(base_url=server.url, headers=server.headers(), checks=[not_a_server_error])
