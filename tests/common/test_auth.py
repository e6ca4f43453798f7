"""API keys (generation, peppered hashes) and JWTs (round trip and every way to forge one)."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jose import jwt
from pydantic import SecretStr

from stablegate_common.auth import (
    IssuedKey,
    JwtSigner,
    api_key_matches,
    api_key_mode,
    generate_api_key,
    hash_api_key,
)
from stablegate_common.core.errors import AuthenticationFailed

PEPPER = b"pepper-for-tests-0123456789"
SECRET = "s" * 40
ISSUER = "stablegate-gateway"
AUDIENCE = "stablegate-api"


def _signer(**overrides: Any) -> JwtSigner:
    options: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    options.update(overrides)
    secret = options.pop("secret", SECRET)
    return JwtSigner(SecretStr(secret), **options)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return _decode_segment(header), _decode_segment(payload), signature


def _decode_segment(segment: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


# --- API keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["test", "live"])
def test_generated_key_shape(mode: str) -> None:
    key = generate_api_key(mode, pepper=PEPPER)  # type: ignore[arg-type]
    assert re.fullmatch(rf"sk_{mode}_[0-9A-Za-z]{{32,}}", key.secret)
    assert key.prefix == key.secret[:12]
    assert key.prefix.startswith(f"sk_{mode}_")
    assert key.last4 == key.secret[-4:]
    assert key.hash == hash_api_key(key.secret, PEPPER)
    assert key.mode == mode
    assert api_key_mode(key.secret) == mode


def test_secret_is_not_in_the_repr() -> None:
    key = generate_api_key("live", pepper=PEPPER)
    assert key.secret not in repr(key)
    assert key.hash in repr(key)


def test_keys_are_unique_and_hashes_hide_the_secret() -> None:
    keys: list[IssuedKey] = [generate_api_key("test", pepper=PEPPER) for _ in range(200)]
    assert len({k.secret for k in keys}) == 200
    assert len({k.prefix for k in keys}) > 100  # four random base62 characters in the prefix
    for key in keys[:10]:
        assert key.secret not in key.hash
        assert re.fullmatch(r"[0-9a-f]{64}", key.hash)


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        generate_api_key("prod", pepper=PEPPER)  # type: ignore[arg-type]


def test_hash_depends_on_the_pepper() -> None:
    key = generate_api_key("test", pepper=PEPPER)
    other_pepper = b"another-pepper-0123456789"
    assert hash_api_key(key.secret, other_pepper) != key.hash
    assert api_key_matches(key.secret, key.hash, PEPPER)
    assert not api_key_matches(key.secret, key.hash, other_pepper)


def test_a_short_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="pepper"):
        hash_api_key("sk_test_x", b"short")


@given(st.text(min_size=1, max_size=80))
def test_only_the_issued_secret_matches(candidate: str) -> None:
    key = generate_api_key("test", pepper=PEPPER)
    assert api_key_matches(candidate, key.hash, PEPPER) == (candidate == key.secret)


def test_a_one_character_change_does_not_match() -> None:
    key = generate_api_key("live", pepper=PEPPER)
    flipped = key.secret[:-1] + ("a" if key.secret[-1] != "a" else "b")
    assert not api_key_matches(flipped, key.hash, PEPPER)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "sk_test_",
        "sk_test_short",
        "sk_prod_" + "a" * 40,
        "sk_test_" + "a" * 39 + "!",
        "eyJhbGciOi.x.y",
    ],
)
def test_api_key_mode_rejects_non_keys(value: str) -> None:
    assert api_key_mode(value) is None


# --- JWT ----------------------------------------------------------------------------------


def test_round_trip() -> None:
    signer = _signer()
    before = datetime.now(UTC)
    token, expires_at = signer.issue("mer_123", {"scope": "payments", "key": "key_abc"})
    claims = signer.verify(token)
    assert claims["sub"] == "mer_123"
    assert claims["scope"] == "payments"
    assert claims["key"] == "key_abc"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] == int(expires_at.timestamp())
    assert timedelta(seconds=898) <= expires_at - before <= timedelta(seconds=900)
    assert _segments(token)[0]["alg"] == "HS256"


def test_each_token_has_its_own_id() -> None:
    signer = _signer()
    first, _ = signer.issue("mer_1")
    second, _ = signer.issue("mer_1")
    assert signer.verify(first)["jti"] != signer.verify(second)["jti"]


def test_expired_token_is_refused() -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    token, _ = _signer(clock=lambda: past, ttl_seconds=60).issue("mer_1")
    with pytest.raises(AuthenticationFailed, match="expired") as info:
        _signer().verify(token)
    assert info.value.code == "token_expired"


def test_wrong_secret_is_refused() -> None:
    token, _ = _signer(secret="x" * 40).issue("mer_1")
    with pytest.raises(AuthenticationFailed, match="not valid") as info:
        _signer().verify(token)
    assert info.value.code == "invalid_token"


def test_wrong_audience_is_refused() -> None:
    token, _ = _signer(audience="dashboard").issue("mer_1")
    with pytest.raises(AuthenticationFailed, match="claims"):
        _signer().verify(token)


def test_wrong_issuer_is_refused() -> None:
    token, _ = _signer(issuer="someone-else").issue("mer_1")
    with pytest.raises(AuthenticationFailed, match="claims"):
        _signer().verify(token)


def test_alg_none_token_is_refused() -> None:
    good, _ = _signer().issue("mer_1")
    _, payload, _ = _segments(good)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    for forged in (f"{header}.{body}.", f"{header}.{body}.{_segments(good)[2]}"):
        with pytest.raises(AuthenticationFailed, match="algorithm 'none' is not accepted"):
            _signer().verify(forged)


def test_token_signed_with_another_hmac_algorithm_is_refused() -> None:
    good, _ = _signer().issue("mer_1")
    _, payload, _ = _segments(good)
    forged = jwt.encode(payload, SECRET, algorithm="HS384")  # right secret, other algorithm
    with pytest.raises(AuthenticationFailed, match="HS384"):
        _signer().verify(forged)
    # ... while a signer pinned to HS384 accepts it, so the refusal is about the pin.
    assert _signer(algorithm="HS384").verify(forged)["sub"] == "mer_1"


def test_tampered_payload_is_refused() -> None:
    token, _ = _signer().issue("mer_1", {"scope": "read"})
    header, _, signature = token.split(".")
    claims = _segments(token)[1]
    claims["sub"] = "mer_attacker"
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(AuthenticationFailed, match="not valid"):
        _signer().verify(tampered)


def test_token_without_expiry_is_refused() -> None:
    payload = {"sub": "mer_1", "iss": ISSUER, "aud": AUDIENCE, "iat": 1}
    with pytest.raises(AuthenticationFailed):
        _signer().verify(jwt.encode(payload, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJ.eyJ.sig"])
def test_malformed_token_is_refused(garbage: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        _signer().verify(garbage)
    assert info.value.code == "invalid_token"


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256", "hs256"])
def test_signer_refuses_non_hmac_algorithms(algorithm: str) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        _signer(algorithm=algorithm)


def test_signer_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        _signer(secret="changeme")


def test_claims_cannot_override_registered_claims() -> None:
    with pytest.raises(ValueError, match="exp"):
        _signer().issue("mer_1", {"exp": 9999999999})
