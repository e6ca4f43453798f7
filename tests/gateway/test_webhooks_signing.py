"""Webhook signatures and retry delays (pure): what a merchant's verification accepts and
refuses, signing with several secrets during a roll, the bounds of the backoff, and the
default schedule's three days."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stablegate_gateway.settings import GatewayConfig
from stablegate_gateway.webhooks.delivery import nominal_delay, retry_delay, retry_schedule
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
    attempts=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0.001, max_value=100),
    factor=st.floats(min_value=1, max_value=10),
    cap=st.floats(min_value=0.001, max_value=100_000),
    jitter=st.floats(min_value=0, max_value=0.5),
    rand=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_retry_delays_stay_within_the_jitter_of_a_capped_exponential(
    attempts: int, base: float, factor: float, cap: float, jitter: float, rand: float
) -> None:
    nominal = nominal_delay(attempts, base=base, factor=factor, cap=cap)
    assert nominal == pytest.approx(min(cap, base * factor ** (attempts - 1)), rel=1e-9)
    delay = retry_delay(attempts, base=base, factor=factor, cap=cap, jitter=jitter, rand=rand)
    assert nominal * (1 - jitter) - 1e-9 <= delay <= nominal * (1 + jitter) + 1e-9
    middle = retry_delay(attempts, base=base, factor=factor, cap=cap, jitter=jitter, rand=0.5)
    assert middle == pytest.approx(nominal)


def test_nominal_delays_triple_until_the_cap() -> None:
    delays = [nominal_delay(n, base=60, factor=3, cap=39_600) for n in range(1, 10)]
    assert delays == [60, 180, 540, 1620, 4860, 14_580, 39_600, 39_600, 39_600]


def test_the_default_schedule_ends_about_three_days_after_the_first_attempt() -> None:
    config = GatewayConfig()
    schedule = retry_schedule(config)
    assert len(schedule) == config.webhook_max_attempts - 1 == 12
    assert 71 * 3600 <= schedule[-1] <= 73 * 3600
    assert schedule[0] == 60  # a blip is retried within a minute
    # Even at the jitter's extremes the last attempt stays within a day of 72 h.
    jitter = config.webhook_backoff_jitter
    assert schedule[-1] * (1 - jitter) > 48 * 3600
    assert schedule[-1] * (1 + jitter) < 96 * 3600


def test_several_secrets_each_add_a_signature() -> None:
    header = signature_header([SECRET, "whsec_old"], BODY, timestamp=NOW)
    new = compute_signature(SECRET, NOW, BODY)
    old = compute_signature("whsec_old", NOW, BODY)
    assert header == f"t={NOW},v1={new},v1={old}"
    verify_signature(SECRET, header, BODY, now=NOW)
    verify_signature("whsec_old", header, BODY, now=NOW)
    with pytest.raises(InvalidSignature):
        verify_signature("whsec_other", header, BODY, now=NOW)
