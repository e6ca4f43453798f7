"""Reconciler configuration: RPC URLs come from JSON in the environment, and networks the
reconciler cannot read are refused at start with a message naming the variable."""

from __future__ import annotations

import pytest

from stablegate_common.chains.provider_pools import EvmProviderPool
from stablegate_common.config import ConfigurationError, load_settings
from stablegate_reconciler.app import build_readers
from stablegate_reconciler.settings import ReconcilerSettings


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> ReconcilerSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(ReconcilerSettings, "reconciler")


def test_rpc_urls_and_interval_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = settings(
        monkeypatch,
        RECONCILER_RPC_URLS='{"ethereum": "http://node:8545", "bsc": "https://bsc"}',
        RECONCILER_INTERVAL_SECONDS="15",
    )

    urls = {n: [e.url for e in endpoints] for n, endpoints in loaded.reconciler.rpc_urls.items()}
    assert urls == {"ethereum": ["http://node:8545"], "bsc": ["https://bsc"]}
    assert loaded.reconciler.interval_seconds == 15
    assert loaded.database.schema_name == "reconciler"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RECONCILER_RPC_URLS": '{"ethereum": "node:8545"}'}, "must be http"),
        ({"RECONCILER_INTERVAL_SECONDS": "0"}, "RECONCILER_INTERVAL_SECONDS"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        settings(monkeypatch, **env)


def test_rpc_urls_that_are_not_json_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="RECONCILER_RPC_URLS: not valid JSON"):
        settings(monkeypatch, RECONCILER_RPC_URLS="not json")


def test_networks_the_reconciler_cannot_read_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = settings(monkeypatch, RECONCILER_RPC_URLS='{"solana": "http://sol:8899"}')

    with pytest.raises(ConfigurationError, match="'solana' is not a supported network"):
        build_readers(loaded, loaded.asset_registry())


async def test_every_network_gets_a_reader_of_its_family(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = settings(
        monkeypatch,
        RECONCILER_RPC_URLS='{"ethereum": "http://a:1", "bsc": "http://b:2", "tron": "http://c:3"}',
    )

    readers = build_readers(loaded, loaded.asset_registry())

    assert {name: type(r).__name__ for name, r in readers.items()} == {
        "bsc": "EvmProviderPool",
        "ethereum": "EvmProviderPool",
        "tron": "TronProviderPool",
    }
    for reader in readers.values():
        await reader.close()


async def test_a_network_may_list_several_providers_with_a_quorum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = settings(
        monkeypatch,
        RECONCILER_RPC_URLS='{"ethereum": ["http://a:1", {"url": "http://b:2", "weight": 3}]}',
        RECONCILER_RPC_QUORUM="2",
    )
    readers = build_readers(loaded, loaded.asset_registry())
    pool = readers["ethereum"]
    assert isinstance(pool, EvmProviderPool)
    assert [(p.name, p.weight) for p in pool.providers] == [("a:1", 1.0), ("b:2", 3.0)]
    assert pool.policy.quorum == 2
    await pool.close()

    monkeypatch.setenv("RECONCILER_RPC_QUORUM", "3")
    with pytest.raises(ConfigurationError, match=r"RECONCILER_RPC_QUORUM \(3\) exceeds the 2"):
        build_readers(load_settings(ReconcilerSettings, "reconciler"), loaded.asset_registry())
