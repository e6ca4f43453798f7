"""What every operation of the OpenAPI document shares, added in one place: the
`Request-Id` (and rate-limit) response headers, and on every POST the `Idempotency-Key`
header, the `Idempotent-Replayed` header of replays and the 409 of a reused key. FastAPI's
422 is dropped: validation errors are answered 400 in the error envelope.

Routes document their own bodies, examples and specific errors; this module adds what
the middlewares do for all of them, so no route can forget it.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from stablegate_gateway.api.errors import IDEMPOTENCY_RESPONSE
from stablegate_gateway.idempotency.middleware import REPLAYED_HEADER
from stablegate_gateway.idempotency.service import HEADER, MAX_KEY_LENGTH

_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
_REQUEST_ID = {
    "Request-Id": {
        "description": "this request's id (`req_…`), also in error bodies and the logs",
        "required": True,
        "schema": {"type": "string", "pattern": "^req_[0-9A-Z]{26}$"},
    }
}
_RATE_LIMIT = {
    name: {"description": description, "schema": {"type": "integer", "minimum": 0}}
    for name, description in (
        ("RateLimit-Limit", "requests the API key may make at once"),
        ("RateLimit-Remaining", "requests left in the key's bucket"),
        ("RateLimit-Reset", "seconds until the bucket is full again"),
    )
}
_IDEMPOTENCY_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes the request safe to retry: the first request with a key runs, later ones "
        "with the same key and body get its stored response (`Idempotent-Replayed: true`); "
        "the same key with another body is 409 `idempotency_key_reused`, and while the "
        "first still runs 409 `idempotency_key_in_use`. Keys are kept 24 hours. "
        "Use a V4 UUID."
    ),
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_KEY_LENGTH,
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
    "example": "5f0c8a52-4f61-4a3e-9d7e-2f1b0f6b9c1a",
}
_REPLAYED = {
    REPLAYED_HEADER: {
        "description": "`true` when this is the stored response of an earlier request "
        "with the same `Idempotency-Key`",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def document_conventions(app: FastAPI) -> None:
    """Make `app.openapi()` return the generated document with the shared conventions."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_conventions(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_conventions(document: dict[str, Any]) -> None:
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            api = path.startswith("/v1/")
            # FastAPI documents a 422 for validation errors; `api.errors` answers those 400.
            operation["responses"].pop("422", None)
            if api and method == "post":
                _document_idempotency(operation)
            _complete_errors(operation)
            _complete_examples(document, operation)
            for status, response in operation["responses"].items():
                headers = response.setdefault("headers", {})
                headers.update(_REQUEST_ID)
                if api and status.startswith("2"):
                    headers.update(_RATE_LIMIT)
                    if method == "post":
                        headers.update(_REPLAYED)


def _document_idempotency(operation: dict[str, Any]) -> None:
    parameters = operation.setdefault("parameters", [])
    if not any(p.get("name") == HEADER for p in parameters):
        parameters.append(_IDEMPOTENCY_PARAMETER)
    if "409" not in operation["responses"]:
        conflict = dict(IDEMPOTENCY_RESPONSE[409])
        conflict.pop("model")
        content = conflict["content"]["application/json"]
        conflict["content"] = {"application/json": {**content, "schema": _ERROR_SCHEMA}}
        operation["responses"]["409"] = conflict


def _complete_errors(operation: dict[str, Any]) -> None:
    """An error response documented by its description alone gets the envelope's schema."""
    for status, response in operation["responses"].items():
        if not status.isdigit() or int(status) < 400 or "content" in response:
            continue
        example = {
            "error": {
                "type": "api_error" if int(status) >= 500 else "invalid_request_error",
                "code": None,
                "message": response.get("description", ""),
                "param": None,
                "request_id": "req_01JDQ0000000000000000000000",
            }
        }
        response["content"] = {"application/json": {"schema": _ERROR_SCHEMA, "example": example}}


def _complete_examples(document: dict[str, Any], operation: dict[str, Any]) -> None:
    """Give every JSON body without an example one built from its fields' examples."""
    bodies = [r.get("content", {}) for r in operation["responses"].values()]
    bodies.append(operation.get("requestBody", {}).get("content", {}))
    for content in bodies:
        media = content.get("application/json")
        if media is None or "example" in media or "examples" in media:
            continue
        schema = media.get("schema", {})
        if "example" in _resolve(document, schema):
            continue
        media["example"] = example_from_schema(document, schema)


def example_from_schema(document: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """An example value for `schema`: its own example, else one assembled from its parts."""
    schema = _resolve(document, schema)
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if depth > 8:
        return None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if o.get("type") != "null"]
            return example_from_schema(document, options[0], depth + 1) if options else None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {
            name: example_from_schema(document, sub, depth + 1)
            for name, sub in schema.get("properties", {}).items()
        }
    if kind == "array":
        return [example_from_schema(document, schema.get("items", {}), depth + 1)]
    return _SCALAR_EXAMPLES.get(str(kind))


_SCALAR_EXAMPLES: dict[str, Any] = {"string": "string", "integer": 0, "boolean": False}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    found: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return found
