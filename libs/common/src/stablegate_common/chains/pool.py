"""Several RPC providers of one chain behind the client protocols of `chains.base`.

A load-balanced provider answers from replicas at different heights, rate-limits, fails
and now and then serves a fork; one provider is one opinion. `ProviderPool` holds a
client per provider and answers as one `ChainClient`, so the watcher engine and the
reconciler use it unchanged:

- the head is a quorum: with a quorum of one, the highest head any provider reports;
  with more, the newest block that at least `quorum` providers have with the same hash,
  found by stepping down from the highest height that many report (a provider behind or
  on another fork cannot move the watcher on its own, and the scan follows the newest
  block the quorum agrees on rather than failing while too few have the newest one);
- a call about given blocks goes only to a provider whose own last reported head covers
  them (a provider behind is never asked, so it can never answer "nothing there" for a
  block it lacks); `BlockNotFound` lowers that provider's known head and fails over;
- one provider (the primary) serves consecutive calls while it stays healthy, so the
  headers and logs of a window come from one view of the chain;
- with a quorum of two or more, the newest header of each `headers()` answer is the
  agreed head's or is checked against other providers: a block hash fewer than `quorum`
  providers agree on is not handed to the engine; a provider outvoted on a hash is put
  in back-off;
- errors and 429s fail over to the next provider and put the failing one in exponential
  back-off; health (errors, latency, head lag) orders the providers, weighted by
  configuration.

Capabilities beyond `ChainClient` are chain-family specific (`EvmProviderPool`,
`TronProviderPool`); adding a delegated client method is one `_routed`/`_any` call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from stablegate_common.chains.base import (
    BlockHeader,
    BlockNotFound,
    ChainClient,
    ChainError,
    ChainUnavailable,
    RangeTooLarge,
    TokenTransfer,
)

log = logging.getLogger(__name__)

C = TypeVar("C", bound=ChainClient)
T = TypeVar("T")

REQUESTS = Counter(
    "stablegate_rpc_requests_total", "Calls sent to each RPC provider", ["network", "provider"]
)
ERRORS = Counter(
    "stablegate_rpc_errors_total",
    "Failed calls per RPC provider by kind (chain_unavailable, chain_error, fork, …)",
    ["network", "provider", "kind"],
)
HEAD_LAG = Gauge(
    "stablegate_rpc_head_lag_blocks",
    "Blocks between a provider's head and the highest head any provider reports",
    ["network", "provider"],
)
HEALTHY = Gauge(
    "stablegate_rpc_provider_healthy",
    "1 when the provider answers, is not backing off and is within the allowed head lag",
    ["network", "provider"],
)
HEALTHY_PROVIDERS = Gauge(
    "stablegate_rpc_healthy_providers", "Healthy RPC providers of the network", ["network"]
)
QUORUM = Gauge(
    "stablegate_rpc_quorum", "Providers that must agree on a head or block hash", ["network"]
)
LATENCY = Histogram(
    "stablegate_rpc_request_seconds",
    "Duration of successful calls per provider",
    ["network", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# A challenger must score this much better before it replaces a healthy primary.
_SWITCH_MARGIN = 2.0
_EWMA = 0.2  # weight of the newest sample in the error-rate and latency averages
_LATENCY_REF = 0.25  # seconds of latency that halve a provider's score
# Heights asked for an agreed head beyond one per provider (one per distinct head).
_EXTRA_AGREEMENT_ROUNDS = 2


@dataclass(frozen=True)
class PoolPolicy:
    """How the pool judges providers (set from WATCHER_RPC_* / RECONCILER_RPC_*)."""

    quorum: int = 1
    max_lag_blocks: int = 3
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.quorum < 1:
            raise ValueError("quorum must be at least 1")
        if self.backoff_seconds <= 0 or self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("need 0 < backoff_seconds <= max_backoff_seconds")


class Provider(Generic[C]):
    """One provider's client and what the pool has learnt about it."""

    def __init__(self, name: str, client: C, weight: float = 1.0) -> None:
        self.name = name
        self.client = client
        self.weight = weight
        self.known_head: int | None = None  # its last reported head (lowered by misses)
        self.head_ok = False  # its last head() answered
        self.failures = 0  # consecutive ChainUnavailable answers
        self.down_until = 0.0  # monotonic time before which it is not asked
        self.error_rate = 0.0
        self.latency = 0.0

    def available(self, now: float) -> bool:
        return now >= self.down_until

    def covers(self, block: int | None) -> bool:
        return block is None or (self.known_head is not None and self.known_head >= block)

    def score(self) -> float:
        return self.weight * (1.0 - self.error_rate) / (1.0 + self.latency / _LATENCY_REF)

    def succeeded(self, seconds: float) -> None:
        self.failures = 0
        self.down_until = 0.0
        self.error_rate *= 1 - _EWMA
        self.latency = (
            seconds if self.latency == 0.0 else (1 - _EWMA) * self.latency + _EWMA * seconds
        )

    def failed(self, now: float, policy: PoolPolicy, *, back_off: bool) -> float:
        """Record a failure; with `back_off`, rest for an exponentially growing time."""
        self.error_rate = (1 - _EWMA) * self.error_rate + _EWMA
        if not back_off:
            return 0.0
        self.failures += 1
        delay = min(policy.max_backoff_seconds, policy.backoff_seconds * 2.0 ** (self.failures - 1))
        self.down_until = now + delay
        return delay


