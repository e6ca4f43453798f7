"""The devnet's world state and what a transaction does to it: TRX balances, account
activation, free bandwidth, TRC-20 balances per contract, and the fees java-tron charges.

Fee model (mainnet values of `getchainparameters`, chains.md §3.5): bandwidth is the
signed transaction's size plus 64 bytes per contract; it comes out of the account's 600
free bytes a day (recovering linearly over 24 h) or burns 1,000 sun a byte. Sending TRX
to an account that does not exist yet creates it: 1 TRX to the system contract plus
0.1 TRX instead of bandwidth. Energy has no stake behind it here, so all of it burns at
100 sun, capped by `fee_limit`; running over the cap is `OUT_OF_ENERGY` and burns the cap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from devnet.tron.encoding import Hex41, to_hex41, unhex
from devnet.tron.tokens import REVERT_ENERGY, CallResult, Log, TokenSpec, call_token

ENERGY_PRICE_SUN = 100
BANDWIDTH_PRICE_SUN = 1_000
FREE_NET_LIMIT = 600
NET_WINDOW_MS = 86_400_000
CREATE_ACCOUNT_FEE = 100_000  # `getCreateAccountFee`: bandwidth of an activation
CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT = 1_000_000
MAX_FEE_LIMIT = 15_000_000_000
MAX_RESULT_SIZE_IN_TX = 64
CHAIN_PARAMETERS = {
    "getMaintenanceTimeInterval": 21_600_000,
    "getCreateAccountFee": CREATE_ACCOUNT_FEE,
    "getTransactionFee": BANDWIDTH_PRICE_SUN,
    "getCreateNewAccountFeeInSystemContract": CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT,
    "getEnergyFee": ENERGY_PRICE_SUN,
    "getFreeNetLimit": FREE_NET_LIMIT,
    "getMaxFeeLimit": MAX_FEE_LIMIT,
    "getAllowTvmTransferTrc10": 1,
    "getAllowDynamicEnergy": 1,
}


class ContractValidateError(Exception):
    """The transaction can never run as written (java-tron: CONTRACT_VALIDATE_ERROR)."""


class BandwidthError(Exception):
    """The owner cannot pay for the bytes (java-tron: BANDWITH_ERROR)."""


@dataclass
class Account:
    balance: int  # sun
    create_time: int
    free_net_used: int = 0
    latest_consume_free_time: int = 0

    def free_net_used_at(self, now_ms: int) -> int:
        elapsed = now_ms - self.latest_consume_free_time
        if elapsed >= NET_WINDOW_MS:
            return 0
        return self.free_net_used * (NET_WINDOW_MS - elapsed) // NET_WINDOW_MS


@dataclass
class Ledger:
    accounts: dict[Hex41, Account] = field(default_factory=dict)
    tokens: dict[Hex41, dict[Hex41, int]] = field(default_factory=dict)

    def copy(self) -> Ledger:
        return Ledger(
            {address: replace(account) for address, account in self.accounts.items()},
            {token: dict(balances) for token, balances in self.tokens.items()},
        )


@dataclass(frozen=True)
class Receipt:
    """What one transaction did: java-tron's TransactionInfo without block fields."""

    result: str  # SUCCESS, REVERT, OUT_OF_ENERGY
    contract_fee: int = 0  # the 1 TRX of an account activation
    energy_usage_total: int = 0
    energy_fee: int = 0
    net_usage: int = 0
    net_fee: int = 0
    contract_address: Hex41 | None = None
    contract_result: str = ""
    logs: tuple[Log, ...] = ()
    res_message: str = ""

    @property
    def fee(self) -> int:
        return self.contract_fee + self.energy_fee + self.net_fee

    @property
    def failed(self) -> bool:
        return self.result != "SUCCESS"


@dataclass(frozen=True)
class Fault:
    """Test-only ways to make a transaction fail on chain. `keep_logs` leaves the Transfer
    log on a failed transaction, which java-tron never does: it proves a client checks
    `receipt.result` rather than trusting logs alone."""

    revert: bool = False
    keep_logs: bool = False


@dataclass(frozen=True)
class Call:
    """One contract of a transaction, decoded from its `raw_data` (hex form)."""

    kind: str
    owner: Hex41
    target: Hex41  # recipient of TRX, or the contract called
    amount: int  # TRX amount or call_value, in sun
    data: bytes
    fee_limit: int

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Call:
        contract = raw["contract"][0]
        value = contract["parameter"]["value"]
        kind = contract["type"]
        if kind == "TransferContract":
            target, amount, data = to_hex41(value["to_address"]), int(value.get("amount", 0)), b""
        else:
            target = to_hex41(value["contract_address"])
            amount, data = int(value.get("call_value", 0)), unhex(value.get("data", ""), "data")
        owner = to_hex41(value["owner_address"])
        return cls(kind, owner, target, amount, data, int(raw.get("fee_limit", 0)))


