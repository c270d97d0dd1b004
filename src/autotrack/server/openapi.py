"""The OpenAPI 3.0 document of the server's API, written by hand (it is small and stable)."""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "openapi_spec"]

API_PREFIX = "/api/v1"

_RUN_ID = {"name": "run_id", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"}}
_SEQ = {"name": "seq", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0, "maximum": 99999999}}
_SHA = {"name": "sha256", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_MODEL = {"name": "name", "in": "path", "required": True, "schema": {"type": "string", "pattern": _NAME_PATTERN}}
_START = {"name": "start", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 0, "maximum": 999999999}}
_SEQS = {"name": "seq", "in": "query", "required": False, "style": "form", "explode": True,
         "schema": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 999999999}}}

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
            **_model_paths(),
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
                **_MODEL_SCHEMAS,
            },
        },
    }


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _model_paths() -> dict[str, Any]:
    """The model registry (docs/server.md, "Model registry")."""
    return {
        f"{API_PREFIX}/models": {
            "get": {"operationId": "listModels", "summary": "the names of the registered models [read]",
                    "responses": {"200": _ok("model names", {"type": "array", "items": {"type": "string"}}), **_READ}},
        },
        f"{API_PREFIX}/models/{{name}}": {
            "parameters": [_MODEL],
            "get": {"operationId": "getModel",
                    "summary": "the model's current state: its versions (version -> seq of the event that "
                               "registered it) and aliases (alias -> version) [read]",
                    "responses": {"200": _ok("the state", _ref("ModelState")), **_READ}},
        },
        f"{API_PREFIX}/models/{{name}}/events": {
            "parameters": [_MODEL],
            "get": {"operationId": "readModelEvents",
                    "summary": "the model's events in seq order: from seq 'start' on, or only those of 'seq' "
                               "(repeated) [read]",
                    "parameters": [_START, _SEQS],
                    "responses": {"200": _ok("events", {"type": "array", "items": _ref("ModelEvent")}), **_READ}},
            "post": {"operationId": "addModelEvent",
                     "summary": "register a version (run_id, artifact) or move (set_alias: alias, version) or "
                                "delete (delete_alias: alias) an alias; the server numbers the event and records "
                                "the token's name as 'by' [write; admin for a protected alias]",
                     "requestBody": _json_body("ModelEventRequest"),
                     "responses": {"201": _ok("the event as stored", _ref("ModelEvent")), **_WRITE}},
        },
    }


_INT_OR_NULL = {"type": "integer", "nullable": True}
_TEXT_OR_NULL = {"type": "string", "nullable": True}
_MODEL_SCHEMAS: dict[str, Any] = {
    "ModelEventRequest": {
        "type": "object", "required": ["action"],
        "properties": {
            "action": {"type": "string", "enum": ["register", "set_alias", "delete_alias"]},
            "run_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"},
            "artifact": {"type": "string", "minLength": 1, "maxLength": 4096,
                         "description": "the artifact's name in the run (default: its one model artifact, else "
                                        "its best checkpoint)"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$",
                       "description": "the content the client saw: refused (409) if the artifact is other bytes now"},
            "metadata": {"type": "object"},
            "alias": {"type": "string", "pattern": _NAME_PATTERN, "not": {"enum": ["latest"]}},
            "version": {"type": "integer", "minimum": 1, "maximum": 999999999999},
        },
    },
    "ModelEvent": {
        "type": "object",
        "description": "one event of a model's log, as stored (docs/format.md, 'Model registry'); a file that "
                       "cannot be read comes as {seq, corrupt: {file, reason}}",
        "properties": {
            "format": {"type": "integer"}, "model": {"type": "string"}, "seq": _INT_OR_NULL,
            "action": {"type": "string"}, "version": _INT_OR_NULL, "alias": _TEXT_OR_NULL, "previous": _INT_OR_NULL,
            "run_id": _TEXT_OR_NULL, "artifact": _TEXT_OR_NULL, "sha256": _TEXT_OR_NULL, "size": _INT_OR_NULL,
            "metadata": {"type": "object", "nullable": True}, "time": {"type": "string"}, "by": _TEXT_OR_NULL,
            "corrupt": {"type": "object"},
        },
    },
    "ModelState": {
        "type": "object", "required": ["model", "upto", "versions", "aliases"],
        "properties": {
            "format": {"type": "integer"}, "model": {"type": "string"},
            "upto": {"type": "integer", "description": "the events below this seq are applied"},
            "last_seq": {"type": "integer"}, "next_version": {"type": "integer"},
            "versions": {"type": "object", "additionalProperties": {"type": "integer"}},
            "aliases": {"type": "object", "additionalProperties": {"type": "integer"}},
            "problems": {"type": "array", "items": {"type": "object"}},
        },
    },
}
