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
# what any call may answer: a bad request, no or a wrong token, a scope too small, a body over the
# limits, the store down
_COMMON = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "413": _ERROR, "503": _ERROR}
_READ = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR, "503": _ERROR}
_WRITE = {**_COMMON, "404": _ERROR, "409": _ERROR, "415": _ERROR, "422": _ERROR}


def _json_body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _status(*keys: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": "string"} for k in keys}}


def openapi_spec() -> dict[str, Any]:
    from autotrack import __version__
    from autotrack._schema_json import RUN_SCHEMA, SEGMENT_SCHEMA

    stored = {"type": "object"}
    binary = {"description": "bytes", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "autotrack tracking server", "version": __version__,
                 "description": "The autotrack Backend protocol over HTTP. Request bodies may be gzip-compressed "
                                "(Content-Encoding: gzip). Every call but /health needs 'Authorization: Bearer "
                                "<token>' when the server has tokens; a token's scope (read, write, admin) says "
                                "what it may do, and a run may be written only by the token that created it "
                                "(or an admin). Formats: docs/format.md; security model: docs/server.md."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            f"{API_PREFIX}/runs": {
                "get": {"operationId": "listRuns", "summary": "every run document [read]",
                        "responses": {"200": _ok("run documents", {"type": "array", "items": {"$ref": "#/components/schemas/Run"}}),
                                      **_READ}},
            },
            f"{API_PREFIX}/runs/{{run_id}}": {
                "parameters": [_RUN_ID],
                "get": {"operationId": "getRun", "summary": "one run document [read]",
                        "responses": {"200": _ok("the run document", {"$ref": "#/components/schemas/Run"}), **_READ}},
                "put": {"operationId": "putRun",
                        "summary": "create [write] or update [its owner, or admin] the run document: validated, "
                                   "identity and start time fixed, status only forward",
                        "requestBody": _json_body("Run"), "responses": {"200": _ok("stored", _status("id", "status")), **_WRITE}},
                "delete": {"operationId": "deleteRun",
                           "summary": "delete the run; its artifacts' bytes go only where no other run uses them [admin]",
                           "responses": {"200": _ok("deleted", {"type": "object", "properties": {
                               "id": {"type": "string"}, "status": {"type": "string"},
                               "artifacts_freed": {"type": "integer"}}}), **_READ}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/segments": {
                "parameters": [_RUN_ID],
                "get": {"operationId": "readSegments", "summary": "the run's event segments in seq order [read]",
                        "responses": {"200": _ok("segments", {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}}),
                                      **_READ}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/segments/{{seq}}": {
                "parameters": [_RUN_ID, _SEQ],
                "put": {"operationId": "putSegment",
                        "summary": "store event segment seq [its run's owner, or admin]; immutable: the same content "
                                   "again is 200, other content 409",
                        "requestBody": _json_body("Segment"),
                        "responses": {"200": _ok("stored (or already stored)", _status("run_id", "status")), **_WRITE}},
            },
            f"{API_PREFIX}/artifacts/{{sha256}}": {
                "parameters": [_SHA],
                "head": {"operationId": "hasArtifact", "summary": "200 if the content is stored [read]",
                         "responses": {"200": _ok("stored"), "404": _ok("absent"), "400": _ok("bad sha256"),
                                       "401": _ok("no or wrong token"), "403": _ok("scope too small"),
                                       "503": _ok("the store failed")}},
                "get": {"operationId": "getArtifact", "summary": "the stored bytes (streamed) [read]",
                        "responses": {"200": binary, **_READ}},
                "put": {"operationId": "putArtifact",
                        "summary": "upload content; verified against the sha256; skipped if already stored [write]",
                        "requestBody": {"required": True, "content": {"application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}}}},
                        "responses": {"200": _ok("already stored", stored), "201": _ok("stored", stored), **_WRITE}},
            },
            f"{API_PREFIX}/runs/{{run_id}}/refs/{{sha256}}": {
                "parameters": [_RUN_ID, _SHA],
                "put": {"operationId": "addReference",
                        "summary": "record that the run references this content, before uploading it [its run's owner]",
                        "responses": {"200": _ok("recorded", stored), "405": _ERROR, **_WRITE}},
                "delete": {"operationId": "releaseReference",
                           "summary": "drop the run's reference; the bytes are freed only when no run references "
                                      "them [its run's owner]",
                           "responses": {"200": _ok("released; 'freed' says whether the bytes went", {
                               "type": "object", "properties": {"freed": {"type": "boolean"}}}),
                               "405": _ERROR, **_WRITE}},
            },
            f"{API_PREFIX}/whoami": {
                "get": {"operationId": "whoami", "summary": "the calling token's name and scope",
                        "responses": {"200": _ok("the caller", _status("id", "name", "scope")), **_READ}},
            },
            f"{API_PREFIX}/openapi.json": {
                "get": {"operationId": "openapi", "summary": "this document",
                        "responses": {"200": _ok("OpenAPI", stored), **_READ}},
            },
            f"{API_PREFIX}/health": {
                "get": {"operationId": "health", "summary": "liveness (no token needed)", "security": [],
                        "responses": {"200": _ok("ok", stored), "400": _ERROR}},
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
                "Run": RUN_SCHEMA,
                "Segment": SEGMENT_SCHEMA,
            },
        },
    }
