"""Enumerations stored by value: roles, institution kinds, outbox statuses.

Case states are not here: they are the procedure's (config/procedure.toml), read from it;
deadline kinds are the clocks workflow/cases/deadlines.py computes
(config.procedure.KNOWN_DEADLINES)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """Who acts. The first four are office users; the last three are not user accounts."""

    CLERK = "clerk"
    EXAMINER = "examiner"
    BOARD = "board"
    ADMIN = "admin"
    STUDENT = "student"
    IMPORT = "import"
    TIMER = "timer"


USER_ROLES = (Role.CLERK, Role.EXAMINER, Role.BOARD, Role.ADMIN)
SYSTEM_ROLES = (Role.IMPORT, Role.TIMER)


class InstitutionKind(StrEnum):
    HOME = "home"
    PARTNER = "partner"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
