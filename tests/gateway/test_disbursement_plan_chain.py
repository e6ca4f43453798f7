"""plan_disbursements against anvil: which address pays each refund and payout, the fee
top-ups, the exact gas of each transfer, the one-round rule, and what a canceled round
and a merchant's cancel do to the refunds in it.

The deposit addresses come from a random BIP-44 account of the test mnemonic, so the
shared chain holds exactly the balances this test put there.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy import select, update

from stablegate_gateway.addresses.models import DepositAddress
from stablegate_gateway.balances.models import Balance
from stablegate_gateway.context import GatewayContext
from stablegate_gateway.disbursements import service
from stablegate_gateway.disbursements.models import Disbursement
from stablegate_gateway.disbursements.planning import plan_disbursements
from stablegate_gateway.disbursements.schemas import CreatePayout, CreateRefund
from stablegate_gateway.intents.models import PaymentIntent
from stablegate_gateway.merchants.service import create_merchant
from stablegate_gateway.outgoing import repository
from stablegate_gateway.outgoing.config import OutgoingSettings
from stablegate_gateway.outgoing.models import OutgoingTransfer
from stablegate_gateway.outgoing.sweep_config import SweepSettings
from stablegate_signer.keys import Seed
from tests.fixtures.anvil import AnvilChain, fresh_address
from tests.fixtures.payments import create_intent

SEED = Seed("test test test test test test test test test test test junk")
USDT = 10**6


async def paid(ctx: GatewayContext, merchant_id: str, amount: int) -> PaymentIntent:
    """An intent whose `amount` the gateway counts as confirmed (the chain is funded by
    the caller)."""
    intent = await create_intent(ctx, merchant_id, network="ethereum")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(PaymentIntent)
            .where(PaymentIntent.id == intent.id)
            .values(status="paid", amount_confirmed_base_units=amount)
        )
    return intent


async def transfers_of(ctx: GatewayContext, batch_id: str) -> list[OutgoingTransfer]:
    async with ctx.db.sessions() as session:
        return await repository.batch_transfers(session, batch_id)


async def row(ctx: GatewayContext, disbursement_id: str) -> Disbursement:
    async with ctx.db.sessions() as session:
        found = await session.get(Disbursement, disbursement_id)
    assert found is not None
    return found


async def plan(ctx: GatewayContext) -> list[Any]:
    async with ctx.db.transaction() as session:
        return await plan_disbursements(session, ctx, "ethereum", "test")


async def test_refunds_from_their_deposit_address_or_the_payout_wallet_and_a_payout(
    anvil: AnvilChain, sweep_ctx: Callable[..., Any]
) -> None:
    account = 1000 + secrets.randbelow(2**30)
    fee_wallet = to_checksum_address(await anvil.new_account(10**20))
    payout_wallet = to_checksum_address(fresh_address())
    outgoing = OutgoingSettings(
        fee_wallet_address_ethereum=fee_wallet,
        payout_wallet_address_ethereum=payout_wallet,
        fee_wallet_path_ethereum=f"m/44'/60'/{account}'/1/0",
        payout_wallet_path_ethereum=f"m/44'/60'/{account}'/1/1",
    )
    ctx: GatewayContext = await sweep_ctx(
        anvil.assets_file,
        SweepSettings(rpc_url_ethereum=anvil.rpc_url),
        outgoing,
        evm_xpub=SEED.account_xpub(f"m/44'/60'/{account}'"),
    )
    async with ctx.db.transaction() as session:
        created = await create_merchant(session, ctx, name="Refunds", mode="test")
    merchant, key = created.merchant.id, created.api_key.id
    held = await paid(ctx, merchant, 50 * USDT)  # still holds its funds
    swept = await paid(ctx, merchant, 30 * USDT)  # its funds already went to the treasury
    await anvil.transfer(anvil.usdt, held.deposit_address, 50 * USDT)
    await anvil.transfer(anvil.usdt, payout_wallet, 100 * USDT)
    await anvil.mine(ctx.confirmations_for("ethereum"))
    customer = to_checksum_address(fresh_address())
    async with ctx.db.transaction() as session:
        from_deposit = await service.create_refund(
            session, ctx, merchant, key,
            CreateRefund(payment_intent=held.id, destination_address=customer, amount="20"),
        )  # fmt: skip
        from_wallet = await service.create_refund(
            session, ctx, merchant, key,
            CreateRefund(payment_intent=swept.id, destination_address=customer, amount="30"),
        )  # fmt: skip

    (batch,) = await plan(ctx)

    assert batch.kind == "refund"
    transfers = await transfers_of(ctx, batch.id)
    refunds = {t.reference: t for t in transfers if t.purpose == "refund"}
    topups = [t for t in transfers if t.purpose == "fee_topup"]
    assert set(refunds) == {from_deposit.id, from_wallet.id}
    one, two = refunds[from_deposit.id], refunds[from_wallet.id]
    assert (one.source_address, one.amount_base_units) == (held.deposit_address, 20 * USDT)
    assert (two.source_address, two.amount_base_units) == (payout_wallet.lower(), 30 * USDT)
    assert {one.destination_address, two.destination_address} == {customer.lower()}
    assert {one.merchant_id, two.merchant_id} == {merchant}
    async with ctx.db.sessions() as session:
        index = await session.scalar(
            select(DepositAddress.derivation_index).where(
                DepositAddress.id == held.deposit_address_id
            )
        )
    assert one.source_path == f"m/44'/60'/{account}'/0/{index}"
    assert two.source_path == f"m/44'/60'/{account}'/1/1"
    # The fee wallet tops each source up, and each refund waits for its top-up.
    assert sorted(t.destination_address for t in topups) == sorted(
        [held.deposit_address, payout_wallet.lower()]
    )
    for refund in (one, two):
        [topup] = [t for t in topups if t.destination_address == refund.source_address]
        assert refund.depends_on == topup.id
        assert topup.amount_base_units == refund.gas_limit * refund.max_fee_per_gas  # type: ignore[operator]
        estimate = int(
            await anvil.rpc(
                "eth_estimateGas",
                anvil.call_request(
                    refund.source_address,
                    anvil.usdt,
                    "transfer(address,uint256)",
                    customer,
                    refund.amount_base_units,
                ),
            ),
            16,
        )
        assert refund.gas_limit == -(-estimate * 5 // 4)
    assert (await row(ctx, from_deposit.id)).source == "deposit_address"
    assert (await row(ctx, from_wallet.id)).source == "payout_wallet"
    assert (await row(ctx, from_deposit.id)).transfer_id == one.id
    # The signing request carries exactly what was asked.
    [signed_for] = [
        tx for tx in json.loads(batch.request_document)["transactions"] if tx["id"] == one.id
    ]
    assert signed_for["purpose"] == "refund"
    assert signed_for["destination"] == {"address": customer, "path": None}
    assert signed_for["amount"] == {"base_units": str(20 * USDT), "decimal": "20"}

    # One round per network at a time.
    async with ctx.db.transaction() as session:
        session.add(
            Balance(merchant_id=merchant, network="ethereum", asset="USDT", decimals=6,
                    available_base_units=80 * USDT, reserved_base_units=0, sequence=1)
        )  # fmt: skip
        payout = await service.create_payout(
            session, ctx, merchant, key,
            CreatePayout(amount="25", asset="USDT", network="ethereum",
                         destination_address=customer),
        )  # fmt: skip
    assert await plan(ctx) == []

    # Ops cancel the round before it is signed: both refunds are planned again.
    async with ctx.db.transaction() as session:
        await repository.cancel_batch(session, batch.id, by="ops")
    for refund_id, source in ((from_deposit.id, one), (from_wallet.id, two)):
        again = await row(ctx, refund_id)
        assert (again.status, again.transfer_id) == ("pending", None)
        assert again.source_address == source.source_address  # pinned for the re-plan
    (second,) = await plan(ctx)
    assert second.kind == "refund"
    replanned = {t.reference: t.source_address for t in await transfers_of(ctx, second.id)}
    assert replanned[from_deposit.id] == held.deposit_address
    assert replanned[from_wallet.id] == payout_wallet.lower()

    # The merchant cancels one while its round is only planned: the round goes, the other
    # refund waits for the next.
    async with ctx.db.transaction() as session:
        await service.cancel(session, ctx, merchant, "refund", from_wallet.id)
    assert (await row(ctx, from_wallet.id)).status == "canceled"
    assert (await row(ctx, from_deposit.id)).status == "pending"
    async with ctx.db.sessions() as session:
        states = set(
            await session.scalars(
                select(OutgoingTransfer.state).where(OutgoingTransfer.batch_id == second.id)
            )
        )
    assert states == {"canceled"}

    # Refunds first; the payout comes from the merchant's fullest deposit address.
    (third,) = await plan(ctx)
    assert third.kind == "refund"
    async with ctx.db.transaction() as session:
        await repository.cancel_batch(session, third.id, by="ops")
        await service.cancel(session, ctx, merchant, "refund", from_deposit.id)
    (fourth,) = await plan(ctx)
    assert fourth.kind == "payout"
    [carrier] = [t for t in await transfers_of(ctx, fourth.id) if t.purpose == "payout"]
    assert (carrier.reference, carrier.source_address) == (payout.id, held.deposit_address)
