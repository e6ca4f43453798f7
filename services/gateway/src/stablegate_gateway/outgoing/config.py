"""Funds-out configuration (env prefix `GATEWAY_`): per network the treasury that sweeps
go to, the fee wallet that pays gas, the payout wallet that refunds and payouts are paid
from once the intent's own deposit address no longer holds the funds, the ops API's token,
and the broadcast timings.

Addresses and derivation paths only, never a key. The fee and payout wallets are derived
by the business's signer at reserved internal-chain paths of the same account the
deposit addresses come from, so the gateway checks each configured address against the
account xpub at start (`check_fee_wallets`): a mistyped address would have transfers
signed by a key nobody expects. Every error names the variable to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stablegate_common.hd import AddressDeriver
from stablegate_signer.documents import check_address

OUTGOING_NETWORKS = ("ethereum", "bsc", "tron")
COIN_TYPES = {"ethereum": 60, "bsc": 60, "tron": 195}
FAMILIES = {"ethereum": "evm", "bsc": "evm", "tron": "tron"}
MIN_OPS_TOKEN = 32
_PATH = re.compile(r"m/44'/(\d+)'/(\d+)'/([01])/(0|[1-9]\d{0,9})")


@dataclass(frozen=True)
class FeeWallet:
    address: str  # as configured (EIP-55 / base58check)
    path: str


class OutgoingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    treasury_address_ethereum: str = Field("", description="EIP-55; empty: no sweeps")
    treasury_address_bsc: str = Field("", description="EIP-55; empty: no sweeps")
    treasury_address_tron: str = Field("", description="base58check T…; empty: no sweeps")
    fee_wallet_address_ethereum: str = ""
    fee_wallet_address_bsc: str = ""
    fee_wallet_address_tron: str = ""
    fee_wallet_path_ethereum: str = "m/44'/60'/0'/1/0"
    fee_wallet_path_bsc: str = "m/44'/60'/0'/1/0"
    fee_wallet_path_tron: str = "m/44'/195'/0'/1/0"
    payout_wallet_address_ethereum: str = Field("", description="EIP-55; empty: none")
    payout_wallet_address_bsc: str = Field("", description="EIP-55; empty: none")
    payout_wallet_address_tron: str = Field("", description="base58check T…; empty: none")
    payout_wallet_path_ethereum: str = "m/44'/60'/0'/1/1"
    payout_wallet_path_bsc: str = "m/44'/60'/0'/1/1"
    payout_wallet_path_tron: str = "m/44'/195'/0'/1/1"
    ops_token: SecretStr = Field(
        SecretStr(""), description="bearer token of the ops API (/ops/v1); empty: it is off"
    )
    outgoing_rebroadcast_seconds: int = Field(30, ge=1)
    outgoing_stuck_seconds: int = Field(600, ge=30)
    outgoing_tron_expiration_seconds: int = Field(
        3000, ge=60, le=86_400, description="the signer's policy allows 3600 by default"
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        for network in OUTGOING_NETWORKS:
            for role in ("treasury_address", "fee_wallet_address", "payout_wallet_address"):
                _check_address(self, role, network)
            for role in ("fee_wallet", "payout_wallet"):
                _check_path(self, network, role)
            treasury = getattr(self, f"treasury_address_{network}").strip()
            fee = getattr(self, f"fee_wallet_address_{network}").strip()
            if treasury and not fee:
                raise ValueError(
                    f"{_var('fee_wallet_address', network)}: required when "
                    f"{_var('treasury_address', network)} is set (it pays the sweeps' fees)"
                )
            if treasury and treasury == fee:
                raise ValueError(
                    f"{_var('treasury_address', network)}: the treasury is not the fee wallet"
                )
            payout = getattr(self, f"payout_wallet_address_{network}").strip()
            if payout and not fee:
                raise ValueError(
                    f"{_var('fee_wallet_address', network)}: required when "
                    f"{_var('payout_wallet_address', network)} is set (it pays its fees)"
                )
            if payout and payout in (fee, treasury):
                raise ValueError(
                    f"{_var('payout_wallet_address', network)}: the payout wallet is neither "
                    "the fee wallet nor the treasury"
                )
            if payout and _path(self, "payout_wallet", network) == _path(
                self, "fee_wallet", network
            ):
                raise ValueError(
                    f"{_var('payout_wallet_path', network)}: the payout wallet needs a path of "
                    "its own (the fee wallet's is "
                    f"{_path(self, 'fee_wallet', network)})"
                )
        token = self.ops_token.get_secret_value()
        if token and len(token) < MIN_OPS_TOKEN:
            raise ValueError(
                f"GATEWAY_OPS_TOKEN: at least {MIN_OPS_TOKEN} characters (it lets its holder "
                "plan, issue and accept outgoing transactions)"
            )
        return self

    def treasury(self, network: str) -> str | None:
        value: str = getattr(self, f"treasury_address_{network}", "").strip()
        return value or None

    def fee_wallet(self, network: str) -> FeeWallet | None:
        return self.wallet("fee_wallet", network)

    def payout_wallet(self, network: str) -> FeeWallet | None:
        return self.wallet("payout_wallet", network)

    def wallet(self, role: str, network: str) -> FeeWallet | None:
        address: str = getattr(self, f"{role}_address_{network}", "").strip()
        if not address:
            return None
        return FeeWallet(address, _path(self, role, network))

    @property
    def ops_enabled(self) -> bool:
        return bool(self.ops_token.get_secret_value())


def _var(role: str, network: str) -> str:
    return f"GATEWAY_{role.upper()}_{network.upper()}"


def _check_address(settings: OutgoingSettings, role: str, network: str) -> None:
    value: str = getattr(settings, f"{role}_{network}").strip()
    if not value:
        return
    try:
        check_address(value, network)
    except ValueError as exc:
        form = "a base58check Tron address (T…)" if network == "tron" else "EIP-55 checksummed"
        raise ValueError(f"{_var(role, network)}: must be {form}: {exc}") from None
    if network != "tron" and int(value, 16) == 0:
        raise ValueError(f"{_var(role, network)}: the zero address")


def _path(settings: OutgoingSettings, role: str, network: str) -> str:
    path: str = getattr(settings, f"{role}_path_{network}")
    return path.strip()


def _check_path(settings: OutgoingSettings, network: str, role: str) -> None:
    path = _path(settings, role, network)
    match = _PATH.fullmatch(path)
    if match is None or int(match.group(1)) != COIN_TYPES[network]:
        raise ValueError(
            f"{_var(f'{role}_path', network)}: {path!r} is not "
            f"m/44'/{COIN_TYPES[network]}'/ACCOUNT'/CHANGE/INDEX (change 0 or 1)"
        )


def check_fee_wallets(settings: OutgoingSettings, *, evm_xpub: str, tron_xpub: str) -> None:
    """Each configured fee and payout wallet derives from its family's account xpub at
    its path."""
    xpubs = {"evm": evm_xpub.strip(), "tron": tron_xpub.strip()}
    for network in OUTGOING_NETWORKS:
        for role in ("fee_wallet", "payout_wallet"):
            wallet = settings.wallet(role, network)
            if wallet is not None:
                _check_derived(wallet, role, network, xpubs)


def _check_derived(wallet: FeeWallet, role: str, network: str, xpubs: dict[str, str]) -> None:
    family = FAMILIES[network]
    xpub_var = f"GATEWAY_{family.upper()}_XPUB"
    if not xpubs[family]:
        raise ValueError(
            f"{_var(f'{role}_address', network)}: cannot be checked without {xpub_var}"
        )
    deriver = AddressDeriver(xpubs[family], family, setting=xpub_var)  # type: ignore[arg-type]
    match = _PATH.fullmatch(wallet.path)
    assert match is not None  # checked by the settings
    account, change, index = (int(g) for g in match.groups()[1:])
    if account != deriver.account_index:
        raise ValueError(
            f"{_var(f'{role}_path', network)}: account {account}' is not the account "
            f"of {xpub_var} ({deriver.account_index}')"
        )
    derived = deriver.derive_at(change, index)
    configured = wallet.address.lower() if family == "evm" else wallet.address
    if derived != configured:
        raise ValueError(
            f"{_var(f'{role}_address', network)}: {wallet.address} is not the address "
            f"{xpub_var} derives at {_var(f'{role}_path', network)} ({wallet.path}); "
            "print it on the signer machine with `stablegate-signer address`"
        )
