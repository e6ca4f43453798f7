"""Assembly of the Tron watcher: its settings (`WATCHER_*` plus the solidity URL and API
key), the client it builds, its own migration history, and a refusal to start without a
node URL that says which URL is meant."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from stablegate_common.chains.provider_pools import TronProviderPool
from stablegate_common.chains.tron import TronClient
from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.db import Database
from stablegate_common.watcher.config import WatcherSettings
from stablegate_watcher_tron.app import SPEC, build, make_client
from stablegate_watcher_tron.settings import TronWatcherSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> TronWatcherSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(TronWatcherSettings, SPEC.default_schema)


async def test_settings_name_the_network_schema_and_both_node_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(
        monkeypatch,
        WATCHER_RPC_URL="http://fullnode:8090",
        WATCHER_SOLIDITY_URL="http://fullnode:8091",
        WATCHER_API_KEY="key-1",
        WATCHER_BLOCKS_PER_CALL="20",
    )
    assert (SPEC.network, SPEC.service) == ("tron", "chain-watcher-tron")
    assert settings.database.schema_name == "watcher_tron"
    assert settings.watcher.solidity_url == "http://fullnode:8091"
    assert settings.watcher.api_key.get_secret_value() == "key-1"
    assert (settings.watcher.window_blocks, settings.watcher.blocks_per_call) == (100, 20)

    client = make_client(settings.watcher)
    assert isinstance(client, TronProviderPool)
    [member] = [p.client for p in client.providers]
    assert isinstance(member, TronClient)
    assert member.full_node_url == "http://fullnode:8090"
    await client.close()
    # A plain WatcherSettings (the shared engine's tests) still gets a Tron client.
    plain = make_client(WatcherSettings(rpc_url="http://fullnode:8090"))
    assert isinstance(plain, TronProviderPool)
    await plain.close()


async def test_several_full_nodes_pair_with_their_solidity_apis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = _settings(
        monkeypatch,
        WATCHER_RPC_URL="",
        WATCHER_RPC_URLS="http://a:8090*2,http://b:8090",
        WATCHER_SOLIDITY_URLS='["http://a:8091", "http://b:8091"]',
        WATCHER_RPC_QUORUM="2",
    )
    client = make_client(settings.watcher)
    assert isinstance(client, TronProviderPool)
    assert [(p.name, p.weight) for p in client.providers] == [("a:8090", 2.0), ("b:8090", 1.0)]
    assert client.policy.quorum == 2
    await client.close()

    monkeypatch.setenv("WATCHER_SOLIDITY_URLS", "http://a:8091,http://b:8091,http://c:8091")
    with pytest.raises(ConfigurationError, match="WATCHER_SOLIDITY_URLS has 3 URLs for 2"):
        build(load_settings(TronWatcherSettings, SPEC.default_schema))


async def test_the_node_url_is_required_and_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_RPC_URL", raising=False)
    settings = _settings(monkeypatch)
    with pytest.raises(ConfigurationError, match="java-tron HTTP API URL of the tron full node"):
        build(settings)


async def test_the_service_scans_tron_with_finality(
    monkeypatch: pytest.MonkeyPatch, tron_watcher_db: Database
) -> None:
    settings = _settings(monkeypatch, WATCHER_RPC_URL="http://127.0.0.1:9")
    service = build(settings)
    try:
        assert isinstance(service.engine.client, TronProviderPool)
        assert service.engine.network.family == "tron"
        assert service.engine.tokens == {
            asset.contract: asset for asset in settings.asset_registry().network("tron").assets
        }
    finally:
        await service.engine.client.close()
        await service.db.dispose()
    # Its own alembic history (revision t0001) creates the watcher and bus tables.
    async with tron_watcher_db.sessions() as session:
        version = await session.scalar(text("SELECT version_num FROM alembic_version"))
        tables = set(
            await session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        )
    assert version == "t0003"
    watcher_tables = {"scan_cursor", "block_hashes", "watched_addresses", "observed_transfers"}
    assert watcher_tables | {"outbox", "inbox"} <= tables
