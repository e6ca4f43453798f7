"""Settings shared by every service, one class per concern, each with its own env prefix.

A service's settings class nests these and is built once at start (`load_settings`), then
passed in; nothing reads the environment deep inside the code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from stablegate_common.core.assets import MAINNET, AssetRegistry

Environment = Literal["development", "test", "production"]


class ConfigurationError(SystemExit):
    """Raised at start when a setting is missing or wrong; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: SecretStr = SecretStr("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    schema_name: str = Field("", validation_alias="DATABASE_SCHEMA")
    pool_size: int = Field(10, ge=1)
    max_overflow: int = Field(10, ge=0)
    pool_timeout_seconds: float = Field(10.0, gt=0)
    statement_timeout_ms: int = Field(15_000, ge=0)

    def async_url(self) -> str:
        url = self.url.get_secret_value()
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        return url

    def sync_url(self) -> str:
        """psycopg 3 URL for the libraries that are synchronous (APScheduler's job store)."""
        return self.async_url().replace("postgresql+asyncpg://", "postgresql+psycopg://", 1)


class BusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RABBITMQ_", extra="ignore")

    url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    exchange: str = "stablegate"
    prefetch: int = Field(200, ge=1)
    # RabbitMQ dead-letters after delivery_limit + 1 handler runs (the first is not a redelivery).
    delivery_limit: int = Field(5, ge=1, description="redeliveries before dead-lettering")


class HttpSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HTTP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    reuse_port: bool = Field(
        False,
        description="bind with SO_REUSEPORT, so several processes of a service share the "
        "port and the kernel spreads connections over them (replicas on one machine)",
    )


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOG_", extra="ignore")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(True, validation_alias="LOG_JSON")


class ServiceSettings(BaseSettings):
    """What every service reads. Subclasses add their own concern and a default schema."""

    model_config = SettingsConfigDict(env_prefix="STABLEGATE_", extra="ignore")

    environment: Environment = "development"
    assets_file: Path | None = Field(
        None, description="JSON overlay of the asset registry (the devnet writes one)"
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    def asset_registry(self) -> AssetRegistry:
        registry = AssetRegistry.from_mapping(MAINNET)
        if self.assets_file is None:
            return registry
        try:
            overlay = json.loads(self.assets_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"STABLEGATE_ASSETS_FILE={self.assets_file} cannot be read: {exc}"
            ) from exc
        return registry.overlay(overlay)


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], default_schema: str) -> S:
    """Build settings from the environment or exit with a message naming the bad variable."""
    try:
        settings = cls()
    except ValidationError as exc:
        # A nested concern fails inside its own default factory, so the error's `title` names
        # the concern class and `loc` only the field; turn both back into the env variable.
        model = _settings_classes(cls).get(exc.title)
        problems = "; ".join(
            f"{_variable_name(model, err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigurationError(problems) from exc
    except SettingsError as exc:  # a complex value (dict, list) that is not valid JSON
        field = re.search(r'field "([^"]+)"', str(exc))
        names = [
            _variable_name(model, (field.group(1),))
            for model in _settings_classes(cls).values()
            if field and field.group(1) in model.model_fields
        ]
        raise ConfigurationError(f"{' or '.join(names) or exc}: not valid JSON") from exc
    if not settings.database.schema_name:
        settings.database.schema_name = default_schema
    return settings


def _settings_classes(cls: type[BaseSettings]) -> dict[str, type[BaseSettings]]:
    found: dict[str, type[BaseSettings]] = {cls.__name__: cls}
    for field in cls.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
            found.update(_settings_classes(field.annotation))
    return found


def _variable_name(model: type[BaseSettings] | None, loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else ""
    field = model.model_fields.get(name) if model is not None else None
    if model is None or field is None:  # unknown, or already an alias such as DATABASE_SCHEMA
        return ".".join(str(p) for p in loc)
    if isinstance(field.validation_alias, str):
        return field.validation_alias
    return f"{model.model_config.get('env_prefix', '')}{name}".upper()
