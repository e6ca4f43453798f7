"""Per-request context: a fresh `Request-Id` on every response, headers that handlers and
dependencies add for the response whatever it turns out to be (`add_response_headers`:
the rate-limit headers), the logging context, request metrics by route template, an
access log line, and the last-resort 500.

A pure ASGI middleware rather than Starlette's `BaseHTTPMiddleware`, so it sits outside
the exception handlers and sees every response, including 404s for unknown routes and
the 500 it writes itself for an unhandled exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stablegate_common.core.ids import new_id
from stablegate_common.logging import intent_id_var, request_id_var
from stablegate_gateway.api.errors import INTERNAL_ERROR_MESSAGE, error_response

log = logging.getLogger("stablegate_gateway.http")

REQUEST_ID_HEADER = "Request-Id"

_response_headers: ContextVar[dict[str, str] | None] = ContextVar("response_headers", default=None)


def add_response_headers(headers: Mapping[str, str]) -> None:
    """Send `headers` with this request's response, whichever response it is (a handler's
    own, an error, a replay): a dependency cannot reach the response object itself."""
    pending = _response_headers.get()
    if pending is not None:
        pending.update(headers)


REQUESTS = Counter(
    "stablegate_http_requests_total",
    "HTTP requests served, by method, route template and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "stablegate_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Always our own id: a client-supplied one could collide or be forged in logs.
        request_id = new_id("req")
        token = request_id_var.set(request_id)
        intent_token = intent_id_var.set(None)  # handlers set it once they know the intent
        extra_headers: dict[str, str] = {}
        headers_token = _response_headers.set(extra_headers)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in extra_headers.items():
                    headers[name] = value
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            if _has_nul(scope):
                # PostgreSQL text cannot hold U+0000: refuse it before any handler sees it.
                response = error_response(
                    400,
                    "invalid_request_error",
                    "invalid_request",
                    "The URL must not contain the NUL character (%00).",
                )
                await response(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"path": scope.get("path")})
            if response_started:
                raise
            response = error_response(500, "api_error", None, INTERNAL_ERROR_MESSAGE)
            await response(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)
            _response_headers.reset(headers_token)
            intent_id_var.reset(intent_token)
            request_id_var.reset(token)

    @staticmethod
    def _observe(scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        # The template (`/v1/payment_intents/{intent_id}`), never the raw path, so
        # ids do not explode the label set; unmatched paths share one label.
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(seconds)
        log.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "path": scope.get("path"),
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )


def _has_nul(scope: Scope) -> bool:
    query = bytes(scope.get("query_string", b"")).lower()
    return "\x00" in str(scope.get("path", "")) or b"%00" in query or b"\x00" in query
