"""Which chain a watcher's state belongs to, and the reset that starts it afresh.

The cursor, the block hashes and the observed transfers describe one chain. A node that
serves another chain with the same chain id (a devnet started again from block 0, a node
pointed at another testnet) would be read as a reorg deeper than the kept hashes, and the
blocks below the old cursor never scanned. So the cursor row keeps the chain's identity,
its chain id and the hash of its genesis block, and a watcher refuses to start on a chain
whose identity differs. `reset_chain_state` is the explicit way out for devnets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains import ChainClient, ChainUnavailable
from stablegate_common.watcher.models import BlockHash, ObservedTransfer, ScanCursor, WatchedAddress

log = logging.getLogger(__name__)

GENESIS = 0


class ChainChanged(Exception):
    """The node serves another chain than the one the watcher's state was built on."""


@dataclass(frozen=True)
class ChainIdentity:
    chain_id: int | None  # None where the chain has none (Tron)
    genesis_hash: str

    def describe(self) -> str:
        chain = "" if self.chain_id is None else f"chain id {self.chain_id}, "
        return f"{chain}genesis {self.genesis_hash}"


@dataclass(frozen=True)
class StoredCursor:
    block: int
    identity: ChainIdentity | None  # None for a cursor made before identities were kept


@dataclass(frozen=True)
class ResetSummary:
    cursors: int
    block_hashes: int
    transfers: int
    addresses_to_backfill: int


async def read_identity(client: ChainClient, chain_id: int | None) -> ChainIdentity:
    """The node's chain: `chain_id` as the node reported it, and its genesis block's hash.
    Raises ChainError when the node cannot answer (retry later)."""
    headers = await client.headers([GENESIS])
    if not headers or headers[0].number != GENESIS:
        raise ChainUnavailable("the node returned no genesis block header")
    return ChainIdentity(chain_id, headers[0].hash)


async def load_stored(session: AsyncSession, network: str) -> StoredCursor | None:
    row = (
        await session.execute(
            select(
                ScanCursor.last_scanned_block, ScanCursor.chain_id, ScanCursor.genesis_hash
            ).where(ScanCursor.network == network)
        )
    ).first()
    if row is None:
        return None
    block, chain_id, genesis_hash = row
    identity = None if genesis_hash is None else ChainIdentity(chain_id, genesis_hash)
    return StoredCursor(int(block), identity)


async def record_identity(session: AsyncSession, network: str, identity: ChainIdentity) -> bool:
    """Give the cursor this identity where it has none; True when a row took it."""
    result = await session.execute(
        update(ScanCursor)
        .where(ScanCursor.network == network, ScanCursor.genesis_hash.is_(None))
        .values(chain_id=identity.chain_id, genesis_hash=identity.genesis_hash)
    )
    return bool(getattr(result, "rowcount", 0))


def check_same_chain(
    network: str, stored: StoredCursor, current: ChainIdentity, *, reset_command: str
) -> None:
    """Raise ChainChanged, saying what to do, when the node serves another chain."""
    if stored.identity is None or stored.identity == current:
        return
    raise ChainChanged(
        f"{network}: the node serves another chain ({current.describe()}) than the one this "
        f"watcher's state was built on ({stored.identity.describe()}, scanned up to block "
        f"{stored.block}). A devnet started again from block 0? Then clear the watcher's "
        f"chain state with `{reset_command} reset-chain --yes` and start it again. "
        "Otherwise check WATCHER_RPC_URL: it points at another chain."
    )


async def reset_chain_state(session: AsyncSession) -> ResetSummary:
    """Forget everything the schema knows about the chain: cursor (with its identity),
    block hashes and observed transfers. The watch set stays (the addresses are the
    gateway's), marked to be searched again on the next chain."""
    transfers = await session.execute(delete(ObservedTransfer))
    hashes = await session.execute(delete(BlockHash))
    cursors = await session.execute(delete(ScanCursor))
    addresses = await session.execute(
        update(WatchedAddress).values(backfilled_at=None, added_at_block=None)
    )
    return ResetSummary(
        cursors=_count(cursors),
        block_hashes=_count(hashes),
        transfers=_count(transfers),
        addresses_to_backfill=_count(addresses),
    )


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
