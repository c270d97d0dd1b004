"""The schema of ``_schema`` as JSON Schema (the OpenAPI 3.0 dialect), for the server's OpenAPI
document and for tools in other languages: the same fields, types and ranges, written once more
as data. What JSON Schema cannot say is in the descriptions and enforced by ``_schema`` alone:
a segment's metric columns all have one length; times parse as ISO 8601 with an offset in years
2-9998. A test checks that the two agree on the documents writers produce and on bad ones.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RUN_SCHEMA", "SEGMENT_SCHEMA", "RUN_ID_PATTERN"]

RUN_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return dict(schema, nullable=True)


_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time",
         "description": "ISO 8601 with a UTC offset, as datetime.isoformat writes it (years 2-9998)"}
_NUMBER = {"type": "number"}
_TRIPLES = {"type": "array", "items": {"type": "array", "minItems": 3, "maxItems": 3,
                                       "description": "[name (string), value, time (number)]"}}

RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "run.json (docs/format.md). Keys not listed are kept as they are. In a PUT, id "
                   "defaults to the run id of the URL.",
    "properties": {
        "id": {"type": "string", "pattern": RUN_ID_PATTERN},
        "name": _nullable(_TEXT), "experiment": _nullable(_TEXT), "parent_id": _nullable(_TEXT),
        "framework": _nullable(_TEXT), "status": _TEXT,
        "start_time": _nullable(_TIME), "end_time": _nullable(_TIME),
        "heartbeat": _nullable({"type": "number", "minimum": 0, "maximum": 1e11, "exclusiveMaximum": True}),
        "heartbeat_interval": _nullable({"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                         "maximum": 1e9, "exclusiveMaximum": True}),
        "pid": _nullable({"type": "integer"}),
        "summary": _nullable({"type": "object", "properties": {
            "params": {"type": "object"}, "tags": {"type": "object"}, "metrics": {"type": "object"}}}),
        "owner": {"type": "object", "readOnly": True, "description": "the token that created the run (set by the server)",
                  "properties": {"id": _TEXT, "name": _TEXT}},
    },
    "additionalProperties": True,
}

_COLUMN = {"type": "array", "items": _NUMBER}
SEGMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "an event segment (docs/format.md). Keys not listed are kept as they are.",
    "properties": {
        "format": {"type": "integer"}, "run_id": _TEXT, "seq": {"type": "integer", "minimum": 0}, "time": _NUMBER,
        "params": _TRIPLES, "tags": _TRIPLES, "seeds": _TRIPLES, "data": _TRIPLES,
        "metrics": {"type": "object", "description": "name -> columns, all of one length",
                    "additionalProperties": {"type": "object", "required": ["step", "epoch", "value"], "properties": {
                        "step": {"type": "array"}, "epoch": {"type": "array"},
                        "value": {"type": "array", "description": 'numbers, or "NaN", "Infinity", "-Infinity"'},
                        "time_ms": _COLUMN, "time": _COLUMN}}},
        "artifacts": {"type": "array", "items": {"type": "object", "required": ["name", "sha256", "size"], "properties": {
            "name": {"type": "string", "minLength": 1}, "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "size": {"type": "integer", "minimum": 0}, "kind": _TEXT, "metadata": _nullable({"type": "object"}),
            "time": _nullable(_NUMBER), "source": _nullable(_TEXT)}}},
        "artifact_updates": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {
            "name": _TEXT, "metadata": _nullable({"type": "object"}), "time": _nullable(_NUMBER)}}},
        "environment": {"type": "object"},
        "status": {"type": "object", "properties": {
            "status": _TEXT, "end_time": _nullable(_TIME), "error": _nullable(_TEXT)}},
    },
    "additionalProperties": True,
}
