"""The devnet's world state and what a transaction does to it: TRX balances, account
activation, free bandwidth, TRC-20 balances per contract, and the fees java-tron charges.

Fee model (mainnet values of `getchainparameters`, chains.md §3.5, funds-out.md §1.4-1.5):
bandwidth is the signed transaction's size plus 64 bytes per contract; it comes out of
the account's staked bandwidth, else its 600 free bytes a day (both recovering linearly
over 24 h), else burns the bandwidth price (1,000 sun) a byte; one source pays the whole
transaction, as BandwidthProcessor does. Sending TRX to an account that does not exist
yet creates it: 1 TRX to the system contract, plus 0.1 TRX unless staked bandwidth pays
the bytes (free bandwidth never does). A contract call's energy comes first from the
caller's staked and acquired energy, the rest burns at the energy price (100 sun); all of
it is capped by `fee_limit` / price, and running over is `OUT_OF_ENERGY`, which uses the
whole cap. Stake 2.0 contracts are in `resources`; prices and network totals in
`resources.NetworkParams`, held by the Executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from devnet.tron.encoding import (
    RESOURCE_NAMES,
    STAKE_CONTRACTS,
    Hex41,
    resource_code,
    to_hex41,
    unhex,
)
from devnet.tron.resources import (
    Delegation,
    DelegationKey,
    NetworkParams,
    apply_stake,
    check_stake,
    energy_left,
    net_left,
    use_energy,
    use_net,
)
from devnet.tron.tokens import REVERT_ENERGY, CallResult, Log, TokenSpec, call_token

ENERGY_PRICE_SUN = 100
BANDWIDTH_PRICE_SUN = 1_000
FREE_NET_LIMIT = 600
NET_WINDOW_MS = 86_400_000
CREATE_ACCOUNT_FEE = 100_000  # `getCreateAccountFee`: bandwidth of an activation
CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT = 1_000_000
MAX_FEE_LIMIT = 15_000_000_000
MAX_RESULT_SIZE_IN_TX = 64
CHAIN_PARAMETERS = {  # the defaults; `chain_parameters` gives the current prices
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


def chain_parameters(params: NetworkParams) -> dict[str, int]:
    return {
        **CHAIN_PARAMETERS,
        "getTransactionFee": params.bandwidth_price,
        "getEnergyFee": params.energy_price,
        "getTotalEnergyLimit": params.total_energy_limit,
        "getUnfreezeDelayDays": 14,
        "getAllowDelegateResource": 1,
        "getMaxDelegateLockPeriod": 864_000,
    }


@dataclass
class Account:
    balance: int  # sun
    create_time: int
    free_net_used: int = 0
    latest_consume_free_time: int = 0
    # Stake 2.0, in sun of TRX: own stake not delegated, own stake delegated away, and
    # stake others delegated here; then staked usage and pending unstakes.
    frozen_bandwidth: int = 0
    frozen_energy: int = 0
    delegated_bandwidth: int = 0
    delegated_energy: int = 0
    acquired_bandwidth: int = 0
    acquired_energy: int = 0
    net_used: int = 0
    latest_consume_time: int = 0
    energy_used: int = 0
    latest_consume_time_for_energy: int = 0
    unfrozen: tuple[tuple[str, int, int], ...] = ()  # (resource, sun, unfreeze_expire_time)

    def frozen(self, resource: str) -> int:
        return self.frozen_energy if resource == "ENERGY" else self.frozen_bandwidth

    def add_frozen(self, resource: str, sun: int) -> None:
        if resource == "ENERGY":
            self.frozen_energy += sun
        else:
            self.frozen_bandwidth += sun

    def add_delegated(self, resource: str, sun: int) -> None:
        if resource == "ENERGY":
            self.delegated_energy += sun
        else:
            self.delegated_bandwidth += sun

    def add_acquired(self, resource: str, sun: int) -> None:
        if resource == "ENERGY":
            self.acquired_energy += sun
        else:
            self.acquired_bandwidth += sun

    def free_net_used_at(self, now_ms: int) -> int:
        elapsed = now_ms - self.latest_consume_free_time
        if elapsed >= NET_WINDOW_MS:
            return 0
        return self.free_net_used * (NET_WINDOW_MS - elapsed) // NET_WINDOW_MS


@dataclass
class Ledger:
    accounts: dict[Hex41, Account] = field(default_factory=dict)
    tokens: dict[Hex41, dict[Hex41, int]] = field(default_factory=dict)
    delegations: dict[DelegationKey, Delegation] = field(default_factory=dict)
    staked_energy: int = 0  # sun staked for energy by devnet accounts (delegated included)
    staked_bandwidth: int = 0

    def copy(self) -> Ledger:
        return Ledger(
            {address: replace(account) for address, account in self.accounts.items()},
            {token: dict(balances) for token, balances in self.tokens.items()},
            dict(self.delegations),  # records are immutable
            self.staked_energy,
            self.staked_bandwidth,
        )

    def add_staked(self, resource: str, sun: int) -> None:
        if resource == "ENERGY":
            self.staked_energy += sun
        else:
            self.staked_bandwidth += sun


@dataclass(frozen=True)
class Receipt:
    """What one transaction did: java-tron's TransactionInfo without block fields."""

    result: str  # SUCCESS, REVERT, OUT_OF_ENERGY
    contract_fee: int = 0  # the 1 TRX of an account activation
    energy_usage: int = 0  # from the caller's staked and acquired energy
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


