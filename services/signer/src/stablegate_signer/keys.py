"""The seed and the keys derived from it. Nothing here is ever logged, printed or repr'd."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from pathlib import Path

import coincurve
from bip_utils import Bip32Secp256k1, Bip39MnemonicValidator, Bip39SeedGenerator

from stablegate_signer.addresses import evm_address_from_public_key, tron_address_from_public_key
from stablegate_signer.errors import SeedError
from stablegate_signer.files import ownership_problem

SEED_ENV = "STABLEGATE_SIGNER_SEED"


class Seed:
    """A BIP-39 mnemonic's BIP-32 master key; derives private keys and addresses by path."""

    __slots__ = ("_cache", "_master")

    def __init__(self, mnemonic: str) -> None:
        words = " ".join(unicodedata.normalize("NFKD", mnemonic).split())
        try:
            valid = Bip39MnemonicValidator().IsValid(words)
        except Exception:  # bip-utils raises on unknown words; say nothing about them
            valid = False
        if not valid:
            raise SeedError("the seed is not a valid BIP-39 mnemonic") from None
        self._master = Bip32Secp256k1.FromSeed(Bip39SeedGenerator(words).Generate())
        self._cache: dict[str, bytes] = {}

    def __repr__(self) -> str:
        return "Seed(<hidden>)"

    def private_key(self, path: str) -> bytes:
        if path not in self._cache:
            node = self._master.DerivePath(path)
            self._cache[path] = bytes(node.PrivateKey().Raw().ToBytes())
        return self._cache[path]

    def account_xpub(self, path: str) -> str:
        """The extended public key at an account path (m/44'/60'/0'): what the gateway holds."""
        return str(self._master.DerivePath(path).PublicKey().ToExtended())

    def address(self, path: str, network: str) -> str:
        public = coincurve.PrivateKey(self.private_key(path)).public_key.format(compressed=False)[
            1:
        ]
        if network == "tron":
            return tron_address_from_public_key(public)
        return evm_address_from_public_key(public)


def read_seed(seed_file: Path | None, prompt: Callable[[str], str] | None) -> Seed:
    """From `--seed-file`, else STABLEGATE_SIGNER_SEED, else the prompt (getpass)."""
    if seed_file is not None:
        try:
            text = seed_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SeedError(f"cannot read the seed file {seed_file}: {exc.strerror}") from None
        problem = ownership_problem(seed_file, "seed file", secret=True)
        if problem is not None:
            raise SeedError(problem)
        return Seed(text)
    # Popped, not read: children would inherit it and /proc/self/environ would show it.
    from_env = os.environ.pop(SEED_ENV, None)
    if from_env:
        return Seed(from_env)
    if prompt is None:
        raise SeedError(f"no seed: give --seed-file or set {SEED_ENV}")
    return Seed(prompt("BIP-39 seed (input hidden): "))
