"""Outgoing-transfer test support: hand-made plans, a real signer in process, snapshots.

The seed is the published test mnemonic (anvil's and the Tron devnet's); its addresses
are derived here exactly as the signer derives them, so a plan is one the signer signs.
"""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from stablegate_common.bus import OutboxMessage
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.models import OutgoingBatch, OutgoingTransfer
from stablegate_gateway.outgoing.plans import PlannedTransfer, PlanSummary
from stablegate_signer.keys import Seed
from stablegate_signer.policy import Policy
from stablegate_signer.signing import Signer

MNEMONIC = "test test test test test test test test test test test junk"
OTHER_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"
SEED = Seed(MNEMONIC)

EVM_ACCOUNT = "m/44'/60'/0'"
TRON_ACCOUNT = "m/44'/195'/0'"
EVM_FEE_PATH = f"{EVM_ACCOUNT}/1/0"
TRON_FEE_PATH = f"{TRON_ACCOUNT}/1/0"
EVM_DEPOSIT_PATH = f"{EVM_ACCOUNT}/0/3"
TRON_DEPOSIT_PATH = f"{TRON_ACCOUNT}/0/3"
EVM_FEE = SEED.address(EVM_FEE_PATH, "ethereum")
EVM_DEPOSIT = SEED.address(EVM_DEPOSIT_PATH, "ethereum")
TRON_FEE = SEED.address(TRON_FEE_PATH, "tron")
TRON_DEPOSIT = SEED.address(TRON_DEPOSIT_PATH, "tron")
EVM_XPUB = SEED.account_xpub(EVM_ACCOUNT)
TRON_XPUB = SEED.account_xpub(TRON_ACCOUNT)

EVM_TREASURY = "0x1111111111111111111111111111111111111111"
EVM_OTHER = "0x000000000000000000000000000000000000dEaD"
DEVNET_USDT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # anvil's first deployment
TRON_USDT = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
TRON_TREASURY = "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC"

SWEEP_GAS = 65_000
MAX_FEE_PER_GAS = 2_000_000_000
TIP = 100_000_000


def evm_plan(*, nonce: int = 0, amount: int = 25_000_000) -> list[PlannedTransfer]:
    """A fee top-up from the fee wallet, then the USDT sweep it pays for (chain 31337)."""
    topup_amount = SWEEP_GAS * MAX_FEE_PER_GAS
    topup = PlannedTransfer(
        key=f"topup:{EVM_DEPOSIT}",
        purpose="fee_topup",
        network="ethereum",
        source_address=EVM_FEE,
        source_path=EVM_FEE_PATH,
        destination_address=EVM_DEPOSIT,
        destination_path=EVM_DEPOSIT_PATH,
        asset="ETH",
        token_contract=None,
        decimals=18,
        amount_base_units=topup_amount,
        max_fee_base_units=21_000 * MAX_FEE_PER_GAS,
        estimated_fee_base_units=21_000 * 1_000_000_000,
        chain_id=31337,
        nonce=nonce,
        gas_limit=21_000,
        max_fee_per_gas=MAX_FEE_PER_GAS,
        max_priority_fee_per_gas=TIP,
    )
    sweep = PlannedTransfer(
        key=f"sweep:{EVM_DEPOSIT}",
        purpose="sweep",
        network="ethereum",
        source_address=EVM_DEPOSIT,
        source_path=EVM_DEPOSIT_PATH,
        destination_address=EVM_TREASURY,
        destination_path=None,
        asset="USDT",
        token_contract=DEVNET_USDT,
        decimals=6,
        amount_base_units=amount,
        max_fee_base_units=SWEEP_GAS * MAX_FEE_PER_GAS,
        estimated_fee_base_units=SWEEP_GAS * 1_000_000_000,
        depends_on=topup.key,
        chain_id=31337,
        nonce=0,
        gas_limit=SWEEP_GAS,
        max_fee_per_gas=MAX_FEE_PER_GAS,
        max_priority_fee_per_gas=TIP,
    )
    return [topup, sweep]


def tron_plan(*, amount: int = 9_000_000, expires_in_ms: int = 3_000_000) -> list[PlannedTransfer]:
    now = int(time.time() * 1000)
    return [
        PlannedTransfer(
            key=f"sweep:{TRON_DEPOSIT}",
            purpose="sweep",
            network="tron",
            source_address=TRON_DEPOSIT,
            source_path=TRON_DEPOSIT_PATH,
            destination_address=TRON_TREASURY,
            destination_path=None,
            asset="USDT",
            token_contract=TRON_USDT,
            decimals=6,
            amount_base_units=amount,
            max_fee_base_units=30_000_000,
            estimated_fee_base_units=13_000_000,
            tron_contract_type="TriggerSmartContract",
            ref_block_bytes="4567",
            ref_block_hash="abcdef0123456789",
            timestamp_ms=now,
            expiration_ms=now + expires_in_ms,
            fee_limit=30_000_000,
            estimated_energy=64_285,
            estimated_bandwidth=345,
        )
    ]


