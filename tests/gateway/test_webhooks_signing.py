"""Webhook signatures and retry delays (pure): what a merchant's verification accepts and
refuses, and the bounds of the backoff."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_gateway.webhooks.delivery import retry_delay
from stablegate_gateway.webhooks.signing import (
    InvalidSignature,
    compute_signature,
    new_secret,
    signature_header,
    verify_signature,
)

SECRET = "whsec_" + "0f" * 32
BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.paid"}'
NOW = 1_800_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature_header(SECRET, BODY, timestamp=NOW) == f"t={NOW},v1={expected}"
    assert compute_signature(SECRET, NOW, BODY) == expected


def test_a_fresh_authentic_signature_verifies() -> None:
    verify_signature(SECRET, signature_header(SECRET, BODY, timestamp=NOW), BODY, now=NOW + 299)


@pytest.mark.parametrize(
    ("secret", "body", "now", "reason"),
    [
        ("whsec_other", BODY, NOW, "no signature matches"),
        (SECRET, BODY + b" ", NOW, "no signature matches"),
        (SECRET, BODY.replace(b"paid", b"expired"), NOW, "no signature matches"),
        (SECRET, BODY, NOW + 301, "more than 300s"),
        (SECRET, BODY, NOW - 301, "more than 300s"),
    ],
)
def test_a_wrong_secret_a_changed_body_or_a_stale_timestamp_is_refused(
    secret: str, body: bytes, now: int, reason: str
) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)
    with pytest.raises(InvalidSignature, match=reason):
        verify_signature(secret, header, body, now=now)


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"v1={'0' * 64}", f"t={NOW}", f"t=soon,v1={'0' * 64}", f"t={NOW},v0=abc"],
)
def test_a_malformed_header_is_refused(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify_signature(SECRET, header, BODY, now=NOW)


def test_any_of_several_signatures_may_match_while_a_secret_is_rolled() -> None:
    old = compute_signature("whsec_old", NOW, BODY)
    new = compute_signature(SECRET, NOW, BODY)
    verify_signature(SECRET, f"t={NOW},v1={old},v1={new}", BODY, now=NOW)
    verify_signature("whsec_old", f"t={NOW}, v1={old}, v1={new}", BODY, now=NOW)


def test_secrets_are_prefixed_and_unique() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    assert all(s.startswith("whsec_") and len(s) == 6 + 64 for s in secrets)


@given(
    attempts=st.integers(min_value=1, max_value=60),
    base=st.floats(min_value=0.001, max_value=100),
    cap=st.floats(min_value=0.001, max_value=100_000),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_retry_delays_are_jittered_below_a_capped_exponential(
    attempts: int, base: float, cap: float, rand: float
) -> None:
    ceiling = min(cap, base * 2 ** (attempts - 1))
    delay = retry_delay(attempts, base=base, cap=cap, rand=rand)
    assert 0 <= delay <= ceiling
    assert retry_delay(attempts, base=base, cap=cap, rand=0.0) == 0


def test_retry_ceilings_double_until_the_cap() -> None:
    ceilings = [retry_delay(n, base=10, cap=300, rand=1.0) for n in range(1, 8)]
    assert ceilings == [10, 20, 40, 80, 160, 300, 300]
