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
from workflow.policy.actors import Actor, Scope, check_scope, may_see, with_article


class Action(StrEnum):
    OPEN_CASE = "open_case"
    SET_TARGETS = "set_targets"
    ASSIGN_EXAMINER = "assign_examiner"
    RECORD_RESULT_DATE = "record_result_date"
    ATTACH_DOCUMENT = "attach_document"
    ATTACH_TRANSCRIPT = "attach_transcript"
    ATTACH_NOTICE = "attach_notice"
    ATTACH_EVIDENCE = "attach_evidence"
    ATTACH_CORRESPONDENCE = "attach_correspondence"
    IMPORT_TRANSCRIPT = "import_transcript"
    SEE_PENDING_RESULTS = "see_pending_results"
    MATCH_BY_HAND = "match_by_hand"
    SEE_INTERNALS = "see_internals"
    EXPORT_DECISION = "export_decision"
    PREVIEW_NOTICE = "preview_notice"
    DECIDE_COHORT = "decide_cohort"
    CHECK_PRECEDENTS = "check_precedents"
    IMPORT_CATALOGUE = "import_catalogue"
    IMPORT_MODULES = "import_modules"
    SEE_GRADING_TABLES = "see_grading_tables"
    IMPORT_GRADING_TABLES = "import_grading_tables"
    SEE_STUDENTS = "see_students"
    REGISTER_STUDENT = "register_student"
    SEND_STATUS_LINK = "send_status_link"
    REVOKE_STATUS_LINKS = "revoke_status_links"
    SEE_USERS = "see_users"
    ADD_USER = "add_user"
    MANAGE_USERS = "manage_users"
    USE_API_TOKENS = "use_api_tokens"


@dataclass(frozen=True, slots=True)
class Permission:
    roles: frozenset[Role]
    doing: str  # completes "a student may not ...", for the refusal
    # The API token scope it takes (sessions and the console have none to stay within).
    scope: Scope = Scope.WRITE


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
        # Who may attach a document of some kind (checked before an upload is read); which
        # kind each may attach is one of the four rows below (``DOCUMENT_ACTIONS``).
        Action.ATTACH_DOCUMENT: Permission(
            _OFFICE | {Role.STUDENT, Role.IMPORT, Role.TIMER}, "attach documents"
        ),
        # A transcript is the partner's proof and lets the office record it as received:
        # the office or an import adds it, never the student.
        Action.ATTACH_TRANSCRIPT: Permission(
            _OFFICE | {Role.IMPORT}, "attach transcripts of records"
        ),
        # A notice is the office's decision (the timer issues it for the examiner).
        Action.ATTACH_NOTICE: Permission(_OFFICE | {Role.TIMER}, "attach notices"),
        Action.ATTACH_EVIDENCE: Permission(_OFFICE | {Role.STUDENT}, "attach evidence"),
        Action.ATTACH_CORRESPONDENCE: Permission(_OFFICE | {Role.STUDENT}, "attach correspondence"),
        Action.IMPORT_TRANSCRIPT: Permission(_OFFICE | {Role.IMPORT}, "import transcripts"),
        Action.SEE_PENDING_RESULTS: Permission(
            _OFFICE, "see waiting transcript results", Scope.READ
        ),
        Action.MATCH_BY_HAND: Permission(_OFFICE, "match a transcript result to a case by hand"),
        # The assigned examiner, other students' precedents and the office's conversions
        # are the office's internal working; the student sees the decision, not these.
        Action.SEE_INTERNALS: Permission(
            _STAFF | {Role.IMPORT, Role.TIMER},
            "see the examiner, the precedents and the grade conversions",
            Scope.READ,
        ),
        Action.EXPORT_DECISION: Permission(_STAFF | {Role.STUDENT}, "export decisions", Scope.READ),
        # The student reads the notice that was sent; a preview is the office's check.
        Action.PREVIEW_NOTICE: Permission(_STAFF, "preview decision notices", Scope.READ),
        # A cohort decision is a decision: only examiners take it, on their own cases.
        Action.DECIDE_COHORT: Permission(frozenset({Role.EXAMINER}), "decide cohorts"),
        Action.CHECK_PRECEDENTS: Permission(_STAFF, "check the precedents", Scope.READ),
        # Partner data are shared by the network: an office changes only what no other home
        # institution's cases use (workflow/office/sharing.py, docs/adr/0014).
        Action.IMPORT_CATALOGUE: Permission(_OFFICE, "import the course catalogue"),
        Action.IMPORT_MODULES: Permission(_OFFICE, "import home modules"),
        Action.SEE_GRADING_TABLES: Permission(_STAFF, "see grading tables", Scope.READ),
        Action.IMPORT_GRADING_TABLES: Permission(_OFFICE, "import grading tables"),
        Action.SEE_STUDENTS: Permission(_OFFICE, "see the office's students", Scope.READ),
        Action.REGISTER_STUDENT: Permission(_OFFICE, "register students"),
        Action.SEND_STATUS_LINK: Permission(_OFFICE | {Role.STUDENT}, "send status links"),
        Action.REVOKE_STATUS_LINKS: Permission(_OFFICE, "revoke status links"),
        Action.SEE_USERS: Permission(_OFFICE, "see the office's users", Scope.READ),
        Action.ADD_USER: Permission(frozenset({Role.ADMIN}), "add users", Scope.ADMIN),
        # Disable users, invite them to set a password, see and revoke anyone's tokens.
        Action.MANAGE_USERS: Permission(frozenset({Role.ADMIN}), "manage users", Scope.ADMIN),
        # Tokens act as an office user; a student signs in by link or password instead. Any
        # scope may list its user's tokens and make tokens of its own scope or less
        # (``auth.issue_api_token``), which are revoked with it.
        Action.USE_API_TOKENS: Permission(_STAFF, "hold API tokens", Scope.READ),
    }
)


# The permission that lets an actor attach a document of each kind (workflow.DOCUMENT_KINDS).
DOCUMENT_ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "transcript": Action.ATTACH_TRANSCRIPT,
        "evidence": Action.ATTACH_EVIDENCE,
        "notice": Action.ATTACH_NOTICE,
        "correspondence": Action.ATTACH_CORRESPONDENCE,
    }
)


def document_kinds(actor: Actor | None) -> tuple[str, ...]:
    """The kinds of document ``actor`` may attach (to a case they may see)."""
    return tuple(kind for kind, action in DOCUMENT_ACTIONS.items() if allowed(actor, action))


def allowed(actor: Actor | None, action: Action) -> bool:
    """Whether ``actor`` may do ``action`` (on a case they may see)."""
    if actor is None:
        return True
    rule = PERMISSIONS[action]
    in_scope = actor.scope is None or actor.scope.covers(rule.scope)
    return in_scope and actor.role in rule.roles


def require(actor: Actor | None, action: Action, case: Any = None) -> None:
    """Refuse unless ``actor`` may do ``action``; with ``case`` (a loaded row with the
    attributes of ``Case``), also unless they may see that case. An invisible case is not
    found (ids cannot be probed); a visible one with the wrong role is forbidden."""
    if actor is None:
        return
    if case is not None and not may_see(actor, case):
        raise NotFound(f"case {case.id} not found")
    check_scope(actor, PERMISSIONS[action].scope, PERMISSIONS[action].doing)
    if actor.role not in PERMISSIONS[action].roles:
        rule = PERMISSIONS[action]
        who = " or ".join(r.value for r in Role if r in rule.roles and r not in _SYSTEM)
        raise Forbidden(
            f"{with_article(actor.role.value)} may not {rule.doing}; it is for the {who}"
        )
