"""`WATCHER_*` settings and how they resolve into the engine's configuration."""

from __future__ import annotations

import pytest

from stablegate_common.config import ConfigurationError, load_settings
from stablegate_common.core.assets import MAINNET, AssetRegistry, Network
from stablegate_common.watcher.config import WatcherSettings
from stablegate_watcher_eth.settings import DEFAULT_SCHEMA, NETWORK, EthWatcherSettings

ETHEREUM = AssetRegistry.from_mapping(MAINNET).network("ethereum")  # 12 confirmations
BSC = AssetRegistry.from_mapping(MAINNET).network("bsc")  # 15 confirmations


@pytest.mark.parametrize(
    ("env", "network", "confirmations", "reorg_window"),
    [
        ({}, ETHEREUM, 12, 64),
        ({"WATCHER_CONFIRMATIONS": "40"}, ETHEREUM, 40, 80),  # 2 x confirmations
        ({"WATCHER_CONFIRMATIONS": "2"}, BSC, 2, 64),
        ({"WATCHER_REORG_WINDOW": "128"}, BSC, 15, 128),
    ],
)
def test_confirmations_and_reorg_window_resolve(
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    network: Network,
    confirmations: int,
    reorg_window: int,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = WatcherSettings().engine_config(network)
    assert (config.confirmations, config.reorg_window) == (confirmations, reorg_window)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCHER_REORG_WINDOW": "5"}, "WATCHER_REORG_WINDOW"),
        ({"WATCHER_WINDOW_BLOCKS": "900", "WATCHER_MAX_WINDOW_BLOCKS": "100"}, "MAX_WINDOW"),
    ],
)
def test_inconsistent_settings_are_refused_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=message):
        WatcherSettings().engine_config(ETHEREUM)


def test_node_url_is_required_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_RPC_URL", raising=False)
    with pytest.raises(ConfigurationError, match=r"WATCHER_RPC_URL is required.*ethereum"):
        WatcherSettings().require_rpc_url("ethereum")
    monkeypatch.setenv("WATCHER_RPC_URL", "http://node:8545")
    assert WatcherSettings().require_rpc_url("ethereum") == "http://node:8545"
    assert [e.url for e in WatcherSettings().endpoints("ethereum")] == ["http://node:8545"]


def test_several_providers_with_weights_and_a_quorum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHER_RPC_URL", raising=False)
    monkeypatch.setenv(
        "WATCHER_RPC_URLS",
        '["http://a:8545", {"url": "https://eth.example/v3/SECRET", "weight": 3, "name": "infura"},'
        ' "https://eth.example/v3/OTHER"]',
    )
    monkeypatch.setenv("WATCHER_RPC_QUORUM", "2")
    settings = WatcherSettings()
    endpoints = settings.endpoints("ethereum")
    # Names label metrics: never the path, where providers put API keys.
    assert [(e.name, e.weight) for e in endpoints] == [
        ("a:8545", 1.0),
        ("infura", 3.0),
        ("eth.example", 1.0),
    ]
    assert settings.pool_policy().quorum == 2
    monkeypatch.setenv("WATCHER_RPC_URLS", "http://a:8545*2, http://b:8545")
    assert [(e.name, e.weight) for e in WatcherSettings().endpoints("x")] == [
        ("a:8545", 2.0),
        ("b:8545", 1.0),
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WATCHER_RPC_URLS": "http://a,http://b", "WATCHER_RPC_QUORUM": "3"},
            "WATCHER_RPC_QUORUM",
        ),
        ({"WATCHER_RPC_URLS": "http://a", "WATCHER_RPC_URL": "http://b"}, "not both"),
    ],
)
def test_provider_settings_that_cannot_work_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    monkeypatch.delenv("WATCHER_RPC_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError, match=message):
        WatcherSettings().endpoints("ethereum")


def test_a_malformed_provider_list_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_RPC_URLS", "node:8545")
    with pytest.raises(ConfigurationError, match="WATCHER_RPC_URLS"):
        load_settings(EthWatcherSettings, "watcher_ethereum")


def test_service_settings_nest_the_watcher_concern(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_POLL_INTERVAL_SECONDS", "0.25")
    monkeypatch.setenv("WATCHER_START_BLOCK", "19000000")
    settings = EthWatcherSettings()
    assert settings.watcher.poll_interval_seconds == 0.25
    assert settings.watcher.start_block == 19_000_000
    assert (NETWORK, DEFAULT_SCHEMA) == ("ethereum", "watcher_ethereum")


def test_deep_reorg_rescan_depth_defaults_to_1000_blocks_and_is_tunable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert WatcherSettings().engine_config(ETHEREUM).deep_reorg_rescan_blocks == 1000
    monkeypatch.setenv("WATCHER_DEEP_REORG_RESCAN_BLOCKS", "250")
    assert WatcherSettings().engine_config(ETHEREUM).deep_reorg_rescan_blocks == 250
