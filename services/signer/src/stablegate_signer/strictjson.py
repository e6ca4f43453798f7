"""Strict JSON for the signing documents: no floats, no duplicate keys, bounded size and depth.

A duplicate key would let two readers of the same bytes see different documents (the
stdlib keeps the last); deep nesting would exhaust the parser's stack.
"""

from __future__ import annotations

import json
from typing import Any

from stablegate_signer.errors import InvalidDocument

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # a request nests 5 levels deep


def loads(text: str | bytes) -> Any:
    """Parse a document or raise InvalidDocument (never RecursionError)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InvalidDocument(f"the document exceeds {MAX_DOCUMENT_BYTES} bytes")
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    _check_depth(raw)
    try:
        return json.loads(
            text,
            parse_float=_no_float,
            parse_constant=_no_float,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:  # pragma: no cover - _check_depth bounds the depth first
        raise InvalidDocument("not a JSON document: nested too deep") from None
    except ValueError as exc:
        raise InvalidDocument(f"not a JSON document: {exc}") from exc


def _check_depth(raw: bytes) -> None:
    # Count brackets outside strings; a cheap pass over at most MAX_DOCUMENT_BYTES.
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidDocument(f"not a JSON document: nested too deep (over {MAX_DEPTH})")
        elif byte in (0x5D, 0x7D):
            depth -= 1


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not allowed: amounts are decimal strings")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result
