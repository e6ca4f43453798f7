"""The signing documents: the request the gateway writes and the response the signer returns.

Both are versioned JSON. Every integer is a decimal string (no JSON numbers, no floats);
EVM addresses are EIP-55 checksummed, Tron addresses base58check. A request's `digest` is
`"sha256:" + hex(sha256(canonical_json(request without "digest")))`, where canonical JSON
is the document as this model re-serializes it (every field present, null for an absent
optional field), keys sorted, separators "," and ":", no whitespace, UTF-8, non-ASCII
kept as is. Only what the model defines is accepted (extra keys are refused), so nothing
in a document escapes both validation and the digest.

The signed fields are derived from the request's business fields, never taken as opaque
data: an EVM token transfer's `to` is the token contract and its `data` is
`transfer(destination, amount)`; a Tron contract's owner is the source. See `signable`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from stablegate_signer import strictjson
from stablegate_signer.addresses import is_evm_checksum_address, tron_address_bytes
from stablegate_signer.errors import DigestMismatch, InvalidDocument
from stablegate_signer.units import NATIVE_DECIMALS, NATIVE_SYMBOL, format_amount

REQUEST_FORMAT = "stablegate.signing_request"
RESPONSE_FORMAT = "stablegate.signed_response"
VERSION = 1
UINT256_MAX = 2**256 - 1
INT64_MAX = 2**63 - 1
TRX_SUN = 1_000_000
TRON_MAX_FEE_LIMIT = 15_000 * TRX_SUN
TRON_MAX_EXPIRATION_MS = 24 * 3600 * 1000
TRON_MAX_LOCK_PERIOD = 864_000
# Which chain ids a network may carry at all; the policy file pins the exact one.
CHAIN_IDS = {"ethereum": {1, 11155111, 17000, 31337}, "bsc": {56, 97, 31338}}
COIN_TYPES = {"ethereum": 60, "bsc": 60, "tron": 195}

# fullmatch, never `$` (which matches before a trailing newline); no leading zeros, so
# one number (or one key) has one spelling.
_UINT_RE = re.compile(r"0|[1-9][0-9]{0,77}")
_PATH_RE = re.compile(r"m(/(?:0|[1-9][0-9]{0,9})'?){1,10}")
_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"


def _parse_uint(value: object) -> int:
    # bool is an int subclass and JSON numbers lose precision elsewhere: strings only.
    if not isinstance(value, str) or not _UINT_RE.fullmatch(value):
        raise ValueError("must be a non-negative integer written as a decimal string")
    number = int(value)
    if number > UINT256_MAX:
        raise ValueError("exceeds 2**256 - 1")
    return number


Uint = Annotated[int, BeforeValidator(_parse_uint), PlainSerializer(str, return_type=str)]
Hex = Annotated[str, Field(pattern=r"^[0-9a-f]*$")]
Network = Literal["ethereum", "bsc", "tron"]
Purpose = Literal[
    "sweep",
    "fee_topup",
    "refund",
    "payout",
    "stake",
    "resource_delegation",
    "resource_undelegation",
]
TRANSFER_PURPOSES = frozenset({"sweep", "fee_topup", "refund", "payout"})
TRON_RESOURCE_CONTRACTS = {
    "stake": "FreezeBalanceV2Contract",
    "resource_delegation": "DelegateResourceContract",
    "resource_undelegation": "UnDelegateResourceContract",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def check_path(path: str, network: str) -> None:
    if not _PATH_RE.fullmatch(path):
        raise ValueError(f"derivation path {path!r} is not of the form m/44'/60'/0'/0/7")
    parts = path.split("/")[1:]
    if len(parts) < 2 or parts[0] != "44'" or parts[1] != f"{COIN_TYPES[network]}'":
        raise ValueError(f"a {network} path starts m/44'/{COIN_TYPES[network]}'")
    if any(int(p.rstrip("'")) >= 2**31 for p in parts):
        raise ValueError("a path index is below 2**31")


def check_address(address: str, network: str) -> None:
    if network == "tron":
        tron_address_bytes(address)
    elif not is_evm_checksum_address(address):
        raise ValueError(f"{address!r} is not an EIP-55 checksummed address")


def _check_address_at(field: str, address: str, network: str) -> None:
    try:
        check_address(address, network)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def _check_path_at(field: str, path: str, network: str) -> None:
    try:
        check_path(path, network)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def _is_zero_address(address: str, network: str) -> bool:
    if network == "tron":
        return tron_address_bytes(address)[1:] == bytes(20)
    return int(address, 16) == 0


class Endpoint(_Model):
    """An address; `path` is set when it is one of ours (derived from the business's seed)."""

    address: str = Field(min_length=1, max_length=64)
    path: str | None = None


class Asset(_Model):
    symbol: str = Field(pattern=r"^[A-Z0-9]{2,12}$")
    decimals: Uint
    contract: str | None = None  # None: the network's native coin

    @property
    def is_native(self) -> bool:
        return self.contract is None


class Amount(_Model):
    base_units: Uint
    decimal: str = Field(max_length=100)


class _TransactionBase(_Model):
    id: str = Field(pattern=_ID_RE)
    purpose: Purpose
    source: Endpoint
    destination: Endpoint | None
    asset: Asset
    amount: Amount

    def _check_common(self, network: str) -> None:
        _check_address_at("source.address", self.source.address, network)
        if self.source.path is None:
            raise ValueError("source.path: every source is derived from the seed")
        _check_path_at("source.path", self.source.path, network)
        if self.destination is not None:
            _check_address_at("destination.address", self.destination.address, network)
            if self.destination.path is not None:
                _check_path_at("destination.path", self.destination.path, network)
            if self.destination.address == self.source.address:
                raise ValueError("destination.address: equals the source")
            if _is_zero_address(self.destination.address, network):
                raise ValueError("destination.address: the zero address (a burn)")
            if self.destination.address == self.asset.contract:
                raise ValueError("destination.address: the token contract itself (a burn)")
        if self.asset.is_native:
            if self.asset.symbol != NATIVE_SYMBOL[network]:
                raise ValueError(f"asset.symbol: the native coin is {NATIVE_SYMBOL[network]}")
            if self.asset.decimals != NATIVE_DECIMALS[network]:
                raise ValueError(f"asset.decimals: {NATIVE_SYMBOL[network]} has 18 or 6")
        else:
            assert self.asset.contract is not None
            _check_address_at("asset.contract", self.asset.contract, network)
            if self.asset.decimals > 36:
                raise ValueError("asset.decimals: at most 36")
        if self.amount.base_units == 0:
            raise ValueError("amount.base_units: must be positive")
        expected = format_amount(self.amount.base_units, self.asset.decimals)
        if self.amount.decimal != expected:
            raise ValueError(f"amount.decimal: {self.amount.decimal!r} != {expected!r}")
        if self.purpose in TRANSFER_PURPOSES and self.destination is None:
            raise ValueError("destination: a transfer needs one")
        if self.purpose == "fee_topup":
            if not self.asset.is_native:
                raise ValueError("asset: a fee top-up moves the native coin")
            if self.destination is None or self.destination.path is None:
                raise ValueError("destination.path: a fee top-up goes to one of our addresses")


class _EvmBase(_TransactionBase):
    chain_id: Uint
    nonce: Uint
    gas: Uint

    def _check_evm(self, network: str) -> None:
        self._check_common(network)
        if self.chain_id not in CHAIN_IDS[network]:
            raise ValueError(f"chain_id: {self.chain_id} is not a {network} chain id")
        if self.purpose not in TRANSFER_PURPOSES:
            raise ValueError(f"purpose: {self.purpose} exists on Tron only")
        if self.nonce >= 2**64 - 1:
            raise ValueError("nonce: out of range")
        if not 21_000 <= self.gas <= 30_000_000:
            raise ValueError("gas: between 21000 and 30000000")


class EthereumTransaction(_EvmBase):
    """Signed as an EIP-1559 (type 2) transaction with an empty access list."""

    network: Literal["ethereum"]
    max_fee_per_gas: Uint
    max_priority_fee_per_gas: Uint

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check_evm("ethereum")
        if self.max_fee_per_gas == 0:
            raise ValueError("max_fee_per_gas: must be positive")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise ValueError("max_priority_fee_per_gas: exceeds max_fee_per_gas")
        return self

    @property
    def max_fee(self) -> int:
        return self.gas * self.max_fee_per_gas


class BscTransaction(_EvmBase):
    """Signed as a legacy transaction with EIP-155 replay protection (v = 2·chain_id + 35/36)."""

    network: Literal["bsc"]
    gas_price: Uint

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check_evm("bsc")
        if self.gas_price == 0:
            raise ValueError("gas_price: must be positive")
        return self

    @property
    def max_fee(self) -> int:
        return self.gas * self.gas_price


TronContractType = Literal[
    "TransferContract",
    "TriggerSmartContract",
    "FreezeBalanceV2Contract",
    "DelegateResourceContract",
    "UnDelegateResourceContract",
]


class TronTransaction(_TransactionBase):
    """A Tron transaction; the contract's parameters come from source/destination/amount.

    `ref_block_bytes` is block id hex [12:16] and `ref_block_hash` [16:32] of a recent
    (solidified) block; `expiration` and `timestamp` are milliseconds since the epoch.
    """

    network: Literal["tron"]
    contract_type: TronContractType
    ref_block_bytes: Annotated[str, Field(pattern=r"^[0-9a-f]{4}$")]
    ref_block_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    expiration: Uint
    timestamp: Uint
    fee_limit: Uint | None = None  # TriggerSmartContract only
    resource: Literal["ENERGY", "BANDWIDTH"] | None = None  # stake / (un)delegation only
    lock: bool | None = None  # delegation only
    lock_period: Uint | None = None  # delegation only, in blocks

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check_common("tron")
        expected = self.expected_contract_type()
        if self.contract_type != expected:
            raise ValueError(f"contract_type: {self.purpose} of this asset is {expected}")
        if (self.fee_limit is not None) != (expected == "TriggerSmartContract"):
            raise ValueError("fee_limit: set for a TriggerSmartContract and only for it")
        if self.fee_limit is not None and not 0 < self.fee_limit <= TRON_MAX_FEE_LIMIT:
            raise ValueError("fee_limit: between 1 sun and 15000 TRX")
        if (self.resource is not None) != (self.purpose in TRON_RESOURCE_CONTRACTS):
            raise ValueError("resource: set for stake and (un)delegation and only for them")
        is_delegation = self.purpose == "resource_delegation"
        if is_delegation != (self.lock is not None) or is_delegation != (
            self.lock_period is not None
        ):
            raise ValueError("lock, lock_period: set for a delegation and only for it")
        if self.lock_period is not None and (
            self.lock_period > TRON_MAX_LOCK_PERIOD or (self.lock_period and not self.lock)
        ):
            raise ValueError("lock_period: at most 864000 blocks, and only with lock")
        if self.purpose in TRON_RESOURCE_CONTRACTS:
            if not self.asset.is_native:
                raise ValueError("asset: staking and delegation are in TRX")
            if self.amount.base_units < TRX_SUN:
                raise ValueError("amount.base_units: at least 1 TRX")
            needs_receiver = self.purpose != "stake"
            if needs_receiver and (self.destination is None or self.destination.path is None):
                raise ValueError("destination.path: energy is delegated to our own addresses")
            if not needs_receiver and self.destination is not None:
                raise ValueError("destination: a stake has none")
        # protobuf int64 fields: TRX amounts and frozen balances. A TRC-20 amount is a
        # uint256 in the call data (checked against 2**256 - 1 by Uint).
        if self.asset.is_native and self.amount.base_units > INT64_MAX:
            raise ValueError("amount.base_units: exceeds int64")
        if not self.timestamp < self.expiration <= self.timestamp + TRON_MAX_EXPIRATION_MS:
            raise ValueError("expiration: after timestamp and at most 24 h after it")
        if self.expiration > INT64_MAX:
            raise ValueError("expiration: exceeds int64")
        return self

    def expected_contract_type(self) -> str:
        if self.purpose in TRON_RESOURCE_CONTRACTS:
            return TRON_RESOURCE_CONTRACTS[self.purpose]
        return "TransferContract" if self.asset.is_native else "TriggerSmartContract"


AnyTransaction = EthereumTransaction | BscTransaction | TronTransaction
Transaction = Annotated[AnyTransaction, Field(discriminator="network")]


class AssetTotal(_Model):
    network: Network
    purpose: Purpose
    symbol: str
    contract: str | None
    base_units: Uint
    decimal: str


class FeeTotal(_Model):
    """The most the request can spend on network fees, in the network's native coin."""

    network: Network
    symbol: str
    max_base_units: Uint
    max_decimal: str


class Summary(_Model):
    transaction_count: Uint
    totals: list[AssetTotal]
    network_fees: list[FeeTotal]


class SigningRequest(_Model):
    format: Literal["stablegate.signing_request"]
    version: Literal[1]
    request_id: str = Field(pattern=_ID_RE)
    created_at: str = Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
    transactions: list[Transaction] = Field(min_length=1, max_length=1000)
    summary: Summary
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [t.id for t in self.transactions]
        if len(set(ids)) != len(ids):
            raise ValueError("transactions: ids are unique within a request")
        nonces = [
            (t.network, t.source.address, t.nonce)
            for t in self.transactions
            if isinstance(t, EthereumTransaction | BscTransaction)
        ]
        if len(set(nonces)) != len(nonces):
            raise ValueError("transactions: two EVM transactions share a source and nonce")
        # The summary is content too: it must say exactly what the transactions do.
        expected = compute_summary(self.transactions)
        if self.summary.model_dump(mode="json") != expected.model_dump(mode="json"):
            raise ValueError("summary: does not match the transactions")
        return self


class SignedTransaction(_Model):
    id: str = Field(pattern=_ID_RE)
    network: Network
    # EVM: "0x" + keccak256(raw_transaction); Tron: the txID, sha256(raw_data), 64 hex.
    tx_hash: str = Field(pattern=r"^(0x)?[0-9a-f]{64}$")
    # EVM: "0x"-prefixed raw transaction for eth_sendRawTransaction. Tron: the serialized
    # protocol.Transaction (raw_data + signature) for /wallet/broadcasthex.
    signed_hex: str = Field(pattern=r"^(0x)?[0-9a-f]+$")
    raw_data_hex: Hex | None = None  # Tron only
    signature: Hex | None = None  # Tron only: r || s || v (v ∈ {0, 1}), 65 bytes

    @model_validator(mode="after")
    def _shape(self) -> Self:
        tron = self.network == "tron"
        prefixed = self.tx_hash.startswith("0x") and self.signed_hex.startswith("0x")
        if tron == prefixed or tron != (self.raw_data_hex is not None):
            raise ValueError("tx_hash, signed_hex: 0x-prefixed for EVM; raw_data_hex for Tron")
        if tron != (self.signature is not None) or (tron and len(self.signature or "") != 130):
            raise ValueError("signature: 65 bytes for Tron, none for EVM")
        return self


class SignedResponse(_Model):
    format: Literal["stablegate.signed_response"]
    version: Literal[1]
    request_id: str = Field(pattern=_ID_RE)
    request_digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    signed_at: str
    signer_version: str
    transactions: list[SignedTransaction] = Field(min_length=1)


def canonical_json(data: Any) -> bytes:
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def request_digest(request_content: dict[str, Any]) -> str:
    """Digest of a request given as its JSON-mode dict (the `digest` key is ignored)."""
    body = {k: v for k, v in request_content.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def compute_digest(request: SigningRequest) -> str:
    return request_digest(request.model_dump(mode="json"))


def check_digest(request: SigningRequest) -> None:
    actual = compute_digest(request)
    if actual != request.digest:
        raise DigestMismatch(
            f"the content hashes to {actual}, the request says {request.digest}", field="digest"
        )


def max_network_fee(tx: AnyTransaction) -> int:
    """Worst-case fee in native base units (wei / sun)."""
    if isinstance(tx, TronTransaction):
        from stablegate_signer.tron import tron_max_fee

        return tron_max_fee(tx)
    return tx.max_fee


def compute_summary(transactions: Sequence[AnyTransaction]) -> Summary:
    totals: dict[tuple[Network, Purpose, str, str | None], int] = {}
    fees: dict[Network, int] = {}
    for tx in transactions:
        key = (tx.network, tx.purpose, tx.asset.symbol, tx.asset.contract)
        totals[key] = totals.get(key, 0) + tx.amount.base_units
        fees[tx.network] = fees.get(tx.network, 0) + max_network_fee(tx)
    decimals = {
        (t.network, t.asset.symbol, t.asset.contract): t.asset.decimals for t in transactions
    }
    # Built as JSON and validated, like any document: integers travel as strings.
    return Summary.model_validate(
        {
            "transaction_count": str(len(transactions)),
            "totals": [
                {
                    "network": n,
                    "purpose": p,
                    "symbol": s,
                    "contract": c,
                    "base_units": str(v),
                    "decimal": format_amount(v, decimals[(n, s, c)]),
                }
                for (n, p, s, c), v in sorted(totals.items(), key=lambda kv: _sort_key(kv[0]))
            ],
            "network_fees": [
                {
                    "network": n,
                    "symbol": NATIVE_SYMBOL[n],
                    "max_base_units": str(v),
                    "max_decimal": format_amount(v, NATIVE_DECIMALS[n]),
                }
                for n, v in sorted(fees.items())
            ],
        }
    )


def _sort_key(key: tuple[str, str, str, str | None]) -> tuple[str, str, str, str]:
    return (key[0], key[1], key[2], key[3] or "")


def build_request(
    request_id: str, transactions: list[dict[str, Any]], created_at: datetime | None = None
) -> SigningRequest:
    """For the gateway: validate the transactions, add the summary and the digest."""
    when = (created_at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    draft: dict[str, Any] = {
        "format": REQUEST_FORMAT,
        "version": VERSION,
        "request_id": request_id,
        "created_at": when,
        "transactions": transactions,
    }
    parsed = _parse_transactions(transactions)
    draft["summary"] = compute_summary(parsed).model_dump(mode="json")
    # The digest is over the canonical form, so take it from the parsed model (which fills
    # absent optional fields with null), then parse the finished document once more.
    draft["digest"] = "sha256:" + "0" * 64
    try:
        content = SigningRequest.model_validate(draft).model_dump(mode="json")
    except ValidationError as exc:
        raise _invalid(exc, transactions) from exc
    content["digest"] = request_digest(content)
    return parse_request(content)


class _Transactions(_Model):
    transactions: list[Transaction]


def _parse_transactions(transactions: list[dict[str, Any]]) -> list[AnyTransaction]:
    try:
        return _Transactions.model_validate({"transactions": transactions}).transactions
    except ValidationError as exc:
        raise _invalid(exc, transactions) from exc


def parse_request(data: Any) -> SigningRequest:
    """Parse and validate a request (a dict from JSON) and check its digest."""
    try:
        request = SigningRequest.model_validate(data)
    except ValidationError as exc:
        txs = data.get("transactions") if isinstance(data, dict) else None
        raise _invalid(exc, txs) from exc
    check_digest(request)
    return request


def load_request(text: str | bytes) -> SigningRequest:
    return parse_request(strictjson.loads(text))


def load_response(text: str | bytes) -> SignedResponse:
    data = strictjson.loads(text)
    try:
        return SignedResponse.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, None) from exc


def dump(document: BaseModel) -> str:
    return json.dumps(document.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _invalid(exc: ValidationError, transactions: Any) -> InvalidDocument:
    error = exc.errors()[0]
    loc = [str(part) for part in error["loc"]]
    transaction = None
    if len(loc) >= 2 and loc[0] == "transactions" and loc[1].isdigit():
        index = int(loc[1])
        transaction = f"#{index}"
        if isinstance(transactions, list) and index < len(transactions):
            item = transactions[index]
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                transaction = item["id"][:80]
        loc = loc[3:] if len(loc) > 2 and loc[2] in CHAIN_IDS.keys() | {"tron"} else loc[2:]
    message = error["msg"].removeprefix("Value error, ")
    named = _NAMED_FIELD.match(message)
    if named:
        loc.append(named.group(1))
        message = named.group(2)
    return InvalidDocument(message, transaction=transaction, field=".".join(loc) or None)


_NAMED_FIELD = re.compile(r"^([a-z_.]+(?:, [a-z_.]+)*): (.*)$", re.DOTALL)
