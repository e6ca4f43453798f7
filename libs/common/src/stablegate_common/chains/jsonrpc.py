"""JSON-RPC 2.0 over HTTP with httpx, and the one place where transport and node errors
become chain exceptions.

Mapping (every exception is chained to its cause):
- connection refused/reset, timeouts, HTTP 5xx and 429, rate-limit errors → ChainUnavailable
  (the same request may succeed later);
- "window or result too large" errors (code -32005, geth/Infura/Alchemy/QuickNode/java-tron
  wording) → RangeTooLarge, with the provider's suggested window when it gave one;
- any other JSON-RPC error or a response that is not JSON-RPC → ChainError.
No retries here: the caller's loop decides when to try again.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from stablegate_common.chains.base import ChainError, ChainUnavailable, RangeTooLarge

Call = tuple[str, Sequence[Any]]

_RATE_LIMIT_TEXT = (
    "rate limit",
    "rate-limit",
    "too many requests",
    "request count exceeded",
    "compute units per second",
)
_RANGE_TEXT = re.compile(
    r"blocks? range|range (?:is )?too (?:large|wide|big)|query returned more than"
    r"|response size|too many (?:logs|results)"
)
_MAX_RANGE = re.compile(
    r"max(?:imum)? block range:?\s*(\d[\d,]*)|limited to an? (\d[\d,]*) blocks? range"
)
_SUGGESTED = re.compile(r"\[\s*(0x[0-9a-f]+)\s*,\s*(0x[0-9a-f]+)\s*\]")
# EIP-1474 "limit exceeded": Infura uses it for "query returned more than 10000 results".
_LIMIT_EXCEEDED = -32005
_RATE_LIMITED = 429


class JsonRpcTransport:
    """POSTs JSON-RPC requests to one node URL; shared by the EVM (and Tron JSON-RPC) clients."""

    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self.url = url
        self._http = httpx.AsyncClient(
            timeout=timeout_seconds, headers={"Content-Type": "application/json"}
        )
        self._ids = itertools.count(1)

    async def call(self, method: str, params: Sequence[Any]) -> Any:
        request_id = next(self._ids)
        payload = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}
        body = await self._post(payload, method)
        if not isinstance(body, dict) or "result" not in body:
            raise ChainError(f"{method}: not a JSON-RPC response: {_clip(body)}")
        return body["result"]

    async def batch(self, calls: Sequence[Call]) -> list[Any]:
        """Results in the order of `calls`; the first failed call raises for the whole batch."""
        if not calls:
            return []
        ids = [next(self._ids) for _ in calls]
        payload = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": list(params)}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        label = f"batch of {len(calls)} {calls[0][0]}"
        body = await self._post(payload, label)
        if not isinstance(body, list):
            raise ChainError(f"{label}: expected a JSON array, got {_clip(body)}")
        # Nodes may answer batch items in any order (anvil runs them concurrently).
        by_id = {item.get("id"): item for item in body if isinstance(item, dict)}
        results = []
        for request_id, (method, _) in zip(ids, calls, strict=True):
            item = by_id.get(request_id)
            if item is None:
                raise ChainError(f"{label}: no answer for request {request_id}")
            if "error" in item:
                raise rpc_error(item["error"], method)
            if "result" not in item:
                raise ChainError(f"{method}: not a JSON-RPC response: {_clip(item)}")
            results.append(item["result"])
        return results

    async def close(self) -> None:
        await self._http.aclose()

    async def _post(self, payload: object, label: str) -> Any:
        try:
            response = await self._http.post(self.url, json=payload)
        except httpx.TimeoutException as exc:
            raise ChainUnavailable(f"{label}: {self.url} timed out") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ChainError(f"{label}: bad node URL {self.url!r}") from exc
        except httpx.TransportError as exc:
            raise ChainUnavailable(f"{label}: {self.url} unreachable: {exc!r}") from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            status = response.status_code
            detail = f"{label}: HTTP {status} from {self.url}: {_clip(response.text)}"
            if status == _RATE_LIMITED or status >= 500:
                raise ChainUnavailable(detail) from exc
            body = _json_or_none(response)
            if isinstance(body, dict) and "error" in body:
                raise rpc_error(body["error"], label) from exc
            raise ChainError(detail) from exc
        try:
            body = response.json()
        except ValueError as exc:
            # A proxy's HTML page in front of a restarting node, typically: try again later.
            raise ChainUnavailable(f"{label}: non-JSON answer: {_clip(response.text)}") from exc
        if isinstance(body, dict) and "error" in body:
            raise rpc_error(body["error"], label)
        return body


def rpc_error(error: Any, method: str) -> ChainError:
    """The chain exception for one JSON-RPC `error` object."""
    fields: Mapping[str, Any] = error if isinstance(error, dict) else {"message": str(error)}
    code = fields.get("code") if isinstance(fields.get("code"), int) else None
    message = str(fields.get("message", ""))
    text = f"{method}: {message} (code {code})"
    lowered = message.lower()
    if code == _RATE_LIMITED or any(marker in lowered for marker in _RATE_LIMIT_TEXT):
        return ChainUnavailable(text, rpc_code=code)
    if code == _LIMIT_EXCEEDED or _RANGE_TEXT.search(lowered):
        return RangeTooLarge(
            text,
            rpc_code=code,
            suggested_range=_suggested_range(lowered, fields.get("data")),
            max_block_range=_max_block_range(lowered),
        )
    return ChainError(text, rpc_code=code)


def _suggested_range(message: str, data: Any) -> tuple[int, int] | None:
    """Infura puts `{from, to}` in `data`; Alchemy and Infura also write `[0x…, 0x…]`."""
    candidates: list[tuple[Any, Any]] = []
    if isinstance(data, dict):
        candidates.append((data.get("from"), data.get("to")))
    match = _SUGGESTED.search(message)
    if match:
        candidates.append((match.group(1), match.group(2)))
    for low, high in candidates:
        try:
            return int(str(low), 16), int(str(high), 16)
        except ValueError:
            continue
    return None


def _max_block_range(message: str) -> int | None:
    match = _MAX_RANGE.search(message)
    if match is None:
        return None
    return int((match.group(1) or match.group(2)).replace(",", ""))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _clip(value: object, limit: int = 200) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
