"""Use cases around a case that are not state transitions: open it, assign its examiner,
set its target modules, attach documents. Each writes an audit event through the engine."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from config.procedure import Procedure, get_procedure
from config.settings import Settings, get_settings
from models import (
    Case,
    Document,
    Institution,
    Module,
    Offering,
    Programme,
    Role,
    Student,
    case_targets,
)
from workflow.cases import audit
from workflow.cases.deadlines import Clocks, next_clocks, schedule
from workflow.cases.documents import DocumentStore
from workflow.cases.engine import FiredEvent, _append, record
from workflow.cases.guards import reviewer
from workflow.errors import (
    Conflict,
    GuardFailed,
    NotFound,
    TooLarge,
    UnsupportedDocument,
    ValidationFailed,
)
from workflow.policy.actors import Actor
from workflow.policy.permissions import DOCUMENT_ACTIONS, Action, require

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024  # the default of RECOG_MAX_DOCUMENT_BYTES
DOCUMENT_KINDS = tuple(DOCUMENT_ACTIONS)  # transcript, evidence, notice, correspondence
# The documents a person may attach (web or CLI alike), each with the first bytes its
# content must start with. The system's own documents (a notice in HTML, an import's XML)
# are made by Recog and not checked here.
DOCUMENT_TYPES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "application/xml": (b"<?xml", b"<"),
    "text/xml": (b"<?xml", b"<"),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
# The type a file on disk declares by its name (the CLI's ``case attach``).
DOCUMENT_SUFFIXES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".xml": "application/xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}


def media_type_of(filename: str) -> str:
    """The media type a file name declares (empty when its suffix declares none we take)."""
    name = filename.lower()
    suffix = name[name.rfind(".") :] if "." in name else ""
    return DOCUMENT_SUFFIXES.get(suffix, "")


def check_document(
    content: bytes, media_type: str, *, filename: str, max_bytes: int = MAX_DOCUMENT_BYTES
) -> str:
    """The one document check of every interface: a type we accept, content that starts the
    way that type must, not empty, not over ``max_bytes``. Returns the normalised type."""
    declared = media_type.split(";")[0].strip().lower()
    signatures = DOCUMENT_TYPES.get(declared)
    if signatures is None:
        raise UnsupportedDocument(
            f"{filename}: {declared or 'no type'} is not accepted; attach one of "
            f"{', '.join(DOCUMENT_TYPES)} ({', '.join(DOCUMENT_SUFFIXES)})"
        )
    if not content:
        raise ValidationFailed(f"{filename}: the file is empty")
    if len(content) > max_bytes:
        raise TooLarge(f"{filename} is larger than {max_bytes} bytes, the most a document may have")
    if not content.lstrip().startswith(signatures):
        raise UnsupportedDocument(f"{filename}: the file's content is not {declared}")
    return declared


def _home_modules(session: Session, institution_id: int, module_ids: list[int]) -> list[Any]:
    mods = session.execute(
        select(Module.id, Module.code, Module.programme_id)
        .join(Programme, Programme.id == Module.programme_id)
        .where(Module.id.in_(module_ids), Programme.institution_id == institution_id)
    ).all()
    if len(mods) != len(set(module_ids)):
        raise NotFound("a target module does not exist in this institution")
    return list(mods)


def _visible_case(session: Session, case_id: int, actor: Actor | None, action: Action) -> Case:
    """The case, checked before anything is said about it: not found unless the actor may
    see it, forbidden unless the permission table lets them do ``action``."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    require(actor, action, case)
    return case


