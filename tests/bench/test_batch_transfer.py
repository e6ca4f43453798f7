"""`batchTransfer` of the devnet's test token, which the benchmarks fill blocks with."""

from __future__ import annotations

import pytest

from stablegate_common.chains.evm import TRANSFER_TOPIC
from tests.fixtures.anvil import AnvilChain, AnvilRpcError, fresh_address

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_batch_transfer_pays_each_recipient_with_its_own_transfer_log(
    anvil: AnvilChain,
) -> None:
    sender = await anvil.new_account()
    await anvil.mint(anvil.usdt, sender, 1_000)
    recipients = [fresh_address() for _ in range(3)]
    request = anvil.call_request(
        sender,
        anvil.usdt,
        "batchTransfer(address[],uint256[])",
        recipients,
        [100, 200, 300],
    )
    receipt = await anvil.receipt(await anvil.send(request))

    assert receipt["status"] == "0x1"
    assert [await anvil.balance_of(anvil.usdt, r) for r in recipients] == [100, 200, 300]
    assert await anvil.balance_of(anvil.usdt, sender) == 400
    logs = [log for log in receipt["logs"] if log["topics"][0] == TRANSFER_TOPIC]
    assert ["0x" + log["topics"][2][-40:] for log in logs] == recipients
    assert [int(log["data"], 16) for log in logs] == [100, 200, 300]


@pytest.mark.parametrize(("recipients", "amounts"), [(2, 1), (1, 2)])
async def test_batch_transfer_refuses_lists_of_different_lengths(
    anvil: AnvilChain, recipients: int, amounts: int
) -> None:
    sender = await anvil.new_account()
    await anvil.mint(anvil.usdt, sender, 1_000)
    request = anvil.call_request(
        sender,
        anvil.usdt,
        "batchTransfer(address[],uint256[])",
        [fresh_address() for _ in range(recipients)],
        [1] * amounts,
    )
    with pytest.raises(AnvilRpcError, match="revert"):
        await anvil.rpc("eth_call", request, "latest")


async def test_batch_transfer_is_all_or_nothing(anvil: AnvilChain) -> None:
    sender = await anvil.new_account()
    await anvil.mint(anvil.usdt, sender, 150)
    first, second = fresh_address(), fresh_address()
    request = anvil.call_request(
        sender, anvil.usdt, "batchTransfer(address[],uint256[])", [first, second], [100, 100]
    )
    # An explicit gas limit skips estimation, so the failing transaction is mined.
    receipt = await anvil.receipt(await anvil.send({**request, "gas": hex(300_000)}))
    assert receipt["status"] == "0x0"
    assert await anvil.balance_of(anvil.usdt, first) == 0
    assert await anvil.balance_of(anvil.usdt, sender) == 150
