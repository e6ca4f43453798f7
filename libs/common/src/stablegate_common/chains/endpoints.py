"""RPC endpoints as operators configure them: a URL, a weight and a name for metrics.

One setting holds a list of them, written either as JSON
(`[{"url": "https://eth.example/KEY", "weight": 3, "name": "infura"}, "http://node:8545"]`)
or as a comma-separated list of URLs, each optionally followed by `*weight`
(`http://a:8545*2,http://b:8545`). The name labels metrics and logs, so it must never
carry a secret: by default it is the URL's host and port, without the path or query
where providers put API keys.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class RpcEndpoint(BaseModel):
    """One provider of a chain: where it answers and how much of the traffic it takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    weight: float = Field(1.0, gt=0, description="relative preference among healthy providers")
    name: str = Field("", description="label in metrics and logs (default: host:port)")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or not urlsplit(value).hostname:
            raise ValueError(f"must be an http(s):// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> RpcEndpoint:
        if not self.name:
            parts = urlsplit(self.url)
            object.__setattr__(self, "name", parts.netloc.rsplit("@", 1)[-1])
        return self


def parse_endpoints(value: Any) -> list[RpcEndpoint]:
    """Endpoints from a setting's raw value: JSON text, a comma list, or parsed items.

    Duplicate names get a `#2`, `#3` suffix so each provider has series of its own."""
    if value is None or value == "":
        return []
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else _comma_list(text)
    if not isinstance(items, list):
        raise ValueError("expected a list of endpoints")
    endpoints = [_endpoint(item) for item in items]
    seen: dict[str, int] = {}
    named: list[RpcEndpoint] = []
    for endpoint in endpoints:
        count = seen[endpoint.name] = seen.get(endpoint.name, 0) + 1
        if count > 1:
            endpoint = endpoint.model_copy(update={"name": f"{endpoint.name}#{count}"})
        named.append(endpoint)
    return named


def _comma_list(text: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        url, _, weight = part.partition("*")
        items.append({"url": url.strip(), **({"weight": weight.strip()} if weight else {})})
    return items


def _endpoint(item: Any) -> RpcEndpoint:
    if isinstance(item, RpcEndpoint):
        return item
    if isinstance(item, str):
        return RpcEndpoint(url=item)
    if isinstance(item, dict):
        return RpcEndpoint.model_validate(item)
    raise ValueError(f"an endpoint is a URL or an object with 'url', got {item!r}")


__all__ = ["RpcEndpoint", "parse_endpoints"]
