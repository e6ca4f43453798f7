"""Domain errors: a stable machine code, the offending field, and no HTTP status.

The API edge maps each class to a status code in one table.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a client can cause or observe."""

    code: str = "domain_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class InvalidRequest(DomainError):
    code = "invalid_request"


class InvalidAmount(InvalidRequest):
    code = "invalid_amount"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}", param=field)


class UnknownNetwork(InvalidRequest):
    code = "unknown_network"


class UnknownAsset(InvalidRequest):
    code = "unknown_asset"


class NotFound(DomainError):
    code = "resource_missing"


class Conflict(DomainError):
    code = "conflict"


class InvalidState(Conflict):
    code = "invalid_state"


class AuthenticationFailed(DomainError):
    code = "invalid_api_key"


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