def open_case(
    session: Session,
    *,
    student_id: int,
    offering_id: int,
    actor: Actor,
    now: dt.datetime,
    target_module_ids: list[int] | None = None,
    programme_id: int | None = None,
    channel: str = "api",
    procedure: Procedure | None = None,
    settings: Settings | None = None,
) -> FiredEvent:
    """Open a case (state ``planned``) for a student and a partner course offering."""
    proc = procedure or get_procedure()
    settings = settings or get_settings()
    require(actor, Action.OPEN_CASE)
    student = session.get(Student, student_id)
    if (
        student is None
        or (actor.role is Role.STUDENT and actor.id != student_id)
        or (actor.role is not Role.STUDENT and student.institution_id != actor.institution_id)
    ):
        raise NotFound(f"student {student_id} not found")
    offering = session.get(Offering, offering_id)
    if offering is None:
        raise NotFound(f"course offering {offering_id} not found")
    if offering.institution_id == student.institution_id:
        raise ValidationFailed(
            "the course is offered by the student's own institution; cases are for partner courses"
        )
    targets = list(dict.fromkeys(target_module_ids or []))
    mods = _home_modules(session, student.institution_id, targets) if targets else []
    if programme_id is None and mods:
        programmes = {m.programme_id for m in mods}
        if len(programmes) > 1:
            raise ValidationFailed(
                "the target modules belong to different programmes; open one case per programme"
            )
        programme_id = programmes.pop()
    duplicate = session.execute(
        select(Case.id).where(
            Case.student_id == student_id,
            Case.offering_id == offering_id,
            Case.state.not_in(proc.allowing_new_case()),
        )
    ).scalar()
    if duplicate is not None:
        raise GuardFailed(f"the student already has case {duplicate} for this course offering")

    home = session.get(Institution, student.institution_id)
    zone = ZoneInfo((home.timezone if home else None) or settings.timezone)
    clocks = next_clocks(
        proc.states[proc.initial].deadline,
        before=Clocks(),
        now=now,
        zone=zone,
        settings=settings,
        start_date=offering.start_date,
        course_end=offering.exam_date or offering.end_date,
    )
    case_id = session.execute(
        insert(Case)
        .values(
            institution_id=student.institution_id,
            student_id=student_id,
            offering_id=offering_id,
            programme_id=programme_id,
            state=proc.initial,
            version=0,
            chain_head=audit.GENESIS,
            created_at=now,
            updated_at=now,
        )
        .returning(Case.id)
    ).scalar_one()
    if targets:
        session.execute(
            insert(case_targets), [{"case_id": case_id, "module_id": m} for m in targets]
        )
    fresh = SimpleNamespace(
        id=case_id,
        version=0,
        chain_head=audit.GENESIS,
        state=None,
        examiner_id=None,
        due_at=None,
        due_kind=None,
    )
    data = {
        "student_id": student_id,
        "offering_id": offering_id,
        "targets": [m.code for m in mods],
        "programme_id": programme_id,
    }
    return _append(
        session,
        fresh,
        event="open",
        to_state=proc.initial,
        actor=actor,
        role=actor.role.value,
        channel=channel,
        now=now,
        data=data,
        updates={"due_at": clocks.due_at, "due_kind": clocks.due_kind},
        notify=("student",),
        plan=schedule(clocks, now=now, zone=zone, settings=settings),
    )


def assign_examiner(
    session: Session,
    case_id: int,
    username: str,
    *,
    actor: Actor,
    now: dt.datetime,
    channel: str = "api",
) -> FiredEvent:
    case = _visible_case(session, case_id, actor, Action.ASSIGN_EXAMINER)
    found = reviewer(
        session, username, institution_id=case.institution_id, programme_id=case.programme_id
    )
    if found.refusal is not None:
        raise (NotFound if found.unknown else ValidationFailed)(found.refusal)
    return record(
        session,
        case_id,
        "assign_examiner",
        actor=actor,
        now=now,
        channel=channel,
        data={"examiner_id": found.user_id},
        updates={"examiner_id": found.user_id},
        action=Action.ASSIGN_EXAMINER,
    )


def record_result_date(
    session: Session,
    case_id: int,
    day: dt.date | str,
    *,
    actor: Actor,
    now: dt.datetime,
    channel: str = "api",
) -> FiredEvent:
    """A clerk records the date of the partner's result that a transcript left unknown (an
    imported result without a date is kept without one, never given the import day); a
    decision that credits the course waits for it (``guards.result_date_known``)."""
    case = _visible_case(session, case_id, actor, Action.RECORD_RESULT_DATE)
    result = dict(case.result or {})
    if not result:
        raise GuardFailed(
            f"cannot record the result date of case {case_id}: it has no partner result yet "
            f"(it is {case.state}); the date comes with the result (pass_course or fail_course)"
        )
    if result.get("date"):
        raise GuardFailed(
            f"cannot record the result date of case {case_id}: it is known already "
            f"({result['date']}, in the audit trail); nothing was changed"
        )
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationFailed(
                f"the result date must be a date as YYYY-MM-DD (the field date), not {day!r}"
            ) from None
    if day > now.date() + dt.timedelta(days=1):
        raise ValidationFailed(f"the result date {day} lies in the future (the field date)")
    start = case.offering.start_date
    if day < start:
        raise ValidationFailed(
            f"the result date {day} is before the course started ({start}) (the field date)"
        )
    result["date"] = day.isoformat()
    return record(
        session,
        case_id,
        "record_result_date",
        actor=actor,
        now=now,
        channel=channel,
        data={"date": day.isoformat()},
        updates={"result": result},
        action=Action.RECORD_RESULT_DATE,
    )


