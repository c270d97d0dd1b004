"""The OpenAPI 3.0 document of the server's API, written by hand (it is small and stable)."""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "openapi_spec"]

API_PREFIX = "/api/v1"

_RUN_ID = {"name": "run_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"}}
_SEQ = {"name": "seq", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 99999999}}
_SHA = {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_ERRORS = {"400": _ERROR, "401": _ERROR, "404": _ERROR, "413": _ERROR, "415": _ERROR, "422": _ERROR}


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def openapi_spec() -> dict[str, Any]:
    from autotrack import __version__

    stored = {"type": "object"}
    return {
        "openapi": "3.0.3",
        "info": {"title": "autotrack tracking server", "version": __version__,
                 "description": "The autotrack Backend protocol over HTTP. Request bodies may be gzip-compressed "
                                "(Content-Encoding: gzip). Every call but /health needs 'Authorization: Bearer "
                                "<token>' when the server has a token. Formats: docs/format.md."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            f"{API_PREFIX}/runs": {
                "get": {"operationId": "listRuns", "summary": "every run document",
                        "responses": {"200": _ok("run documents", {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}),
                                      **_ERRORS}},
            },
            f"{API_PREFIX}/runs/{{run_id}}": {
                "parameters": [_RUN_ID],
                "get": {"operationId": "getRun", "summary": "one run document",
                        "responses": {"200": _ok("the run document", {"$ref": "#/components/schemas/Run"}), **_ERRORS}},
                "put": {"operationId": "putRun", "summary": "create or replace the run document (whole)",
                        "requestBody": _json_body("Run"), "responses": {"200": _ok("stored", stored), **_ERRORS}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/segments": {
                "parameters": [_RUN_ID],
                "get": {"operationId": "readSegments", "summary": "the run's event segments in seq order",
                        "responses": {"200": _ok("segments", {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}),
                                      **_ERRORS}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/segments/{{seq}}": {
                "parameters": [_RUN_ID, _SEQ],
                "put": {"operationId": "putSegment",
                        "summary": "store event segment seq; idempotent: (run_id, seq) is the batch id",
                        "requestBody": _json_body("Segment"), "responses": {"200": _ok("stored", stored), **_ERRORS}},
            },
            f"{API_PREFIX}/artifacts/{{sha256}}": {
                "parameters": [_SHA],
                "head": {"operationId": "hasArtifact", "summary": "200 if the content is stored",
                         "responses": {"200": _ok("stored"), "404": _ok("absent"), "400": _ok("bad sha256"),
                                       "401": _ok("no or wrong token")}},
                "get": {"operationId": "getArtifact", "summary": "the stored bytes (streamed)",
                        "responses": {"200": {"description": "bytes", "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}}, **_ERRORS}},
                "put": {"operationId": "putArtifact",
                        "summary": "upload content; verified against the sha256; skipped if already stored",
                        "requestBody": {"required": True, "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}},
                        "responses": {"200": _ok("already stored", stored), "201": _ok("stored", stored), **_ERRORS}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/refs/{{sha256}}": {
                "parameters": [_RUN_ID, _SHA],
                "put": {"operationId": "addReference",
                        "summary": "record that the run references this content (before uploading it)",
                        "responses": {"200": _ok("recorded", stored), **_ERRORS}},
                "delete": {"operationId": "releaseReference",
                           "summary": "drop the run's reference; the bytes are freed only when no run references them",
                           "responses": {"200": _ok("released; 'freed' says whether the bytes went", {
                               "type": "object", "properties": {"freed": {"type": "boolean"}}}),
                               "405": _ERROR, **_ERRORS}},
            },
            f"{API_PREFIX}/openapi.json": {
                "get": {"operationId": "openapi", "summary": "this document", "responses": {"200": _ok("OpenAPI", stored)}},
            },
            f"{API_PREFIX}/health": {
                "get": {"operationId": "health", "summary": "liveness (no token needed)", "security": [],
                        "responses": {"200": _ok("ok", stored)}},
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Run": {"type": "object", "description": "run.json (docs/format.md); a file the store cannot read "
                                                        "comes as {id, corrupt: {file, reason}}",
                        "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                                       "experiment": {"type": "string"}, "status": {"type": "string"},
                                       "heartbeat": {"type": "number"}},
                        "additionalProperties": True},
                "Segment": {"type": "object", "description": "an event segment (docs/format.md); a file the store "
                                                                "cannot read comes as {seq, corrupt: {file, reason}}",
                            "properties": {"format": {"type": "integer"}, "run_id": {"type": "string"},
                                           "seq": {"type": "integer"}, "time": {"type": "number"}},
                            "additionalProperties": True},
            },
        },
    }