class ProviderPool(Generic[C]):
    """`ChainClient` over the clients of several providers of one network."""

    def __init__(
        self,
        network: str,
        providers: Sequence[Provider[C]],
        policy: PoolPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("a provider pool needs at least one provider")
        self.network = network
        self.providers = list(providers)
        self.policy = policy or PoolPolicy()
        if self.policy.quorum > len(self.providers):
            raise ValueError(
                f"quorum {self.policy.quorum} exceeds the {len(self.providers)} providers"
            )
        self._clock = clock
        self._primary: Provider[C] | None = None
        # (number, hash) of the newest block `quorum` providers agreed on at the last head()
        self._agreed: tuple[int, str] | None = None
        QUORUM.labels(network).set(self.policy.quorum)

    # -- ChainClient -------------------------------------------------------------------

    async def head(self) -> int:
        """The newest block that at least `quorum` providers have (all asked at once): by
        height with a quorum of one, by hash with more (see `_agreed_head`)."""
        now = self._clock()
        k = self.policy.quorum
        rested = [p for p in self.providers if p.available(now)]
        answers = await asyncio.gather(*(self._head_of(p) for p in rested))
        asked = rested
        if sum(a is not None for a in answers) < k:
            # Too few answers for a quorum: probe the resting providers too, rather than
            # stall the scan for a whole back-off period.
            resting = [p for p in self.providers if p not in rested]
            answers += await asyncio.gather(*(self._head_of(p) for p in resting))
            asked = rested + resting
        answered = [p for p, a in zip(asked, answers, strict=True) if a is not None]
        heads = sorted((h for h in answers if h is not None), reverse=True)
        self._publish_health()
        if len(heads) < k:
            raise ChainUnavailable(
                f"{self.network}: {len(heads)} of {len(self.providers)} providers answered "
                f"head, quorum is {k}"
            )
        quorum_head = heads[k - 1]
        if k > 1:
            quorum_head, answered = await self._agreed_head(quorum_head, answered)
            self._publish_health()
        self._choose_primary(quorum_head, answered)
        return quorum_head

    async def headers(self, numbers: Sequence[int]) -> list[BlockHeader]:
        wanted = list(numbers)
        if not wanted:
            return []
        top = max(wanted)
        provider, headers = await self._routed_with(top, lambda c: c.headers(wanted), "headers")
        if self.policy.quorum > 1:
            newest = next(h for h in headers if h.number == top)
            if self._agreed != (newest.number, newest.hash):
                await self._confirm_hash(provider, newest)
        return headers

    async def transfers(
        self, from_block: int, to_block: int, contracts: Sequence[str]
    ) -> list[TokenTransfer]:
        return await self._routed(
            to_block, lambda c: c.transfers(from_block, to_block, contracts), "transfers"
        )

    async def token_balance(self, contract: str, address: str, block: int | None = None) -> int:
        return await self._routed(
            block, lambda c: c.token_balance(contract, address, block), "token_balance"
        )

    async def token_decimals(self, contract: str) -> int:
        return await self._any(lambda c: c.token_decimals(contract), "token_decimals")

    async def close(self) -> None:
        for provider in self.providers:
            await provider.client.close()

    # -- delegation --------------------------------------------------------------------

    async def _any(self, op: Callable[[C], Awaitable[T]], label: str) -> T:
        """`op` on the best available provider, failing over; no block is required."""
        return await self._routed(None, op, label)

    async def _routed(self, block: int | None, op: Callable[[C], Awaitable[T]], label: str) -> T:
        """`op` on the best provider whose known head covers `block`, failing over."""
        return (await self._routed_with(block, op, label))[1]

    async def _routed_with(
        self, block: int | None, op: Callable[[C], Awaitable[T]], label: str
    ) -> tuple[Provider[C], T]:
        if block is not None and any(p.known_head is None for p in self.providers):
            # A call about a block before any head was read (the genesis check at start):
            # learn the heads first, so the providers that have it can be asked.
            with contextlib.suppress(ChainError):
                await self.head()
        last: ChainError | None = None
        for provider in self._candidates(block):
            try:
                return provider, await self._timed(provider, op(provider.client))
            except RangeTooLarge:
                raise  # about the window, not the provider: the engine shrinks it
            except BlockNotFound as exc:
                # It was behind after all (another replica answered its head): lower it.
                provider.known_head = min(provider.known_head or 0, exc.number - 1)
                last = exc
            except ChainUnavailable as exc:
                self._failed(provider, exc, back_off=True)
                last = exc
            except ChainError as exc:
                self._failed(provider, exc, back_off=False)
                last = exc
        if last is None:
            raise ChainUnavailable(
                f"{self.network}: no available provider has block {block} for {label} "
                f"(known heads: {self._heads_text()})"
            )
        if isinstance(last, ChainUnavailable | BlockNotFound):
            raise ChainUnavailable(
                f"{self.network}: every provider failed {label}: {last}"
            ) from last
        raise last

    def _candidates(self, block: int | None) -> list[Provider[C]]:
        now = self._clock()
        eligible = [p for p in self.providers if p.available(now) and p.covers(block)]
        eligible.sort(key=lambda p: p.score(), reverse=True)
        primary = self._primary
        if primary is not None and primary in eligible:
            eligible.remove(primary)
            eligible.insert(0, primary)
        return eligible

    async def _timed(self, provider: Provider[C], call: Awaitable[T]) -> T:
        REQUESTS.labels(self.network, provider.name).inc()
        started = time.perf_counter()
        result = await call
        elapsed = time.perf_counter() - started
        provider.succeeded(elapsed)
        LATENCY.labels(self.network, provider.name).observe(elapsed)
        return result

    def _failed(
        self,
        provider: Provider[C],
        exc: ChainError | str,
        *,
        back_off: bool,
        detail: str | None = None,
    ) -> None:
        kind = exc if isinstance(exc, str) else exc.code
        ERRORS.labels(self.network, provider.name, kind).inc()
        delay = provider.failed(self._clock(), self.policy, back_off=back_off)
        if back_off:
            provider.head_ok = False
        if self._primary is provider:
            self._primary = None
        log.warning(
            "rpc provider failed",
            extra={
                "network": self.network,
                "provider": provider.name,
                "kind": kind,
                "backoff_seconds": round(delay, 3),
                "error": detail or str(exc),
            },
        )

    # -- heads and health --------------------------------------------------------------

    async def _head_of(self, provider: Provider[C]) -> int | None:
        try:
            head = await self._timed(provider, provider.client.head())
        except ChainError as exc:
            self._failed(provider, exc, back_off=True)
            return None
        if provider.known_head is not None and head < provider.known_head:
            log.info(
                "rpc provider head went backwards",
                extra={
                    "network": self.network,
                    "provider": provider.name,
                    "was": provider.known_head,
                    "now": head,
                },
            )
        provider.known_head = head
        provider.head_ok = True
        return head

    def _choose_primary(self, quorum_head: int, among: Sequence[Provider[C]]) -> None:
        """Keep the primary while it is healthy and covers the quorum head, unless another
        provider scores far better; otherwise take the best one that covers it. Only
        providers `among` those that answered (that agreed on the head's hash, with a
        quorum above one) are considered."""
        now = self._clock()
        fit = [p for p in among if p.head_ok and p.available(now) and p.covers(quorum_head)]
        if not fit:
            self._primary = None
            return
        best = max(fit, key=lambda p: p.score())
        current = self._primary
        if (
            current in fit
            and current is not None
            and best.score() <= _SWITCH_MARGIN * current.score()
        ):
            return
        if current is not best:
            log.info(
                "rpc primary provider",
                extra={"network": self.network, "provider": best.name, "head": quorum_head},
            )
        self._primary = best

    def _publish_health(self) -> None:
        now = self._clock()
        heads = [p.known_head for p in self.providers if p.head_ok and p.known_head is not None]
        highest = max(heads) if heads else None
        healthy = 0
        for p in self.providers:
            lag = None if highest is None or p.known_head is None else highest - p.known_head
            if lag is not None:
                HEAD_LAG.labels(self.network, p.name).set(lag)
            ok = (
                p.head_ok
                and p.available(now)
                and lag is not None
                and lag <= self.policy.max_lag_blocks
            )
            HEALTHY.labels(self.network, p.name).set(1 if ok else 0)
            healthy += ok
        HEALTHY_PROVIDERS.labels(self.network).set(healthy)

    def _heads_text(self) -> str:
        return ", ".join(f"{p.name}={p.known_head}" for p in self.providers)

    # -- fork disagreement -------------------------------------------------------------

    async def _agreed_head(
        self, highest: int, voters: Sequence[Provider[C]]
    ) -> tuple[int, list[Provider[C]]]:
        """The newest block at or below `highest` that `quorum` of `voters` have with the
        same hash, and the providers that have it; outvoted providers are put in back-off.

        Where too few agree (one is behind after all, or on another fork) the next height
        asked is the highest head a voter reports below it, else the one below: the
        heights where a different set of providers can vote. A fork deeper than a few
        blocks with no majority is not walked down: ChainUnavailable, until one catches up.
        """
        k = self.policy.quorum
        voting = list(voters)
        number = lowest = highest
        for _ in range(len(self.providers) + _EXTRA_AGREEMENT_ROUNDS):
            asked = [p for p in voting if p.covers(number)]
            if len(asked) < k or number < 0:
                break
            lowest = number
            answers = await asyncio.gather(*(self._hash_at(p, number) for p in asked))
            votes: dict[str, list[Provider[C]]] = {}
            for provider, found in zip(asked, answers, strict=True):
                if found is not None:
                    votes.setdefault(found, []).append(provider)
                elif provider.covers(number):
                    voting.remove(provider)  # it failed (not merely behind): not asked again
            agreed = next((h for h, ps in votes.items() if len(ps) >= k), None)
            if agreed is not None:
                self._outvoted(number, agreed, votes)
                self._agreed = (number, agreed)
                return number, votes[agreed]
            below = [
                p.known_head for p in voting if p.known_head is not None and p.known_head < number
            ]
            number = max(below, default=number - 1)
        raise ChainUnavailable(
            f"{self.network}: no block asked from {lowest} to {highest} has the same hash at "
            f"{k} providers (known heads: {self._heads_text()})"
        )

    def _outvoted(self, number: int, agreed: str, votes: dict[str, list[Provider[C]]]) -> None:
        for found, providers in votes.items():
            for provider in providers if found != agreed else []:
                self._failed(
                    provider,
                    "fork",
                    back_off=True,
                    detail=f"provider {provider.name} has block {number} {found}, "
                    f"{len(votes[agreed])} others have {agreed}",
                )

    async def _confirm_hash(self, source: Provider[C], header: BlockHeader) -> None:
        """Raise ChainUnavailable unless `quorum` providers (`source` included) have
        `header.hash` at its height; demote `source` when the others agree on another."""
        now = self._clock()
        others = [p for p in self.providers if p is not source and p.covers(header.number)]
        rested = [p for p in others if p.available(now)]
        answers = await asyncio.gather(*(self._hash_at(p, header.number) for p in rested))
        k = self.policy.quorum
        if sum(a == header.hash for a in answers) + 1 < k:
            resting = [p for p in others if p not in rested]
            answers += await asyncio.gather(*(self._hash_at(p, header.number) for p in resting))
        votes: dict[str, int] = {header.hash: 1}
        for found in answers:
            if found is not None:
                votes[found] = votes.get(found, 0) + 1
        if votes[header.hash] >= k:
            return
        rival = max(votes.items(), key=lambda item: item[1])
        if rival[0] != header.hash and rival[1] >= k:
            self._failed(source, "fork", back_off=True)
            raise ChainUnavailable(
                f"{self.network}: provider {source.name} has block {header.number} "
                f"{header.hash}, {rival[1]} others have {rival[0]}"
            )
        raise ChainUnavailable(
            f"{self.network}: block {header.number} {header.hash} is confirmed by "
            f"{votes[header.hash]} of the {k} providers needed (votes: {votes})"
        )

    async def _hash_at(
        self, provider: Provider[C], number: int, *, again: bool = True
    ) -> str | None:
        try:
            headers = await self._timed(provider, provider.client.headers([number]))
        except BlockNotFound:
            # Behind a load balancer another replica may have it: ask once more.
            if again:
                return await self._hash_at(provider, number, again=False)
            provider.known_head = min(provider.known_head or 0, number - 1)
            return None
        except ChainError as exc:
            self._failed(provider, exc, back_off=isinstance(exc, ChainUnavailable))
            return None
        return headers[0].hash


__all__ = ["PoolPolicy", "Provider", "ProviderPool"]
