"""The signer's refusals: a stable code, a message, and where in the request it applies."""

from __future__ import annotations


class SignerError(Exception):
    """A refusal. `transaction` is the request's transaction id, `field` the offending field."""

    code = "signer_error"
    exit_code = 1

    def __init__(self, message: str, *, transaction: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.transaction = transaction
        self.field = field

    def describe(self) -> str:
        where = []
        if self.transaction is not None:
            where.append(f"transaction {self.transaction}")
        if self.field is not None:
            where.append(f"field {self.field}")
        prefix = f"[{self.code}] " + (f"{', '.join(where)}: " if where else "")
        return prefix + self.message

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "transaction": self.transaction,
            "field": self.field,
        }


class InvalidDocument(SignerError):
    """The document does not parse, fails a field rule, or its digest does not match."""

    code = "invalid_document"
    exit_code = 3


class DigestMismatch(InvalidDocument):
    code = "digest_mismatch"


class DerivationMismatch(SignerError):
    """An address does not derive from the path the request gives for it."""

    code = "derivation_mismatch"
    exit_code = 4


class PolicyViolation(SignerError):
    """The request is well formed but the signer's policy does not allow it."""

    code = "policy_violation"
    exit_code = 5


class Declined(SignerError):
    code = "declined"
    exit_code = 6


class SeedError(SignerError):
    code = "seed_error"
    exit_code = 7


class VerificationFailed(SignerError):
    """Gateway side: a signed response does not match its request."""

    code = "verification_failed"
    exit_code = 8
