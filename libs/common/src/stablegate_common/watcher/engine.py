"""The watcher engine: one network's scanner, chain-agnostic behind `ChainClient`.

One `tick()` (research chains.md §1.3):
1. read the head, then check the stored block hashes against the chain from the top down;
   on a reorg, revert the transfers of the dropped blocks, forget their hashes and move
   the cursor back to the common ancestor (one transaction); below a reorg deeper than
   the kept hashes the ancestor is unknown, so the scan restarts `deep_reorg_rescan_blocks`
   further down, where the new fork may have paid a watched address;
2. search the already scanned blocks for addresses that were announced since the last
   tick (backfill), so a payment made before the watcher heard of its address is found;
3. read the next window of headers and Transfer logs of the registered tokens, and drop
   the window when the chain changed while it was read;
4. in ONE transaction: record the transfers to watched addresses, confirm those deep
   enough, store the window's newest hashes, move the cursor, queue the events in the
   outbox. The relay publishes after the commit.

"Deep enough" is `confirmations` blocks on top of the transfer's block, or, for a chain
whose client reports finality (`FinalizedHeadSource`, Tron's solidified block), a block
at or below the finalized one that is the finalized chain's block at its height; a
pending transfer whose block is not is rolled back like a reorg, and a window that
shows one is read again later.

The scanning loop, its lock and readiness live in `runner.py`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.bus import add_many_to_outbox, add_to_outbox
from stablegate_common.chains import (
    BlockHeader,
    BlockLogsSource,
    ChainClient,
    ChainError,
    ChainUnavailable,
    FinalizedHeadSource,
    RangeTooLarge,
    RecipientFilter,
    TokenTransfer,
    TransferLogs,
)
from stablegate_common.chains.bloom import TransferBloom
from stablegate_common.core.assets import Network
from stablegate_common.db import Database
from stablegate_common.watcher import logcheck, metrics, repository
from stablegate_common.watcher.config import EngineConfig
from stablegate_common.watcher.events import head_event, transfer_event
from stablegate_common.watcher.finality import FinalityCheck, first_off_chain
from stablegate_common.watcher.identity import ChainIdentityCheck, record_identity
from stablegate_common.watcher.planning import (
    AdaptiveWindow,
    BlockRange,
    backfill_start,
    first_match,
    next_window,
    split_range,
    stored_tail,
)
from stablegate_common.watcher.repository import TransferRow

log = logging.getLogger(__name__)


class TokenDecimalsMismatch(Exception):
    """A registered token's contract reports other decimals than the registry: amounts
    would be misread by orders of magnitude, so the watcher refuses to start."""


@dataclass(frozen=True)
class Fork:
    ancestor: int  # last block both chains share; transfers above it are reverted
    deep: bool  # deeper than the kept hashes: ancestor is a guess below the oldest kept
    # Where the cursor goes back to: the ancestor, or for a deep reorg a configured depth
    # below the guess, since the new fork may add transfers to blocks nobody kept hashes of.
    rescan_from: int


@dataclass(frozen=True)
class Scan:
    window: BlockRange
    headers: list[BlockHeader]
    transfers: list[TokenTransfer]  # only registered tokens to watched addresses


class WatcherEngine:
    def __init__(
        self,
        db: Database,
        client: ChainClient,
        network: Network,
        config: EngineConfig,
        *,
        producer: str,
        reset_command: str | None = None,
    ) -> None:
        self.db = db
        self.client = client
        self.network = network
        self.name = network.name
        self.config = config
        self.producer = producer
        # Named in the message that refuses another chain: the CLI that resets the state.
        self.reset_command = reset_command or f"stablegate-{producer.removeprefix('chain-')}"
        self.identity = ChainIdentityCheck(
            db,
            client,
            self.name,
            registry_chain_id=network.chain_id,
            reset_command=self.reset_command,
        )
        self.required = config.confirmations
        self.tokens = {asset.contract: asset for asset in network.assets}
        self.watch_set: set[str] = set()
        self.window = AdaptiveWindow(
            config.window_blocks, config.max_window_blocks, grow_after=config.grow_after
        )
        self._last_head: int | None = None
        self._last_finalized: int | None = None
        self._finality = client if isinstance(client, FinalizedHeadSource) else None
        self._final_check = (
            FinalityCheck(db, self.name, self._finality) if self._finality is not None else None
        )
        self._filtering = client if isinstance(client, RecipientFilter) else None
        self._block_logs = client if isinstance(client, BlockLogsSource) else None
        self._bloom: TransferBloom | None = None  # built for the first header with a bloom
        self._published: tuple[int, int] | None = None
        self._head_time: tuple[int, datetime] | None = None  # the head block's, once read

    # -- start-up ----------------------------------------------------------------------

    async def verify_chain(self) -> None:
        """Refuse a node of another chain (by chain id, and by genesis hash once the
        cursor has counted on one) and tokens whose decimals disagree with the registry.
        Raises ChainError when the node cannot answer (retry later)."""
        await self.identity.check_chain_id()
        # Before the tokens: on another chain they may not exist, and this says what to do.
        await self.identity.check()
        for asset in self.network.assets:
            decimals = await self.client.token_decimals(asset.contract)
            if decimals != asset.decimals:
                raise TokenDecimalsMismatch(
                    f"{self.name} {asset.symbol} at {asset.contract}: decimals() returns "
                    f"{decimals}, the asset registry says {asset.decimals}; fix the registry "
                    "(STABLEGATE_ASSETS_FILE) before starting"
                )

    async def resume(self) -> int:
        """Load (or create) the cursor and the watch set; called on taking the lock."""
        await self.identity.check()
        async with self.db.sessions() as session:
            cursor = await repository.load_cursor(session, self.name)
            watched = await repository.all_watched(session)
        if cursor is None:
            cursor = await self._create_cursor()
        self.watch_set = watched
        self._last_head = None
        metrics.WATCHED_ADDRESSES.labels(self.name).set(len(self.watch_set))
        metrics.SCANNED_BLOCK.labels(self.name).set(max(cursor, 0))
        log.info(
            "scanner resumed",
            extra={"network": self.name, "cursor": cursor, "watched": len(watched)},
        )
        return cursor

    async def _create_cursor(self) -> int:
        head = await self.client.head()
        if self.config.start_block is not None:
            first = self.config.start_block
        else:
            first = max(0, head - self.config.start_blocks_back)
        cursor = first - 1
        # The header at the cursor lets the first window prove it continues the same chain.
        headers = await self.client.headers([cursor]) if 0 <= cursor <= head else []
        identity = await self.identity.node_identity()
        async with self.db.transaction() as session:
            existing = await repository.load_cursor(session, self.name)
            if existing is not None:
                return existing
            cursor = await repository.create_cursor(session, self.name, cursor)
            await record_identity(session, self.name, identity)
            await repository.store_headers(session, headers)
        log.info("scan cursor created", extra={"network": self.name, "first_block": first})
        return cursor

    # -- one tick ----------------------------------------------------------------------

    async def tick(self) -> bool:
        """Scan once; return True when blocks are left to scan (tick again at once)."""
        head = await self.client.head()
        finalized = await self._finality.finalized_head() if self._finality else None
        metrics.HEAD_BLOCK.labels(self.name).set(head)
        async with self.db.sessions() as session:
            cursor = await repository.load_cursor(session, self.name)
            stored = await repository.stored_hashes(session)
        if cursor is None:
            cursor = await self.resume()
        if await self._roll_back_reorg(head, cursor, stored, finalized):
            return True
        await self._backfill(head, cursor)
        if head < cursor:
            # A node behind our cursor (load-balanced providers): wait for it.
            log.debug("node is behind the cursor", extra={"head": head, "cursor": cursor})
            return False
        window = next_window(cursor, head, self.window.size)
        scan = None
        if window is not None:
            scan = await self._read(window, stored[0] if stored else None)
            if scan is None:
                return False  # read it again after a pause, not in a tight loop
        if scan is None and head == self._last_head and finalized == self._last_finalized:
            return False
        final = None
        if self._final_check is not None and finalized is not None:
            transfers = scan.transfers if scan is not None else []
            final = await self._final_check.hashes(head, finalized, transfers)
            off = first_off_chain(transfers, final)
            if off is not None:
                self._reject("not_finalized_chain", off)
                return False  # the node serves a fork below the finalized block: wait for it
        await self._commit(head, cursor, scan, finalized, final)
        self._last_head = head
        self._last_finalized = finalized
        return window is not None and window.last < head

    # -- reorgs ------------------------------------------------------------------------

    async def _roll_back_reorg(
        self, head: int, cursor: int, stored: list[tuple[int, str]], finalized: int | None
    ) -> bool:
        fork = await self.find_fork(head, stored) or await self._off_finalized_chain(
            head, finalized
        )
        if fork is None:
            return False
        depth = cursor - fork.ancestor
        async with self.db.transaction() as session:
            await repository.move_cursor(session, self.name, expected=cursor, to=fork.rescan_from)
            reverted = await repository.revert_transfers(session, self.name, above=fork.ancestor)
            await repository.drop_hashes(session, above=fork.rescan_from)
            await self._queue(session, reverted)
        self._last_head = None
        metrics.REORGS.labels(self.name).inc()
        metrics.REORG_DEPTH.labels(self.name).observe(depth)
        metrics.TRANSFERS.labels(self.name, "reverted").inc(len(reverted))
        metrics.SCANNED_BLOCK.labels(self.name).set(max(fork.rescan_from, 0))
        details = {
            "network": self.name,
            "ancestor": fork.ancestor,
            "rescan_from": fork.rescan_from + 1,
            "depth": depth,
            "reverted": len(reverted),
        }
        if fork.deep:
            metrics.DEEP_REORGS.labels(self.name).inc()
            log.error("reorg deeper than the kept block hashes, rescanning", extra=details)
        else:
            log.warning("reorg, rolled back to the common ancestor", extra=details)
        return True

    async def _off_finalized_chain(self, head: int, finalized: int | None) -> Fork | None:
        if self._final_check is None or finalized is None:
            return None
        ancestor = await self._final_check.forked_ancestor(head, finalized)
        if ancestor is None:
            return None
        return Fork(ancestor=ancestor, deep=False, rescan_from=ancestor)

    async def find_fork(self, head: int, stored: Sequence[tuple[int, str]]) -> Fork | None:
        """Compare kept hashes (newest first) with the chain; None when they still agree.

        Blocks above the node's head are not compared: a node behind us (a lagging
        replica of a provider) is not a reorg as long as its block at its head is ours.
        """
        comparable = [(n, h) for n, h in stored if n <= head]
        if not comparable:
            return None
        top = comparable[0][0]
        size = self.config.reorg_batch
        batches = [comparable[:1]] + [
            comparable[i : i + size] for i in range(1, len(comparable), size)
        ]
        for batch in batches:
            headers = await self.client.headers([n for n, _ in batch])
            match = first_match(batch, {h.number: h.hash for h in headers})
            if match == top:
                return None
            if match is not None:
                return Fork(ancestor=match, deep=False, rescan_from=match)
        oldest = stored[-1][0]
        ancestor = await self._deep_ancestor(oldest)
        below = max(-1, oldest - 1 - self.config.deep_reorg_rescan_blocks)
        return Fork(ancestor=ancestor, deep=True, rescan_from=min(ancestor, below))

    async def _deep_ancestor(self, oldest_kept: int) -> int:
        """Where to rescan from after a reorg deeper than the kept hashes.

        Below the oldest kept hash only the recorded transfers remember which block they
        were in: any whose block the chain replaced must be reverted, so the rescan starts
        below the lowest such block (searching at most `deep_reorg_blocks` further down).
        """
        async with self.db.sessions() as session:
            recorded = await repository.transfer_blocks(
                session,
                self.name,
                below=oldest_kept,
                down_to=oldest_kept - self.config.deep_reorg_blocks,
            )
        ancestor = oldest_kept - 1
        numbers = sorted(recorded)
        for start in range(0, len(numbers), self.config.reorg_batch):
            chunk = numbers[start : start + self.config.reorg_batch]
            for header in await self.client.headers(chunk):
                if header.hash != recorded[header.number]:
                    return min(ancestor, header.number - 1)
        return ancestor

    # -- backfill ----------------------------------------------------------------------

    async def _backfill(self, head: int, cursor: int) -> None:
        """Search scanned blocks for addresses announced since the last tick."""
        async with self.db.sessions() as session:
            due = await repository.backfill_due(session, limit=self.config.backfill_batch)
            timestamps = await repository.stored_timestamps(session) if due else []
        if not due:
            return
        addresses = {address for address, _ in due}
        self.watch_set |= addresses
        metrics.WATCHED_ADDRESSES.labels(self.name).set(len(self.watch_set))
        if head < cursor:
            # Blocks head+1 … cursor are not on this node (a lagging replica): searching
            # up to the head and marking the addresses done would skip them for good.
            log.info(
                "backfill waits for the node to reach the cursor",
                extra={"network": self.name, "head": head, "cursor": cursor},
            )
            return
        start = backfill_start(
            cursor,
            backfill_blocks=self.config.backfill_blocks,
            announced_at=min(announced for _, announced in due),
            stored_timestamps=timestamps,
            clock_skew=timedelta(seconds=self.config.clock_skew_seconds),
        )
        found: list[TokenTransfer] = []
        if start <= cursor:
            for chunk in split_range(BlockRange(start, cursor), self.window.size):
                transfers = await self._search(chunk, addresses)
                if transfers is None:
                    return  # not marked: searched again next tick
                found += transfers
        block_times = await self._verified_times(found)
        if block_times is None:
            return
        async with self.db.transaction() as session:
            await repository.move_cursor(session, self.name, expected=cursor, to=cursor)
            rows = await repository.record_transfers(session, self.name, found, block_times, head)
            await repository.mark_backfilled(session, sorted(addresses))
            await self._queue(session, rows)
        self._count_recorded(rows)
        if rows:
            self._last_head = None  # confirm what the backfill found, even at the same head
        metrics.BACKFILLED_ADDRESSES.labels(self.name).inc(len(addresses))
        log.info(
            "backfilled newly watched addresses",
            extra={
                "network": self.name,
                "addresses": len(addresses),
                "from_block": start,
                "to_block": cursor,
                "found": len(found),
            },
        )

    async def _search(self, blocks: BlockRange, addresses: set[str]) -> list[TokenTransfer] | None:
        """Transfers to `addresses` in `blocks`; None when the node lacks some of their logs
        (a lagging replica answered), checked as a scan window is."""
        if self._block_logs is None:
            transfers = (await self._transfers(blocks, addresses)).transfers
        else:
            headers = await self.client.headers(list(blocks.numbers()))
            logs = await self._transfers(blocks, addresses)
            try:
                transfers = await self._complete(headers, logs, addresses)
            except logcheck.LogsMissing as exc:
                self._reject("backfill_logs_missing", exc.block)
                return None
        return [t for t in transfers if t.to_address in addresses]

    async def _verified_times(self, found: list[TokenTransfer]) -> dict[int, datetime] | None:
        """Block timestamps of backfilled transfers, or None when a log's block is no
        longer canonical (the next tick's reorg check rolls it back first)."""
        numbers = sorted({t.block_number for t in found})
        if not numbers:
            return {}
        headers = {h.number: h for h in await self.client.headers(numbers)}
        async with self.db.sessions() as session:
            kept = await repository.hashes_at(session, numbers)
        for t in found:
            canonical = headers[t.block_number].hash
            if t.block_hash != canonical or kept.get(t.block_number, canonical) != canonical:
                self._reject("backfill_block_changed", t.block_number)
                return None
        return {n: h.timestamp for n, h in headers.items()}

    # -- reading a window --------------------------------------------------------------

    async def _transfers(self, blocks: BlockRange, recipients: Container[str]) -> TransferLogs:
        """Transfer logs of the registered tokens, only those to `recipients` when the
        client can filter (callers filter again); shrinks the window when refused.
        `blocks` of the answer is empty when the client cannot tell them."""
        contracts = list(self.tokens)
        try:
            if self._block_logs is not None:
                logs = await self._block_logs.transfer_logs(
                    blocks.first, blocks.last, contracts, recipients
                )
            elif self._filtering is not None:
                transfers = await self._filtering.transfers_to(
                    blocks.first, blocks.last, contracts, recipients
                )
                logs = TransferLogs(transfers, {})
            else:
                transfers = await self.client.transfers(blocks.first, blocks.last, contracts)
                logs = TransferLogs(transfers, {})
        except RangeTooLarge as exc:
            self.window.shrink(limit=exc.max_block_range)
            metrics.WINDOW_BLOCKS.labels(self.name).set(self.window.size)
            raise
        except ChainUnavailable:
            self.window.shrink()
            metrics.WINDOW_BLOCKS.labels(self.name).set(self.window.size)
            raise
        # The client filters by contract already; a look-alike must never pass anyway.
        return TransferLogs(
            [t for t in logs.transfers if t.token_contract in self.tokens], logs.blocks
        )

    async def _read(self, window: BlockRange, top: tuple[int, str] | None) -> Scan | None:
        # Headers first, logs second: logs of a chain that changed after the headers were
        # read either disagree with a header here or leave a stale hash that the next
        # tick's reorg check finds. The other order could miss a transfer for good.
        try:
            headers = await self.client.headers(list(window.numbers()))
        except (ChainUnavailable, RangeTooLarge):
            self.window.shrink()
            metrics.WINDOW_BLOCKS.labels(self.name).set(self.window.size)
            raise
        # Only the logs to watched addresses are checked against the headers: a changed
        # block holding none of them leaves a stale hash for the next reorg check.
        logs = await self._transfers(window, self.watch_set)
        problem = _inconsistency(window, headers, logs.transfers, top)
        if problem is not None:
            self._reject(*problem)
            return None
        try:
            transfers = await self._complete(headers, logs, self.watch_set)
        except logcheck.LogsMissing as exc:
            self._reject("logs_missing", exc.block)
            return None
        self.window.success()
        metrics.WINDOW_BLOCKS.labels(self.name).set(self.window.size)
        kept = [t for t in transfers if t.to_address in self.watch_set]
        return Scan(window, headers, kept)

    async def _complete(
        self, headers: Sequence[BlockHeader], logs: TransferLogs, recipients: Container[str]
    ) -> list[TokenTransfer]:
        """The logs, checked against the headers' blooms where the chain has them."""
        if self._block_logs is None or headers[0].logs_bloom is None:
            return logs.transfers
        if self._bloom is None:
            self._bloom = TransferBloom(list(self.tokens))
        return await logcheck.complete(
            self._block_logs,
            self.name,
            headers,
            logs,
            bloom=self._bloom,
            contracts=list(self.tokens),
            recipients=recipients,
        )

    def _reject(self, reason: str, block: int) -> None:
        metrics.REJECTED_WINDOWS.labels(self.name, reason).inc()
        log.warning(
            "window dropped (the chain changed while it was read, or the node lacks its "
            "logs), reading it again",
            extra={"network": self.name, "reason": reason, "block": block},
        )

    # -- committing --------------------------------------------------------------------

    async def _commit(
        self,
        head: int,
        cursor: int,
        scan: Scan | None,
        finalized: int | None,
        final: dict[int, str] | None,
    ) -> None:
        new_cursor = scan.window.last if scan else cursor
        head_timestamp = await self._head_timestamp(head, new_cursor, scan)
        async with self.db.transaction() as session:
            # First statement: it locks the cursor row, fencing off a second scanner.
            await repository.move_cursor(session, self.name, expected=cursor, to=new_cursor)
            recorded: list[TransferRow] = []
            if scan is not None:
                times = {h.number: h.timestamp for h in scan.headers}
                recorded = await repository.record_transfers(
                    session, self.name, scan.transfers, times, head
                )
                tail = stored_tail(scan.window, self.config.reorg_window)
                await repository.store_headers(
                    session, [h for h in scan.headers if h.number >= tail.first]
                )
                await repository.prune_hashes(
                    session, below=new_cursor - self.config.reorg_window + 1
                )
            confirmed = await repository.confirm_transfers(
                session,
                self.name,
                head=head,
                required=self.required,
                finalized=finalized,
                finalized_hashes=final,
            )
            await repository.count_pending_confirmations(session, self.name, head=head)
            await self._queue(session, recorded + confirmed)
            if head_timestamp is not None:
                add_to_outbox(
                    session,
                    head_event(
                        self.name,
                        head=head,
                        scanned=new_cursor,
                        head_timestamp=head_timestamp,
                        producer=self.producer,
                    ),
                )
        if head_timestamp is not None:
            self._published = (head, new_cursor)
        self._count_recorded(recorded)
        metrics.TRANSFERS.labels(self.name, "confirmed").inc(len(confirmed))
        metrics.SCANNED_BLOCK.labels(self.name).set(max(new_cursor, 0))
        metrics.LAG_BLOCKS.labels(self.name).set(max(0, head - new_cursor))

    async def _head_timestamp(
        self, head: int, new_cursor: int, scan: Scan | None
    ) -> datetime | None:
        """The head block's time when a `chain.head` event is due (once per new view)."""
        if self._published == (head, new_cursor):
            return None
        if scan is not None and scan.headers[-1].number == head:
            return scan.headers[-1].timestamp
        if self._head_time is not None and self._head_time[0] == head:
            return self._head_time[1]  # catching up: the head stays while the cursor moves
        try:
            timestamp = (await self.client.headers([head]))[0].timestamp
        except ChainError as exc:
            # Only the lag display suffers; the scan itself must not fail over it.
            log.info("head header unavailable", extra={"head": head, "error": repr(exc)})
            return None
        self._head_time = (head, timestamp)
        return timestamp

    async def _queue(self, session: AsyncSession, rows: Sequence[TransferRow]) -> None:
        events = [
            transfer_event(row, self.network, required=self.required, producer=self.producer)
            for row in rows
            if row.status != "ignored"
        ]
        await add_many_to_outbox(session, events)

    def _count_recorded(self, rows: Sequence[TransferRow]) -> None:
        ignored = sum(1 for r in rows if r.status == "ignored")
        metrics.TRANSFERS.labels(self.name, "ignored").inc(ignored)
        metrics.TRANSFERS.labels(self.name, "detected").inc(len(rows) - ignored)


def _inconsistency(
    window: BlockRange,
    headers: Sequence[BlockHeader],
    transfers: Sequence[TokenTransfer],
    top: tuple[int, str] | None,
) -> tuple[str, int] | None:
    """Why the window's headers and logs do not describe one chain, or None when they do."""
    if [h.number for h in headers] != list(window.numbers()):
        return "headers_out_of_order", window.first
    if top is not None and top[0] == window.first - 1 and headers[0].parent_hash != top[1]:
        return "parent_mismatch", window.first
    for previous, header in itertools.pairwise(headers):
        if header.parent_hash != previous.hash:
            return "parent_mismatch", header.number
    by_number = {h.number: h.hash for h in headers}
    for t in transfers:
        if by_number.get(t.block_number) != t.block_hash:
            return "log_block_changed", t.block_number
    return None