def set_targets(
    session: Session,
    case_id: int,
    module_codes: list[str],
    *,
    actor: Actor,
    now: dt.datetime,
    channel: str = "api",
) -> FiredEvent:
    """Replace the target modules; allowed until the recognition request is submitted."""
    case = _visible_case(session, case_id, actor, Action.SET_TARGETS)
    if case.state not in get_procedure().before("submit"):
        raise GuardFailed(
            f"cannot change the targets of case {case_id}: it is {case.state}; "
            "targets are fixed once recognition has been requested"
        )
    query = (
        select(Module.id, Module.code, Module.programme_id)
        .join(Programme, Programme.id == Module.programme_id)
        .where(Programme.institution_id == case.institution_id, Module.code.in_(module_codes))
    )
    if case.programme_id is not None:
        query = query.where(Module.programme_id == case.programme_id)
    mods = {m.code: m for m in session.execute(query)}
    missing = [c for c in module_codes if c not in mods]
    if missing or not module_codes:
        raise NotFound(f"unknown home module(s): {', '.join(missing) or '(none given)'}")
    fired = record(
        session,
        case_id,
        "set_targets",
        actor=actor,
        now=now,
        channel=channel,
        data={"targets": list(module_codes)},
        updates={"programme_id": case.programme_id or next(iter(mods.values())).programme_id},
        action=Action.SET_TARGETS,
    )
    session.execute(delete(case_targets).where(case_targets.c.case_id == case_id))
    session.execute(
        insert(case_targets), [{"case_id": case_id, "module_id": mods[c].id} for c in module_codes]
    )
    return fired


def attach_document(
    session: Session,
    case_id: int,
    *,
    content: bytes,
    filename: str,
    media_type: str,
    kind: str,
    store: DocumentStore,
    actor: Actor,
    now: dt.datetime,
    channel: str = "api",
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> tuple[int, FiredEvent]:
    """Store a document for a case and record it in the audit trail. Who may attach which
    kind is the permission table's (``DOCUMENT_ACTIONS``); what a person attaches passes
    ``check_document`` first, whichever interface it came through."""
    if kind not in DOCUMENT_KINDS:
        raise ValidationFailed(
            f"unknown document kind {kind!r}; use one of {', '.join(DOCUMENT_KINDS)}"
        )
    if actor is None or actor.role not in (Role.IMPORT, Role.TIMER):
        _visible_case(session, case_id, actor, DOCUMENT_ACTIONS[kind])
        media_type = check_document(content, media_type, filename=filename, max_bytes=max_bytes)
    elif not content:
        raise ValidationFailed(f"{filename}: the file is empty")
    fired = record(
        session,
        case_id,
        "attach_document",
        actor=actor,
        now=now,
        channel=channel,
        data={"kind": kind, "media_type": media_type, "size": len(content)},
        action=DOCUMENT_ACTIONS[kind],
    )
    sha = store.put(content)
    doc_id = session.execute(
        insert(Document)
        .values(
            case_id=case_id,
            kind=kind,
            filename=filename[-255:],
            media_type=media_type,
            size=len(content),
            sha256=sha,
            uploaded_at=now,
            uploaded_by_role=actor.role.value,
            uploaded_by_id=actor.id,
        )
        .returning(Document.id)
    ).scalar_one()
    return doc_id, fired


def export_decision_document(
    session: Session,
    case_id: int,
    *,
    actor: Actor | None,
    settings: Settings,
    store: DocumentStore | None = None,
) -> bytes:
    """The case's decision as an ELMO 2.0 document (``workflow.transcripts.export``), with its
    notice embedded when the store holds it. Only a decided case can be exported: before the
    decision there is nothing to certify, whichever interface asks."""
    from workflow.decisions.notice_issue import export_inputs
    from workflow.transcripts.export import export_decision

    case = _visible_case(session, case_id, actor, Action.EXPORT_DECISION)
    if not case.decision:
        raise Conflict(
            f"case {case_id} has no decision yet ({case.state}); only a decided case can be "
            "exported as ELMO"
        )
    try:
        return export_decision(**export_inputs(session, case_id, settings=settings, store=store))
    except FileNotFoundError:
        raise ValidationFailed(
            f"case {case_id}: the stored notice is missing from the document store; "
            "ask the operator to restore it"
        ) from None