_STAKE_AMOUNT = {
    "FreezeBalanceV2Contract": "frozen_balance",
    "UnfreezeBalanceV2Contract": "unfreeze_balance",
}


@dataclass(frozen=True)
class Call:
    """One contract of a transaction, decoded from its `raw_data` (hex form)."""

    kind: str
    owner: Hex41
    target: Hex41  # recipient of TRX or of a delegation, the contract called, or the owner
    amount: int  # TRX amount, call_value, or the stake moved, in sun
    data: bytes
    fee_limit: int
    resource: str = "BANDWIDTH"
    lock: bool = False
    lock_period: int = 0

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> Call:
        contract = raw["contract"][0]
        value = contract["parameter"]["value"]
        kind = contract["type"]
        if kind in STAKE_CONTRACTS:
            owner = to_hex41(value["owner_address"])
            receiver = value.get("receiver_address")
            name = _STAKE_AMOUNT.get(kind, "balance")
            return cls(
                kind,
                owner,
                to_hex41(receiver) if receiver else owner,
                int(value.get(name, 0)),
                b"",
                int(raw.get("fee_limit", 0)),
                RESOURCE_NAMES[resource_code(value.get("resource"))],
                bool(value.get("lock", False)),
                int(value.get("lock_period", 0)),
            )
        if kind == "TransferContract":
            target, amount, data = to_hex41(value["to_address"]), int(value.get("amount", 0)), b""
        else:
            target = to_hex41(value["contract_address"])
            amount, data = int(value.get("call_value", 0)), unhex(value.get("data", ""), "data")
        owner = to_hex41(value["owner_address"])
        return cls(kind, owner, target, amount, data, int(raw.get("fee_limit", 0)))


