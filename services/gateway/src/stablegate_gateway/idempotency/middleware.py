"""The ASGI layer of `Idempotency-Key`: every POST that carries one goes through here.

It reads the whole body (to fingerprint it), makes the request known to the handler's
database context (`idempotency.request`), and, if the handler began executing, holds
the response back until it is stored and committed with the handler's writes. A retry
of a completed request gets the stored status and body with `Idempotent-Replayed: true`.
Requests that never began (bad key, authentication or validation errors, unknown routes)
pass through untouched and leave nothing behind; so do answers that say nothing was done
(400 invalid parameters, found by the service's own checks, and any 5xx).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stablegate_gateway.api.errors import (
    INTERNAL_ERROR_MESSAGE,
    domain_error_response,
    error_response,
)
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.idempotency.request import IdempotentRequest, current_request
from stablegate_gateway.idempotency.service import (
    HEADER,
    InvalidKey,
    KeyInUse,
    Replay,
    check_key,
    fingerprint,
)

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"

OUTCOMES = Counter(
    "stablegate_idempotent_requests_total",
    "POSTs with an Idempotency-Key by outcome: stored, replayed, released (400/5xx, "
    "nothing kept), lost (a retry took the claim over), passed_through (never began)",
    ["outcome"],
)
# Invalid parameters (400), like Stripe's validation failures, are not stored: the request
# did nothing, and the same key may carry the corrected request.
_NOT_STORED = frozenset({400})


@dataclass
class _Held:
    """The response of a request that began executing, held until it is committed."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)

    @property
    def content_type(self) -> str | None:
        value = Headers(raw=self.headers).get("content-type")
        return value[:100] if value else None


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = Headers(scope=scope).get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        try:
            check_key(key)
        except InvalidKey as exc:
            await domain_error_response(exc)(scope, receive, send)
            return
        ctx: GatewayContext = scope["app"].state.ctx
        body = await _read_body(receive)
        request = IdempotentRequest(
            key,
            fingerprint("POST", scope["path"], scope.get("query_string", b"").decode(), body),
            ctx.db,
            timedelta(seconds=ctx.settings.gateway.idempotency_lock_seconds),
        )
        await self._run(request, body, scope, send)

    async def _run(self, request: IdempotentRequest, body: bytes, scope: Scope, send: Send) -> None:
        held = _Held()
        replay_sent = False

        async def replay_body() -> Message:
            nonlocal replay_sent
            if replay_sent:  # the app asked again: the client has nothing more to send
                return {"type": "http.disconnect"}
            replay_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def hold_or_forward(message: Message) -> None:
            if not request.began:
                await send(message)
            elif message["type"] == "http.response.start":
                held.status = message["status"]
                held.headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                held.body += message.get("body", b"")

        token = current_request.set(request)
        try:
            await self.app(scope, replay_body, hold_or_forward)
        except Replay as replay:
            OUTCOMES.labels("replayed").inc()
            stored = replay.response
            headers = {REPLAYED_HEADER: "true"}
            response = Response(stored.body, stored.status, headers, media_type=stored.content_type)
            await response(scope, replay_body, send)
            return
        except BaseException:
            await request.abandon()
            raise
        finally:
            current_request.reset(token)
        if request.began:
            await self._commit(request, held, scope, send)
        else:
            # Never began: refused (invalid, unauthorized, 409) or wrote nothing (a token).
            OUTCOMES.labels("passed_through").inc()

    async def _commit(
        self, request: IdempotentRequest, held: _Held, scope: Scope, send: Send
    ) -> None:
        response: Response
        if held.status in _NOT_STORED or held.status >= 500:
            OUTCOMES.labels("released").inc()
            await request.abandon()  # nothing written; a retry runs the request again
            response = Response(bytes(held.body), held.status)
            response.raw_headers = held.headers
        else:
            try:
                stored = await request.finish(held.status, held.content_type, bytes(held.body))
            except Exception:
                log.exception("could not store the idempotent response")
                await request.abandon()
                response = error_response(500, "api_error", None, INTERNAL_ERROR_MESSAGE)
            else:
                if stored:
                    OUTCOMES.labels("stored").inc()
                    response = Response(bytes(held.body), held.status)
                    response.raw_headers = held.headers
                else:  # a retry took the claim over after our lease ran out: it answers
                    OUTCOMES.labels("lost").inc()
                    response = domain_error_response(KeyInUse())
        await response(scope, _no_body, send)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}
