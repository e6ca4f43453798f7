"""What the gateway's request handlers, consumers and jobs share, built once at start."""

from __future__ import annotations

import copy
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import cached_property

from stablegate_common.auth import JwtSigner
from stablegate_common.config import ConfigurationError
from stablegate_common.core.assets import AssetRegistry, Family
from stablegate_common.db import Database
from stablegate_common.hd import AddressDeriver, is_devnet_xpub
from stablegate_gateway.merchants.identities import KeyIdentities
from stablegate_gateway.pricing.service import Pricing
from stablegate_gateway.settings import GatewaySettings

SERVICE = "gateway"  # the bus service name (queue names) and the logs' `service`
JWT_ISSUER = "stablegate-gateway"
JWT_AUDIENCE = "stablegate-api"


@dataclass
class GatewayContext:
    settings: GatewaySettings
    registry: AssetRegistry
    db: Database
    _derivers: dict[str, AddressDeriver | None] = field(
        default_factory=dict, init=False, repr=False
    )
    # API key hash → who it is (`merchants.service`); shared by the context's copies.
    key_identities: KeyIdentities = field(default_factory=KeyIdentities, init=False, repr=False)
    # Where address batches are derived: a process of its own in the running service
    # (`app.build_service`), so the CPU-bound derivation never holds this process's GIL
    # while requests wait; None (tests, CLI) derives in a thread.
    derivation_pool: Executor | None = field(default=None, init=False, repr=False)

    def using(self, db: Database) -> GatewayContext:
        """The same context on another database handle (shares derivers, caches, pricing)."""
        other = copy.copy(self)
        other.db = db
        return other

    def confirmations_for(self, network: str) -> int:
        override = self.settings.gateway.confirmations.get(network)
        return override if override is not None else self.registry.network(network).confirmations

    @property
    def api_key_pepper(self) -> bytes:
        return self.settings.gateway.api_key_pepper.get_secret_value().encode()

    @cached_property
    def jwt(self) -> JwtSigner:
        return JwtSigner(
            self.settings.gateway.jwt_secret,
            issuer=JWT_ISSUER,
            audience=JWT_AUDIENCE,
            ttl_seconds=self.settings.gateway.jwt_ttl_seconds,
        )

    @cached_property
    def pricing(self) -> Pricing:
        """Rates, de-peg guard and fees; raises ConfigurationError when unusable."""
        return Pricing.from_config(self.settings.pricing, self.registry, self.settings.environment)

    def deriver(self, family: Family) -> AddressDeriver | None:
        """The family's address deriver, or None when its xpub is not configured.

        Raises ConfigurationError for an unusable xpub; `build_service` asks for every
        family at start, so a bad key stops the service before it serves a request.
        """
        if family not in self._derivers:
            self._derivers[family] = self._build_deriver(family)
        return self._derivers[family]

    def _build_deriver(self, family: Family) -> AddressDeriver | None:
        setting = f"GATEWAY_{family.upper()}_XPUB"
        xpub = getattr(self.settings.gateway, f"{family}_xpub").strip()
        if not xpub:
            return None
        if self.settings.environment == "production" and is_devnet_xpub(xpub):
            raise ConfigurationError(
                f"{setting} is the published devnet key, whose funds anyone can spend; "
                "configure your own account xpub in production"
            )
        try:
            return AddressDeriver(xpub, family, setting=setting)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
