"""The checkout's message catalogue: one JSON file per language under `messages/`, the
choice of language for a request, and `Translator`, the `t()` the templates and the
customer view call.

Messages are `str.format` templates with named fields (`"Pay {merchant}"`). The English
catalogue is the reference: every other catalogue must have exactly its keys and, per
key, the same fields (a test holds them to it). A key missing at run time falls back to
English, so a half-translated catalogue degrades to English rather than to an error.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

MESSAGES_DIR = Path(__file__).parent / "messages"
DEFAULT_LOCALE = "en"


@cache
def catalogues() -> dict[str, dict[str, str]]:
    """Every catalogue by language code (the file name), loaded once per process."""
    found: dict[str, dict[str, str]] = {}
    for path in sorted(MESSAGES_DIR.glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        found[path.stem] = {str(key): str(value) for key, value in entries.items()}
    return found


def supported_locales() -> list[str]:
    return list(catalogues())


def negotiate(requested: str | None, accept_language: str | None) -> str:
    """The language to answer in: `?lang=` when we have it, else the best of the
    browser's `Accept-Language` we have, else English."""
    available = catalogues()
    if requested:
        chosen = _primary(requested)
        if chosen in available:
            return chosen
    for tag in _by_preference(accept_language or ""):
        if tag in available:
            return tag
    return DEFAULT_LOCALE


def _primary(tag: str) -> str:
    """`es-ES` → `es`: the catalogues are per language, not per region."""
    return tag.strip().replace("_", "-").split("-")[0].lower()


def _by_preference(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most preferred first; q=0 excluded."""
    weighted: list[tuple[Decimal, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = _quality(params)
        if quality > 0:
            # The position breaks ties, so equal weights keep the browser's order.
            weighted.append((-quality, position, _primary(tag)))
    return [tag for _, _, tag in sorted(weighted)]


def _quality(params: str) -> Decimal:
    # q is a ranking weight between 0 and 1 with at most three decimals (RFC 9110).
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip() == "q":
            try:
                weight = Decimal(value.strip())
            except InvalidOperation:
                return Decimal(0)
            return min(max(weight, Decimal(0)), Decimal(1)) if weight.is_finite() else Decimal(0)
    return Decimal(1)


def fields_of(message: str) -> set[str]:
    """The named fields a message template uses (`{merchant}` → `merchant`)."""
    return {name for _, name, _, _ in string.Formatter().parse(message) if name}


@dataclass(frozen=True)
class Translator:
    """`t("key", field=value)`: the message in this locale, formatted."""

    locale: str

    def __call__(self, key: str, /, **fields: Any) -> str:
        template = catalogues()[self.locale].get(key)
        if template is None:
            template = catalogues()[DEFAULT_LOCALE][key]
        return template.format(**fields)

    def messages(self, prefix: str) -> dict[str, str]:
        """Unformatted messages whose key starts with `prefix`, for the page's script."""
        english = catalogues()[DEFAULT_LOCALE]
        own = catalogues()[self.locale]
        return {key: own.get(key, english[key]) for key in english if key.startswith(prefix)}
