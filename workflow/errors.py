"""Domain errors: every refusal the workflow can give, each with a message a person can act on.

The web, CLI and task layers translate these into HTTP problems, one stderr line or task
failures; nothing above the workflow invents its own wording for a domain refusal.
"""

from __future__ import annotations

from config.errors import ConfigurationError, RecogError

__all__ = [
    "ConfigurationError",
    "Conflict",
    "DomainError",
    "Forbidden",
    "GuardFailed",
    "IllegalTransition",
    "NotFound",
    "TooLarge",
    "UnsupportedDocument",
    "ValidationFailed",
]


class DomainError(RecogError):
    """Base of every refusal. ``str(err)`` is the sentence shown to the person."""

    code = "domain_error"


class NotFound(DomainError):
    code = "not_found"


class ValidationFailed(DomainError):
    """Input (a file, a field, event data) is malformed; nothing was changed."""

    code = "invalid"


class IllegalTransition(DomainError):
    """The event does not exist or is not allowed from the case's current state."""

    code = "illegal_transition"


class GuardFailed(DomainError):
    """The event is allowed from this state but a precondition is not met."""

    code = "guard_failed"


class Forbidden(DomainError):
    """The actor may not do this (wrong role, or not their case / institution)."""

    code = "forbidden"


class Conflict(DomainError):
    """Somebody changed the case concurrently; the message names the state it is in now."""

    code = "conflict"


class UnsupportedDocument(ValidationFailed):
    """A document's type is not accepted, or its content is not what its type says."""

    code = "media_type"


class TooLarge(ValidationFailed):
    """A document or file is larger than the configured limit; nothing was read further."""

    code = "too_large"
