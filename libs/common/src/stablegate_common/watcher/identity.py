"""Which chain a watcher's state belongs to, and the reset that starts it afresh.

The cursor, the block hashes and the observed transfers describe one chain. A node that
serves another chain with the same chain id (a devnet started again from block 0, a node
pointed at another testnet) would be read as a reorg deeper than the kept hashes, and the
blocks below the old cursor never scanned. So the cursor row keeps the chain's identity,
its chain id and the hash of its genesis block, and a watcher refuses to start on a chain
whose identity differs, or whose chain id is not the registry's (`ChainIdentityCheck`,
run by the engine before it scans).
`reset_chain_state` is the explicit way out for devnets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate_common.chains import ChainClient, ChainUnavailable
from stablegate_common.db import Database
from stablegate_common.watcher.models import BlockHash, ObservedTransfer, ScanCursor, WatchedAddress

log = logging.getLogger(__name__)

GENESIS = 0


class ChainChanged(Exception):
    """The node serves another chain than the one the watcher's state was built on."""


class ChainIdMismatch(Exception):
    """The node serves another chain than the network's registered chain id."""


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


class ChainIdentityCheck:
    """The node's identity, read once, held against the one a network's cursor keeps."""

    def __init__(
        self,
        db: Database,
        client: ChainClient,
        network: str,
        *,
        registry_chain_id: int | None,
        reset_command: str,
    ) -> None:
        self.db = db
        self.client = client
        self.network = network
        self.registry_chain_id = registry_chain_id
        self.reset_command = reset_command  # named in the message that refuses another chain
        self._identity: ChainIdentity | None = None

    async def check_chain_id(self) -> None:
        """Raise ChainIdMismatch when the node's chain id is not the registry's."""
        expected = self.registry_chain_id
        # Not part of ChainClient: Tron has no chain id; EVM clients offer `chain_id()`.
        chain_id = getattr(self.client, "chain_id", None)
        if expected is None or chain_id is None:
            return
        actual = await chain_id()
        if actual != expected:
            raise ChainIdMismatch(
                f"{self.network}: the node serves chain id {actual}, the registry says "
                f"{expected}; check WATCHER_RPC_URL"
            )

    async def node_identity(self) -> ChainIdentity:
        """The node's chain id (the registry's where the client has none) and genesis."""
        if self._identity is None:
            chain_id = getattr(self.client, "chain_id", None)
            actual = await chain_id() if chain_id is not None else self.registry_chain_id
            self._identity = await read_identity(self.client, actual)
        return self._identity

    async def check(self) -> None:
        """Raise ChainChanged when the cursor counts on another chain than the node's; a
        cursor from before identities were kept adopts the node's."""
        identity = await self.node_identity()
        async with self.db.transaction() as session:
            stored = await load_stored(session, self.network)
            if stored is None:
                return  # the cursor is created with the identity
            check_same_chain(self.network, stored, identity, reset_command=self.reset_command)
            if stored.identity is None and await record_identity(session, self.network, identity):
                log.warning(
                    "scan cursor adopted the node's chain identity",
                    extra={"network": self.network, "cursor": stored.block}
                    | {"chain_id": identity.chain_id, "genesis_hash": identity.genesis_hash},
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
