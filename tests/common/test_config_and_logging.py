"""Configuration from the environment, start-up errors that name the variable, JSON logs
that carry the work's ids and never a secret, and the shared metric helpers."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from pydantic import SecretStr

from stablegate_common.config import (
    BusSettings,
    ConfigurationError,
    DatabaseSettings,
    HttpSettings,
    ObservabilitySettings,
    ServiceSettings,
    load_settings,
)
from stablegate_common.logging import JsonFormatter, event_id_var, intent_id_var, request_id_var
from stablegate_common.metrics import service_info, time_block

PASSWORD = "s3cr3t-pa55word"

CONFIG_VARIABLES = [
    "DATABASE_URL",
    "DATABASE_SCHEMA",
    "DATABASE_POOL_SIZE",
    "RABBITMQ_URL",
    "RABBITMQ_EXCHANGE",
    "RABBITMQ_PREFETCH",
    "HTTP_HOST",
    "HTTP_PORT",
    "LOG_LEVEL",
    "LOG_JSON",
    "STABLEGATE_ENVIRONMENT",
    "STABLEGATE_ASSETS_FILE",
]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment: the developer's own variables must not leak into these tests."""
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- configuration ---------------------------------------------------------------------------


def test_defaults_match_the_development_machine(env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ServiceSettings, "gateway")
    assert settings.environment == "development"
    assert settings.database.schema_name == "gateway"
    assert settings.database.async_url().startswith("postgresql+asyncpg://")
    assert settings.bus.url.get_secret_value() == "amqp://guest:guest@127.0.0.1:5672/"
    assert (settings.http.host, settings.http.port) == ("127.0.0.1", 8000)
    assert (settings.log.level, settings.log.json_format) == ("INFO", True)


def test_each_concern_reads_its_own_prefix(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", f"postgresql://app:{PASSWORD}@db.internal:5432/pay")
    env.setenv("DATABASE_SCHEMA", "custom")
    env.setenv("DATABASE_POOL_SIZE", "3")
    env.setenv("RABBITMQ_URL", "amqp://u:p@mq.internal:5672/vh")
    env.setenv("RABBITMQ_EXCHANGE", "sg")
    env.setenv("RABBITMQ_PREFETCH", "50")
    env.setenv("HTTP_HOST", "0.0.0.0")
    env.setenv("HTTP_PORT", "9100")
    env.setenv("LOG_LEVEL", "DEBUG")
    env.setenv("LOG_JSON", "false")
    env.setenv("STABLEGATE_ENVIRONMENT", "production")
    settings = load_settings(ServiceSettings, "gateway")
    assert settings.database.url.get_secret_value() == (
        f"postgresql://app:{PASSWORD}@db.internal:5432/pay"
    )
    assert settings.database.schema_name == "custom"  # the default schema does not override it
    assert settings.database.pool_size == 3
    assert settings.bus.url.get_secret_value() == "amqp://u:p@mq.internal:5672/vh"
    assert (settings.bus.exchange, settings.bus.prefetch) == ("sg", 50)
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 9100)
    assert (settings.log.level, settings.log.json_format) == ("DEBUG", False)
    assert settings.environment == "production"


def test_concerns_can_be_built_alone(env: pytest.MonkeyPatch) -> None:
    env.setenv("HTTP_PORT", "8123")
    env.setenv("RABBITMQ_PREFETCH", "7")
    env.setenv("LOG_LEVEL", "ERROR")
    assert HttpSettings().port == 8123
    assert BusSettings().prefetch == 7
    assert ObservabilitySettings().level == "ERROR"