def summary_for(planned: list[PlannedTransfer], kind: str = "sweep") -> PlanSummary:
    network = planned[0].network
    native = {"ethereum": "ETH", "bsc": "BNB", "tron": "TRX"}[network]
    totals: dict[str, int] = {}
    for p in planned:
        if p.purpose == "sweep":
            totals[p.asset] = totals.get(p.asset, 0) + p.amount_base_units
    return PlanSummary(
        network=network,
        kind=kind,
        addresses=len({p.source_address for p in planned if p.purpose == "sweep"}),
        totals=totals,
        network_cost_base_units=sum(p.estimated_fee_base_units for p in planned),
        network_cost_max_base_units=sum(p.max_fee_base_units for p in planned),
        native_symbol=native,
        native_price_usd=Decimal("3000"),
        network_cost_usd=None,
    )


def replace(plan: PlannedTransfer, **changes: Any) -> PlannedTransfer:
    return dataclasses.replace(plan, **changes)


POLICY = f"""
[networks.ethereum]
chain_id = 31337
path_prefixes = ["{EVM_ACCOUNT}"]
max_fee_per_transaction = "0.01"
max_fee_per_request = "0.05"

[networks.ethereum.assets]
ETH = {{ decimals = 18 }}
USDT = {{ contract = "{DEVNET_USDT}", decimals = 6 }}

[networks.ethereum.purposes.sweep]
destinations = ["{EVM_TREASURY}", "{EVM_OTHER}"]

[networks.ethereum.purposes.fee_topup]
destinations = "own"

[networks.tron]
path_prefixes = ["{TRON_ACCOUNT}"]
max_fee_per_transaction = "40"
max_fee_per_request = "100"

[networks.tron.assets]
TRX = {{ decimals = 6 }}
USDT = {{ contract = "{TRON_USDT}", decimals = 6 }}

[networks.tron.purposes.sweep]
destinations = ["{TRON_TREASURY}"]

[networks.tron.purposes.fee_topup]
destinations = "own"
"""


def signer(directory: Path, mnemonic: str = MNEMONIC) -> Signer:
    path = directory / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    path.chmod(0o600)
    return Signer(Seed(mnemonic), Policy.load(path))


async def make_batch(
    ctx: GatewayContext, planned: list[PlannedTransfer], *, kind: str = "sweep"
) -> str:
    async with ctx.db.transaction() as session:
        batch = await repository.create_batch(
            session,
            kind=kind,
            network=planned[0].network,
            created_by="test",
            planned=planned,
            summary=summary_for(planned, kind),
        )
        return batch.id


async def issue(ctx: GatewayContext, batch_id: str) -> str:
    async with ctx.db.transaction() as session:
        return await repository.issue_request(session, batch_id, by="test")


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Every outgoing row as it is, and how many outgoing events were written."""

    batches: list[tuple[Any, ...]]
    transfers: list[tuple[Any, ...]]
    events: int


async def snapshot(ctx: GatewayContext) -> Snapshot:
    async with ctx.db.sessions() as session:
        batches = (await session.execute(select(OutgoingBatch).order_by(OutgoingBatch.id))).all()
        transfers = (
            await session.execute(select(OutgoingTransfer).order_by(OutgoingTransfer.id))
        ).all()
        events = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.routing_key == "outgoing.transfer.updated")
        )
        return Snapshot(
            [_row(b) for (b,) in batches], [_row(t) for (t,) in transfers], int(events or 0)
        )


def _row(obj: Any) -> tuple[Any, ...]:
    return tuple(getattr(obj, c.key) for c in obj.__table__.columns)


async def transfers_of(ctx: GatewayContext, batch_id: str) -> list[OutgoingTransfer]:
    async with ctx.db.sessions() as session:
        return await repository.batch_transfers(session, batch_id)


async def events_of(ctx: GatewayContext, transfer_id: str) -> list[dict[str, Any]]:
    async with ctx.db.sessions() as session:
        rows = await session.scalars(
            select(OutboxMessage.body)
            .where(OutboxMessage.routing_key == "outgoing.transfer.updated")
            .order_by(OutboxMessage.id)
        )
        return [b for b in rows if b["data"]["transfer_id"] == transfer_id]
