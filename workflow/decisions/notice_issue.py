"""Issuing a decision's notice: gather what the notice says from the case and its audit
event, and keep the rendered PDF with the case's documents (once, however often a delivery is
retried: the PDF is byte-for-byte reproducible, so a retry finds the document it stored)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from models import Case, CaseEvent, Document, Institution, Offering, Role, Student
from workflow.cases.casefile import attach_document
from workflow.cases.deadlines import add_months, end_of_day, last_day
from workflow.cases.documents import DocumentStore
from workflow.cases.outbox import moment
from workflow.decisions.notices import EVENTS, LANGUAGES, Notice, render_notice_html
from workflow.errors import NotFound, ValidationFailed
from workflow.policy.actors import Actor
from workflow.policy.permissions import Action, require

NOTICE_EVENTS = frozenset(EVENTS)  # the decisions a notice is written for


def _facts(
    session: Session,
    case_id: int,
) -> tuple[Case, Student, Offering, Institution, Institution]:
    """The case with its student, course offering, home and partner institution."""
    case, student, offering = session.execute(
        select(Case, Student, Offering)
        .join(Student, Student.id == Case.student_id)
        .join(Offering, Offering.id == Case.offering_id)
        .where(Case.id == case_id)
    ).one()
    home = session.get(Institution, case.institution_id)
    partner = session.get(Institution, offering.institution_id)
    assert home is not None
    assert partner is not None
    return case, student, offering, home, partner


def _course(
    offering: Offering,
    partner: Institution,
    result: dict[str, Any],
) -> dict[str, Any]:
    return {
        "title": offering.title,
        "code": offering.code,
        "partner_name": partner.name,
        "term": offering.term,
        "ects": str(offering.ects),
        "grade_as_printed": result.get("grade"),
        "scheme": result.get("scheme"),
    }


def notice_inputs(
    session: Session, case_id: int, seq: int, *, language: str, settings: Settings
) -> dict[str, Any]:
    """The keyword arguments of ``workflow.decisions.notices.render_notice`` for event ``seq``."""
    event = session.execute(
        select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.seq == seq)
    ).scalar_one()
    case, student, offering, home, partner = _facts(session, case_id)
    zone = ZoneInfo(home.timezone or settings.timezone)
    # The decision and the remedy period of the event's own moment: by the time a notice
    # goes out, an appeal may have replaced the decision and opened a new period.
    then = moment(session, case_id, seq)
    decision = case.decision if then is None else then.decision
    ends = case.appeal_ends_at if then is None else then.appeal_ends_at
    if event.event == "dismiss_appeal":  # the action at court: one month from this notice
        day = add_months(event.at.astimezone(zone).date(), 1)
        ends = end_of_day(last_day(day, settings), zone)
    return {
        "event": event.event,
        "decision": decision,
        "data": event.data,
        "language": language,
        "case_id": case.id,
        "student_name": student.name,
        "matriculation_number": student.matriculation_number,
        "course": _course(offering, partner, case.result or {}),
        "institution": {"name": home.name, "office_email": home.office_email or ""},
        "issued_at": event.at,
        "appeal_ends_at": ends,
        "zone": zone,
    }


@dataclass(frozen=True)
class NoticePreview:
    """A decision's notice rendered for reading, neither sent nor stored: which decision it
    is (the event, its number in the audit trail, when it happened) and its HTML."""

    case_id: int
    seq: int
    event: str
    at: dt.datetime
    language: str
    html: str
    inputs: dict[str, Any]


def preview_notice(
    session: Session,
    case_id: int,
    *,
    actor: Actor | None,
    settings: Settings,
    seq: int | None = None,
    language: str | None = None,
) -> NoticePreview:
    """The notice of a case's decision (its latest, or the decision event ``seq``) exactly as
    the delivery renders it for the student (in the student's language unless ``language``),
    without sending or storing anything: the office reads what the student gets."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    require(actor, Action.PREVIEW_NOTICE, case)
    if language is not None and language not in LANGUAGES:
        raise ValidationFailed(f"a notice is written in {' or '.join(LANGUAGES)}, not {language!r}")
    query = select(CaseEvent.seq, CaseEvent.event, CaseEvent.at).where(
        CaseEvent.case_id == case_id, CaseEvent.event.in_(NOTICE_EVENTS)
    )
    if seq is not None:
        query = query.where(CaseEvent.seq == seq)
    found = session.execute(query.order_by(CaseEvent.seq.desc()).limit(1)).first()
    if found is None:
        if seq is not None:
            raise NotFound(
                f"event {seq} of case {case_id} is no decision with a notice "
                f"({', '.join(EVENTS)}); see: recog case history {case_id}"
            )
        raise NotFound(
            f"case {case_id} has no decision yet (it is {case.state}); a notice is written "
            f"for {', '.join(EVENTS)}"
        )
    student = session.get(Student, case.student_id)
    assert student is not None
    chosen = language or student.preferred_language
    inputs = notice_inputs(session, case_id, found.seq, language=chosen, settings=settings)
    return NoticePreview(
        case_id=case_id,
        seq=found.seq,
        event=found.event,
        at=found.at,
        language=chosen,
        html=render_notice_html(**inputs),
        inputs=inputs,
    )


def keep_notice(
    session: Session,
    case_id: int,
    notice: Notice,
    *,
    store: DocumentStore,
    now: dt.datetime,
    media_type: str = "application/pdf",
) -> int:
    """Store the notice (its PDF; its HTML where no PDF could be made) with the case and in
    its audit trail, unless it is there already."""
    import hashlib

    content = notice.pdf if media_type == "application/pdf" else notice.html.encode()
    sha = hashlib.sha256(content).hexdigest()
    existing = session.scalar(
        select(Document.id).where(Document.case_id == case_id, Document.sha256 == sha)
    )
    if existing is not None:
        return existing
    # The background worker issues the notice on the examiner's behalf; the audit trail
    # records it as the scheduled jobs' work.
    doc_id, _ = attach_document(
        session,
        case_id,
        content=content,
        filename=notice.filename,
        media_type=media_type,
        kind="notice",
        store=store,
        actor=Actor.system(Role.TIMER),
        now=now,
        channel="task",
    )
    return doc_id


def export_inputs(
    session: Session, case_id: int, *, settings: Settings, store: DocumentStore | None = None
) -> dict[str, Any]:
    """The keyword arguments of ``workflow.transcripts.export.export_decision`` for a case, with
    its latest notice embedded when the store holds it."""
    case, student, offering, home, partner = _facts(session, case_id)
    decided = session.scalar(
        select(CaseEvent.at)
        .where(CaseEvent.case_id == case_id, CaseEvent.event.in_(NOTICE_EVENTS))
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )
    notice = session.execute(
        select(Document.sha256)
        .where(Document.case_id == case_id, Document.kind == "notice")
        .order_by(Document.id.desc())
        .limit(1)
    ).scalar()
    result = case.result or {}

    def inst(i: Institution) -> dict[str, Any]:
        return {
            "name": i.name,
            "schac": i.code,
            "erasmus_code": i.erasmus_code,
            "country": i.country,
        }

    return {
        "decision": case.decision,
        "case_id": case.id,
        "student_name": student.name,
        "matriculation_number": student.matriculation_number,
        "date_of_birth": student.date_of_birth,
        "course": {
            **_course(offering, partner, result),
            "eqf_level": offering.eqf_level,
            "language": offering.language,
            "date": result.get("date"),
        },
        "institution": inst(home),
        "partner": inst(partner),
        "issued_at": decided or case.updated_at,
        "zone": ZoneInfo(home.timezone or settings.timezone),
        "notice_pdf": store.get(notice) if (store is not None and notice) else None,
    }
