"""Who may do what besides firing events: the one permission table, read by the workflow's
use cases and by every interface (API, pages, CLI, tasks), which name an action and never
compare roles themselves.

Events carry their actors in the procedure (``config/procedure``, checked by
``actors.check_may_fire``); which cases an actor may see is ``actors.case_scope``. This table
holds the rest: the actions that are not transitions. Changing who may do one of them is a
change of one line here; the matrix test (tests/web/test_web_authz.py) runs the table through
the API, the pages and the CLI.

An actor of ``None`` is the operator at the console (``recog`` without ``--actor``): whoever
runs the CLI on the server already holds the database, so the table does not restrict them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from models import Role
from workflow.errors import Forbidden, NotFound
from workflow.policy.actors import Actor, may_see, with_article


class Action(StrEnum):
    OPEN_CASE = "open_case"
    SET_TARGETS = "set_targets"
    ASSIGN_EXAMINER = "assign_examiner"
    RECORD_RESULT_DATE = "record_result_date"
    ATTACH_DOCUMENT = "attach_document"
    IMPORT_TRANSCRIPT = "import_transcript"
    SEE_PENDING_RESULTS = "see_pending_results"
    MATCH_BY_HAND = "match_by_hand"
    SEE_INTERNALS = "see_internals"
    EXPORT_DECISION = "export_decision"
    DECIDE_COHORT = "decide_cohort"
    CHECK_PRECEDENTS = "check_precedents"
    IMPORT_CATALOGUE = "import_catalogue"
    SEE_GRADING_TABLES = "see_grading_tables"
    IMPORT_GRADING_TABLES = "import_grading_tables"
    SEE_STUDENTS = "see_students"
    REGISTER_STUDENT = "register_student"
    SEND_STATUS_LINK = "send_status_link"
    REVOKE_STATUS_LINKS = "revoke_status_links"
    SEE_USERS = "see_users"
    ADD_USER = "add_user"
    USE_API_TOKENS = "use_api_tokens"


@dataclass(frozen=True, slots=True)
class Permission:
    roles: frozenset[Role]
    doing: str  # completes "a student may not ...", for the refusal


_SYSTEM = (Role.IMPORT, Role.TIMER)  # not named in refusals: no person acts as them
_OFFICE = frozenset({Role.CLERK, Role.ADMIN})
# Everyone who works in the office (decides, reviews or administers), not the student.
_STAFF = frozenset({Role.CLERK, Role.EXAMINER, Role.BOARD, Role.ADMIN})


PERMISSIONS: Mapping[Action, Permission] = MappingProxyType(
    {
        Action.OPEN_CASE: Permission(_OFFICE | {Role.STUDENT}, "open cases"),
        # Until submission the student shapes their own request (a learning agreement).
        Action.SET_TARGETS: Permission(_OFFICE | {Role.STUDENT}, "set a case's target modules"),
        Action.ASSIGN_EXAMINER: Permission(_OFFICE, "assign examiners"),
        # A transcript without the result's date: the office asks the partner and records it.
        Action.RECORD_RESULT_DATE: Permission(_OFFICE, "record the date of a partner's result"),
        # Imports and timers attach the transcript and notices they produce.
        Action.ATTACH_DOCUMENT: Permission(
            _OFFICE | {Role.STUDENT, Role.IMPORT, Role.TIMER}, "attach documents"
        ),
        Action.IMPORT_TRANSCRIPT: Permission(_OFFICE | {Role.IMPORT}, "import transcripts"),
        Action.SEE_PENDING_RESULTS: Permission(_OFFICE, "see waiting transcript results"),
        Action.MATCH_BY_HAND: Permission(_OFFICE, "match a transcript result to a case by hand"),
        # The assigned examiner, other students' precedents and the office's conversions
        # are the office's internal working; the student sees the decision, not these.
        Action.SEE_INTERNALS: Permission(
            _STAFF | {Role.IMPORT, Role.TIMER},
            "see the examiner, the precedents and the grade conversions",
        ),
        Action.EXPORT_DECISION: Permission(_STAFF | {Role.STUDENT}, "export decisions"),
        # A cohort decision is a decision: only examiners take it, on their own cases.
        Action.DECIDE_COHORT: Permission(frozenset({Role.EXAMINER}), "decide cohorts"),
        Action.CHECK_PRECEDENTS: Permission(_STAFF, "check the precedents"),
        Action.IMPORT_CATALOGUE: Permission(_OFFICE, "import the course catalogue"),
        Action.SEE_GRADING_TABLES: Permission(_STAFF, "see grading tables"),
        Action.IMPORT_GRADING_TABLES: Permission(_OFFICE, "import grading tables"),
        Action.SEE_STUDENTS: Permission(_OFFICE, "see the office's students"),
        Action.REGISTER_STUDENT: Permission(_OFFICE, "register students"),
        Action.SEND_STATUS_LINK: Permission(_OFFICE | {Role.STUDENT}, "send status links"),
        Action.REVOKE_STATUS_LINKS: Permission(_OFFICE, "revoke status links"),
        Action.SEE_USERS: Permission(_OFFICE, "see the office's users"),
        Action.ADD_USER: Permission(frozenset({Role.ADMIN}), "add users"),
        # Tokens act as an office user; a student signs in by link or password instead.
        Action.USE_API_TOKENS: Permission(_STAFF, "hold API tokens"),
    }
)


def allowed(actor: Actor | None, action: Action) -> bool:
    """Whether ``actor`` may do ``action`` (on a case they may see)."""
    return actor is None or actor.role in PERMISSIONS[action].roles


def require(actor: Actor | None, action: Action, case: Any = None) -> None:
    """Refuse unless ``actor`` may do ``action``; with ``case`` (a loaded row with the
    attributes of ``Case``), also unless they may see that case. An invisible case is not
    found (ids cannot be probed); a visible one with the wrong role is forbidden."""
    if actor is None:
        return
    if case is not None and not may_see(actor, case):
        raise NotFound(f"case {case.id} not found")
    if actor.role not in PERMISSIONS[action].roles:
        rule = PERMISSIONS[action]
        who = " or ".join(r.value for r in Role if r in rule.roles and r not in _SYSTEM)
        raise Forbidden(
            f"{with_article(actor.role.value)} may not {rule.doing}; it is for the {who}"
        )
