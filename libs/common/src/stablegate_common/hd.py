"""Watch-only HD derivation of deposit addresses from an account-level xpub.

The gateway holds only the account xpub of each network family (EVM `m/44'/60'/0'`, Tron
`m/44'/195'/0'`) and derives the external chain `0/i` non-hardened (and, to check the fee
wallet's configured address, the internal chain `1/i`), so no private key
ever reaches it: an extended private key is refused at construction, before it is used.
Addresses come out in the canonical form of `stablegate_common.core.addresses`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from bip_utils import Bip44, Bip44Changes, Bip44Coins, Bip44DepthError, Bip44Levels

from stablegate_common.core.addresses import canonical_address

Family = Literal["evm", "tron"]

# Account xpubs of the published BIP-39 test mnemonic "abandon" (x11) "about"; anyone can spend
# from these addresses, so production must refuse them (see `is_devnet_xpub`).
DEVNET_EVM_XPUB = (
    "xpub6DCoCpSuQZB2jawqnGMEPS63ePKWkwWPH4TU45Q7LPXWuNd8TMtVxRrgjtEshu"
    "qpK3mdhaWHPFsBngh5GFZaM6si3yZdUsT8ddYM3PwnATt"
)
DEVNET_TRON_XPUB = (
    "xpub6D1AabNHCupeiLM65ZR9UStMhJ1vCpyV4XbZdyhMZBiJXALQtmn9p42VTQckoH"
    "Vn8WNqS7dqnJokZHAHcHGoaQgmv8D45oNUKx6DZMNZBCd"
)

_COINS: dict[str, Bip44Coins] = {"evm": Bip44Coins.ETHEREUM, "tron": Bip44Coins.TRON}
# Non-hardened child indexes; a hardened index cannot be derived from a public key.
MAX_INDEX = 2**31 - 1


def is_devnet_xpub(xpub: str) -> bool:
    """True for the well-known test xpubs, whose private keys are public knowledge."""
    return xpub.strip() in {DEVNET_EVM_XPUB, DEVNET_TRON_XPUB}


class AddressDeriver:
    """Derives `account/0/i` addresses of one family from an account xpub.

    `setting` names the configuration variable the xpub came from, so a start-up error says
    which one to fix. The key itself never appears in an error message.
    """

    def __init__(self, xpub: str, family: Family, *, setting: str = "xpub") -> None:
        if family not in _COINS:
            raise ValueError(f"{setting}: unknown network family {family!r} (evm or tron)")
        self.family: Family = family
        self.xpub = xpub.strip()  # public by nature; a process pool re-derives from it
        account = _parse_account_key(self.xpub, family, setting)
        self._external = account.Change(Bip44Changes.CHAIN_EXT)
        self._internal = account.Change(Bip44Changes.CHAIN_INT)
        # The account's own index (hardened), so a full path can be checked against it.
        self.account_index = int(account.Bip32Object().Index().ToInt()) - 2**31

    def derive(self, index: int) -> str:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
            raise ValueError(f"address index must be an int in 0..{MAX_INDEX}, got {index!r}")
        address: str = self._external.AddressIndex(index).PublicKey().ToAddress()
        return canonical_address(self.family, address)

    def derive_at(self, change: int, index: int) -> str:
        """`account/change/index`: change 0 is the external chain (deposit addresses), 1 the
        internal chain the business reserves for its own wallets (the fee wallet)."""
        if change not in (0, 1):
            raise ValueError(f"change must be 0 (external) or 1 (internal), got {change!r}")
        if change == 0:
            return self.derive(index)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= MAX_INDEX:
            raise ValueError(f"address index must be an int in 0..{MAX_INDEX}, got {index!r}")
        address: str = self._internal.AddressIndex(index).PublicKey().ToAddress()
        return canonical_address(self.family, address)

    def derive_range(self, start: int, count: int) -> list[str]:
        if count < 0:
            raise ValueError(f"count must not be negative, got {count}")
        if count and start + count - 1 > MAX_INDEX:
            raise ValueError(f"address indexes {start}..{start + count - 1} exceed {MAX_INDEX}")
        return [self.derive(i) for i in range(start, start + count)]


def derive_addresses(xpub: str, family: Family, start: int, count: int) -> list[str]:
    """`AddressDeriver(xpub, family).derive_range(start, count)`, the deriver kept per
    process: what a process pool runs, since a deriver does not pickle and its xpub does."""
    return _cached_deriver(xpub, family).derive_range(start, count)


@lru_cache(maxsize=8)
def _cached_deriver(xpub: str, family: Family) -> AddressDeriver:
    return AddressDeriver(xpub, family)


def _parse_account_key(xpub: str, family: Family, setting: str) -> Bip44:
    # Cheap textual check first, so an obvious private key is refused without being decoded.
    if xpub[1:4] == "prv":
        raise ValueError(
            f"{setting} holds an extended PRIVATE key; configure the account xpub instead "
            "(no private key may reach the gateway)"
        )
    account_level = f"{setting} must be the account-level xpub (depth 3, m/44'/coin'/account')"
    try:
        account = Bip44.FromExtendedKey(xpub, _COINS[family])
    except Bip44DepthError:
        raise ValueError(account_level) from None
    except Exception as exc:  # bip-utils raises a dozen unrelated types for bad input
        # `from None`: the library's message may quote the key material.
        raise ValueError(
            f"{setting} is not a valid extended public key ({type(exc).__name__})"
        ) from None
    if not account.IsPublicOnly():
        raise ValueError(f"{setting} holds an extended PRIVATE key; configure the account xpub")
    if not account.IsLevel(Bip44Levels.ACCOUNT):
        raise ValueError(f"{account_level}, got depth {int(account.Level())}")
    return account
