"""The devnet chain: blocks with java-tron's id layout, the transaction pool, the checks
`broadcasttransaction` makes (expiration, TaPoS, duplicates, signature, contract), the
solid block `solidification_depth` behind the head, and forks above it.

Every block keeps a snapshot of the ledger after it while it is not yet solid, so the
solidity view reads the state at the solid block and a fork restarts from any block at
or above it. All methods are synchronous and run on one event loop, so each is atomic
with respect to the HTTP handlers.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from devnet.tron.encoding import (
    Hex41,
    encode_block_header,
    recover_signer,
    sign_txid,
    to_base58,
)
from devnet.tron.ledger import (
    BandwidthError,
    ContractValidateError,
    Executor,
    Fault,
    Ledger,
    Receipt,
)
from devnet.tron.transactions import SignedTx

BLOCK_VERSION = 34
MAX_EXPIRATION_MS = 86_400_000
TAPOS_WINDOW = 65_536
ForkTxs = Literal["keep", "drop", "last"]


class BroadcastError(Exception):
    """A transaction refused at broadcast, with java-tron's response code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ChainControlError(ValueError):
    """A test control asked for something the chain cannot do (fork below solid…)."""


@dataclass(frozen=True)
class Entry:
    tx: SignedTx
    receipt: Receipt