class Executor:
    """Validates and applies transactions to a ledger, knowing the token contracts."""

    def __init__(
        self, tokens: Mapping[Hex41, TokenSpec], params: NetworkParams | None = None
    ) -> None:
        self.tokens = dict(tokens)
        self.params = params or NetworkParams()

    def validate(self, ledger: Ledger, call: Call, now_ms: int = 0) -> None:
        """Raise ContractValidateError with java-tron's message when `call` cannot run.
        `now_ms` matters only to lock and unstake expiry (0: nothing has expired)."""
        owner = ledger.accounts.get(call.owner)
        if call.kind in STAKE_CONTRACTS:
            message = check_stake(ledger, call, self.params, set(self.tokens), now_ms)
            if message is not None:
                raise ContractValidateError(message)
            return
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
        self.validate(ledger, call, now_ms)
        if call.kind == "TransferContract":
            return self._transfer_trx(ledger, call, size, now_ms)
        owner = ledger.accounts[call.owner]
        net = self._bandwidth(ledger, owner, size, now_ms, 0)
        net.consume(owner, now_ms)
        if call.kind in STAKE_CONTRACTS:
            apply_stake(ledger, call, self.params, now_ms)
            return Receipt("SUCCESS", net_usage=net.usage, net_fee=net.fee)
        return self._trigger(ledger, call, net.usage, net.fee, now_ms, fault or Fault())

    def _bandwidth(
        self, ledger: Ledger, owner: Account, size: int, now_ms: int, spend: int
    ) -> _Net:
        """Who pays `size` bytes (staked, free, else burnt), when the owner must also
        have `spend` sun left for the contract itself."""
        if net_left(owner, ledger, self.params, now_ms) >= size:
            net = _Net(size, 0, staked=True)
        elif owner.free_net_used_at(now_ms) + size <= FREE_NET_LIMIT:
            net = _Net(size, 0, staked=False)
        else:
            net = _Net(0, size * self.params.bandwidth_price, staked=False)
        if owner.balance < net.fee + spend:
            raise BandwidthError("Account resource insufficient error.")
        return net

    def _transfer_trx(self, ledger: Ledger, call: Call, size: int, now_ms: int) -> Receipt:
        owner = ledger.accounts[call.owner]
        recipient = ledger.accounts.get(call.target)
        if recipient is None:
            # Activation: staked bandwidth may pay the bytes, free bandwidth never does
            # (BandwidthProcessor.consumeForCreateNewAccount); else 0.1 TRX burns.
            staked = net_left(owner, ledger, self.params, now_ms) >= size
            net = _Net(size, 0, staked=True) if staked else _Net(0, CREATE_ACCOUNT_FEE, False)
            total = call.amount + CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT + net.fee
            if owner.balance < total:
                raise BandwidthError("Account resource insufficient error.")
            net.consume(owner, now_ms)
            owner.balance -= call.amount + CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT
            ledger.accounts[call.target] = Account(balance=call.amount, create_time=now_ms)
            return Receipt(
                "SUCCESS",
                contract_fee=CREATE_NEW_ACCOUNT_FEE_IN_SYSTEM_CONTRACT,
                net_usage=net.usage,
                net_fee=net.fee,
            )
        net = self._bandwidth(ledger, owner, size, now_ms, call.amount)
        net.consume(owner, now_ms)
        owner.balance -= call.amount
        recipient.balance += call.amount
        return Receipt("SUCCESS", net_usage=net.usage, net_fee=net.fee)

    def _trigger(
        self, ledger: Ledger, call: Call, net_usage: int, net_fee: int, now_ms: int, fault: Fault
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
        price = self.params.energy_price
        staked = energy_left(owner, ledger, self.params, now_ms)
        # VMActuator's limit: staked energy plus what the balance buys, capped by fee_limit.
        max_energy = min(staked + max(owner.balance - call.amount, 0) // price,
                         call.fee_limit // price)  # fmt: skip
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
        from_stake = min(energy, staked)
        energy_fee = (energy - from_stake) * price
        use_energy(owner, from_stake, now_ms)
        owner.balance -= energy_fee
        if result == "SUCCESS":
            ledger.tokens[spec.address] = scratch
        keep_logs = result == "SUCCESS" or fault.keep_logs
        return Receipt(
            result,
            energy_usage=from_stake,
            energy_usage_total=energy,
            energy_fee=energy_fee,
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


@dataclass(frozen=True)
class _Net:
    """How a transaction's bytes are paid: `usage` bytes of staked or free bandwidth, or
    `fee` sun burnt."""

    usage: int
    fee: int
    staked: bool

    def consume(self, owner: Account, now_ms: int) -> None:
        if self.staked:
            use_net(owner, self.usage, now_ms)
        elif self.usage:
            owner.free_net_used = owner.free_net_used_at(now_ms) + self.usage
            owner.latest_consume_free_time = now_ms
        owner.balance -= self.fee
