"""One POST carrying an `Idempotency-Key`, from the handler's first write to the commit.

Handlers write through `ctx.db.transaction()` as usual. During an idempotent POST,
`api.dependencies.get_context` hands them a context whose `db` is an `IdempotentDatabase`:
its `transaction()` claims the key (the moment "the handler begins executing": after
authentication and body validation, which are therefore never stored) and opens ONE
transaction for the whole request. The middleware commits that transaction only after it
has stored the response in it, so a crash at any point leaves either the writes and their
response, or neither.

A handler that fails inside its transaction has the whole transaction rolled back at
once (there is nothing of its own to keep, so no savepoint is needed); its 404 or 409 is
then stored alone, like any other answer (a retry gets the same refusal). A 400 (invalid
parameters) or a 5xx is not stored: nothing was written, and a retry with the same key
runs again.

Inside an idempotent POST a separate `ctx.db.sessions()` read does not see the request's
own writes until they commit: present results from the transaction's session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.db import Database
from stablegate_gateway.idempotency import repository, service


class _Abandon(Exception):
    pass


class IdempotentRequest:
    def __init__(self, key: str, fingerprint: str, db: Database, lease: timedelta) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.db = db
        self.lease = lease
        self.merchant_id: str | None = None  # set once the caller is authenticated
        self.lock_token: str | None = None
        self.session: AsyncSession | None = None
        self._unit: AsyncExitStack | None = None

    @property
    def began(self) -> bool:
        return self.lock_token is not None

    async def begin(self) -> AsyncSession:
        """Claim the key (or raise Replay / KeyReused / KeyInUse) and open the request's
        transaction; later calls return the same session while it is open."""
        if self._unit is not None and self.session is not None:
            return self.session
        assert self.merchant_id is not None, "begin() needs an authenticated merchant"
        if self.lock_token is None:
            self.lock_token = await service.acquire(
                self.db, self.merchant_id, self.key, self.fingerprint, self.lease
            )
        unit = AsyncExitStack()
        try:
            self.session = await unit.enter_async_context(self.db.transaction())
        except BaseException:
            await self._release()
            raise
        self._unit = unit
        return self.session

    async def finish(self, status: int, content_type: str | None, body: bytes) -> bool:
        """Store the response in the request's transaction and commit both; False (and
        nothing committed) when the claim was lost to a retry after its lease ran out."""
        if self._unit is None or self.session is None:
            # The handler's writes were rolled back when it failed: its answer is stored alone.
            async with self.db.autocommit() as conn:
                return await self._store(conn, status, content_type, body)
        stored = await self._store(self.session, status, content_type, body)
        if not stored:
            await self._rollback()
            return False
        unit, self._unit = self._unit, None
        await unit.aclose()  # commits, then runs the database's after-commit callbacks
        return True

    async def _store(
        self, executor: repository.Executor, status: int, content_type: str | None, body: bytes
    ) -> bool:
        assert self.merchant_id is not None
        assert self.lock_token is not None
        return await repository.complete(
            executor,
            self.merchant_id,
            self.key,
            self.lock_token,
            status=status,
            content_type=content_type,
            body=body,
        )

    async def abandon(self) -> None:
        """Roll the request's writes back and free the key for a retry."""
        await self._rollback()
        await self._release()

    async def rollback_writes(self) -> None:
        """The handler failed inside its transaction: undo all it wrote, keep the claim."""
        await self._rollback()

    async def _rollback(self) -> None:
        unit, self._unit = self._unit, None
        if unit is not None:
            await unit.__aexit__(_Abandon, _Abandon(), None)

    async def _release(self) -> None:
        if self.merchant_id is None or self.lock_token is None:
            return
        async with self.db.autocommit() as conn:
            await repository.release(conn, self.merchant_id, self.key, self.lock_token)


current_request: ContextVar[IdempotentRequest | None] = ContextVar(
    "idempotent_request", default=None
)


class IdempotentDatabase(Database):
    """`ctx.db` during an idempotent POST: shares the engine, joins writes to the request."""

    def __init__(self, base: Database, request: IdempotentRequest) -> None:
        # Deliberately not Database.__init__: no engine of its own, the base's is shared.
        self.schema = base.schema
        self.engine = base.engine
        self.sessions = base.sessions
        self._base = base
        self._request = request

    def after_commit(self, callback: Callable[[], None], *, only_if: str | None = None) -> None:
        self._base.after_commit(callback, only_if=only_if)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self._request.merchant_id is None:  # an unauthenticated write: nothing to key
            async with self._base.transaction() as session:
                yield session
            return
        session = await self._request.begin()
        try:
            yield session
            await session.flush()  # the handler's write errors surface in the handler
        except BaseException:
            await self._request.rollback_writes()
            raise
