"""What the devnet starts with: its settings, the dev accounts (known keys, test data only),
the token contracts at fixed addresses, and the genesis ledger that funds them.

Dev accounts come from the published test mnemonic "test … junk" on m/44'/195'/0'/0/i,
not from the "abandon … about" mnemonic the gateway's devnet xpub uses, so a payer is
never also a deposit address. Index 99 is the faucet, which also produces the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins

from devnet.tron.encoding import Hex41, address_of_key, to_base58, to_hex41
from devnet.tron.ledger import Account, Ledger
from devnet.tron.tokens import TokenSpec

DEV_MNEMONIC = "test test test test test test test test test test test junk"
FAUCET_INDEX = 99
SUN_PER_TRX = 1_000_000

USDT = TokenSpec(
    symbol="USDT",
    name="Tether USD",
    decimals=6,
    address=to_hex41("TV6BCWFzTBXyqQVMPizimCG21ugX9XVseB"),
    contract_name="TetherToken",
    energy_to_holder=64_285,
    energy_to_empty=130_285,
    returns_false=True,
)
USDC = TokenSpec(
    symbol="USDC",
    name="USD Coin",
    decimals=6,
    address=to_hex41("TDE7rjCSbiibqkoFsBt5f8pTmDbuEr7aca"),
    contract_name="FiatTokenProxy",
    energy_to_holder=64_285,
    energy_to_empty=130_285,
)
# Same face as USDT, another address: it must never be credited (a registry allow-list test).
LOOKALIKE = TokenSpec(
    symbol="USDT",
    name="Tether USD",
    decimals=6,
    address=to_hex41("TQGgjRxoxyebzuvs7JAtcxS62QwyCooNwu"),
    contract_name="TetherToken",
    energy_to_holder=14_610,
    energy_to_empty=29_610,
)
TOKENS = {"USDT": USDT, "USDC": USDC, "LOOKALIKE": LOOKALIKE}


@dataclass(frozen=True)
class DevnetConfig:
    block_time: float = 3.0  # seconds; 0 = blocks only when asked (`mine`)
    solidification_depth: int = 19
    accounts: int = 10
    trx_per_account: int = 10_000  # whole TRX
    token_holders: int = 5  # accounts 0..n-1 get `tokens_per_holder` of each token
    tokens_per_holder: int = 1_000_000  # whole tokens
    premine: bool = True  # mine past the solidification depth so the solid block is > 0


@dataclass(frozen=True)
class DevAccount:
    index: int
    private_key: str  # hex, test data only
    address: Hex41

    @property
    def base58(self) -> str:
        return to_base58(self.address)

    def as_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "address": self.base58,
            "hex": self.address,
            "private_key": self.private_key,
        }


def derive_accounts(indexes: list[int]) -> list[DevAccount]:
    seed = Bip39SeedGenerator(DEV_MNEMONIC).Generate()
    chain = (
        Bip44.FromSeed(seed, Bip44Coins.TRON)
        .Purpose()
        .Coin()
        .Account(0)
        .Change(Bip44Changes.CHAIN_EXT)
    )
    accounts = []
    for index in indexes:
        key: str = chain.AddressIndex(index).PrivateKey().Raw().ToHex()
        accounts.append(DevAccount(index, key, address_of_key(key)))
    return accounts


def genesis_ledger(
    config: DevnetConfig, accounts: list[DevAccount], faucet: DevAccount, now_ms: int
) -> Ledger:
    ledger = Ledger()
    for account in accounts:
        balance = config.trx_per_account * SUN_PER_TRX
        ledger.accounts[account.address] = Account(balance=balance, create_time=now_ms)
    # The faucet funds tests for the whole session: effectively unlimited.
    ledger.accounts[faucet.address] = Account(balance=10**11 * SUN_PER_TRX, create_time=now_ms)
    for spec in TOKENS.values():
        units = config.tokens_per_holder * 10**spec.decimals
        balances = {a.address: units for a in accounts[: config.token_holders]}
        balances[faucet.address] = 10**12 * 10**spec.decimals
        ledger.tokens[spec.address] = balances
    return ledger
