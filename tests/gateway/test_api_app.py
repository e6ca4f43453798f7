"""Start-up checks of `build_context`: a gateway that cannot work refuses to start, with
a message naming the setting, instead of failing on its first request."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from stablegate_common.config import ConfigurationError
from stablegate_common.hd import DEVNET_EVM_XPUB
from stablegate_gateway.app import build_context
from tests.fixtures.gateway import SettingsFactory

PRODUCTION_SECRETS: dict[str, Any] = {"api_key_pepper": "p" * 40, "jwt_secret": "j" * 40}
# The account xprv of the published test mnemonic: a private key must never be accepted.
DEVNET_EVM_XPRV = (
    "xprv9zDSoJv1aBcjX6sNgEpE2J9K6MV2MUnXuqXsFgzVn3zY2aHyupaFQdYCtdCbNMkvcTdx9FeN49sgXw6mjrh"
    "rFLRSzJVnRYPfSCCgjeg4GxY"
)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"evm_xpub": ""}, "GATEWAY_EVM_XPUB is not set"),
        ({"evm_xpub": "xpub-nonsense"}, "GATEWAY_EVM_XPUB is not a valid extended public key"),
        ({"evm_xpub": DEVNET_EVM_XPRV}, "GATEWAY_EVM_XPUB holds an extended PRIVATE key"),
        ({"tron_xpub": "nonsense"}, "GATEWAY_TRON_XPUB is not a valid extended public key"),
        ({"jwt_secret": "short"}, "GATEWAY_JWT_SECRET"),
        ({"api_key_pepper": "short"}, "GATEWAY_API_KEY_PEPPER must be at least 16 bytes"),
    ],
)
def test_unusable_settings_stop_the_start(
    gateway_settings_factory: SettingsFactory, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_context(gateway_settings_factory(**overrides))


def test_production_refuses_the_devnet_xpub(gateway_settings_factory: SettingsFactory) -> None:
    settings = gateway_settings_factory(evm_xpub=DEVNET_EVM_XPUB, **PRODUCTION_SECRETS)
    settings.environment = "production"
    with pytest.raises(ConfigurationError, match="published devnet key"):
        build_context(settings)


async def test_a_good_configuration_builds(gateway_settings_factory: SettingsFactory) -> None:
    ctx = build_context(gateway_settings_factory())
    try:
        assert ctx.deriver("evm") is not None
        assert ctx.deriver("tron") is None
    finally:
        await ctx.db.dispose()


async def test_every_operation_is_documented(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/openapi.json")).json()
    operations = [
        (path, method, op)
        for path, methods in spec["paths"].items()
        if path.startswith("/v1/")
        for method, op in methods.items()
    ]
    assert {(path, method) for path, method, _ in operations} >= {
        ("/v1/payment_intents", "post"),
        ("/v1/payment_intents", "get"),
        ("/v1/payment_intents/{intent_id}", "get"),
        ("/v1/payment_intents/{intent_id}/cancel", "post"),
        ("/v1/networks", "get"),
        ("/v1/balances", "get"),
        ("/v1/events", "get"),
        ("/v1/events/{event_id}", "get"),
        ("/v1/auth/token", "post"),
    }
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        assert op["tags"], where
        assert "schema" in op["responses"]["200"]["content"]["application/json"], where
        assert {"400", "401"} <= set(op["responses"]), where
        assert op["security"] == [{"bearer": []}], where
    create = spec["paths"]["/v1/payment_intents"]["post"]["requestBody"]["content"]
    assert create["application/json"]["example"]["amount"] == "25.00"
    assert create["application/json"]["schema"]["properties"]["amount"]["type"] == "string"
