"""Where a network fee's inputs come from: gas units and prices, energy and bandwidth.

`StaticFeeInputs` serves what configuration says (development, tests, Tron). For an EVM
network with a node configured (`GATEWAY_FEE_RPC_URLS`), `EvmNodeFeeInputs` reads the
price from the node: `eth_feeHistory` on EIP-1559 chains (the next block's base fee plus
the median tip of recent blocks) and `eth_gasPrice` on legacy-priced chains (BSC); the
gas units stay those configured. `NetworkFeeInputBook` holds one source per network,
node reads behind a TTL cache with a staleness limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from statistics import median_low
from typing import Protocol

from stablegate_common.chains.evm import EvmClient, FeeHistory
from stablegate_gateway.core.fees import Eip1559Gas, LegacyGas, NetworkCost, NetworkFeeUnavailable
from stablegate_gateway.pricing.cache import Cached, Clock, StaleValue, utc_now
from stablegate_gateway.pricing.config import Eip1559Config, LegacyGasConfig, PricingConfig

# Ten blocks at the median tip: recent enough to follow the market, wide enough that one
# empty or one crowded block does not decide the price.
FEE_HISTORY_BLOCKS = 10
TIP_PERCENTILE = 50.0


@dataclass(frozen=True)
class ObservedCost:
    cost: NetworkCost
    source: str  # "static" or "node"
    as_of: datetime


class NetworkFeeInputs(Protocol):
    async def read(self) -> ObservedCost: ...

    async def close(self) -> None: ...


class StaticFeeInputs:
    def __init__(self, cost: NetworkCost, *, clock: Clock = utc_now) -> None:
        self._cost = cost
        self._clock = clock

    async def read(self) -> ObservedCost:
        return ObservedCost(self._cost, "static", self._clock())

    async def close(self) -> None:
        return None


class EvmNodeFeeInputs:
    def __init__(
        self,
        client: EvmClient,
        model: Eip1559Config | LegacyGasConfig,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client
        self._model = model
        self._clock = clock

    async def read(self) -> ObservedCost:
        gas = self._model.gas
        if isinstance(self._model, LegacyGasConfig):
            cost: NetworkCost = LegacyGas(gas, await self._client.gas_price())
        else:
            history = await self._client.fee_history(FEE_HISTORY_BLOCKS, [TIP_PERCENTILE])
            cost = Eip1559Gas(gas, history.next_base_fee, median_tip(history))
        return ObservedCost(cost, "node", self._clock())

    async def close(self) -> None:
        await self._client.close()


def median_tip(history: FeeHistory) -> int:
    """The median of the blocks' percentile tips (the lower middle, so it is a real value)."""
    tips = [block[0] for block in history.rewards if block]
    return median_low(tips) if tips else 0


class NetworkFeeInputBook:
    """One fee-input source per network; what `Pricing` asks for a network's cost."""

    def __init__(self, sources: Mapping[str, NetworkFeeInputs], config: PricingConfig) -> None:
        self._sources = dict(sources)
        self._cached = {
            name: Cached(
                source.read,
                label=f"network fee inputs of {name}",
                as_of=lambda observed: observed.as_of,
                ttl_seconds=config.fee_inputs_ttl_seconds,
                max_age_seconds=config.fee_inputs_max_age_seconds,
            )
            for name, source in self._sources.items()
        }

    @classmethod
    def from_config(cls, config: PricingConfig, networks: list[str]) -> NetworkFeeInputBook:
        """Static inputs for every network, node reads where a node URL is configured.

        Raises ValueError naming the network when one has no fee model or a node URL on a
        network whose model is not EVM.
        """
        sources: dict[str, NetworkFeeInputs] = {}
        for name in networks:
            model = config.fee_model(name)
            if model is None:
                raise ValueError(f"GATEWAY_FEE_INPUTS has no fee model for network {name!r}")
            url = config.fee_rpc_urls.get(name, "").strip()
            if not url:
                sources[name] = StaticFeeInputs(model.cost())
            elif isinstance(model, Eip1559Config | LegacyGasConfig):
                client = EvmClient(url, timeout_seconds=config.fee_rpc_timeout_seconds)
                sources[name] = EvmNodeFeeInputs(client, model)
            else:
                raise ValueError(f"GATEWAY_FEE_RPC_URLS: {name!r} is not an EVM network")
        return cls(sources, config)

    async def cost(self, network: str) -> ObservedCost:
        cached = self._cached.get(network)
        if cached is None:
            raise NetworkFeeUnavailable(f"No fee inputs are configured for {network}.")
        try:
            return await cached.get()
        except StaleValue as exc:
            raise NetworkFeeUnavailable(
                f"The network fee on {network} cannot be estimated now: {exc}."
            ) from exc

    async def close(self) -> None:
        for source in self._sources.values():
            await source.close()
