"""The gateway's HTTP APIs as the dashboard uses them to act and to read what no event
carries: the public API (webhook endpoints and their delivery log, intent cancels) and
the ops API under /ops/v1 (funds out: signing rounds, refunds and payouts), each with its
own credential.

The public API is authenticated with `DASHBOARD_GATEWAY_API_KEY` (see settings.py for
what that key can reach), the ops API with `DASHBOARD_GATEWAY_OPS_TOKEN`, the gateway's
`GATEWAY_OPS_TOKEN`. Every POST sends an `Idempotency-Key`, so a form submitted twice
acts once. httpx errors become domain errors here: `GatewayUnavailable` (not configured,
unreachable, 5xx) or `GatewayRefused` carrying the gateway's own error code, message and
the HTTP status it answered with.
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

    def __init__(
        self, message: str, *, status: int, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.status = status


class _BearerClient:
    """One lazily opened httpx client to the gateway, authenticated with a bearer secret."""

    def __init__(
        self,
        base_url: str,
        secret: SecretStr,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._timeout = timeout_seconds
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self._secret.get_secret_value())

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                transport=self._transport,
                headers={
                    "Authorization": f"Bearer {self._secret.get_secret_value()}",
                    "User-Agent": "stablegate-dashboard",
                },
            )
        return self._client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class GatewayApi(_BearerClient):
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
            status=response.status_code,
        )
    return body


class GatewayOpsApi(_BearerClient):
    """The gateway's ops API for funds out (`/ops/v1/outgoing/…`, spec-14 "Ops API").

    The gateway answers 404 to all of it while its own `GATEWAY_OPS_TOKEN` is unset, so
    a 404 on the list means "funds out is off on the gateway", not "no batches".
    """

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        idempotency_key: str | None = None,
        actor: str | None = None,
    ) -> httpx.Response:
        if not self.configured:
            raise GatewayUnavailable(
                "DASHBOARD_GATEWAY_OPS_TOKEN is not set: funds out is not configured",
                code="ops_not_configured",
            )
        headers: dict[str, str] = {}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if content is not None:
            headers["Content-Type"] = "application/json"
        if actor is not None:
            headers["Ops-Actor"] = actor
        try:
            return await self._http().request(
                method, path, params=params, json=json, content=content, headers=headers
            )
        except httpx.HTTPError as exc:
            raise GatewayUnavailable(f"the gateway did not answer: {exc!r}") from exc

    async def list_batches(
        self, *, limit: int, starting_after: str | None = None
    ) -> dict[str, Any]:
        """`{"data": [batch, …], "has_more": bool}`, newest first."""
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        path = "/ops/v1/outgoing/batches"
        return _body(await self._send("GET", path, params=params), path)

    async def get_batch(self, batch_id: str) -> dict[str, Any]:
        path = f"/ops/v1/outgoing/batches/{batch_id}"
        return _body(await self._send("GET", path), path)

    async def plan_sweeps(self, network: str | None, *, idempotency_key: str) -> dict[str, Any]:
        path = "/ops/v1/outgoing/sweeps"
        response = await self._send(
            "POST", path, json={"network": network}, idempotency_key=idempotency_key
        )
        return _body(response, path)

    async def issue_request(self, batch_id: str, *, idempotency_key: str) -> bytes:
        """The signing request exactly as the gateway stored it (its digest covers it)."""
        path = f"/ops/v1/outgoing/batches/{batch_id}/issue"
        response = await self._send("POST", path, idempotency_key=idempotency_key)
        if response.status_code != 200:
            _body(response, path)  # raises with the gateway's reason
            raise GatewayUnavailable(f"the gateway answered {response.status_code} on {path}")
        return response.content

    async def submit_signed(self, signed: bytes, *, idempotency_key: str) -> dict[str, Any]:
        """Hands over the signed file's bytes unchanged; the accepted batch, or refused."""
        path = "/ops/v1/outgoing/signed_responses"
        response = await self._send("POST", path, content=signed, idempotency_key=idempotency_key)
        return _body(response, path)

    async def cancel_batch(self, batch_id: str, *, idempotency_key: str) -> dict[str, Any]:
        path = f"/ops/v1/outgoing/batches/{batch_id}/cancel"
        return _body(await self._send("POST", path, idempotency_key=idempotency_key), path)

    async def list_disbursements(
        self, *, limit: int, status: str | None = None, network: str | None = None
    ) -> dict[str, Any]:
        """Refunds and payouts of every merchant, newest first (`/ops/v1/disbursements`)."""
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if network:
            params["network"] = network
        path = "/ops/v1/disbursements"
        return _body(await self._send("GET", path, params=params), path)

    async def plan_disbursements(
        self, network: str | None, *, idempotency_key: str
    ) -> dict[str, Any]:
        """The pending, approved refunds and payouts planned now: the batches made."""
        path = "/ops/v1/disbursements/plan"
        response = await self._send(
            "POST", path, json={"network": network}, idempotency_key=idempotency_key
        )
        return _body(response, path)

    async def approve_disbursement(
        self, disbursement_id: str, *, actor: str, idempotency_key: str
    ) -> dict[str, Any]:
        """One admin's approval (`actor`: their user id); the gateway wants two different."""
        path = f"/ops/v1/disbursements/{disbursement_id}/approve"
        response = await self._send("POST", path, idempotency_key=idempotency_key, actor=actor)
        return _body(response, path)
