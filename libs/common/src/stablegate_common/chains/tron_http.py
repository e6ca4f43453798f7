"""The java-tron HTTP API over httpx, and the one place where its transport and node errors
become chain exceptions.

java-tron answers most business errors with HTTP 200 (research chains.md §3.2), so the
status code alone says little. Mapping (every exception is chained to its cause):
- connection refused/reset, timeouts, HTTP 429 and 5xx, a non-JSON page from a proxy, and
  the node's rate-limit answer (`{"Error": "… lack of computing resources"}`) →
  ChainUnavailable (the same request may succeed later);
- `{"Error": …}` otherwise, HTTP 4xx (404 "this API is unavailable due to config"), and the
  plain-text refusal of a lite fullnode → ChainError (the node cannot serve this call).
A missing item is `{}` with HTTP 200: not an error here; the caller decides what it means.
No retries here: the watcher's loop decides when to try again.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from stablegate_common.chains.base import ChainError, ChainUnavailable

_RATE_LIMIT_TEXT = (
    "lack of computing resources",
    "rate limit",
    "too many requests",
    "exceed the user daily usage",
    "server_busy",
    "server busy",
)
_LITE_NODE_TEXT = "lite fullnode"
_RATE_LIMITED = 429
# TronGrid's header; a self-hosted node ignores it.
API_KEY_HEADER = "TRON-PRO-API-KEY"


class TronHttp:
    """POSTs JSON to one java-tron HTTP endpoint (a FullNode or the solidity API)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_seconds: float = 10.0,
        api_key: SecretStr | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if api_key is not None and api_key.get_secret_value():
            headers[API_KEY_HEADER] = api_key.get_secret_value()
        self._http = httpx.AsyncClient(timeout=timeout_seconds, headers=headers)

    async def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer of `POST {base_url}/{path}`; `{}` stays `{}`."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = await self._http.post(url, json=body or {})
        except httpx.TimeoutException as exc:
            raise ChainUnavailable(f"{path}: {self.base_url} timed out") from exc
        except httpx.UnsupportedProtocol as exc:
            raise ChainError(f"{path}: bad node URL {self.base_url!r}") from exc
        except httpx.TransportError as exc:
            raise ChainUnavailable(f"{path}: {self.base_url} unreachable: {exc!r}") from exc
        try:
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise _status_error(path, response) from exc
        try:
            payload = response.json()
        except ValueError as exc:
            raise _text_error(path, response.text) from exc
        if isinstance(payload, dict) and "Error" in payload:
            raise node_error(path, payload["Error"])
        return payload

    async def close(self) -> None:
        await self._http.aclose()


def node_error(path: str, message: object) -> ChainError:
    """The chain exception for an `{"Error": message}` answer."""
    text = f"{path}: {_clip(str(message))}"
    if any(marker in str(message).lower() for marker in _RATE_LIMIT_TEXT):
        return ChainUnavailable(text)
    return ChainError(text)


def _status_error(path: str, response: httpx.Response) -> ChainError:
    status = response.status_code
    detail = f"{path}: HTTP {status}: {_clip(response.text)}"
    if status == _RATE_LIMITED or status >= 500:
        return ChainUnavailable(detail)
    return ChainError(detail)


def _text_error(path: str, text: str) -> ChainError:
    # A lite fullnode refuses history calls in plain text: no retry will change that.
    if _LITE_NODE_TEXT in text.lower():
        return ChainError(f"{path}: {_clip(text)} (point the watcher at a full node)")
    # Typically a proxy's HTML page in front of a restarting node: try again later.
    return ChainUnavailable(f"{path}: non-JSON answer: {_clip(text)}")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
