"""Read models of cases for the CLI, the API and the pages, scoped by the one policy.

``actor=None`` means the operator of the installation (a CLI on the server) and sees all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import and_, bindparam, false, func, or_, select, true
from sqlalchemy.orm import Session, selectinload

from config.procedure import get_procedure
from models import (
    Case,
    CaseEvent,
    Document,
    ImportedResult,
    Institution,
    InstitutionKind,
    Module,
    Offering,
    Programme,
    Role,
    Student,
    User,
    user_programmes,
)
from models.db import fold
from workflow.cases import fastread
from workflow.cases.guards import may_review
from workflow.decisions import precedents
from workflow.errors import NotFound
from workflow.policy import auth
from workflow.policy.actors import (
    Actor,
    acting_role,
    case_scope,
    expression_scope,
    scope_shape,
    symbolic_scope,
)
from workflow.policy.disclosure import disclosed_cases, disclosed_history
from workflow.policy.permissions import Action, allowed, require
from workflow.transcripts.importing import waiting_states


def _scoped(query: Any, actor: Actor | None) -> Any:
    return query if actor is None else query.where(case_scope(actor))


def overdue_days(due_at: dt.datetime | None, now: dt.datetime) -> int:
    """Whole days a deadline is late (0 when not yet late)."""
    if due_at is None or due_at > now:
        return 0
    return (now - due_at).days + 1


def list_cases(
    session: Session,
    *,
    actor: Actor | None,
    now: dt.datetime,
    state: str | None = None,
    overdue: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    query = (
        select(
            Case.id,
            Case.state,
            Case.version,
            Case.due_at,
            Case.due_kind,
            Student.name.label("student"),
            Student.matriculation_number,
            Offering.code.label("course"),
            Offering.title,
            Offering.term,
            Institution.code.label("partner"),
        )
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
    )
    if state:
        query = query.where(Case.state == state)
    if overdue:
        query = query.where(Case.due_at <= now).order_by(Case.due_at, Case.id)
    else:
        query = query.order_by(Case.id)
    rows = session.execute(_scoped(query, actor).limit(limit).offset(offset)).all()
    return [
        {
            "id": r.id,
            "state": r.state,
            "version": r.version,
            "student": r.student,
            "matriculation_number": r.matriculation_number,
            "partner": r.partner,
            "course": r.course,
            "title": r.title,
            "term": r.term,
            "due_kind": r.due_kind,
            "due_at": r.due_at,
            "overdue_days": overdue_days(r.due_at, now),
        }
        for r in rows
    ]


def count_by_state(session: Session, *, actor: Actor | None) -> dict[str, int]:
    query = _scoped(select(Case.state, func.count()).group_by(Case.state), actor)
    return dict(session.execute(query).all())


def _visible_case(session: Session, case_id: int, actor: Actor | None) -> Case:
    case: Case | None = session.execute(
        _scoped(select(Case).where(Case.id == case_id), actor)
    ).scalar()
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def result_flags(
    result: dict[str, Any] | None, *, ects: Decimal | str, eqf_level: int | None
) -> list[dict[str, Any]]:
    """What the office and the examiner must see about a partner's result before deciding:
    its date unknown (a transcript gave none; a clerk records it), its ECTS credits or EQF
    level other than the catalogue's for the course. Each flag names the ``field``, the
    ``result``'s value and the ``catalogue``'s."""
    if not result:
        return []
    flags: list[dict[str, Any]] = []
    if "date" in result and not result["date"]:
        flags.append({"field": "date", "result": None, "catalogue": None})
    given = result.get("ects")
    if given not in (None, ""):
        try:
            differs = Decimal(str(given).replace(",", ".")) != Decimal(str(ects))
        except InvalidOperation:
            differs = True
        if differs:
            flags.append({"field": "ects", "result": str(given), "catalogue": str(ects)})
    level = result.get("eqf_level")
    if level not in (None, "") and str(level) != str(eqf_level):
        flags.append({"field": "eqf_level", "result": str(level), "catalogue": str(eqf_level)})
    return flags


def case_detail(
    session: Session,
    case_id: int,
    *,
    actor: Actor | None,
    now: dt.datetime,
) -> dict[str, Any]:
    case = _visible_case(session, case_id, actor)
    proc = get_procedure()
    offering = case.offering
    partner = session.get(Institution, offering.institution_id)
    # The student sees their case, not the office's internal working: who examines it and
    # how other students' cases were decided.
    internals = allowed(actor, Action.SEE_INTERNALS)
    examiner = session.get(User, case.examiner_id) if case.examiner_id and internals else None
    documents = session.execute(
        select(
            Document.id,
            Document.kind,
            Document.filename,
            Document.size,
            Document.sha256,
            Document.uploaded_at,
        )
        .where(Document.case_id == case.id)
        .order_by(Document.id)
    )
    targets = session.execute(
        select(Module.code, Module.title, Module.ects).join(Case.targets).where(Case.id == case.id)
    )
    next_events = []
    for ev in proc.allowed_from(case.state):
        if actor is None or acting_role(actor, ev) is not None:
            next_events.append({"event": ev.name, "actors": list(ev.actors)})
    return {
        "id": case.id,
        "state": case.state,
        "state_label": proc.states[case.state].label,
        "final": proc.states[case.state].final,
        "version": case.version,
        "student": {
            "id": case.student.id,
            "name": case.student.name,
            "matriculation_number": case.student.matriculation_number,
            "email": case.student.email,
            "language": case.student.preferred_language,
        },
        "course": {
            "id": offering.id,
            "partner": partner.code if partner else None,
            "partner_name": partner.name if partner else None,
            "code": offering.code,
            "title": offering.title,
            "term": offering.term,
            "ects": str(offering.ects),
            "eqf_level": offering.eqf_level,
            "language": offering.language,
            "exam_date": offering.exam_date,
            "grading_scheme": offering.grading_scheme,
        },
        "targets": [{"code": t.code, "title": t.title, "ects": str(t.ects)} for t in targets],
        "examiner": examiner.username if examiner else None,
        "examiner_id": examiner.id if examiner else None,
        "deadline": {
            "kind": case.due_kind,
            "due_at": case.due_at,
            "overdue_days": overdue_days(case.due_at, now),
        },
        "decision_clock": {
            "due_at": case.decision_due_at,
            "paused_seconds_left": case.decision_paused_seconds,
        },
        "appeal_ends_at": case.appeal_ends_at,
        "result": case.result,
        "result_flags": result_flags(case.result, ects=offering.ects, eqf_level=offering.eqf_level),
        "decision": case.decision,
        "documents": [dict(d._mapping) for d in documents],
        "next_events": next_events,
        "precedents": precedents.for_case(session, case.id, now=now) if internals else None,
        "opened_at": case.created_at,
        "updated_at": case.updated_at,
    }


def history(session: Session, case_id: int, *, actor: Actor | None) -> list[dict[str, Any]]:
    """The case's audit trail as ``actor`` may see it (``policy.disclosure``: a student sees
    no office actor, no internal data, no hashes)."""
    _visible_case(session, case_id, actor)
    events = session.scalars(
        select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
    )
    entries = [
        {
            "seq": e.seq,
            "at": e.at,
            "event": e.event,
            "from": e.from_state,
            "to": e.to_state,
            "actor_role": e.actor_role,
            "actor_id": e.actor_id,
            "channel": e.channel,
            "data": e.data,
            "hash": e.hash,
        }
        for e in events
    ]
    return disclosed_history(actor, entries)


SORTS: dict[str, Any] = {
    "id": Case.id,
    "state": Case.state,
    "due_at": Case.due_at,
    "updated_at": Case.updated_at,
    "course": Offering.code,
    "partner": Institution.code,
}


def search_cases(
    session: Session,
    *,
    actor: Actor | None,
    now: dt.datetime,
    state: str | None = None,
    partner: str | None = None,
    course: str | None = None,
    examiner_id: int | None = None,
    overdue: bool = False,
    text: str | None = None,
    sort: str = "id",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the cases ``actor`` may see, filtered and sorted, and the total count.

    ``partner`` is the partner institution's code, ``course`` the offering's code,
    ``examiner_id`` the assigned examiner's user id (ids, never names, travel in URLs);
    ``text`` the free-text search (``matching``); ``sort`` a key of ``SORTS``.
    """
    if sort not in SORTS:
        raise ValueError(f"unknown sort key {sort!r}")
    base = (
        select(Case.id)
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
    )
    if text:
        base = base.where(*matching(text))
    if state:
        base = base.where(Case.state == state)
    if partner:
        base = base.where(Institution.code == partner)
    if course:
        base = base.where(Offering.code == course)
    if examiner_id is not None:
        # Filtering by examiner would tell a student who reviews their case.
        require(actor, Action.SEE_INTERNALS)
        base = base.where(Case.examiner_id == examiner_id)
    if overdue:
        base = base.where(Case.due_at <= now)
    base = _scoped(base, actor)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    column = SORTS[sort]
    order = [column.desc() if descending else column.asc(), Case.id]
    if column is Case.due_at:  # no deadline sorts last either way
        order.insert(0, Case.due_at.is_(None))
    page = (
        base.add_columns(
            Case.state,
            Case.version,
            Case.due_at,
            Case.due_kind,
            Case.examiner_id,
            Case.updated_at,
            Student.name.label("student"),
            Student.matriculation_number,
            Offering.code.label("course"),
            Offering.title,
            Offering.term,
            Institution.code.label("partner"),
        )
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    rows = session.execute(page).all()
    examiners = (
        dict(
            session.execute(
                select(User.id, User.display_name).where(
                    User.id.in_({r.examiner_id for r in rows if r.examiner_id})
                )
            ).all()
        )
        if rows
        else {}
    )
    items = [
        {
            "id": r.id,
            "state": r.state,
            "version": r.version,
            "student": r.student,
            "matriculation_number": r.matriculation_number,
            "partner": r.partner,
            "course": r.course,
            "title": r.title,
            "term": r.term,
            "examiner_id": r.examiner_id,
            "examiner": examiners.get(r.examiner_id),
            "due_kind": r.due_kind,
            "due_at": r.due_at,
            "overdue_days": overdue_days(r.due_at, now),
            "updated_at": r.updated_at,
        }
        for r in rows
    ]
    return disclosed_cases(actor, items), total


# What the free-text search looks in: the student's name and matriculation number, the
# course's code and title (and the case number, for a word that is one).
SEARCHED = (Student.name, Student.matriculation_number, Offering.code, Offering.title)


def matching(text: str) -> list[Any]:
    """The conditions of a free-text search: every word of ``text`` is found, ignoring case
    (umlauts too, on SQLite and PostgreSQL alike), in one of ``SEARCHED``, or is the case
    number (``42`` or ``#42``)."""
    conditions = []
    for word in text.lower().split():
        found = [fold(column).contains(word, autoescape=True) for column in SEARCHED]
        number = word.removeprefix("#")
        if number.isdigit() and len(number) < 10:
            found.append(Case.id == int(number))
        conditions.append(or_(*found))
    return conditions


def count_overdue(session: Session, *, actor: Actor | None, now: dt.datetime) -> int:
    query = _scoped(select(func.count(Case.id)).where(Case.due_at <= now), actor)
    return session.scalar(query) or 0


def _status_select(*scope: Any) -> Any:
    query = select(
        Case.id,
        Case.state,
        Case.version,
        Case.due_at,
        Case.due_kind,
        Case.appeal_ends_at,
        Case.updated_at,
    ).where(Case.id == bindparam("case_id"))
    return query if not scope else query.where(symbolic_scope(*scope))


_STATUS = fastread.Reads(_status_select)


def _status_statement(
    dialect: Any,
    case_id: int,
    actor: Actor | None,
) -> tuple[fastread.Compiled, dict[str, Any]]:
    if actor is None:
        return _STATUS.get(dialect), {"case_id": case_id}
    shape, values = scope_shape(actor)
    return _STATUS.get(dialect, *shape), {"case_id": case_id, **values}


def _status(rows: list[tuple[Any, ...]], case_id: int, now: dt.datetime) -> dict[str, Any]:
    if not rows:
        raise NotFound(f"case {case_id} not found")
    id_, state, version, due_at, due_kind, appeal_ends_at, updated_at = rows[0]
    return {
        "id": id_,
        "state": state,
        "version": version,
        "due_at": due_at,
        "due_kind": due_kind,
        "overdue_days": overdue_days(due_at, now),
        "appeal_ends_at": appeal_ends_at,
        "updated_at": updated_at,
    }


def case_status(
    session: Session,
    case_id: int,
    *,
    actor: Actor | None,
    now: dt.datetime,
) -> dict[str, Any]:
    """The short status of one case (one indexed read, compiled once): what a campus
    system polls."""
    compiled, values = _status_statement(session.get_bind().dialect, case_id, actor)
    return _status(fastread.fetch(session, compiled, values), case_id, now)


# Office roles, the only ones API tokens have (tokens belong to users).
_TOKEN_ROLES = (Role.CLERK, Role.EXAMINER, Role.BOARD, Role.ADMIN)


def _status_by_token_select() -> Any:
    """The token lookup and the status of the case it may see, in one statement: the case
    is joined under ``case_scope`` of each role, rendered for the token's own user (id,
    institution and programmes taken from the lookup in the same statement)."""
    tok = auth.token_select().subquery("tok")
    programmes = select(user_programmes.c.programme_id).where(
        user_programmes.c.user_id == tok.c.user_id
    )
    scope = or_(
        *(
            and_(
                tok.c.role == role.value,
                expression_scope(role, tok.c.user_id, tok.c.institution_id, programmes),
            )
            for role in _TOKEN_ROLES
        )
    )
    return (
        select(
            tok.c.token_id,
            tok.c.last_used_at,
            Case.id,
            Case.state,
            Case.version,
            Case.due_at,
            Case.due_kind,
            Case.appeal_ends_at,
            Case.updated_at,
        )
        .select_from(tok)
        .outerjoin(Case, and_(Case.id == bindparam("case_id"), scope))
    )


_STATUS_BY_TOKEN = fastread.Reads(_status_by_token_select)


@dataclass(frozen=True)
class TokenStatus:
    """What one status poll with an API token found: no live token (``None`` from the
    functions below), or the token and the case status, ``None`` when the token's user may
    not see the case (or it does not exist), with the write recording the token's use."""

    status: dict[str, Any] | None
    touch: tuple[fastread.Compiled, dict[str, Any]] | None


def _token_status(
    dialect: Any,
    rows: list[tuple[Any, ...]],
    case_id: int,
    now: dt.datetime,
) -> TokenStatus | None:
    if not rows:
        return None
    token_id, last_used_at, *case = rows[0]
    status = None if case[0] is None else _status([tuple(case)], case_id, now)
    return TokenStatus(status, auth.token_touch(dialect, token_id, last_used_at, now))


def case_status_for_token(
    session: Session,
    token: str,
    case_id: int,
    *,
    now: dt.datetime,
) -> TokenStatus | None:
    """``auth.actor_for_api_token`` and ``case_status`` in one round trip (the use of the
    token is recorded by the caller: ``TokenStatus.touch``)."""
    dialect = session.get_bind().dialect
    rows = fastread.fetch(
        session,
        _STATUS_BY_TOKEN.get(dialect),
        {"hash": auth.digest(token), "now": now, "case_id": case_id},
    )
    return _token_status(dialect, rows, case_id, now)


async def case_status_for_token_async(
    conn: Any, dialect: Any, token: str, case_id: int, *, now: dt.datetime
) -> TokenStatus | None:
    """``case_status_for_token`` on an asyncio psycopg connection; records the token's use
    itself (autocommit)."""
    rows = await fastread.afetch(
        conn,
        _STATUS_BY_TOKEN.get(dialect),
        {"hash": auth.digest(token), "now": now, "case_id": case_id},
    )
    found = _token_status(dialect, rows, case_id, now)
    if found is not None and found.touch is not None:
        await fastread.aexecute(conn, *found.touch)
    return found


def document(
    session: Session,
    case_id: int,
    document_id: int,
    *,
    actor: Actor | None,
) -> Document:
    """One document of a case the actor may see (the case's scope decides)."""
    doc: Document | None = session.execute(
        _scoped(
            select(Document)
            .join(Case, Case.id == Document.case_id)
            .where(Document.id == document_id, Document.case_id == case_id),
            actor,
        )
    ).scalar()
    if doc is None:
        raise NotFound(f"document {document_id} of case {case_id} not found")
    return doc


def documents(
    session: Session,
    case_id: int,
    *,
    actor: Actor | None,
) -> list[dict[str, Any]]:
    _visible_case(session, case_id, actor)
    rows = session.execute(
        select(
            Document.id,
            Document.kind,
            Document.filename,
            Document.media_type,
            Document.size,
            Document.sha256,
            Document.uploaded_at,
            Document.uploaded_by_role,
        )
        .where(Document.case_id == case_id)
        .order_by(Document.id)
    )
    return [dict(r._mapping) for r in rows]


def case_ids_of_student(session: Session, student_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Case.id).where(Case.student_id == student_id).order_by(Case.id.desc())
        )
    )


