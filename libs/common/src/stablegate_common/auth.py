"""Authentication primitives: secret API keys and short-lived JWTs.

An API key is shown to the merchant once; the system keeps only its HMAC-SHA256 under a
server-side pepper, plus a short prefix and the last four characters for display. A JWT
is signed with a shared secret and verified against one pinned algorithm, so neither a
`none` token nor a token signed with another algorithm is ever accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JWTClaimsError, JWTError
from pydantic import SecretStr

from stablegate_common.core.errors import AuthenticationFailed

KeyMode = Literal["test", "live"]

_BASE62: Final = string.digits + string.ascii_letters
SECRET_RANDOM_CHARS: Final = 40  # ~238 bits
PREFIX_LENGTH: Final = 12  # "sk_test_" plus four random characters
_MIN_PEPPER_BYTES: Final = 16
_MIN_JWT_SECRET_BYTES: Final = 32  # RFC 7518 §3.2: at least the hash output size
_HMAC_ALGORITHMS: Final = frozenset({"HS256", "HS384", "HS512"})
_REGISTERED_CLAIMS: Final = frozenset({"sub", "iss", "aud", "iat", "nbf", "exp", "jti"})


@dataclass(frozen=True)
class IssuedKey:
    """A freshly generated API key. `secret` is shown once and never stored."""

    secret: str = field(repr=False)
    prefix: str
    last4: str
    hash: str
    mode: KeyMode


def generate_api_key(mode: KeyMode, *, pepper: bytes) -> IssuedKey:
    if mode not in ("test", "live"):
        raise ValueError(f"API key mode must be 'test' or 'live', got {mode!r}")
    random_part = "".join(secrets.choice(_BASE62) for _ in range(SECRET_RANDOM_CHARS))
    secret = f"sk_{mode}_{random_part}"
    return IssuedKey(
        secret=secret,
        prefix=secret[:PREFIX_LENGTH],
        last4=secret[-4:],
        hash=hash_api_key(secret, pepper),
        mode=mode,
    )


def api_key_mode(secret: str) -> KeyMode | None:
    """The mode of a well-formed secret key, or None when `secret` is not one (e.g. a JWT)."""
    for mode in ("test", "live"):
        head = f"sk_{mode}_"
        if secret.startswith(head):
            rest = secret[len(head) :]
            if len(rest) >= 32 and all(c in _BASE62 for c in rest):
                return mode
    return None


def hash_api_key(secret: str, pepper: bytes) -> str:
    """Hex HMAC-SHA256 of the key under the server pepper; what the database stores."""
    if len(pepper) < _MIN_PEPPER_BYTES:
        raise ValueError(f"the API key pepper must be at least {_MIN_PEPPER_BYTES} bytes")
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def api_key_matches(secret: str, stored_hash: str, pepper: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_api_key(secret, pepper), stored_hash)


def _invalid_token(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, code="invalid_token")


class JwtSigner:
    """Issues and verifies HMAC-signed JWTs for one issuer and audience."""

    def __init__(
        self,
        secret: SecretStr,
        *,
        issuer: str,
        audience: str,
        ttl_seconds: int = 900,
        algorithm: str = "HS256",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # A shared secret only makes sense with HMAC; anything else (above all "none") is
        # refused here so a misconfiguration cannot weaken verification.
        if algorithm not in _HMAC_ALGORITHMS:
            raise ValueError(f"JWT algorithm must be one of {sorted(_HMAC_ALGORITHMS)}")
        if len(secret.get_secret_value().encode()) < _MIN_JWT_SECRET_BYTES:
            raise ValueError(f"the JWT secret must be at least {_MIN_JWT_SECRET_BYTES} bytes")
        if ttl_seconds <= 0:
            raise ValueError("JWT ttl_seconds must be positive")
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl = timedelta(seconds=ttl_seconds)
        self.algorithm = algorithm
        self._clock = clock

    def issue(self, subject: str, claims: Mapping[str, Any] | None = None) -> tuple[str, datetime]:
        extra = dict(claims or {})
        clash = _REGISTERED_CLAIMS.intersection(extra)
        if clash:
            raise ValueError(f"claims may not override registered claims: {sorted(clash)}")
        # No `nbf`: a replica whose clock lags the issuer's by a second would refuse it.
        now = self._clock().replace(microsecond=0)
        expires_at = now + self.ttl
        payload = {
            **extra,
            "sub": subject,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(12),
        }
        token = jwt.encode(payload, self._secret.get_secret_value(), algorithm=self.algorithm)
        return token, expires_at

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or AuthenticationFailed saying what is wrong with it."""
        try:
            header = jwt.get_unverified_header(token)
        except JWTError as exc:
            raise _invalid_token("the token is malformed") from exc
        algorithm = header.get("alg")
        if algorithm != self.algorithm:
            raise _invalid_token(f"the token algorithm {algorithm!r} is not accepted")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret.get_secret_value(),
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={"require_exp": True, "require_iat": True, "require_sub": True},
            )
        except ExpiredSignatureError as exc:
            raise AuthenticationFailed("the token has expired", code="token_expired") from exc
        except JWTClaimsError as exc:
            raise _invalid_token(f"the token claims are not valid here: {exc}") from exc
        except JWTError as exc:
            raise _invalid_token(f"the token is not valid: {exc}") from exc
        return claims
