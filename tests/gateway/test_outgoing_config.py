"""Funds-out settings: bad treasury or fee wallet addresses stop the start with an error
naming the variable; the fee wallet must derive from the account xpub at its path."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stablegate_gateway.outgoing.config import OutgoingSettings, check_fee_wallets
from stablegate_gateway.settings import GatewayConfig, GatewaySettings
from tests.gateway.outgoing_support import (
    EVM_FEE,
    EVM_TREASURY,
    EVM_XPUB,
    SEED,
    TRON_FEE,
    TRON_TREASURY,
    TRON_XPUB,
)

GOOD: dict[str, Any] = {
    "treasury_address_ethereum": EVM_TREASURY,
    "fee_wallet_address_ethereum": EVM_FEE,
    "treasury_address_tron": TRON_TREASURY,
    "fee_wallet_address_tron": TRON_FEE,
}


def _settings(**values: Any) -> OutgoingSettings:
    return OutgoingSettings(**(GOOD | values))


def test_good_settings_pass_and_answer_per_network() -> None:
    settings = _settings()
    check_fee_wallets(settings, evm_xpub=EVM_XPUB, tron_xpub=TRON_XPUB)
    assert settings.treasury("ethereum") == EVM_TREASURY
    assert settings.treasury("bsc") is None
    wallet = settings.fee_wallet("tron")
    assert wallet is not None
    assert wallet.path == "m/44'/195'/0'/1/0"
    assert not settings.ops_enabled


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        (
            {"treasury_address_ethereum": EVM_TREASURY.lower().replace("0x1", "0xA")},
            "TREASURY_ADDRESS_ETHEREUM",
        ),
        (
            {"treasury_address_ethereum": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"},
            "TREASURY_ADDRESS_ETHEREUM",
        ),
        ({"treasury_address_ethereum": TRON_TREASURY}, "TREASURY_ADDRESS_ETHEREUM"),
        ({"treasury_address_tron": EVM_TREASURY}, "TREASURY_ADDRESS_TRON"),
        ({"treasury_address_tron": TRON_TREASURY[:-1] + "J"}, "TREASURY_ADDRESS_TRON"),
        ({"fee_wallet_address_ethereum": ""}, "FEE_WALLET_ADDRESS_ETHEREUM"),
        ({"fee_wallet_path_ethereum": "m/44'/195'/0'/1/0"}, "FEE_WALLET_PATH_ETHEREUM"),
        ({"fee_wallet_path_tron": "m/44'/195'/0'/2/0"}, "FEE_WALLET_PATH_TRON"),
        ({"treasury_address_bsc": "0x" + "0" * 40}, "TREASURY_ADDRESS_BSC"),
        ({"ops_token": "short"}, "OPS_TOKEN"),
    ],
)
def test_a_bad_value_names_its_variable(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValidationError) as info:
        _settings(**values)
    assert f"GATEWAY_{variable}" in str(info.value)


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        # Another address of ours, but not the one at the path.
        (
            {"fee_wallet_address_ethereum": SEED.address("m/44'/60'/0'/1/1", "ethereum")},
            "FEE_WALLET_ADDRESS_ETHEREUM",
        ),
        (
            {"fee_wallet_address_tron": SEED.address("m/44'/195'/0'/0/0", "tron")},
            "FEE_WALLET_ADDRESS_TRON",
        ),
        ({"fee_wallet_path_ethereum": "m/44'/60'/1'/1/0"}, "FEE_WALLET_PATH_ETHEREUM"),
    ],
)
def test_a_fee_wallet_that_does_not_derive_from_the_xpub_is_refused(
    values: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ValueError, match=f"GATEWAY_{variable}"):
        check_fee_wallets(_settings(**values), evm_xpub=EVM_XPUB, tron_xpub=TRON_XPUB)


def test_a_fee_wallet_without_its_xpub_is_refused() -> None:
    with pytest.raises(ValueError, match="GATEWAY_TRON_XPUB"):
        check_fee_wallets(_settings(), evm_xpub=EVM_XPUB, tron_xpub="")


def test_the_gateway_settings_refuse_to_start_with_a_foreign_fee_wallet() -> None:
    other = SEED.address("m/44'/60'/0'/1/7", "ethereum")
    with pytest.raises(ValidationError, match="GATEWAY_FEE_WALLET_ADDRESS_ETHEREUM"):
        GatewaySettings(
            environment="test",
            gateway=GatewayConfig(evm_xpub=EVM_XPUB, tron_xpub=TRON_XPUB),
            outgoing=_settings(fee_wallet_address_ethereum=other),
        )
    ok = GatewaySettings(
        environment="test",
        gateway=GatewayConfig(evm_xpub=EVM_XPUB, tron_xpub=TRON_XPUB),
        outgoing=_settings(),
    )
    assert ok.outgoing.treasury("tron") == TRON_TREASURY