# --- imported transcript results (an office sees its own institution's only) ------------------


def _imported(row: ImportedResult) -> dict[str, Any]:
    learner = row.learner or {}
    result = row.result or {}
    name = " ".join(str(p) for p in (learner.get("given_names"), learner.get("family_name")) if p)
    return {
        "id": row.id,
        "file": row.filename,
        "file_sha256": row.file_sha256,
        "line": row.line,
        "status": row.status,
        "learner": name,
        "birth_date": learner.get("birth_date"),
        "partner": result.get("partner"),
        "course": result.get("code"),
        "title": result.get("title"),
        "grade": result.get("grade"),
        "result_status": result.get("status"),
        "date": result.get("date"),
        "case_id": row.case_id,
        "candidates": (row.candidates or {}).get("cases") or [],
        "note": row.note,
        "imported_at": row.imported_at,
    }


def pending_results(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Imported results of the actor's institution that matched no case, or several, and
    wait for a clerk (``workflow.transcripts.importing.pending``, narrowed to one office)."""
    rows = session.scalars(
        select(ImportedResult)
        .where(
            ImportedResult.status.in_(("unmatched", "ambiguous")),
            ImportedResult.institution_id == actor.institution_id,
        )
        .order_by(ImportedResult.id)
    )
    return [_imported(r) for r in rows]


def pending_result(session: Session, result_id: int, *, actor: Actor) -> dict[str, Any]:
    """One waiting result of the actor's institution (else not found)."""
    row = session.execute(
        select(ImportedResult).where(
            ImportedResult.id == result_id,
            ImportedResult.status.in_(("unmatched", "ambiguous")),
            ImportedResult.institution_id == actor.institution_id,
        )
    ).scalar()
    if row is None:
        raise NotFound(f"no waiting transcript result {result_id}")
    return _imported(row)


def imported_file(session: Session, sha256: str, *, actor: Actor) -> list[dict[str, Any]]:
    """What became of each result of one imported file (the import's report, kept)."""
    rows = session.scalars(
        select(ImportedResult)
        .where(
            ImportedResult.file_sha256 == sha256,
            ImportedResult.institution_id == actor.institution_id,
        )
        .order_by(ImportedResult.line)
    )
    return [_imported(r) for r in rows]


def cases_waiting_for(
    session: Session, *, actor: Actor, partner: str | None, course: str | None, limit: int = 20
) -> list[dict[str, Any]]:
    """Cases the actor may see that wait for a partner result of this course: where a
    waiting transcript result may belong."""
    if not course:
        return []
    query = (
        select(Case.id, Case.state, Student.name, Student.matriculation_number, Offering.term)
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .join(Institution, Institution.id == Offering.institution_id)
        .where(Case.state.in_(waiting_states()), Offering.code == course)
    )
    if partner:
        query = query.where(Institution.code == partner)
    rows = session.execute(_scoped(query, actor).order_by(Case.id).limit(limit))
    return [
        {
            "id": r.id,
            "state": r.state,
            "student": r.name,
            "matriculation_number": r.matriculation_number,
            "term": r.term,
        }
        for r in rows
    ]


# --- the office's own reference data ------------------------------------------------------------
# Reads of what belongs to an institution rather than to a case: the actor's own institution,
# in the SQL, for every interface (the pages and the API used to filter by hand).


def _own(column: Any, actor: Actor) -> Any:
    """``column`` is the actor's institution (nothing, for an actor of no institution)."""
    return column == actor.institution_id if actor.institution_id is not None else false()


def office_programmes(session: Session, *, actor: Actor) -> list[Programme]:
    """The programmes of the actor's institution, each with its modules."""
    return list(
        session.scalars(
            select(Programme)
            .where(_own(Programme.institution_id, actor))
            .options(selectinload(Programme.modules))
            .order_by(Programme.code)
        )
    )


def office_modules(session: Session, *, actor: Actor) -> list[Any]:
    """The home modules of the actor's institution (code, title, ECTS and the rest)."""
    return list(
        session.scalars(
            select(Module)
            .join(Programme, Programme.id == Module.programme_id)
            .where(_own(Programme.institution_id, actor))
            .order_by(Module.code)
        )
    )


def home_modules(
    session: Session,
    *,
    actor: Actor | None,
    institution: str | None = None,
    programme: str | None = None,
) -> list[dict[str, Any]]:
    """The home modules ``actor`` may see (their own institution's; every institution's for
    the operator), by institution, programme and code, each with its programme and the
    columns of the modules import. ``institution`` and ``programme`` are codes."""
    query = (
        select(
            Institution.code.label("institution"),
            Programme.code.label("programme"),
            Programme.title.label("programme_title"),
            Module.code,
            Module.title,
            Module.ects,
            Module.regulation_version,
        )
        .join(Programme, Programme.id == Module.programme_id)
        .join(Institution, Institution.id == Programme.institution_id)
    )
    if actor is not None:
        query = query.where(_own(Programme.institution_id, actor))
    if institution:
        query = query.where(Institution.code == institution)
    if programme:
        query = query.where(Programme.code == programme)
    rows = session.execute(query.order_by(Institution.code, Programme.code, Module.code))
    return [{**r._asdict(), "ects": str(r.ects)} for r in rows]


def office_students(
    session: Session, *, actor: Actor, limit: int, offset: int
) -> tuple[list[Student], int]:
    """A page of the students of the actor's institution, and how many there are."""
    require(actor, Action.SEE_STUDENTS)
    query = select(Student).where(_own(Student.institution_id, actor))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    return list(session.scalars(query.order_by(Student.id).limit(limit).offset(offset))), total


def student(session: Session, student_id: int, *, actor: Actor) -> Student:
    """One student: a student sees themself, the office its institution's students; anyone
    else finds nothing (not found, so that ids cannot be probed)."""
    if actor.role is Role.STUDENT:
        scope = Student.id == actor.id
    elif allowed(actor, Action.SEE_STUDENTS):
        scope = _own(Student.institution_id, actor)
    else:
        scope = false()
    found = session.scalar(select(Student).where(Student.id == student_id, scope))
    if found is None:
        raise NotFound(f"student {student_id} not found")
    return found


def office_users(session: Session, *, actor: Actor) -> list[User]:
    """The office users of the actor's institution."""
    require(actor, Action.SEE_USERS)
    return list(
        session.scalars(
            select(User)
            .where(_own(User.institution_id, actor))
            .options(selectinload(User.programmes))
            .order_by(User.username)
        )
    )


def office_examiners(
    session: Session, *, actor: Actor, case_id: int | None = None, active_only: bool = False
) -> list[Any]:
    """The examiners of the actor's institution (id, username, display name); for a case,
    those who may review it (``guards.may_review``: who holds the case's programme, any
    examiner while it has none) and the one assigned to it."""
    query = select(User.id, User.username, User.display_name).where(
        _own(User.institution_id, actor), User.role == Role.EXAMINER.value
    )
    if active_only:
        query = query.where(User.active.is_(True))
    if case_id is not None:
        case = (
            select(Case.programme_id, Case.examiner_id)
            .where(Case.id == case_id, case_scope(actor))
            .subquery()
        )
        query = query.join(case, true()).where(
            or_(case.c.examiner_id == User.id, may_review(User.id, case.c.programme_id))
        )
    return list(session.execute(query.order_by(User.display_name, User.username)))


def partner_codes(session: Session) -> list[str]:
    """The partner institutions' codes (the network's shared reference data)."""
    return list(
        session.scalars(
            select(Institution.code).where(Institution.kind == "partner").order_by(Institution.code)
        )
    )


def _institution_scope(actor: Actor | None) -> Any:
    """The institutions an actor may see: the partners (the network's shared reference data)
    and their own institution, not another home institution; everything for the operator."""
    if actor is None:
        return true()
    return or_(Institution.kind == InstitutionKind.PARTNER.value, _own(Institution.id, actor))


def institutions(session: Session, *, actor: Actor | None) -> list[Institution]:
    """The institutions ``actor`` may see, by code."""
    return list(
        session.scalars(
            select(Institution).where(_institution_scope(actor)).order_by(Institution.code)
        )
    )


def own_institution(session: Session, *, actor: Actor) -> Institution | None:
    """The actor's own institution (None for an actor of none: a system actor of the network)."""
    if actor.institution_id is None:
        return None
    return session.get(Institution, actor.institution_id)


def _catalogue_scope(actor: Actor | None) -> Any:
    """The partner catalogue is shared by the network: every actor of an institution sees it
    (a student chooses from it, an office opens cases for it); an actor of none sees nothing."""
    if actor is None or actor.role in (Role.IMPORT, Role.TIMER):
        return true()
    return true() if actor.institution_id is not None else false()


def catalogue(
    session: Session,
    *,
    actor: Actor | None,
    partner: str | None = None,
    term: str | None = None,
    code: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[Offering, str]], int]:
    """A page of the partner course offerings ``actor`` may see, each with its partner's code,
    by partner, term and code, and how many there are. ``partner`` is a partner's code."""
    query = (
        select(Offering, Institution.code.label("partner"))
        .join(Institution, Institution.id == Offering.institution_id)
        .where(_catalogue_scope(actor))
    )
    if partner:
        query = query.where(Institution.code == partner)
    if term:
        query = query.where(Offering.term == term)
    if code:
        query = query.where(Offering.code == code)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    query = query.order_by(Institution.code, Offering.term, Offering.code).offset(offset)
    rows = session.execute(query if limit is None else query.limit(limit)).all()
    return [(r.Offering, r.partner) for r in rows], total


def course(
    session: Session, offering_id: int, *, actor: Actor | None
) -> tuple[Offering, Institution]:
    """One course offering of the catalogue and its partner; not found unless the actor may
    see it."""
    found = session.execute(
        select(Offering, Institution)
        .join(Institution, Institution.id == Offering.institution_id)
        .where(Offering.id == offering_id, _catalogue_scope(actor))
    ).first()
    if found is None:
        raise NotFound(f"course offering {offering_id} not found")
    return found[0], found[1]


def home_module_ids(session: Session, codes: list[str], *, institution_id: int) -> list[int]:
    """The ids of the home modules of one institution with these codes, in their order."""
    found = dict(
        session.execute(
            select(Module.code, Module.id)
            .join(Programme, Programme.id == Module.programme_id)
            .where(Module.code.in_(codes), Programme.institution_id == institution_id)
        ).all()
    )
    missing = [c for c in codes if c not in found]
    if missing:
        raise NotFound(f"unknown home module {', '.join(missing)}")
    return [found[c] for c in codes]
