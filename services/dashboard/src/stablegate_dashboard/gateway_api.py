"""The gateway's public API, as the dashboard uses it to act and to read what no event
carries (webhook endpoints and their delivery log).

Authenticated with `DASHBOARD_GATEWAY_API_KEY`; see settings.py for what that key can
reach. Every POST sends an `Idempotency-Key`, so a form submitted twice acts once. httpx
errors become domain errors here: `GatewayUnavailable` (not configured, unreachable, 5xx)
or `GatewayRefused` carrying the gateway's own error code and message.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import SecretStr

from stablegate_common.core.errors import DomainError, ServiceUnavailable

log = logging.getLogger(__name__)

_DELIVERY_PAGE = 25


class GatewayUnavailable(ServiceUnavailable):
    code = "gateway_unavailable"


class GatewayRefused(DomainError):
    """The gateway answered 4xx; `code` and `message` are the gateway's."""

    code = "gateway_refused"


class GatewayApi:
    def __init__(
        self,
        base_url: str,
        api_key: SecretStr,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = timeout_seconds
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self._api_key.get_secret_value())

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                transport=self._transport,
                headers={
                    "Authorization": f"Bearer {self._api_key.get_secret_value()}",
                    "User-Agent": "stablegate-dashboard",
                },
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if not self.configured:
            raise GatewayUnavailable(
                "DASHBOARD_GATEWAY_API_KEY is not set: the dashboard cannot call the gateway",
                code="gateway_not_configured",
            )
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        try:
            response = await self._http().request(method, path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"the gateway did not answer: {exc!r}") from exc
        return _body(response, path)

    async def list_endpoints(self) -> list[dict[str, Any]]:
        body = await self._call("GET", "/v1/webhook_endpoints", params={"limit": 100})
        return list(body.get("data", []))

    async def list_deliveries(
        self, endpoint_id: str, *, limit: int = _DELIVERY_PAGE
    ) -> list[dict[str, Any]]:
        body = await self._call(
            "GET", f"/v1/webhook_endpoints/{endpoint_id}/deliveries", params={"limit": limit}
        )
        return list(body.get("data", []))

    async def redeliver(self, delivery_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return await self._call(
            "POST",
            f"/v1/webhook_deliveries/{delivery_id}/redeliver",
            idempotency_key=idempotency_key,
        )

    async def cancel_intent(self, intent_id: str, *, idempotency_key: str) -> dict[str, Any]:
        return await self._call(
            "POST", f"/v1/payment_intents/{intent_id}/cancel", idempotency_key=idempotency_key
        )


def _body(response: httpx.Response, path: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code >= 500:
        raise GatewayUnavailable(f"the gateway failed ({response.status_code}) on {path}")
    if response.status_code >= 400:
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        log.info(
            "gateway refused a dashboard call",
            extra={"path": path, "status": response.status_code, "code": error.get("code")},
        )
        raise GatewayRefused(
            str(error.get("message") or f"the gateway refused ({response.status_code})"),
            code=str(error.get("code") or "gateway_refused"),
            param=error.get("param"),
        )
    return body
