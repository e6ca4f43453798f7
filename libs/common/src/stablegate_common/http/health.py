"""`/healthz` (the process is alive), `/readyz` (every dependency answers) and `/metrics`.

Readiness checks are named coroutines; each must finish within a short timeout, and the
response lists every check so an operator sees which dependency is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

ReadinessCheck = Callable[[], Awaitable[None]]


class Health:
    def __init__(self, *, timeout_seconds: float = 2.0) -> None:
        self._checks: dict[str, ReadinessCheck] = {}
        self.timeout_seconds = timeout_seconds
        self.shutting_down = False

    def add_check(self, name: str, check: ReadinessCheck) -> None:
        self._checks[name] = check

    async def run_checks(self) -> dict[str, str]:
        async def one(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), self.timeout_seconds)
            except Exception as exc:
                return f"failing: {type(exc).__name__}: {exc}"[:300]
            return "ok"

        names = list(self._checks)
        results = await asyncio.gather(*(one(self._checks[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def router(self, registry: CollectorRegistry = REGISTRY) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @router.get("/readyz")
        async def readyz() -> JSONResponse:
            checks = await self.run_checks()
            ready = not self.shutting_down and all(v == "ok" for v in checks.values())
            if self.shutting_down:
                checks["shutdown"] = "in progress"
            body = {"status": "ready" if ready else "not_ready", "checks": checks}
            return JSONResponse(body, status_code=200 if ready else 503)

        @router.get("/metrics")
        async def metrics() -> Response:
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

        return router