@pytest.mark.parametrize(
    ("url", "async_url", "sync_url"),
    [
        (
            "postgresql://u:p@h:5432/d",
            "postgresql+asyncpg://u:p@h:5432/d",
            "postgresql+psycopg://u:p@h:5432/d",
        ),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://h/d", "postgresql+asyncpg://h/d", "postgresql+psycopg://h/d"),
        ("postgresql+asyncpg://h/d", "postgresql+asyncpg://h/d", "postgresql+psycopg://h/d"),
    ],
)
def test_database_url_forms(url: str, async_url: str, sync_url: str) -> None:
    settings = DatabaseSettings(url=SecretStr(url))
    assert settings.async_url() == async_url
    assert settings.sync_url() == sync_url


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HTTP_PORT", "eighty"),
        ("HTTP_PORT", "70000"),
        ("DATABASE_POOL_SIZE", "0"),
        ("RABBITMQ_PREFETCH", "lots"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_JSON", "maybe"),
        ("STABLEGATE_ENVIRONMENT", "staging"),
    ],
)
def test_a_bad_variable_is_named_at_start(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings(ServiceSettings, "gateway")
    message = str(info.value)
    assert message.startswith(f"configuration error: {variable}: "), message
    assert value not in message  # the value might be a secret; the name is enough
    assert isinstance(info.value, SystemExit)  # the process exits instead of half-starting


def test_a_service_concern_is_named_too(env: pytest.MonkeyPatch) -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class WatcherConcern(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="WATCHER_", extra="ignore")
        batch_blocks: int = Field(100, ge=1)

    class WatcherSettings(ServiceSettings):
        watcher: WatcherConcern = Field(default_factory=WatcherConcern)

    env.setenv("WATCHER_BATCH_BLOCKS", "-5")
    with pytest.raises(ConfigurationError, match=r"WATCHER_BATCH_BLOCKS: Input should be"):
        load_settings(WatcherSettings, "watcher_ethereum")


def test_unreadable_assets_file_is_named(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    env.setenv("STABLEGATE_ASSETS_FILE", str(missing))
    settings = load_settings(ServiceSettings, "gateway")
    with pytest.raises(ConfigurationError, match="STABLEGATE_ASSETS_FILE"):
        settings.asset_registry()


def test_assets_file_overlays_the_registry(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    overlay = tmp_path / "assets.json"
    overlay.write_text(
        json.dumps(
            {
                "networks": {
                    "ethereum": {
                        "family": "evm",
                        "chain_id": 31337,
                        "confirmations": 1,
                        "native_symbol": "ETH",
                        "assets": {
                            "USDT": {
                                "contract": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                                "decimals": 6,
                            }
                        },
                    }
                }
            }
        )
    )
    env.setenv("STABLEGATE_ASSETS_FILE", str(overlay))
    registry = load_settings(ServiceSettings, "gateway").asset_registry()
    assert registry.network("ethereum").chain_id == 31337
    assert registry.network("bsc").chain_id == 56


def test_secrets_do_not_show_in_settings_reprs(env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", f"postgresql://app:{PASSWORD}@db/pay")
    settings = load_settings(ServiceSettings, "gateway")
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)


# --- logging ---------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("gateway"))
    logger = logging.getLogger("tests.json_log")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_carries_service_and_work_ids(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    tokens = [request_id_var.set("req_123"), intent_id_var.set("pi_456"), event_id_var.set("evt_7")]
    try:
        logger.info("intent %s paid", "pi_456", extra={"network": "tron", "amount": "25.00"})
    finally:
        for var, token in zip((request_id_var, intent_id_var, event_id_var), tokens, strict=True):
            var.reset(token)
    logger.warning("outside any request")
    first, second = _lines(stream)
    assert first["service"] == "gateway"
    assert first["level"] == "info"
    assert first["logger"] == "tests.json_log"
    assert first["message"] == "intent pi_456 paid"
    assert (first["request_id"], first["intent_id"], first["event_id"]) == (
        "req_123",
        "pi_456",
        "evt_7",
    )
    assert (first["network"], first["amount"]) == ("tron", "25.00")
    assert str(first["ts"]).endswith("+00:00")
    assert "request_id" not in second
    assert second["level"] == "warning"


def test_exceptions_are_logged_in_the_line(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    try:
        raise RuntimeError("node down")
    except RuntimeError:
        logger.exception("scan failed")
    (line,) = _lines(stream)
    assert "RuntimeError: node down" in str(line["exception"])


def test_secret_values_never_reach_the_log(json_log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = json_log
    database = DatabaseSettings(url=SecretStr(f"postgresql://app:{PASSWORD}@db/pay"))
    secret = SecretStr(PASSWORD)
    logger.info("connecting with %s", secret, extra={"database": database, "token": secret})
    logger.info("settings %r", database)
    output = stream.getvalue()
    assert PASSWORD not in output
    assert "**********" in output
    assert len(_lines(stream)) == 2


def test_configure_logging_writes_json_to_stderr() -> None:
    """Run in a child process: configure_logging replaces the root handlers."""
    script = (
        "import logging\n"
        "from stablegate_common.logging import configure_logging, request_id_var\n"
        "configure_logging('reconciler', 'INFO')\n"
        "request_id_var.set('req_9')\n"
        "logging.getLogger('x').debug('hidden')\n"
        "logging.getLogger('apscheduler').info('noise')\n"
        "logging.getLogger('x').info('shown')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [line["message"] for line in lines] == ["shown"]
    assert lines[0]["service"] == "reconciler"
    assert lines[0]["request_id"] == "req_9"


# --- metrics helpers -------------------------------------------------------------------------


def test_service_info_can_be_set_more_than_once() -> None:
    registry = CollectorRegistry()
    service_info("gateway", "0.1.0", registry=registry)
    service_info("gateway", "0.2.0", registry=registry)
    text = generate_latest(registry).decode()
    assert 'stablegate_service_info{service="gateway",version="0.2.0"} 1.0' in text
    assert "0.1.0" not in text


def test_time_block_observes_even_when_the_block_raises() -> None:
    registry = CollectorRegistry()
    histogram = Histogram("t_seconds", "t", ["step"], registry=registry)
    with time_block(histogram, step="ok"):
        pass
    with pytest.raises(ValueError, match="boom"), time_block(histogram, step="bad"):
        raise ValueError("boom")
    assert registry.get_sample_value("t_seconds_count", {"step": "ok"}) == 1
    assert registry.get_sample_value("t_seconds_count", {"step": "bad"}) == 1
    unlabelled = Histogram("u_seconds", "u", registry=registry)
    with time_block(unlabelled):
        pass
    assert registry.get_sample_value("u_seconds_count") == 1


def test_a_json_setting_that_is_not_json_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import Field
    from pydantic_settings import BaseSettings, SettingsConfigDict

    from stablegate_common.config import ConfigurationError, ServiceSettings, load_settings

    class Urls(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="EXAMPLE_")
        rpc_urls: dict[str, str] = Field(default_factory=dict)

    class Settings(ServiceSettings):
        example: Urls = Field(default_factory=Urls)

    monkeypatch.setenv("EXAMPLE_RPC_URLS", "{not json")
    with pytest.raises(ConfigurationError, match="EXAMPLE_RPC_URLS: not valid JSON"):
        load_settings(Settings, "example")