@dataclass
class Block:
    number: int
    block_id: str
    parent_id: str
    timestamp: int
    tx_trie_root: str
    witness: Hex41
    witness_signature: str
    entries: list[Entry] = field(default_factory=list)
    ledger: Ledger | None = None  # state after this block, kept while not solid


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Chain:
    def __init__(
        self,
        executor: Executor,
        genesis: Ledger,
        witness_key: str,
        witness: Hex41,
        *,
        solidification_depth: int = 19,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if solidification_depth < 1:
            raise ValueError("solidification_depth must be at least 1")
        self.executor = executor
        self.depth = solidification_depth
        self.clock = clock
        self._witness_key = witness_key
        self.witness = witness
        self.blocks: list[Block] = []
        self.pool: list[SignedTx] = []
        self.faults: dict[str, Fault] = {}  # txid → how it must fail once it runs
        self._index: dict[str, int] = {}  # txid → block number
        self._solid_floor = 0
        self.blocks.append(self._seal(None, 0, clock(), [], genesis))
        self.pending = genesis.copy()

    # --- reading ----------------------------------------------------------------------------

    @property
    def head(self) -> Block:
        return self.blocks[-1]

    @property
    def solid_number(self) -> int:
        return max(self._solid_floor, self.head.number - self.depth)

    def top(self, solid: bool) -> Block:
        return self.blocks[self.solid_number] if solid else self.head

    def block(self, number: int, solid: bool = False) -> Block | None:
        if 0 <= number <= self.top(solid).number:
            return self.blocks[number]
        return None

    def block_by_id(self, block_id: str, solid: bool = False) -> Block | None:
        try:
            number = int(block_id[:16], 16)
        except ValueError:
            return None
        block = self.block(number, solid)
        return block if block is not None and block.block_id == block_id else None

    def locate(self, txid: str, solid: bool = False) -> tuple[Block, Entry] | None:
        number = self._index.get(txid)
        block = None if number is None else self.block(number, solid)
        if block is None:
            return None
        return block, next(e for e in block.entries if e.tx.txid == txid)

    def ledger(self, solid: bool = False) -> Ledger:
        ledger = self.top(solid).ledger
        assert ledger is not None  # kept from the solid block up
        return ledger

    # --- broadcast --------------------------------------------------------------------------

    def broadcast(self, tx: SignedTx) -> None:
        """Check `tx` as java-tron's broadcast does and put it in the pool."""
        head = self.head
        if tx.expiration <= head.timestamp:
            raise BroadcastError("TRANSACTION_EXPIRATION_ERROR", "Transaction expired")
        if tx.expiration > head.timestamp + MAX_EXPIRATION_MS:
            raise BroadcastError(
                "TRANSACTION_EXPIRATION_ERROR",
                "expiration must be less than 24 hours after the head block",
            )
        if not self._tapos_ok(tx):
            raise BroadcastError("TAPOS_ERROR", "Tapos check error")
        if tx.txid in self._index or any(p.txid == tx.txid for p in self.pool):
            raise BroadcastError("DUP_TRANSACTION_ERROR", "Dup transaction")
        self._check_signature(tx)
        try:
            self.executor.execute(self.pending, tx.call, tx.size, self.clock(), self._fault(tx))
        except ContractValidateError as exc:
            raise BroadcastError("CONTRACT_VALIDATE_ERROR", str(exc)) from exc
        except BandwidthError as exc:
            raise BroadcastError("BANDWITH_ERROR", str(exc)) from exc
        self.pool.append(tx)

    def _check_signature(self, tx: SignedTx) -> None:
        if not tx.signatures:
            raise BroadcastError("SIGERROR", "miss sig or contract")
        if len(tx.signatures) > 1:
            raise BroadcastError("SIGERROR", "too many signatures for a threshold-1 permission")
        signer = recover_signer(tx.txid, tx.signatures[0])
        if signer is None:
            raise BroadcastError("SIGERROR", "Signature size is 65 and must be recoverable")
        if signer != tx.call.owner:
            raise BroadcastError(
                "SIGERROR",
                f"Validate signature error: {tx.signatures[0]} is signed by {to_base58(signer)} "
                "but it is not contained of permission.",
            )

    def _tapos_ok(self, tx: SignedTx) -> bool:
        ref_bytes, ref_hash = tx.raw["ref_block_bytes"], tx.raw["ref_block_hash"]
        if len(ref_bytes) != 4 or len(ref_hash) != 16:
            return False
        head = self.head.number
        # The newest block whose low 16 bits match, as java-tron's recent-block list holds.
        number = head - ((head - int(ref_bytes, 16)) % TAPOS_WINDOW)
        return number >= 0 and self.blocks[number].block_id[16:32] == ref_hash

    def _fault(self, tx: SignedTx) -> Fault | None:
        return self.faults.get(tx.txid)

    # --- blocks -----------------------------------------------------------------------------

    def produce_block(self) -> Block:
        """Seal the pool into a new head block; expired or no longer valid transactions
        drop out, as a producer's re-execution drops them."""
        pool, self.pool = self.pool, []
        block = self._append(pool, check=True)
        self._reset_pending()
        return block

    def fork(self, depth: int, txs: ForkTxs = "keep", blocks: int | None = None) -> list[Block]:
        """Replace the newest `depth` blocks by `blocks` (default `depth`) new ones with new
        ids. Their transactions go back in at the same heights (`keep`), all into the new
        head (`last`), or vanish (`drop`). Solid blocks are never touched."""
        count = depth if blocks is None else blocks
        base = self.head.number - depth
        if depth < 1 or count < 1:
            raise ChainControlError("depth and blocks must be at least 1")
        if base < self.solid_number:
            raise ChainControlError(
                f"cannot fork {depth} blocks: block {base + 1} is at or below the solid "
                f"block {self.solid_number}"
            )
        dropped = self.blocks[base + 1 :]
        del self.blocks[base + 1 :]
        for old in dropped:
            for entry in old.entries:
                self._index.pop(entry.tx.txid, None)
        plan = _fork_plan([[e.tx for e in b.entries] for b in dropped], count, txs)
        replaced = [b.timestamp for b in dropped] + [0] * count
        new = [self._append(plan[i], check=False, after=replaced[i]) for i in range(count)]
        self._reset_pending()
        return new

    def _append(self, txs: Sequence[SignedTx], *, check: bool, after: int = 0) -> Block:
        parent = self.head
        # Later than the block it replaces, so a fork never reproduces an old block id.
        timestamp = max(self.clock(), parent.timestamp + 1, after + 1)
        assert parent.ledger is not None
        ledger = parent.ledger.copy()
        entries = []
        for tx in txs:
            if check and (tx.expiration <= timestamp or not self._tapos_ok(tx)):
                continue
            try:
                receipt = self.executor.execute(
                    ledger, tx.call, tx.size, timestamp, self._fault(tx)
                )
            except (ContractValidateError, BandwidthError):
                continue
            entries.append(Entry(tx, receipt))
        block = self._seal(parent, parent.number + 1, timestamp, entries, ledger)
        self.blocks.append(block)
        for entry in entries:
            self._index[entry.tx.txid] = block.number
        self._solid_floor = max(self._solid_floor, block.number - self.depth)
        for old in self.blocks[max(0, self._solid_floor - self.depth) : self._solid_floor]:
            old.ledger = None
        return block

    def _seal(
        self,
        parent: Block | None,
        number: int,
        timestamp: int,
        entries: list[Entry],
        ledger: Ledger,
    ) -> Block:
        txids = b"".join(bytes.fromhex(e.tx.txid) for e in entries)
        root = hashlib.sha256(txids).hexdigest() if entries else "00" * 32
        parent_id = parent.block_id if parent is not None else "00" * 32
        header = encode_block_header(
            number, timestamp, root, parent_id, self.witness, BLOCK_VERSION
        )
        digest = hashlib.sha256(header).digest()
        # blockID: 8-byte big-endian height, then the last 24 bytes of the header hash.
        block_id = number.to_bytes(8, "big").hex() + digest[8:].hex()
        signature = sign_txid(digest.hex(), self._witness_key)
        return Block(
            number, block_id, parent_id, timestamp, root, self.witness, signature, entries, ledger
        )

    def _reset_pending(self) -> None:
        """Rebuild the pending state from the head and the pool that is still valid."""
        self.pending = self.ledger().copy()
        kept = []
        for tx in self.pool:
            try:
                self.executor.execute(self.pending, tx.call, tx.size, self.clock(), self._fault(tx))
            except (ContractValidateError, BandwidthError):
                continue
            kept.append(tx)
        self.pool = kept


def _fork_plan(old: list[list[SignedTx]], count: int, mode: ForkTxs) -> list[list[SignedTx]]:
    plan: list[list[SignedTx]] = [[] for _ in range(count)]
    if mode == "drop":
        return plan
    if mode == "last":
        plan[-1] = [tx for txs in old for tx in txs]
        return plan
    for i, txs in enumerate(old):
        plan[min(i, count - 1)].extend(txs)
    return plan
