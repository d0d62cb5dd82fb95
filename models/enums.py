"""Enumerations stored by value: case states, roles, deadline kinds, outbox statuses."""

from __future__ import annotations

from enum import StrEnum


class CaseState(StrEnum):
    PLANNED = "planned"
    ENROLLED = "enrolled"
    COURSE_PASSED = "course_passed"
    COURSE_FAILED = "course_failed"
    TRANSCRIPT_RECEIVED = "transcript_received"
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    INFO_REQUESTED = "info_requested"
    RECOGNIZED = "recognized"
    PARTIALLY_RECOGNIZED = "partially_recognized"
    REJECTED = "rejected"
    APPEALED = "appealed"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"


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


class DeadlineKind(StrEnum):
    ENROLMENT = "enrolment"
    RESULT = "result"
    TRANSCRIPT = "transcript"
    RETAKE = "retake"
    SUBMISSION = "submission"
    DECISION = "decision"
    INFO_REPLY = "info_reply"
    APPEAL_WINDOW = "appeal_window"
    BOARD_DECISION = "board_decision"


class InstitutionKind(StrEnum):
    HOME = "home"
    PARTNER = "partner"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