class Executor:
    """Validates and applies transactions to a ledger, knowing the token contracts."""

    def __init__(self, tokens: Mapping[Hex41, TokenSpec]) -> None:
        self.tokens = dict(tokens)

    def validate(self, ledger: Ledger, call: Call) -> None:
        owner = ledger.accounts.get(call.owner)
        if call.kind == "TransferContract":
            if owner is None:
                raise ContractValidateError("Validate TransferContract error, no OwnerAccount.")
            if call.amount <= 0:
                raise ContractValidateError("Amount must be greater than 0.")
            if call.target == call.owner:
                raise ContractValidateError("Cannot transfer TRX to yourself.")
            fee = 0 if call.target in ledger.accounts else CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT
            if owner.balance < call.amount + fee:
                raise ContractValidateError(
                    "Validate TransferContract error, balance is not sufficient."
                )
            return
        if call.target not in self.tokens:
            raise ContractValidateError("No contract or not a smart contract")
        if owner is None:
            raise ContractValidateError("Validate InternalTransfer error, no OwnerAccount.")
        if not 0 <= call.fee_limit <= MAX_FEE_LIMIT:
            raise ContractValidateError(f"feeLimit must be >= 0 and <= {MAX_FEE_LIMIT}")
        if call.amount > owner.balance:
            raise ContractValidateError("callValue must be >= 0 and <= balance")

    def execute(
        self, ledger: Ledger, call: Call, size: int, now_ms: int, fault: Fault | None = None
    ) -> Receipt:
        """Apply `call` to `ledger`. Raises ContractValidateError or BandwidthError, leaving
        the ledger untouched, when the transaction cannot go into a block at all."""
        self.validate(ledger, call)
        if call.kind == "TransferContract":
            return self._transfer_trx(ledger, call, size, now_ms)
        net_usage, net_fee = self._bandwidth(ledger.accounts[call.owner], size, now_ms, 0)
        _consume_bandwidth(ledger.accounts[call.owner], net_usage, net_fee, now_ms)
        return self._trigger(ledger, call, net_usage, net_fee, fault or Fault())

    def _bandwidth(self, owner: Account, size: int, now_ms: int, spend: int) -> tuple[int, int]:
        """(net_usage, net_fee) for `size` bytes, when the owner can also pay `spend`."""
        if owner.free_net_used_at(now_ms) + size <= FREE_NET_LIMIT:
            net_usage, net_fee = size, 0
        else:
            net_usage, net_fee = 0, size * BANDWIDTH_PRICE_SUN
        if owner.balance < net_fee + spend:
            raise BandwidthError("Account resource insufficient error.")
        return net_usage, net_fee

    def _transfer_trx(self, ledger: Ledger, call: Call, size: int, now_ms: int) -> Receipt:
        owner = ledger.accounts[call.owner]
        recipient = ledger.accounts.get(call.target)
        if recipient is None:
            # Activation: free bandwidth cannot pay for it (chains.md §3.5).
            total = call.amount + CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT + CREATE_ACCOUNT_FEE
            if owner.balance < total:
                raise BandwidthError("Account resource insufficient error.")
            owner.balance -= total
            ledger.accounts[call.target] = Account(balance=call.amount, create_time=now_ms)
            return Receipt(
                "SUCCESS",
                contract_fee=CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT,
                net_fee=CREATE_ACCOUNT_FEE,
            )
        net_usage, net_fee = self._bandwidth(owner, size, now_ms, call.amount)
        _consume_bandwidth(owner, net_usage, net_fee, now_ms)
        owner.balance -= call.amount
        recipient.balance += call.amount
        return Receipt("SUCCESS", net_usage=net_usage, net_fee=net_fee)

    def _trigger(
        self, ledger: Ledger, call: Call, net_usage: int, net_fee: int, fault: Fault
    ) -> Receipt:
        spec = self.tokens[call.target]
        owner = ledger.accounts[call.owner]
        scratch = dict(ledger.tokens.get(spec.address, {}))
        if call.amount:
            outcome = CallResult("REVERT", b"", REVERT_ENERGY, message="not payable")
        else:
            outcome = call_token(spec, scratch, call.owner, call.data)
        if fault.revert and outcome.status == "SUCCESS":
            outcome = replace(outcome, status="REVERT", output=b"", energy=REVERT_ENERGY)
        max_energy = min(call.fee_limit, owner.balance) // ENERGY_PRICE_SUN
        result: str = outcome.status
        energy, message = outcome.energy, ""
        if energy > max_energy:
            result, energy = "OUT_OF_ENERGY", max_energy
            message = (
                "Not enough energy for 'SSTORE' operation executing: "
                f"curInvokeEnergyLimit[{max_energy}], curOpEnergy[{outcome.energy}]"
            )
        elif result == "REVERT":
            message = "REVERT opcode executed"
        owner.balance -= energy * ENERGY_PRICE_SUN
        if result == "SUCCESS":
            ledger.tokens[spec.address] = scratch
        keep_logs = result == "SUCCESS" or fault.keep_logs
        return Receipt(
            result,
            energy_usage_total=energy,
            energy_fee=energy * ENERGY_PRICE_SUN,
            net_usage=net_usage,
            net_fee=net_fee,
            contract_address=spec.address,
            contract_result="" if result == "OUT_OF_ENERGY" else outcome.output.hex(),
            logs=tuple(outcome.logs) if keep_logs else (),
            res_message=message,
        )

    def constant_call(
        self, ledger: Ledger, caller: Hex41, contract: Hex41, data: bytes
    ) -> CallResult:
        """A `triggerconstantcontract`: runs on a copy, so it changes nothing."""
        spec = self.tokens[contract]
        return call_token(spec, dict(ledger.tokens.get(spec.address, {})), caller, data)


def _consume_bandwidth(owner: Account, net_usage: int, net_fee: int, now_ms: int) -> None:
    if net_usage:
        owner.free_net_used = owner.free_net_used_at(now_ms) + net_usage
        owner.latest_consume_free_time = now_ms
    owner.balance -= net_fee
